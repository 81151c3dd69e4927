//! `/Groups`: groups the identity provider pushes, with their members —
//! created, renamed, members added and removed as Entra ID and Okta send
//! it (`members[value eq "…"]`, or `remove` with a list of values),
//! replaced, deleted (never their members).

use std::str::FromStr;

use poem::http::StatusCode;
use poem::web::{Path, Query};
use poem::{Body, IntoResponse, Request, Response, handler};
use secureai_domain::UserId;
use secureai_domain::provisioning::models::{Group, GroupAttributes, MemberChange};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::attributes::MAX_OPERATIONS;
use super::discovery::{GROUP_SCHEMA, base};
use super::stamp;
use super::users::{ListQuery, MAX_FILTER_CHARS, page_bounds, version, with_tag};
use super::{ScimError, State, caller, check_if_match, json_body, list_response, scim_json};
use crate::auth::request_context;

/// The group as a SCIM resource.
pub(crate) fn resource(group: &Group, base: &str) -> Value {
    let mut members: Vec<&UserId> = group.members.iter().collect();
    members.sort();
    let members: Vec<Value> = members
        .iter()
        .map(|m| json!({"value": m.to_string(), "$ref": format!("{base}/Users/{m}"), "type": "User"}))
        .collect();
    let mut resource = json!({
        "schemas": [GROUP_SCHEMA],
        "id": group.id.to_string(),
        "displayName": group.name,
        "members": members,
        "meta": {
            "resourceType": "Group",
            "created": stamp(group.created_at),
            "lastModified": stamp(group.updated_at),
            "location": format!("{base}/Groups/{}", group.id),
        },
    });
    if let Some(external_id) = &group.external_id {
        resource["externalId"] = Value::from(external_id.as_str());
    }
    resource["meta"]["version"] = Value::from(version(&resource));
    resource
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::typed(StatusCode::BAD_REQUEST, "invalidValue", detail)
}

fn syntax(detail: impl Into<String>) -> ScimError {
    ScimError::typed(StatusCode::BAD_REQUEST, "invalidSyntax", detail)
}

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn member_id(raw: &str) -> Result<UserId, ScimError> {
    raw.trim().parse::<UserId>().map_err(|_| invalid(format!("no user has the id {raw}")))
}

/// The user ids of a `members` value: `[{"value": id}]`, one object, or
/// a bare id.
fn member_ids(value: &Value) -> Result<Vec<UserId>, ScimError> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        Value::Null => return Ok(Vec::new()),
        _ => std::slice::from_ref(value),
    };
    items
        .iter()
        .map(|member| match member {
            Value::String(id) => member_id(id),
            Value::Object(o) => match field(o, "value") {
                Some(Value::String(id)) => member_id(id),
                _ => Err(invalid("a member needs a value: the user's id")),
            },
            _ => Err(invalid("members must be a list of {value}")),
        })
        .collect()
}

fn text(value: &Value, what: &str) -> Result<Option<String>, ScimError> {
    match value {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Null => Ok(None),
        _ => Err(invalid(format!("{what} must be a string"))),
    }
}

/// A whole Group (`POST`; `PUT` replaces the members and clears an
/// `externalId` left out).
fn from_resource(body: &Value, whole_group: bool) -> Result<GroupAttributes, ScimError> {
    let body = body.as_object().ok_or_else(|| syntax("the body must be a JSON object"))?;
    let mut attributes = GroupAttributes::default();
    if let Some(name) = field(body, "displayName") {
        attributes.name = text(name, "displayName")?;
    }
    if let Some(id) = field(body, "externalId") {
        attributes.external_id = Some(text(id, "externalId")?);
    } else if whole_group {
        attributes.external_id = Some(None);
    }
    let members = field(body, "members").map(member_ids).transpose()?.unwrap_or_default();
    attributes.members = MemberChange { replace: Some(members), ..MemberChange::default() };
    Ok(attributes)
}

/// The user id a `members[value eq "…"]` filter names.
fn filtered_member(filter: &str) -> Result<UserId, ScimError> {
    use scim_v2::filter::{AttrExp, CompValue, CompareOp, Filter};
    let parsed = Filter::from_str(filter).map_err(|e| {
        ScimError::typed(StatusCode::BAD_REQUEST, "invalidPath", format!("`{filter}`: {e}"))
    })?;
    match parsed {
        Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(id)))
            if path.name.eq_ignore_ascii_case("value") =>
        {
            member_id(&id)
        }
        _ => Err(ScimError::typed(
            StatusCode::BAD_REQUEST,
            "invalidFilter",
            "a members filter names one member: members[value eq \"id\"]",
        )),
    }
}

/// Operations apply in order: a later one overrides what an earlier one
/// said about the same members.
fn add_members(change: &mut MemberChange, ids: Vec<UserId>) {
    change.remove.retain(|m| !ids.contains(m));
    change.add.extend(ids);
}

fn remove_members(change: &mut MemberChange, ids: Vec<UserId>) {
    change.add.retain(|m| !ids.contains(m));
    change.remove.extend(ids);
}

fn replace_members(change: &mut MemberChange, ids: Vec<UserId>) {
    change.add.clear();
    change.remove.clear();
    change.replace = Some(ids);
}

/// A PATCH of a group, as Entra ID and Okta send it.
fn from_patch(body: &Value) -> Result<GroupAttributes, ScimError> {
    let body = body.as_object().ok_or_else(|| syntax("the body must be a JSON object"))?;
    let operations = field(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| syntax("a PATCH needs Operations: a list of {op, path, value}"))?;
    if operations.len() > MAX_OPERATIONS {
        return Err(invalid(format!("a PATCH has at most {MAX_OPERATIONS} operations")));
    }
    let mut attributes = GroupAttributes::default();
    for operation in operations {
        let operation = operation.as_object().ok_or_else(|| syntax("an operation is an object"))?;
        let op =
            field(operation, "op").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
        let path = match field(operation, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(path)) => Some(path.trim().to_owned()),
            Some(_) => return Err(syntax("path must be a string")),
        };
        let value = field(operation, "value");
        let members = &mut attributes.members;
        match (op.as_str(), path.as_deref()) {
            ("add" | "replace", None) => {
                let Some(Value::Object(values)) = value else {
                    return Err(invalid(format!("`{op}` without a path needs an object value")));
                };
                for (key, value) in values {
                    match key.to_ascii_lowercase().as_str() {
                        "displayname" => attributes.name = text(value, "displayName")?,
                        "externalid" => attributes.external_id = Some(text(value, "externalId")?),
                        "members" if op == "add" => add_members(members, member_ids(value)?),
                        "members" => replace_members(members, member_ids(value)?),
                        // `id` (read-only, sent by Entra with a rename), and
                        // what is not kept.
                        _ => {}
                    }
                }
            }
            ("add" | "replace", Some(path)) => {
                let value = value.ok_or_else(|| invalid(format!("`{op}` needs a value")))?;
                match path.to_ascii_lowercase().as_str() {
                    "displayname" => attributes.name = text(value, "displayName")?,
                    "externalid" => attributes.external_id = Some(text(value, "externalId")?),
                    "members" if op == "add" => add_members(members, member_ids(value)?),
                    "members" => replace_members(members, member_ids(value)?),
                    _ => {}
                }
            }
            ("remove", Some(path)) => {
                let lower = path.to_ascii_lowercase();
                if lower == "members" {
                    match value {
                        // Entra: remove with a list of values.
                        Some(value) if !value.is_null() => {
                            remove_members(members, member_ids(value)?);
                        }
                        // No value: every member.
                        _ => replace_members(members, Vec::new()),
                    }
                } else if let Some(filter) =
                    lower.strip_prefix("members[").and_then(|rest| rest.strip_suffix(']'))
                {
                    // Okta: members[value eq "id"]; the original case of the id is
                    // irrelevant (UUIDs parse in any case).
                    if filter.chars().count() > MAX_FILTER_CHARS {
                        return Err(invalid("the filter is too long"));
                    }
                    remove_members(members, vec![filtered_member(filter)?]);
                } else if lower == "externalid" {
                    attributes.external_id = Some(None);
                } else if lower == "displayname" {
                    return Err(ScimError::typed(
                        StatusCode::BAD_REQUEST,
                        "mutability",
                        "displayName is required and cannot be removed",
                    ));
                }
            }
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
    Ok(attributes)
}

fn group_id(raw: &str) -> Result<Uuid, ScimError> {
    Uuid::parse_str(raw).map_err(|_| ScimError::not_found("group"))
}

/// `If-Match` (when sent) must name the group's current version.
fn check_version(req: &Request, group: &Group, base: &str) -> Result<(), ScimError> {
    check_if_match(req, &resource(group, base), "group")
}

/// `GET /Groups/{id}`.
#[handler]
pub(crate) async fn get_group(
    state: State<'_>,
    req: &Request,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let result = async {
        let caller = caller(&state, req).await?;
        let names = query.projection.names()?;
        let group = state.service.provisioning.group(&caller, group_id(&id)?).await?;
        let full = resource(&group, &base(&state));
        let tag = full["meta"]["version"].as_str().unwrap_or_default().to_owned();
        Ok::<_, ScimError>(super::users::tagged(
            scim_json(StatusCode::OK, &names.apply(full)),
            &tag,
        ))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /Groups`: by `displayName eq`, `externalId eq` or `id eq`, or a
/// page by position in creation order.
#[handler]
pub(crate) async fn list(
    state: State<'_>,
    req: &Request,
    Query(query): Query<ListQuery>,
) -> Response {
    match list_groups(&state, req, query).await {
        Ok(body) => scim_json(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

/// The list answer of a group query.
pub(crate) async fn list_groups(
    state: &State<'_>,
    req: &Request,
    query: ListQuery,
) -> Result<Value, ScimError> {
    {
        use scim_v2::filter::{AttrExp, CompValue, CompareOp, Filter};
        let caller = caller(state, req).await?;
        let names = query.projection.names()?;
        let base = base(state);
        let (start_index, count) = page_bounds(&query, state.service.policy().max_page_size)?;
        let provisioning = &state.service.provisioning;
        if let Some(filter) = query.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            let invalid =
                |detail: &str| ScimError::typed(StatusCode::BAD_REQUEST, "invalidFilter", detail);
            if filter.chars().count() > MAX_FILTER_CHARS {
                return Err(invalid("the filter is too long"));
            }
            let parsed = Filter::from_str(filter)
                .map_err(|e| invalid(&format!("the filter does not parse: {e}")))?;
            let Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(value))) =
                parsed
            else {
                return Err(invalid(
                    "this server answers group filters on displayName eq, externalId eq or id eq",
                ));
            };
            let found: Vec<Group> = match path.name.to_ascii_lowercase().as_str() {
                "displayname" => provisioning.group_by_name(&caller, &value).await?.into_iter().collect(),
                "id" => match Uuid::parse_str(&value) {
                    Ok(id) => match provisioning.group(&caller, id).await {
                        Ok(group) => vec![group],
                        Err(secureai_domain::provisioning::service::ProvisioningError::GroupNotFound) => Vec::new(),
                        Err(e) => return Err(e.into()),
                    },
                    Err(_) => Vec::new(),
                },
                "externalid" => {
                    // Every group, a page at a time (groups are few: one per
                    // team the identity provider pushes).
                    let mut found = Vec::new();
                    let mut offset = 0;
                    loop {
                        let page = provisioning.groups_by_position(&caller, offset, u32::MAX).await?;
                        let read = page.groups.len() as u64;
                        found.extend(
                            page.groups.into_iter().filter(|g| g.external_id.as_deref() == Some(value.as_str())),
                        );
                        offset += read;
                        if read == 0 || offset >= page.total {
                            break;
                        }
                    }
                    found
                }
                _ => return Err(invalid("this server answers group filters on displayName eq, externalId eq or id eq")),
            };
            let total = found.len() as u64;
            let shown = found
                .iter()
                .skip(usize::try_from(start_index - 1).unwrap_or(usize::MAX))
                .take(usize::try_from(count).unwrap_or(usize::MAX))
                .map(|g| names.apply(resource(g, &base)))
                .collect();
            return Ok(list_response(shown, total, start_index));
        }
        let page = provisioning
            .groups_by_position(&caller, start_index - 1, u32::try_from(count).unwrap_or(u32::MAX))
            .await?;
        let shown = page.groups.iter().map(|g| names.apply(resource(g, &base))).collect();
        Ok(list_response(shown, page.total, start_index))
    }
}

/// `POST /Groups`.
#[handler]
pub(crate) async fn create(state: State<'_>, req: &Request, body: Body) -> Response {
    let result = async {
        let caller = caller(&state, req).await?;
        let attributes = from_resource(&json_body(body).await?, false)?;
        let group = state
            .service
            .provisioning
            .create_group(&caller, &attributes, &request_context(req))
            .await?;
        Ok::<_, ScimError>(super::created(resource(&group, &base(&state))))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn change(
    state: &State<'_>,
    req: &Request,
    id: &str,
    body: Body,
    read: fn(&Value) -> Result<GroupAttributes, ScimError>,
) -> Result<Response, ScimError> {
    let caller = caller(state, req).await?;
    let id = group_id(id)?;
    let attributes = read(&json_body(body).await?)?;
    let base = base(state);
    let current = state.service.provisioning.group(&caller, id).await?;
    check_version(req, &current, &base)?;
    let group = state
        .service
        .provisioning
        .change_group(&caller, id, &attributes, &request_context(req))
        .await?;
    Ok(with_tag(StatusCode::OK, resource(&group, &base)))
}

/// `PUT /Groups/{id}`.
#[handler]
pub(crate) async fn replace(
    state: State<'_>,
    req: &Request,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    change(&state, req, &id, body, |body| from_resource(body, true))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `PATCH /Groups/{id}`.
#[handler]
pub(crate) async fn patch(
    state: State<'_>,
    req: &Request,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    change(&state, req, &id, body, from_patch).await.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /Groups/{id}`: the group, never its members.
#[handler]
pub(crate) async fn delete(state: State<'_>, req: &Request, Path(id): Path<String>) -> Response {
    let result = async {
        let caller = caller(&state, req).await?;
        let id = group_id(&id)?;
        let current = state.service.provisioning.group(&caller, id).await?;
        check_version(req, &current, &base(&state))?;
        state.service.provisioning.delete_group(&caller, id, &request_context(req)).await?;
        Ok::<_, ScimError>(StatusCode::NO_CONTENT.into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_removal_reads_both_ways_clients_send_it() {
        let a = UserId::generate();
        let b = UserId::generate();
        let okta =
            json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]});
        assert_eq!(from_patch(&okta).unwrap().members.remove, vec![a]);
        let entra = json!({"Operations": [{"op": "Remove", "path": "members", "value": [{"value": a.to_string()}, {"value": b.to_string()}]}]});
        assert_eq!(from_patch(&entra).unwrap().members.remove, vec![a, b]);
        let rename = json!({"Operations": [{"op": "Replace", "value": {"id": "ignored", "displayName": "Sales"}}]});
        assert_eq!(from_patch(&rename).unwrap().name.as_deref(), Some("Sales"));
        let all = json!({"Operations": [{"op": "remove", "path": "members"}]});
        assert_eq!(from_patch(&all).unwrap().members.replace, Some(Vec::new()));
        let ordered = json!({"Operations": [
            {"op": "add", "path": "members", "value": [{"value": a.to_string()}]},
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "members", "value": [{"value": b.to_string()}]},
        ]});
        let read = from_patch(&ordered).unwrap().members;
        assert_eq!((read.replace, read.add), (Some(Vec::new()), vec![b]), "in order");
        let bad = json!({"Operations": [{"op": "remove", "path": "members[display eq \"x\"]"}]});
        assert_eq!(from_patch(&bad).unwrap_err().scim_type, Some("invalidFilter"));
        let not_id =
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "nope"}]}]});
        assert_eq!(from_patch(&not_id).unwrap_err().scim_type, Some("invalidValue"));
    }
}
