//! Password authentication with login throttling, for every protocol.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::exchange::Credentials;
use crate::password::{verify_password, HashParams};
use crate::secret::{app_password_form, secret_digest};

/// Entries kept per failure table (by IP, by account). Past this, expired
/// entries are purged and then the oldest are evicted, so a flood of
/// distinct addresses cannot exhaust memory.
pub const MAX_TRACKED_ENTRIES: usize = 100_000;
/// Longer login names cannot be mail addresses (RFC 5321 §4.5.3.1.3 caps a
/// path at 256 octets); they are not even looked up.
pub const MAX_ADDRESS_LEN: usize = 256;
/// IPv6 clients are throttled per /64, the usual end-site allocation, since
/// one host can trivially rotate through its own /64.
pub const IPV6_THROTTLE_PREFIX: u32 = 64;

/// Source of password hashes, implemented by the account store.
#[async_trait]
pub trait AccountLookup: Send + Sync {
    /// Account id and PHC string for a lower-cased address, `None` if no
    /// such account (or it cannot log in).
    async fn password_hash(&self, address: &str) -> Result<Option<(i64, String)>, LookupError>;

    /// Whether `digest` ([`crate::secret_digest`] of an app password's
    /// canonical form) is one of the account's app passwords.
    async fn app_password(&self, _account_id: i64, _digest: &str) -> Result<bool, LookupError> {
        Ok(false)
    }

    /// The account (id, address) an unexpired, unrevoked OAuth access token
    /// with this digest belongs to.
    async fn access_token(&self, _digest: &str) -> Result<Option<(i64, String)>, LookupError> {
        Ok(None)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("account backend failed: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl LookupError {
    /// Wrap any error (or a message string) from the backend.
    pub fn backend(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        LookupError::Backend(err.into())
    }
}

/// Throttling settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPolicy {
    /// Pause before reporting a wrong password, slowing online guessing.
    pub failure_delay: Duration,
    /// Failures from one client address (IPv6: /64) within `window` after
    /// which further attempts from it are refused unchecked.
    pub max_failures_per_ip: u32,
    /// Failures against one account within `window` after which further
    /// attempts on it are refused unchecked, from any address.
    pub max_failures_per_account: u32,
    /// Counting window, starting at the first failure.
    pub window: Duration,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            failure_delay: Duration::from_secs(2),
            max_failures_per_ip: 10,
            max_failures_per_account: 5,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub account_id: i64,
    /// The lower-cased address used for the lookup.
    pub address: String,
}

/// Outcomes a protocol maps to its replies (e.g. SMTP 535 / 454 per RFC 4954
/// §6, IMAP `NO [AUTHENTICATIONFAILED]` / `NO [UNAVAILABLE]` per RFC 5530 §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed logins; try again later")]
    RateLimited,
    #[error("temporary authentication failure: {0}")]
    Temporary(String),
}

/// Checks passwords and throttles failures. Cheap to clone; clones share
/// their counters, so use one instance for all protocols.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

struct Inner {
    lookup: Arc<dyn AccountLookup>,
    policy: AuthPolicy,
    /// Verified when the account does not exist, so that unknown users cost
    /// the same time as known ones.
    dummy_hash: String,
    failures: Mutex<Failures>,
    /// Bumped whenever an attempt in flight resolves, waking the attempts
    /// waiting for it.
    resolved: tokio::sync::watch::Sender<u64>,
    /// Password checks running at once. Argon2id allocates its memory cost
    /// (19 MiB by default) per check, so without a cap a burst of logins
    /// costs gigabytes and hundreds of blocking threads; with one per core,
    /// a burst just queues, finishing no later than it would have anyway.
    verify_slots: Arc<tokio::sync::Semaphore>,
    cache: VerifiedCache,
}

/// Most addresses remembered by [`VerifiedCache`].
const VERIFIED_CACHE_ENTRIES: usize = 10_000;
/// How long a verified password is remembered.
const VERIFIED_CACHE_TTL: Duration = Duration::from_secs(10 * 60);

/// Recently verified logins, as keyed digests of (address, stored hash,
/// password) under a random per-process key: nothing in it can be used to
/// recover or test a password offline, a changed password or hash misses,
/// and entries expire. Only successes are cached, so it never helps a guesser.
struct VerifiedCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, ([u8; 32], Instant)>>,
}

impl VerifiedCache {
    fn new() -> Self {
        VerifiedCache {
            key: rand::random(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, address: &str, phc: &str, password: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.key);
        for part in [address, phc, password] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    fn hit(&self, address: &str, digest: &[u8; 32]) -> bool {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(address)
            .is_some_and(|(d, at)| d == digest && at.elapsed() < VERIFIED_CACHE_TTL)
    }

    fn insert(&self, address: &str, digest: [u8; 32]) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= VERIFIED_CACHE_ENTRIES {
            entries.retain(|_, (_, at)| at.elapsed() < VERIFIED_CACHE_TTL);
            if entries.len() >= VERIFIED_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(address.to_string(), (digest, Instant::now()));
    }
}

/// How long a client address stays trusted for an account after a
/// successful login from it.
const TRUST_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

struct Failures {
    by_ip: FailureTable<IpAddr>,
    by_account: FailureTable<String>,
    /// Failures per (account, client address): what limits a trusted
    /// client, which the account-wide count does not.
    by_pair: FailureTable<(String, IpAddr)>,
    /// (account, client address) pairs with a recent success. Guesses from
    /// elsewhere that lock the account do not lock out its owner's usual
    /// address (issue 18: lockout as a weapon).
    trusted: HashMap<(String, IpAddr), Instant>,
    /// Attempts being checked right now.
    pending_ip: HashMap<IpAddr, u32>,
    pending_account: HashMap<String, u32>,
}

/// How long an attempt waits for those ahead of it before giving up.
const MAX_LOGIN_WAIT: Duration = Duration::from_secs(30);

/// How an attempt in flight ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    /// Neither (backend trouble): nothing is counted.
    Neutral,
}

/// An attempt in flight. Dropped unresolved (the session went away midway),
/// it counts as a failure, so abandoning guesses does not escape the limits.
struct Reservation {
    auth: Authenticator,
    ip: IpAddr,
    address: String,
    done: bool,
}

impl Reservation {
    fn resolve(mut self, outcome: Outcome) {
        self.done = true;
        let result = match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Neutral => "error",
        };
        // Name as in letterbox_net::metrics.
        metrics::counter!("letterbox_auth_attempts_total", "result" => result).increment(1);
        self.auth.settle(self.ip, &self.address, outcome);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.done {
            self.auth.settle(self.ip, &self.address, Outcome::Failure);
        }
    }
}

impl Authenticator {
    pub fn new(lookup: Arc<dyn AccountLookup>, policy: AuthPolicy) -> Self {
        Self::build(lookup, policy, HashParams::default(), MAX_TRACKED_ENTRIES)
    }

    /// Tell the authenticator which parameters stored hashes use, so the
    /// dummy verification for unknown users takes as long as a real one.
    pub fn with_hash_params(self, params: HashParams) -> Self {
        let inner = &self.inner;
        Self::build(
            Arc::clone(&inner.lookup),
            inner.policy.clone(),
            params,
            MAX_TRACKED_ENTRIES,
        )
    }

    fn build(lookup: Arc<dyn AccountLookup>, policy: AuthPolicy, params: HashParams, capacity: usize) -> Self {
        let window = policy.window;
        Authenticator {
            inner: Arc::new(Inner {
                lookup,
                policy,
                dummy_hash: dummy_hash(params),
                failures: Mutex::new(Failures {
                    by_ip: FailureTable::new(window, capacity),
                    by_account: FailureTable::new(window, capacity),
                    by_pair: FailureTable::new(window, capacity),
                    trusted: HashMap::new(),
                    pending_ip: HashMap::new(),
                    pending_account: HashMap::new(),
                }),
                resolved: tokio::sync::watch::channel(0).0,
                verify_slots: Arc::new(tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                )),
                cache: VerifiedCache::new(),
            }),
        }
    }

    pub fn policy(&self) -> &AuthPolicy {
        &self.inner.policy
    }

    /// Check `password` for the account `username` (a full address, any
    /// case) connecting from `peer`.
    ///
    /// Refuses with [`AuthError::RateLimited`] *before* looking at the
    /// password once the client or the account has too many recent
    /// failures. Attempts in flight that could push the count over a limit
    /// make later ones wait for their outcome (instead of being refused),
    /// so parallel guesses cannot overshoot the limits while many parallel
    /// correct logins (a client opening several connections) all succeed.
    /// An attempt abandoned midway (the future dropped) counts as a failure.
    pub async fn authenticate(&self, username: &str, password: &str, peer: IpAddr) -> Result<Authenticated, AuthError> {
        self.check(username, password, peer, true).await
    }

    /// As [`Authenticator::authenticate`], but only the account password
    /// counts, never an app password: for changing the password, so that
    /// a leaked app password cannot take the account over.
    pub async fn authenticate_primary(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<Authenticated, AuthError> {
        self.check(username, password, peer, false).await
    }

    async fn check(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
        app_passwords: bool,
    ) -> Result<Authenticated, AuthError> {
        let inner = &self.inner;
        let address = username.trim().to_lowercase();
        let ip = throttle_key(peer);

        let reservation = match self.reserve(ip, &address).await {
            Ok(r) => r,
            Err(e) => {
                metrics::counter!("letterbox_auth_attempts_total", "result" => "throttled").increment(1);
                info!(%peer, address, "login refused: {e}");
                return Err(e);
            }
        };

        let found = if address.len() > MAX_ADDRESS_LEN {
            None
        } else {
            match inner.lookup.password_hash(&address).await {
                Ok(found) => found,
                Err(e) => {
                    reservation.resolve(Outcome::Neutral);
                    warn!(error = %e, address, "account lookup failed during login");
                    return Err(AuthError::Temporary("account lookup failed".into()));
                }
            }
        };

        let (account_id, phc) = match found {
            Some((id, phc)) => (Some(id), phc),
            None => (None, inner.dummy_hash.clone()),
        };
        // A password verified recently against this very hash needs no
        // second Argon2 run (clients reconnect all the time).
        let cache_key = account_id.map(|_| inner.cache.digest(&address, &phc, password));
        let cached = || match (account_id, &cache_key) {
            (Some(id), Some(k)) if inner.cache.hit(&address, k) => Some(id),
            _ => None,
        };
        if let Some(id) = cached() {
            reservation.resolve(Outcome::Success);
            debug!(%peer, address, account_id = id, "login succeeded (cached)");
            return Ok(Authenticated {
                account_id: id,
                address,
            });
        }
        if let (Some(id), Some(form), true) = (account_id, app_password_form(password), app_passwords) {
            match inner.lookup.app_password(id, &secret_digest(&form)).await {
                Ok(true) => {
                    reservation.resolve(Outcome::Success);
                    debug!(%peer, address, account_id = id, "login succeeded (app password)");
                    return Ok(Authenticated {
                        account_id: id,
                        address,
                    });
                }
                // Not one: it may still be the account password.
                Ok(false) => {}
                Err(e) => {
                    reservation.resolve(Outcome::Neutral);
                    warn!(error = %e, address, "app password lookup failed during login");
                    return Err(AuthError::Temporary("account lookup failed".into()));
                }
            }
        }
        let password = password.to_owned();
        let Ok(slot) = inner.verify_slots.clone().acquire_owned().await else {
            reservation.resolve(Outcome::Neutral);
            return Err(AuthError::Temporary("password verification unavailable".into()));
        };
        // A login queued behind the same user's may find it verified by now.
        if let Some(id) = cached() {
            drop(slot);
            reservation.resolve(Outcome::Success);
            debug!(%peer, address, account_id = id, "login succeeded (cached after waiting)");
            return Ok(Authenticated {
                account_id: id,
                address,
            });
        }
        // Argon2 takes tens of milliseconds of CPU: keep it off the runtime.
        let verified = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            verify_password(&phc, &password)
        })
        .await;
        let verified = match verified {
            Ok(verified) => verified,
            Err(e) => {
                reservation.resolve(Outcome::Neutral);
                error!(error = %e, "password verification task failed");
                return Err(AuthError::Temporary("password verification failed".into()));
            }
        };

        match account_id {
            Some(account_id) if verified => {
                if let Some(key) = cache_key {
                    inner.cache.insert(&address, key);
                }
                reservation.resolve(Outcome::Success);
                debug!(%peer, address, account_id, "login succeeded");
                Ok(Authenticated { account_id, address })
            }
            _ => {
                // Counted before the delay, so hanging up during it changes nothing.
                reservation.resolve(Outcome::Failure);
                info!(%peer, address, known = account_id.is_some(), "login failed");
                tokio::time::sleep(inner.policy.failure_delay).await;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Check an OAuth access token (RFC 6750). `user`, when the client named
    /// one (SASL OAUTHBEARER `a=`, XOAUTH2 `user=`), must be the token's
    /// account. Failures count against the client address only: a token
    /// names no account to throttle until it is found.
    pub async fn authenticate_bearer(
        &self,
        token: &str,
        user: Option<&str>,
        peer: IpAddr,
    ) -> Result<Authenticated, AuthError> {
        let ip = throttle_key(peer);
        let reservation = match self.reserve(ip, "").await {
            Ok(r) => r,
            Err(e) => {
                metrics::counter!("letterbox_auth_attempts_total", "result" => "throttled").increment(1);
                info!(%peer, "token login refused: {e}");
                return Err(e);
            }
        };
        let found = match self.inner.lookup.access_token(&secret_digest(token)).await {
            Ok(found) => found,
            Err(e) => {
                reservation.resolve(Outcome::Neutral);
                warn!(error = %e, "token lookup failed during login");
                return Err(AuthError::Temporary("account lookup failed".into()));
            }
        };
        match found {
            Some((account_id, address)) if user.is_none_or(|u| u.trim().eq_ignore_ascii_case(&address)) => {
                reservation.resolve(Outcome::Success);
                debug!(%peer, address, account_id, "token login succeeded");
                Ok(Authenticated { account_id, address })
            }
            _ => {
                reservation.resolve(Outcome::Failure);
                info!(%peer, user, "token login failed");
                tokio::time::sleep(self.inner.policy.failure_delay).await;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Check whatever a SASL exchange produced.
    pub async fn verify(&self, credentials: &Credentials, peer: IpAddr) -> Result<Authenticated, AuthError> {
        match credentials {
            Credentials::Password(p) => self.authenticate(&p.authcid, p.password.expose(), peer).await,
            Credentials::Bearer { user, token } => {
                self.authenticate_bearer(token.expose(), user.as_deref(), peer).await
            }
        }
    }

    /// Wait until this attempt can neither be refused nor push a count over
    /// a limit whatever the attempts in flight turn out to be, then join them.
    async fn reserve(&self, ip: IpAddr, address: &str) -> Result<Reservation, AuthError> {
        let policy = &self.inner.policy;
        let deadline = Instant::now() + MAX_LOGIN_WAIT;
        loop {
            let mut resolved = self.inner.resolved.subscribe();
            {
                let mut f = self.lock();
                let now = Instant::now();
                let failed_ip = f.by_ip.count(&ip, now);
                let pair = (address.to_string(), ip);
                let trusted = !address.is_empty()
                    && f.trusted
                        .get(&pair)
                        .is_some_and(|t| now.saturating_duration_since(*t) < TRUST_TTL);
                // An empty address (token logins) is throttled per client
                // only; a trusted client by its own failures on the account.
                let failed_account = if address.is_empty() {
                    0
                } else if trusted {
                    f.by_pair.count(&pair, now)
                } else {
                    f.by_account.count(address, now)
                };
                if failed_ip >= policy.max_failures_per_ip || failed_account >= policy.max_failures_per_account {
                    return Err(AuthError::RateLimited);
                }
                let pending_ip = f.pending_ip.get(&ip).copied().unwrap_or(0);
                let pending_account = if address.is_empty() || trusted {
                    0
                } else {
                    f.pending_account.get(address).copied().unwrap_or(0)
                };
                if failed_ip + pending_ip < policy.max_failures_per_ip
                    && failed_account + pending_account < policy.max_failures_per_account
                {
                    *f.pending_ip.entry(ip).or_insert(0) += 1;
                    if !address.is_empty() {
                        *f.pending_account.entry(address.to_string()).or_insert(0) += 1;
                    }
                    return Ok(Reservation {
                        auth: self.clone(),
                        ip,
                        address: address.to_string(),
                        done: false,
                    });
                }
            }
            if tokio::time::timeout_at(deadline, resolved.changed()).await.is_err() {
                return Err(AuthError::Temporary("too many logins in progress".into()));
            }
        }
    }

    /// An attempt in flight ended: leave the pending counts, record the outcome.
    fn settle(&self, ip: IpAddr, address: &str, outcome: Outcome) {
        {
            let mut f = self.lock();
            let now = Instant::now();
            decrement(&mut f.pending_ip, &ip);
            decrement(&mut f.pending_account, address);
            match outcome {
                Outcome::Failure => {
                    f.by_ip.add(ip, now);
                    if !address.is_empty() {
                        f.by_account.add(address.to_string(), now);
                        f.by_pair.add((address.to_string(), ip), now);
                    }
                }
                // A success clears the account's record and trusts the client.
                Outcome::Success => {
                    f.by_account.remove(address);
                    if !address.is_empty() {
                        let pair = (address.to_string(), ip);
                        f.by_pair.remove(&pair);
                        if f.trusted.len() >= MAX_TRACKED_ENTRIES {
                            f.trusted.retain(|_, t| now.saturating_duration_since(*t) < TRUST_TTL);
                            if f.trusted.len() >= MAX_TRACKED_ENTRIES {
                                f.trusted.clear();
                            }
                        }
                        f.trusted.insert(pair, now);
                    }
                }
                Outcome::Neutral => {}
            }
        }
        self.inner.resolved.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Failures> {
        // Nothing panics while the lock is held; a poisoned table is intact.
        self.inner.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn decrement<K, Q>(map: &mut HashMap<K, u32>, key: &Q)
where
    K: Hash + Eq + std::borrow::Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// A syntactically valid Argon2id PHC string with the given costs that no
/// password matches (in practice). Built without hashing anything.
fn dummy_hash(params: HashParams) -> String {
    // 16-byte salt and 32-byte output, unpadded base64, like real hashes.
    format!(
        "$argon2id$v=19$m={},t={},p={}$bm90IGEgcmVhbCBzYWx0IQ$\
         bm8gcGFzc3dvcmQgaGFzaGVzIHRvIHRoaXMgdmFsdWU",
        params.memory_kib, params.iterations, params.parallelism
    )
}

/// Client key for throttling: IPv4 address, or IPv6 /64.
fn throttle_key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - IPV6_THROTTLE_PREFIX);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    count: u32,
    since: Instant,
}

/// Failure counts per key over a fixed window starting at the first failure.
#[derive(Debug)]
struct FailureTable<K> {
    entries: HashMap<K, Counter>,
    window: Duration,
    capacity: usize,
}

impl<K: Hash + Eq> FailureTable<K> {
    fn new(window: Duration, capacity: usize) -> Self {
        FailureTable {
            entries: HashMap::new(),
            window,
            capacity,
        }
    }

    fn live(&self, counter: &Counter, now: Instant) -> bool {
        now.duration_since(counter.since) < self.window
    }

    fn count<Q>(&self, key: &Q, now: Instant) -> u32
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.entries.get(key) {
            Some(c) if self.live(c, now) => c.count,
            _ => 0,
        }
    }

    fn add(&mut self, key: K, now: Instant) {
        let window = self.window;
        let counter = self.entries.entry(key).or_insert(Counter { count: 0, since: now });
        if now.duration_since(counter.since) >= window {
            *counter = Counter { count: 0, since: now };
        }
        counter.count = counter.count.saturating_add(1);
        if self.entries.len() > self.capacity {
            self.evict(now);
        }
    }

    fn remove<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.remove(key);
    }

    /// Purge expired entries; if still over capacity, drop the oldest tenth
    /// so eviction work is amortised over many insertions.
    fn evict(&mut self, now: Instant) {
        let window = self.window;
        self.entries.retain(|_, c| now.duration_since(c.since) < window);
        if self.entries.len() <= self.capacity {
            return;
        }
        let target = self.capacity - self.capacity / 10;
        let excess = self.entries.len() - target;
        let mut starts: Vec<Instant> = self.entries.values().map(|c| c.since).collect();
        let (_, cutoff, _) = starts.select_nth_unstable(excess - 1);
        let cutoff = *cutoff;
        self.entries.retain(|_, c| c.since > cutoff);
        warn!(
            kept = self.entries.len(),
            "login failure table full; evicted oldest entries"
        );
    }
}

#[cfg(test)]
mod tests;
