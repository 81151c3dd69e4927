//! Personal API tokens with the fake clock: a token acts as its owner
//! within its scopes and never with a second-factor check (what needs a
//! recent one stays closed to it); its lifetime,
//! name, scopes and count are bounded; its use is written once a minute
//! (or from a new address); a token whose owner is no longer an active
//! admin is revoked at its next use; a malformed one costs no read.

use std::sync::Arc;

use chrono::Duration;
use secureai_domain::access::ApiScope;
use secureai_domain::api_tokens::errors::{ApiTokenAuthError, ApiTokenError};
use secureai_domain::api_tokens::models::{ApiTokenStatus, NewApiToken};
use secureai_domain::api_tokens::ports::MockApiTokenRepository;
use secureai_domain::api_tokens::service::{ApiTokenPorts, ApiTokenService};
use secureai_domain::audit::models::Actor;
use secureai_domain::errors::StepUpError;
use secureai_domain::mfa::policy::{AdminMfa, SecurityPolicy, UserMfa};
use secureai_domain::mfa::ports::MockMfaRepository;
use secureai_domain::settings::ports::MockSettingsRepository;
use secureai_domain::testing::{FakeClock, SequentialTokens};
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::users::ports::MockUserRepository;
use secureai_domain::{AuditAction, Clock, PlainToken, RequestContext};

use crate::kit::{
    ROOT_EMAIL, ROOT_PASSWORD, active_user, audit_of, ctx, detail, pw, sign_in, with_admin,
};

fn asking(name: &str, scopes: &[&str], days: Option<u32>) -> NewApiToken {
    NewApiToken {
        name: name.to_owned(),
        expires_in_days: days,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn from(ip: &str) -> RequestContext {
    RequestContext { ip: Some(ip.to_owned()), user_agent: None, ..RequestContext::default() }
}

#[tokio::test]
async fn a_token_acts_as_its_owner_within_its_scopes_and_carries_no_second_factor_check() {
    let (kit, _) = with_admin().await;
    let sessions = &kit.service.sessions;
    let tokens = &kit.service.api_tokens;
    let signed_in = sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let root = sessions.authenticate(&signed_in.token).await.unwrap();
    let asked = asking(" Sync ", &["users:read", "audit:read", "users:read"], None);
    let issued = tokens.create(&root, &asked, &ctx()).await.unwrap();
    assert_eq!(issued.token.name, "Sync");
    assert_eq!(issued.token.scopes, vec![ApiScope::UsersRead, ApiScope::AuditRead]);
    assert_eq!(issued.token.expires_at - issued.token.created_at, Duration::days(90));
    let created = audit_of(&kit, AuditAction::ApiTokenCreated);
    assert_eq!(detail(&created[0], "scopes"), Some("users:read audit:read"));
    assert!(!format!("{created:?}").contains(issued.secret.expose()), "never the secret");

    let principal = tokens.authenticate(&issued.secret, &ctx()).await.unwrap();
    assert_eq!(principal.user().email.as_str(), ROOT_EMAIL);
    assert!(principal.require_scope(ApiScope::UsersRead).is_ok());
    assert!(principal.require_scope(ApiScope::UsersWrite).is_err());
    assert_eq!(principal.second_factor_at(), None, "a token carries no check");
    let admin = principal.admin().unwrap();
    match admin.actor() {
        Actor::UserToken { token_id, name, .. } => {
            assert_eq!((token_id, name.as_str()), (issued.token.id, "Sync"));
        }
        other => panic!("{other:?}"),
    }
    // A token makes no token.
    let minted = tokens.create(&principal, &asking("More", &["users:read"], None), &ctx()).await;
    assert!(matches!(minted, Err(ApiTokenError::Forbidden)), "{minted:?}");
}

#[tokio::test]
async fn lifetimes_names_scopes_and_counts_are_bounded() {
    let (kit, admin) = with_admin().await;
    let tokens = &kit.service.api_tokens;
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let root = kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    for days in [0, 367, u32::MAX] {
        let refused = tokens.create(&root, &asking("x", &["users:read"], Some(days)), &ctx()).await;
        assert!(matches!(refused, Err(ApiTokenError::InvalidLifetime)), "{days}: {refused:?}");
    }
    for name in ["", " ", &"n".repeat(65), "tab\there"] {
        let refused = tokens.create(&root, &asking(name, &["users:read"], None), &ctx()).await;
        assert!(matches!(refused, Err(ApiTokenError::InvalidName)), "{name:?}: {refused:?}");
    }
    for scopes in [&[][..], &["users:delete"][..], &["USERS:READ"][..]] {
        let refused = tokens.create(&root, &asking("x", scopes, None), &ctx()).await;
        assert!(matches!(refused, Err(ApiTokenError::InvalidScopes(_))), "{scopes:?}");
    }
    let year = tokens.create(&root, &asking("x", &["users:read"], Some(366)), &ctx()).await;
    assert_eq!(year.unwrap().token.expires_at - kit.clock.now(), Duration::days(366));
    for n in 1..50 {
        tokens
            .create(&root, &asking(&format!("t{n}"), &["users:read"], None), &ctx())
            .await
            .unwrap();
    }
    let fifty_first =
        tokens.create(&root, &asking("one more", &["users:read"], None), &ctx()).await;
    assert!(matches!(fifty_first, Err(ApiTokenError::TooMany)), "{fifty_first:?}");
    // A revoked one frees its place.
    let some = tokens.own_tokens(&root).await.unwrap().remove(0).token.id;
    tokens.revoke(&root, some, &ctx()).await.unwrap();
    assert!(tokens.create(&root, &asking("one more", &["users:read"], None), &ctx()).await.is_ok());
    // A user holds none.
    active_user(&kit, &admin, "ada@example.com", "user", "ada-password-1").await;
    let ada = sign_in(&kit, "ada@example.com", "ada-password-1").await;
    let refused = tokens.create(&ada, &asking("x", &["users:read"], None), &ctx()).await;
    assert!(matches!(refused, Err(ApiTokenError::Forbidden)), "{refused:?}");
}

#[tokio::test]
async fn a_use_is_written_once_a_minute_or_from_a_new_address() {
    let (kit, _) = with_admin().await;
    let tokens = &kit.service.api_tokens;
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let root = kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    let issued =
        tokens.create(&root, &asking("Sync", &["users:read"], None), &ctx()).await.unwrap();
    let last_use = || async { tokens.own_tokens(&root).await.unwrap()[0].token.clone() };
    let first = kit.clock.now();
    tokens.authenticate(&issued.secret, &from("192.0.2.1")).await.unwrap();
    kit.clock.advance(Duration::seconds(59));
    tokens.authenticate(&issued.secret, &from("192.0.2.1")).await.unwrap();
    let used = last_use().await;
    assert_eq!((used.last_used_at, used.last_used_ip.as_deref()), (Some(first), Some("192.0.2.1")));
    tokens.authenticate(&issued.secret, &from("198.51.100.9")).await.unwrap();
    assert_eq!(last_use().await.last_used_ip.as_deref(), Some("198.51.100.9"), "a new address");
    kit.clock.advance(Duration::seconds(61));
    tokens.authenticate(&issued.secret, &from("198.51.100.9")).await.unwrap();
    assert_eq!(last_use().await.last_used_at, Some(kit.clock.now()));
    // Expired: refused, listed as such.
    kit.clock.advance(Duration::days(90));
    let late = tokens.authenticate(&issued.secret, &ctx()).await;
    assert!(matches!(late, Err(ApiTokenAuthError::Invalid)), "{late:?}");
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let root = kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    assert_eq!(tokens.own_tokens(&root).await.unwrap()[0].status, ApiTokenStatus::Expired);
}

#[tokio::test]
async fn a_token_whose_owner_is_no_longer_an_admin_is_revoked_at_its_next_use() {
    let (kit, root) = with_admin().await;
    let tokens = &kit.service.api_tokens;
    let ada_id = active_user(&kit, &root, "ada@example.com", "admin", "ada-password-1").await;
    let ada = sign_in(&kit, "ada@example.com", "ada-password-1").await;
    let issued = tokens.create(&ada, &asking("Reports", &["users:read"], None), &ctx()).await;
    let issued = issued.unwrap();
    tokens.authenticate(&issued.secret, &ctx()).await.unwrap();
    let demote = UserUpdate { role: Some("user".to_owned()), ..UserUpdate::default() };
    kit.service.users.update_user(&root, ada_id, &demote, &ctx()).await.unwrap();
    let listed = tokens.all_tokens(&sessions_root(&kit).await).await.unwrap();
    assert_eq!(listed[0].status, ApiTokenStatus::Disabled, "listed as disabled before its use");
    let refused = tokens.authenticate(&issued.secret, &ctx()).await;
    assert!(matches!(refused, Err(ApiTokenAuthError::Invalid)), "{refused:?}");
    let listed = tokens.all_tokens(&sessions_root(&kit).await).await.unwrap();
    assert_eq!(listed[0].status, ApiTokenStatus::Revoked);
    let revoked = audit_of(&kit, AuditAction::ApiTokenRevoked);
    assert_eq!(detail(&revoked[0], "reason"), Some("owner_lost_access"));
    assert!(
        matches!(revoked[0].actor, Actor::UserToken { token_id, .. } if token_id == issued.token.id)
    );
    assert_eq!(revoked[0].target_id, Some(ada_id));
    let promote = UserUpdate { role: Some("admin".to_owned()), ..UserUpdate::default() };
    kit.service.users.update_user(&root, ada_id, &promote, &ctx()).await.unwrap();
    let still = tokens.authenticate(&issued.secret, &ctx()).await;
    assert!(matches!(still, Err(ApiTokenAuthError::Invalid)), "revoked for good: {still:?}");
    assert_eq!(audit_of(&kit, AuditAction::ApiTokenRevoked).len(), 1, "once");
}

#[tokio::test]
async fn a_malformed_token_is_refused_without_a_read() {
    // Mocks with no expectations: any call to a port fails the test.
    let service = ApiTokenService::new(ApiTokenPorts {
        api_tokens: Arc::new(MockApiTokenRepository::new()),
        users: Arc::new(MockUserRepository::new()),
        mfa: Arc::new(MockMfaRepository::new()),
        settings: Arc::new(MockSettingsRepository::new()),
        clock: Arc::new(FakeClock::new()),
        tokens: Arc::new(SequentialTokens::default()),
    });
    let real = secureai_domain::api_tokens::models::secret_from(&"Q".repeat(43));
    let mut typo = real.clone();
    typo.replace_range(10..11, "R");
    for presented in
        [typo, "sai_pat_".to_owned(), String::new(), format!("{real} "), "x".repeat(10_000)]
    {
        let refused = service.authenticate(&PlainToken::presented(presented.clone()), &ctx()).await;
        assert!(matches!(refused, Err(ApiTokenAuthError::Invalid)), "{presented:?}");
    }
}

#[tokio::test]
async fn a_token_never_passes_a_step_up_even_when_its_owner_has_no_factor() {
    let (kit, _) = with_admin().await;
    let tokens = &kit.service.api_tokens;
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let root = kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    assert!(!kit.service.mfa.status(root.user()).await.unwrap().enrolled(), "no factor");
    let asked = asking("Everything", &["users:write", "settings:write"], None);
    let issued = tokens.create(&root, &asked, &ctx()).await.unwrap();
    let admin = tokens.authenticate(&issued.secret, &ctx()).await.unwrap().admin().unwrap();
    let refused = admin.require_recent_factor(&*kit.store, kit.clock.now()).await;
    assert!(matches!(refused, Err(StepUpError::SessionRequired)), "{refused:?}");
    let policy = SecurityPolicy { admin_mfa: AdminMfa::Optional, user_mfa: UserMfa::Off };
    let weakened = kit.service.mfa.set_security_policy(&admin, policy, &ctx()).await;
    assert!(matches!(weakened, Err(StepUpError::SessionRequired)), "{weakened:?}");
    // The session may (its owner has no factor to check).
    let session_admin = root.admin().unwrap();
    assert!(session_admin.require_recent_factor(&*kit.store, kit.clock.now()).await.is_ok());
}

#[tokio::test]
async fn a_token_waits_while_its_owner_must_set_up_a_second_factor() {
    let (kit, _) = with_admin().await;
    let tokens = &kit.service.api_tokens;
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let root = kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    let issued = tokens.create(&root, &asking("Sync", &["users:read"], None), &ctx()).await;
    let issued = issued.unwrap();
    kit.store.state().security_policy =
        SecurityPolicy { admin_mfa: AdminMfa::Required, user_mfa: UserMfa::Off };
    let waiting = tokens.authenticate(&issued.secret, &ctx()).await;
    assert!(matches!(waiting, Err(ApiTokenAuthError::EnrolmentRequired)), "{waiting:?}");
    kit.store.state().security_policy =
        SecurityPolicy { admin_mfa: AdminMfa::Optional, user_mfa: UserMfa::Off };
    assert!(tokens.authenticate(&issued.secret, &ctx()).await.is_ok(), "not revoked");
}

async fn sessions_root(
    kit: &secureai_domain::testing::TestKit,
) -> secureai_domain::access::Principal {
    sign_in(kit, ROOT_EMAIL, ROOT_PASSWORD).await
}
