//! Provisioning (SCIM): only a service token with the `scim` scope reads
//! users, by id, by address and by position in creation order; it creates
//! SSO users within the seat limit, changes and deactivates them under the
//! guide's rules, and never deletes anyone.

use secureai_domain::access::{Admin, ServiceCaller};
use secureai_domain::analytics::models::TokenScope;
use secureai_domain::mail::models::MailMessage;
use secureai_domain::provisioning::models::Attributes;
use secureai_domain::provisioning::service::ProvisioningError;
use secureai_domain::testing::TestKit;
use secureai_domain::{Actor, AuditAction, EmailAddress, Role, SignInMethod, UserId, UserStatus};

use crate::kit::{active_user, audit_of, ctx, detail, invite, pw, with_admin};

async fn scim_caller(kit: &TestKit, admin: &Admin) -> ServiceCaller {
    let tokens = &kit.service.service_tokens;
    let scopes = ["scim".to_owned()];
    let made = tokens.create_service_token(admin, "Entra ID", Some(&scopes), &ctx()).await.unwrap();
    tokens.authenticate_service(&made.secret, TokenScope::Scim).await.unwrap()
}

fn person(email: &str) -> Attributes {
    Attributes {
        email: Some(email.to_owned()),
        name: Some("Ada Lovelace".to_owned()),
        department: Some(Some("Research".to_owned())),
        external_id: Some(Some("entra-1".to_owned())),
        ..Attributes::default()
    }
}

#[tokio::test]
async fn scim_creates_sso_users_within_the_seats_and_a_delete_only_deactivates() {
    let (kit, admin) = with_admin().await;
    let scim = scim_caller(&kit, &admin).await;
    let provisioning = &kit.service.provisioning;
    let made = provisioning.create(&scim, &person("Ada@Example.com"), &ctx()).await.unwrap();
    let user = &made.user;
    assert_eq!(
        (user.sign_in, user.status(), user.role),
        (SignInMethod::Sso, UserStatus::Invited, Role::User)
    );
    assert_eq!(made.external_id.as_deref(), Some("entra-1"));
    let last_mail = kit.store.state().outbox.last().map(|m| m.mail.message.clone());
    assert!(matches!(last_mail, Some(MailMessage::AccessReady { .. })), "{last_mail:?}");
    let invited = audit_of(&kit, AuditAction::UserInvited).pop().unwrap();
    assert!(
        matches!(&invited.actor, Actor::Service { name, .. } if name == "Entra ID"),
        "{:?}",
        invited.actor
    );
    assert_eq!(detail(&invited, "source"), Some("scim"));

    let twin = provisioning.create(&scim, &person("ada@EXAMPLE.com"), &ctx()).await;
    assert!(matches!(twin, Err(ProvisioningError::EmailTaken)), "{twin:?}");
    kit.service.users.set_seat_limit(&admin, Some(2), &ctx()).await.unwrap();
    let over = provisioning.create(&scim, &person("bob@example.com"), &ctx()).await;
    assert!(matches!(over, Err(ProvisioningError::SeatLimitReached { limit: 2 })), "{over:?}");
    let refused = audit_of(&kit, AuditAction::ProvisioningRefused).pop().unwrap();
    assert!(detail(&refused, "reason").unwrap().contains("2 seats"));
    let inactive = Attributes { active: Some(false), ..person("carol@example.com") };
    let carol = provisioning.create(&scim, &inactive, &ctx()).await.unwrap();
    assert_eq!(carol.user.status(), UserStatus::Deactivated, "an inactive user takes no seat");

    provisioning.delete(&scim, user.id, &ctx()).await.unwrap();
    let kept = kit.service.users.get_user(&admin, user.id).await.unwrap();
    assert_eq!(kept.status(), UserStatus::Deactivated, "deactivated, never deleted");
    let gone = provisioning.user(&scim, user.id).await;
    assert!(matches!(gone, Err(ProvisioningError::NotFound)), "{gone:?}");
    let again = provisioning.delete(&scim, user.id, &ctx()).await;
    assert!(matches!(again, Err(ProvisioningError::NotFound)), "{again:?}");
    assert_eq!(audit_of(&kit, AuditAction::ProvisioningDetached).len(), 1);

    // Created again, the same person comes back with their history.
    let back = provisioning.create(&scim, &person("ADA@example.com"), &ctx()).await.unwrap();
    assert_eq!(back.user.id, user.id);
    assert_eq!(back.user.status(), UserStatus::Invited);
    assert_eq!(provisioning.user(&scim, user.id).await.unwrap().user.id, user.id);
}

#[tokio::test]
async fn scim_keeps_the_last_admin_and_audits_what_it_changes() {
    let (kit, admin) = with_admin().await;
    let scim = scim_caller(&kit, &admin).await;
    let provisioning = &kit.service.provisioning;
    let root = admin.user().id;
    let off = Attributes { active: Some(false), ..Attributes::default() };
    let refused = provisioning.update(&scim, root, &off, &ctx()).await;
    assert!(matches!(refused, Err(ProvisioningError::LastAdmin)), "{refused:?}");
    let refused = provisioning.delete(&scim, root, &ctx()).await;
    assert!(matches!(refused, Err(ProvisioningError::LastAdmin)), "{refused:?}");
    assert_eq!(audit_of(&kit, AuditAction::ProvisioningRefused).len(), 2);
    // A password (break-glass) admin keeps their role whatever roles say.
    let demote = Attributes { admin: Some(false), ..Attributes::default() };
    let kept = provisioning.update(&scim, root, &demote, &ctx()).await.unwrap();
    assert_eq!(kept.user.role, Role::Admin);
    let still = kit.service.users.get_user(&admin, root).await.unwrap();
    assert!(still.is_active_admin());
    assert!(provisioning.user(&scim, root).await.is_ok(), "a refused delete detaches nothing");

    let ada = active_user(&kit, &admin, "ada@example.com", "user", "correct horse battery").await;
    let password = pw("correct horse battery");
    let sessions = &kit.service.sessions;
    let signed = sessions.sign_in("ada@example.com", &password, &ctx()).await.unwrap();
    let change = Attributes {
        email: Some("ada.king@example.com".to_owned()),
        name: Some("Ada King".to_owned()),
        department: Some(None),
        admin: Some(true),
        ..Attributes::default()
    };
    let changed = provisioning.update(&scim, ada, &change, &ctx()).await.unwrap();
    assert_eq!(changed.user.email.as_str(), "ada.king@example.com");
    assert_eq!(changed.user.role, Role::User, "a password account keeps its role");
    let moved = audit_of(&kit, AuditAction::EmailChanged).pop().unwrap();
    assert_eq!(moved.changes[0].before.as_deref(), Some("ada@example.com"));
    assert_eq!(moved.changes[0].after.as_deref(), Some("ada.king@example.com"));
    let taken = Attributes { email: Some("ROOT@example.com".to_owned()), ..Attributes::default() };
    let refused = provisioning.update(&scim, ada, &taken, &ctx()).await;
    assert!(matches!(refused, Err(ProvisioningError::EmailTaken)), "{refused:?}");
    let off = Attributes { active: Some(false), ..Attributes::default() };
    provisioning.update(&scim, ada, &off, &ctx()).await.unwrap();
    let ended = kit.service.sessions.authenticate(&signed.token).await;
    assert!(ended.is_err(), "a deactivation ends sessions at once");
}

#[tokio::test]
async fn only_a_scim_token_reads_users_by_id_address_and_position() {
    let (kit, admin) = with_admin().await;
    for i in 0..3 {
        let request = invite(&format!("user{i}@example.com"), "user");
        kit.service.invitations.invite_user(&admin, &request, &ctx()).await.unwrap();
    }
    let tokens = &kit.service.service_tokens;
    let usage = tokens.create_service_token(&admin, "chat", None, &ctx()).await.unwrap();
    let usage = tokens.authenticate_service(&usage.secret, TokenScope::Usage).await.unwrap();
    let scopes = ["scim".to_owned()];
    let scim = tokens.create_service_token(&admin, "Entra", Some(&scopes), &ctx()).await.unwrap();
    let scim = tokens.authenticate_service(&scim.secret, TokenScope::Scim).await.unwrap();
    let provisioning = &kit.service.provisioning;
    let root = admin.user().id;

    let refused = provisioning.user(&usage, root).await;
    assert!(matches!(refused, Err(ProvisioningError::Forbidden)), "{refused:?}");
    let refused = provisioning.users_by_position(&usage, 0, 10).await;
    assert!(matches!(refused, Err(ProvisioningError::Forbidden)), "{refused:?}");

    assert_eq!(provisioning.user(&scim, root).await.unwrap().user.id, root);
    let unknown = provisioning.user(&scim, UserId::generate()).await;
    assert!(matches!(unknown, Err(ProvisioningError::NotFound)), "{unknown:?}");
    let address = EmailAddress::parse("USER1@example.com").unwrap();
    let found = provisioning.user_by_email(&scim, &address).await.unwrap().unwrap();
    assert_eq!(found.user.email.as_str(), "user1@example.com");
    let page = provisioning.users_by_position(&scim, 1, 2).await.unwrap();
    assert_eq!(page.total, 4);
    let emails: Vec<&str> = page.users.iter().map(|u| u.user.email.as_str()).collect();
    assert_eq!(
        emails,
        ["user0@example.com", "user1@example.com"],
        "creation order, from position 1"
    );
    let capped = provisioning.users_by_position(&scim, 0, u32::MAX).await.unwrap();
    assert_eq!(capped.users.len(), 4);
}

/// Naming the admin group makes its SSO members admins and the SSO admins
/// outside it users; an SSO admin cannot name a group they are not in (it
/// would make them a user), and from then on SCIM `roles` make nobody an
/// admin.
#[tokio::test]
async fn the_admin_group_decides_who_is_admin_once_named() {
    use secureai_domain::provisioning::models::{
        GroupAttributes, MemberChange, ProvisioningSettings,
    };
    let (kit, root) = with_admin().await;
    let scim = scim_caller(&kit, &root).await;
    let provisioning = &kit.service.provisioning;
    let admin_by_roles = Attributes { admin: Some(true), ..person("dan@example.com") };
    let dan = provisioning.create(&scim, &admin_by_roles, &ctx()).await.unwrap().user.id;
    let ada = provisioning
        .create(&scim, &Attributes { external_id: None, ..person("ada@example.com") }, &ctx())
        .await
        .unwrap()
        .user
        .id;
    let members = MemberChange { add: vec![ada], ..MemberChange::default() };
    let attributes = GroupAttributes { name: Some("Admins".into()), external_id: None, members };
    let group = provisioning.create_group(&scim, &attributes, &ctx()).await.unwrap();
    let role = |id: UserId| kit.store.state().users[&id].role;
    assert_eq!((role(dan), role(ada)), (Role::Admin, Role::User));

    // An SSO admin outside the group cannot name it.
    let sso_admin = active_user(&kit, &root, "eve@example.com", "admin", "eve-password-1").await;
    let signed_in = kit
        .service
        .sessions
        .sign_in("eve@example.com", &pw("eve-password-1"), &ctx())
        .await
        .unwrap();
    kit.store.state().users.get_mut(&sso_admin).unwrap().sign_in = SignInMethod::Sso;
    let eve = kit.service.sessions.authenticate(&signed_in.token).await.unwrap().admin().unwrap();
    let named = ProvisioningSettings { admin_group: Some(group.id), send_access_email: true };
    let refused = provisioning.set_settings(&eve, &named, &ctx()).await;
    assert!(matches!(refused, Err(ProvisioningError::Invalid(_))), "{refused:?}");
    assert_eq!(kit.store.state().provisioning_settings.admin_group, None, "nothing saved");

    provisioning.set_settings(&root, &named, &ctx()).await.unwrap();
    assert_eq!((role(ada), role(dan)), (Role::Admin, Role::User));
    assert_eq!(role(sso_admin), Role::User, "every SSO admin outside the group");
    assert_eq!(role(root.user().id), Role::Admin, "a password admin keeps the role");
    let demoted = audit_of(&kit, AuditAction::RoleChanged);
    assert!(demoted.iter().any(|e| e.target_id == Some(dan) && detail(e, "admin_group").is_some()));

    let promote = Attributes { admin: Some(true), ..Attributes::default() };
    provisioning.update(&scim, dan, &promote, &ctx()).await.unwrap();
    assert_eq!(role(dan), Role::User, "SCIM roles make nobody an admin now");
    let carl = provisioning
        .create(
            &scim,
            &Attributes { admin: Some(true), external_id: None, ..person("carl@example.com") },
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(carl.user.role, Role::User);
}
