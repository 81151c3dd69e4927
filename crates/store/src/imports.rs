//! The import port: batches of invited users written with multi-row inserts
//! in one transaction each (run again when the database aborts it:
//! `retry_transaction`), under the same guard as single invitations; import
//! records and row reports.

use std::collections::HashMap;

use async_trait::async_trait;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use secureai_domain::imports::models::{
    BatchInsertSkip, ImportCounts, ImportMode, ImportRecord, RowOutcome, RowProblem, RowReport,
};
use secureai_domain::imports::ports::{BatchInsert, ImportCandidate, ImportRepository};
use secureai_domain::{AuditEvent, StoreError, UserId, UserStatus};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::write_audit;
use crate::convert::{audit_to_row, db, instant, invitation_to_row, micros, user_to_row};
use crate::directory::count_delta;
use crate::entities::{
    audit_events, import_rows, imports, invitations, outbox, user_search_terms, users,
};
use crate::outbox::mail_to_row;
use crate::users::SEAT_HOLDING;
use crate::{SqlStore, retry_transaction, take_guard};

#[derive(Serialize, Deserialize)]
struct StoredProblem {
    field: String,
    reason: String,
}

fn row_to_model(import: Uuid, row: &RowReport) -> import_rows::ActiveModel {
    let (outcome, user_id, problems) = match &row.outcome {
        RowOutcome::Valid => ("valid", None, None),
        RowOutcome::Created(id) => ("created", Some(id.to_string()), None),
        RowOutcome::Skipped(problems) => {
            let stored: Vec<StoredProblem> = problems
                .iter()
                .map(|p| StoredProblem { field: p.field.to_owned(), reason: p.reason.clone() })
                .collect();
            ("skipped", None, Some(serde_json::to_string(&stored).unwrap_or_default()))
        }
    };
    import_rows::ActiveModel {
        import_id: Set(import.to_string()),
        line: Set(i64::try_from(row.line).unwrap_or(i64::MAX)),
        // As written, but bounded: a row's email cell may be anything.
        email: Set(row.email.chars().take(320).collect()),
        outcome: Set(outcome.to_owned()),
        user_id: Set(user_id),
        problems: Set(problems),
    }
}

fn field_name(field: &str) -> &'static str {
    ["email", "name", "role", "department", "seats"]
        .into_iter()
        .find(|f| *f == field)
        .unwrap_or("row")
}

fn row_from_model(model: import_rows::Model) -> Result<RowReport, StoreError> {
    let outcome = match model.outcome.as_str() {
        "valid" => RowOutcome::Valid,
        "created" => {
            let id = model.user_id.as_deref().unwrap_or_default();
            RowOutcome::Created(
                id.parse::<Uuid>()
                    .map(UserId::from_uuid)
                    .map_err(|e| StoreError::new("import row user id is not a UUID", e))?,
            )
        }
        _ => {
            let stored: Vec<StoredProblem> =
                serde_json::from_str(model.problems.as_deref().unwrap_or("[]"))
                    .map_err(|e| StoreError::new("import row problems are unreadable", e))?;
            RowOutcome::Skipped(
                stored
                    .into_iter()
                    .map(|p| RowProblem::new(field_name(&p.field), p.reason))
                    .collect(),
            )
        }
    };
    Ok(RowReport { line: u64::try_from(model.line).unwrap_or(0), email: model.email, outcome })
}

async fn insert_rows(
    txn: &impl ConnectionTrait,
    import: Uuid,
    rows: &[RowReport],
) -> Result<(), StoreError> {
    // Well under every database's limit of bind parameters per statement.
    for chunk in rows.chunks(1000) {
        import_rows::Entity::insert_many(chunk.iter().map(|r| row_to_model(import, r)))
            .exec_without_returning(txn)
            .await
            .map_err(db("storing import rows"))?;
    }
    Ok(())
}

async fn add_counts(
    txn: &impl ConnectionTrait,
    import: Uuid,
    counts: ImportCounts,
) -> Result<(), StoreError> {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    imports::Entity::update_many()
        .col_expr(imports::Column::Rows, Expr::col(imports::Column::Rows).add(n(counts.rows)))
        .col_expr(imports::Column::Valid, Expr::col(imports::Column::Valid).add(n(counts.valid)))
        .col_expr(
            imports::Column::Skipped,
            Expr::col(imports::Column::Skipped).add(n(counts.skipped)),
        )
        .filter(imports::Column::Id.eq(import.to_string()))
        .exec(txn)
        .await
        .map_err(db("counting import rows"))?;
    Ok(())
}

#[async_trait]
impl ImportRepository for SqlStore {
    async fn existing_statuses(
        &self,
        email_keys: &[String],
    ) -> Result<HashMap<String, UserStatus>, StoreError> {
        existing(&self.db, email_keys).await
    }

    async fn start_import(&self, record: &ImportRecord) -> Result<(), StoreError> {
        imports::Entity::insert(imports::ActiveModel {
            id: Set(record.id.to_string()),
            at: Set(micros(record.at)),
            actor_email: Set(record.actor_email.clone()),
            file_name: Set(record.file_name.clone()),
            mode: Set(record.mode.as_str().to_owned()),
            rows: Set(0),
            valid: Set(0),
            skipped: Set(0),
            warnings: Set(serde_json::to_string(&record.warnings).unwrap_or_default()),
            finished: Set(false),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(db("recording an import"))?;
        Ok(())
    }

    async fn insert_batch(
        &self,
        import: Uuid,
        candidates: Vec<ImportCandidate>,
        skipped: Vec<RowReport>,
        batch_rows: u64,
        keep_created_rows: bool,
    ) -> Result<Vec<BatchInsert>, StoreError> {
        let outcomes = retry_transaction(|| {
            insert_batch_once(self, import, &candidates, &skipped, batch_rows, keep_created_rows)
        })
        .await?;
        crate::analyze_if_grown(&self.db, &["users"]).await;
        Ok(outcomes)
    }

    async fn record_rows(
        &self,
        import: Uuid,
        rows: Vec<RowReport>,
        counts: ImportCounts,
    ) -> Result<(), StoreError> {
        retry_transaction(|| async {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            insert_rows(&txn, import, &rows).await?;
            add_counts(&txn, import, counts).await?;
            txn.commit().await.map_err(db("committing import rows"))
        })
        .await
    }

    async fn finish_import(
        &self,
        import: Uuid,
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        retry_transaction(|| async {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            imports::Entity::update_many()
                .col_expr(imports::Column::Finished, Expr::value(true))
                .filter(imports::Column::Id.eq(import.to_string()))
                .exec(&txn)
                .await
                .map_err(db("finishing an import"))?;
            if let Some(audit) = &audit {
                write_audit(&txn, audit).await?;
            }
            txn.commit().await.map_err(db("committing a finished import"))
        })
        .await
    }

    async fn import(&self, id: Uuid) -> Result<Option<ImportRecord>, StoreError> {
        let Some(row) = imports::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
            .map_err(db("reading an import"))?
        else {
            return Ok(None);
        };
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Some(ImportRecord {
            id,
            at: instant(row.at)?,
            actor_email: row.actor_email,
            file_name: row.file_name,
            mode: if row.mode == "commit" { ImportMode::Commit } else { ImportMode::Preview },
            counts: ImportCounts {
                rows: n(row.rows),
                valid: n(row.valid),
                skipped: n(row.skipped),
            },
            warnings: serde_json::from_str(&row.warnings).unwrap_or_default(),
            finished: row.finished,
        }))
    }

    async fn import_rows(
        &self,
        id: Uuid,
        after_line: u64,
        limit: u32,
        skipped_only: bool,
    ) -> Result<Vec<RowReport>, StoreError> {
        let mut select = import_rows::Entity::find()
            .filter(import_rows::Column::ImportId.eq(id.to_string()))
            .filter(import_rows::Column::Line.gt(i64::try_from(after_line).unwrap_or(i64::MAX)));
        if skipped_only {
            select = select.filter(import_rows::Column::Outcome.eq("skipped"));
        }
        select
            .order_by_asc(import_rows::Column::Line)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db("reading import rows"))?
            .into_iter()
            .map(row_from_model)
            .collect()
    }
}

/// One run of [`ImportRepository::insert_batch`]'s transaction.
async fn insert_batch_once(
    store: &SqlStore,
    import: Uuid,
    candidates: &[ImportCandidate],
    skipped: &[RowReport],
    batch_rows: u64,
    keep_created_rows: bool,
) -> Result<Vec<BatchInsert>, StoreError> {
    let txn = store.db.begin().await.map_err(db("starting a transaction"))?;
    // The same guard as single invitations: seats never overshoot.
    take_guard(&txn).await.map_err(db("taking the guard"))?;
    let mut used =
        crate::directory::counted(&txn, None, &SEAT_HOLDING).await.map_err(db("counting seats"))?;
    let keys: Vec<String> = candidates.iter().map(|c| c.user.user.email.key().to_owned()).collect();
    let taken = existing(&txn, &keys).await?;
    let mut outcomes = Vec::with_capacity(candidates.len());
    let mut created = Vec::new();
    let mut reports = skipped.to_vec();
    for candidate in candidates {
        let new = &candidate.user;
        let skip = if let Some(status) = taken.get(new.user.email.key()) {
            Some(BatchInsertSkip::Taken(*status))
        } else {
            new.seat_limit
                .filter(|l| !secureai_domain::users::models::SeatLimit::new(*l).admits(used))
                .map(BatchInsertSkip::NoSeat)
        };
        if let Some(skip) = skip {
            outcomes.push(skip.into());
            reports.push(RowReport::for_batch_skip(candidate.line, &candidate.written, skip));
        } else {
            used += 1;
            outcomes.push(BatchInsert::Created);
            created.push(candidate);
        }
    }
    if !created.is_empty() {
        users::Entity::insert_many(created.iter().map(|c| user_to_row(&c.user.user, None)))
            .exec_without_returning(&txn)
            .await
            .map_err(db("inserting imported users"))?;
        let terms: Vec<user_search_terms::ActiveModel> =
            created.iter().flat_map(|c| crate::directory::term_rows(&c.user.user)).collect();
        for chunk in terms.chunks(2000) {
            user_search_terms::Entity::insert_many(chunk.iter().cloned())
                .exec_without_returning(&txn)
                .await
                .map_err(db("indexing imported users"))?;
        }
        invitations::Entity::insert_many(
            created.iter().map(|c| invitation_to_row(&c.user.invitation)),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db("inserting invitations"))?;
        outbox::Entity::insert_many(
            created.iter().map(|c| mail_to_row(&store.sealer, &c.user.mail)),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db("queueing invitation emails"))?;
        audit_events::Entity::insert_many(created.iter().map(|c| audit_to_row(&c.user.audit)))
            .exec_without_returning(&txn)
            .await
            .map_err(db("auditing imported users"))?;
        let audits: Vec<&AuditEvent> = created.iter().map(|c| &c.user.audit).collect();
        crate::webhook_deliveries::fan_out(&txn, &audits).await?;
        for audit in &audits {
            audit.context.audit_ids.note(audit.id);
        }
        let mut per_role: HashMap<&str, i64> = HashMap::new();
        for c in &created {
            *per_role.entry(c.user.user.role.as_str()).or_default() += 1;
        }
        for (role, n) in per_role {
            count_delta(&txn, role, UserStatus::Invited.as_str(), n)
                .await
                .map_err(db("counting imported users"))?;
        }
        if keep_created_rows {
            reports.extend(created.iter().map(|c| RowReport {
                line: c.line,
                email: c.written.clone(),
                outcome: RowOutcome::Created(c.user.user.id),
            }));
        }
    }
    let skipped_count =
        reports.iter().filter(|r| matches!(r.outcome, RowOutcome::Skipped(_))).count() as u64;
    insert_rows(&txn, import, &reports).await?;
    let counts =
        ImportCounts { rows: batch_rows, valid: created.len() as u64, skipped: skipped_count };
    add_counts(&txn, import, counts).await?;
    txn.commit().await.map_err(db("committing imported users"))?;
    Ok(outcomes)
}

async fn existing(
    conn: &impl ConnectionTrait,
    email_keys: &[String],
) -> Result<HashMap<String, UserStatus>, StoreError> {
    let mut found = HashMap::new();
    for chunk in email_keys.chunks(1000) {
        let rows: Vec<(String, String)> = users::Entity::find()
            .select_only()
            .column(users::Column::EmailKey)
            .column(users::Column::Status)
            .filter(users::Column::EmailKey.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await
            .map_err(db("looking up existing users"))?;
        for (key, status) in rows {
            let status = UserStatus::parse(&status)
                .ok_or_else(|| StoreError::msg(format!("unknown user status `{status}`")))?;
            found.insert(key, status);
        }
    }
    Ok(found)
}
