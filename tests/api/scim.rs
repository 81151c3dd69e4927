//! SCIM 2.0 at `/scim/v2`, read side: a service token with the `scim`
//! scope, discovery, users by id, by filter and by position, errors in the
//! SCIM schema.

use reqwest::StatusCode;
use secureai_tests::{ADMIN_EMAIL, TestApp, body};
use serde_json::{Value, json};

async fn token(app: &TestApp, admin: &str, scopes: Value) -> String {
    let created = app
        .post("/api/v1/service-tokens", Some(admin), json!({"name": "Entra ID", "scopes": scopes}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    body(created).await["secret"].as_str().unwrap().to_owned()
}

async fn scim(app: &TestApp, token: Option<&str>, path: &str) -> (StatusCode, Value) {
    let mut request = app.http.get(app.url(&format!("/scim/v2{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(kind, "application/scim+json", "{path}");
    assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    (status, response.json().await.unwrap())
}

fn assert_scim_error(answer: &(StatusCode, Value), status: StatusCode, scim_type: Option<&str>) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert_eq!(answer.1["status"], json!(status.as_u16().to_string()));
    assert_eq!(answer.1["scimType"].as_str(), scim_type, "{}", answer.1);
    assert!(answer.1["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn only_a_token_with_the_scim_scope_opens_it_and_discovery_says_what_is_supported() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let usage = token(&app, &admin, json!(["usage"])).await;
    let scim_token = token(&app, &admin, json!(["scim"])).await;

    assert_scim_error(&scim(&app, None, "/Users").await, StatusCode::UNAUTHORIZED, None);
    assert_scim_error(
        &scim(&app, Some("sat_nope"), "/Users").await,
        StatusCode::UNAUTHORIZED,
        None,
    );
    assert_scim_error(&scim(&app, Some(&usage), "/Users").await, StatusCode::FORBIDDEN, None);
    assert_scim_error(&scim(&app, Some(&admin), "/Users").await, StatusCode::UNAUTHORIZED, None);

    // The scheme's name in any letter case.
    let lower = app
        .http
        .get(app.url("/scim/v2/Users"))
        .header("authorization", format!("bearer {scim_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), StatusCode::OK);
    let too_many = format!("/Users?attributes={}", "userName,".repeat(60));
    let too_many = scim(&app, Some(&scim_token), &too_many).await;
    assert_scim_error(&too_many, StatusCode::BAD_REQUEST, Some("invalidValue"));

    let (status, config) = scim(&app, Some(&scim_token), "/ServiceProviderConfig").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&config["bulk"]["supported"], &config["sort"]["supported"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(config["filter"]["supported"], true);
    let (_, types) = scim(&app, Some(&scim_token), "/ResourceTypes").await;
    assert_eq!(types["Resources"][0]["endpoint"], "/Users");
    let (_, user_type) = scim(&app, Some(&scim_token), "/ResourceTypes/User").await;
    assert_eq!(user_type["schema"], "urn:ietf:params:scim:schemas:core:2.0:User");
    let (_, schemas) = scim(&app, Some(&scim_token), "/Schemas").await;
    assert_eq!(schemas["totalResults"], 3);
    let (_, user_schema) =
        scim(&app, Some(&scim_token), "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").await;
    let user_name = &user_schema["attributes"][0];
    assert_eq!(
        (&user_name["name"], &user_name["uniqueness"]),
        (&json!("userName"), &json!("server"))
    );
    assert_scim_error(
        &scim(&app, Some(&scim_token), "/Schemas/nope").await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_scim_error(
        &scim(&app, Some(&scim_token), "/Nothing").await,
        StatusCode::NOT_FOUND,
        None,
    );
}

#[tokio::test]
async fn users_are_read_by_id_by_unique_attribute_and_by_position() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let scim_token = token(&app, &admin, json!(["scim"])).await;
    for i in 0..5 {
        app.invite(&admin, &format!("user{i}@example.com"), "user").await;
    }
    let root = app.user_id(&admin, ADMIN_EMAIL).await;
    let gone = app.user_id(&admin, "user4@example.com").await;
    let deactivated =
        app.patch(&format!("/api/v1/users/{gone}"), &admin, json!({"active": false})).await;
    assert_eq!(deactivated.status(), StatusCode::OK);
    let t = Some(scim_token.as_str());

    let (status, user) = scim(&app, t, &format!("/Users/{root}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&user["id"], &user["userName"]), (&json!(root), &json!(ADMIN_EMAIL)));
    assert_eq!((&user["active"], &user["roles"][0]["value"]), (&json!(true), &json!("admin")));
    assert_eq!(user["emails"][0], json!({"value": ADMIN_EMAIL, "type": "work"}));
    assert!(
        user["meta"]["location"].as_str().unwrap().ends_with(&format!("/scim/v2/Users/{root}"))
    );
    let (_, gone_user) = scim(&app, t, &format!("/Users/{gone}")).await;
    assert_eq!(gone_user["active"], false, "deactivated, never deleted");
    assert_eq!(gone_user.get("roles"), None, "a user holds no special role");
    // The same query in a SearchRequest body (RFC 7644 §3.4.3).
    let searched: Value = app
        .http
        .post(app.url("/scim/v2/Users/.search"))
        .bearer_auth(&scim_token)
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": format!("userName eq \"{ADMIN_EMAIL}\""),
            "attributes": ["userName"],
            "startIndex": 1,
            "count": 10,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(searched["totalResults"], 1, "{searched}");
    assert_eq!(searched["Resources"][0]["userName"], ADMIN_EMAIL);
    assert_eq!(searched["Resources"][0].get("emails"), None, "only the attributes asked for");
    let unknown = format!("/Users/{}", secureai_domain::UserId::generate());
    assert_scim_error(&scim(&app, t, &unknown).await, StatusCode::NOT_FOUND, None);
    assert_scim_error(&scim(&app, t, "/Users/not-an-id").await, StatusCode::NOT_FOUND, None);

    // Entra and Okta look users up by userName, in any letter case.
    let by_name = |value: &str| format!("/Users?filter=userName%20eq%20%22{value}%22");
    let (_, found) = scim(&app, t, &by_name("USER1@Example.com")).await;
    assert_eq!(
        (&found["totalResults"], &found["Resources"][0]["userName"]),
        (&json!(1), &json!("user1@example.com"))
    );
    let (_, none) = scim(&app, t, &by_name("nobody@example.com")).await;
    assert_eq!((&none["totalResults"], &none["Resources"]), (&json!(0), &json!([])));
    let (_, by_email) =
        scim(&app, t, "/Users?filter=emails.value%20eq%20%22user2%40example.com%22").await;
    assert_eq!(by_email["totalResults"], 1);
    let (_, by_id) = scim(&app, t, &format!("/Users?filter=id%20eq%20%22{root}%22")).await;
    assert_eq!(by_id["Resources"][0]["id"], json!(root));
    // The full grammar, answered by the store: users whose address starts
    // with `user` (any case) and who are active, or the root admin.
    let query = urlencoding(
        r#"(userName sw "USER" and active eq true) or emails[type eq "work" and value eq "root@example.com"]"#,
    );
    let (status, found) = scim(&app, t, &format!("/Users?filter={query}&count=2")).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!((&found["totalResults"], &found["itemsPerPage"]), (&json!(5), &json!(2)), "{found}");
    let query = urlencoding(r#"not (active eq true)"#);
    let (_, inactive) = scim(&app, t, &format!("/Users?filter={query}")).await;
    assert_eq!(inactive["Resources"][0]["id"], json!(gone));
    let unsupported = scim(&app, t, "/Users?filter=title%20co%20%22a%22").await;
    assert_scim_error(&unsupported, StatusCode::BAD_REQUEST, Some("invalidFilter"));
    let ordering = scim(&app, t, "/Users?filter=userName%20gt%20%22a%22").await;
    assert_scim_error(&ordering, StatusCode::BAD_REQUEST, Some("invalidFilter"));
    let broken = scim(&app, t, "/Users?filter=userName%20eq").await;
    assert_scim_error(&broken, StatusCode::BAD_REQUEST, Some("invalidFilter"));

    // Pages by position: 1-based, in creation order, integer counts.
    let (_, all) = scim(&app, t, "/Users").await;
    assert_eq!(all["totalResults"], 6);
    let ids: Vec<&str> =
        all["Resources"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 6);
    let (_, page) = scim(&app, t, "/Users?startIndex=2&count=2").await;
    assert_eq!(
        (&page["startIndex"], &page["itemsPerPage"], &page["totalResults"]),
        (&json!(2), &json!(2), &json!(6))
    );
    let page_ids: Vec<&str> =
        page["Resources"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(page_ids, ids[1..3]);
    let (_, empty) = scim(&app, t, "/Users?count=0").await;
    assert_eq!((&empty["itemsPerPage"], &empty["totalResults"]), (&json!(0), &json!(6)));
    let (_, past) = scim(&app, t, "/Users?startIndex=100").await;
    assert_eq!(past["Resources"], json!([]));
    // The largest positions and counts answer, and never more than a page.
    let (status, farthest) = scim(&app, t, "/Users?startIndex=9223372036854775807").await;
    assert_eq!((status, &farthest["Resources"]), (StatusCode::OK, &json!([])));
    let (_, many) = scim(&app, t, "/Users?count=9223372036854775807").await;
    assert_eq!(many["itemsPerPage"], 6);
    let beyond = scim(&app, t, "/Users?startIndex=18446744073709551616").await;
    assert_scim_error(&beyond, StatusCode::BAD_REQUEST, Some("invalidValue"));
    let bad = scim(&app, t, "/Users?startIndex=abc").await;
    assert_scim_error(&bad, StatusCode::BAD_REQUEST, Some("invalidValue"));
}

#[tokio::test]
async fn answers_carry_the_attributes_asked_for_and_a_version_that_follows_changes() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let scim_token = token(&app, &admin, json!(["scim"])).await;
    let created = body(
        app.post(
            "/api/v1/users",
            Some(&admin),
            json!({"email": "ada@example.com", "name": "Ada", "role": "user", "department": "Research"}),
        )
        .await,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let t = Some(scim_token.as_str());

    let (_, only) = scim(&app, t, &format!("/Users/{id}?attributes=userName,name.formatted")).await;
    let mut keys: Vec<&String> = only.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["id", "name", "schemas", "userName"], "{only}");
    let department = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let (_, full) = scim(&app, t, &format!("/Users/{id}")).await;
    assert_eq!(full[department]["department"], "Research");
    let (_, less) =
        scim(&app, t, &format!("/Users/{id}?excludedAttributes=emails,{department}:department"))
            .await;
    assert!(less.get("emails").is_none() && less.get(department).is_none(), "{less}");
    assert_eq!(less["userName"], "ada@example.com");
    let (_, listed) = scim(&app, t, "/Users?attributes=userName").await;
    assert!(listed["Resources"].as_array().unwrap().iter().all(|u| u.get("emails").is_none()));

    let response = app
        .http
        .get(app.url(&format!("/scim/v2/Users/{id}")))
        .bearer_auth(&scim_token)
        .send()
        .await
        .unwrap();
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let before: Value = response.json().await.unwrap();
    assert!(etag.starts_with("W/\"") && before["meta"]["version"] == json!(etag), "{etag}");
    let (_, again) = scim(&app, t, &format!("/Users/{id}")).await;
    assert_eq!(again["meta"]["version"], before["meta"]["version"], "stable while nothing changes");
    // The test clock stands still unless moved.
    app.clock.advance(chrono::Duration::milliseconds(1500));
    let renamed =
        app.patch(&format!("/api/v1/users/{id}"), &admin, json!({"name": "Ada Lovelace"})).await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let (_, after) = scim(&app, t, &format!("/Users/{id}")).await;
    assert_ne!(after["meta"]["version"], before["meta"]["version"]);

    // meta.lastModified: the creation until the panel renamed her, then the
    // rename; a filter compares with exactly what was shown.
    let instant = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(before["meta"]["lastModified"], before["meta"]["created"]);
    let modified = &after["meta"]["lastModified"];
    assert!(instant(modified) > instant(&before["meta"]["lastModified"]), "{after}");
    assert_eq!(after["meta"]["created"], before["meta"]["created"]);
    let since = |op: &str| {
        format!("/Users?filter={}", urlencoding(&format!("meta.lastModified {op} {modified}")))
    };
    let (status, changed) = scim(&app, t, &since("ge")).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["totalResults"], 1, "{changed}");
    assert_eq!(changed["Resources"][0]["id"], json!(id));
    let (_, later) = scim(&app, t, &since("gt")).await;
    assert_eq!(later["totalResults"], 0, "{later}");
    let (_, earlier) = scim(&app, t, &since("lt")).await;
    assert_eq!(earlier["totalResults"], 1, "the admin, changed before: {earlier}");
    assert_ne!(earlier["Resources"][0]["id"], json!(id));
}

/// The filter as a query-string value.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}
