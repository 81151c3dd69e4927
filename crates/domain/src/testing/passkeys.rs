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

/// A stand-in for the WebAuthn protocol: the options carry a numbered
/// challenge, and an answer is right when it echoes the challenge and names
/// a credential (`{"challenge": "3", "id": "key-1"}`) — for sign-in, one of
/// the user's. Enough to test the rules around passkeys; the real protocol
/// is tested in `secureai-passkeys` and over HTTP.
#[derive(Debug, Default)]
pub struct FakePasskeys {
    next: std::sync::atomic::AtomicU64,
}

impl FakePasskeys {
    fn ceremony(&self) -> crate::mfa::passkeys::Ceremony {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        crate::mfa::passkeys::Ceremony {
            options: format!("{{\"challenge\": \"{n}\"}}"),
            state: n.to_string(),
        }
    }

    /// The answer of an authenticator holding credential `id` to a
    /// ceremony's options.
    pub fn answer(options: &str, id: &str) -> String {
        let challenge = options.split('"').nth(3).unwrap_or_default();
        format!("{{\"challenge\": \"{challenge}\", \"id\": \"{id}\"}}")
    }

    fn read(
        state: &str,
        answer: &str,
    ) -> Result<String, crate::mfa::passkeys::PasskeyProtocolError> {
        let refused = || crate::mfa::passkeys::PasskeyProtocolError::Refused("wrong answer".into());
        let parts: Vec<&str> = answer.split('"').collect();
        if parts.len() < 8 || parts[3] != state {
            return Err(refused());
        }
        Ok(parts[7].to_owned())
    }
}

impl crate::mfa::passkeys::PasskeyProtocol for FakePasskeys {
    fn start_registration(
        &self,
        _user: &crate::User,
        _existing: &[Passkey],
    ) -> Result<crate::mfa::passkeys::Ceremony, crate::mfa::passkeys::PasskeyProtocolError> {
        Ok(self.ceremony())
    }

    fn finish_registration(
        &self,
        state: &str,
        answer: &str,
    ) -> Result<
        crate::mfa::passkeys::RegisteredCredential,
        crate::mfa::passkeys::PasskeyProtocolError,
    > {
        let id = Self::read(state, answer)?;
        Ok(crate::mfa::passkeys::RegisteredCredential {
            credential: format!("{{\"id\": \"{id}\"}}"),
            credential_id: id,
        })
    }

    fn start_authentication(
        &self,
        _passkeys: &[Passkey],
    ) -> Result<crate::mfa::passkeys::Ceremony, crate::mfa::passkeys::PasskeyProtocolError> {
        Ok(self.ceremony())
    }

    fn finish_authentication(
        &self,
        state: &str,
        answer: &str,
        passkeys: &[Passkey],
    ) -> Result<crate::mfa::passkeys::UsedCredential, crate::mfa::passkeys::PasskeyProtocolError>
    {
        let id = Self::read(state, answer)?;
        if !passkeys.iter().any(|p| p.credential_id == id) {
            return Err(crate::mfa::passkeys::PasskeyProtocolError::Refused("not theirs".into()));
        }
        Ok(crate::mfa::passkeys::UsedCredential { credential_id: id, credential: None })
    }
}
