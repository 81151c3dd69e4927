//! Provisioning from the company's identity provider (SCIM 2.0, RFC 7643
//! and 7644): the identity provider reads, creates, updates and deactivates
//! users — never deletes them — under the same rules as an admin. The
//! protocol (resources, filters, PATCH) is the HTTP adapter's; this
//! subdomain holds what the rules say.

pub mod filter;
pub mod groups;
pub mod models;
pub mod ports;
pub mod service;
pub mod settings;
