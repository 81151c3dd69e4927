//! [`ThrottleRepository`](crate::sessions::throttle::ThrottleRepository):
//! counting sign-in attempts.

use chrono::Duration;

use super::fixtures::{audit_of, event, join_all, now};
use crate::audit::models::AuditAction;
use crate::service::Ports;
use crate::sessions::throttle::{AttemptKey, FailureCount, ThrottlePolicy};

fn key(name: &str, free: u32) -> AttemptKey {
    AttemptKey { key: name.to_owned(), free }
}

/// `reserve` admits the free attempts and counts them; the next one gets
/// the time it may come back and is not counted; an attempt blocked under
/// one key is counted under none; `clear` forgets a key.
pub async fn reserve_admits_the_free_attempts_then_answers_a_wait(ports: Ports) {
    let policy = ThrottlePolicy::default();
    let at = now(&ports);
    let account = key("account:ada@example.com", 3);
    let ip = key("ip:192.0.2.1", 20);
    assert_eq!(ports.throttle.failures(&account.key).await.unwrap(), None);
    for _ in 0..3 {
        let wait = ports.throttle.reserve(std::slice::from_ref(&account), at, &policy).await;
        assert_eq!(wait.unwrap(), None);
    }
    let three = FailureCount { failures: 3, last_failure_at: at };
    assert_eq!(ports.throttle.failures(&account.key).await.unwrap(), Some(three));
    let wait = ports.throttle.reserve(std::slice::from_ref(&account), at, &policy).await.unwrap();
    assert_eq!(wait, Some(at + policy.first_delay));
    assert_eq!(ports.throttle.failures(&account.key).await.unwrap(), Some(three));

    let both = [account.clone(), ip.clone()];
    let wait = ports.throttle.reserve(&both, at, &policy).await.unwrap();
    assert_eq!(wait, Some(at + policy.first_delay));
    assert_eq!(ports.throttle.failures(&ip.key).await.unwrap(), None);

    let later = at + policy.first_delay;
    assert_eq!(ports.throttle.reserve(&both, later, &policy).await.unwrap(), None);
    let four = FailureCount { failures: 4, last_failure_at: later };
    assert_eq!(ports.throttle.failures(&account.key).await.unwrap(), Some(four));
    let one = FailureCount { failures: 1, last_failure_at: later };
    assert_eq!(ports.throttle.failures(&ip.key).await.unwrap(), Some(one));

    ports.throttle.clear(&account.key).await.unwrap();
    assert_eq!(ports.throttle.failures(&account.key).await.unwrap(), None);
    assert_eq!(ports.throttle.failures(&ip.key).await.unwrap(), Some(one));
    assert_eq!(ports.throttle.reserve(&both, later, &policy).await.unwrap(), None);
    let restarted = FailureCount { failures: 1, last_failure_at: later };
    assert_eq!(ports.throttle.failures(&account.key).await.unwrap(), Some(restarted));
}

/// Concurrent reservations MUST be serialised per key: of many attempts at
/// once, only the free ones are admitted.
pub async fn concurrent_reservations_admit_only_the_free_ones(ports: Ports) {
    let at = now(&ports);
    let account = key("account:race@example.com", 3);
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let throttle = ports.throttle.clone();
            let keys = [account.clone()];
            async move { throttle.reserve(&keys, at, &ThrottlePolicy::default()).await }
        })
        .collect();
    let outcomes = join_all(attempts).await;
    let admitted = outcomes.iter().filter(|o| matches!(o, Ok(None))).count();
    let waiting = outcomes.iter().filter(|o| matches!(o, Ok(Some(_)))).count();
    assert_eq!((admitted, waiting), (3, 7), "{outcomes:?}");
    let count = ports.throttle.failures(&account.key).await.unwrap().map(|c| c.failures);
    assert_eq!(count, Some(3));
}

/// `release` takes back one attempt, never below zero; `forget_stale`
/// deletes counts last used at or before the cut and counts taken back to
/// zero, and says how many went.
pub async fn release_and_forget_stale(ports: Ports) {
    let policy = ThrottlePolicy::default();
    let at = now(&ports);
    let released = key("ip:192.0.2.2", 20);
    let stale = key("ip:192.0.2.3", 20);
    let fresh = key("ip:192.0.2.4", 20);
    for _ in 0..2 {
        ports.throttle.reserve(std::slice::from_ref(&released), at, &policy).await.unwrap();
    }
    ports.throttle.release(&released.key).await.unwrap();
    let count = ports.throttle.failures(&released.key).await.unwrap().map(|c| c.failures);
    assert_eq!(count, Some(1));
    for _ in 0..2 {
        ports.throttle.release(&released.key).await.unwrap();
    }
    let count = ports.throttle.failures(&released.key).await.unwrap().map_or(0, |c| c.failures);
    assert_eq!(count, 0);
    ports.throttle.release("ip:never-seen").await.unwrap();

    let long_ago = at - Duration::hours(13);
    ports.throttle.reserve(std::slice::from_ref(&stale), long_ago, &policy).await.unwrap();
    ports.throttle.reserve(std::slice::from_ref(&fresh), at, &policy).await.unwrap();
    // A store may drop a count taken back to zero at once, or on the schedule.
    let zero_kept = ports.throttle.failures(&released.key).await.unwrap().is_some();
    let forgotten = ports.throttle.forget_stale(at - Duration::hours(12)).await.unwrap();
    assert_eq!(forgotten, 1 + u64::from(zero_kept));
    assert_eq!(ports.throttle.failures(&stale.key).await.unwrap(), None);
    assert_eq!(ports.throttle.failures(&released.key).await.unwrap(), None);
    let fresh_count = FailureCount { failures: 1, last_failure_at: at };
    assert_eq!(ports.throttle.failures(&fresh.key).await.unwrap(), Some(fresh_count));
}

/// `allow_again` forgets the key's failures and writes its audit event
/// together; other keys keep theirs.
pub async fn allow_again_forgets_the_key_and_writes_the_audit_event(ports: Ports) {
    let policy = ThrottlePolicy::default();
    let at = now(&ports);
    let both = [key("account:ada@example.com", 0), key("ip:192.0.2.1", 20)];
    assert_eq!(ports.throttle.reserve(&both, at, &policy).await.unwrap(), None);
    let mut audit = event(at, AuditAction::SignInAllowed);
    audit.target_email = Some("ada@example.com".into());
    ports.throttle.allow_again("account:ada@example.com", audit.clone()).await.unwrap();
    assert_eq!(ports.throttle.failures("account:ada@example.com").await.unwrap(), None);
    let one = FailureCount { failures: 1, last_failure_at: at };
    assert_eq!(ports.throttle.failures("ip:192.0.2.1").await.unwrap(), Some(one));
    let written = audit_of(&ports, AuditAction::SignInAllowed).await;
    assert_eq!(written.iter().map(|e| e.id).collect::<Vec<_>>(), [audit.id]);
    // Nothing to forget is no error, and still audited.
    let again = event(at, AuditAction::SignInAllowed);
    ports.throttle.allow_again("account:nobody@example.com", again).await.unwrap();
    assert_eq!(audit_of(&ports, AuditAction::SignInAllowed).await.len(), 2);
}
