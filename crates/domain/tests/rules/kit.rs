//! Shared arrangements.

use secrecy::SecretString;
use secureai_domain::sessions::models::{Admin, Principal};
use secureai_domain::testing::TestKit;
use secureai_domain::users::service::InviteRequest;
use secureai_domain::{RequestContext, UserId};

pub fn pw(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

pub fn ctx() -> RequestContext {
    RequestContext::default()
}

pub fn invite(email: &str, role: &str) -> InviteRequest {
    InviteRequest {
        email: email.into(),
        name: format!("Name of {email}"),
        role: role.into(),
        department: None,
    }
}

/// A kit whose first admin is set up and signed in.
pub async fn with_admin() -> (TestKit, Admin) {
    let kit = TestKit::new();
    let token = kit.service.prepare_setup().await.unwrap().unwrap();
    kit.service
        .complete_setup(&token, "root@example.com", "Root", pw("a long admin passphrase"), &ctx())
        .await
        .unwrap();
    let admin = sign_in(&kit, "root@example.com", "a long admin passphrase").await.admin().unwrap();
    (kit, admin)
}

pub async fn sign_in(kit: &TestKit, email: &str, password: &str) -> Principal {
    let signed_in = kit.service.sign_in(email, &pw(password), &ctx()).await.unwrap();
    kit.service.authenticate(&signed_in.token).await.unwrap()
}

/// Invites and activates a user; returns their id.
pub async fn active_user(
    kit: &TestKit,
    admin: &Admin,
    email: &str,
    role: &str,
    password: &str,
) -> UserId {
    let invited = kit.service.invite_user(admin, &invite(email, role), &ctx()).await.unwrap();
    kit.service.accept_invitation(&invited.token, pw(password), &ctx()).await.unwrap();
    invited.user.id
}
