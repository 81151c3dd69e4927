//! The JSON API under `/api/v1`, one file per resource.

pub(crate) mod analytics;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod imports;
pub(crate) mod invitations;
pub(crate) mod mail;
pub(crate) mod me;
pub(crate) mod mfa;
pub(crate) mod passkeys;
pub(crate) mod passwords;
pub(crate) mod settings;
pub(crate) mod sso;
pub(crate) mod tokens;
pub(crate) mod users;
pub(crate) mod webhooks;

use poem_openapi::Tags;

/// Groups of operations in the API docs.
#[derive(Tags)]
pub(crate) enum ApiTags {
    /// Signing in and out; the signed-in user.
    Auth,
    /// Managing users (admins only).
    Users,
    /// Accepting invitations.
    Invitations,
    /// Instance settings (admins only).
    Settings,
    /// The audit log (admins only).
    Audit,
    /// The mail outbox (admins only).
    Mail,
    /// Usage analytics: service tokens and reporting (services), dashboards
    /// (admins).
    Analytics,
}
