//! What operators count (issue 25): every sign-in attempt reaches the
//! meter once, with its method and outcome, whichever way it ended.

use secureai_domain::sessions::errors::SignInError;
use secureai_domain::telemetry::{SignInMethod, SignInOutcome};

use crate::kit::{active_user, ctx, invite, pw, with_admin};
use crate::sso::{identity, sso_sign_in, with_sso};

#[tokio::test]
async fn every_password_sign_in_is_counted_with_its_outcome() {
    let (kit, admin) = with_admin().await;
    active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;
    let before = kit.meter.sign_ins().len();
    let sessions = &kit.service.sessions;
    assert!(sessions.sign_in("ada@example.com", &pw("ada's own password"), &ctx()).await.is_ok());
    // Wrong passwords until the account is paused: each counted once.
    let mut outcomes = vec![(SignInMethod::Password, SignInOutcome::Success)];
    loop {
        let answer = sessions.sign_in("ada@example.com", &pw("not hers"), &ctx()).await;
        match answer {
            Err(SignInError::InvalidCredentials) => {
                outcomes.push((SignInMethod::Password, SignInOutcome::Failure));
            }
            Err(SignInError::Throttled { .. }) => {
                outcomes.push((SignInMethod::Password, SignInOutcome::Throttled));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(outcomes.len() > 2, "some failures before the pause");
    assert_eq!(kit.meter.sign_ins().split_off(before), outcomes);
}

#[tokio::test]
async fn every_sso_sign_in_is_counted_with_its_outcome() {
    let (kit, admin) = with_sso(false).await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    let before = kit.meter.sign_ins().len();
    assert!(sso_sign_in(&kit, Ok(identity("sub-1", "ada@example.com", true))).await.is_ok());
    let stranger = sso_sign_in(&kit, Ok(identity("sub-2", "eve@example.com", true))).await;
    assert!(stranger.is_err());
    let told = kit.meter.sign_ins().split_off(before);
    assert_eq!(
        told,
        [
            (SignInMethod::Oidc, SignInOutcome::Success),
            (SignInMethod::Oidc, SignInOutcome::Failure)
        ]
    );
}

#[tokio::test]
async fn a_sign_in_with_a_second_factor_counts_its_two_steps() {
    let (kit, admin) = with_admin().await;
    let ada = crate::mfa::ada(&kit, &admin).await;
    let (secret, _) = crate::mfa::enrolled(&kit, &ada).await;
    // The next time step: the enrolment used this one's code.
    kit.clock.advance(chrono::Duration::seconds(30));
    let before = kit.meter.sign_ins().len();
    crate::mfa::with_code(&kit, &secret).await;
    assert_eq!(
        kit.meter.sign_ins().split_off(before),
        [
            (SignInMethod::Password, SignInOutcome::SecondFactorRequired),
            (SignInMethod::SecondFactor, SignInOutcome::Success)
        ]
    );
}
