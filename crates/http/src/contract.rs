//! The API contract as served: the OpenAPI document poem-openapi derives,
//! completed where its derivation says less than the server does, and the
//! `Allow` header of a 405 taken from the same document.
//!
//! poem-openapi leaves three things out of the document that the server
//! enforces or does, so a client (or a fuzzer) reading the document would
//! be misled:
//! - request objects refuse unknown fields (`deny_unknown_fields`), but the
//!   document does not say `additionalProperties: false`;
//! - an optional field is answered as `null` when absent, but the document
//!   does not say `nullable`;
//! - integers of format `uint32`/`uint64`/`int32`/`int64` are parsed within
//!   their range, but the document gives no `minimum`/`maximum`.

use std::collections::BTreeMap;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::{Value, json};

/// The completed document.
pub(crate) fn complete(spec: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(spec) else {
        return spec.to_owned();
    };
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for schema in schemas.values_mut() {
            complete_object(schema);
        }
    }
    // Parameters carry inline schemas.
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in
            paths.values_mut().filter_map(Value::as_object_mut).flat_map(|p| p.values_mut())
        {
            if let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut)
            {
                for parameter in parameters {
                    if let Some(schema) = parameter.get_mut("schema") {
                        bound_integer(schema);
                    }
                }
            }
            // Bodies described inline (a multipart form) are closed too.
            if let Some(content) =
                operation.pointer_mut("/requestBody/content").and_then(Value::as_object_mut)
            {
                for media in content.values_mut() {
                    if let Some(schema) = media.get_mut("schema") {
                        complete_object(schema);
                    }
                }
            }
        }
    }
    serde_json::to_string(&doc).unwrap_or_else(|_| spec.to_owned())
}

fn complete_object(schema: &mut Value) {
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let Some(object) = schema.as_object_mut() else { return };
    if object.get("type").and_then(Value::as_str) != Some("object") {
        return;
    }
    // Every request object of this API refuses unknown fields; answers
    // never carry any. (Objects flattened into others keep theirs open:
    // poem-openapi inlines their properties.)
    object.entry("additionalProperties").or_insert(Value::Bool(false));
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            bound_integer(property);
            if !required.contains(name) {
                mark_nullable(property);
            }
        }
    }
}

/// Optional: absent or `null`. A `$ref` cannot carry siblings in OpenAPI
/// 3.0, so it is wrapped in `allOf`.
fn mark_nullable(property: &mut Value) {
    let Some(object) = property.as_object_mut() else { return };
    if object.contains_key("$ref") {
        let reference = object.remove("$ref").unwrap_or(Value::Null);
        object.insert("allOf".into(), json!([{"$ref": reference}]));
    }
    object.insert("nullable".into(), Value::Bool(true));
}

fn bound_integer(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else { return };
    if object.get("type").and_then(Value::as_str) == Some("array") {
        if let Some(items) = object.get_mut("items") {
            bound_integer(items);
        }
        return;
    }
    if object.get("type").and_then(Value::as_str) != Some("integer") {
        return;
    }
    let (min, max): (i128, i128) = match object.get("format").and_then(Value::as_str) {
        Some("uint32") => (0, i128::from(u32::MAX)),
        Some("uint64") => (0, i128::from(u64::MAX)),
        Some("uint16") => (0, i128::from(u16::MAX)),
        Some("int32") => (i128::from(i32::MIN), i128::from(i32::MAX)),
        Some("int64") => (i128::from(i64::MIN), i128::from(i64::MAX)),
        _ => return,
    };
    object.entry("minimum").or_insert(json!(min));
    object.entry("maximum").or_insert(json!(max));
}

/// The methods each path template of the document allows, for the `Allow`
/// header of a 405.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedMethods(Vec<(Vec<String>, Vec<String>)>);

impl AllowedMethods {
    /// From the completed document, for paths under `prefix` (`/api`).
    pub(crate) fn from_spec(spec: &str, prefix: &str) -> Self {
        let doc: Value = serde_json::from_str(spec).unwrap_or(Value::Null);
        let mut routes = BTreeMap::new();
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            for (path, operations) in paths {
                let methods: Vec<String> = operations
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                let segments =
                    format!("{prefix}{path}").split('/').map(str::to_owned).collect::<Vec<_>>();
                routes.insert(segments, methods);
            }
        }
        Self(routes.into_iter().collect())
    }

    fn allowed(&self, path: &str) -> Option<String> {
        let parts: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(template, methods)| {
            let matches = template.len() == parts.len()
                && template.iter().zip(&parts).all(|(t, p)| t.starts_with('{') || t == p);
            matches.then(|| {
                let mut all = methods.clone();
                if all.iter().any(|m| m == "GET") {
                    all.push("HEAD".into());
                }
                all.sort();
                all.join(", ")
            })
        })
    }
}

/// Adds `Allow` to every 405 of a documented path (RFC 9110 §15.5.6).
pub(crate) async fn add_allow<E: Endpoint>(
    next: E,
    req: Request,
    allowed: &AllowedMethods,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let mut response = next.get_response(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && method != Method::OPTIONS
        && let Some(value) = allowed.allowed(&path).and_then(|a| HeaderValue::from_str(&a).ok())
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Ok(response.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_become_nullable_objects_closed_and_integers_bounded() {
        let spec = json!({
            "paths": {"/v1/users/{id}": {"get": {"parameters": [
                {"name": "limit", "schema": {"type": "integer", "format": "uint32"}}
            ]}, "patch": {}}},
            "components": {"schemas": {"Seats": {
                "type": "object",
                "required": ["used"],
                "properties": {
                    "used": {"type": "integer", "format": "uint64"},
                    "limit": {"type": "integer", "format": "uint32"},
                    "owner": {"$ref": "#/components/schemas/User"}
                }
            }}}
        })
        .to_string();
        let done: Value = serde_json::from_str(&complete(&spec)).unwrap();
        let seats = &done["components"]["schemas"]["Seats"];
        assert_eq!(seats["additionalProperties"], false);
        assert_eq!(seats["properties"]["limit"]["nullable"], true);
        assert_eq!(seats["properties"]["limit"]["maximum"], u32::MAX);
        assert_eq!(seats["properties"]["used"].get("nullable"), None);
        assert_eq!(seats["properties"]["owner"]["allOf"][0]["$ref"], "#/components/schemas/User");
        let limit = &done["paths"]["/v1/users/{id}"]["get"]["parameters"][0]["schema"];
        assert_eq!(limit["minimum"], 0);

        let allowed = AllowedMethods::from_spec(&complete(&spec), "/api");
        assert_eq!(allowed.allowed("/api/v1/users/42").as_deref(), Some("GET, HEAD, PATCH"));
        assert_eq!(allowed.allowed("/api/v1/nothing"), None);
    }
}
