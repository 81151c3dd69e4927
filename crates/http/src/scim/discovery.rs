//! Discovery (RFC 7644 §4): what this server supports, its resource types
//! and their schemas, so that a client knows what to send.

use poem::http::StatusCode;
use poem::web::Path;
use poem::{Request, Response, handler};
use serde_json::{Value, json};

use super::{ScimError, State, caller, list_response, scim_json};

pub(crate) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const ENTERPRISE_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(crate) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The base URL of the SCIM endpoint, for `meta.location`.
pub(crate) fn base(state: &crate::AppState) -> String {
    format!("{}/scim/v2", state.public_url)
}

fn attribute(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "type": "string",
        "multiValued": false,
        "description": description,
        "required": false,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    })
}

fn user_schema() -> Value {
    let mut user_name = attribute(
        "userName",
        "The user's work email address: unique across the instance in any letter case.",
    );
    user_name["required"] = json!(true);
    user_name["uniqueness"] = json!("server");
    let required = |mut attribute: Value| {
        attribute["required"] = json!(true);
        attribute
    };
    let mut name = required(attribute(
        "name",
        "The user's name: SecureAI always has one (on creation without one, the address's local part).",
    ));
    name["type"] = json!("complex");
    name["subAttributes"] = json!([attribute("formatted", "The full name, as displayed.")]);
    let mut emails = attribute(
        "emails",
        "The work email address: userName when that is an address, else the primary email, else the work one.",
    );
    emails["type"] = json!("complex");
    emails["multiValued"] = json!(true);
    emails["required"] = json!(true);
    let mut kind = attribute("type", "Always `work`.");
    kind["canonicalValues"] = json!(["work"]);
    emails["subAttributes"] = json!([required(attribute("value", "The address.")), kind]);
    let mut active = attribute(
        "active",
        "false once deactivated: sign-in blocked, sessions ended, data kept. Users are never deleted.",
    );
    active["type"] = json!("boolean");
    active["required"] = json!(true);
    let mut roles = attribute(
        "roles",
        "`[{\"value\": \"admin\"}]` for an admin; absent for a user. Removing it makes a user.",
    );
    roles["type"] = json!("complex");
    roles["multiValued"] = json!(true);
    let mut role = attribute("value", "`admin`: any other value means a user.");
    role["canonicalValues"] = json!(["admin"]);
    roles["subAttributes"] = json!([role]);
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A person who uses SecureAI.",
        "attributes": [
            user_name,
            name,
            required(attribute("displayName", "The name shown in SecureAI.")),
            emails,
            active,
            roles,
        ],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{USER_SCHEMA}")},
    })
}

fn enterprise_schema() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": ENTERPRISE_SCHEMA,
        "name": "EnterpriseUser",
        "description": "Enterprise attributes: the department.",
        "attributes": [attribute("department", "The user's department.")],
        "meta": {
            "resourceType": "Schema",
            "location": format!("/scim/v2/Schemas/{ENTERPRISE_SCHEMA}"),
        },
    })
}

fn group_schema() -> Value {
    let mut name = attribute("displayName", "The group's name: unique in any letter case.");
    name["required"] = json!(true);
    name["uniqueness"] = json!("server");
    let mut members = attribute("members", "The users in the group (never deleted with it).");
    members["type"] = json!("complex");
    members["multiValued"] = json!(true);
    let mut value = attribute("value", "The member's user id.");
    value["mutability"] = json!("immutable");
    let mut reference = attribute("$ref", "The member's address in this API.");
    reference["type"] = json!("reference");
    reference["referenceTypes"] = json!(["User"]);
    reference["mutability"] = json!("immutable");
    let mut kind = attribute("type", "Always `User`.");
    kind["canonicalValues"] = json!(["User"]);
    kind["mutability"] = json!("immutable");
    members["subAttributes"] = json!([value, reference, kind]);
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A group of users pushed by the identity provider; one may be the admin group.",
        "attributes": [name, members],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{GROUP_SCHEMA}")},
    })
}

fn group_resource_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "Groups of users.",
        "schema": GROUP_SCHEMA,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
    })
}

fn user_resource_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "People who use SecureAI.",
        "schema": USER_SCHEMA,
        "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": false}],
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
    })
}

/// `GET /ServiceProviderConfig`.
#[handler]
pub(crate) async fn service_provider_config(state: State<'_>, req: &Request) -> Response {
    if let Err(e) = caller(&state, req).await {
        return poem::IntoResponse::into_response(e);
    }
    let base = base(&state);
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": state.service.policy().max_page_size},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Service token",
            "description": "A SecureAI service token with the scim scope (Settings › Service tokens), as Authorization: Bearer.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    });
    scim_json(StatusCode::OK, &body)
}

/// `GET /ResourceTypes`.
#[handler]
pub(crate) async fn resource_types(state: State<'_>, req: &Request) -> Response {
    if let Err(e) = caller(&state, req).await {
        return poem::IntoResponse::into_response(e);
    }
    let base = base(&state);
    let types = vec![user_resource_type(&base), group_resource_type(&base)];
    scim_json(StatusCode::OK, &list_response(types, 2, 1))
}

/// `GET /ResourceTypes/{id}`.
#[handler]
pub(crate) async fn resource_type(
    state: State<'_>,
    req: &Request,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = caller(&state, req).await {
        return poem::IntoResponse::into_response(e);
    }
    match id.as_str() {
        "User" => scim_json(StatusCode::OK, &user_resource_type(&base(&state))),
        "Group" => scim_json(StatusCode::OK, &group_resource_type(&base(&state))),
        _ => poem::IntoResponse::into_response(ScimError::not_found("resource type")),
    }
}

/// `GET /Schemas`.
#[handler]
pub(crate) async fn schemas(state: State<'_>, req: &Request) -> Response {
    if let Err(e) = caller(&state, req).await {
        return poem::IntoResponse::into_response(e);
    }
    let schemas = vec![user_schema(), enterprise_schema(), group_schema()];
    scim_json(StatusCode::OK, &list_response(schemas, 3, 1))
}

/// `GET /Schemas/{id}`.
#[handler]
pub(crate) async fn schema(state: State<'_>, req: &Request, Path(id): Path<String>) -> Response {
    if let Err(e) = caller(&state, req).await {
        return poem::IntoResponse::into_response(e);
    }
    match id.as_str() {
        USER_SCHEMA => scim_json(StatusCode::OK, &user_schema()),
        ENTERPRISE_SCHEMA => scim_json(StatusCode::OK, &enterprise_schema()),
        GROUP_SCHEMA => scim_json(StatusCode::OK, &group_schema()),
        _ => poem::IntoResponse::into_response(ScimError::not_found("schema")),
    }
}
