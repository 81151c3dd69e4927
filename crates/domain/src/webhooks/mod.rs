//! Security events pushed to other systems as Standard Webhooks (issue 24,
//! in progress): the events, the endpoints' addresses that may receive
//! them, and the signature every delivery carries. Delivery itself (the
//! outbox, retries, the endpoints' settings) is the next slice
//! (`docs/design/events.md`).

pub mod models;
pub mod ports;
pub mod signature;
