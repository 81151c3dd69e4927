//! Bulk import of users from a file (CSV, read by an adapter through
//! [`ports::RowSource`]) or rows given as data:
//! validate → preview → import the valid rows → report.
//!
//! ```text
//! file ──parse (whole file once: structure, UTF-8, size)──▶ refused as a whole
//!   └──rows in batches──▶ row checks ─▶ repeated in file? ─▶ already a user? ─▶ seat?
//!                          │ preview: report valid / skipped
//!                          └ commit: create each valid row (user + invitation + mail
//!                            + audit, one transaction per batch), report the rest
//! ```

pub mod models;
pub mod ports;
pub mod rows;
pub mod service;
