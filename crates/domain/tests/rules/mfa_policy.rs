//! Settings › Security with the fake clock: admins need a second factor by
//! default, so a password admin without one gets a session that can only
//! set one up; a promoted user sets one up at their next sign-in; users are
//! not offered one unless the policy says so; a required factor can be
//! replaced, not removed; policy changes are audited.

use secureai_domain::access::Principal;
use secureai_domain::mail::models::MailMessage;
use secureai_domain::mfa::policy::{AdminMfa, SecurityPolicy, UserMfa};
use secureai_domain::mfa::service::{MfaError, ResetMfaError};
use secureai_domain::sessions::errors::AuthenticateError;
use secureai_domain::testing::TestKit;
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::{AuditAction, Clock, PlainToken};

use crate::kit::{ROOT_EMAIL, ROOT_PASSWORD, active_user, audit_of, ctx, detail, pw, with_admin};
use crate::mfa::code;

/// Signs in with a password; the session's token and whether it may only
/// set up a second factor.
async fn password_sign_in(kit: &TestKit, email: &str, password: &str) -> (PlainToken, bool) {
    let signed_in = kit.service.sessions.sign_in(email, &pw(password), &ctx()).await.unwrap();
    (signed_in.token, signed_in.session.enrolment_only)
}

/// Sets up an authenticator app: its recovery codes.
async fn enrol(kit: &TestKit, principal: &Principal) -> Vec<String> {
    let setup = kit.service.mfa.start_totp(principal.user()).await.unwrap();
    let secret = setup.secret.expose_base32().to_owned();
    let now = kit.clock.now();
    let codes = kit.service.mfa.confirm_totp(principal, &code(&secret, now), &ctx()).await;
    codes.unwrap().iter().map(|c| secrecy::ExposeSecret::expose_secret(c).to_owned()).collect()
}

fn set_policy(kit: &TestKit, admin_mfa: AdminMfa, user_mfa: UserMfa) {
    kit.store.state().security_policy = SecurityPolicy { admin_mfa, user_mfa };
}

#[tokio::test]
async fn an_admin_without_a_second_factor_can_only_set_one_up_then_everything() {
    let (kit, _) = with_admin().await;
    set_policy(&kit, AdminMfa::Required, UserMfa::Off);
    let (token, enrolment_only) = password_sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await;
    assert!(enrolment_only);
    let sessions = &kit.service.sessions;
    let refused = sessions.authenticate(&token).await;
    assert!(matches!(refused, Err(AuthenticateError::EnrolmentRequired)), "{refused:?}");
    let enrolling = sessions.authenticate_for_enrolment(&token).await.unwrap();
    assert!(enrolling.enrolment_only());
    assert!(enrolling.admin().is_err(), "no admin capability before the second factor");
    let signed_in = audit_of(&kit, AuditAction::SignInSucceeded);
    let last = signed_in.last().unwrap();
    assert_eq!(detail(last, "session"), Some("second factor setup only"));

    // The confirmation frees this very session.
    enrol(&kit, &enrolling).await;
    let principal = sessions.authenticate(&token).await.unwrap();
    assert!(!principal.enrolment_only());
    assert_eq!(principal.second_factor_at(), Some(kit.clock.now()));
    assert!(principal.admin().is_ok());
}

#[tokio::test]
async fn a_required_app_is_replaced_right_after_a_check_never_just_removed() {
    let (kit, _) = with_admin().await;
    set_policy(&kit, AdminMfa::Required, UserMfa::Off);
    let (token, _) = password_sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await;
    let sessions = &kit.service.sessions;
    let codes = enrol(&kit, &sessions.authenticate_for_enrolment(&token).await.unwrap()).await;
    // Eleven minutes after the last check: a new phone needs a check first.
    kit.clock.advance(chrono::Duration::minutes(11));
    let principal = sessions.authenticate(&token).await.unwrap();
    let removed = kit.service.mfa.remove_totp(&principal, &ctx()).await;
    assert!(matches!(removed, Err(MfaError::StepUp(_))), "{removed:?}");
    assert!(kit.service.mfa.status(principal.user()).await.unwrap().enrolled());
    // A recovery code (the old phone is lost) checks it; the app goes and
    // the session can only set up the new one.
    let recovery = codes[0].clone();
    let method = secureai_domain::mfa::models::MfaMethod::RecoveryCode;
    sessions.step_up(&principal, method, &recovery, &ctx()).await.unwrap();
    let principal = sessions.authenticate(&token).await.unwrap();
    assert!(kit.service.mfa.remove_totp(&principal, &ctx()).await.unwrap(), "replacing");
    let refused = sessions.authenticate(&token).await;
    assert!(matches!(refused, Err(AuthenticateError::EnrolmentRequired)), "{refused:?}");
    let enrolling = sessions.authenticate_for_enrolment(&token).await.unwrap();
    assert!(enrolling.admin().is_err());
    enrol(&kit, &enrolling).await;
    assert!(sessions.authenticate(&token).await.unwrap().admin().is_ok());
    let removed = audit_of(&kit, AuditAction::MfaRemoved);
    assert_eq!(detail(removed.last().unwrap(), "replacing"), Some("yes"));
}

#[tokio::test]
async fn a_user_promoted_to_admin_sets_up_a_second_factor_at_their_next_sign_in() {
    let (kit, admin) = with_admin().await;
    set_policy(&kit, AdminMfa::Required, UserMfa::Off);
    let id = active_user(&kit, &admin, "ada@example.com", "user", "ada-password-1").await;
    let (before, enrolment_only) =
        password_sign_in(&kit, "ada@example.com", "ada-password-1").await;
    assert!(!enrolment_only, "users need none by default");
    let promote = UserUpdate { role: Some("admin".into()), ..UserUpdate::default() };
    kit.service.users.update_user(&admin, id, &promote, &ctx()).await.unwrap();
    // The session she has keeps working (the role applies at once, rule
    // 7); the requirement applies at the next sign-in.
    assert!(kit.service.sessions.authenticate(&before).await.unwrap().admin().is_ok());
    let (_, enrolment_only) = password_sign_in(&kit, "ada@example.com", "ada-password-1").await;
    assert!(enrolment_only);
}

#[tokio::test]
async fn users_are_offered_a_second_factor_only_when_the_policy_says_so() {
    let (kit, admin) = with_admin().await;
    active_user(&kit, &admin, "ada@example.com", "user", "ada-password-1").await;
    set_policy(&kit, AdminMfa::Required, UserMfa::Off);
    let (token, _) = password_sign_in(&kit, "ada@example.com", "ada-password-1").await;
    let ada = kit.service.sessions.authenticate(&token).await.unwrap();
    let refused = kit.service.mfa.start_totp(ada.user()).await;
    assert!(matches!(refused, Err(MfaError::NotOffered)), "{refused:?}");

    set_policy(&kit, AdminMfa::Required, UserMfa::Optional);
    enrol(&kit, &ada).await;
    // Right after enrolment (a check), the app may go.
    let ada = kit.service.sessions.authenticate(&token).await.unwrap();
    kit.service.mfa.remove_totp(&ada, &ctx()).await.unwrap();

    set_policy(&kit, AdminMfa::Optional, UserMfa::Required);
    let (token, enrolment_only) = password_sign_in(&kit, "ada@example.com", "ada-password-1").await;
    assert!(enrolment_only);
    let refused = kit.service.sessions.authenticate(&token).await;
    assert!(matches!(refused, Err(AuthenticateError::EnrolmentRequired)));
    let (_, enrolment_only) = password_sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await;
    assert!(!enrolment_only, "admins optional now");
}

#[tokio::test]
async fn a_policy_change_is_audited_with_each_setting_before_and_after() {
    let (kit, admin) = with_admin().await;
    set_policy(&kit, AdminMfa::Required, UserMfa::Off);
    let relaxed = SecurityPolicy { admin_mfa: AdminMfa::Optional, user_mfa: UserMfa::Off };
    let saved = kit.service.mfa.set_security_policy(&admin, relaxed, &ctx()).await.unwrap();
    assert_eq!(saved, relaxed);
    assert_eq!(kit.service.mfa.security_policy().await.unwrap(), relaxed);
    let events = audit_of(&kit, AuditAction::SecuritySettingsChanged);
    assert_eq!(events.len(), 1);
    let change = events[0].changes.iter().find(|c| c.field == "admin_mfa").unwrap();
    assert_eq!(change.before.as_deref(), Some("required"));
    assert_eq!(change.after.as_deref(), Some("optional"));
    assert!(events[0].changes.iter().all(|c| c.field != "user_mfa"), "unchanged: not listed");
    assert_eq!(SecurityPolicy::default().admin_mfa, AdminMfa::Required);
    assert_eq!(SecurityPolicy::default().user_mfa, UserMfa::Off);
}

#[tokio::test]
async fn an_admin_resets_another_users_second_factor_never_their_own_and_they_are_told() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "ada@example.com", "admin", "ada-password-1").await;
    let (token, _) = password_sign_in(&kit, "ada@example.com", "ada-password-1").await;
    let ada = kit.service.sessions.authenticate(&token).await.unwrap();
    enrol(&kit, &ada).await;
    let mfa = &kit.service.mfa;
    let own = mfa.reset(&admin, admin.user().id, &ctx()).await;
    assert!(matches!(own, Err(ResetMfaError::Own)), "{own:?}");
    let stranger = mfa.reset(&admin, secureai_domain::UserId::generate(), &ctx()).await;
    assert!(matches!(stranger, Err(ResetMfaError::NotFound)), "{stranger:?}");

    set_policy(&kit, AdminMfa::Required, UserMfa::Off);
    mfa.reset(&admin, id, &ctx()).await.unwrap();
    assert!(!mfa.status(ada.user()).await.unwrap().enrolled());
    assert_eq!(mfa.status(ada.user()).await.unwrap().recovery_codes_left, 0);
    let again = mfa.reset(&admin, id, &ctx()).await;
    assert!(matches!(again, Err(ResetMfaError::NotEnrolled)), "{again:?}");
    let reset = audit_of(&kit, AuditAction::MfaReset);
    assert_eq!(detail(&reset[0], "by"), Some("admin"));
    let told = kit.store.state().outbox.iter().any(|m| {
        matches!(
            &m.mail.message,
            MailMessage::SecondFactorReset { reset_by: Some(_), required: true }
        ) && m.mail.to.as_str() == "ada@example.com"
    });
    assert!(told, "Ada is emailed that she must set up a new one");
    let (_, enrolment_only) = password_sign_in(&kit, "ada@example.com", "ada-password-1").await;
    assert!(enrolment_only, "an admin without one enrols at the next sign-in");

    // The operator resets the last admin's, from the command line.
    let (root_token, _) = password_sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await;
    let root = kit.service.sessions.authenticate_for_enrolment(&root_token).await.unwrap();
    enrol(&kit, &root).await;
    mfa.reset_as_operator(ROOT_EMAIL, &ctx()).await.unwrap();
    let reset = audit_of(&kit, AuditAction::MfaReset);
    assert_eq!(detail(&reset[1], "by"), Some("operator"));
    let unknown = mfa.reset_as_operator("nobody@example.com", &ctx()).await;
    assert!(matches!(unknown, Err(ResetMfaError::NotFound)));
}
