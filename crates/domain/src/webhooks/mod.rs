//! Security events pushed to other systems as Standard Webhooks (issue 24):
//! the events and their bodies, the endpoints' addresses that may receive
//! them, the signature every delivery carries, and the deliveries with
//! their retries (`docs/design/events.md`).

pub mod deliveries;
pub mod events;
pub mod models;
pub mod ports;
pub mod service;
pub mod signature;
pub mod worker;
