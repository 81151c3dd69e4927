//! HTTP tests: the real application on a random port, driven over HTTP.
//! One binary for the whole API suite, so it links once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod analytics;
mod api_tokens;
mod at_rest;
mod audit;
mod auth;
mod bad_input;
mod dates;
mod docs;
mod imports;
mod invitations;
mod lifecycle;
mod load;
mod mail;
mod metrics;
mod mfa;
mod mfa_policy;
mod mfa_reset;
mod oidc;
mod operations;
mod pages;
mod passkeys;
mod passwords;
mod saml;
mod scim;
mod scim_groups;
mod scim_writes;
mod step_up;
mod sweeps;
mod users;
mod webhook_delivery;
mod webhooks;
