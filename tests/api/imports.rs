//! Bulk import through the API: CSV body, form upload and JSON rows;
//! preview writes nothing; commit creates and emails the valid rows; the
//! report pages and downloads as CSV; limits and broken files are refused
//! whole with clear errors.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use secureai_tests::{TestApp, assert_error, body, wait_for_link};
use serde_json::{Value, json};

const FILE: &str = "Name,EMAIL,role,Department,Phone\n\
\"Lovelace, Ada\",ada@example.com,user,Research,123\n\
Bad,not-an-email,user,,\n\
Formula,=HYPERLINK(\"http://evil.example\"),user,,\n\
Grace,grace@example.com,ADMIN,\"Ops, Night shift\",\n\
\"Multi\nLine\",multi@example.com,user,,\n\
Ada Again,ADA@example.com,user,,\n";

async fn post_csv(app: &TestApp, admin: &str, mode: &str, csv: &str) -> reqwest::Response {
    app.import_csv(admin, &format!("mode={mode}&file_name=staff.csv"), csv).await
}

fn outcomes(report: &Value) -> Vec<(u64, String)> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["outcome"].as_str().unwrap().to_owned()))
        .collect()
}

async fn user_total(app: &TestApp, admin: &str) -> u64 {
    body(app.get("/api/v1/users", Some(admin)).await).await["total"].as_u64().unwrap()
}

#[tokio::test]
async fn a_csv_is_previewed_then_imported_and_its_skipped_rows_download_as_csv() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;

    let preview = post_csv(&app, &admin, "preview", FILE).await;
    assert_eq!(preview.status(), StatusCode::OK);
    let preview = body(preview).await;
    assert_eq!(
        (preview["rows"].as_u64(), preview["valid"].as_u64(), preview["skipped"].as_u64()),
        (Some(6), Some(2), Some(4))
    );
    assert_eq!(preview["warnings"], json!(["ignored unknown column: Phone"]));
    assert_eq!(
        outcomes(&preview),
        [
            (2, "valid".into()),
            (3, "skipped".into()),
            (4, "skipped".into()),
            (5, "valid".into()),
            (6, "skipped".into()),
            (8, "skipped".into())
        ]
    );
    assert_eq!(preview["items"][4]["problems"][0]["field"], "name", "no newline in a name");
    assert_eq!(
        preview["items"][5]["problems"][0]["reason"],
        "this email is repeated: it is first on line 2"
    );
    assert_eq!(user_total(&app, &admin).await, 1, "a preview writes nothing");

    let report = body(post_csv(&app, &admin, "commit", FILE).await).await;
    assert_eq!(
        (report["mode"].as_str(), report["valid"].as_u64(), report["skipped"].as_u64()),
        (Some("commit"), Some(2), Some(4))
    );
    assert_eq!(report["items"][0]["outcome"], "created");
    assert_eq!(user_total(&app, &admin).await, 3);
    let grace = app.user_id(&admin, "grace@example.com").await;
    let profile = body(app.get(&format!("/api/v1/users/{grace}"), Some(&admin)).await).await;
    assert_eq!(
        (profile["role"].as_str(), profile["status"].as_str()),
        (Some("admin"), Some("invited"))
    );
    assert_eq!(profile["department"], "Ops, Night shift");
    let link = wait_for_link(
        &app.data_dir.join("mail"),
        "grace@example.com",
        "/invitations/accept?token=",
    )
    .await;
    assert!(link.contains("token="));

    let csv = app.get(report["errors_csv"].as_str().unwrap(), Some(&admin)).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(
        csv.headers()["content-disposition"].to_str().unwrap().contains("staff-skipped-rows.csv")
    );
    let text = csv.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert_eq!(&rows[0][0], "3");
    assert_eq!(&rows[0][1], "not-an-email");
    assert_eq!(&rows[0][2], "email");
    assert!(rows[1][1].starts_with("'="), "formula defused: {text}");

    let again = body(post_csv(&app, &admin, "commit", FILE).await).await;
    assert_eq!(again["valid"], 0);
    assert_eq!(again["items"][0]["problems"][0]["reason"], "this email is already invited");
    let audit = body(app.get("/api/v1/audit?action=users.imported", Some(&admin)).await).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "one event per committed import");
    let invited = body(app.get("/api/v1/audit?action=user.invited", Some(&admin)).await).await;
    assert_eq!(invited["items"].as_array().unwrap().len(), 2, "one per created user");
}

#[tokio::test]
async fn a_form_upload_and_json_rows_import_alike_and_the_report_pages() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let mut csv = String::from("email,name,role\n");
    for n in 0..150 {
        csv.push_str(&format!("u{n}@example.com,User {n},user\n"));
    }
    let form = Form::new()
        .part("file", Part::text(csv).file_name("team.csv").mime_str("text/csv").unwrap());
    let upload = app
        .http
        .post(app.url("/api/v1/users/import?mode=commit"))
        .bearer_auth(&admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::OK);
    let report = body(upload).await;
    assert_eq!(
        (report["file_name"].as_str(), report["valid"].as_u64()),
        (Some("team.csv"), Some(150))
    );
    assert_eq!(report["items"].as_array().unwrap().len(), 100);
    let cursor = report["next_cursor"].as_str().unwrap();
    let id = report["id"].as_str().unwrap();
    let next =
        body(app.get(&format!("/api/v1/imports/{id}?cursor={cursor}"), Some(&admin)).await).await;
    let lines: Vec<u64> =
        next["items"].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines.first(), Some(&102));
    assert_eq!(lines.len(), 50);
    assert_eq!(next["next_cursor"], Value::Null);

    let json_rows = json!([
        {"email": "j1@example.com", "name": "J One", "role": "user", "department": "Sales"},
        {"email": "j2@example.com", "name": "J Two", "role": "boss"},
        {"email": "u1@example.com", "name": "Again", "role": "user"}
    ]);
    let report =
        body(app.post("/api/v1/users/import?mode=commit", Some(&admin), json_rows).await).await;
    assert_eq!(
        outcomes(&report),
        [(1, "created".into()), (2, "skipped".into()), (3, "skipped".into())]
    );
    assert_eq!(report["items"][1]["problems"][0]["field"], "role");
    assert_eq!(report["items"][2]["problems"][0]["reason"], "this email is already invited");
    let unknown_field = app
        .post(
            "/api/v1/users/import",
            Some(&admin),
            json!([{"email": "x@example.com", "content": "hi"}]),
        )
        .await;
    assert_eq!(unknown_field.status(), StatusCode::BAD_REQUEST);
    let missing =
        app.get("/api/v1/imports/00000000-0000-4000-8000-000000000000", Some(&admin)).await;
    assert_error(missing, StatusCode::NOT_FOUND, "import_not_found").await;
}

#[tokio::test]
async fn files_over_the_limits_or_broken_are_refused_whole_with_the_reason() {
    let app = TestApp::with_admin_using(|config| {
        config.import.max_rows = 3;
        config.import.max_bytes = 2000;
    })
    .await;
    let admin = app.admin_token().await;

    let four_rows = "email,name,role\na@example.com,A,user\nb@example.com,B,user\nc@example.com,C,user\nd@example.com,D,user\n";
    let error = assert_error(
        post_csv(&app, &admin, "commit", four_rows).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "import_too_large",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("more than 3 rows"), "{error}");
    let big = format!("email,name,role\na@example.com,{},user\n", "x".repeat(3000));
    let error = assert_error(
        post_csv(&app, &admin, "commit", &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "import_too_large",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("2000 bytes"), "{error}");
    let missing = assert_error(
        post_csv(&app, &admin, "commit", "email,name\na@example.com,A\n").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_file",
    )
    .await;
    assert!(missing["message"].as_str().unwrap().contains("no role column"), "{missing}");
    let latin1 = b"email,name,role\na@example.com,Andr\xe9,user\n".as_slice();
    let latin1 = app.import_csv(&admin, "mode=commit", latin1).await;
    let latin1 = assert_error(latin1, StatusCode::UNPROCESSABLE_ENTITY, "invalid_file").await;
    assert!(latin1["message"].as_str().unwrap().contains("line 2 is not valid UTF-8"), "{latin1}");
    // Other API bodies keep their 1 MiB limit and their own code.
    assert_eq!(user_total(&app, &admin).await, 1, "nothing written");

    let user = app.active_user(&admin, "plain@example.com", "user", "plain user's password").await;
    assert_error(
        post_csv(&app, &user, "preview", four_rows).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}
