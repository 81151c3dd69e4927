//! The outbox port: messages queued with the change that caused them,
//! claimed with a lease (so several workers, in one or several instances,
//! never send one message twice at once), then marked sent or failed.
//!
//! The payload holds the invitation link's token until the message is sent,
//! sealed under the operator's key (`sealing.rs`); marking it sent erases
//! the payload.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use secureai_domain::mail::models::INVITATION_KINDS;
use secureai_domain::mail::models::{
    MailMessage, MailState, OutboxEntry, OutgoingMail, QueuedMail,
};
use secureai_domain::mail::ports::OutboxRepository;
use secureai_domain::{AuditEvent, DisplayName, EmailAddress, PlainToken, StoreError, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::write_audit;
use crate::convert::{db, instant, micros};
use crate::entities::outbox;
use crate::sealing::Sealer;
use crate::{SqlStore, retry_transaction};

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Payload {
    Invitation { token: String, expires_at: i64, invited_by: Option<String> },
    AccessReady { invited_by: Option<String> },
    PasswordReset { token: String, expires_at: i64 },
    Test,
    SecondFactorReset { reset_by: Option<String>, required: bool },
    RecoveryCodeUsed { codes_left: u32 },
}

/// What a payload is sealed for: its own row.
fn payload_purpose(id: &str) -> String {
    format!("outbox.payload:{id}")
}

pub(crate) fn mail_to_row(sealer: &Sealer, mail: &OutgoingMail) -> outbox::ActiveModel {
    let payload = match &mail.message {
        MailMessage::Invitation { token, expires_at, invited_by } => Payload::Invitation {
            token: token.expose().to_owned(),
            expires_at: micros(*expires_at),
            invited_by: invited_by.clone(),
        },
        MailMessage::AccessReady { invited_by } => {
            Payload::AccessReady { invited_by: invited_by.clone() }
        }
        MailMessage::PasswordReset { token, expires_at } => Payload::PasswordReset {
            token: token.expose().to_owned(),
            expires_at: micros(*expires_at),
        },
        MailMessage::Test => Payload::Test,
        MailMessage::SecondFactorReset { reset_by, required } => {
            Payload::SecondFactorReset { reset_by: reset_by.clone(), required: *required }
        }
        MailMessage::RecoveryCodeUsed { codes_left } => {
            Payload::RecoveryCodeUsed { codes_left: *codes_left }
        }
    };
    outbox::ActiveModel {
        id: Set(mail.id.to_string()),
        user_id: Set(mail.user_id.map(|u| u.to_string())),
        kind: Set(mail.message.kind().to_owned()),
        recipient: Set(mail.to.as_str().to_owned()),
        recipient_name: Set(mail.to_name.to_string()),
        // Serialising a plain enum of strings and integers cannot fail.
        payload: Set(sealer.seal(
            &payload_purpose(&mail.id.to_string()),
            &serde_json::to_string(&payload).unwrap_or_default(),
        )),
        created_at: Set(micros(mail.created_at)),
        status: Set("queued".to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(micros(mail.created_at)),
        leased_until: Set(None),
        sent_at: Set(None),
        last_error: Set(None),
    }
}

fn mail_from_row(sealer: &Sealer, row: &outbox::Model) -> Result<QueuedMail, StoreError> {
    let opened = sealer.open(&payload_purpose(&row.id), &row.payload)?;
    let payload: Payload = serde_json::from_str(&opened)
        .map_err(|e| StoreError::new(format!("outbox message {} is unreadable", row.id), e))?;
    let message = match payload {
        Payload::Invitation { token, expires_at, invited_by } => MailMessage::Invitation {
            token: PlainToken::presented(token),
            expires_at: instant(expires_at)?,
            invited_by,
        },
        Payload::AccessReady { invited_by } => MailMessage::AccessReady { invited_by },
        Payload::PasswordReset { token, expires_at } => MailMessage::PasswordReset {
            token: PlainToken::presented(token),
            expires_at: instant(expires_at)?,
        },
        Payload::Test => MailMessage::Test,
        Payload::SecondFactorReset { reset_by, required } => {
            MailMessage::SecondFactorReset { reset_by, required }
        }
        Payload::RecoveryCodeUsed { codes_left } => MailMessage::RecoveryCodeUsed { codes_left },
    };
    Ok(QueuedMail {
        mail: OutgoingMail {
            id: Uuid::parse_str(&row.id)
                .map_err(|e| StoreError::new("outbox id is not a UUID", e))?,
            user_id: row.user_id.as_deref().map(parse_user_id).transpose()?,
            to: EmailAddress::from_stored(row.recipient.clone()),
            to_name: DisplayName::parse(&row.recipient_name)
                .map_err(|e| StoreError::new("outbox recipient name is invalid", e))?,
            message,
            created_at: instant(row.created_at)?,
        },
        attempts: u32::try_from(row.attempts).unwrap_or(0),
    })
}

fn parse_user_id(raw: &str) -> Result<UserId, StoreError> {
    raw.parse::<Uuid>()
        .map(UserId::from_uuid)
        .map_err(|e| StoreError::new("outbox user id is not a UUID", e))
}

fn entry_from_row(row: &outbox::Model) -> Result<OutboxEntry, StoreError> {
    let state = MailState::parse(&row.status).ok_or_else(|| {
        StoreError::msg(format!("outbox message {} has an unknown status", row.id))
    })?;
    Ok(OutboxEntry {
        id: Uuid::parse_str(&row.id).map_err(|e| StoreError::new("outbox id is not a UUID", e))?,
        kind: row.kind.clone(),
        recipient: row.recipient.clone(),
        user_id: row.user_id.as_deref().map(parse_user_id).transpose()?,
        state,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        last_error: row.last_error.clone(),
        created_at: instant(row.created_at)?,
        next_attempt_at: instant(row.next_attempt_at)?,
        sent_at: row.sent_at.map(instant).transpose()?,
    })
}

#[async_trait]
impl OutboxRepository for SqlStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        let now = micros(now);
        let free = Condition::any()
            .add(outbox::Column::LeasedUntil.is_null())
            .add(outbox::Column::LeasedUntil.lte(now));
        let candidates = outbox::Entity::find()
            .filter(outbox::Column::Status.eq("queued"))
            .filter(outbox::Column::NextAttemptAt.lte(now))
            .filter(free.clone())
            .order_by_asc(outbox::Column::NextAttemptAt)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db("reading the outbox"))?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for row in candidates {
            // Take the lease only if nobody took it since we looked.
            let taken = retry_transaction(|| {
                outbox::Entity::update_many()
                    .col_expr(outbox::Column::LeasedUntil, Expr::value(micros(lease_until)))
                    .filter(outbox::Column::Id.eq(row.id.clone()))
                    .filter(outbox::Column::Status.eq("queued"))
                    .filter(free.clone())
                    .exec(&self.db)
            })
            .await
            .map_err(db("leasing an outbox message"))?;
            if taken.rows_affected == 1 {
                claimed.push(mail_from_row(&self.sealer, &row)?);
            }
        }
        Ok(claimed)
    }

    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        // Retried: a message the server accepted but not marked sent would
        // be sent again once its lease ends.
        retry_transaction(|| {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::Status, Expr::value("sent"))
                .col_expr(outbox::Column::SentAt, Expr::value(micros(at)))
                .col_expr(outbox::Column::LeasedUntil, Expr::value(Option::<i64>::None))
                .col_expr(outbox::Column::Payload, Expr::value("{}"))
                .filter(outbox::Column::Id.eq(id.to_string()))
                .exec(&self.db)
        })
        .await
        .map_err(db("marking a message sent"))?;
        Ok(())
    }

    async fn mark_attempt_failed(
        &self,
        id: Uuid,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut update = outbox::Entity::update_many()
            .col_expr(outbox::Column::Attempts, Expr::col(outbox::Column::Attempts).add(1))
            .col_expr(
                outbox::Column::LastError,
                Expr::value(error.chars().take(2000).collect::<String>()),
            )
            .col_expr(outbox::Column::LeasedUntil, Expr::value(Option::<i64>::None));
        update = match retry_at {
            Some(at) => update.col_expr(outbox::Column::NextAttemptAt, Expr::value(micros(at))),
            None => update.col_expr(outbox::Column::Status, Expr::value("failed")),
        };
        let update = update.filter(outbox::Column::Id.eq(id.to_string()));
        retry_transaction(|| update.clone().exec(&self.db))
            .await
            .map_err(db("recording a failed delivery"))?;
        Ok(())
    }

    async fn list(
        &self,
        state: Option<MailState>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut select = outbox::Entity::find();
        if let Some(state) = state {
            select = select.filter(outbox::Column::Status.eq(state.as_str()));
        }
        if let Some((at, id)) = before {
            let at = micros(at);
            select = select.filter(outbox::Column::CreatedAt.lte(at)).filter(
                Condition::any()
                    .add(outbox::Column::CreatedAt.lt(at))
                    .add(outbox::Column::Id.lt(id.to_string())),
            );
        }
        select
            .order_by_desc(outbox::Column::CreatedAt)
            .order_by_desc(outbox::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db("listing the outbox"))?
            .iter()
            .map(entry_from_row)
            .collect()
    }

    async fn entry(&self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError> {
        outbox::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
            .map_err(db("reading an outbox message"))?
            .as_ref()
            .map(entry_from_row)
            .transpose()
    }

    async fn requeue_failed(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let requeued = outbox::Entity::update_many()
                .col_expr(outbox::Column::Status, Expr::value("queued"))
                .col_expr(outbox::Column::Attempts, Expr::value(0))
                .col_expr(outbox::Column::NextAttemptAt, Expr::value(micros(at)))
                .col_expr(outbox::Column::LeasedUntil, Expr::value(Option::<i64>::None))
                .filter(outbox::Column::Id.eq(id.to_string()))
                .filter(outbox::Column::Status.eq("failed"))
                .exec(&txn)
                .await
                .map_err(db("requeueing a message"))?;
            if requeued.rows_affected != 1 {
                return Ok(false);
            }
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a requeued message"))?;
            Ok(true)
        })
        .await
    }

    async fn latest_for(
        &self,
        user: UserId,
        kind: &str,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        outbox::Entity::find()
            .filter(outbox::Column::UserId.eq(user.to_string()))
            .filter(outbox::Column::Kind.eq(kind))
            .order_by_desc(outbox::Column::CreatedAt)
            .order_by_desc(outbox::Column::Id)
            .one(&self.db)
            .await
            .map_err(db("reading a user's latest message"))?
            .as_ref()
            .map(entry_from_row)
            .transpose()
    }

    async fn latest_invitation_emails(
        &self,
        users: &[UserId],
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let rows = outbox::Entity::find()
            .filter(outbox::Column::UserId.is_in(users.iter().map(ToString::to_string)))
            .filter(outbox::Column::Kind.is_in(INVITATION_KINDS))
            .order_by_desc(outbox::Column::CreatedAt)
            .order_by_desc(outbox::Column::Id)
            .all(&self.db)
            .await
            .map_err(db("reading users' invitation emails"))?;
        let mut seen = std::collections::HashSet::new();
        rows.iter()
            .filter(|row| row.user_id.as_ref().is_some_and(|user| seen.insert(user.clone())))
            .map(entry_from_row)
            .collect()
    }
}

/// Seals queued and failed messages' payloads by `target`: every sealed
/// one (`all`, a key rotation) or those still in clear. Returns how many.
pub(crate) async fn reseal_payloads(
    txn: &sea_orm::DatabaseTransaction,
    current: &Sealer,
    target: &Sealer,
    all: bool,
) -> Result<u64, StoreError> {
    let mut count = 0;
    let mut after = String::new();
    loop {
        // By id in pages, so that a large outbox is not read at once; at
        // start (not `all`) only payloads still in clear, which after the
        // first start are none.
        let mut select = outbox::Entity::find()
            .filter(outbox::Column::Id.gt(after.clone()))
            .filter(outbox::Column::Payload.ne("{}"));
        if !all {
            select = select.filter(outbox::Column::Payload.not_like("sealed:v1:%"));
        }
        let rows = select
            .order_by_asc(outbox::Column::Id)
            .limit(1000)
            .all(txn)
            .await
            .map_err(db("reading message payloads"))?;
        let Some(last) = rows.last() else { break };
        after = last.id.clone();
        for row in rows {
            if Sealer::is_sealed(&row.payload) && !all {
                continue;
            }
            let purpose = payload_purpose(&row.id);
            let plain = current.open(&purpose, &row.payload)?;
            outbox::Entity::update_many()
                .col_expr(outbox::Column::Payload, Expr::value(target.seal(&purpose, &plain)))
                .filter(outbox::Column::Id.eq(row.id))
                .exec(txn)
                .await
                .map_err(db("sealing a message payload"))?;
            count += 1;
        }
    }
    Ok(count)
}
