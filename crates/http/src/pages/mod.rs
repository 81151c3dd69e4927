//! Server-rendered pages that must work from a plain browser: first-admin
//! setup and accepting an invitation. Page handlers only translate forms to
//! use-case calls; every rule lives in the domain.

mod account;
mod analytics;
mod api_tokens;
mod audit;
mod import;
mod links;
mod mail;
mod passkeys;
mod profile;
mod provisioning;
mod second_factor;
mod security;
mod settings;
mod setup;
mod shell;
mod sign_in;
mod sso;
mod step_up;
mod user_actions;
mod users;
mod webhooks;

use askama::Template;
use poem::http::{StatusCode, header};
use poem::middleware::CookieJarManager;
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};

pub(crate) fn routes() -> Route {
    Route::new()
        .at("/setup", get(setup::show).post(setup::submit))
        .at("/invitations/accept", get(links::show_invitation).post(links::submit_invitation))
        .at("/password-resets/complete", get(links::show_reset).post(links::submit_reset))
        .at("/auth/oidc/login", get(sso::oidc_login))
        .at("/auth/oidc/callback", get(sso::oidc_callback.with(CookieJarManager::new())))
        .at("/auth/saml/login", get(sso::saml_login))
        .at("/auth/saml/acs", poem::post(sso::saml_acs.with(CookieJarManager::new())))
        .at("/auth/saml/metadata", get(sso::saml_metadata))
        .at("/static/app.css", get(stylesheet))
        .at("/static/passkeys.js", get(passkeys::script))
        .at("/favicon.ico", get(favicon))
        .at("/sign-in", get(sign_in::show_sign_in).post(sign_in::submit_sign_in))
        .at("/sign-in/code", poem::post(sign_in::submit_code))
        .at("/sign-out", poem::post(sign_in::sign_out.with(CookieJarManager::new())))
        .at("/admin/users", get(users::users.with(CookieJarManager::new())))
        .at(
            "/admin/users/new",
            get(users::new_user.with(CookieJarManager::new()))
                .post(users::create_user.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at(
            "/admin/users/import",
            get(import::show.with(CookieJarManager::new()))
                .post(import::submit.with(CookieJarManager::new())),
        )
        .at(
            "/admin/users/:id",
            get(profile::user_profile.with(CookieJarManager::new()))
                .post(profile::save_user.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at(
            "/admin/users/:id/email",
            poem::post(profile::change_email.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at(
            "/admin/users/:id/:action",
            get(user_actions::confirm_action.with(CookieJarManager::new()))
                .post(user_actions::do_action.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at("/me", get(account::me.with(CookieJarManager::new())))
        .at("/me/name", poem::post(account::save_name.with(CookieJarManager::new())))
        .at("/me/password", poem::post(account::change_password.with(CookieJarManager::new())))
        .at("/me/sessions", poem::post(account::sign_out_everywhere.with(CookieJarManager::new())))
        .at("/me/second-factor", get(second_factor::show.with(CookieJarManager::new())))
        .at(
            "/me/second-factor/app",
            poem::post(second_factor::start_app.with(CookieJarManager::new())),
        )
        .at(
            "/me/second-factor/confirm",
            poem::post(
                second_factor::confirm_app.with(step_up::StepUp).with(CookieJarManager::new()),
            ),
        )
        .at(
            "/me/second-factor/recovery-codes",
            poem::post(
                second_factor::new_recovery_codes
                    .with(step_up::StepUp)
                    .with(CookieJarManager::new()),
            ),
        )
        .at(
            "/me/second-factor/remove",
            poem::post(
                second_factor::remove_app.with(step_up::StepUp).with(CookieJarManager::new()),
            ),
        )
        .at(
            "/me/second-factor/passkeys/options",
            poem::post(passkeys::options.with(CookieJarManager::new())),
        )
        .at(
            "/me/second-factor/passkeys",
            poem::post(passkeys::add.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at(
            "/me/second-factor/passkeys/:id/rename",
            poem::post(passkeys::rename.with(CookieJarManager::new())),
        )
        .at(
            "/me/second-factor/passkeys/:id/remove",
            poem::post(passkeys::remove.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at("/admin/audit", get(audit::audit.with(CookieJarManager::new())))
        .at("/admin/analytics", get(analytics::analytics.with(CookieJarManager::new())))
        .at(
            "/admin/settings/service-tokens",
            get(analytics::service_tokens.with(CookieJarManager::new())).post(
                analytics::save_service_token.with(step_up::StepUp).with(CookieJarManager::new()),
            ),
        )
        .at("/admin/settings", get(settings::settings.with(CookieJarManager::new())))
        .at(
            "/admin/settings/api-tokens",
            get(api_tokens::show.with(CookieJarManager::new()))
                .post(api_tokens::create.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at(
            "/admin/settings/webhooks",
            get(webhooks::show.with(CookieJarManager::new()))
                .post(webhooks::create.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at(
            "/admin/settings/webhooks/:id",
            get(webhooks::show_deliveries.with(CookieJarManager::new())),
        )
        .at(
            "/admin/settings/webhooks/:id/:action",
            poem::post(webhooks::act.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at(
            "/admin/settings/webhooks/:id/deliveries/:delivery/retry",
            poem::post(webhooks::retry.with(CookieJarManager::new())),
        )
        .at(
            "/admin/settings/api-tokens/:id/revoke",
            poem::post(api_tokens::revoke.with(CookieJarManager::new())),
        )
        .at(
            "/admin/settings/provisioning",
            get(provisioning::show.with(CookieJarManager::new())).post(
                provisioning::create_token.with(step_up::StepUp).with(CookieJarManager::new()),
            ),
        )
        .at(
            "/admin/settings/provisioning/settings",
            poem::post(
                provisioning::save_settings.with(step_up::StepUp).with(CookieJarManager::new()),
            ),
        )
        .at(
            "/admin/settings/security",
            get(security::show.with(CookieJarManager::new()))
                .post(security::save.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at(
            "/admin/settings/sso",
            get(settings::sso_settings.with(CookieJarManager::new()))
                .post(settings::save_sso.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at(
            "/admin/outbox/retry-all",
            poem::post(mail::retry_all_mail.with(CookieJarManager::new())),
        )
        .at("/admin/outbox/:id/retry", poem::post(mail::retry_mail.with(CookieJarManager::new())))
        .at("/admin/settings/seats", poem::post(settings::save_seats.with(CookieJarManager::new())))
        .at(
            "/admin/settings/email",
            poem::post(settings::save_email.with(step_up::StepUp).with(CookieJarManager::new())),
        )
        .at(
            "/admin/settings/email/test",
            poem::post(settings::test_email.with(CookieJarManager::new())),
        )
        .at("/", get(sign_in::home.with(CookieJarManager::new())))
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    pub heading: &'a str,
    pub message: &'a str,
    pub link: Option<(&'a str, &'a str)>,
}

/// Renders a page with the headers every page gets: no caching (pages can
/// carry tokens), no referrer (so a token in the address never leaks), no
/// framing, and a strict content security policy.
pub(crate) fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => html
            .with_status(status)
            .with_content_type("text/html; charset=utf-8")
            .with_header(header::CACHE_CONTROL, "no-store")
            .with_header(header::REFERRER_POLICY, "no-referrer")
            .with_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .with_header(header::X_FRAME_OPTIONS, "DENY")
            .with_header(
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "a page template failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub(crate) fn message(
    status: StatusCode,
    heading: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> Response {
    page(status, &MessagePage { heading, message, link })
}

/// The page for an unexpected failure; the cause is logged once.
pub(crate) fn internal(error: &secureai_domain::StoreError) -> Response {
    if let Some(seconds) = error.retry_after_secs() {
        crate::errors::log_contention(error);
        let mut response = message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "SecureAI is busy right now. Please try again in a few seconds.",
            None,
        );
        if let Ok(value) = poem::http::HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let _ = crate::errors::ApiError::internal(error);
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The error was logged. Please try again in a moment.",
        None,
    )
}

/// The tab icon (a 32 × 32 shield in the accent colour), which browsers ask
/// for on every page.
#[handler]
fn favicon() -> Response {
    include_bytes!("../../templates/favicon.ico")
        .as_slice()
        .with_content_type("image/x-icon")
        .with_header(header::CACHE_CONTROL, "public, max-age=86400")
        .into_response()
}

#[handler]
fn stylesheet() -> Response {
    include_str!("../../templates/app.css")
        .with_content_type("text/css; charset=utf-8")
        .with_header(header::CACHE_CONTROL, "public, max-age=3600")
        .into_response()
}
