//! Signing in and out, sessions as cookie or bearer, `GET /me`.

use reqwest::StatusCode;
use secureai_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, audit_change, body};
use serde_json::json;

#[tokio::test]
async fn signing_in_returns_a_token_and_sets_a_strict_session_cookie() {
    let app = TestApp::with_admin().await;

    let response = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ROOT@example.com", "password": ADMIN_PASSWORD}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("secureai_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    // The public URL is plain http://127.0.0.1, so Secure is off.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let body = body(response).await;
    assert!(body["token"].as_str().unwrap().len() >= 43);
    assert_eq!(body["user"]["email"], ADMIN_EMAIL);
    assert_eq!(body["user"]["role"], "admin");
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_url_is_https() {
    let app = TestApp::spawn_with(|c| c.public_url = Some("https://ai.example.com".into())).await;
    app.complete_setup(ADMIN_EMAIL, "Root", ADMIN_PASSWORD).await;

    let response = app
        .post("/api/v1/auth/login", None, json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .await;

    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
    let app = TestApp::with_admin().await;

    let unknown = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": ADMIN_PASSWORD}),
        )
        .await;
    let wrong = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": "not the password"}),
        )
        .await;

    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(unknown.headers().get("set-cookie").is_none());
    assert_eq!(unknown.text().await.unwrap(), wrong.text().await.unwrap());
}

#[tokio::test]
async fn me_answers_with_the_bearer_token_and_with_the_cookie() {
    let app = TestApp::with_admin().await;
    let token = app.admin_token().await;

    let by_bearer = body(app.get("/api/v1/me", Some(&token)).await).await;
    let by_cookie = app
        .http
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("secureai_session={token}"))
        .send()
        .await
        .unwrap();

    assert_eq!(by_bearer["email"], ADMIN_EMAIL);
    assert_eq!(by_bearer["status"], "active");
    let permissions = by_bearer["permissions"].as_array().unwrap();
    assert!(permissions.contains(&json!("manage_users")));
    assert!(permissions.contains(&json!("use_assistant")));
    assert_eq!(by_cookie.status(), StatusCode::OK);
    assert_eq!(body(by_cookie).await["email"], ADMIN_EMAIL);
}

#[tokio::test]
async fn anonymous_requests_get_401_with_a_challenge() {
    let app = TestApp::with_admin().await;

    let response = app.get("/api/v1/me", None).await;

    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"secureai\"");
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let forged = app.get("/api/v1/me", Some("forged-token")).await;
    assert_error(forged, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn signing_out_ends_the_session_at_once() {
    let app = TestApp::with_admin().await;
    let token = app.admin_token().await;

    let response = app.post("/api/v1/auth/logout", Some(&token), json!({})).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_error(
        app.get("/api/v1/me", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn a_cookie_borne_change_from_another_site_is_refused() {
    let app = TestApp::with_admin().await;
    let token = app.admin_token().await;

    let response = app
        .http
        .post(app.url("/api/v1/users"))
        .header("cookie", format!("secureai_session={token}"))
        .header("origin", "https://evil.example")
        .json(&json!({"email": "x@example.com", "name": "X", "role": "admin"}))
        .send()
        .await
        .unwrap();

    assert_error(response, StatusCode::FORBIDDEN, "csrf_rejected").await;
    let same_site = app
        .http
        .post(app.url("/api/v1/users"))
        .header("cookie", format!("secureai_session={token}"))
        .header("origin", app.base.clone())
        .json(&json!({"email": "x@example.com", "name": "X", "role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_session_expires_after_the_idle_timeout() {
    let app = TestApp::with_admin().await;
    let token = app.admin_token().await;

    app.clock.advance(chrono::Duration::minutes(121));

    assert_error(
        app.get("/api/v1/me", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after_and_audited() {
    let app = TestApp::with_admin().await;
    let wrong = json!({"email": ADMIN_EMAIL, "password": "not it"});
    for _ in 0..5 {
        let response = app.post("/api/v1/auth/login", None, wrong.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    let right = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let blocked = app.post("/api/v1/auth/login", None, right.clone()).await;

    assert_eq!(blocked.headers()["retry-after"], "2");
    assert_error(blocked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    app.clock.advance(chrono::Duration::seconds(2));
    let token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let audit = body(app.get("/api/v1/audit?action=sign_in.throttled", Some(&token)).await).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_hundred_concurrent_wrong_passwords_reach_the_password_check_at_most_five_times() {
    let app = TestApp::with_admin().await;
    let wrong = json!({"email": ADMIN_EMAIL, "password": "not it"});

    let attempts = (0..100).map(|_| app.post("/api/v1/auth/login", None, wrong.clone()));
    let answers = futures_util::future::join_all(attempts).await;

    let mut refused = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::UNAUTHORIZED => refused += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let wait: u64 = answer.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=2).contains(&wait), "{wait}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused <= 5, "{refused} attempts reached the password check");
    app.clock.advance(chrono::Duration::seconds(2));
    let token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // Every verification that failed is in the audit log; no more than 5.
    let audit =
        body(app.get("/api/v1/audit?action=sign_in.failed&limit=1000", Some(&token)).await).await;
    let verified = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| audit_change(e, "reason") == Some("wrong_password"))
        .count();
    assert_eq!(verified, refused);
    let throttled =
        body(app.get("/api/v1/audit?action=sign_in.throttled&limit=1000", Some(&token)).await)
            .await;
    assert_eq!(throttled["items"].as_array().unwrap().len(), 100 - refused);
}

#[tokio::test]
async fn sign_ins_beyond_the_hashing_slots_are_told_to_come_back() {
    let app = TestApp::with_admin_using(|config| {
        config.password_hashing.max_concurrent = Some(1);
        config.password_hashing.max_wait_ms = 0;
    })
    .await;

    let attempts = (0..16).map(|i| {
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": format!("nobody{i}@example.com"), "password": "a guess"}),
        )
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut busy = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(answer.headers()["retry-after"], "2");
                assert_error(answer, StatusCode::SERVICE_UNAVAILABLE, "busy").await;
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "one slot and no wait: some of 16 at once must be busy");
    // A busy answer used up nothing: the address still has its free attempts.
    let token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let throttled =
        body(app.get("/api/v1/audit?action=sign_in.throttled", Some(&token)).await).await;
    assert_eq!(throttled["items"].as_array().unwrap().len(), 0);
}

async fn sign_in_from(
    app: &TestApp,
    forwarded_for: &str,
    email: &str,
    password: &str,
) -> StatusCode {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = TestApp::with_admin().await;
    // 20 free failures per address, each claiming another client address.
    for i in 0..20 {
        let status =
            sign_in_from(&app, &format!("203.0.113.{i}"), &format!("a{i}@example.com"), "x").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The claims were not believed: the peer's own address is used up.
    let status = sign_in_from(&app, "198.51.100.77", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(chrono::Duration::seconds(2));
    let token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let audit = body(app.get("/api/v1/audit?action=sign_in.failed", Some(&token)).await).await;
    assert!(audit["items"].as_array().unwrap().iter().all(|e| e["ip"] == "127.0.0.1"));
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_throttled_and_audited_by_its_own_address() {
    let app = TestApp::with_admin_using(|config| {
        config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    // One client behind the proxy uses up its address's free failures
    // (forging a leftmost entry changes nothing: the proxy appended the
    // address it saw).
    for i in 0..20 {
        let status =
            sign_in_from(&app, "1.2.3.4, 203.0.113.9", &format!("a{i}@example.com"), "x").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        sign_in_from(&app, "5.6.7.8, 203.0.113.9", ADMIN_EMAIL, ADMIN_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Everyone else behind the same proxy signs in.
    assert_eq!(
        sign_in_from(&app, "203.0.113.10", ADMIN_EMAIL, ADMIN_PASSWORD).await,
        StatusCode::OK
    );
    let token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let failed = body(app.get("/api/v1/audit?action=sign_in.failed", Some(&token)).await).await;
    let failed = failed["items"].as_array().unwrap();
    assert_eq!(failed.len(), 20);
    assert!(failed.iter().all(|e| e["ip"] == "203.0.113.9"), "{failed:?}");
    let succeeded =
        body(app.get("/api/v1/audit?action=sign_in.succeeded&limit=1", Some(&token)).await).await;
    // The latest sign-in came straight from the proxy's own address.
    assert_eq!(succeeded["items"][0]["ip"], "127.0.0.1");
}

/// The guide's "cannot log in": an admin sees the pause on the user's
/// profile, lifts it (audited), and the user signs in at once; a non-admin
/// cannot lift it.
#[tokio::test]
async fn an_admin_sees_and_lifts_a_sign_in_pause() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let ada = app.active_user(&admin, "ada@example.com", "user", "ada's own password").await;
    let id = app.user_id(&admin, "ada@example.com").await;
    let profile = body(app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await).await;
    assert!(profile["sign_in_paused_until"].is_null(), "{profile}");

    let wrong = json!({"email": "ADA@example.com", "password": "not it"});
    for _ in 0..5 {
        let response = app.post("/api/v1/auth/login", None, wrong.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let right = json!({"email": "ada@example.com", "password": "ada's own password"});
    let blocked = app.post("/api/v1/auth/login", None, right.clone()).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    let profile = body(app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await).await;
    assert!(profile["sign_in_paused_until"].is_string(), "{profile}");

    let url = app.url(&format!("/api/v1/users/{id}/sign-in-pause"));
    let lift = |token: &str| app.http.delete(&url).bearer_auth(token.to_owned()).send();
    assert_error(lift(&ada).await.unwrap(), StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(lift(&admin).await.unwrap().status(), StatusCode::NO_CONTENT);

    let profile = body(app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await).await;
    assert!(profile["sign_in_paused_until"].is_null(), "{profile}");
    assert_eq!(app.post("/api/v1/auth/login", None, right).await.status(), StatusCode::OK);
    let audit = body(app.get("/api/v1/audit?action=sign_in.allowed", Some(&admin)).await).await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["target_id"], id.as_str());
    // Lifting what is not paused is no error; an unknown user is.
    assert_eq!(lift(&admin).await.unwrap().status(), StatusCode::NO_CONTENT);
    let unknown =
        app.http
            .delete(app.url(&format!(
                "/api/v1/users/{}/sign-in-pause",
                secureai_domain::UserId::generate()
            )))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
