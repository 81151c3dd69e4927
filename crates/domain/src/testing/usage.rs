//! The in-memory store's service tokens and usage analytics.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::InMemoryStore;
use crate::analytics::models::{
    ActivePoint, DayRange, DayUsage, ModelUsage, Period, Ranking, RecordedUsage, ServiceToken,
    TopUsers, Usage, UsageEvent, UserUsage,
};
use crate::analytics::ports::{ServiceTokenRepository, UsageRepository};
use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::secrets::TokenHash;
use crate::users::models::UserId;

/// (user, day, model, provider): the key of the finest aggregate.
pub type DailyKey = (UserId, NaiveDate, String, String);

/// Usage kept by the in-memory store.
#[derive(Debug, Default)]
pub struct MemoryUsage {
    /// Service tokens with the digest of their secret.
    pub tokens: Vec<(ServiceToken, TokenHash)>,
    /// Raw events by id.
    pub events: HashMap<String, UsageEvent>,
    /// Conversations: (user, conversation) → last event.
    pub conversations: HashMap<(UserId, String), DateTime<Utc>>,
    /// Aggregates per (user, day, model, provider), with the last event.
    pub daily: BTreeMap<DailyKey, (Usage, DateTime<Utc>)>,
    /// Active users: (period, first day, user).
    pub active: BTreeSet<(Period, NaiveDate, UserId)>,
}

impl MemoryUsage {
    fn mark(&mut self, user: UserId, day: NaiveDate) {
        for period in [Period::Day, Period::Week, Period::Month] {
            self.active.insert((period, period.start_of(day), user));
        }
    }

    fn in_range(&self, range: DayRange) -> impl Iterator<Item = (&DailyKey, &Usage)> {
        self.daily
            .iter()
            .filter(move |((_, day, _, _), _)| *day >= range.from && *day <= range.to)
            .map(|(key, (usage, _))| (key, usage))
    }
}

#[async_trait]
impl ServiceTokenRepository for InMemoryStore {
    async fn insert_service_token(
        &self,
        token: ServiceToken,
        hash: TokenHash,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.usage.tokens.push((token, hash));
        state.audit.push(audit);
        Ok(())
    }

    async fn service_tokens(&self) -> Result<Vec<ServiceToken>, StoreError> {
        let mut tokens: Vec<ServiceToken> =
            self.state().usage.tokens.iter().map(|(t, _)| t.clone()).collect();
        tokens.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(tokens)
    }

    async fn service_token_by_hash(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<ServiceToken>, StoreError> {
        Ok(self.state().usage.tokens.iter().find(|(_, h)| h == hash).map(|(t, _)| t.clone()))
    }

    async fn revoke_service_token(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<Option<ServiceToken>, StoreError> {
        let mut state = self.state();
        let Some((token, _)) = state.usage.tokens.iter_mut().find(|(t, _)| t.id == id) else {
            return Ok(None);
        };
        if token.revoked_at.is_some() {
            return Ok(Some(token.clone()));
        }
        token.revoked_at = Some(at);
        let token = token.clone();
        state.audit.push(audit);
        Ok(Some(token))
    }

    async fn touch_service_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some((token, _)) = self.state().usage.tokens.iter_mut().find(|(t, _)| t.id == id) {
            token.last_used_at = Some(at);
        }
        Ok(())
    }
}

#[async_trait]
impl UsageRepository for InMemoryStore {
    async fn record_usage(&self, events: Vec<UsageEvent>) -> Result<RecordedUsage, StoreError> {
        let mut state = self.state();
        let mut recorded = RecordedUsage::default();
        for event in events {
            if state.usage.events.contains_key(&event.id) {
                recorded.duplicates.push(event.id);
                continue;
            }
            if !state.users.contains_key(&event.user_id) {
                recorded.unknown_users.push(event.id);
                continue;
            }
            let usage = &mut state.usage;
            let conversation = (event.user_id, event.conversation_id.clone());
            let started = !usage.conversations.contains_key(&conversation);
            let last = usage.conversations.entry(conversation).or_insert(event.occurred_at);
            *last = (*last).max(event.occurred_at);
            let key = (event.user_id, event.day(), event.model.clone(), event.provider.clone());
            let (sum, last) =
                usage.daily.entry(key).or_insert((Usage::default(), event.occurred_at));
            *sum = sum.plus(Usage {
                events: 1,
                input_tokens: event.input_tokens,
                output_tokens: event.output_tokens,
                conversations: u64::from(started),
            });
            *last = (*last).max(event.occurred_at);
            usage.mark(event.user_id, event.day());
            usage.events.insert(event.id.clone(), event);
        }
        Ok(recorded)
    }

    async fn mark_active(&self, user: UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.state().usage.mark(user, at.date_naive());
        Ok(())
    }

    async fn active_users(
        &self,
        period: Period,
        range: DayRange,
    ) -> Result<Vec<ActivePoint>, StoreError> {
        let state = self.state();
        let mut counts: BTreeMap<NaiveDate, u64> = BTreeMap::new();
        for (p, start, _) in &state.usage.active {
            if *p == period && *start >= period.start_of(range.from) && *start <= range.to {
                *counts.entry(*start).or_default() += 1;
            }
        }
        Ok(counts.into_iter().map(|(start, users)| ActivePoint { start, users }).collect())
    }

    async fn usage_by_day(&self, range: DayRange) -> Result<Vec<DayUsage>, StoreError> {
        let state = self.state();
        let mut days: BTreeMap<NaiveDate, Usage> = BTreeMap::new();
        for ((_, day, _, _), usage) in state.usage.in_range(range) {
            let sum = days.entry(*day).or_default();
            *sum = sum.plus(*usage);
        }
        Ok(days.into_iter().map(|(day, usage)| DayUsage { day, usage }).collect())
    }

    async fn usage_by_model(&self, range: DayRange) -> Result<Vec<ModelUsage>, StoreError> {
        let state = self.state();
        let mut models: BTreeMap<(String, String), Usage> = BTreeMap::new();
        for ((_, _, model, provider), usage) in state.usage.in_range(range) {
            let sum = models.entry((model.clone(), provider.clone())).or_default();
            *sum = sum.plus(*usage);
        }
        Ok(models
            .into_iter()
            .map(|((model, provider), usage)| ModelUsage { model, provider, usage })
            .collect())
    }

    async fn top_users(&self, range: DayRange, limit: u32) -> Result<TopUsers, StoreError> {
        let state = self.state();
        let mut users: BTreeMap<UserId, Usage> = BTreeMap::new();
        for ((user, _, _, _), usage) in state.usage.in_range(range) {
            let sum = users.entry(*user).or_default();
            *sum = sum.plus(*usage);
        }
        let ranked = |ranking: Ranking| {
            let mut ranked: Vec<UserUsage> = users
                .iter()
                .filter(|(_, usage)| ranking.score(usage) > 0)
                .map(|(user_id, usage)| UserUsage { user_id: *user_id, usage: *usage, user: None })
                .collect();
            ranked.sort_by(|a, b| {
                ranking
                    .score(&b.usage)
                    .cmp(&ranking.score(&a.usage))
                    .then(a.user_id.cmp(&b.user_id))
            });
            ranked.truncate(limit as usize);
            ranked
        };
        Ok(TopUsers {
            by_tokens: ranked(Ranking::Tokens),
            by_conversations: ranked(Ranking::Conversations),
        })
    }

    async fn user_usage(
        &self,
        user: UserId,
        range: DayRange,
    ) -> Result<(Option<DateTime<Utc>>, Vec<ModelUsage>), StoreError> {
        let state = self.state();
        let last = state
            .usage
            .daily
            .iter()
            .filter(|((u, _, _, _), _)| *u == user)
            .map(|(_, (_, last))| *last)
            .max();
        let mut models: BTreeMap<(String, String), Usage> = BTreeMap::new();
        for ((u, _, model, provider), usage) in state.usage.in_range(range) {
            if *u == user {
                let sum = models.entry((model.clone(), provider.clone())).or_default();
                *sum = sum.plus(*usage);
            }
        }
        let models = models
            .into_iter()
            .map(|((model, provider), usage)| ModelUsage { model, provider, usage })
            .collect();
        Ok((last, models))
    }

    async fn purge_usage_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state();
        let usage = &mut state.usage;
        let count = usage.events.len();
        usage.events.retain(|_, e| e.occurred_at >= before);
        usage.conversations.retain(|_, last| *last >= before);
        Ok((count - usage.events.len()) as u64)
    }
}
