//! Passkeys with the fake clock and a stand-in protocol
//! (`testing::FakePasskeys`; the real one is tested in
//! `secureai-passkeys` and over HTTP): a passkey enrols a session that may
//! only set up a second factor, signs its user in as the second step, a
//! challenge is answered once, a registration waits five minutes, ten at
//! most, the last required one is replaced after a check, and a passkey
//! confirms a step-up.

use chrono::Duration;
use secureai_domain::mfa::models::MfaMethod;
use secureai_domain::mfa::policy::{AdminMfa, SecurityPolicy, UserMfa};
use secureai_domain::mfa::service::MfaError;
use secureai_domain::sessions::errors::{
    AuthenticateError, SecondFactorError, SignInError, StepUpCheckError,
};
use secureai_domain::testing::{FakePasskeys, TestKit};
use secureai_domain::{AuditAction, Clock, PlainToken};

use crate::kit::{ROOT_EMAIL, ROOT_PASSWORD, audit_of, ctx, detail, pw, with_admin};

/// Registers a passkey with credential `id` through the session `token`.
async fn register(kit: &TestKit, token: &PlainToken, id: &str) -> Result<bool, MfaError> {
    let principal = kit.service.sessions.authenticate_for_enrolment(token).await.unwrap();
    let started = kit.service.mfa.start_passkey_registration(principal.user()).await?;
    let answer = FakePasskeys::answer(&started.options, id);
    let mfa = &kit.service.mfa;
    let added =
        mfa.finish_passkey_registration(&principal, &started.token, id, &answer, &ctx()).await?;
    Ok(added.recovery_codes.is_some())
}

#[tokio::test]
async fn a_passkey_enrols_an_admin_and_then_signs_them_in_as_the_second_step() {
    let (kit, _) = with_admin().await;
    kit.store.state().security_policy = SecurityPolicy::default();
    let sessions = &kit.service.sessions;
    let signed_in = sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    assert!(signed_in.session.enrolment_only);
    assert!(register(&kit, &signed_in.token, "key-1").await.unwrap(), "first: recovery codes");
    assert!(sessions.authenticate(&signed_in.token).await.unwrap().admin().is_ok(), "freed");
    assert!(!register(&kit, &signed_in.token, "key-2").await.unwrap(), "no new codes");
    let enrolled = audit_of(&kit, AuditAction::MfaEnrolled);
    assert_eq!(detail(enrolled.last().unwrap(), "method"), Some("webauthn"));

    let waiting = match sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await {
        Err(SignInError::SecondFactorRequired(needed)) => needed,
        other => panic!("{other:?}"),
    };
    assert_eq!(waiting.methods, vec![MfaMethod::Webauthn, MfaMethod::RecoveryCode]);
    let options = waiting.webauthn.clone().unwrap();
    // Signed by a key that is not hers: refused, and the challenge spent.
    let stranger = FakePasskeys::answer(&options, "key-9");
    let refused =
        sessions.complete_sign_in(&waiting.token, MfaMethod::Webauthn, &stranger, &ctx()).await;
    assert!(matches!(refused, Err(SecondFactorError::WrongCode)), "{refused:?}");
    let right = FakePasskeys::answer(&options, "key-2");
    let spent =
        sessions.complete_sign_in(&waiting.token, MfaMethod::Webauthn, &right, &ctx()).await;
    assert!(matches!(spent, Err(SecondFactorError::WrongCode)), "answered once: {spent:?}");

    let waiting = match sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await {
        Err(SignInError::SecondFactorRequired(needed)) => needed,
        other => panic!("{other:?}"),
    };
    let right = FakePasskeys::answer(waiting.webauthn.as_deref().unwrap(), "key-2");
    let session = sessions
        .complete_sign_in(&waiting.token, MfaMethod::Webauthn, &right, &ctx())
        .await
        .unwrap();
    assert_eq!(session.session.second_factor_at, Some(session.session.created_at));
    let keys = kit.service.mfa.passkeys(&session.user).await.unwrap();
    assert!(keys[1].last_used_at.is_some() && keys[0].last_used_at.is_none(), "{keys:?}");
}

#[tokio::test]
async fn a_registration_waits_five_minutes_and_a_user_has_ten_passkeys_at_most() {
    let (kit, _) = with_admin().await;
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let principal = kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    let mfa = &kit.service.mfa;
    let started = mfa.start_passkey_registration(principal.user()).await.unwrap();
    kit.clock.advance(Duration::minutes(5) + Duration::seconds(1));
    let late = FakePasskeys::answer(&started.options, "key-0");
    let expired =
        mfa.finish_passkey_registration(&principal, &started.token, "Key", &late, &ctx()).await;
    assert!(matches!(expired, Err(MfaError::CeremonyExpired)), "{expired:?}");
    for n in 0..10 {
        register(&kit, &signed_in.token, &format!("key-{n}")).await.unwrap();
    }
    let eleventh = mfa.start_passkey_registration(principal.user()).await;
    assert!(matches!(eleventh, Err(MfaError::TooManyPasskeys)), "{eleventh:?}");
    // Names are checked before anything is spent.
    let keys = mfa.passkeys(principal.user()).await.unwrap();
    let blank = mfa.rename_passkey(principal.user(), keys[0].id, "\u{7}").await;
    assert!(matches!(blank, Err(MfaError::InvalidPasskeyName)), "{blank:?}");
}

#[tokio::test]
async fn the_last_required_passkey_is_replaced_after_a_check_never_just_removed() {
    let (kit, _) = with_admin().await;
    kit.store.state().security_policy =
        SecurityPolicy { admin_mfa: AdminMfa::Required, user_mfa: UserMfa::Off };
    let sessions = &kit.service.sessions;
    let signed_in = sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    register(&kit, &signed_in.token, "key-1").await.unwrap();
    kit.clock.advance(Duration::minutes(11));
    let principal = sessions.authenticate(&signed_in.token).await.unwrap();
    let key = kit.service.mfa.passkeys(principal.user()).await.unwrap().remove(0);
    let refused = kit.service.mfa.remove_passkey(&principal, key.id, &ctx()).await;
    assert!(matches!(refused, Err(MfaError::StepUp(_))), "{refused:?}");
    // Right after a check (here: it was just registered) it goes, and the
    // session can only set up a new one.
    let fresh = sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await;
    let waiting = match fresh {
        Err(SignInError::SecondFactorRequired(needed)) => needed,
        other => panic!("{other:?}"),
    };
    let right = FakePasskeys::answer(waiting.webauthn.as_deref().unwrap(), "key-1");
    let session = sessions
        .complete_sign_in(&waiting.token, MfaMethod::Webauthn, &right, &ctx())
        .await
        .unwrap();
    let principal = sessions.authenticate(&session.token).await.unwrap();
    assert!(kit.service.mfa.remove_passkey(&principal, key.id, &ctx()).await.unwrap());
    let limited = sessions.authenticate(&session.token).await;
    assert!(matches!(limited, Err(AuthenticateError::EnrolmentRequired)), "{limited:?}");
    assert_eq!(kit.service.mfa.status(principal.user()).await.unwrap().recovery_codes_left, 0);
}

#[tokio::test]
async fn a_passkey_confirms_a_step_up_with_its_own_challenge_answered_once() {
    let (kit, _) = with_admin().await;
    let sessions = &kit.service.sessions;
    let signed_in = sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let principal = sessions.authenticate(&signed_in.token).await.unwrap();
    assert!(sessions.step_up_challenge(&principal).await.unwrap().is_none(), "no passkey yet");
    register(&kit, &signed_in.token, "key-1").await.unwrap();
    kit.clock.advance(Duration::minutes(11));
    let principal = sessions.authenticate(&signed_in.token).await.unwrap();

    // A sign-in's challenge is not a step-up's, even for the same user.
    let waiting = match sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await {
        Err(SignInError::SecondFactorRequired(needed)) => needed,
        other => panic!("{other:?}"),
    };
    let signed = FakePasskeys::answer(waiting.webauthn.as_deref().unwrap(), "key-1");
    let crossed = sessions.step_up_with_passkey(&principal, &waiting.token, &signed, &ctx()).await;
    assert!(matches!(crossed, Err(StepUpCheckError::WrongCode)), "{crossed:?}");

    // A stranger's key spends the challenge; the right key then cannot use it.
    let challenge = sessions.step_up_challenge(&principal).await.unwrap().unwrap();
    assert_eq!(challenge.expires_at, kit.clock.now() + Duration::minutes(5));
    let stranger = FakePasskeys::answer(&challenge.options, "key-9");
    let token = &challenge.token;
    let wrong = sessions.step_up_with_passkey(&principal, token, &stranger, &ctx()).await;
    assert!(matches!(wrong, Err(StepUpCheckError::WrongCode)), "{wrong:?}");
    let right = FakePasskeys::answer(&challenge.options, "key-1");
    let spent = sessions.step_up_with_passkey(&principal, token, &right, &ctx()).await;
    assert!(matches!(spent, Err(StepUpCheckError::WrongCode)), "answered once: {spent:?}");

    // A challenge waits five minutes.
    let late = sessions.step_up_challenge(&principal).await.unwrap().unwrap();
    kit.clock.advance(Duration::minutes(5) + Duration::seconds(1));
    let answer = FakePasskeys::answer(&late.options, "key-1");
    let expired = sessions.step_up_with_passkey(&principal, &late.token, &answer, &ctx()).await;
    assert!(matches!(expired, Err(StepUpCheckError::WrongCode)), "{expired:?}");

    let challenge = sessions.step_up_challenge(&principal).await.unwrap().unwrap();
    let right = FakePasskeys::answer(&challenge.options, "key-1");
    let now = kit.clock.now();
    let at = sessions.step_up_with_passkey(&principal, &challenge.token, &right, &ctx()).await;
    assert_eq!(at.unwrap(), now);
    let principal = sessions.authenticate(&signed_in.token).await.unwrap();
    assert_eq!(principal.second_factor_at(), Some(now));
    let verified = audit_of(&kit, AuditAction::MfaVerified);
    let last = verified.last().unwrap();
    assert_eq!(
        (detail(last, "method"), detail(last, "during")),
        (Some("webauthn"), Some("step-up"))
    );
    let failed = audit_of(&kit, AuditAction::MfaFailed);
    assert_eq!(failed.iter().filter(|e| detail(e, "during") == Some("step-up")).count(), 4);
}

#[tokio::test]
async fn changing_ones_factors_needs_a_recent_check_and_a_passkey_left_keeps_the_session() {
    let (kit, _) = with_admin().await;
    kit.store.state().security_policy =
        SecurityPolicy { admin_mfa: AdminMfa::Required, user_mfa: UserMfa::Off };
    let sessions = &kit.service.sessions;
    let mfa = &kit.service.mfa;
    let signed_in = sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    register(&kit, &signed_in.token, "key-1").await.unwrap();
    kit.clock.advance(Duration::minutes(11));
    let stale = sessions.authenticate(&signed_in.token).await.unwrap();

    // A taken session with a stale check cannot add its own factor, nor
    // get recovery codes, nor remove one.
    let refused = register(&kit, &signed_in.token, "key-2").await;
    assert!(matches!(refused, Err(MfaError::StepUp(_))), "{refused:?}");
    let setup = mfa.start_totp(stale.user()).await.unwrap();
    let secret = setup.secret.expose_base32().to_owned();
    let app = mfa.confirm_totp(&stale, &crate::mfa::code(&secret, kit.clock.now()), &ctx()).await;
    assert!(matches!(app, Err(MfaError::StepUp(_))), "{app:?}");
    let codes = mfa.regenerate_recovery_codes(&stale, &ctx()).await;
    assert!(matches!(codes, Err(MfaError::StepUp(_))), "{codes:?}");
    let key = mfa.passkeys(stale.user()).await.unwrap().remove(0);
    let removal = mfa.remove_passkey(&stale, key.id, &ctx()).await;
    assert!(matches!(removal, Err(MfaError::StepUp(_))), "{removal:?}");
    let status = mfa.status(stale.user()).await.unwrap();
    assert_eq!((status.totp, status.passkeys), (false, 1), "nothing changed");

    // Right after a check: an app next to the passkey (no new check time
    // from it), then the app goes while the passkey stays, and the session
    // stays whole.
    let challenge = sessions.step_up_challenge(&stale).await.unwrap().unwrap();
    let answer = FakePasskeys::answer(&challenge.options, "key-1");
    sessions.step_up_with_passkey(&stale, &challenge.token, &answer, &ctx()).await.unwrap();
    let checked = sessions.authenticate(&signed_in.token).await.unwrap();
    let at = checked.second_factor_at();
    kit.clock.advance(Duration::seconds(30));
    let code = crate::mfa::code(&secret, kit.clock.now());
    mfa.confirm_totp(&checked, &code, &ctx()).await.unwrap();
    let after = sessions.authenticate(&signed_in.token).await.unwrap();
    assert_eq!(after.second_factor_at(), at, "adding a factor is not a check");
    assert!(!mfa.remove_totp(&after, &ctx()).await.unwrap(), "a passkey is left");
    assert!(sessions.authenticate(&signed_in.token).await.is_ok(), "the session stays whole");
    let status = mfa.status(after.user()).await.unwrap();
    assert_eq!((status.totp, status.passkeys, status.recovery_codes_left), (false, 1, 10));
}
