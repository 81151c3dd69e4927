//! Listing users: keyset pages through opaque cursors, in a stable order
//! (sort value, then id), with filters and a total.

use chrono::Duration;
use secureai_domain::access::Admin;
use secureai_domain::testing::TestKit;
use secureai_domain::users::errors::ListUsersError;
use secureai_domain::users::listing::{ListUsersRequest, UsersPage};
use secureai_domain::{Policy, User, UserId, UserStatus};

use crate::kit::{active_user, ctx, invite, with_admin, with_admin_under};

/// Invites `n` users, moving the clock a minute before each when `spaced`.
async fn invite_many(kit: &TestKit, admin: &Admin, n: usize, spaced: bool) {
    for i in 0..n {
        if spaced {
            kit.clock.advance(Duration::minutes(1));
        }
        let email = format!("user{i}@example.com");
        kit.service.invitations.invite_user(admin, &invite(&email, "user"), &ctx()).await.unwrap();
    }
}

/// Every page of `request`, following the cursors to the end.
async fn all_pages(kit: &TestKit, admin: &Admin, request: ListUsersRequest) -> Vec<UsersPage> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let request = ListUsersRequest { cursor, ..request.clone() };
        let page = kit.service.users.list_users(admin, &request).await.unwrap();
        cursor = page.next_cursor.clone();
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
    }
}

fn ids(pages: &[UsersPage]) -> Vec<UserId> {
    pages.iter().flat_map(|p| p.items.iter().map(|u| u.id)).collect()
}

/// Every stored user's id, by (created_at, id).
fn ids_by_creation(kit: &TestKit) -> Vec<UserId> {
    let state = kit.store.state();
    let mut users: Vec<&User> = state.users.values().collect();
    users.sort_by_key(|u| (u.created_at, u.id));
    users.iter().map(|u| u.id).collect()
}

#[tokio::test]
async fn seven_users_come_in_pages_of_three_three_and_one() {
    let (kit, admin) = with_admin().await;
    invite_many(&kit, &admin, 6, true).await;

    let pages =
        all_pages(&kit, &admin, ListUsersRequest { limit: Some(3), ..Default::default() }).await;

    let sizes: Vec<usize> = pages.iter().map(|p| p.items.len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    assert!(pages.iter().all(|p| p.total == 7 && p.total_exact));
    assert_eq!(pages[2].next_cursor, None);
}

#[tokio::test]
async fn users_are_listed_in_the_order_they_were_created() {
    let (kit, admin) = with_admin().await;
    invite_many(&kit, &admin, 6, true).await;

    let pages =
        all_pages(&kit, &admin, ListUsersRequest { limit: Some(3), ..Default::default() }).await;

    assert_eq!(ids(&pages), ids_by_creation(&kit));
    assert_eq!(pages[0].items[0].id, admin.user().id, "the first admin came first");
}

#[tokio::test]
async fn users_created_at_the_same_instant_are_ordered_by_id_without_gaps_or_repeats() {
    let (kit, admin) = with_admin().await;
    invite_many(&kit, &admin, 6, false).await;

    let pages =
        all_pages(&kit, &admin, ListUsersRequest { limit: Some(2), ..Default::default() }).await;

    assert_eq!(pages.len(), 4);
    assert_eq!(ids(&pages), ids_by_creation(&kit));
}

#[tokio::test]
async fn a_descending_sort_lists_the_newest_first() {
    let (kit, admin) = with_admin().await;
    invite_many(&kit, &admin, 4, true).await;

    let pages = all_pages(
        &kit,
        &admin,
        ListUsersRequest { sort: Some("-created".into()), limit: Some(2), ..Default::default() },
    )
    .await;

    let mut expected = ids_by_creation(&kit);
    expected.reverse();
    assert_eq!(ids(&pages), expected);
}

#[tokio::test]
async fn a_garbage_cursor_is_refused() {
    let (kit, admin) = with_admin().await;

    let refused = kit
        .service
        .users
        .list_users(
            &admin,
            &ListUsersRequest { cursor: Some("garbage".into()), ..Default::default() },
        )
        .await;

    assert!(matches!(refused, Err(ListUsersError::InvalidCursor)));
}

#[tokio::test]
async fn a_cursor_is_refused_with_another_sort_than_the_one_it_came_from() {
    let (kit, admin) = with_admin().await;
    invite_many(&kit, &admin, 3, true).await;
    let first = kit
        .service
        .users
        .list_users(&admin, &ListUsersRequest { limit: Some(2), ..Default::default() })
        .await
        .unwrap();

    let by_name = ListUsersRequest {
        sort: Some("name".into()),
        cursor: first.next_cursor,
        ..Default::default()
    };
    let refused = kit.service.users.list_users(&admin, &by_name).await;

    assert!(matches!(refused, Err(ListUsersError::InvalidCursor)));
}

#[tokio::test]
async fn an_unknown_sort_is_refused_naming_the_parameter() {
    let (kit, admin) = with_admin().await;

    let refused = kit
        .service
        .users
        .list_users(&admin, &ListUsersRequest { sort: Some("age".into()), ..Default::default() })
        .await;

    assert!(matches!(refused, Err(ListUsersError::Invalid(f)) if f.field == "sort"));
}

#[tokio::test]
async fn the_page_size_is_kept_between_one_and_the_policy_maximum() {
    let (kit, admin) = with_admin_under(Policy { max_page_size: 4, ..Policy::default() }).await;
    invite_many(&kit, &admin, 6, true).await;

    let zero = kit
        .service
        .users
        .list_users(&admin, &ListUsersRequest { limit: Some(0), ..Default::default() })
        .await
        .unwrap();
    let huge = kit
        .service
        .users
        .list_users(&admin, &ListUsersRequest { limit: Some(1000), ..Default::default() })
        .await
        .unwrap();

    assert_eq!(zero.items.len(), 1);
    assert_eq!(huge.items.len(), 4);
}

#[tokio::test]
async fn filters_narrow_both_the_list_and_the_total() {
    let (kit, admin) = with_admin().await;
    invite_many(&kit, &admin, 3, true).await;
    let grace =
        active_user(&kit, &admin, "grace.hopper@navy.example", "user", "grace's pw 1").await;

    let invited = kit
        .service
        .users
        .list_users(
            &admin,
            &ListUsersRequest { status: Some("invited".into()), ..Default::default() },
        )
        .await
        .unwrap();
    let admins = kit
        .service
        .users
        .list_users(&admin, &ListUsersRequest { role: Some("admin".into()), ..Default::default() })
        .await
        .unwrap();
    let searched = kit
        .service
        .users
        .list_users(&admin, &ListUsersRequest { q: Some("NAVY".into()), ..Default::default() })
        .await
        .unwrap();

    assert_eq!(invited.total, 3);
    assert!(invited.items.iter().all(|u| u.status() == UserStatus::Invited));
    assert_eq!(admins.items.iter().map(|u| u.id).collect::<Vec<_>>(), [admin.user().id]);
    assert_eq!((searched.total, searched.items[0].id), (1, grace));
}
