//! [`ApiTokenRepository`](crate::api_tokens::ports::ApiTokenRepository):
//! personal API tokens found by digest, listed newest first, revoked once.

use chrono::Duration;

use super::fixtures::{active, event, join_all, now};
use crate::access::ApiScope;
use crate::api_tokens::models::ApiToken;
use crate::audit::models::AuditAction;
use crate::secrets::TokenHash;
use crate::service::Ports;
use crate::users::models::{DisplayName, Role, UserId, UserState};
use crate::users::ports::Erasure;

fn token(ports: &Ports, user: UserId, name: &str, seconds: i64) -> ApiToken {
    let created_at = now(ports) + Duration::seconds(seconds);
    ApiToken {
        id: crate::record_id(),
        user_id: user,
        name: name.to_owned(),
        scopes: vec![ApiScope::UsersRead, ApiScope::AuditRead],
        created_at,
        expires_at: created_at + Duration::days(90),
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
    }
}

/// A token MUST be found by its digest only, read back as written (scopes
/// included), be listed per owner and for all newest first; `revoke` MUST
/// revoke a live token once — of 6 concurrent calls exactly one, with its
/// audit event — and only the owner's when an owner is given; `touch`
/// MUST record the time and address; erasing the owner MUST delete their
/// tokens.
pub async fn a_token_is_found_by_digest_and_revoked_once(ports: Ports) {
    let root = active(&ports, "root@example.com", Role::Admin).await;
    let ada = active(&ports, "ada@example.com", Role::Admin).await;
    let first = token(&ports, ada.id, "Nightly sync", 0);
    let second = token(&ports, ada.id, "Reports", 1);
    let roots = token(&ports, root.id, "Root's", 2);
    for (n, t) in [&first, &second, &roots].into_iter().enumerate() {
        let hash = TokenHash::from_bytes([u8::try_from(n).unwrap() + 1; 32]);
        let audit = event(now(&ports), AuditAction::ApiTokenCreated);
        ports.api_tokens.insert_api_token(t.clone(), hash, audit).await.unwrap();
    }
    let by_hash = ports.api_tokens.api_token_by_hash(&TokenHash::from_bytes([2; 32])).await;
    assert_eq!(by_hash.unwrap(), Some(second.clone()));
    let unknown = ports.api_tokens.api_token_by_hash(&TokenHash::from_bytes([9; 32])).await;
    assert_eq!(unknown.unwrap(), None);
    let own = ports.api_tokens.api_tokens(Some(ada.id)).await.unwrap();
    assert_eq!(own, vec![second.clone(), first.clone()], "newest first");
    let all = ports.api_tokens.api_tokens(None).await.unwrap();
    assert_eq!(all.iter().map(|t| t.id).collect::<Vec<_>>(), vec![roots.id, second.id, first.id]);

    let at = now(&ports) + Duration::minutes(3);
    let audit = || event(now(&ports), AuditAction::ApiTokenRevoked);
    let theirs = ports.api_tokens.revoke_api_token(roots.id, Some(ada.id), at, audit()).await;
    assert_eq!(theirs.unwrap(), None, "not hers to revoke");
    let before = super::fixtures::audit_of(&ports, AuditAction::ApiTokenRevoked).await.len();
    let racing: Vec<_> =
        (0..6).map(|_| ports.api_tokens.revoke_api_token(first.id, None, at, audit())).collect();
    let revoked: Vec<_> = join_all(racing).await.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(revoked.len(), 1, "one of 6 concurrent revocations");
    assert_eq!(revoked[0].revoked_at, Some(at));
    let after = super::fixtures::audit_of(&ports, AuditAction::ApiTokenRevoked).await.len();
    assert_eq!(after, before + 1, "one audit event");

    ports.api_tokens.touch_api_token(second.id, at, Some("192.0.2.7".to_owned())).await.unwrap();
    let touched = ports.api_tokens.api_token_by_hash(&TokenHash::from_bytes([2; 32])).await;
    let touched = touched.unwrap().unwrap();
    assert_eq!(
        (touched.last_used_at, touched.last_used_ip.as_deref()),
        (Some(at), Some("192.0.2.7"))
    );

    let mut gone = ada.clone();
    gone.email = crate::users::models::EmailAddress::from_stored(format!(
        "erased-{}@erased.invalid",
        ada.id
    ));
    gone.name = DisplayName::parse("Erased user").unwrap();
    gone.state = UserState::Deactivated {
        activated_at: ada.state.activated_at(),
        deactivated_at: now(&ports),
    };
    let mut audit = event(now(&ports), AuditAction::UserErased);
    audit.target_id = Some(ada.id);
    ports.users.erase(Erasure { before: ada.clone(), after: gone, audit }).await.unwrap();
    assert!(ports.api_tokens.api_tokens(Some(ada.id)).await.unwrap().is_empty());
    assert_eq!(ports.api_tokens.api_tokens(None).await.unwrap().len(), 1, "root's stays");
}
