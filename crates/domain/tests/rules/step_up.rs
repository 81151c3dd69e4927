//! Step-up with the fake clock: an admin who has a second factor makes
//! someone an admin, changes Settings › Security, single sign-on and email
//! settings, creates tokens and resets someone's second factor only within
//! ten minutes of a second-factor check (at sign-in, enrolment or
//! step-up); a code refreshes it; admins without a factor are not asked.

use chrono::Duration;
use secureai_domain::access::Admin;
use secureai_domain::imports::models::{ImportMode, RowOutcome};
use secureai_domain::imports::rows::RawRow;
use secureai_domain::imports::service::ImportRequest;
use secureai_domain::invitations::errors::CorrectEmailError;
use secureai_domain::mfa::check::StepUpError;
use secureai_domain::mfa::models::MfaMethod;
use secureai_domain::mfa::policy::SecurityPolicy;
use secureai_domain::mfa::service::ResetMfaError;
use secureai_domain::secrets::PlainToken;
use secureai_domain::sessions::errors::StepUpCheckError;
use secureai_domain::testing::TestKit;
use secureai_domain::users::errors::{InviteUserError, UpdateUserError};
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::{AuditAction, Clock};

use secureai_domain::webhooks::service::WebhookError;

use crate::kit::{
    ROOT_EMAIL, ROOT_PASSWORD, active_user, audit_of, ctx, detail, invite, pw, with_admin,
};
use crate::mfa::code;

/// The first admin signs in with a password and sets up an authenticator
/// app in that session; the session's token and the app's key.
async fn admin_with_app(kit: &TestKit) -> (PlainToken, String) {
    let signed_in = kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await;
    let token = signed_in.unwrap().token;
    let principal = kit.service.sessions.authenticate(&token).await.unwrap();
    let setup = kit.service.mfa.start_totp(principal.user()).await.unwrap();
    let secret = setup.secret.expose_base32().to_owned();
    let now = kit.clock.now();
    kit.service.mfa.confirm_totp(&principal, &code(&secret, now), &ctx()).await.unwrap();
    (token, secret)
}

/// The admin behind the session, as the next request resolves it.
async fn admin_of(kit: &TestKit, token: &PlainToken) -> Admin {
    kit.service.sessions.authenticate(token).await.unwrap().admin().unwrap()
}

fn stale<T: std::fmt::Debug>(result: &Result<T, StepUpError>) -> bool {
    matches!(result, Err(StepUpError::Required))
}

#[tokio::test]
async fn sensitive_actions_need_a_second_factor_check_from_the_last_ten_minutes() {
    let (kit, first) = with_admin().await;
    let ada = active_user(&kit, &first, "ada@example.com", "user", "ada-password-1").await;
    let pat_invite = invite("pat@example.com", "admin");
    let invited = kit.service.invitations.invite_user(&first, &pat_invite, &ctx()).await;
    let pat = invited.unwrap().user.id;
    let (token, secret) = admin_with_app(&kit).await;
    let policy = SecurityPolicy::default();

    // The enrolment checked a code: ten minutes, to the second.
    kit.clock.advance(Duration::minutes(10));
    let admin = admin_of(&kit, &token).await;
    kit.service.mfa.set_security_policy(&admin, policy, &ctx()).await.unwrap();

    kit.clock.advance(Duration::seconds(1));
    let admin = admin_of(&kit, &token).await;
    let mfa = &kit.service.mfa;
    assert!(stale(&mfa.set_security_policy(&admin, policy, &ctx()).await));
    let promote = UserUpdate { role: Some("admin".into()), ..UserUpdate::default() };
    let promoted = kit.service.users.update_user(&admin, ada, &promote, &ctx()).await;
    assert!(matches!(promoted, Err(UpdateUserError::StepUp(StepUpError::Required))));
    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("bo@example.com", "admin"), &ctx())
        .await;
    assert!(matches!(invited, Err(InviteUserError::StepUp(StepUpError::Required))), "{invited:?}");
    // An admin's invitation sent to another address makes its reader an
    // admin: asked too (a user's is not).
    let invitations = &kit.service.invitations;
    let moved = invitations.correct_email(&admin, pat, "else@example.com", &ctx()).await;
    assert!(matches!(moved, Err(CorrectEmailError::StepUp(StepUpError::Required))), "{moved:?}");
    let tokens = &kit.service.service_tokens;
    let created = tokens.create_service_token(&admin, "reports", None, &ctx()).await;
    assert!(created.is_err(), "a token needs a recent check");
    let reset = mfa.reset(&admin, ada, &ctx()).await;
    assert!(matches!(reset, Err(ResetMfaError::StepUp(StepUpError::Required))), "{reset:?}");
    // Where security events go: adding an endpoint (and so changing one).
    let principal = kit.service.sessions.authenticate(&token).await.unwrap();
    let events = ["user.deactivated".to_owned()];
    let hooks = &kit.service.webhooks;
    let hook = hooks.create(&principal, "https://siem.example.com/in", &events, &ctx()).await;
    assert!(
        matches!(hook, Err(WebhookError::StepUp(StepUpError::Required))),
        "{:?}",
        hook.map(|(e, _)| e)
    );
    // What does not make anyone more powerful is not asked.
    let rename = UserUpdate { name: Some("Ada L.".into()), ..UserUpdate::default() };
    kit.service.users.update_user(&admin, ada, &rename, &ctx()).await.unwrap();
    let cy = kit
        .service
        .invitations
        .invite_user(&admin, &invite("cy@example.com", "user"), &ctx())
        .await
        .unwrap()
        .user
        .id;
    kit.service.invitations.correct_email(&admin, cy, "cy.k@example.com", &ctx()).await.unwrap();
    // An import skips its admin rows, with the reason, and creates the rest.
    let rows = vec![
        RawRow {
            line: 1,
            email: "di@example.com".into(),
            name: "Di".into(),
            role: "admin".into(),
            department: String::new(),
        },
        RawRow {
            line: 2,
            email: "ed@example.com".into(),
            name: "Ed".into(),
            role: "user".into(),
            department: String::new(),
        },
    ];
    let request = ImportRequest {
        file_name: "people.csv".into(),
        mode: ImportMode::Commit,
        max_rows: None,
        keep_all_rows: true,
    };
    let record =
        kit.service.imports.import_rows_as_admin(&admin, rows, &request, &ctx()).await.unwrap();
    let reports =
        kit.service.imports.import_report_rows(&admin, record.id, 0, 10, false).await.unwrap();
    match &reports[0].outcome {
        RowOutcome::Skipped(problems) => {
            assert_eq!(problems[0].field, "role");
            assert!(problems[0].reason.contains("second-factor check"), "{}", problems[0].reason);
        }
        other => panic!("the admin row went through: {other:?}"),
    }
    assert!(matches!(reports[1].outcome, RowOutcome::Created(_)), "{:?}", reports[1]);

    // A wrong code changes nothing; the right one opens ten minutes again.
    let principal = kit.service.sessions.authenticate(&token).await.unwrap();
    let sessions = &kit.service.sessions;
    let wrong = sessions.step_up(&principal, MfaMethod::Totp, "000000", &ctx()).await;
    assert!(matches!(wrong, Err(StepUpCheckError::WrongCode)), "{wrong:?}");
    let now = kit.clock.now();
    assert_eq!(
        sessions.step_up(&principal, MfaMethod::Totp, &code(&secret, now), &ctx()).await.unwrap(),
        now
    );
    // The same code twice is refused, as at sign-in.
    let replay = sessions.step_up(&principal, MfaMethod::Totp, &code(&secret, now), &ctx()).await;
    assert!(matches!(replay, Err(StepUpCheckError::WrongCode)), "{replay:?}");
    let admin = admin_of(&kit, &token).await;
    assert_eq!(admin.second_factor_at(), Some(now));
    kit.service.users.update_user(&admin, ada, &promote, &ctx()).await.unwrap();
    kit.service.mfa.set_security_policy(&admin, policy, &ctx()).await.unwrap();
    kit.service.service_tokens.create_service_token(&admin, "reports", None, &ctx()).await.unwrap();
    let verified = audit_of(&kit, AuditAction::MfaVerified);
    assert_eq!(detail(verified.last().unwrap(), "during"), Some("step-up"));
    let failed = audit_of(&kit, AuditAction::MfaFailed);
    assert_eq!(detail(failed.last().unwrap(), "during"), Some("step-up"));
}

#[tokio::test]
async fn wrong_step_up_codes_are_throttled_with_the_sign_ins_second_step() {
    let (kit, _) = with_admin().await;
    let (token, secret) = admin_with_app(&kit).await;
    let principal = kit.service.sessions.authenticate(&token).await.unwrap();
    let sessions = &kit.service.sessions;
    let free = secureai_domain::Policy::default().throttle.free_account_failures;
    for _ in 0..free {
        let wrong = sessions.step_up(&principal, MfaMethod::Totp, "000000", &ctx()).await;
        assert!(matches!(wrong, Err(StepUpCheckError::WrongCode)), "{wrong:?}");
    }
    // Even the right code waits now.
    let right = code(&secret, kit.clock.now());
    let paused = sessions.step_up(&principal, MfaMethod::Totp, &right, &ctx()).await;
    assert!(matches!(paused, Err(StepUpCheckError::Throttled { .. })), "{paused:?}");
}

#[tokio::test]
async fn a_recovery_code_steps_up_once_and_admins_without_a_factor_are_not_asked() {
    let (kit, first) = with_admin().await;
    let ada = active_user(&kit, &first, "ada@example.com", "user", "ada-password-1").await;
    // No factor: nothing to ask for, hours later.
    kit.clock.advance(Duration::hours(3));
    let promote = UserUpdate { role: Some("admin".into()), ..UserUpdate::default() };
    kit.service.users.update_user(&first, ada, &promote, &ctx()).await.unwrap();

    let (token, _) = admin_with_app(&kit).await;
    let principal = kit.service.sessions.authenticate(&token).await.unwrap();
    let codes = kit.service.mfa.regenerate_recovery_codes(&principal, &ctx()).await.unwrap();
    kit.clock.advance(Duration::minutes(30));
    let principal = kit.service.sessions.authenticate(&token).await.unwrap();
    let sessions = &kit.service.sessions;
    use secrecy::ExposeSecret as _;
    let recovery = codes[0].expose_secret();
    sessions.step_up(&principal, MfaMethod::RecoveryCode, recovery, &ctx()).await.unwrap();
    let again = sessions.step_up(&principal, MfaMethod::RecoveryCode, recovery, &ctx()).await;
    assert!(matches!(again, Err(StepUpCheckError::WrongCode)), "{again:?}");
    let admin = admin_of(&kit, &token).await;
    kit.service.mfa.set_security_policy(&admin, SecurityPolicy::default(), &ctx()).await.unwrap();
    assert_eq!(audit_of(&kit, AuditAction::RecoveryCodeUsed).len(), 1);
}
