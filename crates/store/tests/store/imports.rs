//! Bulk import over the real store, on every database: batches write each
//! user with invitation, mail, search terms, counts and audit event; the
//! report is stored and paged; seats never overshoot.

use secureai_csv::CsvFile;
use std::io::Cursor;

use secureai_domain::imports::models::{ImportMode, RowOutcome};
use secureai_domain::imports::service::ImportRequest;
use secureai_domain::users::listing::ListUsersRequest;
use secureai_domain::{Policy, RequestContext};

use crate::support::TestDb;
use crate::use_cases::{count, first_admin};

fn file(rows: usize) -> String {
    let mut csv = String::from("Email,Name,Role,Department\n");
    for n in 0..rows {
        csv.push_str(&format!("person{n}@example.com,\"Person {n}, Jr.\",user,Dept {}\n", n % 3));
    }
    csv.push_str("not-an-email,Broken,user,\n");
    csv
}

fn request(mode: ImportMode) -> ImportRequest {
    ImportRequest { file_name: "staff.csv".into(), mode, max_rows: None, keep_all_rows: true }
}

pub async fn a_file_of_1200_rows_is_imported_in_batches_with_everything_each_user_needs(
    db: TestDb,
) {
    let (service, _clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;
    let csv = file(1200);

    let preview = service
        .imports
        .import_file(
            &admin,
            &mut CsvFile::new(Cursor::new(csv.clone())),
            &request(ImportMode::Preview),
            &ctx,
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        (preview.counts.rows, preview.counts.valid, preview.counts.skipped),
        (1201, 1200, 1)
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 1, "a preview writes no user");

    let mut progress = Vec::new();
    let record = service
        .imports
        .import_file(
            &admin,
            &mut CsvFile::new(Cursor::new(csv.clone())),
            &request(ImportMode::Commit),
            &ctx,
            &mut |n| progress.push(n),
        )
        .await
        .unwrap();

    assert_eq!((record.counts.rows, record.counts.valid, record.counts.skipped), (1201, 1200, 1));
    assert!(record.finished);
    assert_eq!(progress, [1000, 1201]);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users WHERE status = 'invited'").await, 1200);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM invitations").await, 1200);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox WHERE user_id IS NOT NULL").await, 1200);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM audit_events WHERE action = 'user.invited'").await,
        1200
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM audit_events WHERE action = 'users.imported'").await,
        1
    );
    let seats = service.users.seat_usage(&admin).await.unwrap();
    assert_eq!(seats.used, 1201, "counts kept with the users");
    let found = service
        .users
        .list_users(
            &admin,
            &ListUsersRequest { q: Some("person1199".into()), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1, "imported users are searchable");
    assert_eq!(found.items[0].name.to_string(), "Person 1199, Jr.");

    let page = service.imports.import_report_rows(&admin, record.id, 0, 100, false).await.unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(page[0].line, 2);
    assert!(matches!(page[0].outcome, RowOutcome::Created(_)));
    let skipped =
        service.imports.import_report_rows(&admin, record.id, 0, 100, true).await.unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!((skipped[0].line, skipped[0].email.as_str()), (1202, "not-an-email"));

    let again = service
        .imports
        .import_file(
            &admin,
            &mut CsvFile::new(Cursor::new(csv)),
            &request(ImportMode::Commit),
            &ctx,
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!((again.counts.valid, again.counts.skipped), (0, 1201));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 1201, "nothing twice");
}

pub async fn an_import_and_single_invitations_together_never_overshoot_the_seats(db: TestDb) {
    let (service, _clock) = db.service(Policy { seat_limit: Some(40), ..Policy::default() });
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;
    let csv = file(30);

    let commit = request(ImportMode::Commit);
    let mut quiet = |_| {};
    let mut file = CsvFile::new(Cursor::new(csv));
    let import = service.imports.import_file(&admin, &mut file, &commit, &ctx, &mut quiet);
    let singles = futures::future::join_all((0..30).map(|n| {
        let service = service.clone();
        let admin = admin.clone();
        let ctx = ctx.clone();
        async move {
            service
                .invitations
                .invite_user(
                    &admin,
                    &crate::use_cases::invite(&format!("single{n}@example.com")),
                    &ctx,
                )
                .await
        }
    }));
    let (imported, singles) = tokio::join!(import, singles);

    let imported = imported.unwrap();
    let single_ok = singles.iter().filter(|r| r.is_ok()).count() as u64;
    assert_eq!(imported.counts.valid + single_ok, 39, "exactly the free seats were taken");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 40);
}

on_every_database!(
    a_file_of_1200_rows_is_imported_in_batches_with_everything_each_user_needs,
    an_import_and_single_invitations_together_never_overshoot_the_seats,
);
