//! The SSO port on every database: sign-ins in flight taken once, assertion
//! ids accepted once, the first sign-in written atomically, settings kept.

use chrono::Duration;
use secureai_domain::sessions::models::{Session, SessionId};
use secureai_domain::settings::ports::SettingsRepository;
use secureai_domain::sso::models::{PendingLogin, SsoProtocol};
use secureai_domain::sso::ports::{SsoRepository, SsoSignIn, SsoSignInStoreError};
use secureai_domain::sso::settings::{
    ClientSecret, OidcSettings, SamlSettings, SsoMode, SsoSettings,
};
use secureai_domain::users::ports::UserRepository;
use secureai_domain::{
    Actor, AuditAction, AuditEvent, Clock, EmailAddress, PlainToken, Policy, RequestContext, Role,
    SignInMethod, User, UserId, UserState, UserStatus,
};

use crate::support::TestDb;
use crate::use_cases::{count, first_admin, invite};

fn audit(at: chrono::DateTime<chrono::Utc>) -> AuditEvent {
    AuditEvent::new(at, Actor::Operator, AuditAction::SignInSucceeded, &RequestContext::default())
}

fn session(user: UserId, at: chrono::DateTime<chrono::Utc>) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: user,
        token_hash: PlainToken::presented(format!("token-{}", uuid::Uuid::new_v4())).hash(),
        created_at: at,
        last_seen_at: at,
        expires_at: at + Duration::hours(12),
        enrolment_only: false,
        second_factor_at: None,
    }
}

pub async fn a_sign_in_in_flight_is_taken_once_even_concurrently(db: TestDb) {
    // Instants are stored to the microsecond.
    let now =
        chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap();
    let token = PlainToken::presented("browser-token-1".to_owned());
    let login = PendingLogin {
        key: token.hash(),
        protocol: SsoProtocol::Oidc,
        data: r#"{"state":"s"}"#.into(),
        created_at: now,
        expires_at: now + Duration::minutes(10),
    };
    db.store.save_login(login.clone()).await.unwrap();
    let mut takers = Vec::new();
    for _ in 0..8 {
        let store = db.store.clone();
        let key = token.hash();
        takers.push(tokio::spawn(async move { store.take_login(&key, now).await.unwrap() }));
    }
    let mut won = Vec::new();
    for taker in takers {
        if let Some(taken) = taker.await.unwrap() {
            won.push(taken);
        }
    }
    assert_eq!(won, vec![login], "exactly one answer uses the sign-in");

    // Expired sign-ins are forgotten.
    let stale = PlainToken::presented("browser-token-2".to_owned());
    db.store
        .save_login(PendingLogin {
            key: stale.hash(),
            protocol: SsoProtocol::Saml,
            data: "{}".into(),
            created_at: now,
            expires_at: now + Duration::minutes(10),
        })
        .await
        .unwrap();
    let later = now + Duration::minutes(11);
    assert_eq!(db.store.take_login(&stale.hash(), later).await.unwrap(), None);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sso_logins").await, 0);
}

pub async fn an_assertion_id_is_accepted_once_until_it_expires(db: TestDb) {
    let now = chrono::Utc::now();
    let until = now + Duration::minutes(5);
    let issuer = "urn:idp:".repeat(60); // longer than any index prefix
    assert!(db.store.remember_assertion(&issuer, "_a1", until, now).await.unwrap());
    assert!(!db.store.remember_assertion(&issuer, "_a1", until, now).await.unwrap());
    assert!(db.store.remember_assertion("urn:other", "_a1", until, now).await.unwrap());
    let later = now + Duration::minutes(6);
    assert!(
        db.store
            .remember_assertion(&issuer, "_a1", later + Duration::minutes(5), later)
            .await
            .unwrap()
    );
}

pub async fn a_first_sso_sign_in_activates_links_and_starts_a_session_atomically(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();
    let invited =
        service.invitations.invite_user(&admin, &invite("ada@example.com"), &ctx).await.unwrap();
    let now = clock.now();
    let active = User { state: UserState::Active { activated_at: now }, ..invited.user.clone() };
    let issuer = "https://idp.example.com".to_owned();
    let first = SsoSignIn {
        user: active.clone(),
        create: None,
        activate: true,
        link: Some((issuer.clone(), "sub-1".into())),
        session: session(active.id, now),
        audit: vec![audit(now), audit(now)],
    };
    let audit_before = count(&db, "SELECT COUNT(*) FROM audit_events").await;
    db.store.record_sso_sign_in(first.clone()).await.unwrap();

    let stored = db.store.get(active.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), UserStatus::Active);
    assert_eq!(stored.last_login_at, Some(now));
    assert_eq!(db.store.find_linked(&issuer, "sub-1").await.unwrap().unwrap().id, active.id);
    assert_eq!(db.store.links_of(active.id).await.unwrap(), vec![(issuer.clone(), "sub-1".into())]);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM invitations WHERE state = 'pending'").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sessions").await, 2, "the admin's and Ada's");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_events").await, audit_before + 2);

    // Activating again finds her no longer invited; nothing is written.
    let again = SsoSignIn { session: session(active.id, now), link: None, ..first.clone() };
    assert!(matches!(db.store.record_sso_sign_in(again).await, Err(SsoSignInStoreError::Stale)));
    // The subject is linked already: a second link conflicts, and the
    // session of that attempt is not kept.
    let other =
        service.invitations.invite_user(&admin, &invite("bob@example.com"), &ctx).await.unwrap();
    let bob = User { state: UserState::Active { activated_at: now }, ..other.user };
    let stolen = SsoSignIn {
        user: bob.clone(),
        create: None,
        activate: true,
        link: Some((issuer.clone(), "sub-1".into())),
        session: session(bob.id, now),
        audit: vec![audit(now)],
    };
    assert!(matches!(
        db.store.record_sso_sign_in(stolen).await,
        Err(SsoSignInStoreError::Conflict)
    ));
    assert_eq!(db.store.get(bob.id).await.unwrap().unwrap().status(), UserStatus::Invited);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sessions").await, 2);
}

pub async fn just_in_time_creation_respects_the_seat_limit(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let _admin = first_admin(&service).await;
    let now = clock.now();
    let new_user = |email: &str| User {
        id: UserId::generate(),
        email: EmailAddress::parse(email).unwrap(),
        name: secureai_domain::DisplayName::parse("New Person").unwrap(),
        role: Role::User,
        state: UserState::Active { activated_at: now },
        sign_in: SignInMethod::Sso,
        department: None,
        created_at: now,
        last_login_at: Some(now),
    };
    let sign_in = |user: User, limit: Option<u32>| SsoSignIn {
        session: session(user.id, now),
        user,
        create: Some(limit),
        activate: false,
        link: Some(("https://idp.example.com".into(), uuid::Uuid::new_v4().to_string())),
        audit: vec![audit(now)],
    };
    // The admin holds the one seat.
    let refused = db.store.record_sso_sign_in(sign_in(new_user("jit@example.com"), Some(1))).await;
    assert!(matches!(refused, Err(SsoSignInStoreError::SeatLimitReached { limit: 1 })));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 1);
    let created = new_user("jit@example.com");
    db.store.record_sso_sign_in(sign_in(created.clone(), Some(2))).await.unwrap();
    let stored = db.store.get(created.id).await.unwrap().unwrap();
    assert_eq!((stored.status(), stored.sign_in), (UserStatus::Active, SignInMethod::Sso));
    // Searchable and counted like every user.
    assert_eq!(db.store.count_seats().await.unwrap(), 2);
    let taken = db.store.record_sso_sign_in(sign_in(new_user("JIT@example.com"), None)).await;
    assert!(matches!(taken, Err(SsoSignInStoreError::Conflict)));
}

pub async fn sso_settings_are_stored_with_their_secret(db: TestDb) {
    assert_eq!(db.store.sso_settings().await.unwrap(), None);
    let now = chrono::Utc::now();
    let oidc = SsoSettings {
        mode: SsoMode::Oidc(OidcSettings {
            issuer_url: "https://idp.example.com".into(),
            client_id: "secureai".into(),
            client_secret: Some(ClientSecret::parse("sëcret value").unwrap()),
            scopes: vec!["email".into()],
        }),
        jit_provisioning: true,
        clock_skew_secs: 30,
    };
    db.store.set_sso_settings(&oidc, audit(now)).await.unwrap();
    assert_eq!(db.store.sso_settings().await.unwrap(), Some(oidc));
    let saml = SsoSettings {
        mode: SsoMode::Saml(SamlSettings {
            idp_metadata_url: None,
            idp_metadata_xml: format!(
                "<EntityDescriptor>{}</EntityDescriptor>",
                "x".repeat(40_000)
            ),
            sp_entity_id: "urn:secureai".into(),
            email_attribute: Some("mail".into()),
            allow_idp_initiated: false,
            trust_email_for_linking: false,
        }),
        ..SsoSettings::disabled()
    };
    db.store.set_sso_settings(&saml, audit(now)).await.unwrap();
    assert_eq!(db.store.sso_settings().await.unwrap(), Some(saml));
}

on_every_database!(
    a_sign_in_in_flight_is_taken_once_even_concurrently,
    an_assertion_id_is_accepted_once_until_it_expires,
    a_first_sso_sign_in_activates_links_and_starts_a_session_atomically,
    just_in_time_creation_respects_the_seat_limit,
    sso_settings_are_stored_with_their_secret,
);
