//! The settings port: key/value rows, read on use so every instance agrees.

use async_trait::async_trait;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, TransactionTrait};
use secureai_domain::mail::settings::{EmailSettings, SmtpPassword, SmtpSecurity, SmtpServer};
use secureai_domain::settings::ports::{SettingsRepository, StoredSeatLimit};
use secureai_domain::{AuditEvent, DisplayName, EmailAddress, StoreError};
use serde::{Deserialize, Serialize};

use crate::SqlStore;
use crate::audit::write_audit;
use crate::convert::db;
use crate::entities::settings;

const SEAT_LIMIT: &str = "seat_limit";
const UNLIMITED: &str = "unlimited";
const EMAIL: &str = "email";

/// Email settings as stored (JSON). The SMTP password has to be stored to
/// be used; it is kept only here and never leaves through the API or logs.
#[derive(Serialize, Deserialize)]
struct StoredEmail {
    smtp: Option<StoredSmtp>,
    from_address: String,
    from_name: String,
}

#[derive(Serialize, Deserialize)]
struct StoredSmtp {
    host: String,
    port: u16,
    security: String,
    username: Option<String>,
    password: Option<String>,
}

fn email_to_json(settings: &EmailSettings) -> String {
    let stored = StoredEmail {
        smtp: settings.smtp.as_ref().map(|s| StoredSmtp {
            host: s.host.clone(),
            port: s.port,
            security: s.security.as_str().to_owned(),
            username: s.username.clone(),
            password: s.password.as_ref().map(|p| p.expose().to_owned()),
        }),
        from_address: settings.from_address.to_string(),
        from_name: settings.from_name.to_string(),
    };
    // Strings and integers only: serialising cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

fn email_from_json(raw: &str) -> Result<EmailSettings, StoreError> {
    let invalid = |what: &str| StoreError::msg(format!("stored email settings: {what} is invalid"));
    let stored: StoredEmail = serde_json::from_str(raw)
        .map_err(|e| StoreError::new("stored email settings are unreadable", e))?;
    let smtp = match stored.smtp {
        None => None,
        Some(s) => Some(SmtpServer {
            host: s.host,
            port: s.port,
            security: SmtpSecurity::parse(&s.security).ok_or_else(|| invalid("security"))?,
            username: s.username,
            password: s
                .password
                .map(|p| SmtpPassword::parse(&p).map_err(|_| invalid("password")))
                .transpose()?,
        }),
    };
    Ok(EmailSettings {
        smtp,
        from_address: EmailAddress::parse(&stored.from_address)
            .map_err(|_| invalid("from_address"))?,
        from_name: DisplayName::parse(&stored.from_name).map_err(|_| invalid("from_name"))?,
    })
}

#[async_trait]
impl SettingsRepository for SqlStore {
    async fn seat_limit(&self) -> Result<StoredSeatLimit, StoreError> {
        let Some(row) = settings::Entity::find_by_id(SEAT_LIMIT.to_owned())
            .one(&self.db)
            .await
            .map_err(db("reading the seat limit"))?
        else {
            return Ok(None);
        };
        if row.value == UNLIMITED {
            return Ok(Some(None));
        }
        row.value.parse::<u32>().map(|n| Some(Some(n))).map_err(|e| {
            StoreError::new(format!("stored seat limit `{}` is invalid", row.value), e)
        })
    }

    async fn set_seat_limit(
        &self,
        limit: Option<u32>,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let value = limit.map_or_else(|| UNLIMITED.to_owned(), |n| n.to_string());
        self.put(SEAT_LIMIT, value, audit).await
    }

    async fn email_settings(&self) -> Result<Option<EmailSettings>, StoreError> {
        settings::Entity::find_by_id(EMAIL.to_owned())
            .one(&self.db)
            .await
            .map_err(db("reading the email settings"))?
            .map(|row| email_from_json(&row.value))
            .transpose()
    }

    async fn set_email_settings(
        &self,
        settings: &EmailSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.put(EMAIL, email_to_json(settings), audit).await
    }
}

impl SqlStore {
    /// Inserts or replaces one setting with its audit event, atomically.
    async fn put(&self, key: &str, value: String, audit: AuditEvent) -> Result<(), StoreError> {
        let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
        settings::Entity::insert(settings::ActiveModel {
            key: Set(key.to_owned()),
            value: Set(value),
        })
        .on_conflict(
            OnConflict::column(settings::Column::Key)
                .update_column(settings::Column::Value)
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db("storing a setting"))?;
        write_audit(&txn, &audit).await?;
        txn.commit().await.map_err(db("committing a setting"))
    }
}
