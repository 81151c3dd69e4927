//! [`ImportRepository`](crate::imports::ports::ImportRepository): batches
//! of invited users and the import's report.

use super::fixtures::{audit_of, email, event, invite, new_invited, now};
use crate::audit::models::AuditAction;
use crate::imports::models::{
    ImportCounts, ImportMode, ImportRecord, RowOutcome, RowProblem, RowReport,
};
use crate::imports::ports::{BatchInsert, ImportCandidate};
use crate::service::Ports;
use crate::users::models::{Role, UserStatus};

fn skipped(line: u64, written: &str) -> RowReport {
    let problem = RowProblem::new("name", "the name is missing");
    RowReport { line, email: written.to_owned(), outcome: RowOutcome::Skipped(vec![problem]) }
}

fn problem_fields(report: &RowReport) -> Vec<&'static str> {
    match &report.outcome {
        RowOutcome::Skipped(problems) => problems.iter().map(|p| p.field).collect(),
        RowOutcome::Created(_) | RowOutcome::Valid => Vec::new(),
    }
}

/// `insert_batch` creates each candidate with its invitation, mail and
/// audit event, or skips it when its email is taken (any case) or no seat
/// is left — in order, under the seat limit — and records the reports and
/// counts with it; the record and its rows read back in file order.
pub async fn insert_batch_creates_or_skips_each_row(ports: Ports) {
    let existing = invite(&ports, "taken@example.com", Role::User).await;
    let record = ImportRecord {
        id: crate::record_id(),
        at: now(&ports),
        actor_email: Some("root@example.com".into()),
        file_name: "people.csv".into(),
        mode: ImportMode::Commit,
        counts: ImportCounts::default(),
        warnings: vec!["unknown column `shoe size` ignored".into()],
        finished: false,
    };
    ports.imports.start_import(&record).await.unwrap();
    assert_eq!(ports.imports.import(record.id).await.unwrap(), Some(record.clone()));
    assert_eq!(ports.imports.import(crate::record_id()).await.unwrap(), None);

    let candidate = |line, written: &str| {
        let (user, _) = new_invited(&ports, written, Role::User, Some(2));
        ImportCandidate { line, written: written.to_owned(), user }
    };
    let created = candidate(2, "new@example.com");
    let created_id = created.user.user.id;
    let late = candidate(4, "late@example.com");
    let late_id = late.user.user.id;
    let candidates = vec![created, candidate(3, "TAKEN@example.com"), late];
    let outcomes = ports
        .imports
        .insert_batch(record.id, candidates, vec![skipped(5, "no-name@example.com")], 4, true)
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            BatchInsert::Created,
            BatchInsert::Taken(UserStatus::Invited),
            BatchInsert::NoSeat { limit: 2 }
        ]
    );
    let user = ports.users.get(created_id).await.unwrap().unwrap();
    assert_eq!(user.status(), UserStatus::Invited);
    assert!(ports.invitations.latest_for(created_id).await.unwrap().is_some());
    assert!(ports.outbox.latest_for(created_id, "invitation").await.unwrap().is_some());
    assert_eq!(super::fixtures::audit_about(&ports, created_id).await.len(), 1);
    assert_eq!(ports.users.get(late_id).await.unwrap(), None);
    assert_eq!(ports.users.find_by_email(&email("late@example.com")).await.unwrap(), None);
    assert_eq!(ports.users.count_seats().await.unwrap(), 2);
    let existing_now = ports.users.get(existing.user.id).await.unwrap();
    assert_eq!(existing_now, Some(existing.user));

    let counts = ports.imports.import(record.id).await.unwrap().unwrap().counts;
    assert_eq!(counts, ImportCounts { rows: 4, valid: 1, skipped: 3 });
    let rows = ports.imports.import_rows(record.id, 0, 100, false).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
    assert_eq!(rows[0].outcome, RowOutcome::Created(created_id));
    assert_eq!(rows[1].email, "TAKEN@example.com");
    let fields: Vec<_> = rows.iter().map(problem_fields).collect();
    assert_eq!(fields, vec![vec![], vec!["email"], vec!["seats"], vec!["name"]]);
    assert_eq!(rows[3], skipped(5, "no-name@example.com"));
    let only_skipped = ports.imports.import_rows(record.id, 0, 100, true).await.unwrap();
    assert_eq!(only_skipped.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 4, 5]);
    let page = ports.imports.import_rows(record.id, 3, 1, false).await.unwrap();
    assert_eq!(page.iter().map(|r| r.line).collect::<Vec<_>>(), vec![4]);

    let keys =
        ["taken@example.com".to_owned(), "new@example.com".into(), "none@example.com".into()];
    let statuses = ports.imports.existing_statuses(&keys).await.unwrap();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses.get("taken@example.com"), Some(&UserStatus::Invited));
    assert_eq!(statuses.get("new@example.com"), Some(&UserStatus::Invited));
}

/// `record_rows` adds reports and counts; `finish_import` marks the import
/// finished with its audit event.
pub async fn an_import_records_rows_and_finishes(ports: Ports) {
    let record = ImportRecord {
        id: crate::record_id(),
        at: now(&ports),
        actor_email: None,
        file_name: "preview.csv".into(),
        mode: ImportMode::Preview,
        counts: ImportCounts::default(),
        warnings: Vec::new(),
        finished: false,
    };
    ports.imports.start_import(&record).await.unwrap();
    let valid = RowReport { line: 2, email: "ok@example.com".into(), outcome: RowOutcome::Valid };
    let rows = vec![valid.clone(), skipped(3, "bad@example.com")];
    let counts = ImportCounts { rows: 2, valid: 1, skipped: 1 };
    ports.imports.record_rows(record.id, rows.clone(), counts).await.unwrap();
    ports
        .imports
        .record_rows(
            record.id,
            vec![skipped(4, "x")],
            ImportCounts { rows: 1, valid: 0, skipped: 1 },
        )
        .await
        .unwrap();
    ports
        .imports
        .finish_import(record.id, Some(event(now(&ports), AuditAction::UsersImported)))
        .await
        .unwrap();

    let read = ports.imports.import(record.id).await.unwrap().unwrap();
    assert!(read.finished);
    assert_eq!(read.counts, ImportCounts { rows: 3, valid: 1, skipped: 2 });
    assert_eq!((read.mode, read.file_name.as_str()), (ImportMode::Preview, "preview.csv"));
    let stored = ports.imports.import_rows(record.id, 0, 100, false).await.unwrap();
    assert_eq!(stored, vec![valid, skipped(3, "bad@example.com"), skipped(4, "x")]);
    assert_eq!(audit_of(&ports, AuditAction::UsersImported).await.len(), 1);
}
