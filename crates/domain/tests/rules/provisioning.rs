//! Provisioning (SCIM): only a service token with the `scim` scope reads
//! users, by id, by address and by position in creation order.

use secureai_domain::analytics::models::TokenScope;
use secureai_domain::provisioning::service::ProvisioningError;
use secureai_domain::{EmailAddress, UserId};

use crate::kit::{ctx, invite, with_admin};

#[tokio::test]
async fn only_a_scim_token_reads_users_by_id_address_and_position() {
    let (kit, admin) = with_admin().await;
    for i in 0..3 {
        let request = invite(&format!("user{i}@example.com"), "user");
        kit.service.invitations.invite_user(&admin, &request, &ctx()).await.unwrap();
    }
    let tokens = &kit.service.service_tokens;
    let usage = tokens.create_service_token(&admin, "chat", None, &ctx()).await.unwrap();
    let usage = tokens.authenticate_service(&usage.secret, TokenScope::Usage).await.unwrap();
    let scopes = ["scim".to_owned()];
    let scim = tokens.create_service_token(&admin, "Entra", Some(&scopes), &ctx()).await.unwrap();
    let scim = tokens.authenticate_service(&scim.secret, TokenScope::Scim).await.unwrap();
    let provisioning = &kit.service.provisioning;
    let root = admin.user().id;

    let refused = provisioning.user(&usage, root).await;
    assert!(matches!(refused, Err(ProvisioningError::Forbidden)), "{refused:?}");
    let refused = provisioning.users_by_position(&usage, 0, 10).await;
    assert!(matches!(refused, Err(ProvisioningError::Forbidden)), "{refused:?}");

    assert_eq!(provisioning.user(&scim, root).await.unwrap().id, root);
    let unknown = provisioning.user(&scim, UserId::generate()).await;
    assert!(matches!(unknown, Err(ProvisioningError::NotFound)), "{unknown:?}");
    let address = EmailAddress::parse("USER1@example.com").unwrap();
    let found = provisioning.user_by_email(&scim, &address).await.unwrap().unwrap();
    assert_eq!(found.email.as_str(), "user1@example.com");
    let page = provisioning.users_by_position(&scim, 1, 2).await.unwrap();
    assert_eq!(page.total, 4);
    let emails: Vec<&str> = page.users.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        emails,
        ["user0@example.com", "user1@example.com"],
        "creation order, from position 1"
    );
    let capped = provisioning.users_by_position(&scim, 0, u32::MAX).await.unwrap();
    assert_eq!(capped.users.len(), 4);
}
