//! Second factors with the fake clock: an authenticator app confirmed by a
//! current code, each time step accepted once within one step of skew,
//! recovery codes once each, and what removal and regeneration void.

use chrono::{DateTime, Duration, Utc};
use secrecy::ExposeSecret;
use secureai_domain::access::Principal;
use secureai_domain::mfa::models::MfaMethod;
use secureai_domain::mfa::service::MfaError;
use secureai_domain::testing::TestKit;
use secureai_domain::{AuditAction, Clock};

use crate::kit::{active_user, audit_of, ctx, detail, pw, sign_in, with_admin};

/// The code an authenticator app shows at `at` (totp-rs, independently of
/// the domain's own use of it).
pub(crate) fn code(secret: &str, at: DateTime<Utc>) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    let app = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    );
    app.generate(u64::try_from(at.timestamp()).unwrap())
}

/// An enrolled user, the app's secret, and their recovery codes.
pub(crate) async fn enrolled(kit: &TestKit, who: &Principal) -> (String, Vec<String>) {
    let setup = kit.service.mfa.start_totp(who.user()).await.unwrap();
    let secret = setup.secret.expose_base32().to_owned();
    let now = kit.clock.now();
    let codes = kit.service.mfa.confirm_totp(who, &code(&secret, now), &ctx()).await.unwrap();
    (secret, codes.iter().map(|c| c.expose_secret().to_owned()).collect())
}

/// Ada signed in again with her app's current code.
pub(crate) async fn with_code(kit: &TestKit, secret: &str) -> Principal {
    let sessions = &kit.service.sessions;
    let waiting = match sessions.sign_in("ada@example.com", &pw("ada-password-1"), &ctx()).await {
        Err(secureai_domain::sessions::errors::SignInError::SecondFactorRequired(w)) => w,
        other => panic!("{other:?}"),
    };
    let now = kit.clock.now();
    let signed_in = sessions
        .complete_sign_in(&waiting.token, MfaMethod::Totp, &code(secret, now), &ctx())
        .await
        .unwrap();
    sessions.authenticate(&signed_in.token).await.unwrap()
}

pub(crate) async fn ada(kit: &TestKit, admin: &secureai_domain::access::Admin) -> Principal {
    active_user(kit, admin, "ada@example.com", "user", "ada-password-1").await;
    sign_in(kit, "ada@example.com", "ada-password-1").await
}

#[tokio::test]
async fn an_app_is_confirmed_by_a_current_code_and_gives_ten_recovery_codes() {
    let (kit, admin) = with_admin().await;
    let ada = ada(&kit, &admin).await;
    let mfa = &kit.service.mfa;
    let setup = mfa.start_totp(ada.user()).await.unwrap();
    let secret = setup.secret.expose_base32().to_owned();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let uri = setup.otpauth_uri.expose_secret();
    assert!(uri.starts_with("otpauth://totp/SecureAI:ada%40example.com?"), "{uri}");
    assert!(!mfa.status(ada.user()).await.unwrap().enrolled(), "pending until confirmed");

    let now = kit.clock.now();
    let wrong = mfa.confirm_totp(&ada, &code(&secret, now - Duration::minutes(5)), &ctx()).await;
    assert!(matches!(wrong, Err(MfaError::WrongCode)), "{wrong:?}");
    let failed = audit_of(&kit, AuditAction::MfaFailed);
    assert_eq!(detail(&failed[0], "during"), Some("enrolment"));

    // Starting again replaces the pending secret: the first one's codes
    // no longer confirm.
    let again = mfa.start_totp(ada.user()).await.unwrap();
    let stale = mfa.confirm_totp(&ada, &code(&secret, now), &ctx()).await;
    assert!(matches!(stale, Err(MfaError::WrongCode)), "{stale:?}");
    let secret = again.secret.expose_base32().to_owned();
    let codes = mfa.confirm_totp(&ada, &code(&secret, now), &ctx()).await.unwrap();
    assert_eq!(codes.len(), 10);
    let mut distinct: Vec<&str> = codes.iter().map(|c| c.expose_secret()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    let status = mfa.status(ada.user()).await.unwrap();
    assert!(status.totp && status.recovery_codes_left == 10, "{status:?}");
    let enrolled = audit_of(&kit, AuditAction::MfaEnrolled);
    assert_eq!(detail(&enrolled[0], "method"), Some("totp"));
    assert!(matches!(mfa.start_totp(ada.user()).await, Err(MfaError::AlreadyEnrolled)));
}

#[tokio::test]
async fn a_code_is_accepted_once_within_one_step_either_side() {
    let (kit, admin) = with_admin().await;
    let ada = ada(&kit, &admin).await;
    let (secret, _) = enrolled(&kit, &ada).await;
    let mfa = &kit.service.mfa;
    let verify = |code: String| {
        let ada = ada.clone();
        async move { mfa.verify(ada.user(), MfaMethod::Totp, &code, &ctx()).await }
    };
    let start = kit.clock.now();
    // The confirming code's step is spent.
    assert!(matches!(verify(code(&secret, start)).await, Err(MfaError::WrongCode)));

    kit.clock.advance(Duration::seconds(30));
    let now = kit.clock.now();
    verify(code(&secret, now)).await.unwrap();
    assert!(matches!(verify(code(&secret, now)).await, Err(MfaError::WrongCode)), "replayed");

    // One step late or early is accepted; two are not.
    kit.clock.advance(Duration::seconds(60));
    let now = kit.clock.now();
    verify(code(&secret, now - Duration::seconds(30))).await.unwrap();
    assert!(matches!(
        verify(code(&secret, now - Duration::seconds(60))).await,
        Err(MfaError::WrongCode)
    ));
    assert!(matches!(
        verify(code(&secret, now + Duration::seconds(60))).await,
        Err(MfaError::WrongCode)
    ));
    verify(code(&secret, now + Duration::seconds(30))).await.unwrap();
    // A code of a step before the last accepted is spent with it.
    assert!(matches!(verify(code(&secret, now)).await, Err(MfaError::WrongCode)));
    for bad in ["", "12345", "abcdef", "1234567"] {
        assert!(matches!(verify(bad.to_owned()).await, Err(MfaError::WrongCode)), "{bad}");
    }
    assert_eq!(audit_of(&kit, AuditAction::MfaVerified).len(), 3);
    assert!(audit_of(&kit, AuditAction::MfaFailed).len() >= 7);
}

#[tokio::test]
async fn recovery_codes_work_once_each_and_a_new_set_or_removal_voids_them() {
    let (kit, admin) = with_admin().await;
    let ada = ada(&kit, &admin).await;
    let (secret, codes) = enrolled(&kit, &ada).await;
    // Changing one's factors needs a recent check: a fresh sign-in with a
    // code gives one.
    kit.clock.advance(chrono::Duration::seconds(30));
    let ada = with_code(&kit, &secret).await;
    let mfa = &kit.service.mfa;
    let recover = |code: String| {
        let ada = ada.clone();
        async move { mfa.verify(ada.user(), MfaMethod::RecoveryCode, &code, &ctx()).await }
    };
    recover(codes[0].clone()).await.unwrap();
    assert!(matches!(recover(codes[0].clone()).await, Err(MfaError::WrongCode)), "used once");
    // As typed from paper: any case, spaces for dashes.
    recover(codes[1].to_uppercase().replace('-', " ")).await.unwrap();
    let used = audit_of(&kit, AuditAction::RecoveryCodeUsed);
    assert_eq!(detail(used.last().unwrap(), "codes_left"), Some("8"));
    assert_eq!(mfa.status(ada.user()).await.unwrap().recovery_codes_left, 8);

    let fresh = mfa.regenerate_recovery_codes(&ada, &ctx()).await.unwrap();
    assert!(matches!(recover(codes[2].clone()).await, Err(MfaError::WrongCode)), "voided");
    recover(fresh[0].expose_secret().to_owned()).await.unwrap();
    assert_eq!(audit_of(&kit, AuditAction::RecoveryCodesRegenerated).len(), 1);

    assert!(!mfa.remove_totp(&ada, &ctx()).await.unwrap(), "not required: removed");
    assert!(!mfa.status(ada.user()).await.unwrap().enrolled());
    assert!(matches!(recover(fresh[1].expose_secret().to_owned()).await, Err(MfaError::WrongCode)));
    let totp = mfa.verify(ada.user(), MfaMethod::Totp, "123456", &ctx()).await;
    assert!(matches!(totp, Err(MfaError::NotEnrolled)), "{totp:?}");
    assert!(matches!(mfa.remove_totp(&ada, &ctx()).await, Err(MfaError::NotEnrolled)));
    assert!(matches!(
        mfa.regenerate_recovery_codes(&ada, &ctx()).await,
        Err(MfaError::NotEnrolled)
    ));
    assert_eq!(audit_of(&kit, AuditAction::MfaRemoved).len(), 1);
}

/// A password sign-in of a user with an authenticator app makes no
/// session: the token it gives completes it once with a current code (or
/// a recovery code), within five minutes; wrong codes leave it waiting and
/// are throttled as wrong passwords are.
#[tokio::test]
async fn with_an_app_a_sign_in_needs_its_code_and_its_token_works_once() {
    use secureai_domain::secrets::PlainToken;
    use secureai_domain::sessions::errors::{SecondFactorError, SignInError};
    let (kit, admin) = with_admin().await;
    let ada = ada(&kit, &admin).await;
    let (secret, recovery) = enrolled(&kit, &ada).await;
    let sessions = &kit.service.sessions;
    let password = crate::kit::pw("ada-password-1");
    let start = || async {
        match sessions.sign_in("ada@example.com", &password, &ctx()).await {
            Err(SignInError::SecondFactorRequired(needed)) => needed,
            other => panic!("expected a second step, got {other:?}"),
        }
    };
    let needed = start().await;
    assert_eq!(needed.methods, vec![MfaMethod::Totp, MfaMethod::RecoveryCode]);
    assert_eq!(
        kit.store.state().sessions.len(),
        2,
        "the admin's and Ada's earlier one: no new session"
    );

    kit.clock.advance(Duration::seconds(30));
    let now = kit.clock.now();
    let wrong = sessions
        .complete_sign_in(
            &needed.token,
            MfaMethod::Totp,
            &code(&secret, now - Duration::minutes(3)),
            &ctx(),
        )
        .await;
    assert!(matches!(wrong, Err(SecondFactorError::WrongCode)), "{wrong:?}");
    let signed_in = sessions
        .complete_sign_in(&needed.token, MfaMethod::Totp, &code(&secret, now), &ctx())
        .await
        .unwrap();
    assert_eq!(signed_in.user.id, ada.user().id);
    let principal = sessions.authenticate(&signed_in.token).await.unwrap();
    assert_eq!(principal.user().id, ada.user().id);
    let replay = sessions
        .complete_sign_in(&needed.token, MfaMethod::Totp, &code(&secret, now), &ctx())
        .await;
    assert!(matches!(replay, Err(SecondFactorError::Expired)), "the token works once");
    let succeeded = audit_of(&kit, AuditAction::SignInSucceeded);
    assert_eq!(detail(succeeded.last().unwrap(), "method"), Some("password+totp"));

    // A recovery code completes one too; a token unknown or too old, none.
    let needed = start().await;
    sessions
        .complete_sign_in(&needed.token, MfaMethod::RecoveryCode, &recovery[3], &ctx())
        .await
        .unwrap();
    let unknown = PlainToken::presented("not-a-token");
    let none = sessions.complete_sign_in(&unknown, MfaMethod::Totp, "123456", &ctx()).await;
    assert!(matches!(none, Err(SecondFactorError::Expired)));
    let needed = start().await;
    kit.clock.advance(Duration::minutes(5) + Duration::seconds(1));
    let late = kit.clock.now();
    let expired = sessions
        .complete_sign_in(&needed.token, MfaMethod::Totp, &code(&secret, late), &ctx())
        .await;
    assert!(matches!(expired, Err(SecondFactorError::Expired)), "{expired:?}");
    let swept = kit.service.housekeeping.sweep_expired().await.unwrap();
    assert!(swept.sso >= 1, "the expired sign-in is swept: {swept:?}");

    // Wrong codes are counted before they are checked: after the free
    // ones, even the right code waits.
    let needed = start().await;
    let mut throttled = false;
    for _ in 0..20 {
        match sessions.complete_sign_in(&needed.token, MfaMethod::Totp, "000000", &ctx()).await {
            Err(SecondFactorError::Throttled { retry_after_secs }) => {
                assert!(retry_after_secs > 0);
                throttled = true;
                break;
            }
            Err(SecondFactorError::WrongCode) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(throttled, "wrong codes are throttled");
    let now = kit.clock.now();
    let waiting = sessions
        .complete_sign_in(&needed.token, MfaMethod::Totp, &code(&secret, now), &ctx())
        .await;
    assert!(matches!(waiting, Err(SecondFactorError::Throttled { .. })), "{waiting:?}");
}
