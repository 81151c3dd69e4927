//! The in-memory store's second factors.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::InMemoryStore;
use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::mfa::models::TotpEnrolment;
use crate::mfa::ports::{ConfirmTotpError, MfaRepository};
use crate::secrets::TokenHash;
use crate::users::models::UserId;

#[async_trait]
impl MfaRepository for InMemoryStore {
    async fn passkey_count(&self, user: UserId) -> Result<u32, StoreError> {
        let count = self.state().passkeys.iter().filter(|p| p.user_id == user).count();
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn totp(&self, user: UserId) -> Result<Option<TotpEnrolment>, StoreError> {
        Ok(self.state().totp.get(&user).cloned())
    }

    async fn begin_totp(&self, enrolment: &TotpEnrolment) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.totp.get(&enrolment.user_id).is_some_and(|t| t.confirmed_at.is_some()) {
            return Ok(false);
        }
        state.totp.insert(enrolment.user_id, enrolment.clone());
        Ok(true)
    }

    async fn confirm_totp(
        &self,
        user: UserId,
        created_at: DateTime<Utc>,
        step: u64,
        codes: &[TokenHash],
        audit: AuditEvent,
    ) -> Result<(), ConfirmTotpError> {
        let mut state = self.state();
        let Some(pending) = state
            .totp
            .get_mut(&user)
            .filter(|t| t.confirmed_at.is_none() && t.created_at == created_at)
        else {
            return Err(ConfirmTotpError::NotPending);
        };
        pending.confirmed_at = Some(audit.at);
        pending.last_step = Some(step);
        state.recovery_codes.insert(user, codes.iter().map(|c| (*c, None)).collect());
        state.audit.push(audit);
        Ok(())
    }

    async fn accept_totp_step(&self, user: UserId, step: u64) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(enrolment) = state.totp.get_mut(&user).filter(|t| t.confirmed_at.is_some()) else {
            return Ok(false);
        };
        if enrolment.last_step.is_some_and(|last| step <= last) {
            return Ok(false);
        }
        enrolment.last_step = Some(step);
        Ok(true)
    }

    async fn remove_totp(
        &self,
        user: UserId,
        codes_too: bool,
        audit: AuditEvent,
        notice: Option<crate::mail::models::OutgoingMail>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.totp.remove(&user).is_none() {
            return Ok(false);
        }
        if codes_too {
            state.recovery_codes.remove(&user);
        }
        state.audit.push(audit);
        if let Some(mail) = notice {
            state.queue(mail);
        }
        Ok(true)
    }

    async fn recovery_code_used(
        &self,
        audit: AuditEvent,
        notice: crate::mail::models::OutgoingMail,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.audit.push(audit);
        state.queue(notice);
        Ok(())
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[TokenHash],
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.recovery_codes.insert(user, codes.iter().map(|c| (*c, None)).collect());
        state.audit.push(audit);
        Ok(())
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let unused = state
            .recovery_codes
            .get_mut(&user)
            .and_then(|codes| codes.iter_mut().find(|(c, used)| c == code && used.is_none()));
        match unused {
            Some((_, used)) => {
                *used = Some(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn recovery_codes_left(&self, user: UserId) -> Result<u32, StoreError> {
        let state = self.state();
        let left = state
            .recovery_codes
            .get(&user)
            .map_or(0, |codes| codes.iter().filter(|(_, used)| used.is_none()).count());
        Ok(u32::try_from(left).unwrap_or(u32::MAX))
    }

    async fn begin_sign_in(
        &self,
        token: &TokenHash,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.state().mfa_sign_ins.insert(*token, (user, expires_at));
        Ok(())
    }

    async fn sign_in_waiting(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(UserId, DateTime<Utc>)>, StoreError> {
        Ok(self.state().mfa_sign_ins.get(token).copied())
    }

    async fn take_sign_in(&self, token: &TokenHash) -> Result<bool, StoreError> {
        Ok(self.state().mfa_sign_ins.remove(token).is_some())
    }

    async fn forget_expired_sign_ins(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.mfa_sign_ins.len();
        state.mfa_sign_ins.retain(|_, (_, until)| *until >= now);
        Ok(u64::try_from(before - state.mfa_sign_ins.len()).unwrap_or(u64::MAX))
    }
}
