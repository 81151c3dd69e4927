//! Background work of a running instance, each until told to stop: the
//! outbox worker delivers due mail every poll interval; the webhook
//! worker delivers due webhook deliveries every `webhooks.poll_interval_ms`; the retention task
//! deletes raw usage events past the retention period every hour; the
//! sweep deletes expired rows anonymous requests leave (SSO sign-ins in
//! flight, attempt counts) every `sweep_interval_secs`. A failed
//! round is logged and retried at the next tick.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secureai_domain::UserManagement;
use secureai_domain::mail::service::OutboxDelivery;
use secureai_domain::webhooks::worker::WebhookDelivery;
use tokio::sync::watch;

/// Runs `round` at once and then every `every` until `stop` turns true
/// (a round in progress finishes first).
async fn repeat<F, Fut>(every: Duration, mut stop: watch::Receiver<bool>, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        round().await;
        if *stop.borrow() {
            break;
        }
    }
}

pub(crate) async fn run(
    delivery: Arc<OutboxDelivery>,
    every: Duration,
    stop: watch::Receiver<bool>,
) {
    repeat(every, stop, || async {
        match delivery.deliver_due().await {
            Ok(report) if report.sent + report.retrying + report.failed > 0 => {
                tracing::info!(
                    sent = report.sent,
                    retrying = report.retrying,
                    failed = report.failed,
                    "outbox round"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "outbox round failed; retrying at the next tick"),
        }
    })
    .await;
}

/// Delivers due webhook deliveries; a full round (more may be waiting)
/// is followed by the next at once, up to ten in a row.
pub(crate) async fn webhooks(
    delivery: Arc<WebhookDelivery>,
    every: Duration,
    stop: watch::Receiver<bool>,
) {
    repeat(every, stop, || async {
        for _ in 0..10 {
            match delivery.deliver_due().await {
                Ok(report) if report.attempted() > 0 => {
                    tracing::debug!(
                        delivered = report.delivered,
                        retrying = report.retrying,
                        failed = report.failed,
                        "webhook round"
                    );
                    if report.attempted() < delivery.batch() {
                        break;
                    }
                }
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "webhook round failed; retrying at the next tick");
                    break;
                }
            }
        }
    })
    .await;
}

/// Retention of raw usage events (the daily aggregates stay).
pub(crate) async fn purge_usage(
    service: Arc<UserManagement>,
    every: Duration,
    stop: watch::Receiver<bool>,
) {
    repeat(every, stop, || async {
        match service.analytics.purge_expired_usage().await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "usage events past retention deleted"),
            Err(error) => tracing::warn!(%error, "usage retention failed; retrying later"),
        }
    })
    .await;
}

/// Deletes expired SSO sign-ins in flight, assertion ids and stale sign-in
/// attempt counts (rows anonymous requests create).
pub(crate) async fn sweep(
    service: Arc<UserManagement>,
    every: Duration,
    stop: watch::Receiver<bool>,
) {
    repeat(every, stop, || async {
        match service.housekeeping.sweep_expired().await {
            Ok(report) if report.sso + report.throttles + report.deliveries > 0 => {
                tracing::info!(
                    sso = report.sso,
                    throttles = report.throttles,
                    deliveries = report.deliveries,
                    "expired rows swept"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "sweeping expired rows failed; retrying later"),
        }
    })
    .await;
}
