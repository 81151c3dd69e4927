//! `/Users`: a user as a SCIM resource, one by id, and the list with
//! `filter`, `startIndex` and `count`.

use std::str::FromStr;

use poem::http::StatusCode;
use poem::web::{Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use secureai_domain::provisioning::models::ProvisionedUser;
use secureai_domain::{EmailAddress, Role, UserId, UserStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use super::discovery::{ENTERPRISE_SCHEMA, USER_SCHEMA, base};
use super::{ScimError, State, caller, list_response, scim_json, stamp};

/// The user as a SCIM resource.
pub(crate) fn resource(provisioned: &ProvisionedUser, base: &str) -> Value {
    let user = &provisioned.user;
    let role = user.role.as_str();
    let mut resource = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "id": user.id.to_string(),
        "userName": provisioned.user_name(),
        "name": {"formatted": user.name.as_ref()},
        "displayName": user.name.as_ref(),
        "emails": [{"value": user.email.as_str(), "type": "work"}],
        "active": user.status() != UserStatus::Deactivated,
        "meta": {
            "resourceType": "User",
            "created": stamp(user.created_at),
            "lastModified": stamp(provisioned.modified_at),
            "location": format!("{base}/Users/{}", user.id),
        },
    });
    if user.role == Role::Admin {
        resource["roles"] = json!([{"value": role}]);
    }
    if let Some(department) = &user.department {
        resource[ENTERPRISE_SCHEMA] = json!({"department": department.as_ref()});
    }
    if let Some(external_id) = &provisioned.external_id {
        resource["externalId"] = Value::from(external_id.as_str());
    }
    resource["meta"]["version"] = Value::from(version(&resource));
    resource
}

/// A weak entity tag of the resource as shown: it changes whenever any
/// attribute does.
pub(crate) fn version(resource: &Value) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(resource.to_string().as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// `attributes` and `excludedAttributes`.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct Projection {
    #[serde(default)]
    pub(crate) attributes: Option<String>,
    #[serde(default, rename = "excludedAttributes")]
    pub(crate) excluded_attributes: Option<String>,
}

/// The attribute names of a [`Projection`], read once per request.
pub(crate) struct Names {
    wanted: Vec<super::projection::Named>,
    excluded: Vec<super::projection::Named>,
}

impl Projection {
    pub(crate) fn names(&self) -> Result<Names, ScimError> {
        let read = |raw: Option<&str>| {
            super::projection::names(raw)
                .map_err(|e| ScimError::typed(StatusCode::BAD_REQUEST, "invalidValue", e))
        };
        Ok(Names {
            wanted: read(self.attributes.as_deref())?,
            excluded: read(self.excluded_attributes.as_deref())?,
        })
    }
}

impl Names {
    pub(crate) fn apply(&self, resource: Value) -> Value {
        super::projection::project(resource, &self.wanted, &self.excluded)
    }
}

/// `GET /Users/{id}`.
#[handler]
pub(crate) async fn get_user(
    state: State<'_>,
    req: &Request,
    Path(id): Path<String>,
    Query(projection): Query<Projection>,
) -> Response {
    let caller = match caller(&state, req).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let Ok(id) = id.parse::<UserId>() else {
        return ScimError::not_found("user").into_response();
    };
    let projection = match projection.names() {
        Ok(names) => names,
        Err(e) => return e.into_response(),
    };
    match state.service.provisioning.user(&caller, id).await {
        Ok(user) => {
            let full = resource(&user, &base(&state));
            let tag = full["meta"]["version"].as_str().unwrap_or_default().to_owned();
            tagged(scim_json(StatusCode::OK, &projection.apply(full)), &tag)
        }
        Err(e) => ScimError::from(e).into_response(),
    }
}

pub(crate) fn tagged(mut response: Response, tag: &str) -> Response {
    if let Ok(tag) = poem::http::HeaderValue::from_str(tag) {
        response.headers_mut().insert(poem::http::header::ETAG, tag);
    }
    response
}

/// A whole resource as the answer, its version as the `ETag`.
pub(crate) fn with_tag(status: StatusCode, full: Value) -> Response {
    let tag = full["meta"]["version"].as_str().unwrap_or_default().to_owned();
    tagged(scim_json(status, &full), &tag)
}

/// The page a query asks for: `startIndex` (1-based; below 1 is 1) and
/// `count` (at most the largest page; below zero is zero), RFC 7644
/// §3.4.2.4.
pub(crate) fn page_bounds(query: &ListQuery, max_page: u32) -> Result<(u64, u64), ScimError> {
    let start_index = whole(query.start_index.as_deref(), "startIndex", 1)?.max(1);
    let max = u64::from(max_page);
    let count = whole(query.count.as_deref(), "count", max)?.min(max);
    Ok((start_index, count))
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pub(crate) filter: Option<String>,
    #[serde(default, rename = "startIndex")]
    pub(crate) start_index: Option<String>,
    #[serde(default)]
    pub(crate) count: Option<String>,
    #[serde(flatten)]
    pub(crate) projection: Projection,
}

/// Longest filter accepted, in characters.
pub(crate) const MAX_FILTER_CHARS: usize = 1_000;

/// A filter this server answers: one user by a unique attribute.
enum Lookup {
    UserName(String),
    Email(EmailAddress),
    Id(String),
    ExternalId(String),
    /// Any other filter, answered by the store.
    General(secureai_domain::provisioning::filter::ScimFilter),
    /// A value no user can have (not an address, say).
    Nobody,
}

/// Reads `filter` as the lookups identity providers send (`userName eq
/// "…"`, `emails.value eq "…"`, `id eq "…"`); any other filter is refused
/// as `invalidFilter`, naming what is supported.
fn lookup(filter: &str) -> Result<Lookup, ScimError> {
    use scim_v2::filter::{AttrExp, CompValue, CompareOp, Filter};
    let invalid =
        |detail: String| ScimError::typed(StatusCode::BAD_REQUEST, "invalidFilter", detail);
    if filter.chars().count() > MAX_FILTER_CHARS {
        return Err(invalid(format!("a filter has at most {MAX_FILTER_CHARS} characters")));
    }
    let parsed =
        Filter::from_str(filter).map_err(|e| invalid(format!("the filter does not parse: {e}")))?;
    // The lookups identity providers make before creating someone go
    // straight to their indexes; any other filter is read in full.
    if let Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(value))) = &parsed
        && path.uri.as_deref().is_none_or(|uri| uri.eq_ignore_ascii_case(USER_SCHEMA))
    {
        let name = path.name.to_ascii_lowercase();
        let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
        match (name.as_str(), sub.as_deref()) {
            ("username", None) => return Ok(Lookup::UserName(value.clone())),
            ("emails", Some("value")) => {
                return Ok(EmailAddress::parse(value).map_or(Lookup::Nobody, Lookup::Email));
            }
            ("id", None) => return Ok(Lookup::Id(value.clone())),
            ("externalid", None) => return Ok(Lookup::ExternalId(value.clone())),
            _ => {}
        }
    }
    Ok(Lookup::General(super::filters::user_filter(&parsed)?))
}

/// A whole-number parameter, or the default; below zero counts as zero
/// (RFC 7644 §3.4.2.4); anything else is `invalidValue`.
pub(crate) fn whole(raw: Option<&str>, name: &str, default: u64) -> Result<u64, ScimError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => text.parse::<i64>().map(|n| u64::try_from(n).unwrap_or(0)).map_err(|_| {
            ScimError::typed(
                StatusCode::BAD_REQUEST,
                "invalidValue",
                format!(
                    "{name} must be a whole number, not `{}`",
                    text.chars().take(20).collect::<String>()
                ),
            )
        }),
    }
}

/// `GET /Users`: by filter, or a page by `startIndex` (1-based) and
/// `count`, in creation order.
#[handler]
pub(crate) async fn list(
    state: State<'_>,
    req: &Request,
    Query(query): Query<ListQuery>,
) -> Response {
    match list_users(&state, req, query).await {
        Ok(body) => scim_json(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn list_users(
    state: &State<'_>,
    req: &Request,
    query: ListQuery,
) -> Result<Value, ScimError> {
    let caller = caller(state, req).await?;
    let projection = query.projection.names()?;
    let base = base(state);
    // RFC 7644 §3.4.2.4: values below 1 are 1; a negative count is 0.
    let (start_index, count) = page_bounds(&query, state.service.policy().max_page_size)?;
    if let Some(filter) = query.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        let found: Vec<ProvisionedUser> = match lookup(filter)? {
            Lookup::Email(email) => state
                .service
                .provisioning
                .user_by_email(&caller, &email)
                .await?
                .into_iter()
                .collect(),
            Lookup::UserName(user_name) => state
                .service
                .provisioning
                .user_by_user_name(&caller, &user_name)
                .await?
                .into_iter()
                .collect(),
            Lookup::ExternalId(external_id) => {
                state.service.provisioning.users_by_external_id(&caller, &external_id).await?
            }
            Lookup::Id(id) => match id.parse::<UserId>() {
                Ok(id) => match state.service.provisioning.user(&caller, id).await {
                    Ok(user) => vec![user],
                    Err(secureai_domain::provisioning::service::ProvisioningError::NotFound) => {
                        Vec::new()
                    }
                    Err(e) => return Err(e.into()),
                },
                Err(_) => Vec::new(),
            },
            Lookup::Nobody => Vec::new(),
            Lookup::General(filter) => {
                let page = state
                    .service
                    .provisioning
                    .users_matching(
                        &caller,
                        &filter,
                        start_index - 1,
                        u32::try_from(count).unwrap_or(u32::MAX),
                    )
                    .await?;
                let shown =
                    page.users.iter().map(|u| projection.apply(resource(u, &base))).collect();
                return Ok(list_response(shown, page.total, start_index));
            }
        };
        let total = found.len() as u64;
        let shown: Vec<Value> = found
            .iter()
            .skip(usize::try_from(start_index - 1).unwrap_or(usize::MAX))
            .take(usize::try_from(count).unwrap_or(usize::MAX))
            .map(|u| projection.apply(resource(u, &base)))
            .collect();
        return Ok(list_response(shown, total, start_index));
    }
    let page = state
        .service
        .provisioning
        .users_by_position(&caller, start_index - 1, u32::try_from(count).unwrap_or(u32::MAX))
        .await?;
    let resources = page.users.iter().map(|u| projection.apply(resource(u, &base))).collect();
    Ok(list_response(resources, page.total, start_index))
}
