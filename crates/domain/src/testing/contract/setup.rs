//! [`SetupRepository`](crate::setup::ports::SetupRepository): the first
//! admin, once.

use chrono::{DateTime, Duration, Utc};

use super::fixtures::{PASSWORD, email, event, invite, now, password_hash};
use crate::audit::models::AuditAction;
use crate::secrets::PlainToken;
use crate::service::Ports;
use crate::setup::ports::{CompleteSetupStoreError, SetupCompletion};
use crate::users::models::{DisplayName, Role, SignInMethod, User, UserId, UserState};

async fn completion(
    ports: &Ports,
    token: &PlainToken,
    address: &str,
    at: DateTime<Utc>,
) -> SetupCompletion {
    let admin = User {
        id: UserId::generate(),
        email: email(address),
        name: DisplayName::parse("Root").unwrap(),
        role: Role::Admin,
        state: UserState::Active { activated_at: at },
        sign_in: SignInMethod::Password,
        department: None,
        created_at: at,
        last_login_at: None,
    };
    SetupCompletion {
        token_hash: token.hash(),
        at,
        audit: event(at, AuditAction::SetupCompleted).target(&admin),
        admin,
        password_hash: password_hash(ports, PASSWORD).await,
    }
}

/// A setup token is valid until it expires or is replaced; `complete_setup`
/// MUST refuse an unknown, replaced or expired token (`InvalidToken`),
/// consumes the token, and then MUST refuse any further completion
/// (`AdminExists`) — each refusal writing nothing.
pub async fn setup_completes_once(ports: Ports) {
    let at = now(&ports);
    assert!(!ports.setup.has_active_admin().await.unwrap());
    let replaced = ports.tokens.generate();
    let token = ports.tokens.generate();
    ports.setup.replace_setup_token(replaced.hash(), at + Duration::hours(1)).await.unwrap();
    ports.setup.replace_setup_token(token.hash(), at + Duration::hours(1)).await.unwrap();
    assert!(!ports.setup.setup_token_valid(&replaced.hash(), at).await.unwrap());
    assert!(ports.setup.setup_token_valid(&token.hash(), at).await.unwrap());
    assert!(!ports.setup.setup_token_valid(&token.hash(), at + Duration::hours(2)).await.unwrap());

    let late = at + Duration::hours(2);
    for (wrong, when) in [(&replaced, at), (&ports.tokens.generate(), at), (&token, late)] {
        let refused = completion(&ports, wrong, "root@example.com", when).await;
        let result = ports.setup.complete_setup(refused).await;
        assert!(matches!(result, Err(CompleteSetupStoreError::InvalidToken)), "{result:?}");
    }
    assert_eq!(ports.users.find_by_email(&email("root@example.com")).await.unwrap(), None);

    let done = completion(&ports, &token, "root@example.com", at).await;
    let root = done.admin.clone();
    ports.setup.complete_setup(done).await.unwrap();
    assert!(ports.setup.has_active_admin().await.unwrap());
    assert_eq!(ports.users.get(root.id).await.unwrap(), Some(root));
    assert!(!ports.setup.setup_token_valid(&token.hash(), at).await.unwrap());
    // The token is consumed, and an admin exists: either refusal will do.
    let again = completion(&ports, &token, "second@example.com", at).await;
    let result = ports.setup.complete_setup(again).await;
    assert!(
        matches!(
            result,
            Err(CompleteSetupStoreError::InvalidToken | CompleteSetupStoreError::AdminExists)
        ),
        "{result:?}"
    );

    let next = ports.tokens.generate();
    ports.setup.replace_setup_token(next.hash(), at + Duration::hours(1)).await.unwrap();
    let second = completion(&ports, &next, "second@example.com", at).await;
    let result = ports.setup.complete_setup(second).await;
    assert!(matches!(result, Err(CompleteSetupStoreError::AdminExists)), "{result:?}");
    assert_eq!(ports.users.find_by_email(&email("second@example.com")).await.unwrap(), None);
    assert_eq!(super::fixtures::audit_of(&ports, AuditAction::SetupCompleted).await.len(), 1);
}

/// `complete_setup` MUST refuse an email any user has, in any letter case
/// (`EmailTaken`), and write nothing: the token stays usable.
pub async fn setup_refuses_a_taken_email(ports: Ports) {
    let at = now(&ports);
    let invited = invite(&ports, "taken@example.com", Role::User).await;
    let token = ports.tokens.generate();
    ports.setup.replace_setup_token(token.hash(), at + Duration::hours(1)).await.unwrap();
    let taken = completion(&ports, &token, "TAKEN@example.com", at).await;
    let admin_id = taken.admin.id;
    let result = ports.setup.complete_setup(taken).await;
    assert!(matches!(result, Err(CompleteSetupStoreError::EmailTaken)), "{result:?}");
    assert!(!ports.setup.has_active_admin().await.unwrap());
    assert_eq!(ports.users.get(admin_id).await.unwrap(), None);
    let user = ports.users.find_by_email(&email("taken@example.com")).await.unwrap();
    assert_eq!(user, Some(invited.user));
    assert!(ports.setup.setup_token_valid(&token.hash(), at).await.unwrap());

    let fine = completion(&ports, &token, "root@example.com", at).await;
    ports.setup.complete_setup(fine).await.unwrap();
    assert!(ports.setup.has_active_admin().await.unwrap());
}
