//! [`ProvisioningRepository`](crate::provisioning::ports::ProvisioningRepository):
//! users created and changed with their SCIM identity, and reads that
//! leave out users the identity provider deleted.

use super::fixtures::{
    active, audit_about, change, deactivation, demotion, email, invite, join_all, new_invited, now,
    start_session,
};
use crate::audit::models::AuditAction;
use crate::invitations::ports::InsertUserError;
use crate::provisioning::models::ScimIdentity;
use crate::provisioning::ports::NewProvisionedUser;
use crate::service::Ports;
use crate::users::models::{DisplayName, Role, User, UserStatus};
use crate::users::ports::ChangeUserError;

/// A user as the provisioning use case builds one (no mail when `mail` is
/// false), not stored.
fn new_provisioned(
    ports: &Ports,
    address: &str,
    external_id: Option<&str>,
    seat_limit: Option<u32>,
    mail: bool,
) -> NewProvisionedUser {
    let (new, _) = new_invited(ports, address, Role::User, seat_limit);
    NewProvisionedUser {
        user: new.user,
        invitation: new.invitation,
        mail: mail.then_some(new.mail),
        audit: new.audit,
        seat_limit,
        external_id: external_id.map(str::to_owned),
        user_name: None,
    }
}

fn detached(ports: &Ports, external_id: Option<&str>) -> ScimIdentity {
    ScimIdentity {
        external_id: external_id.map(str::to_owned),
        user_name: None,
        detached_at: Some(now(ports)),
    }
}

/// `create` MUST write the user, their invitation, the email only if
/// given, the audit event and the identity together; `by_position` MUST
/// page in creation order leaving detached users out of the page and the
/// total; `get`, `find_by_email` and `find_by_external_id` (case-exact)
/// MUST NOT find a detached user.
pub async fn provisioned_users_page_in_order_without_detached_ones(ports: Ports) {
    let mut made = Vec::new();
    for i in 0..7_i64 {
        let mut new = new_provisioned(
            &ports,
            &format!("u{i}@example.com"),
            Some(&format!("X-{i}")),
            None,
            i != 3,
        );
        new.user.created_at = now(&ports) + chrono::Duration::seconds(7 - i);
        made.push(new.user.clone());
        ports.provisioning.create(new).await.unwrap();
    }
    let third = &made[3];
    assert!(ports.outbox.latest_for(third.id, "invitation").await.unwrap().is_none());
    assert!(ports.outbox.latest_for(made[2].id, "invitation").await.unwrap().is_some());
    assert_eq!(audit_about(&ports, third.id).await.len(), 1, "the creation is audited");
    let found = ports.provisioning.find_by_external_id("X-3", 10).await.unwrap();
    assert_eq!(found.iter().map(|p| p.user.id).collect::<Vec<_>>(), vec![third.id]);
    assert_eq!(found[0].external_id.as_deref(), Some("X-3"));
    assert!(ports.provisioning.find_by_external_id("x-3", 10).await.unwrap().is_empty());

    let gone = made[5].clone();
    let at = now(&ports);
    ports.provisioning.update(gone.id, None, detached(&ports, Some("X-5")), at).await.unwrap();
    assert_eq!(ports.provisioning.get(gone.id).await.unwrap(), None);
    assert_eq!(ports.provisioning.find_by_email(&gone.email).await.unwrap(), None);
    assert!(ports.provisioning.find_by_external_id("X-5", 10).await.unwrap().is_empty());
    let identity = ports.provisioning.identity(gone.id).await.unwrap().unwrap();
    assert!(identity.detached_at.is_some() && identity.external_id.as_deref() == Some("X-5"));
    assert!(ports.users.get(gone.id).await.unwrap().is_some(), "the person stays");

    made.retain(|u| u.id != gone.id);
    made.sort_by_key(|u| (u.created_at, u.id));
    let mut seen = Vec::new();
    for offset in [0, 4] {
        let (page, total) = ports.provisioning.by_position(offset, 4).await.unwrap();
        assert_eq!(total, 6);
        seen.extend(page.into_iter().map(|p| p.user.id));
    }
    assert_eq!(seen, made.iter().map(|u| u.id).collect::<Vec<_>>());
    let (beyond, total) = ports.provisioning.by_position(60, 4).await.unwrap();
    assert!(beyond.is_empty() && total == 6);
}

/// A change of address MUST be refused with `EmailTaken` when another user
/// has it in any letter case, writing nothing; a free one MUST be written
/// (found by the new address, not the old).
pub async fn an_address_change_stays_unique(ports: Ports) {
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let bob = invite(&ports, "bob@example.com", Role::User).await;
    let taken = User { email: email("BOB@example.com"), ..ada.clone() };
    let result =
        ports.users.apply_change(change(&ports, &ada, taken, AuditAction::EmailChanged)).await;
    assert!(matches!(result, Err(ChangeUserError::EmailTaken)), "{result:?}");
    assert_eq!(ports.users.get(ada.id).await.unwrap().map(|u| u.email), Some(ada.email.clone()));
    assert!(
        audit_about(&ports, ada.id).await.iter().all(|e| e.action != AuditAction::EmailChanged)
    );
    let found = ports.users.find_by_email(&email("bob@example.com")).await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(bob.user.id));

    let moved = User { email: email("Ada.King@example.com"), ..ada.clone() };
    ports.users.apply_change(change(&ports, &ada, moved, AuditAction::EmailChanged)).await.unwrap();
    let found = ports.users.find_by_email(&email("ada.king@EXAMPLE.com")).await.unwrap();
    assert_eq!(
        found.map(|u| (u.id, u.email.as_str().to_owned())),
        Some((ada.id, "Ada.King@example.com".into()))
    );
    assert_eq!(ports.users.find_by_email(&email("ada@example.com")).await.unwrap(), None);
}

async fn modified_at(ports: &Ports, id: crate::UserId) -> chrono::DateTime<chrono::Utc> {
    ports.provisioning.get(id).await.unwrap().unwrap().modified_at
}

/// `modified_at` MUST be the creation time of a new user, the time of the
/// audit event of a change made through the users' port (as the panel
/// makes them), and `at` after an `update`, with or without a change; a
/// sign-in MUST NOT change it.
pub async fn a_user_is_modified_when_they_change(ports: Ports) {
    let new = new_provisioned(&ports, "ada@example.com", Some("A"), None, false);
    let ada = new.user.clone();
    ports.provisioning.create(new).await.unwrap();
    assert_eq!(modified_at(&ports, ada.id).await, ada.created_at);

    let renamed = User { name: DisplayName::parse("Ada King").unwrap(), ..ada.clone() };
    let mut renaming = change(&ports, &ada, renamed.clone(), AuditAction::ProfileChanged);
    let later = ada.created_at + chrono::Duration::seconds(5);
    renaming.audit[0].at = later;
    ports.users.apply_change(renaming).await.unwrap();
    assert_eq!(modified_at(&ports, ada.id).await, later);

    let identity = ScimIdentity { external_id: Some("B".into()), ..ScimIdentity::default() };
    let latest = later + chrono::Duration::seconds(5);
    ports.provisioning.update(ada.id, None, identity, latest).await.unwrap();
    assert_eq!(modified_at(&ports, ada.id).await, latest);
    let found = ports.provisioning.find_by_external_id("B", 1).await.unwrap();
    assert_eq!(found.iter().map(|p| p.modified_at).collect::<Vec<_>>(), vec![latest]);

    let bob = active(&ports, "bob@example.com", Role::User).await;
    let activated = modified_at(&ports, bob.id).await;
    assert_eq!(Some(activated), bob.state.activated_at(), "an activation is a change");
    start_session(&ports, &bob, activated + chrono::Duration::seconds(60)).await;
    let after_sign_in = modified_at(&ports, bob.id).await;
    assert_eq!(after_sign_in, activated, "a sign-in is no change");
}

/// `update` MUST write the identity only with the change: a change the
/// store refuses (the last admin) leaves the identity as it was.
pub async fn an_identity_is_written_with_its_change_or_not_at_all(ports: Ports) {
    let root = active(&ports, "root@example.com", Role::Admin).await;
    let before = ScimIdentity {
        external_id: Some("R".into()),
        user_name: Some("root".into()),
        detached_at: None,
    };
    ports.provisioning.update(root.id, None, before.clone(), now(&ports)).await.unwrap();
    let result = ports
        .provisioning
        .update(
            root.id,
            Some(deactivation(&ports, &root)),
            detached(&ports, Some("R")),
            now(&ports),
        )
        .await;
    assert!(matches!(result, Err(ChangeUserError::LastAdmin)), "{result:?}");
    assert_eq!(ports.provisioning.identity(root.id).await.unwrap(), Some(before));
    assert!(ports.provisioning.get(root.id).await.unwrap().is_some());
    let result = ports
        .provisioning
        .update(root.id, Some(demotion(&ports, &root)), ScimIdentity::default(), now(&ports))
        .await;
    assert!(matches!(result, Err(ChangeUserError::LastAdmin)), "{result:?}");
    let stored = ports.users.get(root.id).await.unwrap().unwrap();
    assert_eq!((stored.role, stored.status()), (Role::Admin, UserStatus::Active));

    // An account name is unique in any letter case, and found so.
    let found = ports.provisioning.find_by_user_name("ROOT").await.unwrap();
    assert_eq!(found.map(|p| (p.user.id, p.user_name)), Some((root.id, Some("root".into()))));
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let twin = ScimIdentity { user_name: Some("Root".into()), ..ScimIdentity::default() };
    let result = ports.provisioning.update(ada.id, None, twin, now(&ports)).await;
    assert!(matches!(result, Err(ChangeUserError::EmailTaken)), "{result:?}");
    let mut new = new_provisioned(&ports, "bob@example.com", None, None, true);
    new.user_name = Some("rOOT".into());
    let bob = new.user.id;
    let result = ports.provisioning.create(new).await;
    assert!(matches!(result, Err(InsertUserError::EmailTaken)), "{result:?}");
    assert_eq!(ports.users.get(bob).await.unwrap(), None, "nothing of a refused create");
}

/// Concurrent `create`s at the last free seat MUST create exactly one user.
pub async fn concurrent_creates_take_the_last_seat_once(ports: Ports) {
    invite(&ports, "first@example.com", Role::User).await;
    let attempts: Vec<_> = (0..50)
        .map(|i| new_provisioned(&ports, &format!("n{i}@example.com"), None, Some(2), true))
        .collect();
    let results =
        join_all(attempts.into_iter().map(|new| ports.provisioning.create(new)).collect()).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(InsertUserError::SeatLimitReached { limit: 2 })))
        .count();
    assert_eq!((created, refused), (1, 49), "{results:?}");
    assert_eq!(ports.users.count_seats().await.unwrap(), 2);
}

/// `record_failure` MUST keep only the newest `keep` refused requests, and
/// `recent_failures` MUST list them newest first.
pub async fn only_the_newest_refused_requests_are_kept(ports: Ports) {
    let start = now(&ports);
    for i in 0..12_i64 {
        let failure = crate::provisioning::models::RequestFailure {
            at: start + chrono::Duration::seconds(i),
            method: "PATCH".into(),
            path: format!("/scim/v2/Users/{i}"),
            status: 409,
            detail: format!("failure {i}"),
            token: "Entra ID".into(),
        };
        ports.provisioning.record_failure(&failure, 10).await.unwrap();
    }
    let kept = ports.provisioning.recent_failures(50).await.unwrap();
    let details: Vec<&str> = kept.iter().map(|f| f.detail.as_str()).collect();
    let expected: Vec<String> = (2..12).rev().map(|i| format!("failure {i}")).collect();
    assert_eq!(details, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!((kept[0].status, kept[0].token.as_str()), (409, "Entra ID"));
    assert_eq!(ports.provisioning.recent_failures(3).await.unwrap().len(), 3);
}
