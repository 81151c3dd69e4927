//! Settings (`/admin/settings`): seats, email with "Send test email", and
//! single sign-on. Handlers translate forms into use-case calls.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use secureai_domain::mail::admin::TestEmailError;
use secureai_domain::mail::settings::{
    EmailSettingsUpdate, PasswordChange, SmtpPassword, SmtpSecurity, SmtpServerUpdate,
};
use secureai_domain::{DisplayName, EmailAddress};
use serde::Deserialize;

use super::account::DoneQuery;
use super::shell::{
    CsrfForm, Nav, Viewer, admin_viewer, blank_to_none, form_admin, see_other, sentence, when,
};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Nav,
    error: Option<String>,
    seats_used: u64,
    seat_limit: String,
    smtp: bool,
    host: String,
    port: String,
    security: &'static str,
    username: String,
    password_set: bool,
    from_address: String,
    from_name: String,
    source: &'static str,
    sso_mode: &'static str,
    /// Settings › Security in a few words.
    mfa_summary: String,
    /// Messages that failed, newest first (a page of them).
    failed: Vec<FailedMail>,
}

/// A failed message as Settings › Email lists it.
struct FailedMail {
    id: String,
    recipient: String,
    kind: String,
    attempts: u32,
    error: String,
    at: String,
}

pub(super) async fn settings_page(
    state: &AppState,
    viewer: &Viewer,
    admin: &secureai_domain::access::Admin,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let usage = match state.service.users.seat_usage(admin).await {
        Ok(usage) => usage,
        Err(e) => return internal(&e),
    };
    let (email, source) = match state.service.mail.email_settings(admin).await {
        Ok(found) => found,
        Err(e) => return internal(&e),
    };
    let sso_mode = match state.service.sso.sso_settings(admin).await {
        Ok((sso, _)) => sso.mode.as_str(),
        Err(e) => return internal(&e),
    };
    let mfa_summary = match state.service.mfa.security_policy().await {
        Ok(policy) => super::security::summary(policy),
        Err(e) => return internal(&e),
    };
    let failed = match state
        .service
        .mail
        .outbox(admin, Some(secureai_domain::mail::models::MailState::Failed), None, 50)
        .await
    {
        Ok(entries) => entries
            .into_iter()
            .map(|e| FailedMail {
                id: e.id.to_string(),
                recipient: e.recipient,
                kind: e.kind.replace('_', " "),
                attempts: e.attempts,
                error: e.last_error.unwrap_or_default(),
                at: when(Some(e.created_at)),
            })
            .collect(),
        Err(secureai_domain::users::errors::SettingsError::Unexpected(e)) => return internal(&e),
        // Reading the outbox asks for no second factor.
        Err(secureai_domain::users::errors::SettingsError::StepUp(e)) => {
            return internal(&secureai_domain::StoreError::msg(e.to_string()));
        }
        // A page of 50 is always within the limit.
        Err(secureai_domain::users::errors::SettingsError::Invalid(e)) => {
            return internal(&secureai_domain::StoreError::msg(e.to_string()));
        }
    };
    let mut nav = viewer.nav("settings");
    nav.notice = notice;
    let smtp = email.smtp.as_ref();
    let template = SettingsPage {
        nav,
        error,
        seats_used: usage.used,
        seat_limit: usage.limit.map(|l| l.to_string()).unwrap_or_default(),
        smtp: smtp.is_some(),
        host: smtp.map(|s| s.host.clone()).unwrap_or_default(),
        port: smtp.map(|s| s.port.to_string()).unwrap_or_else(|| "587".into()),
        security: smtp.map_or("starttls", |s| s.security.as_str()),
        username: smtp.and_then(|s| s.username.clone()).unwrap_or_default(),
        password_set: smtp.is_some_and(|s| s.password.is_some()),
        from_address: email.from_address.to_string(),
        from_name: email.from_name.to_string(),
        source: source.as_str(),
        sso_mode,
        mfa_summary,
        failed,
    };
    page(status, &template)
}

/// `GET /admin/settings`.
#[handler]
pub(crate) async fn settings(
    state: Data<&AppState>,
    req: &Request,
    Query(q): Query<DoneQuery>,
) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let notice = q.done.as_deref().and_then(|d| match d {
        "seats" => Some("The seat limit is saved.".to_owned()),
        "email" => Some("The email settings are saved; the next message uses them.".to_owned()),
        "retried" => Some("The email is queued again and goes out in a moment.".to_owned()),
        "retried-all" => Some("Every failed email is queued again.".to_owned()),
        _ => None,
    });
    settings_page(&state, &viewer, &admin, notice, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(crate) struct SeatsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    limit: String,
}

/// `POST /admin/settings/seats`.
#[handler]
pub(crate) async fn save_seats(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<SeatsForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let limit = match blank_to_none(&form.limit).map(|l| l.parse::<u32>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            let error =
                Some("The seat limit must be a whole number, or empty for no limit.".to_owned());
            return settings_page(
                &state,
                &viewer,
                &admin,
                None,
                error,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    use secureai_domain::users::errors::SettingsError;
    match state.service.users.set_seat_limit(&admin, limit, &request_context(req)).await {
        Ok(_) => see_other("/admin/settings?done=seats"),
        Err(SettingsError::Unexpected(e)) => internal(&e),
        Err(error) => {
            let error = Some(sentence(&error.to_string()));
            settings_page(&state, &viewer, &admin, None, error, StatusCode::UNPROCESSABLE_ENTITY)
                .await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    smtp: Option<String>,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    security: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    clear_password: Option<String>,
    #[serde(default)]
    from_address: String,
    #[serde(default)]
    from_name: String,
}

fn email_update(form: &EmailForm) -> Result<EmailSettingsUpdate, String> {
    let smtp = if form.smtp.is_some() {
        let port = form
            .port
            .trim()
            .parse::<u16>()
            .map_err(|_| "The port must be a number from 1 to 65535.".to_owned())?;
        let security =
            SmtpSecurity::parse(&form.security).ok_or("Choose how the connection is secured.")?;
        let password = if form.clear_password.is_some() {
            PasswordChange::Clear
        } else if form.password.is_empty() {
            PasswordChange::Keep
        } else {
            PasswordChange::Set(
                SmtpPassword::parse(&form.password).map_err(|e| sentence(&e.to_string()))?,
            )
        };
        Some(SmtpServerUpdate {
            host: form.host.trim().to_owned(),
            port,
            security,
            username: blank_to_none(&form.username),
            password,
        })
    } else {
        None
    };
    Ok(EmailSettingsUpdate {
        smtp,
        from_address: EmailAddress::parse(&form.from_address)
            .map_err(|e| sentence(&format!("sender address: {e}")))?,
        from_name: DisplayName::parse(&form.from_name)
            .map_err(|e| sentence(&format!("sender name: {e}")))?,
    })
}

/// `POST /admin/settings/email`.
#[handler]
pub(crate) async fn save_email(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<EmailForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let update = match email_update(&form) {
        Ok(update) => update,
        Err(error) => {
            return settings_page(
                &state,
                &viewer,
                &admin,
                None,
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    use secureai_domain::users::errors::SettingsError;
    match state.service.mail.update_email_settings(&admin, update, &request_context(req)).await {
        Ok(_) => see_other("/admin/settings?done=email"),
        Err(SettingsError::Unexpected(e)) => internal(&e),
        Err(SettingsError::StepUp(e)) => super::step_up::refused(&viewer, e),
        Err(error) => {
            let error = Some(sentence(&error.to_string()));
            settings_page(&state, &viewer, &admin, None, error, StatusCode::UNPROCESSABLE_ENTITY)
                .await
        }
    }
}

/// `POST /admin/settings/email/test`: Send test email, with the result.
#[handler]
pub(crate) async fn test_email(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let to = viewer.principal.user().email.to_string();
    match state.service.mail.send_test_email(&admin, &request_context(req)).await {
        Ok(answer) => {
            let notice =
                Some(format!("A test email was sent to {to}. The server answered: {answer}"));
            settings_page(&state, &viewer, &admin, notice, None, StatusCode::OK).await
        }
        Err(TestEmailError::NotDelivered(reason)) => {
            let error = Some(format!("The test email to {to} was not delivered: {reason}"));
            settings_page(&state, &viewer, &admin, None, error, StatusCode::OK).await
        }
        Err(TestEmailError::Unexpected(e)) => internal(&e),
    }
}

// ---------------------------------------------------------------- SSO

#[derive(Template)]
#[template(path = "sso_settings.html")]
struct SsoPage {
    nav: Nav,
    error: Option<String>,
    mode: &'static str,
    issuer_url: String,
    client_id: String,
    secret_set: bool,
    scopes: String,
    idp_metadata_url: String,
    idp_metadata_xml: String,
    sp_entity_id: String,
    email_attribute: String,
    allow_idp_initiated: bool,
    trust_email_for_linking: bool,
    jit: bool,
    skew: u32,
    redirect_uri: String,
    metadata_url: String,
}

fn sso_page(
    state: &AppState,
    viewer: &Viewer,
    sso: &secureai_domain::sso::settings::SsoSettings,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    use secureai_domain::sso::settings::SsoMode;
    let mut nav = viewer.nav("settings");
    nav.notice = notice;
    let (oidc, saml) = match &sso.mode {
        SsoMode::Oidc(o) => (Some(o), None),
        SsoMode::Saml(s) => (None, Some(s)),
        SsoMode::None => (None, None),
    };
    let template = SsoPage {
        nav,
        error,
        mode: sso.mode.as_str(),
        issuer_url: oidc.map(|o| o.issuer_url.clone()).unwrap_or_default(),
        client_id: oidc.map(|o| o.client_id.clone()).unwrap_or_default(),
        secret_set: oidc.is_some_and(|o| o.client_secret.is_some()),
        scopes: oidc.map_or_else(|| "email profile".to_owned(), |o| o.scopes.join(" ")),
        idp_metadata_url: saml.and_then(|s| s.idp_metadata_url.clone()).unwrap_or_default(),
        idp_metadata_xml: saml.map(|s| s.idp_metadata_xml.clone()).unwrap_or_default(),
        sp_entity_id: saml.map_or_else(|| state.saml_metadata_url(), |s| s.sp_entity_id.clone()),
        email_attribute: saml.and_then(|s| s.email_attribute.clone()).unwrap_or_default(),
        allow_idp_initiated: saml.is_some_and(|s| s.allow_idp_initiated),
        trust_email_for_linking: saml.is_some_and(|s| s.trust_email_for_linking),
        jit: sso.jit_provisioning,
        skew: sso.clock_skew_secs,
        redirect_uri: state.oidc_redirect_uri(),
        metadata_url: state.saml_metadata_url(),
    };
    page(status, &template)
}

/// `GET /admin/settings/sso`.
#[handler]
pub(crate) async fn sso_settings(
    state: Data<&AppState>,
    req: &Request,
    Query(q): Query<DoneQuery>,
) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let sso = match state.service.sso.sso_settings(&admin).await {
        Ok((sso, _)) => sso,
        Err(e) => return internal(&e),
    };
    let notice = q.done.is_some().then(|| "The SSO settings are saved and checked.".to_owned());
    sso_page(&state, &viewer, &sso, notice, None, StatusCode::OK)
}

#[derive(Deserialize)]
pub(crate) struct SsoForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    issuer_url: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    clear_secret: Option<String>,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    idp_metadata_url: String,
    #[serde(default)]
    idp_metadata_xml: String,
    #[serde(default)]
    sp_entity_id: String,
    #[serde(default)]
    email_attribute: String,
    #[serde(default)]
    allow_idp_initiated: Option<String>,
    #[serde(default)]
    trust_email_for_linking: Option<String>,
    #[serde(default)]
    jit: Option<String>,
    #[serde(default)]
    skew: String,
}

fn sso_update(form: &SsoForm) -> Result<secureai_domain::sso::settings::SsoSettingsUpdate, String> {
    use secureai_domain::sso::settings::{
        ClientSecret, OidcSettings, SamlSettings, SecretChange, SsoMode, SsoSettings,
        SsoSettingsUpdate,
    };
    let mut client_secret = SecretChange::Keep;
    let mode = match form.mode.as_str() {
        "oidc" => {
            client_secret = if form.clear_secret.is_some() {
                SecretChange::Clear
            } else if form.client_secret.is_empty() {
                SecretChange::Keep
            } else {
                SecretChange::Set(
                    ClientSecret::parse(&form.client_secret)
                        .map_err(|e| sentence(&e.to_string()))?,
                )
            };
            SsoMode::Oidc(OidcSettings {
                issuer_url: form.issuer_url.trim().to_owned(),
                client_id: form.client_id.trim().to_owned(),
                client_secret: None,
                scopes: form.scopes.split_whitespace().map(str::to_owned).collect(),
            })
        }
        "saml" => SsoMode::Saml(SamlSettings {
            idp_metadata_url: blank_to_none(&form.idp_metadata_url),
            idp_metadata_xml: if blank_to_none(&form.idp_metadata_url).is_some() {
                String::new()
            } else {
                form.idp_metadata_xml.trim().to_owned()
            },
            sp_entity_id: form.sp_entity_id.trim().to_owned(),
            email_attribute: blank_to_none(&form.email_attribute),
            allow_idp_initiated: form.allow_idp_initiated.is_some(),
            trust_email_for_linking: form.trust_email_for_linking.is_some(),
        }),
        _ => SsoMode::None,
    };
    let skew = match blank_to_none(&form.skew) {
        None => 60,
        Some(text) => text
            .parse::<u32>()
            .map_err(|_| "The clock skew must be a number of seconds.".to_owned())?,
    };
    Ok(SsoSettingsUpdate {
        settings: SsoSettings { mode, jit_provisioning: form.jit.is_some(), clock_skew_secs: skew },
        client_secret,
    })
}

/// `POST /admin/settings/sso`: saves after checking against the provider.
#[handler]
pub(crate) async fn save_sso(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<SsoForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let current = match state.service.sso.sso_settings(&admin).await {
        Ok((sso, _)) => sso,
        Err(e) => return internal(&e),
    };
    let update = match sso_update(&form) {
        Ok(update) => update,
        Err(error) => {
            return sso_page(
                &state,
                &viewer,
                &current,
                None,
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    use secureai_domain::sso::errors::SsoSettingsError;
    match state.service.sso.update_sso_settings(&admin, update.clone(), &request_context(req)).await
    {
        Ok(_) => see_other("/admin/settings/sso?done=1"),
        Err(SsoSettingsError::Unexpected(e)) => internal(&e),
        Err(SsoSettingsError::StepUp(e)) => super::step_up::refused(&viewer, e),
        Err(SsoSettingsError::Invalid(field)) => {
            // Show what was typed, with the reason.
            let error = Some(sentence(&field.to_string()));
            sso_page(
                &state,
                &viewer,
                &update.settings,
                None,
                error,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}
