//! SCIM 2.0 provisioning at `/scim/v2` (RFC 7643, RFC 7644): the company's
//! identity provider reads users with a service token that has the `scim`
//! scope. Answers are `application/scim+json`; every refusal uses the SCIM
//! error schema with a 4xx where the request is at fault (a 5xx makes an
//! identity provider retry for ever). See `docs/design/scim.md`.

mod attributes;
mod discovery;
mod filters;
mod groups;
mod projection;
mod search;
mod users;
mod writes;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{EndpointExt, IntoResponse, Request, Response, Route, get};
use secureai_domain::PlainToken;
use secureai_domain::access::ServiceCaller;
use secureai_domain::analytics::errors::ServiceAuthError;
use secureai_domain::analytics::models::TokenScope;
use secureai_domain::provisioning::service::ProvisioningError;
use serde_json::{Value, json};

use crate::AppState;

/// The media type of every answer.
pub(crate) const SCIM_JSON: &str = "application/scim+json";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The routes under `/scim/v2`.
pub(crate) fn routes() -> impl poem::Endpoint {
    Route::new()
        .at("/ServiceProviderConfig", get(discovery::service_provider_config))
        .at("/ResourceTypes", get(discovery::resource_types))
        .at("/ResourceTypes/:id", get(discovery::resource_type))
        .at("/Schemas", get(discovery::schemas))
        .at("/Schemas/:id", get(discovery::schema))
        .at("/Users", get(users::list).post(writes::create))
        .at("/Users/.search", poem::post(search::search))
        .at("/Groups", get(groups::list).post(groups::create))
        .at(
            "/Groups/:id",
            get(groups::get_group).put(groups::replace).patch(groups::patch).delete(groups::delete),
        )
        .at("/.search", poem::post(search::search_all))
        .at(
            "/Users/:id",
            get(users::get_user).put(writes::replace).patch(writes::patch).delete(writes::delete),
        )
        .with(crate::limits::BodyLimit::new(crate::MAX_BODY_BYTES, crate::MAX_BODY_BYTES))
        .around(record_failures)
}

/// Keeps each refused request of a valid SCIM token for Settings ›
/// Provisioning: method, path (no query string), status, the detail
/// answered and the token's name. Requests without a valid token write
/// nothing, so that nobody can flood the list from outside.
async fn record_failures<E: poem::Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let state = req.data::<AppState>().cloned();
    let method = req.method().to_string();
    // The whole path: inside the nest, `uri()` has lost `/scim/v2`.
    let path = req.original_uri().path().to_owned();
    let bearer = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').map(|(_, token)| token.trim().to_owned()));
    // A refusal before any handler (unknown path or method) stays an error
    // for the SCIM error renderer outside, and is not kept.
    let response = next.call(req).await?.into_response();
    let status = response.status();
    let (Some(state), Some(bearer)) = (state, bearer) else { return Ok(response) };
    if !(status.is_client_error() || status.is_server_error()) || status == StatusCode::UNAUTHORIZED
    {
        return Ok(response);
    }
    let Ok(caller) = state
        .service
        .service_tokens
        .authenticate_service(&PlainToken::presented(bearer), TokenScope::Scim)
        .await
    else {
        return Ok(response);
    };
    let (parts, body) = response.into_parts();
    let bytes = body.into_bytes().await.unwrap_or_default();
    let detail = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let failure = secureai_domain::provisioning::models::RequestFailure {
        at: chrono::Utc::now(),
        method,
        path,
        status: status.as_u16(),
        detail,
        token: caller.token().name.clone(),
    };
    if let Err(error) = state.service.provisioning.record_failure(&failure).await {
        tracing::warn!(%error, "a refused SCIM request could not be recorded");
    }
    Ok(Response::from_parts(parts, poem::Body::from(bytes.to_vec())))
}

/// An instant as `meta` shows it: RFC 3339 in UTC, with as many digits of
/// the second as it has (to the microsecond), so that a filter on
/// `meta.lastModified` can compare with exactly what was shown.
pub(crate) fn stamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A SCIM error answer (RFC 7644 §3.12).
#[derive(Debug)]
pub(crate) struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl ScimError {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, scim_type: None, detail: detail.into() }
    }

    pub(crate) fn typed(
        status: StatusCode,
        scim_type: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self { status, scim_type: Some(scim_type), detail: detail.into() }
    }

    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no {what} has this id"))
    }

    fn internal(error: &secureai_domain::StoreError) -> Self {
        tracing::error!(%error, "SCIM request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "something went wrong on our side; the request can be sent again",
        )
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = Value::from(scim_type);
        }
        let mut response = scim_json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                poem::http::header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        response
    }
}

impl From<ProvisioningError> for ScimError {
    fn from(error: ProvisioningError) -> Self {
        match error {
            ProvisioningError::Forbidden => Self::new(StatusCode::FORBIDDEN, error.to_string()),
            ProvisioningError::NotFound => Self::not_found("user"),
            ProvisioningError::Invalid(e) => Self::typed(
                StatusCode::BAD_REQUEST,
                "invalidValue",
                format!("{}: {}", e.field, e.reason),
            ),
            ProvisioningError::EmailTaken => {
                Self::typed(StatusCode::CONFLICT, "uniqueness", error.to_string())
            }
            ProvisioningError::LastAdmin => {
                Self::typed(StatusCode::CONFLICT, "mutability", error.to_string())
            }
            ProvisioningError::SeatLimitReached { .. } => {
                Self::new(StatusCode::CONFLICT, error.to_string())
            }
            ProvisioningError::GroupNotFound => Self::not_found("group"),
            ProvisioningError::GroupNameTaken => {
                Self::typed(StatusCode::CONFLICT, "uniqueness", error.to_string())
            }
            ProvisioningError::Unexpected(e) => Self::internal(&e),
            // Only an admin's settings change asks; SCIM never does.
            ProvisioningError::StepUp(_) => Self::new(StatusCode::FORBIDDEN, error.to_string()),
        }
    }
}

/// A JSON body as `application/scim+json`.
pub(crate) fn scim_json(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type(SCIM_JSON)
        // Answers name people: never kept by a cache on the way.
        .header(poem::http::header::CACHE_CONTROL, "no-store")
        .body(body.to_string())
}

/// The provisioning client behind the request's bearer token.
pub(crate) async fn caller(state: &AppState, req: &Request) -> Result<ServiceCaller, ScimError> {
    let token = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme's name is case-insensitive (RFC 7235 §2.1).
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ScimError::new(
                StatusCode::UNAUTHORIZED,
                "send a service token with the scim scope as Authorization: Bearer",
            )
        })?;
    state
        .service
        .service_tokens
        .authenticate_service(&PlainToken::presented(token.to_owned()), TokenScope::Scim)
        .await
        .map_err(|error| match error {
            ServiceAuthError::InvalidToken => {
                ScimError::new(StatusCode::UNAUTHORIZED, "a valid service token is required")
            }
            ServiceAuthError::MissingScope { .. } => {
                ScimError::new(StatusCode::FORBIDDEN, error.to_string())
            }
            ServiceAuthError::Unexpected(e) => ScimError::internal(&e),
        })
}

/// Any refusal outside a handler (unknown path, wrong method, a body too
/// large) in the SCIM error schema.
pub(crate) async fn render_error(error: poem::Error) -> Response {
    let status = error.status();
    let detail = match status {
        StatusCode::NOT_FOUND => "there is no such SCIM resource".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "this method is not supported here".to_owned(),
        _ => error.to_string(),
    };
    ScimError::new(status, detail).into_response()
}

/// `{schemas, totalResults, startIndex, itemsPerPage, Resources}`.
pub(crate) fn list_response(resources: Vec<Value>, total: u64, start_index: u64) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// The request's JSON body (at most 1 MiB, by the route's limit).
pub(crate) async fn json_body(body: poem::Body) -> Result<Value, ScimError> {
    let bytes = body.into_bytes().await.map_err(|e| {
        ScimError::new(StatusCode::BAD_REQUEST, format!("the body could not be read: {e}"))
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ScimError::typed(
            StatusCode::BAD_REQUEST,
            "invalidSyntax",
            format!("the body is not JSON: {e}"),
        )
    })
}

/// Refuses a write unless `If-Match` (when sent) names `resource`'s
/// current version (weak or strong, or `*`); `what` names it in the
/// refusal.
pub(crate) fn check_if_match(req: &Request, resource: &Value, what: &str) -> Result<(), ScimError> {
    let Some(wanted) = req.headers().get(poem::http::header::IF_MATCH) else {
        return Ok(());
    };
    let wanted = wanted.to_str().unwrap_or_default();
    let version = resource["meta"]["version"].as_str().unwrap_or_default();
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    if wanted.split(',').any(|tag| tag.trim() == "*" || opaque(tag) == opaque(version)) {
        Ok(())
    } else {
        Err(ScimError::new(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "the {what} changed since that version was read; the current version is {version}"
            ),
        ))
    }
}

/// `201 Created` with the resource, its `ETag` and its `Location`.
pub(crate) fn created(full: Value) -> Response {
    let location = full["meta"]["location"].as_str().map(str::to_owned);
    let mut response = users::with_tag(StatusCode::CREATED, full);
    if let Some(location) = location.and_then(|l| poem::http::HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(poem::http::header::LOCATION, location);
    }
    response
}

/// The state, for handlers written as plain poem endpoints.
pub(crate) type State<'a> = Data<&'a AppState>;
