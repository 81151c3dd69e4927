//! What operators count: the outcome of every sign-in, whichever way it
//! came (password, second factor, OIDC, SAML), told to a [`Meter`] port.
//! The HTTP adapter's meter turns it into Prometheus counters; an embedder
//! may keep [`NoMeter`].
//!
//! Only the method and the outcome are told: never who, so no metric label
//! can carry a user id or an email.

/// How a sign-in was attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignInMethod {
    /// Email and password (the first step when a second factor follows).
    Password,
    /// The second step: a code from an authenticator app, a recovery code
    /// or a passkey, after the password.
    SecondFactor,
    /// OpenID Connect.
    Oidc,
    /// SAML 2.0.
    Saml,
}

impl SignInMethod {
    /// The label value (`password`, `second_factor`, `oidc`, `saml`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SecondFactor => "second_factor",
            Self::Oidc => "oidc",
            Self::Saml => "saml",
        }
    }
}

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignInOutcome {
    /// A session was made.
    Success,
    /// The password checked out; the second factor is asked next (that
    /// step is counted on its own).
    SecondFactorRequired,
    /// Refused: wrong credentials or code, unknown or deactivated account,
    /// an identity provider's answer refused, an expired step.
    Failure,
    /// Refused without checking: too many failures for the account or the
    /// address.
    Throttled,
    /// Not decided: a store failure, or every password hashing slot busy.
    Error,
}

impl SignInOutcome {
    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::SecondFactorRequired => "second_factor_required",
            Self::Failure => "failure",
            Self::Throttled => "throttled",
            Self::Error => "error",
        }
    }
}

/// Where the domain tells what operators count. Calls are synchronous and
/// must not block: an adapter increments a counter and returns.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait Meter: Send + Sync {
    /// One sign-in attempt ended.
    fn sign_in(&self, method: SignInMethod, outcome: SignInOutcome);
}

/// Counts nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMeter;

impl Meter for NoMeter {
    fn sign_in(&self, _method: SignInMethod, _outcome: SignInOutcome) {}
}

/// One sign-in attempt being counted: told to the meter when dropped, so
/// that an attempt whose request went away mid-way (its future dropped)
/// still counts, as an [`SignInOutcome::Error`].
pub(crate) struct Attempt<'m> {
    meter: &'m dyn Meter,
    method: SignInMethod,
    /// What it ended with; `Error` until told otherwise.
    pub(crate) outcome: SignInOutcome,
}

impl<'m> Attempt<'m> {
    /// An attempt by `method` begins.
    pub(crate) fn begin(meter: &'m dyn Meter, method: SignInMethod) -> Self {
        Self { meter, method, outcome: SignInOutcome::Error }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.meter.sign_in(self.method, self.outcome);
    }
}

/// The outcome of a password sign-in's result.
#[must_use]
pub fn password_outcome<T>(
    result: &Result<T, crate::sessions::errors::SignInError>,
) -> SignInOutcome {
    use crate::sessions::errors::SignInError as E;
    match result {
        Ok(_) => SignInOutcome::Success,
        Err(E::SecondFactorRequired(_)) => SignInOutcome::SecondFactorRequired,
        Err(E::InvalidCredentials | E::AccountDeactivated) => SignInOutcome::Failure,
        Err(E::Throttled { .. }) => SignInOutcome::Throttled,
        Err(E::Unexpected(_)) => SignInOutcome::Error,
    }
}

/// The outcome of a second step's result.
#[must_use]
pub fn second_factor_outcome<T>(
    result: &Result<T, crate::sessions::errors::SecondFactorError>,
) -> SignInOutcome {
    use crate::sessions::errors::SecondFactorError as E;
    match result {
        Ok(_) => SignInOutcome::Success,
        Err(E::Expired | E::WrongCode) => SignInOutcome::Failure,
        Err(E::Throttled { .. }) => SignInOutcome::Throttled,
        Err(E::Unexpected(_)) => SignInOutcome::Error,
    }
}

/// The outcome of an SSO sign-in's result.
#[must_use]
pub fn sso_outcome<T>(result: &Result<T, crate::sso::errors::SsoSignInError>) -> SignInOutcome {
    use crate::sso::errors::SsoSignInError as E;
    match result {
        Ok(_) => SignInOutcome::Success,
        Err(E::NotConfigured | E::Refused(_)) => SignInOutcome::Failure,
        Err(E::Unexpected(_)) => SignInOutcome::Error,
    }
}
