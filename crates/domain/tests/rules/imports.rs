//! Bulk import (PRODUCT.md §Bulk import): the preview writes nothing; the
//! import creates the valid rows with their invitations and skips the rest
//! with line, email, field and reason; re-running a file imports nothing
//! twice; seats run out in file order. Plus property tests of the row
//! validator and the CSV reader, and a fuzz harness over arbitrary bytes.

use secureai_csv::CsvFile;
use std::io::Cursor;

use proptest::prelude::*;
use secureai_csv::CsvRows;
use secureai_domain::access::Admin;
use secureai_domain::imports::models::{ImportMode, RowOutcome, RowReport, check_row};
use secureai_domain::imports::rows::{FileError, RawRow};
use secureai_domain::imports::service::{ImportError, ImportRequest};
use secureai_domain::testing::TestKit;
use secureai_domain::{AuditAction, Policy, UserStatus};
use uuid::Uuid;

use crate::kit::{audit_of, ctx, invite, with_admin, with_admin_under};

fn request(mode: ImportMode) -> ImportRequest {
    ImportRequest {
        file_name: "people.csv".into(),
        mode,
        max_rows: Some(50_000),
        keep_all_rows: true,
    }
}

async fn run(kit: &TestKit, admin: &Admin, csv: &str, mode: ImportMode) -> (Uuid, Vec<RowReport>) {
    let record = kit
        .service
        .imports
        .import_file(
            admin,
            &mut CsvFile::new(Cursor::new(csv.as_bytes().to_vec())),
            &request(mode),
            &ctx(),
            &mut |_| {},
        )
        .await
        .unwrap();
    let rows =
        kit.service.imports.import_report_rows(admin, record.id, 0, 1000, false).await.unwrap();
    (record.id, rows)
}

fn problem(report: &RowReport) -> (&'static str, String) {
    match &report.outcome {
        RowOutcome::Skipped(problems) => (problems[0].field, problems[0].reason.clone()),
        other => panic!("line {} was not skipped: {other:?}", report.line),
    }
}

const FILE: &str = "email,name,role,department\n\
ada@example.com,Ada Lovelace,user,Research\n\
not-an-email,Bad Email,user,\n\
bob@example.com,,admin,\n\
cyd@example.com,Cyd,owner,\n\
ADA@example.com,Ada Again,user,\n\
root@example.com,Root Again,admin,\n\
dan@example.com,Dan,Admin,Sales\n";

#[tokio::test]
async fn a_preview_reports_every_row_and_writes_nothing() {
    let (kit, admin) = with_admin().await;
    let users_before = kit.store.state().users.len();

    let (_, rows) = run(&kit, &admin, FILE, ImportMode::Preview).await;

    let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(rows[0].outcome, RowOutcome::Valid);
    assert_eq!(problem(&rows[1]).0, "email");
    assert_eq!(problem(&rows[2]), ("name", "the name is missing".into()));
    assert_eq!(problem(&rows[3]).0, "role");
    assert_eq!(
        problem(&rows[4]),
        ("email", "this email is repeated: it is first on line 2".into())
    );
    assert_eq!(rows[4].email, "ADA@example.com", "the email as written");
    assert_eq!(problem(&rows[5]), ("email", "this email is already an active user".into()));
    assert_eq!(rows[6].outcome, RowOutcome::Valid);
    assert_eq!(kit.store.state().users.len(), users_before);
    assert!(kit.store.state().outbox.is_empty());
    assert!(audit_of(&kit, AuditAction::UsersImported).is_empty());
}

#[tokio::test]
async fn an_import_creates_the_valid_rows_with_invitations_and_a_rerun_creates_nothing() {
    let (kit, admin) = with_admin().await;

    let (id, rows) = run(&kit, &admin, FILE, ImportMode::Commit).await;
    let record = kit.service.imports.import_record(&admin, id).await.unwrap().unwrap();

    assert_eq!((record.counts.rows, record.counts.valid, record.counts.skipped), (7, 2, 5));
    assert!(record.finished);
    let created: Vec<u64> = rows
        .iter()
        .filter(|r| matches!(r.outcome, RowOutcome::Created(_)))
        .map(|r| r.line)
        .collect();
    assert_eq!(created, [2, 8]);
    {
        let state = kit.store.state();
        let dan = state.users.values().find(|u| u.email.key() == "dan@example.com").unwrap();
        assert_eq!(
            (dan.status(), dan.role.as_str(), dan.department.as_ref().map(ToString::to_string)),
            (UserStatus::Invited, "admin", Some("Sales".into()))
        );
        assert_eq!(state.outbox.len(), 2, "one invitation each");
    }
    assert_eq!(audit_of(&kit, AuditAction::UsersImported).len(), 1);
    let imported = &audit_of(&kit, AuditAction::UsersImported)[0];
    let detail =
        |f: &str| imported.changes.iter().find(|c| c.field == f).and_then(|c| c.after.clone());
    assert_eq!(
        (detail("file"), detail("created"), detail("skipped")),
        (Some("people.csv".into()), Some("2".into()), Some("5".into()))
    );
    assert_eq!(audit_of(&kit, AuditAction::UserInvited).len(), 2);

    let (_, again) = run(&kit, &admin, FILE, ImportMode::Commit).await;
    assert!(again.iter().all(|r| matches!(r.outcome, RowOutcome::Skipped(_))));
    assert_eq!(problem(&again[0]), ("email", "this email is already invited".into()));
    assert_eq!(kit.store.state().outbox.len(), 2, "nothing twice");
}

#[tokio::test]
async fn rows_beyond_the_free_seats_are_skipped_in_file_order() {
    let (kit, admin) = with_admin_under(Policy { seat_limit: Some(3), ..Policy::default() }).await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("held@example.com", "user"), &ctx())
        .await
        .unwrap();
    let csv = "name,email,role\nA,a@example.com,user\nbad,bad,user\nB,b@example.com,user\nC,c@example.com,user\n";

    for mode in [ImportMode::Preview, ImportMode::Commit] {
        let (_, rows) = run(&kit, &admin, csv, mode).await;
        let outcome: Vec<&str> = rows
            .iter()
            .map(|r| match &r.outcome {
                RowOutcome::Skipped(p) => p[0].field,
                _ => "ok",
            })
            .collect();
        assert_eq!(outcome, ["ok", "email", "seats", "seats"], "{mode:?}");
        assert!(problem(&rows[2]).1.contains("seat limit of 3"));
    }
    assert_eq!(kit.store.state().users.len(), 3);
}

#[tokio::test]
async fn a_broken_file_is_refused_as_a_whole_before_anything_is_written() {
    let (kit, admin) = with_admin().await;
    let users = kit.store.state().users.len();
    let bad_late =
        b"email,name,role\nok@example.com,Ok,user\nlate@example.com,Late,user\nx@example.com,\xff,user\n"
            .to_vec();
    let outcome = kit
        .service
        .imports
        .import_file(
            &admin,
            &mut CsvFile::new(Cursor::new(bad_late)),
            &request(ImportMode::Commit),
            &ctx(),
            &mut |_| {},
        )
        .await;
    assert!(
        matches!(outcome, Err(ImportError::File(FileError::NotUtf8 { line: 4 }))),
        "{outcome:?}"
    );
    let missing = kit
        .service
        .imports
        .import_file(
            &admin,
            &mut CsvFile::new(Cursor::new(b"email,role\n".to_vec())),
            &request(ImportMode::Commit),
            &ctx(),
            &mut |_| {},
        )
        .await;
    assert!(matches!(missing, Err(ImportError::File(FileError::MissingColumns { .. }))));
    let big = format!("email,name,role\n{}", "a@example.com,A,user\n".repeat(3));
    let limited = ImportRequest { max_rows: Some(2), ..request(ImportMode::Commit) };
    let too_many = kit
        .service
        .imports
        .import_file(
            &admin,
            &mut CsvFile::new(Cursor::new(big.into_bytes())),
            &limited,
            &ctx(),
            &mut |_| {},
        )
        .await;
    assert!(matches!(too_many, Err(ImportError::File(FileError::TooManyRows { limit: 2 }))));
    assert_eq!(kit.store.state().users.len(), users);
    assert!(kit.store.state().outbox.is_empty());
}

#[tokio::test]
async fn json_rows_are_numbered_from_one_and_checked_alike() {
    let (kit, admin) = with_admin().await;
    let rows = vec![
        RawRow {
            line: 1,
            email: "eve@example.com".into(),
            name: "Eve".into(),
            role: "user".into(),
            department: String::new(),
        },
        RawRow {
            line: 2,
            email: "eve@example.com".into(),
            name: "Eve 2".into(),
            role: "user".into(),
            department: String::new(),
        },
    ];
    let record = kit
        .service
        .imports
        .import_rows_as_admin(&admin, rows, &request(ImportMode::Commit), &ctx())
        .await
        .unwrap();
    let reports =
        kit.service.imports.import_report_rows(&admin, record.id, 0, 10, true).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(problem(&reports[0]).1, "this email is repeated: it is first on line 1");
}

fn text() -> impl Strategy<Value = String> {
    // Printable text with the characters CSV must quote.
    proptest::string::string_regex("[ a-zA-Z0-9,\"'\\n\\r\\t;é漢-]{0,30}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Whatever a row holds, checking it never panics, and a valid row is
    /// one whose fields each pass their own rule.
    #[test]
    fn the_row_check_accepts_exactly_rows_whose_fields_are_valid(
        email in text(), name in text(), role in text(), department in text(),
    ) {
        let row = RawRow { line: 2, email, name, role, department };
        let checked = check_row(&row);
        let email_ok = secureai_domain::EmailAddress::parse(&row.email).is_ok();
        let name_ok = !row.name.trim().is_empty() && secureai_domain::DisplayName::parse(&row.name).is_ok();
        let role_ok = secureai_domain::Role::parse(&row.role).is_ok();
        let department_ok = secureai_domain::Department::parse(&row.department).is_ok();
        prop_assert_eq!(checked.is_ok(), email_ok && name_ok && role_ok && department_ok);
        if let Err(problems) = checked {
            prop_assert!(!problems.is_empty());
            prop_assert!(problems.iter().all(|p| !p.reason.is_empty()));
        }
    }

    /// Rows written by a CSV writer (quotes, commas, newlines; LF or CRLF;
    /// with or without BOM; shuffled column order) read back as written,
    /// with the line each starts on.
    #[test]
    fn csv_rows_read_back_as_written(
        rows in proptest::collection::vec((text(), text(), text(), text()), 0..20),
        crlf in any::<bool>(), bom in any::<bool>(), swap in any::<bool>(),
    ) {
        let mut writer = csv::WriterBuilder::new()
            .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
            .from_writer(Vec::new());
        let header = if swap { ["role", "Email", "department", "NAME"] } else { ["email", "name", "role", "department"] };
        writer.write_record(header).unwrap();
        for (email, name, role, department) in &rows {
            let record = if swap { [role, email, department, name] } else { [email, name, role, department] };
            writer.write_record(record).unwrap();
        }
        let mut bytes = if bom { "\u{feff}".as_bytes().to_vec() } else { Vec::new() };
        bytes.extend(writer.into_inner().unwrap());
        let parsed: Vec<RawRow> = CsvRows::new(&bytes[..]).unwrap().collect::<Result<_, _>>().unwrap();
        // A row of one empty field is a blank line, which readers skip.
        let expected: Vec<_> = rows.iter().filter(|(e, n, r, d)| !(e.is_empty() && n.is_empty() && r.is_empty() && d.is_empty())).collect();
        prop_assert_eq!(parsed.len(), expected.len());
        let mut previous_line = 1;
        for (got, (email, name, role, department)) in parsed.iter().zip(expected) {
            prop_assert_eq!((&got.email, &got.name, &got.role, &got.department), (email, name, role, department));
            prop_assert!(got.line > previous_line);
            previous_line = got.line;
        }
    }

    /// Fuzz harness: arbitrary bytes never panic the reader or the row
    /// check; they give rows or one clear file error.
    #[test]
    fn arbitrary_bytes_never_panic_the_reader(
        head in proptest::collection::vec(any::<u8>(), 0..64),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = b"email,name,role\n".to_vec();
        bytes.extend(head);
        bytes.extend(body);
        for input in [&bytes[..], &bytes[16..]] {
            if let Ok(rows) = CsvRows::new(input) {
                for row in rows {
                    match row {
                        Ok(row) => { let _ = check_row(&row); }
                        Err(error) => prop_assert!(!error.to_string().is_empty()),
                    }
                }
            }
        }
    }
}
