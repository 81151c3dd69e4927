//! OS-backed adapters for driven ports the domain declares: the system
//! clock, a CSPRNG token generator and argon2id password hashing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::PasswordHash as PhcHash;
use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use rand::TryRngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use secureai_domain::secrets::TOKEN_BYTES;
use secureai_domain::{
    Clock, Password, PasswordHash, PasswordHasher, PlainToken, StoreError, TokenGenerator,
};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

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

/// How many password hashes may run at once, and how long a request waits
/// for a slot before it is answered "busy".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    /// Hashes admitted at once: being computed, or queued for a hashing
    /// thread (by default twice the CPU cores, so that a thread finishing
    /// one hash finds the next one waiting).
    pub concurrent: usize,
    /// Threads computing hashes, each with one memory block of the cost's
    /// size (by default the CPU cores; never more than `concurrent`).
    pub threads: usize,
    /// Longest wait for a slot.
    pub max_wait: Duration,
    /// A hashing thread that has had no hash to compute for this long gives
    /// its memory block back to the operating system, so that an idle
    /// instance holds none.
    pub keep_idle: Duration,
}

impl Default for HashingLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            concurrent: 2 * cores,
            threads: cores,
            max_wait: Duration::from_secs(3),
            keep_idle: Duration::from_secs(5),
        }
    }
}

/// argon2id hashing on threads of its own, so that a sign-in burst does not
/// stall the request workers.
///
/// At most [`HashingLimits::concurrent`] hashes are admitted at once; a
/// request that finds every slot taken for [`HashingLimits::max_wait`]
/// gets [`StoreError::busy`]. The admitted ones are computed by
/// [`HashingLimits::threads`] threads (the CPU cores), each in a memory
/// block of its own reused from one hash to the next (argon2's
/// `hash_password_into_with_memory`), and given back to the operating
/// system after [`HashingLimits::keep_idle`] without work. So memory stays
/// flat under any load, and the cores never switch between more hashes
/// than they can run: four hashes at once on two cores (each walking its
/// own 19 MiB) cost ~15 % more CPU each than two (issue 19). The queued
/// ones are what keeps a thread that finishes from waiting for the next.
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Params,
    /// Verified against when the user is unknown, to spend the same time.
    dummy: String,
    slots: Arc<Semaphore>,
    /// The hashing threads' queue; they end when the last hasher is gone.
    jobs: flume::Sender<Job>,
    /// Memory blocks the hashing threads hold now.
    resident: Arc<AtomicUsize>,
    max_wait: Duration,
    /// Told how long each hash took (slot wait excluded), for metrics.
    observer: Option<Arc<dyn Fn(Duration) + Send + Sync>>,
}

/// A hash to compute in a hashing thread's memory block; what it returns
/// delivers the answer, once the thread has counted its block.
type Job = Box<dyn FnOnce(&mut Vec<Block>) -> Deliver + Send>;

/// Hands a finished hash's answer to its request.
type Deliver = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", &self.params)
            .field("free_slots", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

fn hashing_error(context: &'static str, error: impl std::fmt::Display) -> StoreError {
    StoreError::msg(format!("{context}: {error}"))
}

/// Most hashes admitted at once, whatever is configured.
pub const MAX_CONCURRENT: usize = 256;

/// Longest wait for a slot, whatever is configured.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Seconds a request refused for lack of a hashing slot is told to wait.
const BUSY_RETRY_AFTER_SECS: u64 = 2;

impl Argon2Hasher {
    /// A hasher with these costs and limits, and its hashing threads.
    ///
    /// # Errors
    /// [`StoreError`] if the parameters are out of argon2's range, or no
    /// thread can be started.
    pub fn new(cost: Argon2Cost, limits: HashingLimits) -> Result<Self, StoreError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| hashing_error("invalid argon2 parameters", e))?;
        let dummy =
            hash_with(&params, &mut Vec::new(), b"no user has this password, it only burns time")?;
        // Bounded, whatever is configured.
        let concurrent = limits.concurrent.clamp(1, MAX_CONCURRENT);
        let threads = limits.threads.clamp(1, concurrent);
        let keep_idle = limits.keep_idle.min(Duration::from_secs(3600));
        // At most `concurrent` jobs wait: each holds its slot until done.
        let (jobs, queue) = flume::bounded::<Job>(concurrent);
        let resident = Arc::new(AtomicUsize::new(0));
        for n in 0..threads {
            let (queue, resident) = (queue.clone(), resident.clone());
            std::thread::Builder::new()
                .name(format!("secureai-hashing-{n}"))
                .spawn(move || hashing_thread(&queue, &resident, keep_idle))
                .map_err(|e| hashing_error("starting a password hashing thread", e))?;
        }
        Ok(Self {
            params,
            dummy,
            slots: Arc::new(Semaphore::new(concurrent)),
            jobs,
            resident,
            max_wait: limits.max_wait.min(MAX_WAIT),
            observer: None,
        })
    }

    /// This hasher, telling `observer` how long each hash or verification
    /// took on its thread (the wait for a slot not included).
    #[must_use]
    pub fn observed(self, observer: Arc<dyn Fn(Duration) + Send + Sync>) -> Self {
        Self { observer: Some(observer), ..self }
    }

    /// Runs `work` with a slot on a hashing thread, or answers busy after
    /// waiting `max_wait` for a slot.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let slot =
            match tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await {
                Ok(Ok(slot)) => slot,
                Ok(Err(closed)) => return Err(hashing_error("password hashing stopped", closed)),
                Err(_) => {
                    return Err(StoreError::busy(
                        "every password hashing slot stayed busy",
                        BUSY_RETRY_AFTER_SECS,
                    ));
                }
            };
        let observer = self.observer.clone();
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let started = std::time::Instant::now();
            let result = work(memory);
            if let Some(observe) = observer {
                observe(started.elapsed());
            }
            Box::new(move || {
                // The slot goes with the hash, even if the request went
                // away meanwhile: what runs never exceeds what was admitted.
                drop(slot);
                let _ = done.send(result);
            })
        });
        // Never full: a job is only sent with one of the queue's slots.
        self.jobs.try_send(job).map_err(|e| hashing_error("password hashing stopped", e))?;
        answer.await.map_err(|e| hashing_error("a password hashing thread failed", e))?
    }

    /// Memory blocks the hashing threads hold now (each of the cost's
    /// size; none once idle).
    #[must_use]
    pub fn resident_blocks(&self) -> usize {
        self.resident.load(Ordering::SeqCst)
    }
}

/// A hashing thread: computes the queued hashes in its own memory block,
/// and gives the block back after `keep_idle` without work, until every
/// hasher is gone.
fn hashing_thread(queue: &flume::Receiver<Job>, resident: &AtomicUsize, keep_idle: Duration) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = if memory.is_empty() {
            queue.recv().map_err(|_| flume::RecvTimeoutError::Disconnected)
        } else {
            queue.recv_timeout(keep_idle)
        };
        match job {
            Ok(job) => {
                let had_block = !memory.is_empty();
                // A panic in argon2 fails that one hash (its answer and its
                // slot are dropped), not the thread.
                let deliver =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
                match (had_block, memory.is_empty()) {
                    (false, false) => _ = resident.fetch_add(1, Ordering::SeqCst),
                    (true, true) => _ = resident.fetch_sub(1, Ordering::SeqCst),
                    _ => {}
                }
                if let Ok(deliver) = deliver {
                    deliver();
                }
            }
            Err(flume::RecvTimeoutError::Timeout) => {
                memory = Vec::new();
                resident.fetch_sub(1, Ordering::SeqCst);
            }
            Err(flume::RecvTimeoutError::Disconnected) => {
                if !memory.is_empty() {
                    resident.fetch_sub(1, Ordering::SeqCst);
                }
                return;
            }
        }
    }
}

/// Blocks reserved for each hashing thread's memory block at least: 33 MiB,
/// above glibc's largest dynamic mmap threshold (32 MiB on 64-bit systems).
///
/// glibc serves an allocation from its own `mmap` (given back to the
/// system the moment it is freed) only while it is at least the mmap
/// threshold; and freeing such an allocation raises the threshold to that
/// allocation's size. So once an idle block of exactly the cost's size had
/// been dropped (5 s after start, say), the next ones came from the
/// threads' heap arenas, which keep their memory: 157 MiB stayed
/// resident after the load instead of ~80. Reserving more than the largest
/// threshold keeps every block on the `mmap` path, whatever was freed
/// before; only the cost's size is ever written, so only that much is
/// resident (the rest is untouched address space). The `secureai` binary
/// itself runs on jemalloc, which purges freed memory on its own; this
/// keeps services that embed the hasher on glibc's allocator right.
const RESERVED_BLOCKS: usize = 33 * 1024;

/// `memory` grown to `blocks` (once per hashing thread's block).
fn blocks_of(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        if memory.capacity() < blocks {
            *memory = Vec::with_capacity(blocks.max(RESERVED_BLOCKS));
        }
        memory.resize(blocks, Block::new());
    }
    &mut memory[..blocks]
}

/// Hashes `password` with a fresh 128-bit salt into a PHC string.
fn hash_with(
    params: &Params,
    memory: &mut Vec<Block>,
    password: &[u8],
) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    OsRng.try_fill_bytes(&mut salt).map_err(|e| hashing_error("no randomness for a salt", e))?;
    let mut out = [0u8; 32];
    argon(params)
        .hash_password_into_with_memory(
            password,
            &salt,
            &mut out,
            blocks_of(memory, params.block_count()),
        )
        .map_err(|e| hashing_error("argon2 hashing failed", e))?;
    let phc = PhcHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| hashing_error("argon2 parameters", e))?,
        salt: Some(Salt::new(&salt).map_err(|e| hashing_error("argon2 salt", e))?),
        hash: Some(Output::new(&out).map_err(|e| hashing_error("argon2 output", e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (which carries its own
/// algorithm, version, parameters and salt), compared in constant time.
fn verify_with(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> Result<bool, StoreError> {
    let unreadable =
        |e: &dyn std::fmt::Display| hashing_error("a stored password hash is unreadable", e);
    let hash = PhcHash::new(phc).map_err(|e| unreadable(&e))?;
    let algorithm = Algorithm::try_from(hash.algorithm.as_str()).map_err(|e| unreadable(&e))?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| unreadable(&e))?
        .unwrap_or_default();
    let params = Params::try_from(&hash).map_err(|e| unreadable(&e))?;
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Err(hashing_error("a stored password hash is unreadable", "no salt or output"));
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password,
            salt.as_ref(),
            &mut out,
            blocks_of(memory, blocks),
        )
        .map_err(|e| hashing_error("argon2 verification failed", e))?;
    Ok(bool::from(out.ct_eq(expected.as_bytes())))
}

fn argon(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, StoreError> {
        let params = self.params.clone();
        let password = SecretString::from(password.expose().to_owned());
        self.run(move |memory| {
            hash_with(&params, memory, password.expose_secret().as_bytes())
                .map(PasswordHash::from_phc)
        })
        .await
    }

    async fn verify(
        &self,
        presented: &SecretString,
        hash: Option<PasswordHash>,
    ) -> Result<bool, StoreError> {
        let presented = presented.clone();
        let (phc, real) = match hash {
            Some(hash) => (hash.as_phc().to_owned(), true),
            None => (self.dummy.clone(), false),
        };
        self.run(move |memory| {
            let verified = verify_with(memory, presented.expose_secret().as_bytes(), &phc)?;
            Ok(verified && real)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn cheap() -> Argon2Hasher {
        cheap_with(HashingLimits::default())
    }

    fn cheap_with(limits: HashingLimits) -> Argon2Hasher {
        Argon2Hasher::new(Argon2Cost { memory_kib: 1024, iterations: 1, parallelism: 1 }, limits)
            .unwrap()
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
    async fn the_observer_is_told_each_hash_and_verification() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let hasher = cheap().observed(Arc::new(move |took| take_seen(&record).push(took)));
        let password =
            Password::new(SecretString::from("correct horse battery".to_owned())).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        let right = SecretString::from("correct horse battery".to_owned());
        assert!(hasher.verify(&right, Some(hash)).await.unwrap());
        assert!(!hasher.verify(&right, None).await.unwrap());
        let seen = take_seen(&seen);
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.iter().all(|took| *took > Duration::ZERO && *took < Duration::from_secs(5)));
    }

    fn take_seen(seen: &Mutex<Vec<Duration>>) -> std::sync::MutexGuard<'_, Vec<Duration>> {
        seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let hasher = cheap();
        let dummy = SecretString::from("no user has this password, it only burns time".to_owned());
        assert!(!hasher.verify(&dummy, None).await.unwrap());
    }

    #[test]
    fn the_default_cost_is_owasp_argon2id() {
        let hasher = Argon2Hasher::new(Argon2Cost::OWASP, HashingLimits::default()).unwrap();
        assert!(hasher.dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[tokio::test]
    async fn hashes_of_the_argon2_crate_and_ours_verify_each_other() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = cheap();
        let theirs = argon(&hasher.params).hash_password(b"older stored password").unwrap();
        let theirs = PasswordHash::from_phc(theirs.to_string());
        let right = SecretString::from("older stored password".to_owned());
        let wrong = SecretString::from("older stored passwore".to_owned());
        assert!(hasher.verify(&right, Some(theirs.clone())).await.unwrap());
        assert!(!hasher.verify(&wrong, Some(theirs)).await.unwrap());

        let password = Password::new(right.clone()).unwrap();
        let ours = hasher.hash(&password).await.unwrap();
        assert!(
            argon(&hasher.params).verify_password(b"older stored password", ours.as_phc()).is_ok()
        );
        // Each hash has its own salt.
        assert_ne!(ours.as_phc(), hasher.hash(&password).await.unwrap().as_phc());
        // A hash made with other costs (an older configuration) still verifies.
        let costlier = Params::new(2048, 2, 1, None).unwrap();
        let older = PasswordHash::from_phc(
            argon(&costlier).hash_password(b"older stored password").unwrap().to_string(),
        );
        assert!(hasher.verify(&right, Some(older)).await.unwrap());
    }

    #[tokio::test]
    async fn a_request_that_finds_every_slot_taken_is_told_to_come_back() {
        let hasher = cheap_with(HashingLimits {
            concurrent: 1,
            max_wait: Duration::from_millis(20),
            ..HashingLimits::default()
        });
        let held = hasher.slots.clone().acquire_owned().await.unwrap();
        let presented = SecretString::from("anything at all".to_owned());

        let error = hasher.verify(&presented, None).await.unwrap_err();
        assert_eq!(error.retry_after_secs(), Some(BUSY_RETRY_AFTER_SECS));

        drop(held);
        assert!(!hasher.verify(&presented, None).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_blocks_are_reused_one_per_hashing_thread_and_given_back_idle() {
        let hasher = cheap_with(HashingLimits {
            concurrent: 6,
            threads: 2,
            max_wait: Duration::from_secs(60),
            keep_idle: Duration::from_millis(300),
        });
        assert_eq!(hasher.resident_blocks(), 0);
        let presented = SecretString::from("anything at all".to_owned());
        let runs = (0..64).map(|_| {
            let (hasher, presented) = (hasher.clone(), presented.clone());
            tokio::spawn(async move { hasher.verify(&presented, None).await })
        });
        for run in runs {
            assert!(!run.await.unwrap().unwrap());
        }
        let resident = hasher.resident_blocks();
        assert!((1..=2).contains(&resident), "{resident} blocks for 2 hashing threads");
        // Idle, they are given back.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(hasher.resident_blocks(), 0);
        // And the next hash makes one again.
        assert!(!hasher.verify(&presented, None).await.unwrap());
        assert_eq!(hasher.resident_blocks(), 1);
    }

    #[tokio::test]
    async fn a_request_that_goes_away_keeps_its_slot_until_its_hash_is_done() {
        let hasher = cheap_with(HashingLimits {
            concurrent: 1,
            threads: 1,
            max_wait: Duration::from_secs(60),
            ..HashingLimits::default()
        });
        // The one hashing thread is kept busy until `go` is sent.
        let (started, has_started) = std::sync::mpsc::channel();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let busy: Job = Box::new(move |_| {
            started.send(()).unwrap();
            wait.recv().unwrap();
            Box::new(|| {})
        });
        hasher.jobs.try_send(busy).unwrap();
        has_started.recv().unwrap();

        // A request admitted and queued, then given up.
        let presented = SecretString::from("anything at all".to_owned());
        let gone = tokio::time::timeout(Duration::ZERO, hasher.verify(&presented, None)).await;
        assert!(gone.is_err(), "the request was not given up while queued");
        // Its hash keeps its slot: nothing more is admitted than can run.
        assert_eq!(hasher.slots.available_permits(), 0);
        go.send(()).unwrap();
        // Once it is done, the slot is free for the next request.
        assert!(!hasher.verify(&presented, None).await.unwrap());
        assert_eq!(hasher.slots.available_permits(), 1);
    }

    #[tokio::test]
    async fn absurd_limits_are_bounded_instead_of_failing() {
        let hasher = cheap_with(HashingLimits {
            concurrent: usize::MAX,
            threads: usize::MAX,
            max_wait: Duration::MAX,
            keep_idle: Duration::MAX,
        });
        assert_eq!(hasher.slots.available_permits(), MAX_CONCURRENT);
        assert_eq!(hasher.max_wait, MAX_WAIT);
        let presented = SecretString::from("anything at all".to_owned());
        assert!(!hasher.verify(&presented, None).await.unwrap());
        // None at all: one slot and one thread still hash.
        let hasher = cheap_with(HashingLimits {
            concurrent: 0,
            threads: 0,
            max_wait: Duration::from_secs(5),
            keep_idle: Duration::ZERO,
        });
        assert_eq!(hasher.slots.available_permits(), 1);
        assert!(!hasher.verify(&presented, None).await.unwrap());
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
