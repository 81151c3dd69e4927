//! The in-memory store's passkeys and WebAuthn ceremonies.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::InMemoryStore;
use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::mfa::passkeys::{Passkey, PasskeyRepository, PendingCeremony};
use crate::secrets::TokenHash;
use crate::users::models::UserId;

#[async_trait]
impl PasskeyRepository for InMemoryStore {
    async fn passkeys(&self, user: UserId) -> Result<Vec<Passkey>, StoreError> {
        Ok(self.state().passkeys.iter().filter(|p| p.user_id == user).cloned().collect())
    }

    async fn add_passkey(
        &self,
        passkey: &Passkey,
        codes: Option<Vec<TokenHash>>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.passkeys.iter().any(|p| p.credential_id == passkey.credential_id) {
            return Ok(false);
        }
        state.passkeys.push(passkey.clone());
        if let Some(codes) = codes {
            let codes = codes.into_iter().map(|c| (c, None)).collect();
            state.recovery_codes.insert(passkey.user_id, codes);
        }
        state.audit.push(audit);
        Ok(true)
    }

    async fn rename_passkey(&self, user: UserId, id: Uuid, name: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(passkey) = state.passkeys.iter_mut().find(|p| p.user_id == user && p.id == id)
        else {
            return Ok(false);
        };
        name.clone_into(&mut passkey.name);
        Ok(true)
    }

    async fn remove_passkey(
        &self,
        user: UserId,
        id: Uuid,
        codes_too: bool,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let before = state.passkeys.len();
        state.passkeys.retain(|p| !(p.user_id == user && p.id == id));
        if state.passkeys.len() == before {
            return Ok(false);
        }
        if codes_too {
            state.recovery_codes.remove(&user);
        }
        state.audit.push(audit);
        Ok(true)
    }

    async fn passkey_used(
        &self,
        user: UserId,
        credential_id: &str,
        credential: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        for passkey in &mut state.passkeys {
            if passkey.user_id == user && passkey.credential_id == credential_id {
                passkey.last_used_at = Some(at);
                if let Some(credential) = &credential {
                    credential.clone_into(&mut passkey.credential);
                }
            }
        }
        Ok(())
    }

    async fn begin_ceremony(
        &self,
        key: &TokenHash,
        ceremony: &PendingCeremony,
    ) -> Result<(), StoreError> {
        self.state().ceremonies.insert(*key, ceremony.clone());
        Ok(())
    }

    async fn take_ceremony(&self, key: &TokenHash) -> Result<Option<PendingCeremony>, StoreError> {
        Ok(self.state().ceremonies.remove(key))
    }

    async fn forget_expired_ceremonies(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.ceremonies.len();
        state.ceremonies.retain(|_, c| c.expires_at >= now);
        Ok((before - state.ceremonies.len()) as u64)
    }
}
