//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5): which
//! attributes an answer carries. `id` and `schemas` are always returned.
//! Names are case-insensitive, may name a sub-attribute (`name.formatted`)
//! and may carry their schema's URN
//! (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`).

use serde_json::{Map, Value};

use super::discovery::{ENTERPRISE_SCHEMA, USER_SCHEMA};

/// Attributes every answer keeps.
const ALWAYS: [&str; 2] = ["id", "schemas"];

/// Longest `attributes` or `excludedAttributes`, in characters.
const MAX_CHARS: usize = 2_000;
/// Most names in one of them.
const MAX_NAMES: usize = 50;

/// One named attribute: where it is in a resource.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Named {
    /// The extension holding it (its URN key in the resource), if not core.
    extension: Option<&'static str>,
    attribute: String,
    sub: Option<String>,
}

fn parse(name: &str) -> Option<Named> {
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    let (extension, rest) = if let Some(rest) =
        lower.strip_prefix(&format!("{}:", ENTERPRISE_SCHEMA.to_ascii_lowercase()))
    {
        (Some(ENTERPRISE_SCHEMA), rest.to_owned())
    } else if let Some(rest) = lower.strip_prefix(&format!("{}:", USER_SCHEMA.to_ascii_lowercase()))
    {
        (None, rest.to_owned())
    } else if lower == ENTERPRISE_SCHEMA.to_ascii_lowercase() {
        return Some(Named {
            extension: None,
            attribute: ENTERPRISE_SCHEMA.to_ascii_lowercase(),
            sub: None,
        });
    } else {
        (None, lower)
    };
    let (attribute, sub) = match rest.split_once('.') {
        Some((attribute, sub)) => (attribute.to_owned(), Some(sub.to_owned())),
        None => (rest, None),
    };
    (!attribute.is_empty()).then_some(Named { extension, attribute, sub })
}

/// The names in a comma-separated list, read once per request.
///
/// # Errors
/// The reason, in words, for a list longer than the bounds.
pub(crate) fn names(list: Option<&str>) -> Result<Vec<Named>, String> {
    let Some(list) = list else { return Ok(Vec::new()) };
    if list.chars().count() > MAX_CHARS {
        return Err(format!("name at most {MAX_CHARS} characters of attributes"));
    }
    let names: Vec<Named> = list.split(',').filter_map(parse).collect();
    if names.len() > MAX_NAMES {
        return Err(format!("name at most {MAX_NAMES} attributes"));
    }
    Ok(names)
}

/// The key of `object` equal to `name` in any letter case.
fn key_of(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Where a named attribute's object is in `resource`.
fn holder<'a>(
    resource: &'a mut Map<String, Value>,
    named: &Named,
) -> Option<&'a mut Map<String, Value>> {
    match named.extension {
        None => Some(resource),
        Some(urn) => resource.get_mut(urn).and_then(Value::as_object_mut),
    }
}

/// `resource` as the request's `attributes` (`wanted`) and
/// `excludedAttributes` ask.
pub(crate) fn project(resource: Value, wanted: &[Named], excluded: &[Named]) -> Value {
    let Value::Object(mut full) = resource else {
        return resource;
    };
    if !wanted.is_empty() {
        let mut kept = Map::new();
        for key in ALWAYS {
            if let Some(value) = full.get(key) {
                kept.insert(key.to_owned(), value.clone());
            }
        }
        for named in wanted {
            copy(&full, &mut kept, named);
        }
        full = kept;
    }
    for named in excluded {
        if ALWAYS.contains(&named.attribute.as_str()) && named.extension.is_none() {
            continue;
        }
        let Some(object) = holder(&mut full, named) else { continue };
        let Some(key) = key_of(object, &named.attribute) else { continue };
        match &named.sub {
            None => {
                object.remove(&key);
            }
            Some(sub) => remove_sub(object.get_mut(&key), sub),
        }
    }
    if full.get(ENTERPRISE_SCHEMA).and_then(Value::as_object).is_some_and(Map::is_empty) {
        full.remove(ENTERPRISE_SCHEMA);
    }
    Value::Object(full)
}

fn remove_sub(value: Option<&mut Value>, sub: &str) {
    let strip = |item: &mut Value| {
        if let Some(object) = item.as_object_mut()
            && let Some(key) = key_of(object, sub)
        {
            object.remove(&key);
        }
    };
    match value {
        Some(Value::Array(items)) => items.iter_mut().for_each(strip),
        Some(item @ Value::Object(_)) => strip(item),
        _ => {}
    }
}

/// Copies the named attribute (or sub-attribute) from `full` into `kept`.
fn copy(full: &Map<String, Value>, kept: &mut Map<String, Value>, named: &Named) {
    let (source, target) = match named.extension {
        None => (Some(full), kept),
        Some(urn) => {
            let target = kept
                .entry(urn.to_owned())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut();
            let Some(target) = target else { return };
            (full.get(urn).and_then(Value::as_object), target)
        }
    };
    let Some(source) = source else { return };
    if named.attribute.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) {
        if let Some(value) = full.get(ENTERPRISE_SCHEMA) {
            target.insert(ENTERPRISE_SCHEMA.to_owned(), value.clone());
        }
        return;
    }
    let Some(key) = key_of(source, &named.attribute) else { return };
    let Some(value) = source.get(&key) else { return };
    match &named.sub {
        None => {
            target.insert(key, value.clone());
        }
        Some(sub) => {
            let pick = |item: &Value| -> Option<Value> {
                let object = item.as_object()?;
                let sub_key = key_of(object, sub)?;
                let mut picked = Map::new();
                picked.insert(sub_key.clone(), object[&sub_key].clone());
                Some(Value::Object(picked))
            };
            let picked = match value {
                Value::Array(items) => Some(Value::Array(items.iter().filter_map(pick).collect())),
                other => pick(other),
            };
            if let Some(picked) = picked {
                match (target.get_mut(&key), picked) {
                    (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
                    // Already there whole (`emails,emails.value`), or picked before.
                    (Some(_), _) => {}
                    (None, picked) => {
                        target.insert(key, picked);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn project(resource: Value, wanted: Option<&str>, excluded: Option<&str>) -> Value {
        super::project(resource, &names(wanted).unwrap(), &names(excluded).unwrap())
    }

    fn user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "id": "1",
            "userName": "ada@example.com",
            "name": {"formatted": "Ada Lovelace"},
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
            "active": true,
            ENTERPRISE_SCHEMA: {"department": "Research"},
            "meta": {"resourceType": "User"},
        })
    }

    #[test]
    fn attributes_keep_what_they_name_and_id_and_schemas() {
        let only = project(user(), Some("USERNAME, name.formatted"), None);
        assert_eq!(
            only,
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA], "id": "1",
                   "userName": "ada@example.com", "name": {"formatted": "Ada Lovelace"}})
        );
        let sub = project(user(), Some("emails.value"), None);
        assert_eq!(sub["emails"], json!([{"value": "ada@example.com"}]));
        let both = project(user(), Some("emails,emails.value"), None);
        assert_eq!(both["emails"], user()["emails"], "the whole attribute wins");
        let urn = format!("{ENTERPRISE_SCHEMA}:department");
        let department = project(user(), Some(&urn), None);
        assert_eq!(department[ENTERPRISE_SCHEMA], json!({"department": "Research"}));
        let core = format!("{USER_SCHEMA}:active");
        assert_eq!(project(user(), Some(&core), None)["active"], true);
        assert_eq!(
            project(user(), Some("nothing"), None),
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA], "id": "1"})
        );
    }

    #[test]
    fn excluded_attributes_go_but_id_and_schemas_stay() {
        let urn = format!("emails,id,schemas,{ENTERPRISE_SCHEMA}:department,name.formatted");
        let less = project(user(), None, Some(&urn));
        assert!(less.get("emails").is_none() && less.get(ENTERPRISE_SCHEMA).is_none(), "{less}");
        assert_eq!((&less["id"], &less["name"]), (&json!("1"), &json!({})));
        assert_eq!(less["userName"], "ada@example.com");
        assert_eq!(project(user(), None, None), user());
    }

    #[test]
    fn lists_are_bounded() {
        assert!(names(Some(&"a,".repeat(51))).is_err());
        assert!(names(Some(&"a".repeat(2_001))).is_err());
        assert_eq!(names(Some(&"a,".repeat(50))).unwrap().len(), 50);
    }
}
