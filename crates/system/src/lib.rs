//! OS-backed adapters for driven ports the domain declares: the system
//! clock, a CSPRNG token generator and argon2id password hashing.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use rand::TryRngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use secureai_domain::secrets::TOKEN_BYTES;
use secureai_domain::{
    Clock, Password, PasswordHash, PasswordHasher, PlainToken, StoreError, TokenGenerator,
};

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        // Storage keeps microseconds; truncating here keeps a value read
        // back equal to the value written.
        Utc::now().trunc_subsecs(6)
    }
}

/// Tokens from the operating system's CSPRNG.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsTokens;

impl TokenGenerator for OsTokens {
    fn generate(&self) -> PlainToken {
        let mut bytes = [0u8; TOKEN_BYTES];
        // The OS RNG failing means the machine cannot make secrets at all;
        // there is no safe fallback, so stop rather than issue a weak token.
        #[allow(clippy::expect_used)]
        OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random source failed");
        PlainToken::from_random_bytes(bytes)
    }
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Argon2Cost {
    /// OWASP's recommendation: m = 19456 KiB (19 MiB), t = 2, p = 1.
    pub const OWASP: Self = Self { memory_kib: 19_456, iterations: 2, parallelism: 1 };
}

/// argon2id hashing on tokio's blocking pool, so that a sign-in burst does
/// not stall the request workers.
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Params,
    /// Verified against when the user is unknown, to spend the same time.
    dummy: String,
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher").field("params", &self.params).finish_non_exhaustive()
    }
}

fn hashing_error(context: &'static str, error: impl std::fmt::Display) -> StoreError {
    StoreError::msg(format!("{context}: {error}"))
}

impl Argon2Hasher {
    /// A hasher with these costs.
    ///
    /// # Errors
    /// [`StoreError`] if the parameters are out of argon2's range.
    pub fn new(cost: Argon2Cost) -> Result<Self, StoreError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| hashing_error("invalid argon2 parameters", e))?;
        let dummy = argon(&params)
            .hash_password(b"no user has this password, it only burns time")
            .map_err(|e| hashing_error("argon2 hashing failed", e))?
            .to_string();
        Ok(Self { params, dummy })
    }
}

fn argon(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| hashing_error("hashing task failed", e))?
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, StoreError> {
        let params = self.params.clone();
        let password = SecretString::from(password.expose().to_owned());
        blocking(move || {
            argon(&params)
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| PasswordHash::from_phc(hash.to_string()))
                .map_err(|e| hashing_error("argon2 hashing failed", e))
        })
        .await
    }

    async fn verify(
        &self,
        presented: &SecretString,
        hash: Option<PasswordHash>,
    ) -> Result<bool, StoreError> {
        let params = self.params.clone();
        let presented = presented.clone();
        let (phc, real) = match hash {
            Some(hash) => (hash.as_phc().to_owned(), true),
            None => (self.dummy.clone(), false),
        };
        blocking(move || {
            // The stored hash carries its own parameters; `params` only
            // matters for hashing.
            let verified = argon(&params)
                .verify_password(presented.expose_secret().as_bytes(), phc.as_str())
                .is_ok();
            Ok(verified && real)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Hasher {
        Argon2Hasher::new(Argon2Cost { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hasher = cheap();
        let password =
            Password::new(SecretString::from("correct horse battery".to_owned())).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.as_phc().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        let right = SecretString::from("correct horse battery".to_owned());
        let wrong = SecretString::from("correct horse battery!".to_owned());
        assert!(hasher.verify(&right, Some(hash.clone())).await.unwrap());
        assert!(!hasher.verify(&wrong, Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let hasher = cheap();
        let dummy = SecretString::from("no user has this password, it only burns time".to_owned());
        assert!(!hasher.verify(&dummy, None).await.unwrap());
    }

    #[test]
    fn the_default_cost_is_owasp_argon2id() {
        let hasher = Argon2Hasher::new(Argon2Cost::OWASP).unwrap();
        assert!(hasher.dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[test]
    fn tokens_are_distinct_and_carry_256_bits() {
        let a = OsTokens.generate();
        let b = OsTokens.generate();
        assert_ne!(a.expose(), b.expose());
        // 32 bytes in unpadded base64url are 43 characters.
        assert_eq!(a.expose().len(), 43);
    }
}
