//! Request body limits: a body larger than the limit is refused with 413
//! before any handler sees it, whether or not it announces its length.

use poem::http::header;
use poem::{Endpoint, Error, Middleware, Request, Result};

/// Refuses bodies over `max` bytes.
pub(crate) struct BodyLimit(pub(crate) usize);

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        BodyLimitEndpoint { inner: ep, max: self.0 }
    }
}

pub(crate) struct BodyLimitEndpoint<E> {
    inner: E,
    max: usize,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|len| len > self.max as u64) {
            return Err(Error::from_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE));
        }
        if announced.is_none() && req.headers().contains_key(header::TRANSFER_ENCODING) {
            // A streamed body: read it within the limit.
            let bytes = req.take_body().into_bytes_limit(self.max).await?;
            req.set_body(bytes);
        }
        self.inner.call(req).await
    }
}
