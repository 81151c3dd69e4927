//! The WebAuthn ceremonies against a software authenticator
//! (`webauthn-authenticator-rs`' soft passkey, which signs as a real one
//! does): registration, a signed challenge, and the answers that must be
//! refused — another site's, one replayed against another challenge,
//! another user's key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use secureai_domain::mfa::passkeys::{Passkey, PasskeyProtocol, PasskeyProtocolError};
use secureai_domain::users::models::{
    DisplayName, EmailAddress, Role, SignInMethod, User, UserId, UserState,
};
use secureai_passkeys::WebAuthnPasskeys;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

fn user(email: &str) -> User {
    User {
        id: UserId::generate(),
        email: EmailAddress::parse(email).unwrap(),
        name: DisplayName::parse("Ada Lovelace").unwrap(),
        role: Role::Admin,
        state: UserState::Active { activated_at: Utc::now() },
        sign_in: SignInMethod::Password,
        department: None,
        created_at: Utc::now(),
        last_login_at: None,
    }
}

/// Registers a key of `authenticator` for `user` at `origin`.
fn register(
    rp: &WebAuthnPasskeys,
    authenticator: &mut SoftPasskey,
    user: &User,
    origin: &str,
) -> Passkey {
    let ceremony = rp.start_registration(user, &[]).unwrap();
    let options: CreationChallengeResponse = serde_json::from_str(&ceremony.options).unwrap();
    let answer = authenticator.do_registration(Url::parse(origin).unwrap(), options).unwrap();
    let answer = serde_json::to_string(&answer).unwrap();
    let registered = rp.finish_registration(&ceremony.state, &answer).unwrap();
    Passkey {
        id: uuid::Uuid::new_v4(),
        user_id: user.id,
        name: "key".into(),
        credential_id: registered.credential_id,
        credential: registered.credential,
        created_at: Utc::now(),
        last_used_at: None,
    }
}

/// Signs a new challenge for `keys` with `authenticator`: the ceremony's
/// state and the answer.
fn sign(
    rp: &WebAuthnPasskeys,
    authenticator: &mut SoftPasskey,
    keys: &[Passkey],
    origin: &str,
) -> (String, String) {
    let ceremony = rp.start_authentication(keys).unwrap();
    let options: RequestChallengeResponse = serde_json::from_str(&ceremony.options).unwrap();
    let answer = authenticator.do_authentication(Url::parse(origin).unwrap(), options).unwrap();
    (ceremony.state, serde_json::to_string(&answer).unwrap())
}

#[test]
fn a_passkey_is_registered_then_signs_its_challenges_once_each() {
    let rp = WebAuthnPasskeys::new("http://127.0.0.1:8080").unwrap();
    assert_eq!(rp.origin().as_str(), "http://localhost:8080/");
    let origin = "http://localhost:8080";
    let ada = user("ada@example.com");
    let mut authenticator = SoftPasskey::new(true);
    let key = register(&rp, &mut authenticator, &ada, origin);
    assert!(!key.credential_id.is_empty());
    assert!(key.credential.contains(&key.credential_id), "the credential names its id");

    let (state, answer) = sign(&rp, &mut authenticator, std::slice::from_ref(&key), origin);
    let used = rp.finish_authentication(&state, &answer, std::slice::from_ref(&key)).unwrap();
    assert_eq!(used.credential_id, key.credential_id);
    let key = Passkey { credential: used.credential.unwrap_or(key.credential), ..key };

    // An answer is bound to its challenge: replayed against a new
    // ceremony it is refused. (A ceremony's state is spent by its first
    // answer: the domain deletes it; passkeys that sync between devices
    // keep their signature counter at zero, so the challenge is the
    // defence against a replay.)
    let fresh = rp.start_authentication(std::slice::from_ref(&key)).unwrap();
    let replay = rp.finish_authentication(&fresh.state, &answer, std::slice::from_ref(&key));
    assert!(matches!(replay, Err(PasskeyProtocolError::Refused(_))), "{replay:?}");
    // Garbage is refused, not a failure of ours.
    let garbage = rp.finish_authentication(&state, "{\"id\": 1}", std::slice::from_ref(&key));
    assert!(matches!(garbage, Err(PasskeyProtocolError::Refused(_))), "{garbage:?}");
}

#[test]
fn answers_from_another_site_or_another_users_key_are_refused() {
    let rp = WebAuthnPasskeys::new("https://ai.example.com").unwrap();
    let ada = user("ada@example.com");
    let bob = user("bob@example.com");
    let mut adas = SoftPasskey::new(true);
    let mut bobs = SoftPasskey::new(true);
    let ada_key = register(&rp, &mut adas, &ada, "https://ai.example.com");
    let bob_key = register(&rp, &mut bobs, &bob, "https://ai.example.com");

    // A phishing site relaying the challenge: the browser signs for its
    // origin, which the service refuses.
    let ceremony = rp.start_authentication(std::slice::from_ref(&ada_key)).unwrap();
    let options: RequestChallengeResponse = serde_json::from_str(&ceremony.options).unwrap();
    let phished =
        adas.do_authentication(Url::parse("https://ai.example.com.evil.test").unwrap(), options);
    match phished {
        // The browser (here the authenticator library) refuses to sign for
        // a relying party the page's origin does not belong to…
        Err(_) => {}
        // …and if a client signs anyway, the service refuses the origin.
        Ok(answer) => {
            let answer = serde_json::to_string(&answer).unwrap();
            let ada_keys = std::slice::from_ref(&ada_key);
            let refused = rp.finish_authentication(&ceremony.state, &answer, ada_keys);
            assert!(matches!(refused, Err(PasskeyProtocolError::Refused(_))), "{refused:?}");
        }
    }
    // Bob's key signing Ada's challenge: not one of hers.
    let (state, answer) =
        sign(&rp, &mut bobs, std::slice::from_ref(&bob_key), "https://ai.example.com");
    let refused = rp.finish_authentication(&state, &answer, std::slice::from_ref(&ada_key));
    assert!(refused.is_err(), "{refused:?}");
}
