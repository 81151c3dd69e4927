//! Personal API tokens over HTTP: a token opens what its scopes name, as
//! its owner, and nothing that needs a session; it is malformed, unknown,
//! revoked or expired alike (401); a demoted owner's token is refused on
//! the very next request at another instance sharing the database, and
//! stays revoked; admins see and revoke everyone's.

use reqwest::StatusCode;
use secureai_tests::{TestApp, assert_error, body};
use serde_json::{Value, json};

async fn create(app: &TestApp, session: &str, name: &str, scopes: &[&str]) -> Value {
    let asked = json!({"name": name, "scopes": scopes});
    let created = app.post("/api/v1/me/tokens", Some(session), asked).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["cache-control"], "no-store");
    body(created).await
}

#[tokio::test]
async fn a_token_opens_what_its_scopes_name_as_its_owner() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let created = create(&app, &admin, "  Nightly sync ", &["users:read"]).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sai_pat_") && secret.len() == 59, "{secret}");
    let token = &created["token"];
    assert_eq!(
        (token["name"].as_str(), token["status"].as_str()),
        (Some("Nightly sync"), Some("active"))
    );
    assert_eq!(token["scopes"], json!(["users:read"]));
    let created_at = chrono::DateTime::parse_from_rfc3339(token["created_at"].as_str().unwrap());
    let expires_at = chrono::DateTime::parse_from_rfc3339(token["expires_at"].as_str().unwrap());
    assert_eq!(expires_at.unwrap() - created_at.unwrap(), chrono::Duration::days(90));

    assert_eq!(app.get("/api/v1/users", Some(&secret)).await.status(), StatusCode::OK);
    let me = body(app.get("/api/v1/me", Some(&secret)).await).await;
    assert_eq!(me["email"], secureai_tests::ADMIN_EMAIL);
    let invite = json!({"email": "bo@example.com", "name": "Bo", "role": "user"});
    let write = app.post("/api/v1/users", Some(&secret), invite.clone()).await;
    assert_error(write, StatusCode::FORBIDDEN, "insufficient_scope").await;
    let audit = app.get("/api/v1/audit", Some(&secret)).await;
    assert_error(audit, StatusCode::FORBIDDEN, "insufficient_scope").await;
    // What needs a signed-in session: its own tokens, sessions, factors.
    let more = json!({"name": "More", "scopes": ["users:read"]});
    let minted = app.post("/api/v1/me/tokens", Some(&secret), more).await;
    assert_error(minted, StatusCode::FORBIDDEN, "session_required").await;
    let sessions = app.delete("/api/v1/me/sessions", &secret).await;
    assert_error(sessions, StatusCode::FORBIDDEN, "session_required").await;
    let factor = app.post("/api/v1/me/mfa/totp", Some(&secret), json!({})).await;
    assert_error(factor, StatusCode::FORBIDDEN, "session_required").await;
    // Never a session for the pages.
    let page = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/admin/users"))
        .header("cookie", format!("secureai_session={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["location"], "/sign-in", "{:?}", page.status());

    // A typo, a made-up one and a well-formed unknown one: 401 alike.
    let mut typo = secret.clone().into_bytes();
    typo[20] = if typo[20] == b'A' { b'B' } else { b'A' };
    let unknown = secureai_domain::api_tokens::models::secret_from(&"A".repeat(43));
    for wrong in [String::from_utf8(typo).unwrap(), "sai_pat_x".to_owned(), unknown] {
        let refused = app.get("/api/v1/users", Some(&wrong)).await;
        assert_error(refused, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }

    // A writing token acts as its owner, and the audit log names it.
    let writer = create(&app, &admin, "HR import", &["users:write", "users:read"]).await;
    let writer_secret = writer["secret"].as_str().unwrap();
    let invited = app.post("/api/v1/users", Some(writer_secret), invite).await;
    assert_eq!(invited.status(), StatusCode::CREATED);
    let events = body(app.get("/api/v1/audit?action=user.invited", Some(&admin)).await).await;
    let event = &events["items"][0];
    assert_eq!(event["actor_email"], secureai_tests::ADMIN_EMAIL);
    assert_eq!(event["actor_token_id"], writer["token"]["id"]);

    // The owner's list: last use to the minute, with the address; never a
    // secret.
    let listed = app.get("/api/v1/me/tokens", Some(&admin)).await;
    let text = listed.text().await.unwrap();
    assert!(!text.contains(&secret) && !text.contains(writer_secret), "{text}");
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let read_token = &listed[1];
    assert_eq!(read_token["last_used_ip"], "127.0.0.1");
    let used = read_token["last_used_at"].as_str().unwrap();
    assert!(used.contains(":00Z") || used.contains(":00+00:00"), "to the minute: {used}");

    // Revoked: refused from the next request on; revoking again is 404.
    let id = read_token["id"].as_str().unwrap();
    let path = format!("/api/v1/me/tokens/{id}");
    assert_eq!(app.delete(&path, &admin).await.status(), StatusCode::NO_CONTENT);
    let revoked = app.get("/api/v1/users", Some(&secret)).await;
    assert_error(revoked, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_error(app.delete(&path, &admin).await, StatusCode::NOT_FOUND, "token_not_found").await;

    // Expired after its days.
    let short = json!({"name": "One day", "scopes": ["audit:read"], "expires_in_days": 1});
    let short = body(app.post("/api/v1/me/tokens", Some(&admin), short).await).await;
    let short_secret = short["secret"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/audit", Some(short_secret)).await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::days(1) + chrono::Duration::seconds(1));
    let expired = app.get("/api/v1/audit", Some(short_secret)).await;
    assert_error(expired, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let admin = app.admin_token().await;
    let listed = body(app.get("/api/v1/me/tokens", Some(&admin)).await).await;
    assert_eq!(listed[0]["status"], "expired");

    // What needs a recent second-factor check is for sessions only, even
    // though this owner has no factor: no weaker security settings, no
    // new admin.
    let strong = create(&app, &admin, "Strong", &["users:write", "settings:write"]).await;
    let strong = strong["secret"].as_str().unwrap().to_owned();
    let weaker = json!({"admin_mfa": "optional", "user_mfa": "off"});
    let refused = app.put("/api/v1/settings/security", Some(&strong), weaker).await;
    assert_error(refused, StatusCode::FORBIDDEN, "session_required").await;
    let new_admin = json!({"email": "eve@example.com", "name": "Eve", "role": "admin"});
    let refused = app.post("/api/v1/users", Some(&strong), new_admin).await;
    assert_error(refused, StatusCode::FORBIDDEN, "session_required").await;
    let seats = app.put("/api/v1/settings/seats", Some(&strong), json!({"limit": 100})).await;
    assert_eq!(seats.status(), StatusCode::OK, "what needs no check, a token may do");
    let strong_id = body(app.get("/api/v1/me/tokens", Some(&admin)).await).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/api/v1/me/tokens/{strong_id}"), &admin).await;
    // Bad requests change nothing.
    for (bad, code) in [
        (json!({"name": " ", "scopes": ["users:read"]}), "invalid_name"),
        (json!({"name": "x", "scopes": ["users:delete"]}), "invalid_scopes"),
    ] {
        let refused = app.post("/api/v1/me/tokens", Some(&admin), bad).await;
        assert_error(refused, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }
    assert_eq!(
        body(app.get("/api/v1/me/tokens", Some(&admin)).await).await.as_array().unwrap().len(),
        4
    );
}

#[tokio::test]
async fn creating_a_token_needs_a_recent_second_factor_check() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let started = body(app.post("/api/v1/me/mfa/totp", Some(&admin), json!({})).await).await;
    let secret = started["secret"].as_str().unwrap().to_owned();
    let code = json!({"code": app.totp_code(&secret, 0)});
    app.post("/api/v1/me/mfa/totp/confirm", Some(&admin), code).await;
    app.clock.advance(chrono::Duration::minutes(11));
    let asked = json!({"name": "Sync", "scopes": ["users:read"]});
    let stale = app.post("/api/v1/me/tokens", Some(&admin), asked.clone()).await;
    assert_error(stale, StatusCode::FORBIDDEN, "mfa_step_up_required").await;
    let check = json!({"method": "totp", "code": app.totp_code(&secret, 0)});
    assert_eq!(
        app.post("/api/v1/auth/step-up", Some(&admin), check).await.status(),
        StatusCode::OK
    );
    let created = app.post("/api/v1/me/tokens", Some(&admin), asked).await;
    assert_eq!(created.status(), StatusCode::CREATED);
}

/// Two instances sharing one database: the owner demoted through the
/// first, their token is refused at the second on the very next request,
/// and stays revoked when they are an admin again; admins list and revoke
/// everyone's tokens.
#[tokio::test]
async fn a_demoted_owners_token_is_refused_at_once_on_another_instance() {
    let key = secureai_store::SecretKey::generate().to_base64();
    let first = TestApp::with_admin_using(|c| c.secret_key = Some(key.clone().into())).await;
    let root = first.admin_token().await;
    let ada = first.active_user(&root, "ada@example.com", "admin", "ada-password-1").await;
    let bob = first.active_user(&root, "bob@example.com", "user", "bob-password-1").await;
    let url = first.database_url.clone();
    let second = TestApp::spawn_with(|c| {
        c.database_url = Some(url.clone());
        c.secret_key = Some(key.clone().into());
    })
    .await;
    let adas = create(&first, &ada, "Reports", &["users:read"]).await;
    let adas_secret = adas["secret"].as_str().unwrap();
    let spare = create(&first, &ada, "Spare", &["audit:read"]).await;
    assert_eq!(second.get("/api/v1/users", Some(adas_secret)).await.status(), StatusCode::OK);

    let all = body(first.get("/api/v1/tokens", Some(&root)).await).await;
    assert_eq!(all[0]["owner_email"], "ada@example.com");
    let forbidden = first.get("/api/v1/tokens", Some(&bob)).await;
    assert_error(forbidden, StatusCode::FORBIDDEN, "forbidden").await;
    let bobs = first
        .post("/api/v1/me/tokens", Some(&bob), json!({"name": "x", "scopes": ["users:read"]}))
        .await;
    assert_error(bobs, StatusCode::FORBIDDEN, "forbidden").await;
    // An admin revokes anyone's — at /tokens, not as their own.
    let spare_id = spare["token"]["id"].as_str().unwrap();
    let not_theirs = first.delete(&format!("/api/v1/me/tokens/{spare_id}"), &root).await;
    assert_error(not_theirs, StatusCode::NOT_FOUND, "token_not_found").await;
    let revoked = first.delete(&format!("/api/v1/tokens/{spare_id}"), &root).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let refused = second.get("/api/v1/audit", Some(spare["secret"].as_str().unwrap())).await;
    assert_error(refused, StatusCode::UNAUTHORIZED, "invalid_token").await;

    let ada_id = first.user_id(&root, "ada@example.com").await;
    let demoted =
        first.patch(&format!("/api/v1/users/{ada_id}"), &root, json!({"role": "user"})).await;
    assert_eq!(demoted.status(), StatusCode::OK);
    let refused = second.get("/api/v1/users", Some(adas_secret)).await;
    assert_error(refused, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let promoted =
        first.patch(&format!("/api/v1/users/{ada_id}"), &root, json!({"role": "admin"})).await;
    assert_eq!(promoted.status(), StatusCode::OK);
    let still = first.get("/api/v1/users", Some(adas_secret)).await;
    assert_error(still, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let all = body(first.get("/api/v1/tokens", Some(&root)).await).await;
    assert!(all.as_array().unwrap().iter().all(|t| t["status"] == "revoked"), "{all}");
    let events = body(first.get("/api/v1/audit?action=api_token.revoked", Some(&root)).await).await;
    let reasons = events["items"].to_string();
    assert!(reasons.contains("owner_lost_access"), "{reasons}");

    // Deactivated: the same, at once.
    let fresh = create(&first, &ada, "After", &["users:read"]).await;
    let fresh_secret = fresh["secret"].as_str().unwrap();
    assert_eq!(second.get("/api/v1/users", Some(fresh_secret)).await.status(), StatusCode::OK);
    let path = format!("/api/v1/users/{ada_id}");
    let deactivated = first.patch(&path, &root, json!({"active": false})).await;
    assert_eq!(deactivated.status(), StatusCode::OK);
    let refused = second.get("/api/v1/users", Some(fresh_secret)).await;
    assert_error(refused, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

/// Settings › API tokens: the form makes a token for the signed-in admin
/// (its secret shown once, only with the page's form token), the list
/// shows everyone's without a secret, Revoke ends one.
#[tokio::test]
async fn the_settings_page_creates_a_token_shown_once_and_revokes_it() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let panel = app.panel_browser().await;
    let page = app.url("/admin/settings/api-tokens");
    let html = panel.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("No API tokens yet."), "{html}");
    let csrf = csrf_of(&html);
    let form = |csrf: &str, days: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("name", "Nightly HR sync".to_owned()),
            ("scopes", "users:read".to_owned()),
            ("scopes", "audit:read".to_owned()),
            ("expires_in_days", days.to_owned()),
        ]
    };
    let forged = panel.post(&page).form(&form("forged", "30")).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let bad = panel.post(&page).form(&form(&csrf, "a year")).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("A token lives 1 to 366 days."));
    let listed = body(app.get("/api/v1/tokens", Some(&admin)).await).await;
    assert_eq!(listed, json!([]), "nothing made");

    let made = panel.post(&page).form(&form(&csrf, "30")).send().await.unwrap();
    assert_eq!(made.status(), StatusCode::OK);
    let html = made.text().await.unwrap();
    let secret =
        html.split("<code id=\"new-token\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("sai_pat_"), "{secret}");
    assert_eq!(app.get("/api/v1/audit", Some(&secret)).await.status(), StatusCode::OK);
    let again = panel.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(!again.contains(&secret), "shown once");
    assert!(again.contains("Nightly HR sync") && again.contains("users:read, audit:read"));
    assert!(again.contains(secureai_tests::ADMIN_EMAIL));

    let id = body(app.get("/api/v1/tokens", Some(&admin)).await).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = app.url(&format!("/admin/settings/api-tokens/{id}/revoke"));
    let revoked = panel.post(&revoke).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert!(revoked.text().await.unwrap().contains("“Nightly HR sync” is revoked"));
    let refused = app.get("/api/v1/audit", Some(&secret)).await;
    assert_error(refused, StatusCode::UNAUTHORIZED, "invalid_token").await;
}
