//! SCIM 2.0 groups at `/scim/v2/Groups`: pushed, renamed and their
//! members removed as Entra ID and Okta send it; concurrent changes; the
//! admin group; and SCIM racing the panel for the last admins.

use reqwest::{Method, StatusCode};
use secureai_tests::{TestApp, body};
use serde_json::{Value, json};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

async fn scim_token(app: &TestApp, admin: &str) -> String {
    let created = app
        .post("/api/v1/service-tokens", Some(admin), json!({"name": "Okta", "scopes": ["scim"]}))
        .await;
    body(created).await["secret"].as_str().unwrap().to_owned()
}

async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    json: Option<Value>,
) -> (StatusCode, Value) {
    let mut request =
        app.http.request(method, app.url(&format!("/scim/v2{path}"))).bearer_auth(token);
    if let Some(json) = json {
        request = request.header("content-type", "application/scim+json").body(json.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

async fn scim_user(app: &TestApp, token: &str, email: &str) -> String {
    let (status, user) = send(
        app,
        token,
        Method::POST,
        "/Users",
        Some(json!({"userName": email, "displayName": email})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    user["id"].as_str().unwrap().to_owned()
}

async fn members(app: &TestApp, token: &str, group: &str) -> Vec<String> {
    let (_, found) = send(app, token, Method::GET, &format!("/Groups/{group}"), None).await;
    let mut ids: Vec<String> = found["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn patch(operations: Value) -> Option<Value> {
    Some(json!({"schemas": [PATCH_OP], "Operations": operations}))
}

#[tokio::test]
async fn groups_are_pushed_renamed_and_members_removed_both_ways() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let token = scim_token(&app, &admin).await;
    let mut people = Vec::new();
    for name in ["ada", "bob", "cy"] {
        people.push(scim_user(&app, &token, &format!("{name}@example.com")).await);
    }

    // Okta's group push: created empty, then members added.
    let (status, group) = send(
        &app,
        &token,
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let id = group["id"].as_str().unwrap().to_owned();
    let (_, found) = send(
        &app,
        &token,
        Method::GET,
        "/Groups?filter=displayName%20eq%20%22test%20scimv2%22",
        None,
    )
    .await;
    assert_eq!(found["Resources"][0]["id"], json!(id));
    let add: Vec<Value> = people.iter().map(|p| json!({"value": p, "display": "x"})).collect();
    let (status, _) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{id}"),
        patch(json!([{"op": "add", "path": "members", "value": add}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut all = people.clone();
    all.sort();
    assert_eq!(members(&app, &token, &id).await, all);

    // Okta removes one member by filter; Entra removes with a value list.
    let (status, _) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{id}"),
        patch(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", people[0])}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{id}"),
        patch(json!([{"op": "Remove", "path": "members", "value": [{"value": people[1]}]}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members(&app, &token, &id).await, vec![people[2].clone()]);

    // Renames: Entra with a path, Okta with the read-only id in the value.
    let (status, renamed) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{id}"),
        patch(json!([{"op": "Replace", "path": "displayName", "value": "Engineering"}])),
    )
    .await;
    assert_eq!((status, &renamed["displayName"]), (StatusCode::OK, &json!("Engineering")));
    let (status, renamed) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{id}"),
        patch(json!([{"op": "replace", "value": {"id": id, "displayName": "R&D"}}])),
    )
    .await;
    assert_eq!(
        (status, &renamed["displayName"], &renamed["id"]),
        (StatusCode::OK, &json!("R&D"), &json!(id))
    );

    // Unknown members and taken names are refused as SCIM errors.
    let (status, refused) = send(&app, &token, Method::PATCH, &format!("/Groups/{id}"), patch(json!([{"op": "add", "path": "members", "value": [{"value": "01a23c4e-0000-7000-8000-000000000000"}]}]))).await;
    assert_eq!((status, &refused["scimType"]), (StatusCode::BAD_REQUEST, &json!("invalidValue")));
    send(
        &app,
        &token,
        Method::POST,
        "/Groups",
        Some(json!({"displayName": "Sales", "externalId": "g-sales"})),
    )
    .await;
    let (_, by_external) =
        send(&app, &token, Method::GET, "/Groups?filter=externalId%20eq%20%22g-sales%22", None)
            .await;
    assert_eq!(
        (&by_external["totalResults"], &by_external["Resources"][0]["displayName"]),
        (&json!(1), &json!("Sales"))
    );
    let (status, refused) =
        send(&app, &token, Method::POST, "/Groups", Some(json!({"displayName": "SALES"}))).await;
    assert_eq!((status, &refused["scimType"]), (StatusCode::CONFLICT, &json!("uniqueness")));

    // Deleting the group keeps its members.
    let (status, _) = send(&app, &token, Method::DELETE, &format!("/Groups/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&app, &token, Method::GET, &format!("/Groups/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let kept = app.get(&format!("/api/v1/users/{}", people[2]), Some(&admin)).await;
    assert_eq!(body(kept).await["status"], "invited", "members are never deleted with a group");
    let audit = body(app.get("/api/v1/audit?action=group.deleted", Some(&admin)).await).await;
    assert_eq!(audit["items"][0]["actor_token_name"], "Okta");
}

#[tokio::test]
async fn two_concurrent_patches_adding_members_to_one_group_keep_both() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let token = scim_token(&app, &admin).await;
    let (_, group) =
        send(&app, &token, Method::POST, "/Groups", Some(json!({"displayName": "Everyone"}))).await;
    let id = group["id"].as_str().unwrap().to_owned();
    let mut people = Vec::new();
    for i in 0..8 {
        people.push(scim_user(&app, &token, &format!("p{i}@example.com")).await);
    }
    let path = format!("/Groups/{id}");
    let adds = people.iter().map(|p| {
        send(
            &app,
            &token,
            Method::PATCH,
            &path,
            patch(json!([{"op": "Add", "path": "members", "value": [{"value": p}]}])),
        )
    });
    for (status, answer) in futures_util::future::join_all(adds).await {
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let mut all = people.clone();
    all.sort();
    assert_eq!(members(&app, &token, &id).await, all, "no concurrent addition lost");
}

#[tokio::test]
async fn the_admin_group_makes_its_sso_members_admins_and_leaving_makes_them_users() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let token = scim_token(&app, &admin).await;
    let ada = scim_user(&app, &token, "ada@example.com").await;
    let (_, group) = send(
        &app,
        &token,
        Method::POST,
        "/Groups",
        Some(json!({"displayName": "SecureAI Admins", "members": [{"value": ada}]})),
    )
    .await;
    let id = group["id"].as_str().unwrap().to_owned();
    // An admin by SCIM `roles`, outside the group.
    let (status, dan) = send(
        &app,
        &token,
        Method::POST,
        "/Users",
        Some(json!({"userName": "dan@example.com", "roles": [{"value": "admin"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{dan}");
    let dan = dan["id"].as_str().unwrap().to_owned();
    let role = |who: String| {
        let app = &app;
        let admin = admin.clone();
        async move {
            body(app.get(&format!("/api/v1/users/{who}"), Some(&admin)).await).await["role"].clone()
        }
    };
    assert_eq!(role(ada.clone()).await, "user");

    let saved = app
        .put(
            "/api/v1/settings/provisioning",
            Some(&admin),
            json!({"admin_group": id, "send_access_email": false}),
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(role(ada.clone()).await, "admin", "naming the group promotes its members");
    assert_eq!(role(dan.clone()).await, "user", "and makes the SSO admins outside it users");
    let audit = body(app.get("/api/v1/audit?action=user.role_changed", Some(&admin)).await).await;
    assert!(
        audit["items"].as_array().unwrap().iter().any(|e| e["target_email"] == "dan@example.com"),
        "{audit}"
    );
    // From now on the group alone makes admins: SCIM `roles` do not.
    let (status, _) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/Users/{dan}"),
        patch(json!([{"op": "replace", "path": "roles", "value": [{"value": "admin"}]}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(role(dan.clone()).await, "user", "roles no longer promote");
    let bad = app.put("/api/v1/settings/provisioning", Some(&admin), json!({"admin_group": "01a23c4e-0000-7000-8000-000000000000", "send_access_email": true})).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Joining and leaving set the role; new users get no email now.
    let bob = scim_user(&app, &token, "bob@example.com").await;
    let outbox_before = app.rows("outbox").await;
    send(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{id}"),
        patch(json!([{"op": "add", "path": "members", "value": [{"value": bob}]}])),
    )
    .await;
    assert_eq!(role(bob.clone()).await, "admin");
    send(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{id}"),
        patch(json!([{"op": "remove", "path": format!("members[value eq \"{ada}\"]")}])),
    )
    .await;
    assert_eq!(role(ada.clone()).await, "user");
    let _ = scim_user(&app, &token, "cy@example.com").await;
    assert_eq!(app.rows("outbox").await, outbox_before, "the access-ready email is off");
    let (_, root) = send(
        &app,
        &token,
        Method::GET,
        "/Users?filter=userName%20eq%20%22root@example.com%22",
        None,
    )
    .await;
    assert_eq!(
        root["Resources"][0]["roles"][0]["value"], "admin",
        "a password admin keeps their role"
    );
}

#[tokio::test]
async fn scim_and_the_panel_deactivating_the_two_last_admins_at_once_leave_one() {
    let app = TestApp::with_admin().await;
    let root_session = app.admin_token().await;
    let token = scim_token(&app, &root_session).await;
    let second = app
        .active_user(&root_session, "second@example.com", "admin", "a long second passphrase")
        .await;
    let (_, found) = send(
        &app,
        &token,
        Method::GET,
        "/Users?filter=userName%20eq%20%22root@example.com%22",
        None,
    )
    .await;
    let root = found["Resources"][0]["id"].as_str().unwrap().to_owned();
    let (_, found) = send(
        &app,
        &token,
        Method::GET,
        "/Users?filter=userName%20eq%20%22second@example.com%22",
        None,
    )
    .await;
    let second_id = found["Resources"][0]["id"].as_str().unwrap().to_owned();

    // The identity provider deactivates the second admin while the second
    // admin deactivates root in the panel.
    let (second_path, root_path) = (format!("/Users/{second_id}"), format!("/api/v1/users/{root}"));
    let over_scim = send(
        &app,
        &token,
        Method::PATCH,
        &second_path,
        patch(json!([{"op": "replace", "path": "active", "value": false}])),
    );
    let in_panel = app.patch(&root_path, &second, json!({"active": false}));
    let ((scim_status, scim_answer), panel) = tokio::join!(over_scim, in_panel);
    let panel_status = panel.status();
    let succeeded = [scim_status == StatusCode::OK, panel_status == StatusCode::OK];
    assert_eq!(
        succeeded.iter().filter(|s| **s).count(),
        1,
        "{scim_status} {scim_answer} / {panel_status}"
    );
    let (_, listed) = send(&app, &token, Method::GET, "/Users?count=10", None).await;
    let active_admins = listed["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["active"] == true && u["roles"][0]["value"] == "admin")
        .count();
    assert_eq!(active_admins, 1, "one active admin remains");
    if scim_status != StatusCode::OK {
        assert_eq!(scim_answer["scimType"], "mutability");
    }
}

#[tokio::test]
async fn the_users_list_its_export_and_the_profile_follow_a_group() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let token = scim_token(&app, &admin).await;
    let mut people = Vec::new();
    for name in ["ada", "bob", "cy"] {
        people.push(scim_user(&app, &token, &format!("{name}@example.com")).await);
    }
    let members: Vec<Value> = people[..2].iter().map(|p| json!({"value": p})).collect();
    let (status, group) = send(
        &app,
        &token,
        Method::POST,
        "/Groups",
        Some(json!({"displayName": "Engineering", "members": members})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let id = group["id"].as_str().unwrap();

    let listed = body(app.get(&format!("/api/v1/users?group={id}"), Some(&admin)).await).await;
    let mut emails: Vec<&str> =
        listed["items"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    emails.sort_unstable();
    assert_eq!(emails, ["ada@example.com", "bob@example.com"], "{listed}");
    assert_eq!(listed["total"], 2);
    let searched =
        body(app.get(&format!("/api/v1/users?group={id}&q=bob"), Some(&admin)).await).await;
    assert_eq!(searched["total"], 1);
    let refused = app.get("/api/v1/users?group=engineering", Some(&admin)).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = body(refused).await;
    assert_eq!((&refused["code"], &refused["field"]), (&json!("invalid_group"), &json!("group")));
    let export = app.get(&format!("/api/v1/users/export.csv?group={id}"), Some(&admin)).await;
    let csv = export.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and the two members: {csv}");
    assert!(!csv.contains("cy@example.com"));

    let panel = app.panel_browser().await;
    let page = |path: String| {
        let panel = panel.clone();
        let url = app.url(&path);
        async move { panel.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let all = page("/admin/users".into()).await;
    assert!(all.contains(&format!("<option value=\"{id}\">Engineering</option>")), "{all}");
    let filtered = page(format!("/admin/users?group={id}")).await;
    assert!(filtered.contains(&format!("<option value=\"{id}\" selected>Engineering</option>")));
    assert!(filtered.contains("ada@example.com") && filtered.contains("bob@example.com"));
    assert!(!filtered.contains("cy@example.com"), "only the group's members");
    let profile = page(format!("/admin/users/{}", people[0])).await;
    assert!(
        profile.contains(&format!("<a href=\"/admin/users?group={id}\">Engineering</a>")),
        "the profile links to the group's members"
    );
}
