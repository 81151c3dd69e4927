//! A SCIM filter over the user attributes SecureAI keeps (RFC 7644
//! §3.4.2.2, as far as they go): comparisons `eq ne co sw ew gt ge lt le`,
//! `pr`, `and`, `or`, `not`. The protocol adapter parses the text into
//! this; [`ScimFilter::matches`] is the reference semantics every store
//! follows (the SQL store translates it into conditions with bound values).
//!
//! - `userName` (an account name, else the address), `emails.value`,
//!   `displayName` and the department compare in any letter case;
//!   `externalId` and `id` exactly.
//! - An attribute without a value (`externalId`, `department`) matches no
//!   comparison, `ne` included; `not` of such a comparison matches.
//! - `gt ge lt le` compare `meta.created` and `meta.lastModified`;
//!   `active` takes `eq` and `ne`.

use chrono::{DateTime, Utc};

use crate::provisioning::models::ProvisionedUser;
use crate::users::models::UserStatus;

/// Most nodes one filter may have.
pub const MAX_NODES: usize = 64;

/// An attribute a filter can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    /// `id`.
    Id,
    /// `userName`.
    UserName,
    /// `emails.value`.
    Email,
    /// `externalId`.
    ExternalId,
    /// `displayName`, `name.formatted`.
    Name,
    /// The enterprise `department`.
    Department,
    /// `active`.
    Active,
    /// `meta.created`.
    Created,
    /// `meta.lastModified`.
    Modified,
}

impl Attribute {
    /// Whether the attribute is an instant (compared in time order).
    pub fn is_time(self) -> bool {
        matches!(self, Self::Created | Self::Modified)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Contains.
    Co,
    /// Starts with.
    Sw,
    /// Ends with.
    Ew,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

/// A value compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string.
    Text(String),
    /// `true` or `false`.
    Bool(bool),
    /// An instant (for `meta.created` and `meta.lastModified`).
    Time(DateTime<Utc>),
}

/// A filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScimFilter {
    /// The attribute has a value.
    Present(Attribute),
    /// The attribute compares so with the value.
    Compare(Attribute, Op, Value),
    /// Both.
    And(Box<ScimFilter>, Box<ScimFilter>),
    /// Either.
    Or(Box<ScimFilter>, Box<ScimFilter>),
    /// Not.
    Not(Box<ScimFilter>),
}

impl Attribute {
    /// Whether it compares in any letter case.
    pub fn case_insensitive(self) -> bool {
        matches!(self, Self::UserName | Self::Email | Self::Name | Self::Department)
    }
}

impl ScimFilter {
    /// Checks that every comparison makes sense for its attribute.
    ///
    /// # Errors
    /// The reason, in words.
    pub fn check(&self) -> Result<(), String> {
        if self.nodes() > MAX_NODES {
            return Err(format!("a filter has at most {MAX_NODES} terms"));
        }
        self.check_terms()
    }

    fn nodes(&self) -> usize {
        match self {
            Self::Present(_) | Self::Compare(..) => 1,
            Self::Not(inner) => 1 + inner.nodes(),
            Self::And(a, b) | Self::Or(a, b) => 1 + a.nodes() + b.nodes(),
        }
    }

    fn check_terms(&self) -> Result<(), String> {
        match self {
            Self::Present(_) => Ok(()),
            Self::Compare(attribute, op, value) => check_term(*attribute, *op, value),
            Self::Not(inner) => inner.check_terms(),
            Self::And(a, b) | Self::Or(a, b) => {
                a.check_terms()?;
                b.check_terms()
            }
        }
    }

    /// Whether the user matches (the reference semantics).
    pub fn matches(&self, user: &ProvisionedUser) -> bool {
        match self {
            Self::Present(attribute) => {
                text_of(user, *attribute).is_some()
                    || *attribute == Attribute::Active
                    || attribute.is_time()
            }
            Self::Compare(attribute, op, value) => compare(user, *attribute, *op, value),
            Self::Not(inner) => !inner.matches(user),
            Self::And(a, b) => a.matches(user) && b.matches(user),
            Self::Or(a, b) => a.matches(user) || b.matches(user),
        }
    }
}

fn check_term(attribute: Attribute, op: Op, value: &Value) -> Result<(), String> {
    let ordering = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
    let text_match = matches!(op, Op::Co | Op::Sw | Op::Ew);
    match (attribute, value) {
        (Attribute::Active, Value::Bool(_)) if matches!(op, Op::Eq | Op::Ne) => Ok(()),
        (Attribute::Active, _) => Err("active compares with eq or ne and true or false".into()),
        (a, Value::Time(_)) if a.is_time() && !text_match => Ok(()),
        (a, _) if a.is_time() => {
            Err("meta.created and meta.lastModified compare with eq, ne, gt, ge, lt or le and a \
             date-time"
                .into())
        }
        (Attribute::Id | Attribute::ExternalId, Value::Text(_))
            if matches!(op, Op::Eq | Op::Ne) =>
        {
            Ok(())
        }
        (Attribute::Id | Attribute::ExternalId, _) => {
            Err("id and externalId compare exactly: eq or ne with a string".into())
        }
        (_, Value::Text(_)) if !ordering => Ok(()),
        _ => Err("text attributes compare with eq, ne, co, sw or ew and a string".into()),
    }
}

/// The attribute's text, if it has one (lowercase where it compares in
/// any letter case).
fn text_of(user: &ProvisionedUser, attribute: Attribute) -> Option<String> {
    let text = match attribute {
        Attribute::Id => Some(user.user.id.to_string()),
        Attribute::UserName => Some(user.user_name().to_owned()),
        Attribute::Email => Some(user.user.email.as_str().to_owned()),
        Attribute::ExternalId => user.external_id.clone(),
        Attribute::Name => Some(user.user.name.to_string()),
        Attribute::Department => user.user.department.as_ref().map(ToString::to_string),
        Attribute::Active | Attribute::Created | Attribute::Modified => None,
    }?;
    Some(if attribute.case_insensitive() { text.to_lowercase() } else { text })
}

fn compare(user: &ProvisionedUser, attribute: Attribute, op: Op, value: &Value) -> bool {
    match (attribute, value) {
        (Attribute::Active, Value::Bool(wanted)) => {
            let active = user.user.status() != UserStatus::Deactivated;
            match op {
                Op::Eq => active == *wanted,
                Op::Ne => active != *wanted,
                _ => false,
            }
        }
        (Attribute::Created | Attribute::Modified, Value::Time(at)) => {
            let have = if attribute == Attribute::Created {
                user.user.created_at
            } else {
                user.modified_at
            };
            match op {
                Op::Eq => have == *at,
                Op::Ne => have != *at,
                Op::Gt => have > *at,
                Op::Ge => have >= *at,
                Op::Lt => have < *at,
                Op::Le => have <= *at,
                _ => false,
            }
        }
        (_, Value::Text(wanted)) => {
            let Some(have) = text_of(user, attribute) else { return false };
            let wanted =
                if attribute.case_insensitive() { wanted.to_lowercase() } else { wanted.clone() };
            match op {
                Op::Eq => have == wanted,
                Op::Ne => have != wanted,
                Op::Co => have.contains(&wanted),
                Op::Sw => have.starts_with(&wanted),
                Op::Ew => have.ends_with(&wanted),
                _ => false,
            }
        }
        _ => false,
    }
}
