//! What operators watch, as Prometheus metrics (text format 0.0.4, the
//! Prometheus project's `prometheus-client`): one [`Metrics`] per running
//! instance, no global registry, so that several instances in one process
//! (tests, embedding) never mix their counts.
//!
//! Counters and histograms are recorded as things happen: requests by
//! method, route template and status; sign-ins by method and outcome (the
//! domain's [`Meter`] port); password hashing time; SCIM requests; usage
//! events ingested. Gauges that describe stored state — users by status,
//! seats, outbox backlogs, the database pool — are read from a
//! [`Snapshot`] taken at each scrape.
//!
//! Labels never carry a user id, an email, a raw path or anything else a
//! caller chooses freely: a route is its template (`/api/v1/users/:id`) or
//! `unmatched`, an unknown method is `other`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use secureai_domain::telemetry::{Meter, SignInMethod, SignInOutcome};

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The route label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignInLabels {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScimLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

type SecondsGauge = Gauge<f64, AtomicU64>;

/// Request durations: 1 ms to 10 s.
const REQUEST_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0];

/// Password hashing: argon2id at OWASP's cost takes tens of milliseconds.
const HASH_BUCKETS: [f64; 12] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0];

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

/// Stored state, read at each scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Users by status: invited, active, deactivated.
    pub users_invited: u64,
    /// Active users.
    pub users_active: u64,
    /// Deactivated users.
    pub users_deactivated: u64,
    /// Seats in use (invited and active users).
    pub seats_used: u64,
    /// The seat limit in force; `None` when unlimited.
    pub seats_limit: Option<u64>,
    /// Mail messages waiting to be sent, and how long the oldest has
    /// waited.
    pub mail_backlog: Backlog,
    /// Webhook deliveries waiting, and how long the oldest has waited.
    pub webhook_backlog: Backlog,
    /// Database connections: in use and idle.
    pub pool_in_use: u64,
    /// Idle database connections.
    pub pool_idle: u64,
    /// Statements sent for gathered session lookups since the start, and
    /// the lookups they answered (PostgreSQL and MySQL/MariaDB gather the
    /// lookups of concurrent requests; SQLite reads each on its own: 0).
    pub session_lookups: LookupCounts,
}

/// Gathered session lookups since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupCounts {
    /// Statements sent.
    pub statements: u64,
    /// Lookups answered by them.
    pub lookups: u64,
}

/// Work waiting in an outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    /// How many wait.
    pub waiting: u64,
    /// How long the oldest has waited (zero when none waits).
    pub oldest: Duration,
}

/// The instance's instruments and the registry they are read from.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    sign_ins: Family<SignInLabels, Counter>,
    password_hash: Histogram,
    scim: Family<ScimLabels, Counter>,
    usage_events: Family<OutcomeLabel, Counter>,
    users: Family<StatusLabel, Gauge>,
    seats_used: Gauge,
    seats_limit: Gauge,
    backlog: Family<KindLabel, Gauge>,
    backlog_age: Family<KindLabel, SecondsGauge>,
    pool: Family<StateLabel, Gauge>,
    lookup_statements: Counter,
    lookups_gathered: Counter,
    /// Held while the counters above are brought up to a snapshot's
    /// totals, so that two scrapes at once cannot both add the difference.
    catching_up: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every instrument, registered and at zero.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            request_histogram,
        );
        registry.register(
            "http_server_request_duration_seconds",
            "Duration of HTTP requests, by method, route template and status",
            requests.clone(),
        );
        let sign_ins = Family::<SignInLabels, Counter>::default();
        registry.register(
            "secureai_sign_ins",
            "Sign-in attempts by method (password, second_factor, oidc, saml) and outcome",
            sign_ins.clone(),
        );
        let password_hash = Histogram::new(HASH_BUCKETS);
        registry.register(
            "secureai_password_hash_seconds",
            "Time spent hashing or verifying one password (argon2id), waiting excluded",
            password_hash.clone(),
        );
        let scim = Family::<ScimLabels, Counter>::default();
        registry.register(
            "secureai_scim_requests",
            "SCIM requests by operation and outcome",
            scim.clone(),
        );
        let usage_events = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "secureai_usage_events",
            "Usage events reported by SecureAI services: recorded, duplicate or rejected",
            usage_events.clone(),
        );
        let users = Family::<StatusLabel, Gauge>::default();
        registry.register("secureai_users", "Users by status", users.clone());
        let seats_used = Gauge::default();
        registry.register(
            "secureai_seats_used",
            "Seats in use (invited and active users)",
            seats_used.clone(),
        );
        let seats_limit = Gauge::default();
        registry.register(
            "secureai_seats_limit",
            "The seat limit in force; -1 when unlimited",
            seats_limit.clone(),
        );
        let backlog = Family::<KindLabel, Gauge>::default();
        registry.register(
            "secureai_outbox_waiting",
            "Messages waiting to be delivered, by kind (mail, webhooks)",
            backlog.clone(),
        );
        let backlog_age = Family::<KindLabel, SecondsGauge>::default();
        registry.register(
            "secureai_outbox_oldest_waiting_seconds",
            "How long the oldest waiting message has waited, by kind (0 when none waits)",
            backlog_age.clone(),
        );
        let pool = Family::<StateLabel, Gauge>::default();
        registry.register(
            "secureai_database_connections",
            "Database pool connections by state (in_use, idle)",
            pool.clone(),
        );
        let lookup_statements = Counter::default();
        registry.register(
            "secureai_session_lookup_statements",
            "Statements sent to read gathered session lookups (PostgreSQL, MySQL/MariaDB)",
            lookup_statements.clone(),
        );
        let lookups_gathered = Counter::default();
        registry.register(
            "secureai_session_lookups_gathered",
            "Session lookups answered by gathered statements (PostgreSQL, MySQL/MariaDB)",
            lookups_gathered.clone(),
        );
        Self {
            registry,
            requests,
            sign_ins,
            password_hash,
            scim,
            usage_events,
            users,
            seats_used,
            seats_limit,
            backlog,
            backlog_age,
            pool,
            lookup_statements,
            lookups_gathered,
            catching_up: std::sync::Mutex::new(()),
        }
    }

    /// One answered request. `route` is the matched route's template, or
    /// `None` when no route matched.
    pub fn request(&self, method: &str, route: Option<&str>, status: u16, took: Duration) {
        let route = route.unwrap_or(UNMATCHED_ROUTE);
        let labels =
            RequestLabels { method: known_method(method), route: route.to_owned(), status };
        self.requests.get_or_create(&labels).observe(took.as_secs_f64());
        if let Some(operation) = scim_operation(method, route) {
            let outcome = match status {
                200..=399 => "success",
                400..=499 => "client_error",
                _ => "server_error",
            };
            self.scim.get_or_create(&ScimLabels { operation, outcome }).inc();
        }
    }

    /// One password hashed or verified, taking `took` (slot wait excluded).
    pub fn password_hashed(&self, took: Duration) {
        self.password_hash.observe(took.as_secs_f64());
    }

    /// Usage events ingested in one batch.
    pub fn usage_events(&self, recorded: u64, duplicates: u64, rejected: u64) {
        for (outcome, n) in
            [("recorded", recorded), ("duplicate", duplicates), ("rejected", rejected)]
        {
            if n > 0 {
                self.usage_events.get_or_create(&OutcomeLabel { outcome }).inc_by(n);
            }
        }
    }

    /// The text Prometheus scrapes, with the gauges set from `snapshot`
    /// (`None` leaves them as the last scrape set them).
    #[must_use]
    pub fn render(&self, snapshot: Option<&Snapshot>) -> String {
        if let Some(snapshot) = snapshot {
            self.set_gauges(snapshot);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }

    fn set_gauges(&self, snapshot: &Snapshot) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (status, n) in [
            ("invited", snapshot.users_invited),
            ("active", snapshot.users_active),
            ("deactivated", snapshot.users_deactivated),
        ] {
            self.users.get_or_create(&StatusLabel { status }).set(gauge(n));
        }
        self.seats_used.set(gauge(snapshot.seats_used));
        self.seats_limit.set(snapshot.seats_limit.map_or(-1, gauge));
        for (kind, backlog) in
            [("mail", snapshot.mail_backlog), ("webhooks", snapshot.webhook_backlog)]
        {
            self.backlog.get_or_create(&KindLabel { kind }).set(gauge(backlog.waiting));
            self.backlog_age.get_or_create(&KindLabel { kind }).set(backlog.oldest.as_secs_f64());
        }
        self.pool.get_or_create(&StateLabel { state: "in_use" }).set(gauge(snapshot.pool_in_use));
        self.pool.get_or_create(&StateLabel { state: "idle" }).set(gauge(snapshot.pool_idle));
        // Counters: brought up to the store's running totals.
        let _one_at_a_time = self.catching_up.lock();
        for (counter, total) in [
            (&self.lookup_statements, snapshot.session_lookups.statements),
            (&self.lookups_gathered, snapshot.session_lookups.lookups),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }
}

impl Meter for Metrics {
    fn sign_in(&self, method: SignInMethod, outcome: SignInOutcome) {
        let labels = SignInLabels { method: method.as_str(), outcome: outcome.as_str() };
        self.sign_ins.get_or_create(&labels).inc();
    }
}

/// The method's label: one of the methods HTTP defines, else `other` (a
/// client may send any token as a method).
fn known_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

/// The SCIM operation a request to `route` is (`None` outside SCIM).
fn scim_operation(method: &str, route: &str) -> Option<&'static str> {
    let rest = route.strip_prefix("/scim/v2")?;
    let (resource, item) = match rest {
        "/Users" => ("users", false),
        "/Users/:id" => ("users", true),
        "/Groups" => ("groups", false),
        "/Groups/:id" => ("groups", true),
        "/Users/.search" | "/.search" => return Some("search"),
        "/ServiceProviderConfig"
        | "/ResourceTypes"
        | "/ResourceTypes/:id"
        | "/Schemas"
        | "/Schemas/:id" => return Some("discovery"),
        // No route under the nest matched (or the template was lost).
        _ => return Some("other"),
    };
    Some(match (resource, item, method) {
        ("users", false, "GET") => "users.list",
        ("users", false, "POST") => "users.create",
        ("users", true, "GET") => "users.get",
        ("users", true, "PUT") => "users.replace",
        ("users", true, "PATCH") => "users.patch",
        ("users", true, "DELETE") => "users.delete",
        ("groups", false, "GET") => "groups.list",
        ("groups", false, "POST") => "groups.create",
        ("groups", true, "GET") => "groups.get",
        ("groups", true, "PUT") => "groups.replace",
        ("groups", true, "PATCH") => "groups.patch",
        ("groups", true, "DELETE") => "groups.delete",
        _ => "other",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> prometheus_parse::Scrape {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        match prometheus_parse::Scrape::parse(lines) {
            Ok(scrape) => scrape,
            Err(e) => unreachable!("not Prometheus text: {e}\n{text}"),
        }
    }

    fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
        match sample.map(|s| &s.value) {
            Some(prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v)) => *v,
            Some(prometheus_parse::Value::Untyped(v)) => *v,
            other => unreachable!("{name} {labels:?}: {other:?}"),
        }
    }

    #[test]
    fn counts_render_as_prometheus_text_with_bounded_labels() {
        let metrics = Metrics::new();
        metrics.sign_in(SignInMethod::Password, SignInOutcome::Success);
        metrics.sign_in(SignInMethod::Password, SignInOutcome::Success);
        metrics.sign_in(SignInMethod::Saml, SignInOutcome::Failure);
        metrics.request("GET", Some("/api/v1/users/:user_id"), 200, Duration::from_millis(3));
        metrics.request("BREW", None, 404, Duration::from_millis(1));
        metrics.request("PATCH", Some("/scim/v2/Users/:id"), 200, Duration::from_millis(1));
        metrics.request("POST", Some("/scim/v2/Users"), 409, Duration::from_millis(1));
        metrics.request("GET", Some("/scim/v2"), 404, Duration::from_millis(1));
        metrics.request("GET", Some("/scim/v2/Schemas"), 200, Duration::from_millis(1));
        metrics.usage_events(3, 1, 0);
        metrics.password_hashed(Duration::from_millis(40));
        let text = metrics.render(Some(&Snapshot {
            users_active: 7,
            seats_used: 9,
            seats_limit: None,
            mail_backlog: Backlog { waiting: 2, oldest: Duration::from_secs(90) },
            session_lookups: LookupCounts { statements: 3, lookups: 10 },
            ..Snapshot::default()
        }));
        assert!(text.starts_with("# HELP"), "{text}");
        let scrape = parsed(&text);
        let sign_ins = "secureai_sign_ins_total";
        assert_eq!(
            value(&scrape, sign_ins, &[("method", "password"), ("outcome", "success")]),
            2.0
        );
        assert_eq!(value(&scrape, sign_ins, &[("method", "saml"), ("outcome", "failure")]), 1.0);
        let count = "http_server_request_duration_seconds_count";
        let users = [("method", "GET"), ("route", "/api/v1/users/:user_id"), ("status", "200")];
        assert_eq!(value(&scrape, count, &users), 1.0);
        let brewed = [("method", "other"), ("route", "unmatched"), ("status", "404")];
        assert_eq!(value(&scrape, count, &brewed), 1.0);
        let scim = "secureai_scim_requests_total";
        let patched = [("operation", "users.patch"), ("outcome", "success")];
        assert_eq!(value(&scrape, scim, &patched), 1.0);
        let conflict = [("operation", "users.create"), ("outcome", "client_error")];
        assert_eq!(value(&scrape, scim, &conflict), 1.0);
        let lost = [("operation", "other"), ("outcome", "client_error")];
        assert_eq!(value(&scrape, scim, &lost), 1.0);
        let schemas = [("operation", "discovery"), ("outcome", "success")];
        assert_eq!(value(&scrape, scim, &schemas), 1.0);
        let usage = "secureai_usage_events_total";
        assert_eq!(value(&scrape, usage, &[("outcome", "recorded")]), 3.0);
        assert_eq!(value(&scrape, "secureai_password_hash_seconds_count", &[]), 1.0);
        assert_eq!(value(&scrape, "secureai_users", &[("status", "active")]), 7.0);
        assert_eq!(value(&scrape, "secureai_users", &[("status", "invited")]), 0.0);
        assert_eq!(value(&scrape, "secureai_seats_limit", &[]), -1.0);
        let age = "secureai_outbox_oldest_waiting_seconds";
        assert_eq!(value(&scrape, age, &[("kind", "mail")]), 90.0);
        assert_eq!(value(&scrape, "secureai_outbox_waiting", &[("kind", "webhooks")]), 0.0);
        let statements = "secureai_session_lookup_statements_total";
        assert_eq!(value(&scrape, statements, &[]), 3.0);
        assert_eq!(value(&scrape, "secureai_session_lookups_gathered_total", &[]), 10.0);
        // A later scrape moves the counters to the new totals, not by them.
        let later = Snapshot {
            session_lookups: LookupCounts { statements: 5, lookups: 30 },
            ..Snapshot::default()
        };
        let scrape = parsed(&metrics.render(Some(&later)));
        assert_eq!(value(&scrape, statements, &[]), 5.0);
        assert_eq!(value(&scrape, "secureai_session_lookups_gathered_total", &[]), 30.0);
    }
}
