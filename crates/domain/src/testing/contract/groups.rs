//! [`GroupRepository`](crate::provisioning::ports::GroupRepository):
//! groups and their members, one transaction per change.

use super::fixtures::{active, demotion, join_all, now};
use crate::provisioning::models::{Group, MemberChange};
use crate::provisioning::ports::{GroupWrite, GroupWriteError};
use crate::service::Ports;
use crate::users::models::{Role, UserId};

fn group(ports: &Ports, name: &str) -> Group {
    let at = now(ports);
    Group {
        id: crate::record_id(),
        name: name.to_owned(),
        external_id: None,
        created_at: at,
        updated_at: at,
        members: Vec::new(),
    }
}

fn write(group: &Group, members: MemberChange) -> GroupWrite {
    GroupWrite {
        group: group.clone(),
        members,
        role_changes: Vec::new(),
        audit: Vec::new(),
        expected_members: None,
    }
}

fn adding(members: &[UserId]) -> MemberChange {
    MemberChange { add: members.to_vec(), ..MemberChange::default() }
}

async fn members(ports: &Ports, group: &Group) -> Vec<UserId> {
    let mut members = ports.groups.group(group.id).await.unwrap().unwrap().members;
    members.sort();
    members
}

/// Concurrent changes adding different members MUST keep all of them;
/// `remove` and `replace` MUST apply; deleting a group MUST leave its
/// members as they were.
pub async fn concurrent_member_additions_keep_every_member(ports: Ports) {
    let mut people = Vec::new();
    for i in 0..6 {
        people.push(active(&ports, &format!("p{i}@example.com"), Role::User).await.id);
    }
    let team = group(&ports, "Engineers");
    ports.groups.create_group(write(&team, adding(&people[..1]))).await.unwrap();
    let changes: Vec<_> = people[1..]
        .iter()
        .map(|p| ports.groups.change_group(write(&team, adding(&[*p]))))
        .collect();
    for result in join_all(changes).await {
        result.unwrap();
    }
    let mut all = people.clone();
    all.sort();
    assert_eq!(members(&ports, &team).await, all, "every concurrent addition kept");

    let remove = MemberChange { remove: vec![people[0], people[1]], ..MemberChange::default() };
    ports.groups.change_group(write(&team, remove)).await.unwrap();
    assert_eq!(members(&ports, &team).await.len(), 4);
    let replace = MemberChange { replace: Some(vec![people[5]]), ..MemberChange::default() };
    ports.groups.change_group(write(&team, replace)).await.unwrap();
    assert_eq!(members(&ports, &team).await, vec![people[5]]);
    let of = ports.groups.groups_of(people[5]).await.unwrap();
    assert_eq!(of.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["Engineers"]);

    ports
        .groups
        .delete_group(
            team.id,
            None,
            Vec::new(),
            super::fixtures::event(now(&ports), crate::audit::models::AuditAction::GroupDeleted),
        )
        .await
        .unwrap();
    assert_eq!(ports.groups.group(team.id).await.unwrap(), None);
    assert!(ports.groups.groups_of(people[5]).await.unwrap().is_empty());
    for person in &people {
        assert!(ports.users.get(*person).await.unwrap().is_some(), "members are never deleted");
    }
    let again = ports
        .groups
        .delete_group(
            team.id,
            None,
            Vec::new(),
            super::fixtures::event(now(&ports), crate::audit::models::AuditAction::GroupDeleted),
        )
        .await;
    assert!(matches!(again, Err(GroupWriteError::NotFound)), "{again:?}");
}

/// Group names MUST be unique in any letter case; a member who is no user
/// MUST be refused with `NotFound`, writing nothing; pages MUST follow
/// creation order.
pub async fn group_names_are_unique_and_members_are_users(ports: Ports) {
    let ada = active(&ports, "ada@example.com", Role::User).await.id;
    let mut first = group(&ports, "Engineers");
    first.created_at -= chrono::Duration::seconds(5);
    ports.groups.create_group(write(&first, adding(&[ada]))).await.unwrap();
    let twin = group(&ports, "ENGINEERS");
    let result = ports.groups.create_group(write(&twin, MemberChange::default())).await;
    assert!(matches!(result, Err(GroupWriteError::NameTaken)), "{result:?}");
    let other = group(&ports, "Sales");
    ports.groups.create_group(write(&other, MemberChange::default())).await.unwrap();
    let renamed = Group { name: "engineers".into(), ..other.clone() };
    let result = ports.groups.change_group(write(&renamed, MemberChange::default())).await;
    assert!(matches!(result, Err(GroupWriteError::NameTaken)), "{result:?}");
    let ghost = UserId::generate();
    let result = ports.groups.change_group(write(&other, adding(&[ada, ghost]))).await;
    assert!(matches!(result, Err(GroupWriteError::UnknownMember)), "{result:?}");
    assert!(members(&ports, &other).await.is_empty(), "nothing of a refused change");
    let result = ports.groups.create_group(write(&group(&ports, "Ghosts"), adding(&[ghost]))).await;
    assert!(matches!(result, Err(GroupWriteError::UnknownMember)), "{result:?}");
    assert_eq!(ports.groups.group_by_name("ghosts").await.unwrap(), None);
    let found = ports.groups.group_by_name("engineers").await.unwrap().unwrap();
    assert_eq!((found.id, found.members), (first.id, vec![ada]));
    let (page, total) = ports.groups.groups_by_position(0, 10).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(page.iter().map(|g| g.id).collect::<Vec<_>>(), [first.id, other.id]);
}

/// Role changes MUST be written with the membership change or not at all:
/// one that would leave no active admin refuses the whole change.
pub async fn role_changes_are_written_with_the_membership_or_not_at_all(ports: Ports) {
    let root = active(&ports, "root@example.com", Role::Admin).await;
    let admins = group(&ports, "Admins");
    ports.groups.create_group(write(&admins, adding(&[root.id]))).await.unwrap();
    let leave = MemberChange { remove: vec![root.id], ..MemberChange::default() };
    let mut change = write(&admins, leave);
    change.role_changes = vec![demotion(&ports, &root)];
    let result = ports.groups.change_group(change).await;
    assert!(matches!(result, Err(GroupWriteError::LastAdmin)), "{result:?}");
    assert_eq!(members(&ports, &admins).await, vec![root.id], "the membership stays");
    assert_eq!(ports.users.get(root.id).await.unwrap().unwrap().role, Role::Admin);

    // Worked out from members that changed meanwhile: refused as stale.
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let mut stale = write(&admins, adding(&[ada.id]));
    stale.expected_members = Some(Vec::new());
    let result = ports.groups.change_group(stale).await;
    assert!(matches!(result, Err(GroupWriteError::Stale)), "{result:?}");
    let event =
        super::fixtures::event(now(&ports), crate::audit::models::AuditAction::GroupDeleted);
    let result = ports.groups.delete_group(admins.id, Some(Vec::new()), Vec::new(), event).await;
    assert!(matches!(result, Err(GroupWriteError::Stale)), "{result:?}");
    assert_eq!(members(&ports, &admins).await, vec![root.id], "nothing of a stale change");
}

/// `group_names` MUST list groups by name in any letter case, up to its
/// limit; the users list's `group` filter MUST match the group's members
/// only, counted exactly, with the other filters applied too, and nobody
/// for a group that does not exist.
pub async fn the_users_list_filters_by_group(ports: Ports) {
    use crate::users::ports::{UserFilter, UserQuery, UserSort};
    let mut people = Vec::new();
    for i in 0..4 {
        people.push(active(&ports, &format!("p{i}@example.com"), Role::User).await.id);
    }
    let (zeta, alpha) = (group(&ports, "zeta"), group(&ports, "Alpha"));
    ports.groups.create_group(write(&zeta, adding(&people[..1]))).await.unwrap();
    ports.groups.create_group(write(&alpha, adding(&people[1..3]))).await.unwrap();
    let names = ports.groups.group_names(10).await.unwrap();
    assert_eq!(names.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["Alpha", "zeta"]);
    assert_eq!(ports.groups.group_names(1).await.unwrap()[0].id, alpha.id);

    let listed = |group: uuid::Uuid, words: Vec<String>| {
        let query = UserQuery {
            filter: UserFilter { group: Some(group), words, ..UserFilter::default() },
            sort: UserSort::Created,
            descending: false,
            limit: 10,
            after: None,
        };
        let ports = ports.clone();
        async move { ports.users.list(&query, 100).await.unwrap() }
    };
    let page = listed(alpha.id, Vec::new()).await;
    let mut ids: Vec<UserId> = page.items.iter().map(|u| u.id).collect();
    ids.sort();
    let mut expected = people[1..3].to_vec();
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!((page.total.count, page.total.exact), (2, true));
    let page = listed(alpha.id, vec!["p2".into()]).await;
    assert_eq!(page.items.iter().map(|u| u.id).collect::<Vec<_>>(), vec![people[2]]);
    let page = listed(crate::record_id(), Vec::new()).await;
    assert!(page.items.is_empty() && page.total.count == 0);
}
