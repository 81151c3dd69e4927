//! The running service: the HTTP server, the outbox worker and the
//! housekeeping sweep, started and stopped together.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use poem::listener::{Acceptor, Listener, TcpListener};
use secureai_domain::mail::service::{DeliveryPolicy, OutboxDelivery};
use secureai_domain::service::UserManagement;
use secureai_domain::webhooks::worker::{WebhookDelivery, WebhookDeliveryPolicy};
use secureai_domain::{Clock, PlainToken};
use secureai_http::{AppState, Readiness};
use secureai_store::SqlStore;
use secureai_system::SystemClock;
use tokio::sync::watch;

use crate::wiring::{Wiring, public_url, wire_with_clock};
use crate::{Config, worker};

struct StoreReadiness(SqlStore);

#[async_trait]
impl Readiness for StoreReadiness {
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|_| "unreachable".to_owned())
    }

    async fn migrations(&self) -> Result<(), String> {
        self.0.migrations_ready().await
    }
}

/// The stored state `/metrics` reports, read from the store and the seat
/// limit in force.
struct StoreMetrics {
    store: SqlStore,
    service: Arc<UserManagement>,
    clock: Arc<dyn Clock>,
    /// One scrape reads the database at a time, for 5 s at most; the
    /// others answer the counters and the last gauges: a flood of them (the
    /// endpoint needs no credentials) holds one connection at most.
    one_at_a_time: tokio::sync::Mutex<()>,
}

#[async_trait]
impl secureai_http::MetricsSource for StoreMetrics {
    async fn snapshot(&self) -> Result<secureai_http::Snapshot, String> {
        // A scrape that finds another reading answers without reading.
        let Ok(_turn) = self.one_at_a_time.try_lock() else {
            return Err("another scrape is reading the database".to_owned());
        };
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), self.read());
        read.await.map_err(|_| "the database took longer than 5 s".to_owned())?
    }
}

impl StoreMetrics {
    async fn read(&self) -> Result<secureai_http::Snapshot, String> {
        let state = self.store.stored_state().await.map_err(|e| e.to_string())?;
        let seats_limit = self.service.users.seat_limit().await.map_err(|e| e.to_string())?;
        let now = self.clock.now();
        let backlog = |(waiting, oldest): (u64, Option<chrono::DateTime<chrono::Utc>>)| {
            secureai_telemetry::Backlog {
                waiting,
                oldest: oldest.and_then(|at| (now - at).to_std().ok()).unwrap_or_default(),
            }
        };
        let users = |status: &str| {
            state.users_by_status.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n)
        };
        Ok(secureai_http::Snapshot {
            users_invited: users("invited"),
            users_active: users("active"),
            users_deactivated: users("deactivated"),
            // The domain says which statuses hold a seat.
            seats_used: secureai_domain::users::models::SEAT_HOLDING
                .iter()
                .map(|status| users(status.as_str()))
                .sum(),
            seats_limit: seats_limit.map(u64::from),
            mail_backlog: backlog(state.mail_waiting),
            webhook_backlog: backlog(state.webhooks_waiting),
            pool_in_use: state.pool_in_use,
            pool_idle: state.pool_idle,
            session_lookups: self
                .store
                .gathered_session_lookups()
                .map_or_else(Default::default, |(statements, lookups)| {
                    secureai_telemetry::LookupCounts { statements, lookups }
                }),
        })
    }
}

/// A built application, bound to its port, not yet serving.
pub struct Application {
    acceptor: poem::listener::TcpAcceptor,
    address: SocketAddr,
    /// `/metrics` on a listener of its own, when configured.
    metrics: Option<(poem::listener::TcpAcceptor, SocketAddr)>,
    public_url: String,
    state: AppState,
    delivery: Arc<OutboxDelivery>,
    poll_interval: std::time::Duration,
    webhooks: Arc<WebhookDelivery>,
    webhook_interval: std::time::Duration,
    sweep_interval: std::time::Duration,
    setup_token: Option<PlainToken>,
    wiring: Wiring,
    /// Held while the instance runs: the SQLite database is in use. Last,
    /// so that it is released after everything else is closed.
    _in_use: crate::backup::InUse,
}

impl Application {
    /// Wires everything and binds the listening socket (port 0 picks a free
    /// port, which [`Application::address`] tells).
    ///
    /// # Errors
    /// When configuration, database, mail or the socket cannot be set up.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with another clock (tests move time with a
    /// fake one).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        // Before the database is opened: a restore never replaces it under us.
        let in_use = crate::backup::mark_in_use(config)?;
        let acceptor = TcpListener::bind(config.listen)
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("the listener has no address")?;
        let metrics = match config.metrics_listen.filter(|_| config.metrics_enabled) {
            Some(listen) => {
                let acceptor = TcpListener::bind(listen)
                    .into_acceptor()
                    .await
                    .with_context(|| format!("cannot listen on {listen} (metrics_listen)"))?;
                let address = acceptor
                    .local_addr()
                    .first()
                    .and_then(|a| a.as_socket_addr().copied())
                    .context("the metrics listener has no address")?;
                Some((acceptor, address))
            }
            None => None,
        };
        let public_url = public_url(config, address);
        let wiring = wire_with_clock(config, &public_url, clock.clone()).await?;
        let endpoints = crate::wiring::endpoint_policy(config);
        let webhooks = Arc::new(WebhookDelivery::new(
            Arc::new(wiring.store.clone()),
            Arc::new(secureai_webhooks::HttpWebhookSender::new(endpoints)?),
            clock.clone(),
            WebhookDeliveryPolicy { endpoints, ..WebhookDeliveryPolicy::default() },
        ));
        let delivery = Arc::new(OutboxDelivery::new(
            Arc::new(wiring.store.clone()),
            Arc::new(wiring.store.clone()),
            wiring.mailer.clone(),
            clock.clone(),
            DeliveryPolicy {
                configured: wiring.email.clone(),
                max_attempts: config.mail.max_attempts,
                // At most a day: larger values would only overflow.
                first_retry: chrono::Duration::milliseconds(
                    i64::try_from(config.mail.first_retry_ms.min(86_400_000)).unwrap_or(0),
                ),
                max_retry: chrono::Duration::seconds(
                    i64::try_from(config.mail.max_retry_secs.min(86_400)).unwrap_or(0),
                ),
                ..DeliveryPolicy::default()
            },
        ));
        let state = AppState {
            service: wiring.service.clone(),
            secure_cookies: !public_url.starts_with("http://"),
            public_url: public_url.clone(),
            readiness: Arc::new(StoreReadiness(wiring.store.clone())),
            import_limits: secureai_http::ImportLimits {
                max_bytes: config.import.max_bytes,
                max_rows: config.import.max_rows,
            },
            trusted_proxies: secureai_http::TrustedProxies::new(config.trusted_proxies.clone()),
            sso_begin_limit: Arc::new(secureai_http::PerAddress::per_minute(
                config.sso.begin_per_minute,
            )),
            metrics: config.metrics_enabled.then(|| wiring.metrics.clone()),
            metrics_source: Arc::new(StoreMetrics {
                store: wiring.store.clone(),
                service: wiring.service.clone(),
                clock,
                one_at_a_time: tokio::sync::Mutex::new(()),
            }),
            metrics_here: config.metrics_enabled && metrics.is_none(),
        };
        let setup_token = wiring.service.setup.prepare_setup().await?;
        Ok(Self {
            _in_use: in_use,
            acceptor,
            address,
            metrics,
            public_url,
            state,
            delivery,
            poll_interval: std::time::Duration::from_millis(config.mail.poll_interval_ms),
            webhooks,
            // 10 ms to a minute.
            webhook_interval: std::time::Duration::from_millis(
                config.webhooks.poll_interval_ms.clamp(10, 60_000),
            ),
            // A second to a day: longer would only overflow the timer.
            sweep_interval: std::time::Duration::from_secs(
                config.sweep_interval_secs.clamp(1, 86_400),
            ),
            setup_token,
            wiring,
        })
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The address `/metrics` is served on when it has a listener of its
    /// own (`metrics_listen`).
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, address)| *address)
    }

    /// The public base URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The one-time first-admin link, while no admin exists.
    pub fn setup_link(&self) -> Option<String> {
        self.setup_token.as_ref().map(|t| format!("{}/setup?token={}", self.public_url, t.expose()))
    }

    /// The use cases (for tests and embedding).
    pub fn service(&self) -> Arc<UserManagement> {
        self.wiring.service.clone()
    }

    /// Serves until `shutdown` resolves, then finishes requests in flight
    /// and stops the outbox worker after its current round.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop_rx_for_metrics = stop_rx.clone();
        let worker =
            tokio::spawn(worker::run(self.delivery.clone(), self.poll_interval, stop_rx.clone()));
        let retention = tokio::spawn(worker::purge_usage(
            self.wiring.service.clone(),
            std::time::Duration::from_secs(3600),
            stop_rx.clone(),
        ));
        let hooks = tokio::spawn(worker::webhooks(
            self.webhooks.clone(),
            self.webhook_interval,
            stop_rx.clone(),
        ));
        let sweep =
            tokio::spawn(worker::sweep(self.wiring.service.clone(), self.sweep_interval, stop_rx));
        let scrapes = self.metrics.map(|(acceptor, _)| {
            let app = secureai_http::metrics_app(self.state.clone());
            let mut stopped = stop_rx_for_metrics.clone();
            tokio::spawn(async move {
                poem::Server::new_with_acceptor(acceptor)
                    .run_with_graceful_shutdown(
                        app,
                        async move {
                            let _ = stopped.wait_for(|stop| *stop).await;
                        },
                        Some(std::time::Duration::from_secs(5)),
                    )
                    .await
            })
        });
        let app = secureai_http::app(self.state);
        let served = poem::Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(std::time::Duration::from_secs(20)))
            .await;
        let _ = stop_tx.send(true);
        if let Some(scrapes) = scrapes {
            let _ = scrapes.await;
        }
        let _ = worker.await;
        let _ = retention.await;
        let _ = sweep.await;
        let _ = hooks.await;
        self.wiring.store.close().await?;
        served.context("the HTTP server failed")
    }
}
