//! Listing and search on the real store agree with the domain's reference
//! semantics (`UserFilter::matches`, `UserSort::value_of`) for every
//! filter, sort and direction, page by page.

use chrono::Duration;
use secureai_domain::invitations::service::InviteRequest;
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::users::listing::ListUsersRequest;
use secureai_domain::users::ports::{UserFilter, UserQuery, UserRepository, UserSort, UserTotal};
use secureai_domain::{Policy, RequestContext, User};

use crate::support::TestDb;
use crate::use_cases::first_admin;

const FIRST: [&str; 6] = ["Ada", "Grace", "Alan", "Barbara", "Édith", "Katherine"];
const LAST: [&str; 5] = ["Lovelace", "Hopper", "Turing", "Liskov", "Smith"];
const DEPARTMENTS: [&str; 3] = ["Research", "Legal", "Sales"];

fn listed(pages: &[Vec<User>]) -> Vec<String> {
    pages.iter().flatten().map(|u| u.email.to_string()).collect()
}

pub async fn every_filter_sort_and_direction_pages_through_exactly_the_matching_users(db: TestDb) {
    let store = db.store.clone();
    pages_through_the_matching_users(&db, store, true).await;
}

/// The same, with every search treated as broad (walk users in order and
/// check each), the plan large instances use for common words, and a walk
/// of 8 users per page (2 in orders other than creation): pages end early (fewer users, a cursor to go on)
/// and still list every match exactly once.
pub async fn broad_searches_page_through_the_same_users(db: TestDb) {
    let options = secureai_store::StoreOptions {
        selective_search: 1,
        ordered_search: 1,
        broad_walk: Some(8),
        ..Default::default()
    };
    let store = db.reopen(options).await;
    pages_through_the_matching_users(&db, store, false).await;
}

/// The same broad plan with every statement through the pool, as on
/// in-memory SQLite (SQLite's `instr` instead of the reader's substring
/// function).
pub async fn broad_searches_through_the_pool_page_through_the_same_users(db: TestDb) {
    let options = secureai_store::StoreOptions {
        selective_search: 1,
        ordered_search: 1,
        broad_walk: Some(8),
        synchronous_reads: false,
        ..Default::default()
    };
    let store = db.reopen(options).await;
    assert!(!store.resolves_sessions_synchronously());
    pages_through_the_matching_users(&db, store, false).await;
}

async fn pages_through_the_matching_users(
    db: &TestDb,
    store: secureai_store::SqlStore,
    totals_exact: bool,
) {
    let (service, clock) = crate::support::service_over(&store, Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();
    for i in 0..30 {
        clock.advance(Duration::seconds(7 * (i % 4) + 1));
        let first = FIRST[i as usize % FIRST.len()];
        let last = LAST[i as usize % LAST.len()];
        let request = InviteRequest {
            email: format!(
                "{}.{}{i}@{}.example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                if i % 2 == 0 { "corp" } else { "lab" }
            ),
            name: format!("{first} {last}"),
            role: if i % 7 == 0 { "admin".into() } else { "user".into() },
            department: Some(DEPARTMENTS[i as usize % 3].into()),
            sign_in: None,
        };
        let invited = service.invitations.invite_user(&admin, &request, &ctx).await.unwrap();
        // Every change a search filters or sorts by, after the invitation:
        // acceptance, sign-ins, role, department, name, deactivation.
        if i % 3 == 1 {
            let password = secrecy::SecretString::from(format!("password of user {i}"));
            service
                .invitations
                .accept_invitation(&invited.token, password.clone(), &ctx)
                .await
                .unwrap();
            for _ in 0..(i % 4) {
                clock.advance(Duration::seconds(3));
                service.sessions.sign_in(&request.email, &password, &ctx).await.unwrap();
            }
        }
        if i % 4 == 2 {
            let change = UserUpdate {
                role: Some(if i % 8 == 2 { "admin".into() } else { "user".into() }),
                department: Some(DEPARTMENTS[(i as usize + 1) % 3].into()),
                name: (i % 8 == 6).then(|| format!("{} {}", last, first)),
                ..UserUpdate::default()
            };
            service.users.update_user(&admin, invited.user.id, &change, &ctx).await.unwrap();
        }
        if i % 5 == 0 {
            let deactivate = UserUpdate { active: Some(false), ..UserUpdate::default() };
            service.users.update_user(&admin, invited.user.id, &deactivate, &ctx).await.unwrap();
        }
    }
    let everyone = service
        .users
        .list_users(&admin, &ListUsersRequest { limit: Some(200), ..Default::default() })
        .await
        .unwrap()
        .items;
    assert_eq!(everyone.len(), 31);

    let queries = [
        ListUsersRequest::default(),
        ListUsersRequest { q: Some("ada".into()), ..Default::default() },
        // Words several of a user's terms start with (name and email), in
        // creation order both ways: the page read from the term index.
        ListUsersRequest { q: Some("a".into()), ..Default::default() },
        ListUsersRequest {
            q: Some("h".into()),
            sort: Some("-created".into()),
            ..Default::default()
        },
        ListUsersRequest {
            q: Some("LOVE".into()),
            sort: Some("-name".into()),
            ..Default::default()
        },
        // A single word in every other order, paged by cursor: by name and
        // email read from the term index too (the terms carry those keys,
        // renames included), by last sign-in from the users.
        ListUsersRequest { q: Some("a".into()), sort: Some("name".into()), ..Default::default() },
        ListUsersRequest {
            q: Some("corp".into()),
            sort: Some("-email".into()),
            ..Default::default()
        },
        ListUsersRequest {
            q: Some("a".into()),
            sort: Some("last_sign_in".into()),
            ..Default::default()
        },
        // Signed in, then renamed.
        ListUsersRequest {
            q: Some("turing".into()),
            sort: Some("last_sign_in".into()),
            ..Default::default()
        },
        ListUsersRequest { q: Some("grace hop".into()), ..Default::default() },
        ListUsersRequest {
            q: Some("lab.example".into()),
            sort: Some("email".into()),
            ..Default::default()
        },
        ListUsersRequest { q: Some("édith".into()), ..Default::default() },
        ListUsersRequest { q: Some("nobody".into()), ..Default::default() },
        ListUsersRequest {
            role: Some("admin".into()),
            sort: Some("-created".into()),
            ..Default::default()
        },
        ListUsersRequest {
            status: Some("deactivated".into()),
            sort: Some("name".into()),
            ..Default::default()
        },
        ListUsersRequest {
            department: Some("Legal".into()),
            status: Some("invited".into()),
            ..Default::default()
        },
        ListUsersRequest { sort: Some("-email".into()), ..Default::default() },
        ListUsersRequest { sort: Some("last_sign_in".into()), ..Default::default() },
        ListUsersRequest {
            sort: Some("-last_sign_in".into()),
            q: Some("a".into()),
            ..Default::default()
        },
        ListUsersRequest {
            sort: Some("last_sign_in".into()),
            q: Some("example".into()),
            status: Some("active".into()),
            ..Default::default()
        },
        ListUsersRequest {
            q: Some("corp".into()),
            role: Some("admin".into()),
            department: Some("Legal".into()),
            ..Default::default()
        },
        ListUsersRequest {
            q: Some("hopper".into()),
            status: Some("invited".into()),
            sort: Some("-name".into()),
            ..Default::default()
        },
    ];
    // Pages that ended before their limit with more to come.
    let mut ended_early = 0;
    for base in queries {
        // The reference answer, from the domain's own semantics.
        let mut expected: Vec<&User> = everyone
            .iter()
            .filter(|u| {
                let words: Vec<String> = base
                    .q
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                let filter = secureai_domain::users::ports::UserFilter {
                    words,
                    role: base.role.as_deref().map(|r| secureai_domain::Role::parse(r).unwrap()),
                    status: base.status.as_deref().and_then(secureai_domain::UserStatus::parse),
                    department: base.department.clone(),
                    invitation: None,
                    group: None,
                };
                filter.matches(u)
            })
            .collect();
        let raw_sort = base.sort.clone().unwrap_or_else(|| "created".into());
        let descending = raw_sort.starts_with('-');
        let sort = match raw_sort.trim_start_matches('-') {
            "name" => secureai_domain::users::ports::UserSort::Name,
            "email" => secureai_domain::users::ports::UserSort::Email,
            "last_sign_in" => secureai_domain::users::ports::UserSort::LastSignIn,
            _ => secureai_domain::users::ports::UserSort::Created,
        };
        expected.sort_by_key(|u| (sort.value_of(u), u.id));
        if descending {
            expected.reverse();
        }
        let expected: Vec<String> = expected.iter().map(|u| u.email.to_string()).collect();

        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let request =
                ListUsersRequest { limit: Some(4), cursor: cursor.clone(), ..base.clone() };
            let page = service.users.list_users(&admin, &request).await.unwrap();
            if totals_exact || base.q.is_none() {
                assert!(page.total_exact);
                assert_eq!(page.total as usize, expected.len(), "total for {base:?}");
            } else {
                // Too broad to count: a lower bound, at least the page.
                assert!(!page.total_exact || expected.is_empty());
                assert!(page.total as usize <= expected.len(), "bound for {base:?}");
                assert!(page.total as usize >= page.items.len(), "bound for {base:?}");
            }
            if page.items.len() < 4 && page.next_cursor.is_some() {
                ended_early += 1;
            }
            pages.push(page.items);
            assert!(pages.len() <= everyone.len(), "paging never ends for {base:?}");
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(listed(&pages), expected, "for {base:?}");
    }
    // Only a bounded broad walk ends a page early.
    assert_eq!(ended_early > 0, !totals_exact, "{ended_early} pages ended early");
    // The counters agree with the rows.
    assert_eq!(db.store.count_seats().await.unwrap(), 31 - 6);

    // A department alone is counted up to the cap, then bounded below.
    let legal = everyone
        .iter()
        .filter(|u| u.department.as_ref().map(AsRef::as_ref) == Some("Legal"))
        .count();
    assert!(legal > 3);
    let by_department = |cap| {
        let store = store.clone();
        async move {
            let query = UserQuery {
                filter: UserFilter { department: Some("Legal".into()), ..Default::default() },
                sort: UserSort::Created,
                descending: false,
                limit: 2,
                after: None,
            };
            UserRepository::list(&store, &query, cap).await.unwrap().total
        }
    };
    assert_eq!(by_department(100).await, UserTotal { count: legal as u64, exact: true });
    assert_eq!(by_department(3).await, UserTotal { count: 3, exact: false });
}

on_every_database!(
    every_filter_sort_and_direction_pages_through_exactly_the_matching_users,
    broad_searches_page_through_the_same_users,
    broad_searches_through_the_pool_page_through_the_same_users,
);
