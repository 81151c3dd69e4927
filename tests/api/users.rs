//! Inviting, listing and reading users (admins only).

use reqwest::StatusCode;
use secureai_tests::{TestApp, assert_error, body, read_mail};
use serde_json::{Value, json};

async fn count_users(app: &TestApp, token: &str) -> usize {
    let page = body(app.get("/api/v1/users?limit=200", Some(token)).await).await;
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn an_admin_invites_a_user_who_gets_an_invitation_email() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;

    let response = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"email": " Grace@Example.com ", "name": "Grace Hopper", "role": "Admin", "department": "Research"}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let user = body(response).await;
    assert_eq!(user["email"], "Grace@Example.com");
    assert_eq!(user["status"], "invited");
    assert_eq!(user["role"], "admin");
    assert_eq!(user["department"], "Research");
    assert_eq!(location, format!("/api/v1/users/{}", user["id"].as_str().unwrap()));
    let fetched = body(app.get(&location, Some(&admin)).await).await;
    assert_eq!(fetched["email"], "Grace@Example.com");

    app.invitation_token("grace@example.com").await;
    let mails = read_mail(&app.data_dir.join("mail"));
    let mail = mails.iter().find(|m| m.to == "Grace@Example.com").unwrap();
    assert_eq!(mail.subject, "You're invited to SecureAI");
    assert!(mail.text.contains("expires in 72 hours"));
    assert!(mail.html.contains("Set your password"));
}

#[tokio::test]
async fn an_email_already_used_in_any_case_is_a_conflict() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "ada@example.com", "user").await;

    let again = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"email": "ADA@EXAMPLE.COM", "name": "Ada", "role": "user"}),
        )
        .await;

    assert_error(again, StatusCode::CONFLICT, "email_taken").await;
    assert_eq!(count_users(&app, &admin).await, 2);
}

#[tokio::test]
async fn invalid_fields_are_refused_naming_the_field_and_nothing_is_written() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let cases: [(Value, &str); 6] = [
        (json!({"email": "not-an-email", "name": "X", "role": "user"}), "email"),
        (
            json!({"email": "x@example.com\r\nBcc: y@example.com", "name": "X", "role": "user"}),
            "email",
        ),
        (json!({"email": "x@example.com", "name": "   ", "role": "user"}), "name"),
        (json!({"email": "x@example.com", "name": "X", "role": "owner"}), "role"),
        (json!({"email": "x@example.com", "name": "X".repeat(201), "role": "user"}), "name"),
        (
            json!({"email": "x@example.com", "name": "X", "role": "user", "department": "D".repeat(101)}),
            "department",
        ),
    ];

    for (request, field) in cases {
        let response = app.post("/api/v1/users", Some(&admin), request).await;
        let body =
            assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, &format!("invalid_{field}"))
                .await;
        assert_eq!(body["field"], field);
    }
    assert_eq!(count_users(&app, &admin).await, 1);
}

#[tokio::test]
async fn a_user_who_is_not_an_admin_is_forbidden_from_admin_routes() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let user = app.active_user(&admin, "plain@example.com", "user", "plain user password").await;

    assert_error(app.get("/api/v1/users", Some(&user)).await, StatusCode::FORBIDDEN, "forbidden")
        .await;
    let invite = app
        .post(
            "/api/v1/users",
            Some(&user),
            json!({"email": "x@example.com", "name": "X", "role": "admin"}),
        )
        .await;
    assert_error(invite, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(count_users(&app, &admin).await, 2);
}

#[tokio::test]
async fn users_are_listed_a_page_at_a_time() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    for i in 0..4 {
        app.clock.advance(chrono::Duration::seconds(1));
        app.invite(&admin, &format!("u{i}@example.com"), "user").await;
    }

    let first = body(app.get("/api/v1/users?limit=2", Some(&admin)).await).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second =
        body(app.get(&format!("/api/v1/users?limit=2&cursor={cursor}"), Some(&admin)).await).await;
    let cursor = second["next_cursor"].as_str().unwrap();
    let third =
        body(app.get(&format!("/api/v1/users?limit=2&cursor={cursor}"), Some(&admin)).await).await;

    let emails: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|page| {
            page["items"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        emails,
        [
            "root@example.com",
            "u0@example.com",
            "u1@example.com",
            "u2@example.com",
            "u3@example.com"
        ]
    );
    assert!(third["next_cursor"].is_null());
}

#[tokio::test]
async fn a_garbage_cursor_and_an_unknown_id_are_clear_errors() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;

    assert_error(
        app.get("/api/v1/users?cursor=garbage", Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
    let unknown = app.get("/api/v1/users/6f1c1f4e-7a51-4a53-9a0b-4f1f3c7e2f10", Some(&admin)).await;
    assert_error(unknown, StatusCode::NOT_FOUND, "user_not_found").await;
    assert_error(
        app.get("/api/v1/users/not-a-uuid", Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    )
    .await;
}

#[tokio::test]
async fn user_resources_never_carry_secrets() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "secretive@example.com", "user", "my hidden password").await;

    let listing = app.get("/api/v1/users", Some(&admin)).await.text().await.unwrap();

    assert!(!listing.contains("argon2"), "{listing}");
    assert!(!listing.contains("password_hash"), "{listing}");
    assert!(!listing.contains("my hidden password"));
}

#[tokio::test]
async fn users_are_searched_filtered_and_sorted_with_a_total() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    for (email, name, role, department) in [
        ("ada@example.com", "Ada Lovelace", "admin", "Research"),
        ("grace@navy.example.com", "Grace Hopper", "user", "Research"),
        ("alan@example.com", "Alan Turing", "user", "Legal"),
    ] {
        let created = app
            .post(
                "/api/v1/users",
                Some(&admin),
                json!({"email": email, "name": name, "role": role, "department": department}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    let emails = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };

    let by_surname = body(app.get("/api/v1/users?q=HOP", Some(&admin)).await).await;
    assert_eq!(emails(&by_surname), ["grace@navy.example.com"]);
    assert_eq!(by_surname["total"], 1);
    let by_domain = body(app.get("/api/v1/users?q=navy", Some(&admin)).await).await;
    assert_eq!(emails(&by_domain), ["grace@navy.example.com"]);
    let admins = body(app.get("/api/v1/users?role=admin&sort=email", Some(&admin)).await).await;
    assert_eq!(emails(&admins), ["ada@example.com", "root@example.com"]);
    let research =
        body(app.get("/api/v1/users?department=Research&sort=-name", Some(&admin)).await).await;
    assert_eq!(emails(&research), ["grace@navy.example.com", "ada@example.com"]);
    let invited = body(app.get("/api/v1/users?status=invited&limit=2", Some(&admin)).await).await;
    assert_eq!(invited["total"], 3);
    assert_eq!(invited["items"].as_array().unwrap().len(), 2);
    assert!(invited["next_cursor"].is_string());

    assert_error(
        app.get("/api/v1/users?sort=age", Some(&admin)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_sort",
    )
    .await;
    assert_error(
        app.get("/api/v1/users?status=gone", Some(&admin)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_status",
    )
    .await;
    let cursor = invited["next_cursor"].as_str().unwrap();
    let mismatched = app
        .get(&format!("/api/v1/users?status=invited&sort=name&cursor={cursor}"), Some(&admin))
        .await;
    assert_error(mismatched, StatusCode::BAD_REQUEST, "invalid_cursor").await;
}

/// Export CSV: 10,000 users; the export holds exactly what the list's
/// filters match (and the import's columns first), defuses formula-like
/// cells, and imports back as "already a user" on every row.
#[tokio::test]
async fn the_export_matches_the_filters_and_imports_back_as_already_users() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let mut file = String::from("email,name,role,department\n");
    for n in 0..10_000 {
        let department = if n % 4 == 0 { "Sales" } else { "Research" };
        let name = if n == 7 { "=cmd|' /C calc'!A0".to_owned() } else { format!("Person {n}") };
        file.push_str(&format!("person{n:05}@example.com,\"{name}\",user,{department}\n"));
    }
    let import = |csv: String, mode: &'static str| {
        app.http
            .post(app.url(&format!("/api/v1/users/import?mode={mode}&file_name=staff.csv")))
            .bearer_auth(&admin)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
    };
    let created = body(import(file, "commit").await.unwrap()).await;
    assert_eq!(created["valid"], 10_000, "{}", created["valid"]);

    let export = |query: &str| {
        app.http
            .get(app.url(&format!("/api/v1/users/export.csv{query}")))
            .bearer_auth(&admin)
            .send()
    };
    let sales = export("?department=Sales&sort=email").await.unwrap();
    assert_eq!(sales.status(), StatusCode::OK);
    assert!(sales.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let sales = sales.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(sales.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(&header[..4], ["email", "name", "role", "department"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let listed = body(app.get("/api/v1/users?department=Sales", Some(&admin)).await).await;
    assert_eq!(rows.len() as u64, listed["total"].as_u64().unwrap());
    assert_eq!(rows.len(), 2_500);
    assert!(rows.iter().all(|r| &r[3] == "Sales" && &r[4] == "invited"));
    let emails: Vec<&str> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert!(emails.windows(2).all(|w| w[0] < w[1]), "sorted by email, no repeats");

    let everyone = export("").await.unwrap().text().await.unwrap();
    assert_eq!(everyone.lines().count(), 1 + 10_001, "header, 10,000 imported and the admin");
    let seventh = everyone.lines().find(|l| l.starts_with("person00007@")).unwrap();
    assert!(seventh.starts_with("person00007@example.com,'=cmd|"), "formula defused: {seventh}");

    let again = body(import(everyone, "preview").await.unwrap()).await;
    assert_eq!(again["valid"], 0, "nobody is new");
    assert_eq!(again["skipped"], 10_001);
    let report = body(
        app.get(
            &format!("/api/v1/imports/{}?limit=200", again["id"].as_str().unwrap()),
            Some(&admin),
        )
        .await,
    )
    .await;
    let reasons: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["problems"][0]["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().all(|r| r.starts_with("this email is already")), "{reasons:?}");
    let bad = export("?status=nobody").await.unwrap();
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_status").await;
}

#[tokio::test]
async fn the_list_finds_expired_invitations_and_refuses_an_unknown_filter() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "old@example.com", "user").await;
    app.clock.advance(chrono::Duration::hours(73));
    let admin = app.admin_token().await;
    app.invite(&admin, "new@example.com", "user").await;

    let expired = body(app.get("/api/v1/users?invitation=expired", Some(&admin)).await).await;
    let emails: Vec<&str> =
        expired["items"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!((emails, &expired["total"]), (vec!["old@example.com"], &json!(1)));
    let export = app.get("/api/v1/users/export.csv?invitation=expired", Some(&admin)).await;
    let export = export.text().await.unwrap();
    assert!(export.contains("old@example.com") && !export.contains("new@example.com"), "{export}");
    let none = body(app.get("/api/v1/users?invitation=email_failed", Some(&admin)).await).await;
    assert_eq!(none["total"], 0);
    let unknown = app.get("/api/v1/users?invitation=lost", Some(&admin)).await;
    assert_error(unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_invitation").await;
}
