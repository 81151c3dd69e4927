//! Every date the service accepts is bounded to years 2000–9999: extreme
//! and random dates fed to every date-taking entry point are answered
//! quickly, never with a panic (500) or a hang.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secureai_tests::{Lcg, TestApp, body};
use serde_json::json;

/// Dates an attacker would try: chrono's limits, signs, years of five
/// digits, the edges of the accepted range, and junk.
const EXTREMES: &[&str] = &[
    "+262142-12-31",
    "-262143-01-01",
    "262142-12-31",
    "0000-01-01",
    "0001-01-01",
    "1999-12-31",
    "2000-01-01",
    "9999-12-31",
    "10000-01-01",
    "9999-12-31T23:59:59Z",
    "+262142-12-31T23:59:59Z",
    "2026-02-30",
    "2026-13-01",
    "",
    "now",
    "99999999999999999999",
];

/// Random days, replayable from the seed.
trait RandomDay {
    fn day(&mut self) -> String;
}

impl RandomDay for Lcg {
    /// A day with a year anywhere in chrono's range (and beyond), in the
    /// accepted shape or not.
    fn day(&mut self) -> String {
        let year = i64::try_from(self.next(600_000)).unwrap() - 300_000;
        let month = self.next(14);
        let day = self.next(33);
        match self.next(3) {
            0 => format!("{year:04}-{month:02}-{day:02}"),
            1 => format!("{:04}-{month:02}-{day:02}", 1990 + self.next(30)),
            _ => format!("{:+}-{month:02}-{day:02}", year),
        }
    }
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Asks, and checks the answer: no 5xx, and quick. A slow answer is asked
/// once more before it counts, so that a busy machine does not fail the
/// run while a loop over the calendar still does.
async fn probe(app: &TestApp, path: &str, cookie: Option<&str>, token: &str) -> StatusCode {
    let mut slowest = Duration::ZERO;
    for _ in 0..2 {
        let mut request = app.http.get(app.url(path)).timeout(Duration::from_secs(10));
        request = match cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request.bearer_auth(token),
        };
        let started = Instant::now();
        let response = request.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status();
        response.bytes().await.unwrap();
        let took = started.elapsed();
        assert!(!status.is_server_error(), "{path} answered {status}");
        if took < Duration::from_millis(100) {
            return status;
        }
        slowest = took;
    }
    panic!("{path} took {slowest:?} twice");
}

#[tokio::test]
async fn extreme_and_random_dates_are_refused_or_answered_quickly_everywhere() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let cookie = format!("secureai_session={admin}");
    let mut random = Lcg(42);
    let mut dates: Vec<String> = EXTREMES.iter().map(|d| (*d).to_owned()).collect();
    dates.extend((0..60).map(|_| random.day()));

    for date in &dates {
        let d = encode(date);
        for path in [
            format!("/api/v1/analytics/dashboard?to={d}"),
            format!("/api/v1/analytics/dashboard?from={d}"),
            format!("/api/v1/analytics/dashboard?from={d}&to={d}"),
            format!("/api/v1/analytics/active-users?period=day&to={d}"),
            format!("/api/v1/analytics/active-users?period=week&to={d}"),
            format!("/api/v1/analytics/active-users?period=month&to={d}"),
            format!("/api/v1/analytics/active-users?period=month&from={d}&to={d}"),
            format!("/api/v1/audit?from={d}"),
            format!("/api/v1/audit?to={d}"),
            format!("/api/v1/audit/export.csv?to={d}"),
        ] {
            probe(&app, &path, None, &admin).await;
        }
        for path in [format!("/admin/audit?to={d}"), format!("/admin/audit?from={d}&to={d}")] {
            probe(&app, &path, Some(&cookie), &admin).await;
        }
    }
}

#[tokio::test]
async fn a_date_outside_2000_to_9999_is_a_400_invalid_date_naming_the_field() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;

    for (path, field) in [
        ("/api/v1/analytics/active-users?period=month&to=%2B262142-12-31", "to"),
        ("/api/v1/analytics/dashboard?to=%2B262142-12-31", "to"),
        ("/api/v1/analytics/dashboard?from=-262143-01-01", "from"),
        ("/api/v1/analytics/dashboard?from=1999-12-31", "from"),
        ("/api/v1/audit?to=%2B262142-12-31T00:00:00Z", "to"),
        ("/api/v1/audit?from=0001-01-01T00:00:00Z", "from"),
        ("/api/v1/audit/export.csv?from=1999-12-31T23:59:59Z", "from"),
    ] {
        let response = app.get(path, Some(&admin)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let error = body(response).await;
        assert_eq!(error["code"], "invalid_date", "{path}");
        assert_eq!(error["field"], field, "{path}");
    }

    // The last accepted day works, with every period.
    for period in ["day", "week", "month"] {
        let response = app
            .get(
                &format!("/api/v1/analytics/active-users?period={period}&to=9999-12-31"),
                Some(&admin),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{period}");
        let points = body(response).await["points"].as_array().unwrap().len();
        assert!((1..=31).contains(&points), "{period}: {points}");
    }
    let page = app
        .http
        .get(app.url("/admin/audit?to=%2B262142-12-31"))
        .header("cookie", format!("secureai_session={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("years 2000 to 9999"));
}

#[tokio::test]
async fn a_usage_event_far_in_the_future_or_past_is_refused_on_its_own() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let created = app.post("/api/v1/service-tokens", Some(&admin), json!({"name": "chat"})).await;
    let secret = body(created).await["secret"].as_str().unwrap().to_owned();
    let me =
        body(app.get("/api/v1/me", Some(&admin)).await).await["id"].as_str().unwrap().to_owned();

    let events: Vec<_> =
        ["+262142-12-31T00:00:00Z", "-262143-01-01T00:00:00Z", "0000-01-01T00:00:00Z"]
            .iter()
            .enumerate()
            .map(|(i, at)| {
                json!({"event_id": format!("e{i}"), "user_id": me, "conversation_id": "c",
                   "model": "gpt", "provider": "openai", "input_tokens": 1,
                   "output_tokens": 1, "occurred_at": at})
            })
            .collect();
    let response = app.post("/api/v1/usage-events", Some(&secret), json!({"events": events})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let report = body(response).await;
    assert_eq!(report["accepted"], 0);
    let codes: Vec<_> =
        report["rejected"].as_array().unwrap().iter().map(|r| r["code"].clone()).collect();
    assert_eq!(codes, vec![json!("invalid_time"); 3]);
}
