//! Rows anonymous requests create are bounded: SSO sign-ins begun are
//! rate-limited per client address, and expired ones (and stale sign-in
//! attempt counts) are swept on a schedule.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secureai_tests::TestApp;
use secureai_tests::saml::{SamlPeer, SamlPeerOptions};
use serde_json::json;

async fn saml_app(adjust: impl FnOnce(&mut secureai_app::Config)) -> (TestApp, SamlPeer) {
    let app = TestApp::with_admin_using(adjust).await;
    let idp = SamlPeer::start(&SamlPeerOptions {
        acs_url: &app.url("/auth/saml/acs"),
        audience: &app.url("/auth/saml/metadata"),
        clock_shift_ms: 0,
    });
    let admin = app.admin_token().await;
    let saved = app
        .put(
            "/api/v1/settings/sso",
            Some(&admin),
            json!({"mode": "saml", "saml": {"idp_metadata_url": format!("{}/metadata", idp.base)}}),
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    (app, idp)
}

/// Anonymous, and not following the redirect to the IdP.
fn anonymous() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn begin(app: &TestApp, from: Option<&str>) -> reqwest::Response {
    begin_with(&anonymous(), app, from).await
}

async fn begin_with(
    client: &reqwest::Client,
    app: &TestApp,
    from: Option<&str>,
) -> reqwest::Response {
    let mut request = client.get(app.url("/auth/saml/login"));
    if let Some(address) = from {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

/// Waits (up to 10 s) until `table` holds `n` rows.
async fn until_rows(app: &TestApp, table: &str, n: i64) {
    let started = Instant::now();
    loop {
        let rows = app.rows(table).await;
        if rows == n {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{table}: {rows} rows, not {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ten_thousand_anonymous_sign_ins_begun_are_swept_once_expired() {
    let (app, _idp) = saml_app(|config| {
        config.sso.begin_per_minute = 1_000_000;
        config.sweep_interval_secs = 1;
    })
    .await;

    let mut begun = 0;
    let client = anonymous();
    for _ in 0..(10_000 / 50) {
        let batch = (0..50).map(|_| begin_with(&client, &app, None));
        for answer in futures_util::future::join_all(batch).await {
            assert_eq!(answer.status(), StatusCode::SEE_OTHER);
            begun += 1;
        }
    }
    assert_eq!(begun, 10_000);
    assert_eq!(app.rows("sso_logins").await, 10_000);
    // Also attempt counts for emails nobody has.
    for i in 0..10 {
        let answer = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": format!("n{i}@x.example"), "password": "guess"}),
            )
            .await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }

    // Ten minutes on, they have expired; three sign-ins begun now are live.
    app.clock.advance(chrono::Duration::minutes(11));
    for _ in 0..3 {
        assert_eq!(begin(&app, None).await.status(), StatusCode::SEE_OTHER);
    }
    until_rows(&app, "sso_logins", 3).await;
    // Attempt counts stay while they still throttle, and go after the window.
    assert!(app.rows("throttles").await >= 10);
    app.clock.advance(chrono::Duration::hours(12));
    until_rows(&app, "throttles", 0).await;
}

#[tokio::test]
async fn one_address_may_begin_only_so_many_sign_ins_a_minute() {
    let (app, _idp) = saml_app(|config| {
        config.sso.begin_per_minute = 5;
        config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for _ in 0..5 {
        assert_eq!(begin(&app, Some("203.0.113.5")).await.status(), StatusCode::SEE_OTHER);
    }
    let refused = begin(&app, Some("203.0.113.5")).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(refused.text().await.unwrap().contains("Too many single sign-ins"));
    // Another address is not held back; nothing was stored for the refusal.
    assert_eq!(begin(&app, Some("203.0.113.6")).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.rows("sso_logins").await, 6);
}
