//! The outbox worker: delivers due mail every poll interval until told to
//! stop. A failed round is logged and retried at the next tick.

use std::sync::Arc;
use std::time::Duration;

use secureai_domain::UserManagement;
use secureai_domain::mail::service::OutboxDelivery;
use tokio::sync::watch;

pub(crate) async fn run(
    delivery: Arc<OutboxDelivery>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
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
        if *stop.borrow() {
            break;
        }
    }
}

/// Retention of raw usage events: deletes those older than the retention
/// period once at start and then every `every`, until told to stop. The
/// daily aggregates stay.
pub(crate) async fn purge_usage(
    service: Arc<UserManagement>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        match service.purge_expired_usage().await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "usage events past retention deleted"),
            Err(error) => tracing::warn!(%error, "usage retention failed; retrying later"),
        }
        if *stop.borrow() {
            break;
        }
    }
}
