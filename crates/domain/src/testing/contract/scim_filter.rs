//! `ProvisioningRepository::search`: a SCIM filter answered by the store
//! MUST give what [`ScimFilter::matches`] says, on the same users.

use chrono::Duration;

use super::fixtures::{new_invited, now};
use crate::provisioning::filter::{Attribute, Op, ScimFilter, Value};
use crate::provisioning::models::ScimIdentity;
use crate::provisioning::ports::NewProvisionedUser;
use crate::service::Ports;
use crate::users::models::{Department, DisplayName, Role, UserState};

struct Person {
    email: &'static str,
    name: &'static str,
    department: Option<&'static str>,
    external_id: Option<&'static str>,
    user_name: Option<&'static str>,
    active: bool,
}

const PEOPLE: [Person; 7] = [
    Person {
        email: "ada@example.com",
        name: "Ada Lovelace",
        department: Some("R&D"),
        external_id: Some("X-1"),
        user_name: None,
        active: true,
    },
    Person {
        email: "Ada.King@Example.org",
        name: "Ada King",
        department: Some("r&d"),
        external_id: Some("x-1"),
        user_name: None,
        active: true,
    },
    Person {
        email: "a_b@example.com",
        name: "A B",
        department: None,
        external_id: None,
        user_name: None,
        active: true,
    },
    Person {
        email: "jdoe@example.com",
        name: "Jo Doe",
        department: Some("Sales"),
        external_id: Some("X-3"),
        user_name: Some("JDoe"),
        active: true,
    },
    Person {
        email: "gone@example.com",
        name: "Gone Away",
        department: Some("Sales"),
        external_id: None,
        user_name: None,
        active: false,
    },
    Person {
        email: "percent@example.net",
        name: "100% Sure",
        department: Some("50%_off"),
        external_id: Some("p%"),
        user_name: None,
        active: true,
    },
    Person {
        email: "detached@example.com",
        name: "Ada Detached",
        department: Some("R&D"),
        external_id: Some("X-9"),
        user_name: None,
        active: false,
    },
];

fn text(attribute: Attribute, op: Op, value: &str) -> ScimFilter {
    ScimFilter::Compare(attribute, op, Value::Text(value.to_owned()))
}

/// Every filter MUST select, count and page exactly as the reference.
pub async fn search_follows_the_reference_semantics(ports: Ports) {
    let start = now(&ports);
    let mut ids = Vec::new();
    for (i, person) in PEOPLE.iter().enumerate() {
        let (new, _) = new_invited(&ports, person.email, Role::User, None);
        let mut user = new.user;
        user.name = DisplayName::parse(person.name).unwrap();
        user.department = person.department.and_then(|d| Department::parse(d).unwrap());
        user.created_at = start + Duration::seconds(i as i64);
        if !person.active {
            user.state = UserState::Deactivated { activated_at: None, deactivated_at: start };
        }
        ids.push(user.id);
        let provisioned = NewProvisionedUser {
            user,
            invitation: new.invitation,
            mail: None,
            audit: new.audit,
            seat_limit: None,
            external_id: person.external_id.map(str::to_owned),
            user_name: person.user_name.map(str::to_owned),
        };
        ports.provisioning.create(provisioned).await.unwrap();
    }
    let detached =
        ScimIdentity { external_id: Some("X-9".into()), user_name: None, detached_at: Some(start) };
    ports.provisioning.update(ids[6], None, detached, start).await.unwrap();

    let boxed = Box::new;
    let filters = vec![
        text(Attribute::UserName, Op::Sw, "ADA"),
        text(Attribute::UserName, Op::Eq, "jdoe"),
        text(Attribute::UserName, Op::Eq, "jdoe@example.com"),
        text(Attribute::Email, Op::Eq, "jdoe@EXAMPLE.com"),
        text(Attribute::Email, Op::Ew, "@example.ORG"),
        text(Attribute::Email, Op::Co, "_"),
        text(Attribute::Name, Op::Co, "LOVELACE"),
        text(Attribute::Name, Op::Sw, "100%"),
        text(Attribute::Department, Op::Eq, "R&D"),
        text(Attribute::Department, Op::Ne, "r&d"),
        text(Attribute::Department, Op::Co, "%_"),
        ScimFilter::Not(boxed(text(Attribute::Department, Op::Eq, "sales"))),
        ScimFilter::Present(Attribute::ExternalId),
        ScimFilter::Not(boxed(ScimFilter::Present(Attribute::ExternalId))),
        ScimFilter::Present(Attribute::Department),
        text(Attribute::ExternalId, Op::Eq, "X-1"),
        text(Attribute::ExternalId, Op::Ne, "X-1"),
        text(Attribute::ExternalId, Op::Eq, "p%"),
        text(Attribute::Id, Op::Eq, &ids[2].to_string()),
        ScimFilter::Compare(Attribute::Active, Op::Eq, Value::Bool(false)),
        ScimFilter::Compare(Attribute::Active, Op::Ne, Value::Bool(false)),
        ScimFilter::Compare(Attribute::Created, Op::Gt, Value::Time(start + Duration::seconds(2))),
        ScimFilter::Compare(Attribute::Created, Op::Le, Value::Time(start + Duration::seconds(1))),
        ScimFilter::Or(
            boxed(ScimFilter::And(
                boxed(text(Attribute::Department, Op::Eq, "sales")),
                boxed(ScimFilter::Compare(Attribute::Active, Op::Eq, Value::Bool(true))),
            )),
            boxed(ScimFilter::Not(boxed(ScimFilter::Present(Attribute::Department)))),
        ),
        ScimFilter::Present(Attribute::UserName),
    ];
    let (everyone, _) = ports.provisioning.by_position(0, 100).await.unwrap();
    assert_eq!(everyone.len(), 6, "the detached user is left out");
    for filter in &filters {
        let expected: Vec<_> =
            everyone.iter().filter(|p| filter.matches(p)).map(|p| p.user.id).collect();
        let (found, total) = ports.provisioning.search(filter, 0, 100).await.unwrap();
        let found: Vec<_> = found.iter().map(|p| p.user.id).collect();
        assert_eq!(found, expected, "{filter:?}");
        assert_eq!(total, expected.len() as u64, "{filter:?}");
        let (page, total) = ports.provisioning.search(filter, 1, 2).await.unwrap();
        let page: Vec<_> = page.iter().map(|p| p.user.id).collect();
        let expected_page: Vec<_> = expected.iter().skip(1).take(2).copied().collect();
        assert_eq!((page, total), (expected_page, expected.len() as u64), "{filter:?}");
    }
    // The reference itself, on a few: what the names promise.
    let matched = |f: &ScimFilter| everyone.iter().filter(|p| f.matches(p)).count();
    assert_eq!(matched(&text(Attribute::UserName, Op::Eq, "jdoe")), 1);
    assert_eq!(matched(&text(Attribute::ExternalId, Op::Eq, "X-1")), 1, "externalId is exact");
    assert_eq!(matched(&text(Attribute::Department, Op::Eq, "R&D")), 2, "departments in any case");
    assert_eq!(matched(&text(Attribute::Email, Op::Co, "_")), 1, "`_` is no wildcard");
}
