//! `/metrics` read back as Prometheus would: fetched, its content type
//! checked, parsed with a Prometheus text-format parser.

use prometheus_parse::{Scrape, Value};

/// GETs `url` and parses the answer.
pub async fn scrape(http: &reqwest::Client, url: &str) -> Scrape {
    let answer = http.get(url).send().await.unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let kind = answer.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = answer.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the sample `name` with these labels (0 when absent: a
/// counter that never moved has no series yet).
pub fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    match found.map(|s| &s.value) {
        None => 0.0,
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(other) => panic!("{name}: {other:?}"),
    }
}
