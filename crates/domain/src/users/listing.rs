//! Listing and searching users: filters, sorts, keyset paging with opaque
//! cursors, and a total count.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::access::Admin;
use crate::errors::FieldError;
use crate::users::errors::ListUsersError;
use crate::users::models::{Role, User, UserStatus};
use crate::users::ports::{
    InvitationFilter, SortValue, UserCursor, UserFilter, UserQuery, UserSort,
};
use crate::users::service::UserService;

/// A page request as the API receives it; validated here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUsersRequest {
    /// Search words: each must start the email, its domain or a name word.
    pub q: Option<String>,
    /// `user` or `admin`.
    pub role: Option<String>,
    /// `invited`, `active` or `deactivated`.
    pub status: Option<String>,
    /// Exact department.
    pub department: Option<String>,
    /// `expired` (invitation links expired) or `email_failed` (invitation
    /// emails that could not be delivered): invited users only.
    pub invitation: Option<String>,
    /// A group's id: its members only.
    pub group: Option<String>,
    /// `name`, `email`, `created` or `last_sign_in`; a leading `-` reverses.
    pub sort: Option<String>,
    /// Page size (clamped to 1..=max).
    pub limit: Option<u32>,
    /// Cursor from the previous page (same filters and sort).
    pub cursor: Option<String>,
}

/// A page of users, the cursor of the next one and the total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersPage {
    /// The users.
    pub items: Vec<User>,
    /// Opaque cursor for the next page, if any.
    pub next_cursor: Option<String>,
    /// How many users match the filters, over all pages.
    pub total: u64,
    /// Whether `total` is exact; a search matching very many users is
    /// counted up to a cap and `total` is then a lower bound.
    pub total_exact: bool,
}

/// Searches matching more users than this report "at least this many".
pub const SEARCH_COUNT_CAP: u64 = 10_000;

/// Longest search text accepted, in characters.
const MAX_QUERY_CHARS: usize = 200;
/// Most search words.
const MAX_WORDS: usize = 5;

fn parse_sort(raw: Option<&str>) -> Result<(UserSort, bool), FieldError> {
    let raw = raw.map(str::trim).unwrap_or("created");
    let (descending, name) = match raw.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, raw),
    };
    let sort = match name {
        "name" => UserSort::Name,
        "email" => UserSort::Email,
        "created" => UserSort::Created,
        "last_sign_in" => UserSort::LastSignIn,
        _ => {
            return Err(FieldError::new(
                "sort",
                format!(
                    "`{raw}` is not a sort; use name, email, created or last_sign_in, with a leading - to reverse"
                ),
            ));
        }
    };
    Ok((sort, descending))
}

impl ListUsersRequest {
    fn filter(&self, now: chrono::DateTime<chrono::Utc>) -> Result<UserFilter, FieldError> {
        let words: Vec<String> = match self.q.as_deref() {
            Some(q) if q.chars().count() > MAX_QUERY_CHARS => {
                return Err(FieldError::new(
                    "q",
                    format!("must have at most {MAX_QUERY_CHARS} characters"),
                ));
            }
            Some(q) => q.to_lowercase().split_whitespace().map(str::to_owned).collect(),
            None => Vec::new(),
        };
        if words.len() > MAX_WORDS {
            return Err(FieldError::new("q", format!("must have at most {MAX_WORDS} words")));
        }
        Ok(UserFilter {
            words,
            role: self
                .role
                .as_deref()
                .map(Role::parse)
                .transpose()
                .map_err(|e| FieldError::new("role", e))?,
            status: self
                .status
                .as_deref()
                .map(|s| {
                    UserStatus::parse(s).ok_or_else(|| {
                        FieldError::new(
                            "status",
                            format!("`{s}` is not a status; use invited, active or deactivated"),
                        )
                    })
                })
                .transpose()?,
            department: self
                .department
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            invitation: match self.invitation.as_deref().map(str::trim) {
                None | Some("") => None,
                Some("expired") => Some(InvitationFilter::Expired { now }),
                Some("email_failed") => Some(InvitationFilter::EmailFailed),
                Some(other) => {
                    return Err(FieldError::new(
                        "invitation",
                        format!(
                            "`{}` is not an invitation filter; use expired or email_failed",
                            other.chars().take(40).collect::<String>()
                        ),
                    ));
                }
            },
            group: match self.group.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(id) => Some(id.parse::<uuid::Uuid>().map_err(|_| {
                    FieldError::new(
                        "group",
                        format!("`{}` is not a group id", id.chars().take(40).collect::<String>()),
                    )
                })?),
            },
        })
    }
}

fn sort_name(sort: UserSort) -> &'static str {
    match sort {
        UserSort::Name => "name",
        UserSort::Email => "email",
        UserSort::Created => "created",
        UserSort::LastSignIn => "last_sign_in",
    }
}

/// `sort|t:<text>|id` or `sort|n:<micros>|id`, base64url: opaque to
/// clients, and refused if used with another sort.
fn encode_cursor(sort: UserSort, cursor: &UserCursor) -> String {
    let value = match &cursor.value {
        SortValue::Text(text) => format!("t:{text}"),
        SortValue::Micros(micros) => format!("n:{micros}"),
    };
    URL_SAFE_NO_PAD.encode(format!("{}|{}|{value}", sort_name(sort), cursor.id))
}

fn decode_cursor(sort: UserSort, text: &str) -> Option<UserCursor> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    let mut parts = raw.splitn(3, '|');
    if parts.next()? != sort_name(sort) {
        return None;
    }
    let id = parts.next()?.parse().ok()?;
    let value = match parts.next()?.split_once(':')? {
        ("t", text) if matches!(sort, UserSort::Name | UserSort::Email) => {
            SortValue::Text(text.to_owned())
        }
        ("n", micros) if matches!(sort, UserSort::Created | UserSort::LastSignIn) => {
            SortValue::Micros(micros.parse().ok()?)
        }
        _ => return None,
    };
    Some(UserCursor { value, id })
}

impl UserService {
    /// One page of the users matching the filters, in the requested order,
    /// with the total number of matches.
    ///
    /// # Errors
    /// See [`ListUsersError`].
    pub async fn list_users(
        &self,
        _admin: &Admin,
        request: &ListUsersRequest,
    ) -> Result<UsersPage, ListUsersError> {
        let filter = request.filter(self.ports.clock.now())?;
        let (sort, descending) = parse_sort(request.sort.as_deref())?;
        let after = match request.cursor.as_deref() {
            Some(text) => Some(decode_cursor(sort, text).ok_or(ListUsersError::InvalidCursor)?),
            None => None,
        };
        let limit = request.limit.unwrap_or(50).clamp(1, self.policy.max_page_size);
        let query = UserQuery { filter, sort, descending, limit, after };
        let page = self.ports.users.list(&query, SEARCH_COUNT_CAP).await?;
        Ok(UsersPage {
            items: page.items,
            next_cursor: page.next.as_ref().map(|c| encode_cursor(sort, c)),
            total: page.total.count,
            total_exact: page.total.exact,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_sort() {
        let by_name =
            UserCursor { value: SortValue::Text("ada | lovelace".into()), id: UserId::generate() };
        let text = encode_cursor(UserSort::Name, &by_name);
        assert_eq!(decode_cursor(UserSort::Name, &text), Some(by_name));
        assert_eq!(decode_cursor(UserSort::Email, &text), None);
        let by_time =
            UserCursor { value: SortValue::Micros(1_700_000_000_000_000), id: UserId::generate() };
        let text = encode_cursor(UserSort::LastSignIn, &by_time);
        assert_eq!(decode_cursor(UserSort::LastSignIn, &text), Some(by_time));
        assert_eq!(decode_cursor(UserSort::Created, "garbage"), None);
    }

    #[test]
    fn sorts_and_filters_are_validated_naming_the_parameter() {
        assert_eq!(parse_sort(Some("-last_sign_in")), Ok((UserSort::LastSignIn, true)));
        assert_eq!(parse_sort(None), Ok((UserSort::Created, false)));
        assert_eq!(parse_sort(Some("age")).unwrap_err().field, "sort");
        let now = chrono::DateTime::UNIX_EPOCH;
        let bad_status = ListUsersRequest { status: Some("gone".into()), ..Default::default() };
        assert_eq!(bad_status.filter(now).unwrap_err().field, "status");
        let bad_role = ListUsersRequest { role: Some("owner".into()), ..Default::default() };
        assert_eq!(bad_role.filter(now).unwrap_err().field, "role");
        let words = ListUsersRequest { q: Some("  Ada   LOVE ".into()), ..Default::default() };
        assert_eq!(words.filter(now).unwrap().words, ["ada", "love"]);
        let long = ListUsersRequest { q: Some("x".repeat(201)), ..Default::default() };
        assert_eq!(long.filter(now).unwrap_err().field, "q");
        let expired = ListUsersRequest { invitation: Some("expired".into()), ..Default::default() };
        assert_eq!(
            expired.filter(now).unwrap().invitation,
            Some(InvitationFilter::Expired { now })
        );
        let failed =
            ListUsersRequest { invitation: Some("email_failed".into()), ..Default::default() };
        assert_eq!(failed.filter(now).unwrap().invitation, Some(InvitationFilter::EmailFailed));
        let other = ListUsersRequest { invitation: Some("lost".into()), ..Default::default() };
        assert_eq!(other.filter(now).unwrap_err().field, "invitation");
    }
}
