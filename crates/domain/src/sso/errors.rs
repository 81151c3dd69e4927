//! Errors of the SSO use cases.

use crate::errors::FieldError;
use crate::errors::StoreError;
use crate::sso::models::SsoFailure;

/// Why a sign-in through the identity provider could not start.
#[derive(Debug, thiserror::Error)]
pub enum BeginSsoError {
    /// No identity provider (of this protocol) is configured.
    #[error("single sign-on is not configured on this instance")]
    NotConfigured,
    /// The identity provider could not be reached or refused the settings.
    #[error("the identity provider is not available: {0}")]
    Provider(SsoFailure),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why an SSO sign-in was refused. Every refusal is audited with its
/// [`reason`](Self::reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoRefusal {
    /// No sign-in started in this browser (or it expired, or was used).
    NoLoginInProgress,
    /// The adapter refused the provider's answer (state, signature, issuer,
    /// audience, lifetime, nonce…).
    Protocol(SsoFailure),
    /// A one-time assertion was presented again.
    Replayed,
    /// The provider sent no email address.
    EmailMissing,
    /// The provider says the email address is not verified.
    EmailNotVerified,
    /// No user has this email, and just-in-time provisioning is off.
    UnknownUser,
    /// The user is deactivated (seed: "account deactivated").
    AccountDeactivated,
    /// The user is linked to another account at this provider.
    SubjectMismatch,
    /// The email belongs to a password account: never linked to SSO
    /// automatically (an admin switches it to SSO explicitly).
    PasswordAccount,
    /// The email belongs to an SSO account already linked elsewhere, and
    /// this provider's email is not trusted to link existing accounts
    /// (SAML, unless the setting allows it).
    LinkNotTrusted,
    /// Just-in-time provisioning would pass the seat limit.
    SeatLimitReached {
        /// The limit.
        limit: u32,
    },
}

impl SsoRefusal {
    /// The stable reason code, as audited.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoLoginInProgress => "no_login_in_progress",
            Self::Protocol(failure) => failure.reason,
            Self::Replayed => "assertion_replayed",
            Self::EmailMissing => "email_missing",
            Self::EmailNotVerified => "email_not_verified",
            Self::UnknownUser => "unknown_user",
            Self::AccountDeactivated => "account_deactivated",
            Self::SubjectMismatch => "subject_mismatch",
            Self::PasswordAccount => "password_account",
            Self::LinkNotTrusted => "link_not_trusted",
            Self::SeatLimitReached { .. } => "seat_limit_reached",
        }
    }

    /// What the person is told, in words.
    pub fn message(&self) -> String {
        match self {
            Self::NoLoginInProgress => "This sign-in was not started here, has expired or was \
                already used. Please start again from the sign-in page."
                .into(),
            Self::Protocol(_) | Self::Replayed => "The answer from your identity provider could \
                not be verified, so you were not signed in. Please start again from the sign-in \
                page; if it keeps happening, tell your administrator."
                .into(),
            Self::EmailMissing => "Your identity provider did not tell us your email address, so \
                we cannot tell which account is yours. Ask your administrator to check the SSO \
                settings."
                .into(),
            Self::EmailNotVerified => "Your identity provider has not verified your email \
                address, so it cannot be used to sign in here. Verify it there, then try again."
                .into(),
            Self::UnknownUser => "There is no SecureAI account for this email address on this \
                instance. Ask your administrator to invite you."
                .into(),
            Self::AccountDeactivated => "Your account has been deactivated. Contact your \
                administrator if you need access again."
                .into(),
            Self::SubjectMismatch => "This SecureAI account is linked to a different account at \
                your identity provider. Ask your administrator for help."
                .into(),
            Self::PasswordAccount => "This account signs in with a password, so your identity \
                provider cannot sign you in to it. Sign in with your password, or ask your \
                administrator to switch the account to single sign-on."
                .into(),
            Self::LinkNotTrusted => "An account with this email address exists but is not \
                linked to this identity provider. Ask your administrator for help."
                .into(),
            Self::SeatLimitReached { limit } => format!(
                "All {limit} seats of this instance are taken, so no account could be created \
                 for you. Ask your administrator."
            ),
        }
    }
}

/// Why an SSO sign-in did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SsoSignInError {
    /// No identity provider (of this protocol) is configured.
    #[error("single sign-on is not configured on this instance")]
    NotConfigured,
    /// Refused, for the reason given (audited).
    #[error("sign-in refused: {}", .0.reason())]
    Refused(SsoRefusal),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why new SSO settings were not saved.
#[derive(Debug, thiserror::Error)]
pub enum SsoSettingsError {
    /// A field is invalid, or the provider refused it (discovery failed,
    /// metadata without a signing certificate…).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
    /// The action needs a recent second-factor check (step-up).
    #[error(transparent)]
    StepUp(#[from] crate::errors::StepUpError),
}
