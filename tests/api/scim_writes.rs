//! SCIM 2.0 writes at `/scim/v2/Users`: requests as Microsoft Entra ID and
//! Okta publish them in their SCIM documentation, replayed against the
//! real server, each checked against what the admin API then shows; and
//! the guide's rules (last admin, seats, unique addresses) as SCIM errors.

use reqwest::{Method, StatusCode};
use secureai_tests::{TestApp, body};
use serde_json::{Value, json};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn scim_token(app: &TestApp, admin: &str) -> String {
    let created = app
        .post(
            "/api/v1/service-tokens",
            Some(admin),
            json!({"name": "Entra ID", "scopes": ["scim"]}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    body(created).await["secret"].as_str().unwrap().to_owned()
}

/// Sends a SCIM request; answers with the status, the body (null when
/// empty) and the `ETag`.
async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    json: Option<Value>,
    if_match: Option<&str>,
) -> (StatusCode, Value, Option<String>) {
    let mut request = app
        .http
        .request(method, app.url(&format!("/scim/v2{path}")))
        .bearer_auth(token)
        .header("content-type", "application/scim+json");
    if let Some(json) = json {
        request = request.body(json.to_string());
    }
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let tag = response.headers().get("etag").map(|t| t.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let json = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
    (status, json, tag)
}

/// The user as the admin API shows them.
async fn admin_view(app: &TestApp, admin: &str, id: &str) -> Value {
    body(app.get(&format!("/api/v1/users/{id}"), Some(admin)).await).await
}

fn assert_scim_error(
    answer: &(StatusCode, Value, Option<String>),
    status: StatusCode,
    scim_type: Option<&str>,
) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert_eq!(answer.1["status"], json!(status.as_u16().to_string()));
    assert_eq!(answer.1["scimType"].as_str(), scim_type, "{}", answer.1);
}

#[tokio::test]
async fn entra_id_creates_finds_updates_and_disables_a_user_as_its_documentation_shows() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let token = scim_token(&app, &admin).await;

    // Entra's "Create User": userName is an account name here, the work
    // email is the address.
    let create = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
    });
    let (status, created, tag) =
        send(&app, &token, Method::POST, "/Users", Some(create.clone()), None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["userName"], "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1");
    assert_eq!(created["externalId"], "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef");
    assert_eq!(created["emails"][0]["value"], "Test_User_fd0ea19b@testuser.com");
    assert_eq!(tag.as_deref(), created["meta"]["version"].as_str());
    let stored = admin_view(&app, &admin, &id).await;
    assert_eq!(
        (
            &stored["email"],
            &stored["name"],
            &stored["status"],
            &stored["sign_in_method"],
            &stored["role"]
        ),
        (
            &json!("Test_User_fd0ea19b@testuser.com"),
            &json!("givenName familyName"),
            &json!("invited"),
            &json!("sso"),
            &json!("user")
        ),
    );

    // "Get User by query", by userName (any case) and by externalId; a
    // second create of the same person is a conflict.
    for filter in [
        "userName%20eq%20%22test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1%22",
        "externalId%20eq%20%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22",
    ] {
        let (status, found, _) =
            send(&app, &token, Method::GET, &format!("/Users?filter={filter}"), None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (found["totalResults"].as_u64(), found["Resources"][0]["id"].as_str()),
            (Some(1), Some(id.as_str())),
            "{filter}"
        );
    }
    let (_, none, _) =
        send(&app, &token, Method::GET, "/Users?filter=userName%20eq%20%22nobody%22", None, None)
            .await;
    assert_eq!(none["totalResults"], 0);
    let again = send(&app, &token, Method::POST, "/Users", Some(create), None).await;
    assert_scim_error(&again, StatusCode::CONFLICT, Some("uniqueness"));

    // "Update User [Multi-valued properties]" and a path-less replace with
    // dotted and URN-prefixed keys, as Entra sends them.
    let patch = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        {"op": "Add", "path": "title", "value": "Engineer"},
    ]});
    let (status, patched, _) =
        send(&app, &token, Method::PATCH, &format!("/Users/{id}"), Some(patch), None).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {
        "displayName": "Ada Lovelace",
        format!("{ENTERPRISE}:department"): "Research",
    }}]});
    let (status, _, _) =
        send(&app, &token, Method::PATCH, &format!("/Users/{id}"), Some(patch), None).await;
    assert_eq!(status, StatusCode::OK);
    let stored = admin_view(&app, &admin, &id).await;
    assert_eq!(
        (&stored["email"], &stored["name"], &stored["department"]),
        (&json!("updatedEmail@microsoft.com"), &json!("Ada Lovelace"), &json!("Research"))
    );
    let audit = body(
        app.get(&format!("/api/v1/audit?action=user.email_changed&target={id}"), Some(&admin))
            .await,
    )
    .await;
    let event = &audit["items"][0];
    assert_eq!(event["actor_kind"], "service");
    assert_eq!(event["actor_token_name"], "Entra ID");
    assert_eq!(event["changes"][0]["before"], "Test_User_fd0ea19b@testuser.com");
    assert_eq!(event["changes"][0]["after"], "updatedEmail@microsoft.com");

    // "Disable User", with the string "False" Entra is known to send.
    let disable = json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let (status, disabled, _) =
        send(&app, &token, Method::PATCH, &format!("/Users/{id}"), Some(disable), None).await;
    assert_eq!((status, &disabled["active"]), (StatusCode::OK, &json!(false)));
    assert_eq!(admin_view(&app, &admin, &id).await["status"], "deactivated");
    let (_, still, _) = send(&app, &token, Method::GET, &format!("/Users/{id}"), None, None).await;
    assert_eq!(still["active"], false, "a disabled user is still returned");
}

#[tokio::test]
async fn okta_deactivates_with_put_and_patch_and_a_delete_keeps_the_person() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let token = scim_token(&app, &admin).await;
    // Someone who already signs in with a password, matched by Okta.
    let session =
        app.active_user(&admin, "test.user@okta.local", "user", "a long user passphrase").await;
    let (_, found, _) = send(
        &app,
        &token,
        Method::GET,
        "/Users?filter=userName%20eq%20%22test.user@okta.local%22&startIndex=1&count=100",
        None,
        None,
    )
    .await;
    let id = found["Resources"][0]["id"].as_str().unwrap().to_owned();

    // Okta's PUT: the whole user, with a password (ignored) and active false.
    let put = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": id, "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [], "password": "1mz050nq", "active": false,
    });
    let (status, put_answer, _) =
        send(&app, &token, Method::PUT, &format!("/Users/{id}"), Some(put), None).await;
    assert_eq!((status, &put_answer["active"]), (StatusCode::OK, &json!(false)), "{put_answer}");
    let me = app.get("/api/v1/me", Some(&session)).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "the session ended with the deactivation");
    assert_eq!(admin_view(&app, &admin, &id).await["name"], "Test User");

    // Okta's PATCH reactivation, then its deactivation, path-less.
    for active in [true, false] {
        let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": active}}]});
        let (status, answer, _) =
            send(&app, &token, Method::PATCH, &format!("/Users/{id}"), Some(patch), None).await;
        assert_eq!((status, &answer["active"]), (StatusCode::OK, &json!(active)));
    }

    // DELETE deactivates and detaches: 204, then 404; the person stays.
    let (status, empty, _) =
        send(&app, &token, Method::DELETE, &format!("/Users/{id}"), None, None).await;
    assert_eq!((status, empty), (StatusCode::NO_CONTENT, Value::Null));
    let gone = send(&app, &token, Method::GET, &format!("/Users/{id}"), None, None).await;
    assert_scim_error(&gone, StatusCode::NOT_FOUND, None);
    let (_, listed, _) = send(
        &app,
        &token,
        Method::GET,
        "/Users?filter=userName%20eq%20%22test.user@okta.local%22",
        None,
        None,
    )
    .await;
    assert_eq!(listed["totalResults"], 0);
    let kept = admin_view(&app, &admin, &id).await;
    assert_eq!(
        (&kept["email"], &kept["status"]),
        (&json!("test.user@okta.local"), &json!("deactivated"))
    );
    let detached = body(
        app.get(
            &format!("/api/v1/audit?action=user.provisioning_detached&target={id}"),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(detached["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_guides_rules_answer_as_scim_errors_and_write_nothing() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let token = scim_token(&app, &admin).await;
    let (_, found, _) = send(
        &app,
        &token,
        Method::GET,
        "/Users?filter=userName%20eq%20%22root@example.com%22",
        None,
        None,
    )
    .await;
    let root = found["Resources"][0]["id"].as_str().unwrap().to_owned();

    // The last active admin: not deactivated, not deleted.
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let refused =
        send(&app, &token, Method::PATCH, &format!("/Users/{root}"), Some(patch), None).await;
    assert_scim_error(&refused, StatusCode::CONFLICT, Some("mutability"));
    assert!(refused.1["detail"].as_str().unwrap().contains("last active admin"));
    // A password (break-glass) admin keeps their role whatever roles say.
    for operation in [
        json!({"op": "remove", "path": "roles"}),
        json!({"op": "replace", "path": "roles", "value": [{"value": "user"}]}),
    ] {
        let patch = json!({"schemas": [PATCH_OP], "Operations": [operation]});
        let (status, kept, _) =
            send(&app, &token, Method::PATCH, &format!("/Users/{root}"), Some(patch), None).await;
        assert_eq!(
            (status, &kept["roles"][0]["value"]),
            (StatusCode::OK, &json!("admin")),
            "{kept}"
        );
    }
    let refused = send(&app, &token, Method::DELETE, &format!("/Users/{root}"), None, None).await;
    assert_scim_error(&refused, StatusCode::CONFLICT, Some("mutability"));
    let stored = admin_view(&app, &admin, &root).await;
    assert_eq!((&stored["role"], &stored["status"]), (&json!("admin"), &json!("active")));
    let audit =
        body(app.get("/api/v1/audit?action=provisioning.refused", Some(&admin)).await).await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(2));

    // Versions: a stale If-Match is 412 and changes nothing; the current one passes.
    let (_, current, tag) =
        send(&app, &token, Method::GET, &format!("/Users/{root}"), None, None).await;
    let rename = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Grace Hopper"}]});
    let stale = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/Users/{root}"),
        Some(rename.clone()),
        Some("W/\"0000000000000000\""),
    )
    .await;
    assert_scim_error(&stale, StatusCode::PRECONDITION_FAILED, None);
    assert_eq!(admin_view(&app, &admin, &root).await["name"], current["displayName"]);
    let (status, renamed, new_tag) =
        send(&app, &token, Method::PATCH, &format!("/Users/{root}"), Some(rename), tag.as_deref())
            .await;
    assert_eq!((status, &renamed["displayName"]), (StatusCode::OK, &json!("Grace Hopper")));
    assert_ne!(new_tag, tag, "the version follows the change");

    // Bad bodies and values: 400 with a scimType, nothing created.
    let users_before = app.rows("users").await;
    let cases = [
        (json!("not an object"), "invalidSyntax"),
        (json!({"userName": "not-an-address"}), "invalidValue"),
        (json!({"userName": "ada@example.com", "active": "sometimes"}), "invalidValue"),
        (json!({"userName": "ada@example.com", "externalId": "x".repeat(256)}), "invalidValue"),
        (json!({"userName": "ada@example.com", "displayName": "a".repeat(500)}), "invalidValue"),
    ];
    for (create, scim_type) in cases {
        let refused = send(&app, &token, Method::POST, "/Users", Some(create.clone()), None).await;
        assert_scim_error(&refused, StatusCode::BAD_REQUEST, Some(scim_type));
    }
    assert_eq!(app.rows("users").await, users_before);

    // Seats: the create past the limit is refused naming it.
    let seats = app.put("/api/v1/settings/seats", Some(&admin), json!({"limit": 2})).await;
    assert_eq!(seats.status(), StatusCode::OK);
    let one = json!({"userName": "one@example.com", "displayName": "One"});
    assert_eq!(
        send(&app, &token, Method::POST, "/Users", Some(one), None).await.0,
        StatusCode::CREATED
    );
    let two = json!({"userName": "two@example.com", "displayName": "Two"});
    let refused = send(&app, &token, Method::POST, "/Users", Some(two), None).await;
    assert_scim_error(&refused, StatusCode::CONFLICT, None);
    assert!(refused.1["detail"].as_str().unwrap().contains("all 2 seats"));
    // Another user's address, in another case.
    let (_, one, _) = send(
        &app,
        &token,
        Method::GET,
        "/Users?filter=userName%20eq%20%22one@example.com%22",
        None,
        None,
    )
    .await;
    let one = one["Resources"][0]["id"].as_str().unwrap().to_owned();
    let taken = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "userName", "value": "ROOT@example.com"}]});
    let refused =
        send(&app, &token, Method::PATCH, &format!("/Users/{one}"), Some(taken), None).await;
    assert_scim_error(&refused, StatusCode::CONFLICT, Some("uniqueness"));
    assert_eq!(admin_view(&app, &admin, &one).await["email"], "one@example.com");
}
