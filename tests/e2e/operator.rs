//! The operator's command line: migrations, inviting an admin, a refused
//! configuration, erasure, CSV import.

use super::secureai;

#[test]
fn the_operator_can_migrate_and_invite_an_admin_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();

    let migrate = secureai(dir.path()).args(["migrate", "status"]).output().unwrap();
    assert!(migrate.status.success());
    let status = String::from_utf8(migrate.stdout).unwrap();
    assert!(status.contains("pending m20261128_000001_initial"), "{status}");
    let migrate = secureai(dir.path()).arg("migrate").output().unwrap();
    assert!(
        String::from_utf8(migrate.stdout).unwrap().contains("applied m20261128_000001_initial")
    );

    let created = secureai(dir.path())
        .args(["admin", "create", "--email", "ops@example.com", "--name", "Ops"])
        .output()
        .unwrap();
    assert!(created.status.success());
    let out = String::from_utf8(created.stdout).unwrap();
    assert!(out.contains("Invited ops@example.com"), "{out}");
    assert!(out.contains("(valid 72 hours, also emailed)"), "the configured lifetime: {out}");
    assert!(out.contains("/invitations/accept?token="), "{out}");

    let again = secureai(dir.path())
        .args(["admin", "create", "--email", "OPS@example.com", "--name", "Ops"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8(again.stderr).unwrap().contains("already exists"));
}

#[test]
fn a_bad_configuration_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();

    let output =
        secureai(dir.path()).arg("serve").env("SECUREAI_LISTEN", "nowhere").output().unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().to_lowercase().contains("listen"));
}

#[test]
fn the_operator_erases_a_person_only_with_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let invite = |email: &str| {
        secureai(dir.path())
            .args(["admin", "create", "--email", email, "--name", "Someone"])
            .output()
            .unwrap()
    };
    assert!(invite("keep@example.com").status.success());
    assert!(invite("leave@example.com").status.success());

    let unconfirmed = secureai(dir.path())
        .args(["users", "erase", "--email", "leave@example.com"])
        .output()
        .unwrap();
    assert!(!unconfirmed.status.success());
    assert!(String::from_utf8(unconfirmed.stderr).unwrap().contains("--yes"));

    let erased = secureai(dir.path())
        .args(["users", "erase", "--email", "leave@example.com", "--yes"])
        .output()
        .unwrap();
    assert!(erased.status.success(), "{}", String::from_utf8_lossy(&erased.stderr));
    assert!(String::from_utf8(erased.stdout).unwrap().contains("Erased the personal data"));
    let again = secureai(dir.path())
        .args(["users", "erase", "--email", "leave@example.com", "--yes"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8(again.stderr).unwrap().contains("no user has this email"));
}

#[test]
fn the_operator_imports_a_csv_with_a_dry_run_first_and_gets_the_skipped_rows() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.csv");
    std::fs::write(
        &file,
        "\u{feff}Email,Name,Role\r\nada@example.com,Ada,user\r\nbad-email,Bad,user\r\n\
         bob@example.com,Bob,superuser\r\ncyd@example.com,\"Cyd, Jr.\",admin\r\n",
    )
    .unwrap();
    let import = |extra: &[&str]| {
        let mut command = secureai(dir.path());
        command.args(["users", "import"]).arg(&file).args(extra);
        command.output().unwrap()
    };

    let dry = import(&["--dry-run"]);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let out = String::from_utf8(dry.stdout).unwrap();
    assert!(out.contains("4 rows read, 2 would be imported, 2 would be skipped"), "{out}");
    let real = import(&[]);
    let out = String::from_utf8(real.stdout).unwrap();
    assert!(out.contains("4 rows read: 2 users invited"), "{out}");
    let report = dir.path().join("people.csv.skipped.csv");
    assert!(out.contains(&report.display().to_string()), "{out}");
    let skipped = std::fs::read_to_string(&report).unwrap();
    assert_eq!(skipped.lines().count(), 3, "{skipped}");
    assert!(skipped.contains("3,bad-email,email,"), "{skipped}");
    assert!(skipped.contains("4,bob@example.com,role,`superuser` is not a role"), "{skipped}");

    let again = import(&[]);
    let out = String::from_utf8(again.stdout).unwrap();
    assert!(out.contains("0 users invited"), "{out}");
    assert!(std::fs::read_to_string(&report).unwrap().contains("this email is already invited"));

    std::fs::write(&file, "email,name\nada@example.com,Ada\n").unwrap();
    let broken = import(&[]);
    assert!(!broken.status.success());
    assert!(String::from_utf8(broken.stderr).unwrap().contains("no role column"));
    let missing = secureai(dir.path()).args(["users", "import", "nope.csv"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8(missing.stderr).unwrap().contains("cannot open nope.csv"));
}
