//! `POST /Users`, `PUT`, `PATCH` and `DELETE /Users/{id}`: the identity
//! provider creates, changes, deactivates and detaches users under the
//! guide's rules (the domain's `ProvisioningService`); `If-Match` is
//! honoured on every write.

use poem::http::StatusCode;
use poem::web::Path;
use poem::{Body, IntoResponse, Request, Response, handler};
use secureai_domain::UserId;
use secureai_domain::access::ServiceCaller;
use secureai_domain::provisioning::models::Attributes;

use super::attributes::{from_patch, from_resource};
use super::discovery::base;
use super::users::{resource, with_tag};
use super::{ScimError, State, caller, check_if_match, json_body};
use crate::auth::request_context;

/// Refuses the write unless `If-Match` (when sent) names the user's
/// current version, or `*`.
async fn check_version(
    state: &State<'_>,
    req: &Request,
    caller: &ServiceCaller,
    id: UserId,
) -> Result<(), ScimError> {
    if req.headers().contains_key(poem::http::header::IF_MATCH) {
        let current = state.service.provisioning.user(caller, id).await?;
        check_if_match(req, &resource(&current, &base(state)), "user")?;
    }
    Ok(())
}

fn user_id(raw: &str) -> Result<UserId, ScimError> {
    raw.parse::<UserId>().map_err(|_| ScimError::not_found("user"))
}

/// `POST /Users`.
#[handler]
pub(crate) async fn create(state: State<'_>, req: &Request, body: Body) -> Response {
    let result = async {
        let caller = caller(&state, req).await?;
        let attributes = from_resource(&json_body(body).await?, false)?;
        let created =
            state.service.provisioning.create(&caller, &attributes, &request_context(req)).await?;
        Ok::<_, ScimError>(super::created(resource(&created, &base(&state))))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn change(
    state: &State<'_>,
    req: &Request,
    id: &str,
    attributes: impl FnOnce() -> Result<Attributes, ScimError>,
) -> Result<Response, ScimError> {
    let caller = caller(state, req).await?;
    let id = user_id(id)?;
    let attributes = attributes()?;
    check_version(state, req, &caller, id).await?;
    let changed =
        state.service.provisioning.update(&caller, id, &attributes, &request_context(req)).await?;
    Ok(with_tag(StatusCode::OK, resource(&changed, &base(state))))
}

/// `PUT /Users/{id}`: the whole user as the identity provider has them.
#[handler]
pub(crate) async fn replace(
    state: State<'_>,
    req: &Request,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let result = async {
        let body = json_body(body).await?;
        change(&state, req, &id, || from_resource(&body, true)).await
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// `PATCH /Users/{id}`.
#[handler]
pub(crate) async fn patch(
    state: State<'_>,
    req: &Request,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let result = async {
        let body = json_body(body).await?;
        change(&state, req, &id, || from_patch(&body)).await
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /Users/{id}`: deactivates and detaches — never deletes.
#[handler]
pub(crate) async fn delete(state: State<'_>, req: &Request, Path(id): Path<String>) -> Response {
    let result = async {
        let caller = caller(&state, req).await?;
        let id = user_id(&id)?;
        check_version(&state, req, &caller, id).await?;
        state.service.provisioning.delete(&caller, id, &request_context(req)).await?;
        Ok::<_, ScimError>(StatusCode::NO_CONTENT.into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}
