//! In-memory adapters for every driven port, a fake clock, predictable
//! tokens and a fast fake password hasher: for behaviour tests of this crate
//! and of services that embed it.
//!
//! They keep the same promises as the real adapters (see each port's
//! `# Errors`), with one lock standing in for a database transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::audit::models::{AuditEntry, AuditEvent};
use crate::audit::ports::{AuditCursor, AuditFilter, AuditLog};
use crate::clock::Clock;
use crate::errors::StoreError;
use crate::imports::models::{BatchInsertSkip, ImportCounts, ImportRecord, RowOutcome, RowReport};
use crate::imports::ports::{BatchInsert, ImportCandidate, ImportRepository};
use crate::invitations::models::{Invitation, InvitationState};
use crate::invitations::ports::{
    AcceptStoreError, Acceptance, InvitationRepository, Reissue, ReissueError,
};
use crate::mail::models::{MailState, OutboxEntry, OutgoingMail, QueuedMail};
use crate::mail::ports::{DeliveryError, MailTransport, OutboxRepository};
use crate::mail::settings::EmailSettings;
use crate::resets::models::PasswordReset;
use crate::resets::ports::{NewReset, PasswordChange, PasswordRepository, PasswordStoreError};
use crate::secrets::{
    Password, PasswordHash, PasswordHasher, PlainToken, TOKEN_BYTES, TokenGenerator, TokenHash,
};
use crate::service::{Policy, Ports, UserManagement};
use crate::sessions::models::{Session, SessionId};
use crate::sessions::ports::SessionRepository;
use crate::sessions::throttle::{AttemptKey, FailureCount, ThrottlePolicy, ThrottleRepository};
use crate::settings::ports::{SettingsRepository, StoredSeatLimit};
use crate::setup::ports::{CompleteSetupStoreError, SetupCompletion, SetupRepository};
use crate::sso::models::{PendingLogin, SsoFailure, SsoIdentity, SsoResponse, SsoStart};
use crate::sso::ports::{IdentityProvider, SsoRepository, SsoSignIn, SsoSignInStoreError};
use crate::sso::settings::SsoSettings;
use crate::users::errors::FieldError;
use crate::users::models::{EmailAddress, User, UserId, UserState, UserStatus};
use crate::users::ports::UserTotal;
use crate::users::ports::{
    ChangeUserError, Erasure, InsertUserError, NewInvitedUser, UserChange, UserPage, UserQuery,
    UserRepository,
};

mod usage;
pub use usage::MemoryUsage;

/// A clock that stands still until moved.
#[derive(Debug)]
pub struct FakeClock(Mutex<DateTime<Utc>>);

impl FakeClock {
    /// A clock at 2026-01-05 09:00 UTC.
    pub fn new() -> Self {
        Self::at(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().unwrap_or_default())
    }
    /// A clock at `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }
    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.0);
        *now += by;
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

/// Distinct, predictable tokens (not random: tests only).
#[derive(Debug, Default)]
pub struct SequentialTokens(AtomicU64);

impl TokenGenerator for SequentialTokens {
    fn generate(&self) -> PlainToken {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        let mut bytes = [0u8; TOKEN_BYTES];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        PlainToken::from_random_bytes(bytes)
    }
}

/// A fast, insecure stand-in for argon2 (tests only).
#[derive(Debug, Default)]
pub struct FakeHasher;

#[async_trait]
impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, StoreError> {
        Ok(PasswordHash::from_phc(format!("$fake${}", password.expose())))
    }
    async fn verify(
        &self,
        presented: &SecretString,
        hash: Option<PasswordHash>,
    ) -> Result<bool, StoreError> {
        Ok(hash.is_some_and(|h| h.as_phc() == format!("$fake${}", presented.expose_secret())))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another test thread panicked; the data is
    // still what it was.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An outbox message as the in-memory store keeps it.
#[derive(Debug, Clone)]
pub struct StoredMail {
    /// The message.
    pub mail: OutgoingMail,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// Leased to a worker until.
    pub leased_until: Option<DateTime<Utc>>,
    /// When delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// Gave up.
    pub failed: bool,
    /// Last error.
    pub last_error: Option<String>,
}

/// Everything the in-memory store holds; public so tests can look inside.
#[derive(Debug, Default)]
pub struct MemoryState {
    /// Users by id.
    pub users: HashMap<UserId, User>,
    /// Password hashes by user.
    pub passwords: HashMap<UserId, PasswordHash>,
    /// Invitations.
    pub invitations: Vec<Invitation>,
    /// Sessions.
    pub sessions: Vec<Session>,
    /// Outbox.
    pub outbox: Vec<StoredMail>,
    /// Audit log, in order.
    pub audit: Vec<AuditEvent>,
    /// The setup token, if any.
    pub setup_token: Option<(TokenHash, DateTime<Utc>)>,
    /// The seat limit an admin set.
    pub seat_limit: StoredSeatLimit,
    /// Saved email settings.
    pub email_settings: Option<EmailSettings>,
    /// Imports and their row reports.
    pub imports: HashMap<Uuid, (ImportRecord, Vec<RowReport>)>,
    /// Password reset links.
    pub resets: Vec<PasswordReset>,
    /// Sign-in failure counts by key.
    pub failures: HashMap<String, FailureCount>,
    /// Saved SSO settings.
    pub sso_settings: Option<SsoSettings>,
    /// SSO sign-ins in flight.
    pub pending_logins: Vec<PendingLogin>,
    /// Identity links: (issuer, subject) → user.
    pub sso_links: HashMap<(String, String), UserId>,
    /// Seen assertion ids: (issuer, id) → until when they are kept.
    pub assertions: HashMap<(String, String), DateTime<Utc>>,
    /// Service tokens, usage events and their aggregates.
    pub usage: MemoryUsage,
}

impl MemoryState {
    fn queue(&mut self, mail: OutgoingMail) {
        let next_attempt_at = mail.created_at;
        self.outbox.push(StoredMail {
            mail,
            attempts: 0,
            next_attempt_at,
            leased_until: None,
            sent_at: None,
            failed: false,
            last_error: None,
        });
    }

    fn revoke_pending_links(&mut self, user: UserId, at: DateTime<Utc>) {
        let links = self.invitations.iter_mut().map(|i| (i.user_id, &mut i.state));
        let resets = self.resets.iter_mut().map(|r| (r.user_id, &mut r.state));
        for (owner, state) in links.chain(resets) {
            if owner == user && *state == InvitationState::Pending {
                *state = InvitationState::Revoked { at };
            }
        }
    }

    fn email_taken(&self, email: &EmailAddress) -> bool {
        self.users.values().any(|u| u.email == *email)
    }
    fn seats_used(&self) -> usize {
        self.users.values().filter(|u| u.status().holds_seat()).count()
    }
}

/// An in-memory store implementing every storage port.
#[derive(Debug, Default)]
pub struct InMemoryStore(Mutex<MemoryState>);

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Looks at (or changes) the stored state.
    pub fn state(&self) -> MutexGuard<'_, MemoryState> {
        lock(&self.0)
    }
}

#[async_trait]
impl UserRepository for InMemoryStore {
    async fn insert_invited(&self, new: NewInvitedUser) -> Result<(), InsertUserError> {
        let mut state = self.state();
        if state.email_taken(&new.user.email) {
            return Err(InsertUserError::EmailTaken);
        }
        if let Some(limit) = new.seat_limit
            && !crate::users::models::SeatLimit::new(limit).admits(state.seats_used() as u64)
        {
            return Err(InsertUserError::SeatLimitReached { limit });
        }
        state.users.insert(new.user.id, new.user);
        state.invitations.push(new.invitation);
        state.queue(new.mail);
        state.audit.push(new.audit);
        Ok(())
    }

    async fn apply_change(&self, change: UserChange) -> Result<(), ChangeUserError> {
        let mut state = self.state();
        let id = change.before.id;
        let current = state.users.get(&id).ok_or(ChangeUserError::Stale)?;
        if current.role != change.before.role || current.status() != change.before.status() {
            return Err(ChangeUserError::Stale);
        }
        if change.keep_an_admin && !state.users.values().any(|u| u.id != id && u.is_active_admin())
        {
            return Err(ChangeUserError::LastAdmin);
        }
        if let Some(Some(limit)) = change.takes_seat
            && !crate::users::models::SeatLimit::new(limit).admits(state.seats_used() as u64)
        {
            return Err(ChangeUserError::SeatLimitReached { limit });
        }
        if change.after.sign_in != change.before.sign_in {
            state.passwords.remove(&id);
        }
        state.users.insert(id, change.after);
        if change.end_sessions {
            state.sessions.retain(|s| s.user_id != id);
        }
        if change.revoke_links {
            let at = change.audit.first().map(|e| e.at).unwrap_or_default();
            state.revoke_pending_links(id, at);
        }
        state.audit.extend(change.audit);
        Ok(())
    }

    async fn erase(&self, erasure: Erasure) -> Result<(), ChangeUserError> {
        let mut state = self.state();
        let id = erasure.before.id;
        let current = state.users.get(&id).ok_or(ChangeUserError::Stale)?;
        if current.role != erasure.before.role || current.status() != erasure.before.status() {
            return Err(ChangeUserError::Stale);
        }
        if erasure.before.is_active_admin()
            && !state.users.values().any(|u| u.id != id && u.is_active_admin())
        {
            return Err(ChangeUserError::LastAdmin);
        }
        state.users.insert(id, erasure.after);
        state.passwords.remove(&id);
        state.sessions.retain(|s| s.user_id != id);
        state.revoke_pending_links(id, erasure.audit.at);
        let email = erasure.before.email.clone();
        state.outbox.retain(|m| m.sent_at.is_some() || m.mail.to != email);
        for event in &mut state.audit {
            if event.target_id == Some(id) {
                event.target_email = None;
                event.changes.clear();
            }
            if let crate::Actor::User { id: actor, .. } = &event.actor
                && *actor == id
            {
                event.actor = crate::Actor::Anonymous;
            }
        }
        state.audit.push(erasure.audit);
        Ok(())
    }

    async fn count_seats(&self) -> Result<u64, StoreError> {
        Ok(self.state().seats_used() as u64)
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.state().users.get(&id).cloned())
    }

    async fn find_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        Ok(self.state().users.values().find(|u| u.email == *email).cloned())
    }

    async fn list(&self, query: &UserQuery, _total_cap: u64) -> Result<UserPage, StoreError> {
        let state = self.state();
        let key = |u: &User| (query.sort.value_of(u), u.id);
        let mut users: Vec<&User> =
            state.users.values().filter(|u| query.filter.matches(u)).collect();
        let matching = users.len();
        users.sort_by_key(|u| key(u));
        if query.descending {
            users.reverse();
        }
        let items: Vec<User> = users
            .into_iter()
            .filter(|u| {
                query.after.as_ref().is_none_or(|c| {
                    let position = (c.value.clone(), c.id);
                    if query.descending { key(u) < position } else { key(u) > position }
                })
            })
            .take(query.limit as usize + 1)
            .cloned()
            .collect();
        let total = UserTotal { count: matching as u64, exact: true };
        Ok(UserPage::from_overfetch(items, query.limit, query.sort, total))
    }
}

#[async_trait]
impl InvitationRepository for InMemoryStore {
    async fn reissue(&self, reissue: Reissue) -> Result<(), ReissueError> {
        let mut state = self.state();
        let user_id = reissue.invitation.user_id;
        if state.users.get(&user_id).is_none_or(|u| u.status() != UserStatus::Invited) {
            return Err(ReissueError::NotInvited);
        }
        let at = reissue.invitation.created_at;
        for invitation in &mut state.invitations {
            if invitation.user_id == user_id && invitation.state == InvitationState::Pending {
                invitation.state = InvitationState::Revoked { at };
            }
        }
        state.invitations.push(reissue.invitation);
        state.queue(reissue.mail);
        state.audit.push(reissue.audit);
        Ok(())
    }

    async fn latest_for(&self, user: UserId) -> Result<Option<Invitation>, StoreError> {
        Ok(self
            .state()
            .invitations
            .iter()
            .filter(|i| i.user_id == user)
            .max_by_key(|i| (i.state == InvitationState::Pending, i.created_at))
            .cloned())
    }

    async fn find_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(Invitation, User)>, StoreError> {
        let state = self.state();
        Ok(state
            .invitations
            .iter()
            .find(|i| i.token_hash == *hash)
            .and_then(|i| state.users.get(&i.user_id).map(|u| (i.clone(), u.clone()))))
    }

    async fn accept(&self, acceptance: Acceptance) -> Result<(), AcceptStoreError> {
        let mut state = self.state();
        let pending = state
            .invitations
            .iter()
            .any(|i| i.id == acceptance.invitation_id && i.state == InvitationState::Pending);
        let invited =
            state.users.get(&acceptance.user_id).is_some_and(|u| u.status() == UserStatus::Invited);
        if !pending || !invited {
            return Err(AcceptStoreError::NoLongerPending);
        }
        for invitation in &mut state.invitations {
            if invitation.id == acceptance.invitation_id {
                invitation.state = InvitationState::Accepted { at: acceptance.at };
            }
        }
        if let Some(user) = state.users.get_mut(&acceptance.user_id) {
            user.state = UserState::Active { activated_at: acceptance.at };
        }
        if let Some(hash) = acceptance.password_hash {
            state.passwords.insert(acceptance.user_id, hash);
        }
        state.audit.push(acceptance.audit);
        Ok(())
    }
}

#[async_trait]
impl SessionRepository for InMemoryStore {
    async fn count_live(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(self
            .state()
            .sessions
            .iter()
            .filter(|s| s.user_id == user && s.expires_at > now && s.last_seen_at > idle_since)
            .count() as u64)
    }

    async fn find_credentials(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<(User, Option<PasswordHash>)>, StoreError> {
        let state = self.state();
        Ok(state
            .users
            .values()
            .find(|u| u.email == *email)
            .map(|u| (u.clone(), state.passwords.get(&u.id).cloned())))
    }

    async fn start(&self, session: Session, audit: AuditEvent) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(user) = state.users.get_mut(&session.user_id) {
            user.last_login_at = Some(session.created_at);
        }
        state.sessions.push(session);
        state.audit.push(audit);
        Ok(())
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<(Session, User)>, StoreError> {
        let state = self.state();
        Ok(state
            .sessions
            .iter()
            .find(|s| s.token_hash == *hash)
            .and_then(|s| state.users.get(&s.user_id).map(|u| (s.clone(), u.clone()))))
    }

    async fn touch(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StoreError> {
        for session in &mut self.state().sessions {
            if session.id == id {
                session.last_seen_at = at;
            }
        }
        Ok(())
    }

    async fn end_all(&self, user: UserId, audit: AuditEvent) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.sessions.len();
        state.sessions.retain(|s| s.user_id != user);
        let ended = (before - state.sessions.len()) as u64;
        state.audit.push(audit);
        Ok(ended)
    }

    async fn end(&self, id: SessionId, audit: Option<AuditEvent>) -> Result<(), StoreError> {
        let mut state = self.state();
        state.sessions.retain(|s| s.id != id);
        state.audit.extend(audit);
        Ok(())
    }
}

#[async_trait]
impl SetupRepository for InMemoryStore {
    async fn has_active_admin(&self) -> Result<bool, StoreError> {
        Ok(self.state().users.values().any(User::is_active_admin))
    }

    async fn replace_setup_token(
        &self,
        hash: TokenHash,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.state().setup_token = Some((hash, expires_at));
        Ok(())
    }

    async fn setup_token_valid(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.state().setup_token.is_some_and(|(h, exp)| h == *hash && now < exp))
    }

    async fn complete_setup(
        &self,
        completion: SetupCompletion,
    ) -> Result<(), CompleteSetupStoreError> {
        let mut state = self.state();
        let valid = state
            .setup_token
            .is_some_and(|(h, exp)| h == completion.token_hash && completion.at < exp);
        if !valid {
            return Err(CompleteSetupStoreError::InvalidToken);
        }
        if state.users.values().any(User::is_active_admin) {
            return Err(CompleteSetupStoreError::AdminExists);
        }
        if state.email_taken(&completion.admin.email) {
            return Err(CompleteSetupStoreError::EmailTaken);
        }
        state.setup_token = None;
        state.passwords.insert(completion.admin.id, completion.password_hash);
        state.users.insert(completion.admin.id, completion.admin);
        state.audit.push(completion.audit);
        Ok(())
    }
}

#[async_trait]
impl PasswordRepository for InMemoryStore {
    async fn issue_reset(&self, new: NewReset) -> Result<(), PasswordStoreError> {
        let mut state = self.state();
        let user_id = new.reset.user_id;
        if state.users.get(&user_id).is_none_or(|u| u.status() != UserStatus::Active) {
            return Err(PasswordStoreError::NoLongerApplicable);
        }
        let at = new.reset.created_at;
        for reset in &mut state.resets {
            if reset.user_id == user_id && reset.state == InvitationState::Pending {
                reset.state = InvitationState::Revoked { at };
            }
        }
        state.resets.push(new.reset);
        state.queue(new.mail);
        state.audit.push(new.audit);
        Ok(())
    }

    async fn find_reset(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(PasswordReset, User)>, StoreError> {
        let state = self.state();
        Ok(state
            .resets
            .iter()
            .find(|r| r.token_hash == *hash)
            .and_then(|r| state.users.get(&r.user_id).map(|u| (r.clone(), u.clone()))))
    }

    async fn set_password(&self, change: PasswordChange) -> Result<(), PasswordStoreError> {
        let mut state = self.state();
        if state.users.get(&change.user_id).is_none_or(|u| u.status() != UserStatus::Active) {
            return Err(PasswordStoreError::NoLongerApplicable);
        }
        if let Some(reset_id) = change.reset_id {
            let reset = state
                .resets
                .iter_mut()
                .find(|r| r.id == reset_id && r.state == InvitationState::Pending)
                .ok_or(PasswordStoreError::NoLongerApplicable)?;
            reset.state = InvitationState::Accepted { at: change.at };
        }
        state.passwords.insert(change.user_id, change.password_hash);
        state.sessions.retain(|s| s.user_id != change.user_id || Some(s.id) == change.keep_session);
        state.audit.push(change.audit);
        Ok(())
    }
}

#[async_trait]
impl ThrottleRepository for InMemoryStore {
    async fn failures(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        Ok(self.state().failures.get(key).copied())
    }

    async fn reserve(
        &self,
        keys: &[AttemptKey],
        now: DateTime<Utc>,
        policy: &ThrottlePolicy,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        // One lock for the whole step: concurrent reservations serialise.
        let mut state = self.state();
        let mut admitted = Vec::with_capacity(keys.len());
        let mut wait = None;
        for key in keys {
            match policy.admit(state.failures.get(&key.key).copied(), key.free, now) {
                Ok(failures) => admitted.push((key.key.clone(), failures)),
                Err(until) => wait = wait.max(Some(until)),
            }
        }
        if wait.is_none() {
            for (key, failures) in admitted {
                state.failures.insert(key, FailureCount { failures, last_failure_at: now });
            }
        }
        Ok(wait)
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        if let Some(count) = self.state().failures.get_mut(key) {
            count.failures = count.failures.saturating_sub(1);
        }
        Ok(())
    }

    async fn forget_stale(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state();
        let count = state.failures.len();
        state.failures.retain(|_, c| c.failures > 0 && c.last_failure_at > before);
        Ok(u64::try_from(count - state.failures.len()).unwrap_or(u64::MAX))
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        self.state().failures.remove(key);
        Ok(())
    }
}

#[async_trait]
impl SettingsRepository for InMemoryStore {
    async fn seat_limit(&self) -> Result<StoredSeatLimit, StoreError> {
        Ok(self.state().seat_limit)
    }

    async fn set_seat_limit(
        &self,
        limit: Option<u32>,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.seat_limit = Some(limit);
        state.audit.push(audit);
        Ok(())
    }

    async fn sso_settings(&self) -> Result<Option<SsoSettings>, StoreError> {
        Ok(self.state().sso_settings.clone())
    }

    async fn set_sso_settings(
        &self,
        settings: &SsoSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.sso_settings = Some(settings.clone());
        state.audit.push(audit);
        Ok(())
    }

    async fn email_settings(&self) -> Result<Option<EmailSettings>, StoreError> {
        Ok(self.state().email_settings.clone())
    }

    async fn set_email_settings(
        &self,
        settings: &EmailSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.email_settings = Some(settings.clone());
        state.audit.push(audit);
        Ok(())
    }
}

#[async_trait]
impl AuditLog for InMemoryStore {
    async fn append(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.state().audit.push(event);
        Ok(())
    }

    async fn list(
        &self,
        filter: &AuditFilter,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let state = self.state();
        let mut events: Vec<&AuditEvent> = state
            .audit
            .iter()
            .filter(|e| {
                let actor_id = match &e.actor {
                    crate::Actor::User { id, .. } => Some(*id),
                    _ => None,
                };
                filter.actor.is_none_or(|a| actor_id == Some(a))
                    && filter.target.is_none_or(|t| e.target_id == Some(t))
                    && filter.action.is_none_or(|a| e.action == a)
                    && filter.from.is_none_or(|f| e.at >= f)
                    && filter.to.is_none_or(|t| e.at < t)
                    && after.is_none_or(|c| (e.at, e.id) < (c.at, c.id))
            })
            .collect();
        events.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
        Ok(events.into_iter().take(limit as usize).map(entry).collect())
    }
}

fn entry(event: &AuditEvent) -> AuditEntry {
    let (actor_kind, actor_id, actor_email) = match &event.actor {
        crate::Actor::User { id, email } => ("user", Some(*id), Some(email.to_string())),
        crate::Actor::Operator => ("operator", None, None),
        crate::Actor::Anonymous => ("anonymous", None, None),
    };
    AuditEntry {
        id: event.id,
        at: event.at,
        actor_kind: actor_kind.to_owned(),
        actor_id,
        actor_email,
        action: event.action,
        target_id: event.target_id,
        target_email: event.target_email.clone(),
        changes: event.changes.clone(),
        context: event.context.clone(),
    }
}

#[async_trait]
impl OutboxRepository for InMemoryStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        let mut state = self.state();
        let mut claimed = Vec::new();
        for stored in &mut state.outbox {
            let free = stored.leased_until.is_none_or(|until| until <= now);
            if claimed.len() < limit as usize
                && stored.sent_at.is_none()
                && !stored.failed
                && stored.next_attempt_at <= now
                && free
            {
                stored.leased_until = Some(lease_until);
                claimed.push(QueuedMail { mail: stored.mail.clone(), attempts: stored.attempts });
            }
        }
        Ok(claimed)
    }

    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        for stored in &mut self.state().outbox {
            if stored.mail.id == id {
                stored.sent_at = Some(at);
                stored.leased_until = None;
            }
        }
        Ok(())
    }

    async fn mark_attempt_failed(
        &self,
        id: Uuid,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        for stored in &mut self.state().outbox {
            if stored.mail.id == id {
                stored.attempts += 1;
                stored.last_error = Some(error.clone());
                stored.leased_until = None;
                match retry_at {
                    Some(at) => stored.next_attempt_at = at,
                    None => stored.failed = true,
                }
            }
        }
        Ok(())
    }

    async fn list(
        &self,
        state: Option<MailState>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut entries: Vec<OutboxEntry> = self
            .state()
            .outbox
            .iter()
            .map(outbox_entry)
            .filter(|e| state.is_none_or(|s| e.state == s))
            .filter(|e| before.is_none_or(|b| (e.created_at, e.id) < b))
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse((e.created_at, e.id)));
        entries.truncate(limit as usize);
        Ok(entries)
    }

    async fn entry(&self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError> {
        Ok(self.state().outbox.iter().find(|m| m.mail.id == id).map(outbox_entry))
    }

    async fn requeue_failed(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(stored) = state.outbox.iter_mut().find(|m| m.mail.id == id && m.failed) else {
            return Ok(false);
        };
        stored.failed = false;
        stored.attempts = 0;
        stored.next_attempt_at = at;
        stored.leased_until = None;
        state.audit.push(audit);
        Ok(true)
    }

    async fn latest_for(
        &self,
        user: UserId,
        kind: &str,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        Ok(self
            .state()
            .outbox
            .iter()
            .filter(|m| m.mail.user_id == Some(user) && m.mail.message.kind() == kind)
            .max_by_key(|m| (m.mail.created_at, m.mail.id))
            .map(outbox_entry))
    }
}

#[async_trait]
impl ImportRepository for InMemoryStore {
    async fn existing_statuses(
        &self,
        email_keys: &[String],
    ) -> Result<HashMap<String, UserStatus>, StoreError> {
        let state = self.state();
        Ok(state
            .users
            .values()
            .filter(|u| email_keys.iter().any(|k| k == u.email.key()))
            .map(|u| (u.email.key().to_owned(), u.status()))
            .collect())
    }

    async fn start_import(&self, record: &ImportRecord) -> Result<(), StoreError> {
        self.state().imports.insert(record.id, (record.clone(), Vec::new()));
        Ok(())
    }

    async fn insert_batch(
        &self,
        import: Uuid,
        candidates: Vec<ImportCandidate>,
        skipped: Vec<RowReport>,
        batch_rows: u64,
        keep_created_rows: bool,
    ) -> Result<Vec<BatchInsert>, StoreError> {
        let mut state = self.state();
        if !state.imports.contains_key(&import) {
            return Err(StoreError::msg("no such import"));
        }
        let mut outcomes = Vec::with_capacity(candidates.len());
        let mut reports = skipped;
        let mut created = 0_u64;
        for candidate in candidates {
            let new = candidate.user;
            let skip =
                if let Some(existing) = state.users.values().find(|u| u.email == new.user.email) {
                    Some(BatchInsertSkip::Taken(existing.status()))
                } else {
                    new.seat_limit
                        .filter(|limit| state.seats_used() >= *limit as usize)
                        .map(BatchInsertSkip::NoSeat)
                };
            match skip {
                Some(skip) => {
                    outcomes.push(skip.into());
                    reports.push(RowReport::for_batch_skip(
                        candidate.line,
                        &candidate.written,
                        skip,
                    ));
                }
                None => {
                    if keep_created_rows {
                        reports.push(RowReport {
                            line: candidate.line,
                            email: candidate.written,
                            outcome: RowOutcome::Created(new.user.id),
                        });
                    }
                    state.users.insert(new.user.id, new.user);
                    state.invitations.push(new.invitation);
                    state.queue(new.mail);
                    state.audit.push(new.audit);
                    outcomes.push(BatchInsert::Created);
                    created += 1;
                }
            }
        }
        let skipped_count =
            reports.iter().filter(|r| matches!(r.outcome, RowOutcome::Skipped(_))).count() as u64;
        if let Some(entry) = state.imports.get_mut(&import) {
            entry.0.counts.rows += batch_rows;
            entry.0.counts.valid += created;
            entry.0.counts.skipped += skipped_count;
            entry.1.extend(reports);
        }
        Ok(outcomes)
    }

    async fn record_rows(
        &self,
        import: Uuid,
        rows: Vec<RowReport>,
        counts: ImportCounts,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let entry =
            state.imports.get_mut(&import).ok_or_else(|| StoreError::msg("no such import"))?;
        entry.0.counts.rows += counts.rows;
        entry.0.counts.valid += counts.valid;
        entry.0.counts.skipped += counts.skipped;
        entry.1.extend(rows);
        Ok(())
    }

    async fn finish_import(
        &self,
        import: Uuid,
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(entry) = state.imports.get_mut(&import) {
            entry.0.finished = true;
        }
        state.audit.extend(audit);
        Ok(())
    }

    async fn import(&self, id: Uuid) -> Result<Option<ImportRecord>, StoreError> {
        Ok(self.state().imports.get(&id).map(|(record, _)| record.clone()))
    }

    async fn import_rows(
        &self,
        id: Uuid,
        after_line: u64,
        limit: u32,
        skipped_only: bool,
    ) -> Result<Vec<RowReport>, StoreError> {
        let state = self.state();
        let Some((_, rows)) = state.imports.get(&id) else { return Ok(Vec::new()) };
        let mut rows: Vec<RowReport> = rows
            .iter()
            .filter(|r| r.line > after_line)
            .filter(|r| !skipped_only || matches!(r.outcome, RowOutcome::Skipped(_)))
            .cloned()
            .collect();
        rows.sort_by_key(|r| r.line);
        rows.truncate(limit as usize);
        Ok(rows)
    }
}

fn outbox_entry(stored: &StoredMail) -> OutboxEntry {
    let state = if stored.sent_at.is_some() {
        MailState::Sent
    } else if stored.failed {
        MailState::Failed
    } else {
        MailState::Queued
    };
    OutboxEntry {
        id: stored.mail.id,
        kind: stored.mail.message.kind().to_owned(),
        recipient: stored.mail.to.to_string(),
        user_id: stored.mail.user_id,
        state,
        attempts: stored.attempts,
        last_error: stored.last_error.clone(),
        created_at: stored.mail.created_at,
        next_attempt_at: stored.next_attempt_at,
        sent_at: stored.sent_at,
    }
}

/// A transport that records what it was given (and with which settings),
/// or fails on demand.
#[derive(Debug, Default)]
pub struct RecordingTransport {
    sent: Mutex<Vec<(EmailSettings, OutgoingMail)>>,
    failure: Mutex<Option<DeliveryError>>,
}

impl RecordingTransport {
    /// Messages delivered so far.
    pub fn sent(&self) -> Vec<OutgoingMail> {
        lock(&self.sent).iter().map(|(_, mail)| mail.clone()).collect()
    }
    /// Messages delivered so far, with the settings each was sent with.
    pub fn sent_with_settings(&self) -> Vec<(EmailSettings, OutgoingMail)> {
        lock(&self.sent).clone()
    }
    /// Makes every following send fail with `error` (or succeed with `None`).
    pub fn fail_with(&self, error: Option<DeliveryError>) {
        *lock(&self.failure) = error;
    }
}

#[async_trait]
impl MailTransport for RecordingTransport {
    async fn send(
        &self,
        settings: &EmailSettings,
        mail: &OutgoingMail,
    ) -> Result<String, DeliveryError> {
        if let Some(error) = lock(&self.failure).clone() {
            return Err(error);
        }
        lock(&self.sent).push((settings.clone(), mail.clone()));
        Ok(format!("250 2.0.0 Ok: queued as {}", mail.id))
    }
}

#[async_trait]
impl SsoRepository for InMemoryStore {
    async fn save_login(&self, login: PendingLogin) -> Result<(), StoreError> {
        self.state().pending_logins.push(login);
        Ok(())
    }

    async fn take_login(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let mut state = self.state();
        let found = state.pending_logins.iter().position(|p| &p.key == key);
        let taken = found.map(|i| state.pending_logins.remove(i));
        state.pending_logins.retain(|p| p.expires_at > now);
        Ok(taken)
    }

    async fn find_linked(&self, issuer: &str, subject: &str) -> Result<Option<User>, StoreError> {
        let state = self.state();
        let id = state.sso_links.get(&(issuer.to_owned(), subject.to_owned()));
        Ok(id.and_then(|id| state.users.get(id).cloned()))
    }

    async fn links_of(&self, user: UserId) -> Result<Vec<(String, String)>, StoreError> {
        let state = self.state();
        Ok(state
            .sso_links
            .iter()
            .filter(|(_, u)| **u == user)
            .map(|((issuer, subject), _)| (issuer.clone(), subject.clone()))
            .collect())
    }

    async fn remember_assertion(
        &self,
        issuer: &str,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        state.assertions.retain(|_, until| *until > now);
        let key = (issuer.to_owned(), id.to_owned());
        if state.assertions.contains_key(&key) {
            return Ok(false);
        }
        state.assertions.insert(key, expires_at);
        Ok(true)
    }

    async fn forget_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.pending_logins.len() + state.assertions.len();
        state.pending_logins.retain(|p| p.expires_at > now);
        state.assertions.retain(|_, until| *until > now);
        let after = state.pending_logins.len() + state.assertions.len();
        Ok(u64::try_from(before - after).unwrap_or(u64::MAX))
    }

    async fn record_sso_sign_in(&self, sign_in: SsoSignIn) -> Result<(), SsoSignInStoreError> {
        let mut state = self.state();
        let id = sign_in.user.id;
        match sign_in.create {
            Some(limit) => {
                if state.email_taken(&sign_in.user.email) {
                    return Err(SsoSignInStoreError::Conflict);
                }
                if let Some(limit) = limit
                    && !crate::users::models::SeatLimit::new(limit)
                        .admits(state.seats_used() as u64)
                {
                    return Err(SsoSignInStoreError::SeatLimitReached { limit });
                }
            }
            None => {
                let current = state.users.get(&id).ok_or(SsoSignInStoreError::Stale)?;
                let expected =
                    if sign_in.activate { UserStatus::Invited } else { UserStatus::Active };
                if current.status() != expected {
                    return Err(SsoSignInStoreError::Stale);
                }
            }
        }
        if let Some((issuer, subject)) = &sign_in.link {
            let key = (issuer.clone(), subject.clone());
            if state.sso_links.contains_key(&key) {
                return Err(SsoSignInStoreError::Conflict);
            }
            state.sso_links.insert(key, id);
        }
        if sign_in.activate {
            for invitation in state.invitations.iter_mut().filter(|i| i.user_id == id) {
                if invitation.state == InvitationState::Pending {
                    invitation.state = InvitationState::Revoked { at: sign_in.session.created_at };
                }
            }
        }
        state.users.insert(id, sign_in.user);
        state.sessions.push(sign_in.session);
        state.audit.extend(sign_in.audit);
        Ok(())
    }
}

/// An identity provider for tests of the rules: answers every sign-in with
/// the identity (or refusal) the test set, and accepts every setting.
#[derive(Default)]
pub struct FakeIdentityProvider {
    answer: Mutex<Option<Result<SsoIdentity, SsoFailure>>>,
    pending_seen: Mutex<Vec<Option<PendingLogin>>>,
}

impl FakeIdentityProvider {
    /// The next sign-in's answer.
    pub fn answer(&self, answer: Result<SsoIdentity, SsoFailure>) {
        *self.answer.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answer);
    }

    /// The sign-in in flight each `complete` was given, in order.
    pub fn pending_seen(&self) -> Vec<Option<PendingLogin>> {
        self.pending_seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl IdentityProvider for FakeIdentityProvider {
    async fn check(&self, settings: SsoSettings) -> Result<SsoSettings, FieldError> {
        Ok(settings)
    }

    async fn begin(
        &self,
        _settings: &SsoSettings,
        _relay_state: &str,
    ) -> Result<SsoStart, SsoFailure> {
        Ok(SsoStart {
            redirect_url: "https://idp.example.com/authorize".into(),
            data: "state".into(),
        })
    }

    async fn complete(
        &self,
        _settings: &SsoSettings,
        pending: Option<PendingLogin>,
        _response: &SsoResponse,
        _now: DateTime<Utc>,
    ) -> Result<SsoIdentity, SsoFailure> {
        self.pending_seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(pending);
        self.answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| Err(SsoFailure::new("no_answer", "the test set no answer")))
    }

    fn service_provider_metadata(&self, _settings: &SsoSettings) -> Result<String, SsoFailure> {
        Ok("<EntityDescriptor/>".into())
    }
}

/// A complete in-memory setup: the use cases, and handles on the store and
/// clock to arrange and inspect.
pub struct TestKit {
    /// The use cases.
    pub service: UserManagement,
    /// The store behind them.
    pub store: Arc<InMemoryStore>,
    /// The clock behind them.
    pub clock: Arc<FakeClock>,
    /// The transport test messages go through.
    pub transport: Arc<RecordingTransport>,
    /// The identity provider SSO sign-ins go through.
    pub identity: Arc<FakeIdentityProvider>,
}

impl TestKit {
    /// Use cases over a fresh in-memory store with the given policy.
    pub fn with_policy(policy: Policy) -> Self {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(FakeClock::new());
        let transport = Arc::new(RecordingTransport::default());
        let identity = Arc::new(FakeIdentityProvider::default());
        let ports = Ports::from_store(
            store.clone(),
            clock.clone(),
            Arc::new(SequentialTokens::default()),
            Arc::new(FakeHasher),
            transport.clone(),
        )
        .with_identity_provider(identity.clone());
        Self { service: UserManagement::new(ports, policy), store, clock, transport, identity }
    }

    /// Use cases over a fresh in-memory store with the default policy.
    pub fn new() -> Self {
        Self::with_policy(Policy::default())
    }
}

impl Default for TestKit {
    fn default() -> Self {
        Self::new()
    }
}
