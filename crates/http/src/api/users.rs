//! `POST /users`, `GET /users`, `GET /users/{id}` (admins only).

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secureai_domain::UserId;
use secureai_domain::access::ApiScope;
use secureai_domain::errors::FieldError;
use secureai_domain::invitations::service::InviteRequest;
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::users::listing::ListUsersRequest;

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::dto::{InvitationDto, UserDto, UserProfileDto};
use crate::errors::ApiError;

/// A user to invite.
#[derive(Debug, Object)]
pub(crate) struct CreateUser {
    /// Work email address; unique across the instance, case-insensitively.
    email: String,
    /// Display name.
    name: String,
    /// `user` or `admin`.
    role: String,
    /// Optional department.
    department: Option<String>,
    /// `password` or `sso`. Default: `sso` while an identity provider is
    /// configured (no password, an "access is ready" email), else
    /// `password` (an invitation link to set one). Ask for `password` to
    /// keep a break-glass admin under SSO.
    sign_in: Option<String>,
}

#[derive(ApiResponse)]
pub(crate) enum CreateUserResult {
    /// Invited: the user exists as `invited` and the invitation email is queued.
    #[oai(status = 201)]
    Created(Json<UserDto>, #[oai(header = "Location")] String),
}

/// A page of users.
#[derive(Debug, Object)]
pub(crate) struct UserPageDto {
    /// The users.
    items: Vec<UserDto>,
    /// Pass as `cursor` to get the next page; absent on the last page. A
    /// search matching few of the users it looks through may end a page
    /// early, with fewer items than `limit` (even none) and a cursor: each
    /// page looks through a bounded part of the directory, and the next one
    /// continues the search.
    next_cursor: Option<String>,
    /// How many users match, over all pages.
    total: u64,
    /// `false` when a search matched too many users to count them all:
    /// `total` is then a lower bound ("at least").
    total_exact: bool,
}

/// Fields to change; absent fields stay as they are; any other field (an
/// `email`, say) is refused.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct UpdateUser {
    /// A corrected address, for an invited user only (`email_not_changeable`
    /// otherwise): unique in any letter case; the earlier link stops
    /// working and a new invitation goes to the new address. Sent with
    /// other fields, it must be the user's address as it is.
    email: Option<String>,
    /// `user` or `admin`.
    role: Option<String>,
    /// `false` deactivates, `true` reactivates.
    active: Option<bool>,
    /// Display name.
    name: Option<String>,
    /// Department; an empty string clears it.
    department: Option<String>,
    /// `sso` switches a password account to single sign-on: its password
    /// is removed and its sessions end; its next SSO sign-in links it.
    /// Password accounts are never linked to SSO otherwise.
    sign_in: Option<String>,
}

pub(crate) fn parse_id(text: &str) -> Result<UserId, ApiError> {
    text.parse().map_err(|_| ApiError::not_found("user_not_found", "no user has this id"))
}

pub(crate) struct UsersApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Users")]
impl UsersApi {
    /// Invite a user: creates them as `invited` and emails an invitation
    /// link valid for 72 hours.
    #[oai(path = "/users", method = "post")]
    async fn create(
        &self,
        auth: SessionAuth,
        body: Json<CreateUser>,
        req: &Request,
    ) -> Result<CreateUserResult, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersWrite)).await?.admin()?;
        let request = InviteRequest {
            email: body.0.email,
            name: body.0.name,
            role: body.0.role,
            department: body.0.department,
            sign_in: body.0.sign_in,
        };
        let invited =
            self.0.service.invitations.invite_user(&admin, &request, &request_context(req)).await?;
        let location = format!("/api/v1/users/{}", invited.user.id);
        Ok(CreateUserResult::Created(Json(UserDto::from(&invited.user)), location))
    }

    /// List and search users, a page at a time (keyset paging: deep pages
    /// cost the same as the first), with the total number of matches.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/users", method = "get")]
    async fn list(
        &self,
        auth: SessionAuth,
        /// Search words; each must start the email address, its domain or a
        /// word of the name (case-insensitive).
        q: Query<Option<String>>,
        /// `user` or `admin`.
        role: Query<Option<String>>,
        /// `invited`, `active` or `deactivated`.
        status: Query<Option<String>>,
        /// Exact department.
        department: Query<Option<String>>,
        /// `expired`: invited users whose invitation link expired;
        /// `email_failed`: invited users whose invitation email could not
        /// be delivered.
        invitation: Query<Option<String>>,
        /// A group's id (pushed by the identity provider over SCIM): its
        /// members only.
        group: Query<Option<String>>,
        /// `name`, `email`, `created` (default) or `last_sign_in`; prefix
        /// with `-` for descending.
        sort: Query<Option<String>>,
        /// Cursor from the previous page (keep the same filters and sort).
        cursor: Query<Option<String>>,
        /// Page size, 1–200 (default 50).
        limit: Query<Option<u32>>,
        req: &Request,
    ) -> Result<Json<UserPageDto>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersRead)).await?.admin()?;
        let request = ListUsersRequest {
            q: q.0,
            role: role.0,
            status: status.0,
            department: department.0,
            invitation: invitation.0,
            group: group.0,
            sort: sort.0,
            limit: limit.0,
            cursor: cursor.0,
        };
        let page = self.0.service.users.list_users(&admin, &request).await?;
        Ok(Json(UserPageDto {
            items: page.items.iter().map(UserDto::from).collect(),
            next_cursor: page.next_cursor,
            total: page.total,
            total_exact: page.total_exact,
        }))
    }

    /// Every user the list's filters match, as CSV: `email, name, role,
    /// department` (what an import takes), then `status, created_at,
    /// last_sign_in_at`. Streamed a page at a time; cells starting with
    /// `= + - @`, tab or CR are prefixed with `'`.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/users/export.csv", method = "get")]
    async fn export(
        &self,
        auth: SessionAuth,
        /// Search words, as for the list.
        q: Query<Option<String>>,
        /// `user` or `admin`.
        role: Query<Option<String>>,
        /// `invited`, `active` or `deactivated`.
        status: Query<Option<String>>,
        /// Exact department.
        department: Query<Option<String>>,
        /// `expired` or `email_failed`, as for the list.
        invitation: Query<Option<String>>,
        /// A group's id, as for the list.
        group: Query<Option<String>>,
        /// As for the list.
        sort: Query<Option<String>>,
        req: &Request,
    ) -> Result<crate::api::audit::CsvExport, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersRead)).await?.admin()?;
        let request = ListUsersRequest {
            q: q.0,
            role: role.0,
            status: status.0,
            department: department.0,
            invitation: invitation.0,
            group: group.0,
            sort: sort.0,
            limit: Some(self.0.service.policy().max_page_size),
            cursor: None,
        };
        // The first page before the answer: a bad filter is a 4xx, not a
        // broken file.
        let first = self.0.service.users.list_users(&admin, &request).await?;
        let body = crate::csv_export::users_stream(self.0.service.clone(), admin, request, first);
        Ok(crate::api::audit::CsvExport::Csv(
            poem_openapi::payload::Binary(body),
            "attachment; filename=\"secureai-users.csv\"".to_owned(),
        ))
    }

    /// Change a user's role, active state, name or department (the
    /// profile's "Save"), or correct an invited user's email. Deactivating ends every session at once and frees
    /// the seat; reactivating needs a free seat; the last active admin can
    /// be neither demoted nor deactivated (`last_admin`).
    #[oai(path = "/users/:id", method = "patch")]
    async fn update(
        &self,
        auth: SessionAuth,
        /// The user's id.
        id: Path<String>,
        body: Json<UpdateUser>,
        req: &Request,
    ) -> Result<Json<UserDto>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersWrite)).await?.admin()?;
        let id = parse_id(&id.0)?;
        let update = UserUpdate {
            role: body.0.role,
            active: body.0.active,
            name: body.0.name,
            department: body.0.department,
            sign_in: body.0.sign_in,
        };
        let context = request_context(req);
        let Some(email) = body.0.email else {
            let user = self.0.service.users.update_user(&admin, id, &update, &context).await?;
            return Ok(Json(UserDto::from(&user)));
        };
        if update.is_empty() {
            let user =
                self.0.service.invitations.correct_email(&admin, id, &email, &context).await?;
            return Ok(Json(UserDto::from(&user)));
        }
        // With other fields, the address may only be the one the user has
        // (a client sending the whole user): a correction is its own
        // request, so that no part of a refused request is ever written.
        update.check().map_err(|field| ApiError::invalid_field(&field))?;
        let user = self.0.service.users.get_user(&admin, id).await?;
        if email.trim() != user.email.as_str() {
            return Err(ApiError::invalid_field(&FieldError::new(
                "email",
                "correct the email on its own (a request with only `email`), then change the rest",
            )));
        }
        let user = self.0.service.users.update_user(&admin, id, &update, &context).await?;
        Ok(Json(UserDto::from(&user)))
    }

    /// One user.
    #[oai(path = "/users/:id", method = "get")]
    async fn get(
        &self,
        auth: SessionAuth,
        /// The user's id.
        id: Path<String>,
        req: &Request,
    ) -> Result<Json<UserProfileDto>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersRead)).await?.admin()?;
        let id = parse_id(&id.0)?;
        let profile = self.0.service.user_profile(&admin, id).await?;
        Ok(Json(UserProfileDto::from(&profile)))
    }

    /// Re-send the invitation of an invited user: a new 72-hour link goes
    /// out by email and every earlier link stops working.
    #[oai(path = "/users/:id/invitation", method = "post")]
    async fn resend_invitation(
        &self,
        auth: SessionAuth,
        /// The user's id.
        id: Path<String>,
        req: &Request,
    ) -> Result<Json<InvitationDto>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersWrite)).await?.admin()?;
        let id = parse_id(&id.0)?;
        let invitation =
            self.0.service.invitations.resend_invitation(&admin, id, &request_context(req)).await?;
        Ok(Json(InvitationDto::from(invitation.status_at(invitation.created_at))))
    }

    /// Withdraw the invitation of an invited user (a stale or mistaken
    /// one): they are deactivated, their link stops working and their seat
    /// is free at once. Reactivating them later makes them invited again.
    #[oai(path = "/users/:id/invitation", method = "delete")]
    async fn withdraw_invitation(
        &self,
        auth: SessionAuth,
        /// The user's id.
        id: Path<String>,
        req: &Request,
    ) -> Result<Json<UserDto>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersWrite)).await?.admin()?;
        let id = parse_id(&id.0)?;
        let user =
            self.0.service.users.withdraw_invitation(&admin, id, &request_context(req)).await?;
        Ok(Json(UserDto::from(&user)))
    }
}
