//! Searching with a `SearchRequest` body (RFC 7644 §3.4.3), so that
//! filters stay out of URLs and logs: `POST /Users/.search` and, over
//! users then groups, `POST /.search`.

use poem::http::StatusCode;
use poem::{IntoResponse, Request, Response, handler};
use serde_json::Value;

use super::users::{ListQuery, Projection, list_users, page_bounds};
use super::{ScimError, State, list_response, scim_json};

/// A `SearchRequest` body (RFC 7644 §3.4.3) as the query of a list.
async fn read_search(body: poem::Body) -> Result<ListQuery, ScimError> {
    let bytes = body.into_bytes().await.map_err(|e| {
        ScimError::new(StatusCode::BAD_REQUEST, format!("the body could not be read: {e}"))
    })?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ScimError::typed(
            StatusCode::BAD_REQUEST,
            "invalidSyntax",
            format!("the body is not JSON: {e}"),
        )
    })?;
    let field = |name: &str| {
        body.as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v)
    };
    let text = |name: &str| -> Result<Option<String>, ScimError> {
        match field(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            // `attributes`, `excludedAttributes`: lists of names.
            Some(Value::Array(names)) => {
                Ok(Some(names.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")))
            }
            Some(_) => Err(ScimError::typed(
                StatusCode::BAD_REQUEST,
                "invalidValue",
                format!("{name} has the wrong type"),
            )),
        }
    };
    Ok(ListQuery {
        filter: text("filter")?,
        start_index: text("startIndex")?,
        count: text("count")?,
        projection: Projection {
            attributes: text("attributes")?,
            excluded_attributes: text("excludedAttributes")?,
        },
    })
}

/// `POST /Users/.search`: the query of `GET /Users` in a body, so that
/// filters stay out of URLs and logs.
#[handler]
pub(crate) async fn search(state: State<'_>, req: &Request, body: poem::Body) -> Response {
    let result = async { list_users(&state, req, read_search(body).await?).await };
    match result.await {
        Ok(body) => scim_json(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

/// `POST /.search`: users, then groups. A filter one resource type cannot
/// answer (`displayName eq` of a group, `userName eq` of a user) matches
/// none of that type.
#[handler]
pub(crate) async fn search_all(state: State<'_>, req: &Request, body: poem::Body) -> Response {
    let result = async {
        let query = read_search(body).await?;
        let (start, count) = page_bounds(&query, state.service.policy().max_page_size)?;
        let part = |start: u64, count: u64| ListQuery {
            start_index: Some(start.to_string()),
            count: Some(count.to_string()),
            ..query.clone()
        };
        let split = |answer: Result<Value, ScimError>| match answer {
            Ok(answer) => Ok((
                answer["Resources"].as_array().cloned().unwrap_or_default(),
                answer["totalResults"].as_u64().unwrap_or(0),
                None,
            )),
            Err(e) if e.scim_type == Some("invalidFilter") => Ok((Vec::new(), 0, Some(e))),
            Err(e) => Err(e),
        };
        let (mut resources, users, user_error) =
            split(list_users(&state, req, part(start, count)).await)?;
        let group_start = start.saturating_sub(users).max(1);
        let group_count = count.saturating_sub(resources.len() as u64);
        let (groups_found, groups, group_error) =
            split(super::groups::list_groups(&state, req, part(group_start, group_count)).await)?;
        if let (Some(error), Some(_)) = (user_error, group_error) {
            return Err(error);
        }
        resources.extend(groups_found);
        Ok(list_response(resources, users + groups, start))
    };
    match result.await {
        Ok(body) => scim_json(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}
