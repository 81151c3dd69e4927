//! Rule 6 and 8 for single sign-on: who an identity is, first sign-in
//! activation, refusals (each audited with its reason), SSO invitations
//! and the settings.

use chrono::Duration;
use secureai_csv::CsvFile;
use secureai_domain::access::Admin;
use secureai_domain::mail::models::MailMessage;
use secureai_domain::sso::errors::{SsoRefusal, SsoSignInError};
use secureai_domain::sso::models::{SsoFailure, SsoIdentity, SsoProtocol, SsoResponse};
use secureai_domain::sso::settings::{
    ClientSecret, OidcSettings, SecretChange, SsoMode, SsoSettings, SsoSettingsUpdate,
};
use secureai_domain::testing::TestKit;
use secureai_domain::{AuditAction, SignInMethod, UserStatus};

use crate::kit::{audit_of, counts, ctx, detail, invite, pw, with_admin};

const ISSUER: &str = "https://idp.example.com";

fn oidc_settings(jit: bool) -> SsoSettingsUpdate {
    SsoSettingsUpdate {
        settings: SsoSettings {
            mode: SsoMode::Oidc(OidcSettings {
                issuer_url: ISSUER.into(),
                client_id: "secureai".into(),
                client_secret: None,
                scopes: vec!["email".into(), "profile".into()],
            }),
            jit_provisioning: jit,
            clock_skew_secs: 60,
        },
        client_secret: SecretChange::Set(ClientSecret::parse("client-secret-value").unwrap()),
    }
}

pub(crate) async fn with_sso(jit: bool) -> (TestKit, Admin) {
    let (kit, admin) = with_admin().await;
    kit.service.sso.update_sso_settings(&admin, oidc_settings(jit), &ctx()).await.unwrap();
    (kit, admin)
}

pub(crate) fn identity(subject: &str, email: &str, verified: bool) -> SsoIdentity {
    SsoIdentity {
        protocol: SsoProtocol::Oidc,
        issuer: ISSUER.into(),
        subject: subject.into(),
        email: Some(email.into()),
        email_verified: verified,
        name: Some("Ada Lovelace".into()),
        assertion: None,
    }
}

/// Starts a sign-in and answers it with `answer`.
pub(crate) async fn sso_sign_in(
    kit: &TestKit,
    answer: Result<SsoIdentity, SsoFailure>,
) -> Result<secureai_domain::sessions::models::SignedIn, SsoSignInError> {
    let started = kit.service.sso.begin_sso(SsoProtocol::Oidc).await.unwrap();
    kit.identity.answer(answer);
    kit.service
        .sso
        .complete_sso(
            SsoProtocol::Oidc,
            Some(&started.browser_token),
            &SsoResponse::default(),
            &ctx(),
        )
        .await
}

fn refused(
    outcome: Result<secureai_domain::sessions::models::SignedIn, SsoSignInError>,
) -> SsoRefusal {
    match outcome {
        Err(SsoSignInError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn last_failure_reason(kit: &TestKit) -> String {
    let failures = audit_of(kit, AuditAction::SignInFailed);
    detail(failures.last().unwrap(), "reason").unwrap().to_owned()
}

#[tokio::test]
async fn while_sso_is_configured_invitations_make_sso_users_who_get_no_link() {
    let (kit, admin) = with_sso(false).await;
    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    assert_eq!(invited.user.sign_in, SignInMethod::Sso);
    assert!(matches!(
        kit.store.state().outbox.last().unwrap().mail.message,
        MailMessage::AccessReady { .. }
    ));
    // The invitation token cannot set a password.
    let accepted = kit
        .service
        .invitations
        .accept_invitation(&invited.token, pw("a long new passphrase"), &ctx())
        .await;
    assert!(accepted.is_err());
    // A break-glass password account stays possible.
    let mut request = invite("breakglass@example.com", "admin");
    request.sign_in = Some("password".into());
    let local = kit.service.invitations.invite_user(&admin, &request, &ctx()).await.unwrap();
    assert_eq!(local.user.sign_in, SignInMethod::Password);
    assert!(matches!(
        kit.store.state().outbox.last().unwrap().mail.message,
        MailMessage::Invitation { .. }
    ));
}

#[tokio::test]
async fn sso_invitations_are_refused_while_no_identity_provider_is_configured() {
    let (kit, admin) = with_admin().await;
    let mut request = invite("ada@example.com", "user");
    request.sign_in = Some("sso".into());
    let outcome = kit.service.invitations.invite_user(&admin, &request, &ctx()).await;
    let error = outcome.unwrap_err().to_string();
    assert!(error.contains("SSO is not configured"), "{error}");
    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    assert_eq!(invited.user.sign_in, SignInMethod::Password);
}

#[tokio::test]
async fn the_first_sso_sign_in_activates_an_invited_user_and_links_the_subject() {
    let (kit, admin) = with_sso(false).await;
    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    let signed_in =
        sso_sign_in(&kit, Ok(identity("sub-1", "Ada@Example.com", true))).await.unwrap();
    assert_eq!(signed_in.user.id, invited.user.id);
    assert_eq!(signed_in.user.status(), UserStatus::Active);
    let principal = kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    assert_eq!(principal.user().status(), UserStatus::Active);
    let accepted = audit_of(&kit, AuditAction::InvitationAccepted);
    assert_eq!(detail(accepted.last().unwrap(), "method"), Some("oidc"));
    let succeeded = audit_of(&kit, AuditAction::SignInSucceeded);
    assert_eq!(detail(succeeded.last().unwrap(), "method"), Some("oidc"));
    assert!(kit.store.state().sso_links.contains_key(&(ISSUER.to_owned(), "sub-1".to_owned())));

    // Later sign-ins find the user by subject, even after the provider
    // changed the email address.
    let again = sso_sign_in(&kit, Ok(identity("sub-1", "ada.l@example.com", true))).await.unwrap();
    assert_eq!(again.user.id, invited.user.id);
}

/// The guide's troubleshooting for SSO users: their invitation waits for
/// their first sign-in and never expires (they got no link); re-sending
/// sends "your access is ready" again; a late first sign-in still works.
#[tokio::test]
async fn an_sso_users_invitation_waits_for_the_first_sign_in_without_expiring() {
    use secureai_domain::invitations::models::InvitationStatus;
    let (kit, admin) = with_sso(false).await;
    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    let id = invited.user.id;
    kit.clock.advance(Duration::hours(24 * 30));
    let profile = kit.service.user_profile(&admin, id).await.unwrap();
    assert_eq!(profile.invitation, Some(InvitationStatus::AwaitingFirstSignIn));

    kit.service.invitations.resend_invitation(&admin, id, &ctx()).await.unwrap();
    let ready = kit
        .store
        .state()
        .outbox
        .iter()
        .filter(|m| m.mail.to.as_str() == "ada@example.com")
        .filter(|m| matches!(m.mail.message, MailMessage::AccessReady { .. }))
        .count();
    // The first one, never sent here, is replaced rather than sent twice.
    assert_eq!(ready, 1, "the access-ready email is queued again, and no link");
    let latest = kit.store.state().outbox.last().map(|m| m.mail.created_at);
    assert_eq!(
        latest,
        Some(secureai_domain::Clock::now(kit.clock.as_ref())),
        "the queued one is the new one"
    );
    let profile = kit.service.user_profile(&admin, id).await.unwrap();
    assert_eq!(profile.invitation, Some(InvitationStatus::AwaitingFirstSignIn));

    kit.clock.advance(Duration::hours(24 * 30));
    let signed_in = sso_sign_in(&kit, Ok(identity("sub-1", "ada@example.com", true))).await;
    assert_eq!(signed_in.unwrap().user.status(), UserStatus::Active);
    let profile = kit.service.user_profile(&admin, id).await.unwrap();
    assert!(matches!(profile.invitation, Some(InvitationStatus::Accepted { .. })));
}

#[tokio::test]
async fn an_unverified_email_is_refused_and_audited() {
    let (kit, admin) = with_sso(false).await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    let before = counts(&kit);
    let refusal = refused(sso_sign_in(&kit, Ok(identity("sub-1", "ada@example.com", false))).await);
    assert_eq!(refusal, SsoRefusal::EmailNotVerified);
    assert_eq!(last_failure_reason(&kit), "email_not_verified");
    let after = counts(&kit);
    assert_eq!((after.sessions, after.users), (before.sessions, before.users));
    assert!(kit.store.state().sso_links.is_empty());
}

#[tokio::test]
async fn an_unknown_email_is_refused_unless_just_in_time_provisioning_is_on() {
    let (kit, _admin) = with_sso(false).await;
    let refusal =
        refused(sso_sign_in(&kit, Ok(identity("sub-9", "stranger@example.com", true))).await);
    assert_eq!(refusal, SsoRefusal::UnknownUser);
    assert!(refusal.message().contains("no SecureAI account"));
    let failed = audit_of(&kit, AuditAction::SignInFailed);
    assert_eq!(failed.last().unwrap().target_email.as_deref(), Some("stranger@example.com"));

    let (kit, _admin) = with_sso(true).await;
    let signed_in =
        sso_sign_in(&kit, Ok(identity("sub-9", "stranger@example.com", true))).await.unwrap();
    assert_eq!(signed_in.user.role, secureai_domain::Role::User);
    assert_eq!(signed_in.user.sign_in, SignInMethod::Sso);
    assert_eq!(signed_in.user.name.to_string(), "Ada Lovelace");
    assert_eq!(audit_of(&kit, AuditAction::UserProvisioned).len(), 1);
}

#[tokio::test]
async fn just_in_time_provisioning_honours_the_seat_limit() {
    let (kit, admin) = with_sso(true).await;
    kit.service.users.set_seat_limit(&admin, Some(1), &ctx()).await.unwrap();
    let refusal =
        refused(sso_sign_in(&kit, Ok(identity("sub-9", "stranger@example.com", true))).await);
    assert_eq!(refusal, SsoRefusal::SeatLimitReached { limit: 1 });
    assert_eq!(last_failure_reason(&kit), "seat_limit_reached");
    assert_eq!(kit.store.state().users.len(), 1);
}

#[tokio::test]
async fn a_deactivated_user_gets_no_session_even_with_a_live_identity_provider_session() {
    let (kit, admin) = with_sso(false).await;
    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    sso_sign_in(&kit, Ok(identity("sub-1", "ada@example.com", true))).await.unwrap();
    crate::kit::deactivate_in_store(&kit, invited.user.id);
    let sessions_before = counts(&kit).sessions;
    let refusal = refused(sso_sign_in(&kit, Ok(identity("sub-1", "ada@example.com", true))).await);
    assert_eq!(refusal, SsoRefusal::AccountDeactivated);
    assert!(refusal.message().contains("deactivated"));
    assert_eq!(counts(&kit).sessions, sessions_before);
    let failed = audit_of(&kit, AuditAction::SignInFailed);
    assert_eq!(failed.last().unwrap().target_id, Some(invited.user.id));
}

#[tokio::test]
async fn a_user_linked_to_another_subject_is_refused() {
    let (kit, admin) = with_sso(false).await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    sso_sign_in(&kit, Ok(identity("sub-1", "ada@example.com", true))).await.unwrap();
    // Another account at the provider now claims the same address.
    let refusal = refused(sso_sign_in(&kit, Ok(identity("sub-2", "ada@example.com", true))).await);
    assert_eq!(refusal, SsoRefusal::SubjectMismatch);
}

#[tokio::test]
async fn an_answer_without_a_started_sign_in_or_used_twice_is_refused() {
    let (kit, admin) = with_sso(false).await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    kit.identity.answer(Ok(identity("sub-1", "ada@example.com", true)));
    let outcome = kit
        .service
        .sso
        .complete_sso(SsoProtocol::Oidc, None, &SsoResponse::default(), &ctx())
        .await;
    assert_eq!(refused(outcome), SsoRefusal::NoLoginInProgress);

    let started = kit.service.sso.begin_sso(SsoProtocol::Oidc).await.unwrap();
    let first = kit
        .service
        .sso
        .complete_sso(
            SsoProtocol::Oidc,
            Some(&started.browser_token),
            &SsoResponse::default(),
            &ctx(),
        )
        .await;
    assert!(first.is_ok(), "{first:?}");
    let second = kit
        .service
        .sso
        .complete_sso(
            SsoProtocol::Oidc,
            Some(&started.browser_token),
            &SsoResponse::default(),
            &ctx(),
        )
        .await;
    assert_eq!(refused(second), SsoRefusal::NoLoginInProgress);
}

#[tokio::test]
async fn a_started_sign_in_expires_after_ten_minutes() {
    let (kit, _admin) = with_sso(false).await;
    let started = kit.service.sso.begin_sso(SsoProtocol::Oidc).await.unwrap();
    kit.clock.advance(Duration::minutes(11));
    kit.identity.answer(Ok(identity("sub-1", "root@example.com", true)));
    let outcome = kit
        .service
        .sso
        .complete_sso(
            SsoProtocol::Oidc,
            Some(&started.browser_token),
            &SsoResponse::default(),
            &ctx(),
        )
        .await;
    assert_eq!(refused(outcome), SsoRefusal::NoLoginInProgress);
    assert!(kit.identity.pending_seen().is_empty(), "the adapter was never asked");
}

#[tokio::test]
async fn a_protocol_failure_is_refused_with_the_adapters_reason() {
    let (kit, _admin) = with_sso(false).await;
    let refusal =
        refused(sso_sign_in(&kit, Err(SsoFailure::new("nonce_mismatch", "nonce differs"))).await);
    assert_eq!(refusal.reason(), "nonce_mismatch");
    let failed = audit_of(&kit, AuditAction::SignInFailed);
    let event = failed.last().unwrap();
    assert_eq!(detail(event, "reason"), Some("nonce_mismatch"));
    assert_eq!(detail(event, "detail"), Some("nonce differs"));
    assert_eq!(detail(event, "method"), Some("oidc"));
}

#[tokio::test]
async fn a_replayed_assertion_is_refused_until_it_expires() {
    let (kit, admin) = with_sso(false).await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    let now = secureai_domain::Clock::now(kit.clock.as_ref());
    let mut once = identity("sub-1", "ada@example.com", true);
    once.assertion = Some(("_assertion-1".into(), now + Duration::minutes(5)));
    sso_sign_in(&kit, Ok(once.clone())).await.unwrap();
    let refusal = refused(sso_sign_in(&kit, Ok(once)).await);
    assert_eq!(refusal, SsoRefusal::Replayed);
    assert_eq!(last_failure_reason(&kit), "assertion_replayed");
}

#[tokio::test]
async fn sso_users_cannot_sign_in_with_a_password_or_get_a_reset_link() {
    let (kit, admin) = with_sso(false).await;
    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    sso_sign_in(&kit, Ok(identity("sub-1", "ada@example.com", true))).await.unwrap();
    let password =
        kit.service.sessions.sign_in("ada@example.com", &pw("anything at all"), &ctx()).await;
    assert!(matches!(
        password,
        Err(secureai_domain::sessions::errors::SignInError::InvalidCredentials)
    ));
    let reset = kit.service.passwords.request_password_reset(&admin, invited.user.id, &ctx()).await;
    assert!(matches!(reset, Err(secureai_domain::resets::errors::RequestResetError::SsoUser)));
}

#[tokio::test]
async fn settings_changes_are_audited_without_the_client_secret() {
    let (kit, admin) = with_sso(false).await;
    let mut update = oidc_settings(false);
    update.client_secret = SecretChange::Set(ClientSecret::parse("a-new-secret").unwrap());
    kit.service.sso.update_sso_settings(&admin, update, &ctx()).await.unwrap();
    let events = audit_of(&kit, AuditAction::SsoSettingsChanged);
    assert_eq!(events.len(), 2);
    let text = format!("{events:?}");
    assert!(!text.contains("client-secret-value") && !text.contains("a-new-secret"), "{text}");
    assert_eq!(detail(&events[0], "mode"), Some("oidc"));
    assert_eq!(detail(&events[1], "client_secret"), Some("changed"));
    // A kept secret stays in force.
    let mut keep = oidc_settings(false);
    keep.client_secret = SecretChange::Keep;
    let (saved, _) = kit.service.sso.update_sso_settings(&admin, keep, &ctx()).await.unwrap();
    match saved.mode {
        SsoMode::Oidc(oidc) => assert_eq!(oidc.client_secret.unwrap().expose(), "a-new-secret"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn while_sso_is_configured_imported_users_are_sso_users_with_access_ready_mail() {
    use secureai_domain::imports::models::ImportMode;
    use secureai_domain::imports::service::ImportRequest;
    let (kit, admin) = with_sso(false).await;
    let csv = "email,name,role\nada@example.com,Ada,user\nbob@example.com,Bob,admin\n";
    let request = ImportRequest {
        file_name: "people.csv".into(),
        mode: ImportMode::Commit,
        max_rows: Some(100),
        keep_all_rows: true,
    };
    let record = kit
        .service
        .imports
        .import_file(
            &admin,
            &mut CsvFile::new(std::io::Cursor::new(csv.as_bytes().to_vec())),
            &request,
            &ctx(),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(record.counts.valid, 2);
    let state = kit.store.state();
    let imported: Vec<_> =
        state.users.values().filter(|u| u.email.as_str() != crate::kit::ROOT_EMAIL).collect();
    assert_eq!(imported.len(), 2);
    assert!(imported.iter().all(|u| u.sign_in == SignInMethod::Sso));
    let notices = state
        .outbox
        .iter()
        .filter(|m| matches!(m.mail.message, MailMessage::AccessReady { .. }))
        .count();
    assert_eq!(notices, 2);
}

#[tokio::test]
async fn a_password_account_is_never_linked_by_an_sso_sign_in() {
    // The break-glass admin set up with a password, and the provider
    // asserting the same, verified address.
    let (kit, _admin) = with_sso(true).await;
    let refusal =
        refused(sso_sign_in(&kit, Ok(identity("sub-root", crate::kit::ROOT_EMAIL, true))).await);
    assert_eq!(refusal, SsoRefusal::PasswordAccount);
    assert_eq!(last_failure_reason(&kit), "password_account");
    assert!(kit.store.state().sso_links.is_empty());
    // The password still works.
    kit.service
        .sessions
        .sign_in(crate::kit::ROOT_EMAIL, &pw(crate::kit::ROOT_PASSWORD), &ctx())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_admin_switches_a_password_account_to_sso_explicitly_and_audited_then_it_links() {
    let (kit, admin) = with_sso(false).await;
    let mut request = invite("breakglass@example.com", "admin");
    request.sign_in = Some("password".into());
    let local = kit.service.invitations.invite_user(&admin, &request, &ctx()).await.unwrap();
    kit.service
        .invitations
        .accept_invitation(&local.token, pw("a long local passphrase"), &ctx())
        .await
        .unwrap();
    let refusal =
        refused(sso_sign_in(&kit, Ok(identity("sub-b", "breakglass@example.com", true))).await);
    assert_eq!(refusal, SsoRefusal::PasswordAccount);

    let switch = secureai_domain::users::lifecycle::UserUpdate {
        sign_in: Some("sso".into()),
        ..Default::default()
    };
    let switched =
        kit.service.users.update_user(&admin, local.user.id, &switch, &ctx()).await.unwrap();
    assert_eq!(switched.sign_in, SignInMethod::Sso);
    let event = audit_of(&kit, AuditAction::SignInMethodChanged);
    assert_eq!(event.len(), 1);
    assert_eq!(event[0].target_id, Some(local.user.id));
    // The password is gone, and the next SSO sign-in links the account.
    assert!(
        kit.service
            .sessions
            .sign_in("breakglass@example.com", &pw("a long local passphrase"), &ctx())
            .await
            .is_err()
    );
    let signed_in =
        sso_sign_in(&kit, Ok(identity("sub-b", "breakglass@example.com", true))).await.unwrap();
    assert_eq!(signed_in.user.id, local.user.id);
    // Only `sso` is accepted.
    let back = secureai_domain::users::lifecycle::UserUpdate {
        sign_in: Some("password".into()),
        ..Default::default()
    };
    assert!(kit.service.users.update_user(&admin, local.user.id, &back, &ctx()).await.is_err());
}

#[tokio::test]
async fn an_account_linked_at_another_provider_is_linked_only_by_a_trusted_email() {
    let (kit, admin) = with_sso(false).await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    sso_sign_in(&kit, Ok(identity("sub-1", "ada@example.com", true))).await.unwrap();
    // The company moves to another provider (another issuer).
    let moved = |verified| SsoIdentity {
        issuer: "https://new-idp.example.com".into(),
        ..identity("other-sub", "ada@example.com", verified)
    };
    let refusal = refused(sso_sign_in(&kit, Ok(moved(false))).await);
    assert_eq!(refusal, SsoRefusal::EmailNotVerified);
    // OIDC's verified email is trusted.
    sso_sign_in(&kit, Ok(moved(true))).await.unwrap();
    assert_eq!(kit.store.state().sso_links.len(), 2);
}

#[tokio::test]
async fn a_saml_email_links_an_account_linked_elsewhere_only_when_the_setting_trusts_it() {
    use secureai_domain::sso::settings::SamlSettings;
    let (kit, admin) = with_sso(false).await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    sso_sign_in(&kit, Ok(identity("sub-1", "ada@example.com", true))).await.unwrap();
    let saml = |trust| SsoSettingsUpdate {
        settings: SsoSettings {
            mode: SsoMode::Saml(SamlSettings {
                idp_metadata_url: None,
                idp_metadata_xml: "<EntityDescriptor/>".into(),
                sp_entity_id: "urn:secureai".into(),
                email_attribute: None,
                allow_idp_initiated: false,
                trust_email_for_linking: trust,
            }),
            jit_provisioning: false,
            clock_skew_secs: 60,
        },
        client_secret: SecretChange::Keep,
    };
    kit.service.sso.update_sso_settings(&admin, saml(false), &ctx()).await.unwrap();
    assert_eq!(refused(saml_sign_in(&kit).await), SsoRefusal::LinkNotTrusted);
    kit.service.sso.update_sso_settings(&admin, saml(true), &ctx()).await.unwrap();
    saml_sign_in(&kit).await.unwrap();
}

async fn saml_sign_in(
    kit: &TestKit,
) -> Result<secureai_domain::sessions::models::SignedIn, SsoSignInError> {
    let started = kit.service.sso.begin_sso(SsoProtocol::Saml).await.unwrap();
    kit.identity.answer(Ok(SsoIdentity {
        protocol: SsoProtocol::Saml,
        issuer: "urn:saml-idp".into(),
        ..identity("ada-at-saml", "ada@example.com", true)
    }));
    kit.service
        .sso
        .complete_sso(
            SsoProtocol::Saml,
            Some(&started.browser_token),
            &SsoResponse::default(),
            &ctx(),
        )
        .await
}
