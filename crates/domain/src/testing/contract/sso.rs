//! [`SsoRepository`](crate::sso::ports::SsoRepository): sign-ins in
//! flight, seen assertions, identity links.

use chrono::{DateTime, Duration, Utc};

use super::fixtures::{active, deactivation, email, event, invite, join_all, new_session, now};
use crate::audit::models::AuditAction;
use crate::invitations::models::InvitationState;
use crate::secrets::PlainToken;
use crate::service::Ports;
use crate::sso::models::{PendingLogin, SsoProtocol};
use crate::sso::ports::{SsoSignIn, SsoSignInStoreError};
use crate::users::models::{DisplayName, Role, SignInMethod, User, UserId, UserState, UserStatus};

const ISSUER: &str = "https://idp.example.com";

fn login(ports: &Ports, at: DateTime<Utc>, lasts: Duration) -> (PendingLogin, PlainToken) {
    let token = ports.tokens.generate();
    let login = PendingLogin {
        key: token.hash(),
        protocol: SsoProtocol::Oidc,
        data: r#"{"state":"s","nonce":"n","verifier":"v"}"#.into(),
        created_at: at,
        expires_at: at + lasts,
    };
    (login, token)
}

/// A saved sign-in in flight is taken (returned and removed) once, also
/// by two answers at once; one that expired is forgotten.
pub async fn a_sign_in_in_flight_is_taken_once(ports: Ports) {
    let at = now(&ports);
    let (pending, token) = login(&ports, at, Duration::minutes(10));
    let (short, short_token) = login(&ports, at, Duration::minutes(1));
    ports.sso.save_login(pending.clone()).await.unwrap();
    ports.sso.save_login(short).await.unwrap();
    assert_eq!(ports.sso.take_login(&token.hash(), at).await.unwrap(), Some(pending));
    assert_eq!(ports.sso.take_login(&token.hash(), at).await.unwrap(), None);
    let unknown = ports.tokens.generate().hash();
    assert_eq!(ports.sso.take_login(&unknown, at + Duration::minutes(2)).await.unwrap(), None);
    assert_eq!(ports.sso.take_login(&short_token.hash(), at).await.unwrap(), None);

    let (raced, raced_token) = login(&ports, at, Duration::minutes(10));
    ports.sso.save_login(raced).await.unwrap();
    let takes: Vec<_> = (0..2)
        .map(|_| {
            let (sso, key) = (ports.sso.clone(), raced_token.hash());
            async move { sso.take_login(&key, at).await.unwrap() }
        })
        .collect();
    let taken = join_all(takes).await;
    assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1, "{taken:?}");

    let (old, old_token) = login(&ports, at, Duration::minutes(1));
    ports.sso.save_login(old).await.unwrap();
    assert_eq!(ports.sso.forget_expired(at + Duration::minutes(1)).await.unwrap(), 1);
    assert_eq!(ports.sso.take_login(&old_token.hash(), at).await.unwrap(), None);
}

/// `remember_assertion` answers `true` the first time an (issuer, id) is
/// seen and `false` for a replay until it expires; expired ids are
/// forgotten.
pub async fn an_assertion_id_is_remembered_once(ports: Ports) {
    let at = now(&ports);
    let until = at + Duration::minutes(5);
    assert!(ports.sso.remember_assertion(ISSUER, "_a1", until, at).await.unwrap());
    assert!(!ports.sso.remember_assertion(ISSUER, "_a1", until, at).await.unwrap());
    let later = at + Duration::minutes(4);
    assert!(!ports.sso.remember_assertion(ISSUER, "_a1", until, later).await.unwrap());
    assert!(
        ports.sso.remember_assertion("https://other.example.com", "_a1", until, at).await.unwrap()
    );
    assert!(
        ports.sso.remember_assertion(ISSUER, "_a2", at + Duration::minutes(1), at).await.unwrap()
    );
    let gone = ports.sso.forget_expired(at + Duration::minutes(2)).await.unwrap();
    assert_eq!(gone, 1);
    assert!(
        !ports
            .sso
            .remember_assertion(ISSUER, "_a1", until, at + Duration::minutes(2))
            .await
            .unwrap()
    );
    let past = until + Duration::seconds(1);
    assert!(
        ports
            .sso
            .remember_assertion(ISSUER, "_a1", past + Duration::minutes(5), past)
            .await
            .unwrap()
    );
}

fn sign_in(ports: &Ports, user: &User, link: Option<&str>) -> (SsoSignIn, PlainToken) {
    let (session, token) = new_session(ports, user, now(ports));
    let audit = vec![event(session.created_at, AuditAction::SignInSucceeded).target(user)];
    let link = link.map(|subject| (ISSUER.to_owned(), subject.to_owned()));
    let sign_in =
        SsoSignIn { user: user.clone(), create: None, activate: false, link, session, audit };
    (sign_in, token)
}

/// `record_sso_sign_in` links a provider subject to one user only
/// (`Conflict` for another), starts the session, and activates an invited
/// user; every refusal writes nothing.
pub async fn an_identity_links_to_one_user(ports: Ports) {
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let bob = active(&ports, "bob@example.com", Role::User).await;
    let (first, token) = sign_in(&ports, &ada, Some("sub-ada"));
    ports.sso.record_sso_sign_in(first).await.unwrap();
    let linked = ports.sso.find_linked(ISSUER, "sub-ada").await.unwrap().map(|u| u.id);
    assert_eq!(linked, Some(ada.id));
    assert_eq!(
        ports.sso.links_of(ada.id).await.unwrap(),
        vec![(ISSUER.to_owned(), "sub-ada".to_owned())]
    );
    assert!(ports.sso.find_linked(ISSUER, "sub-nobody").await.unwrap().is_none());
    assert!(ports.sso.find_linked("https://other.example.com", "sub-ada").await.unwrap().is_none());
    let (session, _) = ports.sessions.find(&token.hash()).await.unwrap().unwrap();
    assert_eq!(session.user_id, ada.id);

    let (steal, steal_token) = sign_in(&ports, &bob, Some("sub-ada"));
    let result = ports.sso.record_sso_sign_in(steal).await;
    assert!(matches!(result, Err(SsoSignInStoreError::Conflict)), "{result:?}");
    assert!(ports.sessions.find(&steal_token.hash()).await.unwrap().is_none());
    assert!(ports.sso.links_of(bob.id).await.unwrap().is_empty());
    let linked = ports.sso.find_linked(ISSUER, "sub-ada").await.unwrap().map(|u| u.id);
    assert_eq!(linked, Some(ada.id));

    let carol = invite(&ports, "carol@example.com", Role::User).await;
    let at = now(&ports);
    let activated = User {
        state: UserState::Active { activated_at: at },
        sign_in: SignInMethod::Sso,
        ..carol.user.clone()
    };
    let (mut first, token) = sign_in(&ports, &activated, Some("sub-carol"));
    first.activate = true;
    ports.sso.record_sso_sign_in(first).await.unwrap();
    let carol_now = ports.users.get(carol.user.id).await.unwrap().unwrap();
    assert_eq!(carol_now.status(), UserStatus::Active);
    assert!(ports.sessions.find(&token.hash()).await.unwrap().is_some());
    // Her invitation was answered through the identity provider: accepted.
    let invitation = ports.invitations.latest_for(carol.user.id).await.unwrap().unwrap();
    assert!(matches!(invitation.state, InvitationState::Accepted { .. }), "{invitation:?}");
}

/// `record_sso_sign_in` MUST refuse a user who changed meanwhile (`Stale`:
/// no longer invited, or deactivated), a new user whose email is taken
/// (`Conflict`) or who would pass the seat limit (`SeatLimitReached`), and
/// write nothing; a new user within the limit is created.
pub async fn an_sso_sign_in_refuses_stale_users_and_full_seats(ports: Ports) {
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let (mut activation, token) = sign_in(&ports, &ada, None);
    activation.activate = true;
    let result = ports.sso.record_sso_sign_in(activation).await;
    assert!(matches!(result, Err(SsoSignInStoreError::Stale)), "{result:?}");
    assert!(ports.sessions.find(&token.hash()).await.unwrap().is_none());

    let off = deactivation(&ports, &ada);
    ports.users.apply_change(off).await.unwrap();
    let (late, token) = sign_in(&ports, &ada, Some("sub-ada"));
    let result = ports.sso.record_sso_sign_in(late).await;
    assert!(matches!(result, Err(SsoSignInStoreError::Stale)), "{result:?}");
    assert!(ports.sessions.find(&token.hash()).await.unwrap().is_none());
    assert!(ports.sso.find_linked(ISSUER, "sub-ada").await.unwrap().is_none());

    invite(&ports, "bob@example.com", Role::User).await;
    let at = now(&ports);
    let newcomer = |address: &str| User {
        id: UserId::generate(),
        email: email(address),
        name: DisplayName::parse("New Comer").unwrap(),
        role: Role::User,
        state: UserState::Active { activated_at: at },
        sign_in: SignInMethod::Sso,
        department: None,
        created_at: at,
        last_login_at: Some(at),
    };
    let dan = newcomer("dan@example.com");
    let (mut full, token) = sign_in(&ports, &dan, Some("sub-dan"));
    full.create = Some(Some(1));
    let result = ports.sso.record_sso_sign_in(full.clone()).await;
    assert!(
        matches!(result, Err(SsoSignInStoreError::SeatLimitReached { limit: 1 })),
        "{result:?}"
    );
    assert_eq!(ports.users.get(dan.id).await.unwrap(), None);
    assert!(ports.sessions.find(&token.hash()).await.unwrap().is_none());
    assert!(ports.sso.find_linked(ISSUER, "sub-dan").await.unwrap().is_none());

    let twin = newcomer("BOB@example.com");
    let (mut taken, _) = sign_in(&ports, &twin, Some("sub-twin"));
    taken.create = Some(None);
    let result = ports.sso.record_sso_sign_in(taken).await;
    assert!(matches!(result, Err(SsoSignInStoreError::Conflict)), "{result:?}");
    assert_eq!(ports.users.get(twin.id).await.unwrap(), None);

    full.create = Some(Some(2));
    ports.sso.record_sso_sign_in(full).await.unwrap();
    let created = ports.users.get(dan.id).await.unwrap().unwrap();
    let seen = (created.email.as_str(), created.role, created.status(), created.sign_in);
    assert_eq!(seen, ("dan@example.com", Role::User, UserStatus::Active, SignInMethod::Sso));
    assert_eq!(ports.sso.find_linked(ISSUER, "sub-dan").await.unwrap().map(|u| u.id), Some(dan.id));
    assert!(ports.sessions.find(&token.hash()).await.unwrap().is_some());
    assert_eq!(ports.users.count_seats().await.unwrap(), 2);
}
