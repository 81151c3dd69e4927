//! [`MfaRepository`](crate::mfa::ports::MfaRepository): authenticator
//! apps and recovery codes, each step and each code spent once.

use super::fixtures::{active, event, join_all, now};
use crate::audit::models::AuditAction;
use crate::mfa::models::{TotpEnrolment, TotpSecret};
use crate::mfa::ports::ConfirmTotpError;
use crate::secrets::TokenHash;
use crate::service::Ports;
use crate::users::models::{Role, UserId};

fn pending(ports: &Ports, user: UserId, byte: u8, seconds: i64) -> TotpEnrolment {
    TotpEnrolment {
        user_id: user,
        secret: TotpSecret::from_bytes(&[byte; 20]),
        created_at: now(ports) + chrono::Duration::seconds(seconds),
        confirmed_at: None,
        last_step: None,
    }
}

fn codes(seed: u8) -> Vec<TokenHash> {
    (0..10).map(|i| TokenHash::from_bytes([seed.wrapping_add(i); 32])).collect()
}

/// A pending secret MUST read back as written and be replaced by the next
/// one; `confirm_totp` MUST confirm only the pending secret it names,
/// once; a time step MUST be spent once only — of 8 concurrent calls with
/// one step exactly one wins — and never an earlier one; a confirmed app
/// MUST stay when a new secret is begun.
pub async fn a_time_step_is_spent_once(ports: Ports) {
    let ada = active(&ports, "ada@example.com", Role::User).await.id;
    let first = pending(&ports, ada, 1, 0);
    assert!(ports.mfa.begin_totp(&first).await.unwrap());
    assert_eq!(ports.mfa.totp(ada).await.unwrap(), Some(first.clone()));
    assert!(!ports.mfa.accept_totp_step(ada, 100).await.unwrap(), "pending signs nobody in");
    let second = pending(&ports, ada, 2, 1);
    assert!(ports.mfa.begin_totp(&second).await.unwrap());
    assert_eq!(ports.mfa.totp(ada).await.unwrap(), Some(second.clone()));

    let set = codes(0);
    let confirm = |created_at| {
        let audit = event(now(&ports), AuditAction::MfaEnrolled);
        ports.mfa.confirm_totp(ada, created_at, 100, &set, audit)
    };
    let stale = confirm(first.created_at).await;
    assert!(matches!(stale, Err(ConfirmTotpError::NotPending)), "{stale:?}");
    confirm(second.created_at).await.unwrap();
    let again = confirm(second.created_at).await;
    assert!(matches!(again, Err(ConfirmTotpError::NotPending)), "{again:?}");
    let confirmed = ports.mfa.totp(ada).await.unwrap().unwrap();
    assert_eq!((confirmed.secret, confirmed.last_step), (second.secret, Some(100)));
    assert!(confirmed.confirmed_at.is_some());

    assert!(!ports.mfa.accept_totp_step(ada, 100).await.unwrap(), "the confirming code's step");
    assert!(!ports.mfa.accept_totp_step(ada, 99).await.unwrap(), "an earlier step");
    let racing: Vec<_> = (0..8).map(|_| ports.mfa.accept_totp_step(ada, 101)).collect();
    let won = join_all(racing).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1, "one of 8 concurrent uses of a step");
    assert!(!ports.mfa.begin_totp(&pending(&ports, ada, 3, 2)).await.unwrap());
    assert_eq!(ports.mfa.totp(ada).await.unwrap().unwrap().last_step, Some(101));
    let bob = active(&ports, "bob@example.com", Role::User).await.id;
    assert!(!ports.mfa.accept_totp_step(bob, 5).await.unwrap(), "nobody's app");
}

/// A recovery code MUST be used once — of 8 concurrent uses exactly one
/// wins — and only by its user; `replace_recovery_codes` MUST void the
/// earlier set; `remove_totp` with `codes_too` MUST remove the app and the
/// codes, and answer `false` when there is no app.
pub async fn a_recovery_code_is_used_once(ports: Ports) {
    let ada = active(&ports, "ada@example.com", Role::User).await.id;
    let bob = active(&ports, "bob@example.com", Role::User).await.id;
    let app = pending(&ports, ada, 1, 0);
    ports.mfa.begin_totp(&app).await.unwrap();
    let first = codes(0);
    let enrolled = event(now(&ports), AuditAction::MfaEnrolled);
    ports.mfa.confirm_totp(ada, app.created_at, 7, &first, enrolled).await.unwrap();
    assert_eq!(ports.mfa.recovery_codes_left(ada).await.unwrap(), 10);

    let at = now(&ports);
    let racing: Vec<_> = (0..8).map(|_| ports.mfa.use_recovery_code(ada, &first[0], at)).collect();
    let won = join_all(racing).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1, "one of 8 concurrent uses of a code");
    assert_eq!(ports.mfa.recovery_codes_left(ada).await.unwrap(), 9);
    assert!(!ports.mfa.use_recovery_code(bob, &first[1], at).await.unwrap(), "not bob's");

    let regenerated = event(now(&ports), AuditAction::RecoveryCodesRegenerated);
    let second = codes(100);
    ports.mfa.replace_recovery_codes(ada, &second, regenerated).await.unwrap();
    assert!(!ports.mfa.use_recovery_code(ada, &first[1], at).await.unwrap(), "the old set is void");
    assert!(ports.mfa.use_recovery_code(ada, &second[9], at).await.unwrap());
    assert_eq!(ports.mfa.recovery_codes_left(ada).await.unwrap(), 9);

    let removed = event(now(&ports), AuditAction::MfaRemoved);
    assert!(ports.mfa.remove_totp(ada, true, removed.clone(), None).await.unwrap());
    assert_eq!(ports.mfa.totp(ada).await.unwrap(), None);
    assert_eq!(ports.mfa.recovery_codes_left(ada).await.unwrap(), 0);
    assert!(!ports.mfa.remove_totp(ada, true, removed, None).await.unwrap());
}

fn passkey(
    ports: &Ports,
    user: UserId,
    credential_id: &str,
    seconds: i64,
) -> crate::mfa::passkeys::Passkey {
    crate::mfa::passkeys::Passkey {
        id: crate::record_id(),
        user_id: user,
        name: format!("key {credential_id}"),
        credential_id: credential_id.to_owned(),
        credential: format!("{{\"cred_id\": \"{credential_id}\", \"counter\": 0}}"),
        created_at: now(ports) + chrono::Duration::seconds(seconds),
        last_used_at: None,
    }
}

/// Passkeys MUST read back as written, oldest first, per user; a
/// credential id MUST be registered once across all users (of 6
/// concurrent registrations of one, one wins); the first may bring the
/// recovery codes; a use records its time and new state; renaming and
/// removing touch only the user's own; a ceremony MUST be taken once (of 8
/// concurrent takes, one gets it) and expired ones forgotten.
pub async fn passkeys_are_unique_and_a_ceremony_is_taken_once(ports: Ports) {
    use crate::mfa::passkeys::{CeremonyPurpose, PendingCeremony};
    let ada = active(&ports, "ada@example.com", Role::User).await.id;
    let bob = active(&ports, "bob@example.com", Role::User).await.id;
    let first = passkey(&ports, ada, "AAAA", 0);
    let audit = || event(now(&ports), AuditAction::MfaEnrolled);
    assert!(ports.passkeys.add_passkey(&first, Some(codes(7)), audit()).await.unwrap());
    assert_eq!(ports.mfa.recovery_codes_left(ada).await.unwrap(), 10);
    let racing: Vec<_> = (0..6)
        .map(|n| {
            let key = passkey(&ports, bob, "BBBB", 1 + n);
            let passkeys = ports.passkeys.clone();
            let audit = audit();
            async move { passkeys.add_passkey(&key, None, audit).await }
        })
        .collect();
    let won = join_all(racing).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1, "one of 6 concurrent registrations of one credential");
    let taken = passkey(&ports, bob, "AAAA", 9);
    assert!(!ports.passkeys.add_passkey(&taken, None, audit()).await.unwrap(), "Ada's already");
    let second = passkey(&ports, ada, "CCCC", 10);
    assert!(ports.passkeys.add_passkey(&second, None, audit()).await.unwrap());
    let adas = ports.passkeys.passkeys(ada).await.unwrap();
    assert_eq!(adas, vec![first.clone(), second.clone()]);
    assert_eq!(ports.passkeys.passkeys(bob).await.unwrap().len(), 1);

    let used_at = now(&ports) + chrono::Duration::minutes(1);
    let state = "{\"cred_id\": \"AAAA\", \"counter\": 3}".to_owned();
    ports.passkeys.passkey_used(ada, "AAAA", Some(state.clone()), used_at).await.unwrap();
    assert!(ports.passkeys.rename_passkey(ada, first.id, "YubiKey").await.unwrap());
    assert!(!ports.passkeys.rename_passkey(bob, first.id, "Mine").await.unwrap(), "not Bob's");
    let read = ports.passkeys.passkeys(ada).await.unwrap().remove(0);
    assert_eq!(
        (read.name.as_str(), read.credential, read.last_used_at),
        ("YubiKey", state, Some(used_at))
    );
    let removal = || event(now(&ports), AuditAction::MfaRemoved);
    assert!(!ports.passkeys.remove_passkey(bob, first.id, true, removal()).await.unwrap());
    assert!(ports.passkeys.remove_passkey(ada, first.id, false, removal()).await.unwrap());
    assert_eq!(ports.mfa.recovery_codes_left(ada).await.unwrap(), 10, "codes kept");
    assert!(ports.passkeys.remove_passkey(ada, second.id, true, removal()).await.unwrap());
    assert_eq!(ports.mfa.recovery_codes_left(ada).await.unwrap(), 0, "codes gone with the last");

    let key = TokenHash::from_bytes([42; 32]);
    let ceremony = PendingCeremony {
        user_id: ada,
        purpose: CeremonyPurpose::SignIn,
        state: "{\"challenge\": \"x\"}".to_owned(),
        expires_at: now(&ports) + chrono::Duration::minutes(5),
    };
    ports.passkeys.begin_ceremony(&key, &ceremony).await.unwrap();
    let racing: Vec<_> = (0..8).map(|_| ports.passkeys.take_ceremony(&key)).collect();
    let got: Vec<_> = join_all(racing).await.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(got, vec![ceremony.clone()], "one of 8 concurrent takes");
    let old = TokenHash::from_bytes([43; 32]);
    let expired = PendingCeremony {
        expires_at: now(&ports) - chrono::Duration::seconds(1),
        ..ceremony.clone()
    };
    ports.passkeys.begin_ceremony(&old, &expired).await.unwrap();
    assert_eq!(ports.passkeys.forget_expired_ceremonies(now(&ports)).await.unwrap(), 1);
    assert!(ports.passkeys.take_ceremony(&old).await.unwrap().is_none());
    // Each purpose comes back as it went in.
    for (n, purpose) in
        [CeremonyPurpose::Register, CeremonyPurpose::SignIn, CeremonyPurpose::StepUp]
            .into_iter()
            .enumerate()
    {
        let key = TokenHash::from_bytes([50 + u8::try_from(n).unwrap(); 32]);
        let pending = PendingCeremony { purpose, ..expired.clone() };
        ports.passkeys.begin_ceremony(&key, &pending).await.unwrap();
        assert_eq!(ports.passkeys.take_ceremony(&key).await.unwrap(), Some(pending));
    }
}
