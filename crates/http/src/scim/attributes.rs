//! What Entra ID and Okta send, read into [`Attributes`]: a whole User
//! (`POST`, `PUT`) or a PATCH as the real clients write it — `op` in any
//! letter case, path-less values with dotted or URN-prefixed keys, booleans
//! as strings, filtered paths such as `emails[type eq "work"].value` —
//! and attributes this server does not keep (`title`, `phoneNumbers`, …)
//! accepted and ignored. See `docs/design/scim.md`.

use poem::http::StatusCode;
use secureai_domain::EmailAddress;
use secureai_domain::provisioning::models::Attributes;
use serde_json::{Map, Value};

use super::ScimError;
use super::discovery::{ENTERPRISE_SCHEMA, USER_SCHEMA};

/// Most operations one PATCH may carry.
pub(crate) const MAX_OPERATIONS: usize = 100;

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::typed(StatusCode::BAD_REQUEST, "invalidValue", detail)
}

fn syntax(detail: impl Into<String>) -> ScimError {
    ScimError::typed(StatusCode::BAD_REQUEST, "invalidSyntax", detail)
}

/// What a request said, before the email and name are settled.
#[derive(Default)]
struct Sent {
    user_name: Option<String>,
    work_email: Option<String>,
    formatted: Option<String>,
    display_name: Option<String>,
    given: Option<String>,
    family: Option<String>,
    department: Option<Option<String>>,
    active: Option<bool>,
    admin: Option<bool>,
    external_id: Option<Option<String>>,
}

impl Sent {
    /// The address: `userName` when it is one (identity providers look
    /// users up by it), else the primary or work email.
    fn into_attributes(self) -> Result<Attributes, ScimError> {
        let (email, user_name) = match self.user_name {
            Some(user_name) if EmailAddress::parse(&user_name).is_ok() => {
                (Some(user_name), Some(None))
            }
            Some(account) => (self.work_email, Some(Some(account))),
            None => (self.work_email, None),
        };
        let parts = match (self.given, self.family) {
            (Some(given), Some(family)) => Some(format!("{} {}", given.trim(), family.trim())),
            _ => None,
        };
        let name = self.formatted.or(self.display_name).or(parts).filter(|n| !n.trim().is_empty());
        Ok(Attributes {
            email,
            user_name,
            name,
            department: self.department,
            active: self.active,
            admin: self.admin,
            external_id: self.external_id,
        })
    }
}

/// A string value, or `null` as `None`.
fn text(value: &Value, what: &str) -> Result<Option<String>, ScimError> {
    match value {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Null => Ok(None),
        // Some clients send numbers for string attributes (employee ids).
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(invalid(format!("{what} must be a string"))),
    }
}

fn required_text(value: &Value, what: &str) -> Result<String, ScimError> {
    text(value, what)?.ok_or_else(|| invalid(format!("{what} cannot be null")))
}

/// A boolean, also as the strings `"True"`/`"false"` Entra sends.
fn boolean(value: &Value, what: &str) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(invalid(format!("{what} must be true or false"))),
    }
}

/// The address of an `emails` list: the primary one, else the work one,
/// else the first.
fn chosen_email(value: &Value) -> Result<Option<String>, ScimError> {
    let list = match value {
        Value::Array(list) => list.as_slice(),
        Value::Object(_) => std::slice::from_ref(value),
        Value::Null => return Ok(None),
        _ => return Err(invalid("emails must be a list of {value, type, primary}")),
    };
    let field = |email: &Value, name: &str| {
        email
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v.clone())
    };
    let primary =
        list.iter().find(|e| field(e, "primary").is_some_and(|p| boolean(&p, "").unwrap_or(false)));
    let work = list.iter().find(|e| {
        field(e, "type").and_then(|t| t.as_str().map(|t| t.eq_ignore_ascii_case("work")))
            == Some(true)
    });
    match primary.or(work).or(list.first()) {
        Some(email) => match field(email, "value") {
            Some(value) => text(&value, "emails.value"),
            None => Err(invalid("an email needs a value")),
        },
        None => Ok(None),
    }
}

/// Whether a `roles` value names the admin role.
fn names_admin(value: &Value) -> Result<bool, ScimError> {
    let list = match value {
        Value::Array(list) => list.as_slice(),
        Value::Null => return Ok(false),
        _ => std::slice::from_ref(value),
    };
    let mut admin = false;
    for role in list {
        let name = match role {
            Value::String(s) => s.clone(),
            Value::Object(o) => match o.iter().find(|(k, _)| k.eq_ignore_ascii_case("value")) {
                Some((_, v)) => required_text(v, "roles.value")?,
                None => continue,
            },
            _ => return Err(invalid("roles must be a list of {value}")),
        };
        admin |= name.trim().eq_ignore_ascii_case("admin");
    }
    Ok(admin)
}

/// An attribute path, as this server reads it: the enterprise extension
/// or the core schema, an attribute, an optional value filter, an
/// optional sub-attribute; all in lowercase.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    enterprise: bool,
    attribute: String,
    filter: Option<String>,
    sub: Option<String>,
}

fn target(path: &str) -> Result<Target, ScimError> {
    let lower = path.trim().to_ascii_lowercase();
    if lower.is_empty() || lower.len() > 500 {
        return Err(ScimError::typed(
            StatusCode::BAD_REQUEST,
            "invalidPath",
            "the path is empty or too long",
        ));
    }
    let enterprise_prefix = format!("{}:", ENTERPRISE_SCHEMA.to_ascii_lowercase());
    let core_prefix = format!("{}:", USER_SCHEMA.to_ascii_lowercase());
    let (enterprise, rest) = if let Some(rest) = lower.strip_prefix(&enterprise_prefix) {
        (true, rest.to_owned())
    } else if let Some(rest) = lower.strip_prefix(&core_prefix) {
        (false, rest.to_owned())
    } else {
        (false, lower.clone())
    };
    let (attribute, filter, sub) = match rest.split_once('[') {
        Some((attribute, after)) => {
            let (filter, tail) = after.split_once(']').ok_or_else(|| {
                ScimError::typed(
                    StatusCode::BAD_REQUEST,
                    "invalidPath",
                    format!("`{path}` opens a filter it does not close"),
                )
            })?;
            let sub = tail.strip_prefix('.').filter(|s| !s.is_empty()).map(str::to_owned);
            (attribute.to_owned(), Some(filter.trim().to_owned()), sub)
        }
        None => match rest.split_once('.') {
            Some((attribute, sub)) => (attribute.to_owned(), None, Some(sub.to_owned())),
            None => (rest, None, None),
        },
    };
    Ok(Target { enterprise, attribute, filter, sub })
}

/// Sets what `value` says at `path` (`add` and `replace` alike).
fn set(sent: &mut Sent, path: &str, value: &Value, op: Op) -> Result<(), ScimError> {
    if path.trim().eq_ignore_ascii_case(ENTERPRISE_SCHEMA) {
        // The whole extension as one value.
        let Value::Object(extension) = value else {
            return Err(invalid("the enterprise extension must be an object"));
        };
        for (name, value) in extension {
            set(sent, &format!("{ENTERPRISE_SCHEMA}:{name}"), value, op)?;
        }
        return Ok(());
    }
    let t = target(path)?;
    match (t.enterprise, t.attribute.as_str(), t.sub.as_deref()) {
        (true, "department", None) => sent.department = Some(text(value, "department")?),
        (true, _, _) => {}
        (false, "username", None) => sent.user_name = Some(required_text(value, "userName")?),
        (false, "displayname", None) => sent.display_name = text(value, "displayName")?,
        (false, "name", None) => {
            let Value::Object(parts) = value else {
                return Err(invalid("name must be an object"));
            };
            for (key, part) in parts {
                set(sent, &format!("name.{key}"), part, op)?;
            }
        }
        (false, "name", Some("formatted")) => sent.formatted = text(value, "name.formatted")?,
        (false, "name", Some("givenname")) => sent.given = text(value, "name.givenName")?,
        (false, "name", Some("familyname")) => sent.family = text(value, "name.familyName")?,
        (false, "active", None) => sent.active = Some(boolean(value, "active")?),
        (false, "externalid", None) => sent.external_id = Some(text(value, "externalId")?),
        // `emails[type eq "work"].value`, `emails.value`, or the list.
        // Only the work or primary address is SecureAI's: `emails[type eq
        // "home"].value` changes nothing.
        (false, "emails", Some("value"))
            if t.filter.as_deref().is_none_or(|f| f.contains("work") || f.contains("primary")) =>
        {
            sent.work_email = text(value, "emails.value")?;
        }
        (false, "emails", Some("value")) => {}
        (false, "emails", None) if t.filter.is_some() => {
            let ours =
                t.filter.as_deref().is_some_and(|f| f.contains("work") || f.contains("primary"));
            if ours && let Value::Object(_) = value {
                sent.work_email = chosen_email(value)?;
            }
        }
        (false, "emails", None) => sent.work_email = chosen_email(value)?,
        (false, "roles", _) => {
            let admin = names_admin(value)?;
            // Adding roles that do not name admin changes nothing.
            if admin || op == Op::Replace {
                sent.admin = Some(admin);
            }
        }
        // The schema's enterprise attributes written without their URN.
        (false, "department", None) => sent.department = Some(text(value, "department")?),
        // Attributes this server does not keep, and read-only ones.
        _ => {}
    }
    Ok(())
}

/// Clears what `path` names (`remove`).
fn remove(sent: &mut Sent, path: &str, value: Option<&Value>) -> Result<(), ScimError> {
    if path.trim().eq_ignore_ascii_case(ENTERPRISE_SCHEMA) {
        // The whole extension: the department is all of it kept here.
        sent.department = Some(None);
        return Ok(());
    }
    let t = target(path)?;
    let required = |name: &str| {
        ScimError::typed(
            StatusCode::BAD_REQUEST,
            "mutability",
            format!("{name} is required and cannot be removed"),
        )
    };
    match (t.enterprise, t.attribute.as_str()) {
        (true, "department") | (false, "department") => sent.department = Some(None),
        (false, "externalid") => sent.external_id = Some(None),
        (false, "roles") => {
            // `roles`, `roles[value eq "admin"]`, or Entra's
            // `roles[primary eq "True"].value`: the role goes; a filter
            // naming another value leaves it.
            let removes_admin = match value {
                Some(value) if !value.is_null() => names_admin(value)?,
                _ => {
                    t.filter.as_deref().is_none_or(|f| f.contains("admin") || !f.contains("value"))
                }
            };
            if removes_admin {
                sent.admin = Some(false);
            }
        }
        (false, "username") => return Err(required("userName")),
        (false, "emails") => return Err(required("emails")),
        (false, "active") => {
            return Err(required("active (send active: false to deactivate)"));
        }
        _ => {}
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
}

fn object(body: &Value) -> Result<&Map<String, Value>, ScimError> {
    body.as_object().ok_or_else(|| syntax("the body must be a JSON object"))
}

/// Reads a whole User (`POST`; `PUT` with `replace`, where `department`
/// and `externalId` left out are cleared — `roles` left out keep the role,
/// as identity providers send it only when mapped).
pub(crate) fn from_resource(body: &Value, replace: bool) -> Result<Attributes, ScimError> {
    let mut sent = Sent::default();
    let enterprise = ENTERPRISE_SCHEMA.to_ascii_lowercase();
    for (key, value) in object(body)? {
        let lower = key.to_ascii_lowercase();
        if lower == enterprise {
            let Value::Object(extension) = value else {
                return Err(invalid("the enterprise extension must be an object"));
            };
            for (name, value) in extension {
                set(&mut sent, &format!("{ENTERPRISE_SCHEMA}:{name}"), value, Op::Replace)?;
            }
        } else if matches!(lower.as_str(), "schemas" | "id" | "meta" | "password" | "groups") {
            // Read-only, or not kept (SSO users have no password).
        } else {
            set(&mut sent, key, value, Op::Replace)?;
        }
    }
    if replace {
        sent.department.get_or_insert(None);
        sent.external_id.get_or_insert(None);
    }
    sent.into_attributes()
}

/// Reads a PATCH (`PatchOp`) into the attributes it changes.
pub(crate) fn from_patch(body: &Value) -> Result<Attributes, ScimError> {
    let body = object(body)?;
    let operations = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .and_then(|(_, v)| v.as_array())
        .ok_or_else(|| syntax("a PATCH needs Operations: a list of {op, path, value}"))?;
    if operations.len() > MAX_OPERATIONS {
        return Err(invalid(format!("a PATCH has at most {MAX_OPERATIONS} operations")));
    }
    let mut sent = Sent::default();
    for operation in operations {
        let operation = object(operation)?;
        let field = |name: &str| {
            operation.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
        };
        let op = field("op").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
        let path = match field("path") {
            None | Some(Value::Null) => None,
            Some(Value::String(path)) => Some(path.as_str()),
            Some(_) => return Err(syntax("path must be a string")),
        };
        let value = field("value");
        match (op.as_str(), path) {
            ("add" | "replace", Some(path)) => {
                let value = value.ok_or_else(|| invalid(format!("`{op}` needs a value")))?;
                let op = if op == "add" { Op::Add } else { Op::Replace };
                set(&mut sent, path, value, op)?;
            }
            ("add" | "replace", None) => {
                let Some(Value::Object(values)) = value else {
                    return Err(invalid(format!("`{op}` without a path needs an object value")));
                };
                let op = if op == "add" { Op::Add } else { Op::Replace };
                let enterprise = ENTERPRISE_SCHEMA.to_ascii_lowercase();
                for (key, value) in values {
                    if key.eq_ignore_ascii_case(&enterprise) {
                        let Value::Object(extension) = value else {
                            return Err(invalid("the enterprise extension must be an object"));
                        };
                        for (name, value) in extension {
                            set(&mut sent, &format!("{ENTERPRISE_SCHEMA}:{name}"), value, op)?;
                        }
                    } else {
                        set(&mut sent, key, value, op)?;
                    }
                }
            }
            ("remove", Some(path)) => remove(&mut sent, path, value)?,
            ("remove", None) => {
                return Err(ScimError::typed(
                    StatusCode::BAD_REQUEST,
                    "noTarget",
                    "remove needs a path",
                ));
            }
            _ => return Err(syntax("op must be add, replace or remove")),
        }
    }
    sent.into_attributes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(operations: Value) -> Attributes {
        from_patch(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}))
            .unwrap()
    }

    #[test]
    fn entra_patches_read_as_the_attributes_they_change() {
        let read = patch(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "ada@example.com"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "R&D"},
            {"op": "Add", "path": "title", "value": "Engineer"},
        ]));
        assert_eq!(read.active, Some(false));
        assert_eq!(read.email.as_deref(), Some("ada@example.com"));
        assert_eq!(read.department, Some(Some("R&D".to_owned())));
        let read = patch(json!([{"op": "replace", "value": {
            "name.givenName": "Ada", "name.familyName": "King", "active": "true",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Math",
            "externalId": "e-1",
        }}]));
        assert_eq!(read.name.as_deref(), Some("Ada King"));
        assert_eq!(read.active, Some(true));
        assert_eq!(read.department, Some(Some("Math".to_owned())));
        assert_eq!(read.external_id, Some(Some("e-1".to_owned())));
    }

    #[test]
    fn patch_refuses_what_it_cannot_do_with_a_scim_type() {
        let refused = |ops: Value| from_patch(&json!({"Operations": ops})).unwrap_err();
        assert_eq!(
            refused(json!([{"op": "move", "path": "active"}])).scim_type,
            Some("invalidSyntax")
        );
        assert_eq!(refused(json!([{"op": "remove"}])).scim_type, Some("noTarget"));
        assert_eq!(
            refused(json!([{"op": "remove", "path": "userName"}])).scim_type,
            Some("mutability")
        );
        assert_eq!(
            refused(json!([{"op": "replace", "path": "active", "value": "maybe"}])).scim_type,
            Some("invalidValue")
        );
        assert_eq!(
            refused(
                json!([{"op": "replace", "path": "emails[type eq \"work\".value", "value": "a"}])
            )
            .scim_type,
            Some("invalidPath")
        );
        let many: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"op": "add", "path": "title", "value": "x"}))
            .collect();
        assert_eq!(refused(Value::Array(many)).scim_type, Some("invalidValue"));
    }

    #[test]
    fn a_resource_takes_user_name_first_and_clears_on_replace() {
        let body = json!({
            "schemas": [USER_SCHEMA], "userName": "jdoe", "externalId": "x",
            "emails": [{"value": "home@example.com", "type": "home"}, {"value": "jdoe@example.com", "type": "work", "primary": "True"}],
            "name": {"givenName": "Jo", "familyName": "Doe"}, "roles": [{"value": "Admin"}],
        });
        let read = from_resource(&body, true).unwrap();
        assert_eq!(read.email.as_deref(), Some("jdoe@example.com"), "userName is not an address");
        assert_eq!(read.name.as_deref(), Some("Jo Doe"));
        assert_eq!(read.admin, Some(true));
        assert_eq!(read.department, Some(None), "left out of a PUT: cleared");
        let body = json!({"userName": "Ada@Example.com", "emails": [{"value": "other@example.com", "primary": true}], "displayName": "Ada"});
        let read = from_resource(&body, false).unwrap();
        assert_eq!(read.email.as_deref(), Some("Ada@Example.com"));
        assert_eq!((read.department, read.admin), (None, None));
    }
}
