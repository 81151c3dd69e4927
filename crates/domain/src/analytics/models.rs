//! Usage metadata reported by the other SecureAI services, the service
//! tokens they report with, and the aggregates admins see. There is no
//! content anywhere: an event names a conversation, never what was said.

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, Utc};
use uuid::Uuid;

use crate::users::models::UserId;

/// A credential another SecureAI service reports usage with. The secret
/// itself is shown once, at creation, and stored only as its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceToken {
    /// Unique id.
    pub id: Uuid,
    /// What the admin called it ("chat service, eu-west").
    pub name: String,
    /// The admin who created it.
    pub created_by: Option<UserId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (recorded at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked token authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
    /// What it opens, sorted, at least one.
    pub scopes: Vec<TokenScope>,
}

impl ServiceToken {
    /// Whether it still authenticates requests.
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// Whether it opens what `scope` names.
    pub fn allows(&self, scope: TokenScope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// What a service token opens: nothing beyond what its scopes name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TokenScope {
    /// Reporting usage (`POST /api/v1/usage-events`): the other SecureAI
    /// services. The default.
    Usage,
    /// SCIM provisioning (`/scim/v2`): the company's identity provider.
    Scim,
}

impl TokenScope {
    /// Every scope.
    pub const ALL: [Self; 2] = [Self::Usage, Self::Scim];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usage => "usage",
            Self::Scim => "scim",
        }
    }

    /// Parses a stable name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Scopes as an admin or a script named them: known, at least one, in
    /// order without repeats; `None` is `usage` (what tokens always were).
    ///
    /// # Errors
    /// The reason, in words, for an unknown name or an empty list.
    pub fn parse_list(raw: Option<&[String]>) -> Result<Vec<Self>, String> {
        let Some(raw) = raw else {
            return Ok(vec![Self::Usage]);
        };
        let mut scopes = Vec::new();
        for name in raw {
            let scope = Self::parse(name.trim()).ok_or_else(|| {
                format!(
                    "`{}` is not a scope; use usage or scim",
                    name.chars().take(40).collect::<String>()
                )
            })?;
            scopes.push(scope);
        }
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err("name at least one scope: usage or scim".to_owned());
        }
        Ok(scopes)
    }
}

/// An event as a service sent it, before any check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEventInput {
    /// The sender's id for the event (idempotency key).
    pub event_id: String,
    /// The SecureAI user it is about.
    pub user_id: String,
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// Model name ("gpt-4o", "claude-sonnet-4").
    pub model: String,
    /// Provider name ("openai", "anthropic", "on-prem").
    pub provider: String,
    /// Tokens sent to the model.
    pub input_tokens: i64,
    /// Tokens the model produced.
    pub output_tokens: i64,
    /// When it happened (RFC 3339).
    pub occurred_at: String,
}

/// A checked usage event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    /// The sender's id (1–128 characters of `A-Z a-z 0-9 . _ : -`).
    pub id: String,
    /// The user.
    pub user_id: UserId,
    /// The conversation (same alphabet as event ids).
    pub conversation_id: String,
    /// Model name (1–100 printable characters).
    pub model: String,
    /// Provider name (1–100 printable characters).
    pub provider: String,
    /// Tokens in.
    pub input_tokens: u64,
    /// Tokens out.
    pub output_tokens: u64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

impl UsageEvent {
    /// The UTC day it counts for.
    pub fn day(&self) -> NaiveDate {
        self.occurred_at.date_naive()
    }
}

/// Why one event of a batch was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRejection {
    /// The event id is empty, too long or has characters outside the alphabet.
    InvalidEventId,
    /// The user id is not a UUID.
    InvalidUserId,
    /// The conversation id is empty, too long or outside the alphabet.
    InvalidConversationId,
    /// The model name is empty, too long or has control characters.
    InvalidModel,
    /// The provider name is empty, too long or has control characters.
    InvalidProvider,
    /// A token count is negative or absurdly large.
    InvalidTokenCount,
    /// `occurred_at` is not an RFC 3339 instant.
    InvalidTime,
    /// The event is older than raw events are kept (it could not be told
    /// from one already counted and purged).
    TooOld,
    /// The event is in the future.
    InTheFuture,
    /// No user has this id.
    UnknownUser,
}

impl EventRejection {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidEventId => "invalid_event_id",
            Self::InvalidUserId => "invalid_user_id",
            Self::InvalidConversationId => "invalid_conversation_id",
            Self::InvalidModel => "invalid_model",
            Self::InvalidProvider => "invalid_provider",
            Self::InvalidTokenCount => "invalid_token_count",
            Self::InvalidTime => "invalid_time",
            Self::TooOld => "too_old",
            Self::InTheFuture => "in_the_future",
            Self::UnknownUser => "unknown_user",
        }
    }

    /// A sentence for the sender's logs.
    pub fn message(self) -> &'static str {
        match self {
            Self::InvalidEventId => {
                "event_id must be 1 to 128 characters of letters, digits and . _ : -"
            }
            Self::InvalidUserId => "user_id must be the UUID of a SecureAI user",
            Self::InvalidConversationId => {
                "conversation_id must be 1 to 128 characters of letters, digits and . _ : -"
            }
            Self::InvalidModel => "model must be 1 to 100 characters without control characters",
            Self::InvalidProvider => {
                "provider must be 1 to 100 characters without control characters"
            }
            Self::InvalidTokenCount => {
                "input_tokens and output_tokens must be between 0 and 100000000"
            }
            Self::InvalidTime => "occurred_at must be an RFC 3339 date and time with an offset",
            Self::TooOld => "occurred_at is older than usage events are kept",
            Self::InTheFuture => "occurred_at is in the future",
            Self::UnknownUser => "no user has this user_id",
        }
    }
}

/// One event that was not recorded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEvent {
    /// Its position in the batch (from 0).
    pub index: usize,
    /// Its event id as sent.
    pub event_id: String,
    /// Why.
    pub reason: EventRejection,
}

/// What became of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Events in the batch.
    pub received: usize,
    /// Events recorded now.
    pub accepted: usize,
    /// Events ignored because their id was already recorded (or repeated
    /// earlier in the batch).
    pub duplicates: usize,
    /// Events refused, each with its reason.
    pub rejected: Vec<RejectedEvent>,
}

/// What the store did with checked events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedUsage {
    /// Ids already recorded before: ignored.
    pub duplicates: Vec<String>,
    /// Ids of events whose user does not exist: not recorded.
    pub unknown_users: Vec<String>,
}

/// A calendar period active users are counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// A UTC day.
    Day,
    /// An ISO week (Monday to Sunday, UTC).
    Week,
    /// A calendar month (UTC).
    Month,
}

impl Period {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// Parses `day`, `week` or `month`.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Day, Self::Week, Self::Month].into_iter().find(|p| p.as_str() == text)
    }

    /// The first day of the period holding `day` (`day` itself in the
    /// first week chrono can represent).
    pub fn start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => day,
            Self::Week => day
                .checked_sub_days(Days::new(u64::from(day.weekday().num_days_from_monday())))
                .unwrap_or(day),
            Self::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// The first day of the next period after the one starting `start`;
    /// `None` past the last day chrono can represent.
    pub fn next(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Self::Day => start.checked_add_days(Days::new(1)),
            Self::Week => start.checked_add_days(Days::new(7)),
            Self::Month => start.checked_add_months(chrono::Months::new(1)),
        }
    }

    /// Every period (as its first day) overlapping `range`. Ends at the
    /// range's end or where the calendar does, whichever comes first.
    pub fn starts_in(self, range: DayRange) -> Vec<NaiveDate> {
        std::iter::successors(Some(self.start_of(range.from)), |start| self.next(*start))
            .take_while(|start| *start <= range.to)
            .collect()
    }
}

/// Whole UTC days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
}

impl DayRange {
    /// The `days` days ending with `to` (fewer where the calendar begins).
    pub fn ending(to: NaiveDate, days: i64) -> Self {
        let back = u64::try_from(days.max(1) - 1).unwrap_or(0);
        Self { from: to.checked_sub_days(Days::new(back)).unwrap_or(NaiveDate::MIN), to }
    }

    /// Number of days.
    pub fn days(self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// Every day, in order.
    pub fn each_day(self) -> impl Iterator<Item = NaiveDate> {
        self.from.iter_days().take_while(move |d| *d <= self.to)
    }
}

/// Active users in one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivePoint {
    /// First day of the period.
    pub start: NaiveDate,
    /// Distinct users with a usage event or a sign-in in it.
    pub users: u64,
}

/// Token consumption summed over something (a day, a model, a user).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Events.
    pub events: u64,
    /// Tokens in.
    pub input_tokens: u64,
    /// Tokens out.
    pub output_tokens: u64,
    /// Conversations started.
    pub conversations: u64,
}

impl Usage {
    /// Tokens in and out.
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// This and `other` added.
    #[must_use]
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            events: self.events + other.events,
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            conversations: self.conversations + other.conversations,
        }
    }
}

/// Usage on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayUsage {
    /// The day.
    pub day: NaiveDate,
    /// What was used.
    pub usage: Usage,
}

/// Usage of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUsage {
    /// Model name.
    pub model: String,
    /// Provider name.
    pub provider: String,
    /// What was used.
    pub usage: Usage,
}

/// Usage by one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserUsage {
    /// The user.
    pub user_id: UserId,
    /// What they used.
    pub usage: Usage,
    /// The user as stored now (filled by the use case, not the store).
    pub user: Option<crate::User>,
}

/// What top users are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// Tokens in and out.
    Tokens,
    /// Conversations started.
    Conversations,
}

impl Ranking {
    /// The score of `usage` in this ranking.
    pub fn score(self, usage: &Usage) -> u64 {
        match self {
            Self::Tokens => usage.tokens(),
            Self::Conversations => usage.conversations,
        }
    }
}

/// The users ranked highest over a range, highest first (ties by user id);
/// users scoring zero are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopUsers {
    /// By tokens in and out.
    pub by_tokens: Vec<UserUsage>,
    /// By conversations started.
    pub by_conversations: Vec<UserUsage>,
}

/// One user's recent activity, for their profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivitySummary {
    /// The days summed (the last 30).
    pub range: DayRange,
    /// Last usage event of the user (any time kept).
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Usage in the range.
    pub usage: Usage,
    /// Models used in the range, most tokens first.
    pub models: Vec<ModelUsage>,
}

/// The analytics dashboard over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// The days shown.
    pub range: DayRange,
    /// Daily active users.
    pub daily_active: Vec<ActivePoint>,
    /// Distinct active users over the whole range is not summable from
    /// days: weekly and monthly counts are kept apart.
    pub weekly_active: Vec<ActivePoint>,
    /// Monthly active users.
    pub monthly_active: Vec<ActivePoint>,
    /// Usage per day (every day of the range, zero when idle).
    pub by_day: Vec<DayUsage>,
    /// Usage per model, most tokens first.
    pub by_model: Vec<ModelUsage>,
    /// Users with the most tokens.
    pub top_users: Vec<UserUsage>,
    /// Users with the most conversations started.
    pub top_conversations: Vec<UserUsage>,
    /// Everything in the range.
    pub total: Usage,
}

/// Checks an id of the event alphabet.
pub(crate) fn valid_id(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Checks a model or provider name.
pub(crate) fn valid_name(text: &str) -> bool {
    let length = text.chars().count();
    (1..=100).contains(&length) && !text.chars().any(char::is_control) && text.trim() == text
}

/// Largest token count accepted for one event.
pub(crate) const MAX_TOKENS: i64 = 100_000_000;

/// Tunable rules of analytics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsPolicy {
    /// Most events in one batch.
    pub max_batch: usize,
    /// Raw events are kept this long; daily aggregates are kept.
    pub raw_retention: Duration,
    /// Events up to this far in the future are accepted (clock skew).
    pub future_skew: Duration,
    /// Longest range a dashboard covers.
    pub max_range_days: i64,
    /// Users in each top list.
    pub top_users: u32,
}

impl Default for AnalyticsPolicy {
    fn default() -> Self {
        Self {
            max_batch: 1000,
            raw_retention: Duration::days(90),
            future_skew: Duration::minutes(5),
            max_range_days: 366,
            top_users: 10,
        }
    }
}
