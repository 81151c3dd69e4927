//! Request body limits: a body larger than the limit is refused with 413
//! before any handler sees it, whether or not it announces its length.

use poem::http::header;
use poem::{Endpoint, Error, Middleware, Request, Result};

/// Refuses bodies over `max` bytes; imports (`POST …/users/import`) may
/// send up to `import_max` and are refused with `import_too_large`.
pub(crate) struct BodyLimit {
    max: usize,
    import_max: usize,
}

impl BodyLimit {
    /// A limit for every route, and the one for imports.
    pub(crate) fn new(max: usize, import_max: usize) -> Self {
        Self { max, import_max }
    }
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        BodyLimitEndpoint { inner: ep, max: self.max, import_max: self.import_max }
    }
}

pub(crate) struct BodyLimitEndpoint<E> {
    inner: E,
    max: usize,
    import_max: usize,
}

fn import_too_large(max: usize) -> Error {
    let body = serde_json::json!({
        "code": "import_too_large",
        "message": format!(
            "the import is larger than {max} bytes, the most one import through the API takes; \
             split the file or use `secureai users import` on the server"
        ),
    });
    Error::from_response(
        poem::Response::builder()
            .status(poem::http::StatusCode::PAYLOAD_TOO_LARGE)
            .content_type("application/json; charset=utf-8")
            .body(body.to_string()),
    )
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let import = req.uri().path().ends_with("/users/import");
        let max = if import { self.import_max } else { self.max };
        let refuse = || {
            if import {
                import_too_large(max)
            } else {
                Error::from_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE)
            }
        };
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|len| len > max as u64) {
            return Err(refuse());
        }
        if announced.is_none() {
            // A body without a length (chunked, or HTTP/2 which has no
            // Transfer-Encoding): read it within the limit.
            let bytes = req.take_body().into_bytes_limit(max).await.map_err(|_| refuse())?;
            req.set_body(bytes);
        }
        self.inner.call(req).await
    }
}
