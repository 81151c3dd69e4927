//! Single sign-on through the company's identity provider (OpenID Connect
//! or SAML 2.0): settings, the sign-in flow's rules, and the port the
//! protocol adapter implements.
//!
//! The adapter speaks the protocol (redirects, token and signature checks)
//! and hands back a verified [`models::SsoIdentity`]; the rules here decide
//! who that is, whether they may sign in, and audit every refusal.

pub mod errors;
pub mod models;
pub mod ports;
pub mod service;
pub mod settings;
