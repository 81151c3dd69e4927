//! A SCIM filter's text (parsed by the `scim_v2` crate: the RFC 7644
//! §3.4.2.2 grammar, operators in any letter case, a depth limit) read
//! into the domain's [`ScimFilter`] over the attributes SecureAI keeps.
//! Anything else is `invalidFilter` naming what is supported — never
//! answered wrong.

use poem::http::StatusCode;
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};
use secureai_domain::provisioning::filter::{Attribute, Op, ScimFilter, Value};

use super::ScimError;
use super::discovery::{ENTERPRISE_SCHEMA, USER_SCHEMA};

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::typed(StatusCode::BAD_REQUEST, "invalidFilter", detail)
}

const SUPPORTED: &str = "filters name id, userName, emails (.value), externalId, displayName, \
                         name.formatted, active, meta.created, meta.lastModified or the enterprise \
                         department";

fn attribute(path: &AttrPath) -> Result<Attribute, ScimError> {
    let enterprise = match path.uri.as_deref() {
        None => false,
        Some(uri) if uri.eq_ignore_ascii_case(USER_SCHEMA) => false,
        Some(uri) if uri.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) => true,
        Some(uri) => return Err(invalid(format!("no attributes of {uri} here: {SUPPORTED}"))),
    };
    let name = path.name.to_ascii_lowercase();
    let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
    match (enterprise, name.as_str(), sub.as_deref()) {
        (true, "department", None) => Ok(Attribute::Department),
        (false, "id", None) => Ok(Attribute::Id),
        (false, "username", None) => Ok(Attribute::UserName),
        (false, "emails", None | Some("value")) => Ok(Attribute::Email),
        (false, "externalid", None) => Ok(Attribute::ExternalId),
        (false, "displayname", None) | (false, "name", Some("formatted")) => Ok(Attribute::Name),
        (false, "active", None) => Ok(Attribute::Active),
        (false, "meta", Some("created")) => Ok(Attribute::Created),
        (false, "meta", Some("lastmodified")) => Ok(Attribute::Modified),
        _ => Err(invalid(format!("`{path}` cannot be filtered on: {SUPPORTED}"))),
    }
}

fn op(op: &CompareOp) -> Op {
    match op {
        CompareOp::Eq => Op::Eq,
        CompareOp::Ne => Op::Ne,
        CompareOp::Co => Op::Co,
        CompareOp::Sw => Op::Sw,
        CompareOp::Ew => Op::Ew,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
    }
}

fn value(attribute: Attribute, value: &CompValue) -> Result<Value, ScimError> {
    match value {
        CompValue::True => Ok(Value::Bool(true)),
        CompValue::False => Ok(Value::Bool(false)),
        CompValue::Null => Err(invalid("compare with null through `pr` and `not`")),
        CompValue::Number(n) => Ok(Value::Text(n.to_string())),
        CompValue::Str(text) if attribute.is_time() => chrono::DateTime::parse_from_rfc3339(text)
            .map(|at| Value::Time(at.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                invalid(format!(
                    "meta.created and meta.lastModified compare with a date-time, not `{text}`"
                ))
            }),
        CompValue::Str(text) => Ok(Value::Text(text.clone())),
    }
}

fn term(expression: &AttrExp) -> Result<ScimFilter, ScimError> {
    match expression {
        AttrExp::Present(path) => Ok(ScimFilter::Present(attribute(path)?)),
        AttrExp::Comparison(path, compare, compared) => {
            let attribute = attribute(path)?;
            Ok(ScimFilter::Compare(attribute, op(compare), value(attribute, compared)?))
        }
    }
}

/// Inside `emails[…]`: `value` compares the address; `type eq "work"` and
/// `primary eq true` hold for it (the one address is both).
fn email_term(filter: &ValFilter) -> Result<ScimFilter, ScimError> {
    let boxed = Box::new;
    match filter {
        ValFilter::Not(inner) => Ok(ScimFilter::Not(boxed(email_term(inner)?))),
        ValFilter::And(a, b) => Ok(ScimFilter::And(boxed(email_term(a)?), boxed(email_term(b)?))),
        ValFilter::Or(a, b) => Ok(ScimFilter::Or(boxed(email_term(a)?), boxed(email_term(b)?))),
        ValFilter::Attr(AttrExp::Present(_)) => Ok(ScimFilter::Present(Attribute::Email)),
        ValFilter::Attr(AttrExp::Comparison(path, compare, compared)) => {
            match (path.name.to_ascii_lowercase().as_str(), compare, compared) {
                ("value", compare, compared) => Ok(ScimFilter::Compare(
                    Attribute::Email,
                    op(compare),
                    value(Attribute::Email, compared)?,
                )),
                ("type", CompareOp::Eq, CompValue::Str(kind))
                    if kind.eq_ignore_ascii_case("work") =>
                {
                    Ok(ScimFilter::Present(Attribute::Email))
                }
                ("primary", CompareOp::Eq, CompValue::True) => {
                    Ok(ScimFilter::Present(Attribute::Email))
                }
                ("type" | "primary", _, _) => {
                    Ok(ScimFilter::Not(boxed(ScimFilter::Present(Attribute::Email))))
                }
                _ => Err(invalid("inside emails[…], filter on value, type or primary")),
            }
        }
    }
}

/// The filter, over users.
pub(crate) fn user_filter(filter: &Filter) -> Result<ScimFilter, ScimError> {
    let boxed = Box::new;
    let read = match filter {
        Filter::Attr(expression) => term(expression)?,
        Filter::Not(inner) => ScimFilter::Not(boxed(user_filter(inner)?)),
        Filter::And(a, b) => ScimFilter::And(boxed(user_filter(a)?), boxed(user_filter(b)?)),
        Filter::Or(a, b) => ScimFilter::Or(boxed(user_filter(a)?), boxed(user_filter(b)?)),
        Filter::ValuePath(path) if path.attr.name.eq_ignore_ascii_case("emails") => {
            email_term(&path.filter)?
        }
        Filter::ValuePath(path) => {
            return Err(invalid(format!("`{}[…]` cannot be filtered on: {SUPPORTED}", path.attr)));
        }
    };
    read.check().map_err(invalid)?;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn read(text: &str) -> Result<ScimFilter, ScimError> {
        user_filter(&Filter::from_str(text).unwrap())
    }

    #[test]
    fn the_grammar_reads_into_the_attributes_kept() {
        let filter =
            read(r#"userName sw "ada" and (active eq true or not (externalId pr))"#).unwrap();
        assert!(matches!(filter, ScimFilter::And(..)));
        let filter = read(r#"emails[type eq "work" and value co "@example.com"]"#).unwrap();
        assert!(matches!(filter, ScimFilter::And(..)));
        let filter = read(r#"meta.created ge "2026-01-01T00:00:00Z""#).unwrap();
        assert!(matches!(filter, ScimFilter::Compare(Attribute::Created, Op::Ge, Value::Time(_))));
        let filter = read(r#"meta.LASTMODIFIED gt "2026-01-01T00:00:00.5+01:00""#).unwrap();
        assert!(matches!(filter, ScimFilter::Compare(Attribute::Modified, Op::Gt, Value::Time(_))));
        let filter = read(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D""#,
        )
        .unwrap();
        assert!(matches!(filter, ScimFilter::Compare(Attribute::Department, Op::Eq, _)));
    }

    #[test]
    fn what_cannot_be_answered_is_an_invalid_filter() {
        for text in [
            r#"title eq "x""#,
            r#"userName gt "a""#,
            r#"active co "t""#,
            r#"meta.created gt "yesterday""#,
            r#"meta.lastModified co "2026""#,
            r#"meta.lastModified gt 2026"#,
            r#"externalId sw "x""#,
            r#"phoneNumbers[type eq "work"]"#,
            r#"userName eq null"#,
        ] {
            assert_eq!(read(text).unwrap_err().scim_type, Some("invalidFilter"), "{text}");
        }
    }

    /// 32 terms joined by 31 `or`s are 63 nodes; one more term passes the
    /// limit of 64 and is refused, not answered.
    #[test]
    fn a_filter_has_at_most_64_nodes() {
        let terms = |n: usize| {
            (0..n).map(|i| format!(r#"userName eq "u{i}""#)).collect::<Vec<_>>().join(" or ")
        };
        assert!(read(&terms(32)).is_ok());
        let refused = read(&terms(33)).unwrap_err();
        assert_eq!(refused.scim_type, Some("invalidFilter"));
        assert!(refused.detail.contains("at most 64"), "{}", refused.detail);
    }
}
