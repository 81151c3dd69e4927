//! The in-memory store's bulk imports.

use std::collections::HashMap;

use async_trait::async_trait;
use uuid::Uuid;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::imports::models::{BatchInsertSkip, ImportCounts, ImportRecord, RowOutcome, RowReport};
use crate::imports::ports::{BatchInsert, ImportCandidate, ImportRepository};
use crate::users::models::UserStatus;

use super::InMemoryStore;

#[async_trait]
impl ImportRepository for InMemoryStore {
    async fn existing_statuses(
        &self,
        email_keys: &[String],
    ) -> Result<HashMap<String, UserStatus>, StoreError> {
        let state = self.state();
        Ok(state
            .users
            .values()
            .filter(|u| email_keys.iter().any(|k| k == u.email.key()))
            .map(|u| (u.email.key().to_owned(), u.status()))
            .collect())
    }

    async fn start_import(&self, record: &ImportRecord) -> Result<(), StoreError> {
        self.state().imports.insert(record.id, (record.clone(), Vec::new()));
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
        let mut state = self.state();
        if !state.imports.contains_key(&import) {
            return Err(StoreError::msg("no such import"));
        }
        let mut outcomes = Vec::with_capacity(candidates.len());
        let mut reports = skipped;
        let mut created = 0_u64;
        for candidate in candidates {
            let new = candidate.user;
            let skip =
                if let Some(existing) = state.users.values().find(|u| u.email == new.user.email) {
                    Some(BatchInsertSkip::Taken(existing.status()))
                } else {
                    new.seat_limit
                        .filter(|limit| state.seats_used() >= *limit as usize)
                        .map(BatchInsertSkip::NoSeat)
                };
            match skip {
                Some(skip) => {
                    outcomes.push(skip.into());
                    reports.push(RowReport::for_batch_skip(
                        candidate.line,
                        &candidate.written,
                        skip,
                    ));
                }
                None => {
                    if keep_created_rows {
                        reports.push(RowReport {
                            line: candidate.line,
                            email: candidate.written,
                            outcome: RowOutcome::Created(new.user.id),
                        });
                    }
                    state.users.insert(new.user.id, new.user);
                    state.invitations.push(new.invitation);
                    state.queue(new.mail);
                    state.audit.push(new.audit);
                    outcomes.push(BatchInsert::Created);
                    created += 1;
                }
            }
        }
        let skipped_count =
            reports.iter().filter(|r| matches!(r.outcome, RowOutcome::Skipped(_))).count() as u64;
        if let Some(entry) = state.imports.get_mut(&import) {
            entry.0.counts.rows += batch_rows;
            entry.0.counts.valid += created;
            entry.0.counts.skipped += skipped_count;
            entry.1.extend(reports);
        }
        Ok(outcomes)
    }

    async fn record_rows(
        &self,
        import: Uuid,
        rows: Vec<RowReport>,
        counts: ImportCounts,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let entry =
            state.imports.get_mut(&import).ok_or_else(|| StoreError::msg("no such import"))?;
        entry.0.counts.rows += counts.rows;
        entry.0.counts.valid += counts.valid;
        entry.0.counts.skipped += counts.skipped;
        entry.1.extend(rows);
        Ok(())
    }

    async fn finish_import(
        &self,
        import: Uuid,
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(entry) = state.imports.get_mut(&import) {
            entry.0.finished = true;
        }
        state.audit.extend(audit);
        Ok(())
    }

    async fn import(&self, id: Uuid) -> Result<Option<ImportRecord>, StoreError> {
        Ok(self.state().imports.get(&id).map(|(record, _)| record.clone()))
    }

    async fn import_rows(
        &self,
        id: Uuid,
        after_line: u64,
        limit: u32,
        skipped_only: bool,
    ) -> Result<Vec<RowReport>, StoreError> {
        let state = self.state();
        let Some((_, rows)) = state.imports.get(&id) else { return Ok(Vec::new()) };
        let mut rows: Vec<RowReport> = rows
            .iter()
            .filter(|r| r.line > after_line)
            .filter(|r| !skipped_only || matches!(r.outcome, RowOutcome::Skipped(_)))
            .cloned()
            .collect();
        rows.sort_by_key(|r| r.line);
        rows.truncate(limit as usize);
        Ok(rows)
    }
}
