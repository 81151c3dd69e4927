//! The settings port: key/value rows, read on use so every instance agrees.

use async_trait::async_trait;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait, TransactionTrait};
use secureai_domain::mail::settings::{EmailSettings, SmtpPassword, SmtpSecurity, SmtpServer};
use secureai_domain::mfa::policy::{AdminMfa, SecurityPolicy, UserMfa};
use secureai_domain::settings::ports::{SettingsRepository, StoredSeatLimit};
use secureai_domain::sso::settings::{
    ClientSecret, OidcSettings, SamlSettings, SsoMode, SsoSettings,
};
use secureai_domain::{AuditEvent, DisplayName, EmailAddress, StoreError};
use serde::{Deserialize, Serialize};

use crate::audit::write_audit;
use crate::convert::db;
use crate::entities::settings;
use crate::sealing::{Sealer, SecretKey};
use crate::{SqlStore, retry_transaction};

const SEAT_LIMIT: &str = "seat_limit";
const UNLIMITED: &str = "unlimited";
const EMAIL: &str = "email";
const SSO: &str = "sso";
const PROVISIONING: &str = "provisioning";
const SECURITY: &str = "security";

/// Settings › Provisioning as stored (JSON).
#[derive(Serialize, Deserialize)]
struct StoredProvisioning {
    admin_group: Option<uuid::Uuid>,
    send_access_email: bool,
}

/// Settings › Security as stored (JSON, the API's names).
#[derive(Serialize, Deserialize)]
struct StoredSecurity {
    admin_mfa: String,
    user_mfa: String,
}

/// SSO settings as stored (JSON). The client secret has to be stored to be
/// used; it never leaves through the API, the audit log or logs.
#[derive(Serialize, Deserialize)]
struct StoredSso {
    mode: String,
    jit_provisioning: bool,
    clock_skew_secs: u32,
    oidc: Option<StoredOidc>,
    saml: Option<StoredSaml>,
}

#[derive(Serialize, Deserialize)]
struct StoredOidc {
    issuer_url: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredSaml {
    idp_metadata_url: Option<String>,
    idp_metadata_xml: String,
    sp_entity_id: String,
    email_attribute: Option<String>,
    allow_idp_initiated: bool,
    /// Absent in settings saved before it existed: off.
    #[serde(default)]
    trust_email_for_linking: bool,
}

/// What the sealed secrets are sealed for.
const CLIENT_SECRET: &str = "settings.sso.client_secret";
const SMTP_PASSWORD: &str = "settings.email.password";
/// The settings row holding the key check value.
pub(crate) const KEY_CHECK: &str = "secret_key_check";

fn sso_to_json(sealer: &Sealer, settings: &SsoSettings) -> String {
    let (oidc, saml) = match &settings.mode {
        SsoMode::None => (None, None),
        SsoMode::Oidc(o) => (
            Some(StoredOidc {
                issuer_url: o.issuer_url.clone(),
                client_id: o.client_id.clone(),
                client_secret: o
                    .client_secret
                    .as_ref()
                    .map(|s| sealer.seal(CLIENT_SECRET, s.expose())),
                scopes: o.scopes.clone(),
            }),
            None,
        ),
        SsoMode::Saml(s) => (
            None,
            Some(StoredSaml {
                idp_metadata_url: s.idp_metadata_url.clone(),
                idp_metadata_xml: s.idp_metadata_xml.clone(),
                sp_entity_id: s.sp_entity_id.clone(),
                email_attribute: s.email_attribute.clone(),
                allow_idp_initiated: s.allow_idp_initiated,
                trust_email_for_linking: s.trust_email_for_linking,
            }),
        ),
    };
    let stored = StoredSso {
        mode: settings.mode.as_str().to_owned(),
        jit_provisioning: settings.jit_provisioning,
        clock_skew_secs: settings.clock_skew_secs,
        oidc,
        saml,
    };
    // Strings, booleans and integers only: serialising cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

fn sso_from_json(sealer: &Sealer, raw: &str) -> Result<SsoSettings, StoreError> {
    let invalid = |what: &str| StoreError::msg(format!("stored SSO settings: {what} is invalid"));
    let stored: StoredSso = serde_json::from_str(raw)
        .map_err(|e| StoreError::new("stored SSO settings are unreadable", e))?;
    let mode = match (stored.mode.as_str(), stored.oidc, stored.saml) {
        ("none", _, _) => SsoMode::None,
        ("oidc", Some(o), _) => SsoMode::Oidc(OidcSettings {
            issuer_url: o.issuer_url,
            client_id: o.client_id,
            client_secret: o
                .client_secret
                .map(|s| {
                    let opened = sealer.open(CLIENT_SECRET, &s)?;
                    ClientSecret::parse(&opened).map_err(|_| invalid("client_secret"))
                })
                .transpose()?,
            scopes: o.scopes,
        }),
        ("saml", _, Some(s)) => SsoMode::Saml(SamlSettings {
            idp_metadata_url: s.idp_metadata_url,
            idp_metadata_xml: s.idp_metadata_xml,
            sp_entity_id: s.sp_entity_id,
            email_attribute: s.email_attribute,
            allow_idp_initiated: s.allow_idp_initiated,
            trust_email_for_linking: s.trust_email_for_linking,
        }),
        _ => return Err(invalid("mode")),
    };
    Ok(SsoSettings {
        mode,
        jit_provisioning: stored.jit_provisioning,
        clock_skew_secs: stored.clock_skew_secs,
    })
}

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

fn email_to_json(sealer: &Sealer, settings: &EmailSettings) -> String {
    let stored = StoredEmail {
        smtp: settings.smtp.as_ref().map(|s| StoredSmtp {
            host: s.host.clone(),
            port: s.port,
            security: s.security.as_str().to_owned(),
            username: s.username.clone(),
            password: s.password.as_ref().map(|p| sealer.seal(SMTP_PASSWORD, p.expose())),
        }),
        from_address: settings.from_address.to_string(),
        from_name: settings.from_name.to_string(),
    };
    // Strings and integers only: serialising cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

fn email_from_json(sealer: &Sealer, raw: &str) -> Result<EmailSettings, StoreError> {
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
                .map(|p| {
                    let opened = sealer.open(SMTP_PASSWORD, &p)?;
                    SmtpPassword::parse(&opened).map_err(|_| invalid("password"))
                })
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

    async fn provisioning_settings(
        &self,
    ) -> Result<secureai_domain::provisioning::models::ProvisioningSettings, StoreError> {
        let Some(row) = settings::Entity::find_by_id(PROVISIONING.to_owned())
            .one(&self.db)
            .await
            .map_err(db("reading the provisioning settings"))?
        else {
            return Ok(Default::default());
        };
        let stored: StoredProvisioning = serde_json::from_str(&row.value)
            .map_err(|e| StoreError::new("the stored provisioning settings are unreadable", e))?;
        Ok(secureai_domain::provisioning::models::ProvisioningSettings {
            admin_group: stored.admin_group,
            send_access_email: stored.send_access_email,
        })
    }

    async fn set_provisioning_settings(
        &self,
        settings: &secureai_domain::provisioning::models::ProvisioningSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let stored = StoredProvisioning {
            admin_group: settings.admin_group,
            send_access_email: settings.send_access_email,
        };
        let value = serde_json::to_string(&stored)
            .map_err(|e| StoreError::new("writing the provisioning settings", e))?;
        self.put(PROVISIONING, value, audit).await
    }

    async fn security_policy(&self) -> Result<SecurityPolicy, StoreError> {
        // Read by every sign-in: without the pool's thread hop on SQLite.
        let select = settings::Entity::find_by_id(SECURITY.to_owned())
            .select_only()
            .column(settings::Column::Value)
            .build(self.backend());
        let Some(value) =
            self.read_column::<String>(select, "reading the security settings").await?.pop()
        else {
            return Ok(SecurityPolicy::default());
        };
        let unreadable = || StoreError::msg("the stored security settings are unreadable");
        let stored: StoredSecurity = serde_json::from_str(&value).map_err(|_| unreadable())?;
        Ok(SecurityPolicy {
            admin_mfa: AdminMfa::parse(&stored.admin_mfa).ok_or_else(unreadable)?,
            user_mfa: UserMfa::parse(&stored.user_mfa).ok_or_else(unreadable)?,
        })
    }

    async fn set_security_policy(
        &self,
        policy: &SecurityPolicy,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let stored = StoredSecurity {
            admin_mfa: policy.admin_mfa.as_str().to_owned(),
            user_mfa: policy.user_mfa.as_str().to_owned(),
        };
        let value = serde_json::to_string(&stored)
            .map_err(|e| StoreError::new("writing the security settings", e))?;
        self.put(SECURITY, value, audit).await
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
            .map(|row| email_from_json(&self.sealer, &row.value))
            .transpose()
    }

    async fn set_email_settings(
        &self,
        settings: &EmailSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.put(EMAIL, email_to_json(&self.sealer, settings), audit).await
    }

    async fn sso_settings(&self) -> Result<Option<SsoSettings>, StoreError> {
        settings::Entity::find_by_id(SSO.to_owned())
            .one(&self.db)
            .await
            .map_err(db("reading the SSO settings"))?
            .map(|row| sso_from_json(&self.sealer, &row.value))
            .transpose()
    }

    async fn set_sso_settings(
        &self,
        settings: &SsoSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.put(SSO, sso_to_json(&self.sealer, settings), audit).await
    }
}

impl SqlStore {
    /// Inserts or replaces one setting with its audit event, atomically.
    async fn put(&self, key: &str, value: String, audit: AuditEvent) -> Result<(), StoreError> {
        let value = &value;
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            settings::Entity::insert(settings::ActiveModel {
                key: Set(key.to_owned()),
                value: Set(value.clone()),
            })
            .on_conflict(
                OnConflict::column(settings::Column::Key)
                    .update_column(settings::Column::Value)
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(db("storing a setting"))?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a setting"))
        })
        .await
    }
}

/// The value sealed as the key check.
const KEY_CHECK_VALUE: &str = "secureai secret key check";

/// What [`SqlStore::check_secret_key`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// The database held no check value: one was recorded with this key.
    Recorded,
    /// The database's check value opens with this key.
    Matches,
}

impl SqlStore {
    /// Whether the database holds a key check value: secrets in it are
    /// sealed with some key, which must be the one given.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn has_key_check(&self) -> Result<bool, StoreError> {
        Ok(settings::Entity::find_by_id(KEY_CHECK.to_owned())
            .one(&self.db)
            .await
            .map_err(db("reading the secret key check"))?
            .is_some())
    }

    /// Checks this store's secret key against the check value in the
    /// database, recording one if there is none.
    ///
    /// # Errors
    /// [`StoreError`] saying so when the key is not the one the database's
    /// secrets were sealed with.
    pub async fn check_secret_key(&self) -> Result<KeyCheck, StoreError> {
        let row = settings::Entity::find_by_id(KEY_CHECK.to_owned())
            .one(&self.db)
            .await
            .map_err(db("reading the secret key check"))?;
        match row {
            Some(row) => match self.sealer.open(KEY_CHECK, &row.value) {
                Ok(value) if value == KEY_CHECK_VALUE && Sealer::is_sealed(&row.value) => {
                    Ok(KeyCheck::Matches)
                }
                _ => Err(StoreError::msg(
                    "the secret key is not the one this database's secrets were sealed with: set \
                     SECUREAI_SECRET_KEY (or restore the key file) to the key in use so far",
                )),
            },
            None => {
                let value = self.sealer.seal(KEY_CHECK, KEY_CHECK_VALUE);
                let inserted = settings::Entity::insert(settings::ActiveModel {
                    key: Set(KEY_CHECK.to_owned()),
                    value: Set(value),
                })
                .exec_without_returning(&self.db)
                .await;
                match inserted {
                    Ok(_) => {}
                    // Another instance recorded its own at the same time.
                    Err(e) if crate::is_unique_violation(&e) => {}
                    Err(e) => return Err(db("recording the secret key check")(e)),
                }
                Box::pin(self.check_secret_key()).await.map(|_| KeyCheck::Recorded)
            }
        }
    }

    /// Seals secrets written in clear before sealing existed: the SMTP
    /// password, the OIDC client secret and the payloads of messages not
    /// yet sent. Returns how many values it sealed.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn seal_plaintext(&self) -> Result<u64, StoreError> {
        self.reseal(&self.sealer, false).await
    }

    /// Re-seals every sealed secret under `new_key`, in one transaction;
    /// returns how many values. The running store keeps the old key: the
    /// caller swaps the key and restarts.
    ///
    /// # Errors
    /// [`StoreError`] on failure (nothing changed).
    pub async fn rotate_secret_key(&self, new_key: &SecretKey) -> Result<u64, StoreError> {
        let sealer = Sealer::new(new_key);
        self.reseal(&sealer, true).await
    }

    /// Writes every secret sealed by `target`: all of them (`all`), or
    /// only those still in clear.
    async fn reseal(&self, target: &Sealer, all: bool) -> Result<u64, StoreError> {
        let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
        let mut count = 0;
        for key in [EMAIL, SSO] {
            let Some(row) = settings::Entity::find_by_id(key.to_owned())
                .one(&txn)
                .await
                .map_err(db("reading settings"))?
            else {
                continue;
            };
            let (current, raw) = (&*self.sealer, row.value.as_str());
            let value = if key == EMAIL {
                resealed::<StoredEmail>(raw, all, || {
                    Ok(email_to_json(target, &email_from_json(current, raw)?))
                })?
            } else {
                resealed::<StoredSso>(raw, all, || {
                    Ok(sso_to_json(target, &sso_from_json(current, raw)?))
                })?
            };
            if let Some(value) = value {
                settings::Entity::update_many()
                    .col_expr(settings::Column::Value, Expr::value(value))
                    .filter(settings::Column::Key.eq(key))
                    .exec(&txn)
                    .await
                    .map_err(db("sealing settings"))?;
                count += 1;
            }
        }
        count += crate::outbox::reseal_payloads(&txn, &self.sealer, target, all).await?;
        if all {
            settings::Entity::update_many()
                .col_expr(
                    settings::Column::Value,
                    Expr::value(target.seal(KEY_CHECK, KEY_CHECK_VALUE)),
                )
                .filter(settings::Column::Key.eq(KEY_CHECK))
                .exec(&txn)
                .await
                .map_err(db("re-sealing the key check"))?;
        }
        txn.commit().await.map_err(db("committing sealed secrets"))?;
        Ok(count)
    }
}

/// Stored settings holding one sealed secret.
trait WithSecret: serde::de::DeserializeOwned {
    /// The secret as stored (sealed, or in clear from before sealing).
    fn secret(&self) -> Option<&str>;
}

impl WithSecret for StoredEmail {
    fn secret(&self) -> Option<&str> {
        self.smtp.as_ref().and_then(|s| s.password.as_deref())
    }
}

impl WithSecret for StoredSso {
    fn secret(&self) -> Option<&str> {
        self.oidc.as_ref().and_then(|o| o.client_secret.as_deref())
    }
}

/// `raw` written again by `rewrite` if its secret is to be sealed: every
/// one (`all`), or one still in clear.
fn resealed<S: WithSecret>(
    raw: &str,
    all: bool,
    rewrite: impl FnOnce() -> Result<String, StoreError>,
) -> Result<Option<String>, StoreError> {
    let stored: S = serde_json::from_str(raw)
        .map_err(|e| StoreError::new("stored settings are unreadable", e))?;
    if stored.secret().is_none_or(|s| Sealer::is_sealed(s) && !all) {
        return Ok(None);
    }
    rewrite().map(Some)
}
