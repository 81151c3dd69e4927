//! Single sign-on through a real SAML identity provider (npm `saml-idp`,
//! started per test on loopback with a fresh key): the SP-initiated flow,
//! and each forged, foreign, stale or replayed response refused with its
//! reason audited.

use reqwest::StatusCode;
use secureai_tests::oidc::{browser, location};
use secureai_tests::saml::{SamlPeer, SamlPeerOptions, SamlPost, key_pair, sign_in_at_idp};
use secureai_tests::{TestApp, assert_error, audit_change, body, sign_in_refusal};
use serde_json::{Value, json};

fn peer_for(app: &TestApp) -> SamlPeer {
    SamlPeer::start(&SamlPeerOptions {
        acs_url: &app.url("/auth/saml/acs"),
        audience: &app.url("/auth/saml/metadata"),
        clock_shift_ms: 0,
    })
}

async fn configure(app: &TestApp, admin: &str, saml: Value) -> reqwest::Response {
    app.put("/api/v1/settings/sso", Some(admin), json!({"mode": "saml", "saml": saml})).await
}

/// An app with its first admin and an invited Ada, and an IdP configured
/// through its metadata URL.
async fn with_saml(peer: impl FnOnce(&TestApp) -> SamlPeer) -> (TestApp, SamlPeer, String) {
    let app = TestApp::with_admin().await;
    let idp = peer(&app);
    let admin = app.admin_token().await;
    let response =
        configure(&app, &admin, json!({"idp_metadata_url": format!("{}/metadata", idp.base)}))
            .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    let invited = app.invite(&admin, "ada@example.com", "user").await;
    assert_eq!(invited["sign_in_method"], "sso");
    (app, idp, admin)
}

/// Starts a sign-in at our server and signs in at the IdP as `email`.
async fn response_for(app: &TestApp, browser: &reqwest::Client, email: &str) -> SamlPost {
    let start = browser.get(app.url("/auth/saml/login")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let sso = location(&start);
    assert!(sso.contains("SAMLRequest=") && sso.contains("RelayState="), "{sso}");
    let post = sign_in_at_idp(browser, &sso, email).await;
    assert_eq!(post.action, app.url("/auth/saml/acs"));
    post
}

async fn assert_refused(
    app: &TestApp,
    admin: &str,
    browser: &reqwest::Client,
    post: &SamlPost,
    reason: &str,
) {
    let answer = post.send(browser).await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let me = browser.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let event = sign_in_refusal(app, admin, reason).await;
    assert_eq!(audit_change(&event, "method"), Some("saml"));
}

/// Removes every XML signature element.
fn unsigned(xml: &str) -> String {
    let mut out = xml.to_owned();
    while let Some(start) = out.find("<Signature").or_else(|| out.find("<ds:Signature")) {
        let (close, len) = match out[start..].find("</Signature>") {
            Some(i) => (i, "</Signature>".len()),
            None => (out[start..].find("</ds:Signature>").unwrap(), "</ds:Signature>".len()),
        };
        out.replace_range(start..start + close + len, "");
    }
    out
}

#[tokio::test]
async fn an_invited_user_signs_in_through_the_saml_idp_and_is_activated() {
    let (app, _idp, admin) = with_saml(peer_for).await;
    let browser = browser();
    let post = response_for(&app, &browser, "ada@example.com").await;
    let answer = post.send(&browser).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&answer), app.url("/"));
    let me = body(browser.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["status"], "active");
    let succeeded =
        body(app.get("/api/v1/audit?action=sign_in.succeeded", Some(&admin)).await).await;
    let ada = succeeded["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target_email"] == "ada@example.com")
        .cloned()
        .unwrap();
    assert_eq!(audit_change(&ada, "method"), Some("saml"));

    // Our SP metadata names our entity id and assertion consumer service.
    let metadata = app.http.get(app.url("/auth/saml/metadata")).send().await.unwrap();
    assert_eq!(metadata.status(), StatusCode::OK);
    let xml = metadata.text().await.unwrap();
    assert!(
        xml.contains(&app.url("/auth/saml/metadata")) && xml.contains(&app.url("/auth/saml/acs")),
        "{xml}"
    );
}

#[tokio::test]
async fn a_response_with_a_changed_name_id_is_refused() {
    let (app, _idp, admin) = with_saml(peer_for).await;
    app.invite(&admin, "mallory@example.com", "admin").await;
    let browser = browser();
    let post = response_for(&app, &browser, "ada@example.com").await;
    let forged = post.with_xml(&post.xml().replace("ada@example.com", "mallory@example.com"));
    assert_refused(&app, &admin, &browser, &forged, "signature_invalid").await;
}

#[tokio::test]
async fn an_unsigned_response_is_refused() {
    let (app, _idp, admin) = with_saml(peer_for).await;
    let browser = browser();
    let post = response_for(&app, &browser, "ada@example.com").await;
    let xml = post.xml();
    let stripped = unsigned(&xml);
    assert!(stripped.len() < xml.len() && !stripped.contains("SignatureValue"));
    assert_refused(&app, &admin, &browser, &post.with_xml(&stripped), "signature_invalid").await;
}

#[tokio::test]
async fn a_response_signed_by_another_key_is_refused() {
    let app = TestApp::with_admin().await;
    let idp = peer_for(&app);
    let admin = app.admin_token().await;
    // The metadata we trust carries another certificate than the IdP signs with.
    let other = key_pair(idp.dir.path(), "other");
    let metadata = idp.metadata().await.replace(&idp.keys.cert_base64, &other.cert_base64);
    assert!(metadata.contains(&other.cert_base64));
    let response = configure(&app, &admin, json!({"idp_metadata_xml": metadata})).await;
    assert_eq!(response.status(), StatusCode::OK);
    app.invite(&admin, "ada@example.com", "user").await;
    let browser = browser();
    let post = response_for(&app, &browser, "ada@example.com").await;
    assert_refused(&app, &admin, &browser, &post, "signature_invalid").await;
}

#[tokio::test]
async fn a_response_for_another_audience_is_refused() {
    let (app, _idp, admin) = with_saml(|app| {
        SamlPeer::start(&SamlPeerOptions {
            acs_url: &app.url("/auth/saml/acs"),
            audience: "https://another-service.example.com/saml",
            clock_shift_ms: 0,
        })
    })
    .await;
    let browser = browser();
    let post = response_for(&app, &browser, "ada@example.com").await;
    assert_refused(&app, &admin, &browser, &post, "audience_mismatch").await;
}

#[tokio::test]
async fn an_expired_response_is_refused() {
    let (app, _idp, admin) = with_saml(|app| {
        SamlPeer::start(&SamlPeerOptions {
            acs_url: &app.url("/auth/saml/acs"),
            audience: &app.url("/auth/saml/metadata"),
            clock_shift_ms: -2 * 60 * 60 * 1000,
        })
    })
    .await;
    let browser = browser();
    let post = response_for(&app, &browser, "ada@example.com").await;
    assert_refused(&app, &admin, &browser, &post, "assertion_expired").await;
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let (app, idp, admin) = with_saml(peer_for).await;
    // Accept IdP-initiated responses, so that only the assertion id can
    // tell the replay.
    let response = configure(
        &app,
        &admin,
        json!({"idp_metadata_url": format!("{}/metadata", idp.base), "allow_idp_initiated": true}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let browser = browser();
    let post = response_for(&app, &browser, "ada@example.com").await;
    assert_eq!(post.send(&browser).await.status(), StatusCode::SEE_OTHER);
    let thief = secureai_tests::oidc::browser();
    let replay = SamlPost { relay_state: String::new(), ..post };
    assert_refused(&app, &admin, &thief, &replay, "assertion_replayed").await;
}

#[tokio::test]
async fn an_unsolicited_response_is_refused_while_idp_initiated_sign_in_is_off() {
    let (app, _idp, admin) = with_saml(peer_for).await;
    let browser = browser();
    let post = response_for(&app, &browser, "ada@example.com").await;
    // Unsolicited: posted by a browser that started no sign-in here.
    let unsolicited = SamlPost { relay_state: String::new(), ..post };
    let elsewhere = secureai_tests::oidc::browser();
    assert_refused(&app, &admin, &elsewhere, &unsolicited, "no_login_in_progress").await;
}

#[tokio::test]
async fn idp_metadata_without_a_signing_certificate_is_refused_at_configuration() {
    let app = TestApp::with_admin().await;
    let idp = peer_for(&app);
    let admin = app.admin_token().await;
    let metadata = idp.metadata().await;
    let start = metadata.find("<KeyDescriptor").unwrap();
    let end = metadata.find("</KeyDescriptor>").unwrap() + "</KeyDescriptor>".len();
    let without = format!("{}{}", &metadata[..start], &metadata[end..]);
    let response = configure(&app, &admin, json!({"idp_metadata_xml": without})).await;
    let error =
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_idp_metadata_xml").await;
    assert!(error["message"].as_str().unwrap().contains("no signing certificate"), "{error}");
    let settings = body(app.get("/api/v1/settings/sso", Some(&admin)).await).await;
    assert_eq!(settings["mode"], "none", "nothing was saved");

    let garbage = configure(&app, &admin, json!({"idp_metadata_xml": "<not-metadata/>"})).await;
    assert_error(garbage, StatusCode::UNPROCESSABLE_ENTITY, "invalid_idp_metadata_xml").await;
}

#[tokio::test]
async fn saml_configured_in_the_configuration_file_signs_users_in() {
    // The IdP takes our ACS URL from each request, so it can start first.
    let idp = SamlPeer::start(&SamlPeerOptions {
        acs_url: "http://127.0.0.1:1/not-used",
        audience: "urn:secureai:test-sp",
        clock_shift_ms: 0,
    });
    let metadata_file = idp.dir.path().join("idp-metadata.xml");
    std::fs::write(&metadata_file, idp.metadata().await).unwrap();
    let app = TestApp::with_admin_using(|config| {
        config.sso.mode = "saml".into();
        config.sso.idp_metadata_file = Some(metadata_file.clone());
        config.sso.sp_entity_id = Some("urn:secureai:test-sp".into());
    })
    .await;
    let admin = app.admin_token().await;
    let settings = body(app.get("/api/v1/settings/sso", Some(&admin)).await).await;
    assert_eq!(settings["mode"], "saml");
    assert_eq!(settings["source"], "configuration");
    assert_eq!(settings["saml"]["sp_entity_id"], "urn:secureai:test-sp");
    app.invite(&admin, "ada@example.com", "user").await;
    let browser = browser();
    let post = response_for(&app, &browser, "ada@example.com").await;
    assert_eq!(post.send(&browser).await.status(), StatusCode::SEE_OTHER);
    let me = browser.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_answer_posted_from_another_browser_is_refused_and_the_first_browser_signs_in() {
    // Login CSRF: someone who holds a valid response (their own, with its
    // relay state) posts it from a browser that did not start the sign-in.
    let (app, _idp, admin) = with_saml(peer_for).await;
    let first = browser();
    let post = response_for(&app, &first, "ada@example.com").await;
    let second = browser();

    assert_refused(&app, &admin, &second, &post, "no_login_in_progress").await;

    // The browser that started the sign-in still completes it.
    let answer = post.send(&first).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let me = body(first.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    assert_eq!(me["email"], "ada@example.com");
}

#[tokio::test]
async fn the_saml_binding_cookie_is_none_and_secure_under_https_and_lax_over_http() {
    let (app, _idp, _admin) = with_saml(peer_for).await;
    let start = browser().get(app.url("/auth/saml/login")).send().await.unwrap();
    let cookie = start.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("secureai_sso="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");

    // Under https the IdP's cross-site POST must carry it: SameSite=None.
    let secure =
        TestApp::spawn_with(|c| c.public_url = Some("https://ai.example.com".into())).await;
    secure.complete_setup("root@example.com", "Root", secureai_tests::ADMIN_PASSWORD).await;
    secure.make_second_factors_optional().await;
    let admin = secure.admin_token().await;
    let idp = peer_for(&secure);
    let saved =
        configure(&secure, &admin, json!({"idp_metadata_url": format!("{}/metadata", idp.base)}))
            .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let start = browser().get(secure.url("/auth/saml/login")).send().await.unwrap();
    let cookie = start.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("SameSite=None") && cookie.contains("Secure"), "{cookie}");
}
