//! Single sign-on adapter (OpenID Connect with `openidconnect`, SAML 2.0
//! with `samael`).
//!
//! **Placeholder.** The SSO issue fills this crate in: the identity-provider
//! port lives in the domain, and this crate will implement it. Until then the
//! crate only exists so that the workspace has its final shape and the `app`
//! crate's wiring has a place to plug SSO into; nothing here is used at run
//! time, and SSO sign-in is not available.

/// Whether this build can sign users in through an identity provider.
pub const SSO_AVAILABLE: bool = false;
