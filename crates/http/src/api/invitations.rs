//! `POST /invitations/accept`.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use secrecy::SecretString;
use secureai_domain::PlainToken;

use super::ApiTags;
use crate::AppState;
use crate::auth::request_context;
use crate::dto::MeDto;
use crate::errors::ApiError;

/// The link's token and the chosen password. (No `Debug`: secrets.)
#[derive(Object)]
pub(crate) struct AcceptInvitation {
    /// The `token` parameter of the invitation link.
    #[oai(write_only)]
    token: String,
    /// The new password: 8 to 128 characters, not a common password.
    #[oai(write_only)]
    password: String,
}

pub(crate) struct InvitationsApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Invitations")]
impl InvitationsApi {
    /// Accept an invitation: set a password and activate the account.
    ///
    /// The link works once: `invitation_invalid` (404) if unknown, used or
    /// replaced; `invitation_expired` (410) after 72 hours.
    #[oai(path = "/invitations/accept", method = "post")]
    async fn accept(
        &self,
        body: Json<AcceptInvitation>,
        req: &Request,
    ) -> Result<Json<MeDto>, ApiError> {
        let token = PlainToken::presented(body.0.token);
        let user = self
            .0
            .service
            .invitations
            .accept_invitation(&token, SecretString::from(body.0.password), &request_context(req))
            .await?;
        Ok(Json(MeDto::from(&user)))
    }
}
