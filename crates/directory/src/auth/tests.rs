use super::*;
use crate::password::hash_password_with;
use argon2::password_hash::PasswordHash;
use std::sync::Mutex as StdMutex;

/// In-memory accounts; records every address it was asked about.
struct Accounts {
    hashes: StdMutex<HashMap<String, (i64, String)>>,
    asked: StdMutex<Vec<String>>,
}

#[async_trait]
impl AccountLookup for Accounts {
    async fn password_hash(&self, address: &str) -> Result<Option<(i64, String)>, LookupError> {
        self.asked.lock().unwrap().push(address.to_string());
        if address == "broken@example.org" {
            return Err(LookupError::backend("database is locked"));
        }
        Ok(self.hashes.lock().unwrap().get(address).cloned())
    }

    async fn app_password(&self, account_id: i64, digest: &str) -> Result<bool, LookupError> {
        Ok(account_id == 1 && digest == secret_digest(TIM_APP_PASSWORD))
    }

    async fn access_token(&self, digest: &str) -> Result<Option<(i64, String)>, LookupError> {
        Ok((digest == secret_digest(TIM_TOKEN)).then(|| (1, "tim@example.org".to_string())))
    }
}

const TIM_APP_PASSWORD: &str = "abcdefghijklmnopqrst";
const TIM_TOKEN: &str = "lbx_at_tim";

impl Accounts {
    fn set(&self, address: &str, password: &str) {
        let phc = hash_password_with(password, HashParams::MINIMAL).unwrap();
        let mut h = self.hashes.lock().unwrap();
        let id = h.get(address).map_or(99, |e| e.0);
        h.insert(address.to_string(), (id, phc));
    }
}

fn accounts() -> Arc<Accounts> {
    let mut hashes = HashMap::new();
    for (id, addr, pw) in [
        (1, "tim@example.org", "right"),
        (2, "ann@example.org", "annpw"),
        (3, "bob@example.org", "bobpw"),
    ] {
        let phc = hash_password_with(pw, HashParams::MINIMAL).unwrap();
        hashes.insert(addr.to_string(), (id, phc));
    }
    hashes.insert("corrupt@example.org".into(), (4, "not a phc".into()));
    Arc::new(Accounts {
        hashes: StdMutex::new(hashes),
        asked: StdMutex::new(Vec::new()),
    })
}

fn policy(per_ip: u32, per_account: u32) -> AuthPolicy {
    AuthPolicy {
        failure_delay: Duration::from_millis(1),
        max_failures_per_ip: per_ip,
        max_failures_per_account: per_account,
        window: Duration::from_secs(60),
    }
}

fn auth(policy: AuthPolicy) -> (Authenticator, Arc<Accounts>) {
    let accounts = accounts();
    let a = Authenticator::new(accounts.clone(), policy).with_hash_params(HashParams::MINIMAL);
    (a, accounts)
}

const IP_A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
const IP_B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
const IP_C: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 3));

#[tokio::test]
async fn right_and_wrong_password() {
    let (a, _) = auth(policy(10, 5));
    let ok = a.authenticate("tim@example.org", "right", IP_A).await.unwrap();
    assert_eq!(
        ok,
        Authenticated {
            account_id: 1,
            address: "tim@example.org".into()
        }
    );
    assert_eq!(
        a.authenticate("tim@example.org", "wrong", IP_A).await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        a.authenticate("tim@example.org", "", IP_A).await,
        Err(AuthError::InvalidCredentials)
    );
}

#[tokio::test]
async fn failure_waits_for_the_delay() {
    let mut p = policy(10, 5);
    p.failure_delay = Duration::from_millis(150);
    let (a, _) = auth(p);
    let start = std::time::Instant::now();
    assert!(a.authenticate("tim@example.org", "nope", IP_A).await.is_err());
    assert!(start.elapsed() >= Duration::from_millis(150));
    let start = std::time::Instant::now();
    a.authenticate("tim@example.org", "right", IP_A).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(150), "success must not wait");
}

#[tokio::test]
async fn unknown_user_and_address_case() {
    let (a, accounts) = auth(policy(10, 5));
    assert_eq!(
        a.authenticate("nobody@example.org", "right", IP_A).await,
        Err(AuthError::InvalidCredentials)
    );
    let ok = a.authenticate("  Tim@EXAMPLE.org ", "right", IP_A).await.unwrap();
    assert_eq!(ok.address, "tim@example.org");
    assert_eq!(ok.account_id, 1);
    let asked = accounts.asked.lock().unwrap().clone();
    assert_eq!(asked, ["nobody@example.org", "tim@example.org"]);
    // Absurdly long names are not even looked up.
    let long = format!("{}@example.org", "x".repeat(MAX_ADDRESS_LEN));
    assert_eq!(
        a.authenticate(&long, "pw", IP_A).await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(accounts.asked.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn corrupt_hash_and_backend_errors() {
    let (a, _) = auth(policy(1, 1));
    assert_eq!(
        a.authenticate("corrupt@example.org", "not a phc", IP_A).await,
        Err(AuthError::InvalidCredentials)
    );
    let (a, _) = auth(policy(1, 1));
    for _ in 0..3 {
        assert!(matches!(
            a.authenticate("broken@example.org", "x", IP_A).await,
            Err(AuthError::Temporary(_))
        ));
    }
    // Backend errors are not held against the client.
    a.authenticate("tim@example.org", "right", IP_A).await.unwrap();
}

#[tokio::test]
async fn per_ip_limit_blocks_even_the_right_password() {
    let (a, accounts) = auth(policy(3, 100));
    for user in ["tim@example.org", "ann@example.org", "x@example.org"] {
        assert_eq!(
            a.authenticate(user, "guess", IP_A).await,
            Err(AuthError::InvalidCredentials)
        );
    }
    let asked_before = accounts.asked.lock().unwrap().len();
    assert_eq!(
        a.authenticate("bob@example.org", "bobpw", IP_A).await,
        Err(AuthError::RateLimited)
    );
    assert_eq!(
        accounts.asked.lock().unwrap().len(),
        asked_before,
        "a rate-limited attempt must not reach the password check"
    );
    // Another client is unaffected; so is the same /64 logic for IPv4.
    a.authenticate("bob@example.org", "bobpw", IP_B).await.unwrap();
}

#[tokio::test]
async fn per_account_limit_spans_addresses() {
    let (a, _) = auth(policy(100, 2));
    for ip in [IP_A, IP_B] {
        assert_eq!(
            a.authenticate("tim@example.org", "guess", ip).await,
            Err(AuthError::InvalidCredentials)
        );
    }
    assert_eq!(
        a.authenticate("TIM@example.org", "right", IP_C).await,
        Err(AuthError::RateLimited)
    );
    a.authenticate("ann@example.org", "annpw", IP_C).await.unwrap();
}

/// Issue 18: guesses from elsewhere lock the account, but not its owner's
/// usual address; that address is still limited by its own failures.
#[tokio::test]
async fn a_locked_account_still_lets_its_usual_client_in() {
    let (a, _) = auth(policy(100, 3));
    a.authenticate("tim@example.org", "right", IP_A).await.unwrap();
    for _ in 0..3 {
        assert!(a.authenticate("tim@example.org", "guess", IP_B).await.is_err());
    }
    assert_eq!(
        a.authenticate("tim@example.org", "right", IP_C).await,
        Err(AuthError::RateLimited),
        "an unknown client stays locked out"
    );
    a.authenticate("tim@example.org", "right", IP_A).await.unwrap();
    for _ in 0..3 {
        assert!(a.authenticate("tim@example.org", "guess", IP_A).await.is_err());
    }
    assert_eq!(
        a.authenticate("tim@example.org", "right", IP_A).await,
        Err(AuthError::RateLimited),
        "a trusted client that guesses is limited too"
    );
}

#[tokio::test]
async fn success_resets_the_account_counter() {
    let (a, _) = auth(policy(100, 2));
    for _ in 0..2 {
        assert!(a.authenticate("tim@example.org", "guess", IP_A).await.is_err());
        a.authenticate("tim@example.org", "right", IP_A).await.unwrap();
    }
    assert!(a.authenticate("tim@example.org", "guess", IP_A).await.is_err());
    assert!(a.authenticate("tim@example.org", "guess", IP_A).await.is_err());
    assert_eq!(
        a.authenticate("tim@example.org", "right", IP_A).await,
        Err(AuthError::RateLimited)
    );
}

#[tokio::test]
async fn window_expiry_lifts_the_limit() {
    let mut p = policy(2, 2);
    p.window = Duration::from_millis(300);
    let (a, _) = auth(p);
    for _ in 0..2 {
        assert!(a.authenticate("tim@example.org", "guess", IP_A).await.is_err());
    }
    assert_eq!(
        a.authenticate("tim@example.org", "right", IP_A).await,
        Err(AuthError::RateLimited)
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    a.authenticate("tim@example.org", "right", IP_A).await.unwrap();
}

#[tokio::test]
async fn parallel_guesses_cannot_overshoot_the_limit() {
    let mut p = policy(100, 3);
    p.failure_delay = Duration::from_millis(200);
    let (a, _) = auth(p);
    let attempts: Vec<_> = (0..10)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move { a.authenticate("tim@example.org", &format!("guess{i}"), IP_A).await })
        })
        .collect();
    let mut invalid = 0;
    let mut limited = 0;
    for t in attempts {
        match t.await.unwrap() {
            Err(AuthError::InvalidCredentials) => invalid += 1,
            Err(AuthError::RateLimited) => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((invalid, limited), (3, 7));
}

#[tokio::test]
async fn many_parallel_correct_logins_all_succeed() {
    // Limits far below the parallelism: correct logins wait for each
    // other's outcome instead of being refused.
    let (a, _) = auth(policy(2, 1));
    let logins: Vec<_> = (0..20)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.authenticate("tim@example.org", "right", IP_A).await })
        })
        .collect();
    for t in logins {
        assert!(t.await.unwrap().is_ok());
    }
    // And an abandoned attempt counts as a failure.
    let fut = a.authenticate("tim@example.org", "wrong", IP_A);
    drop(tokio::time::timeout(Duration::from_micros(1), fut).await);
    assert_eq!(
        a.authenticate("tim@example.org", "right", IP_A).await,
        Err(AuthError::RateLimited)
    );
}

#[tokio::test]
async fn cached_success_needs_the_same_password_and_hash() {
    let (a, accounts) = auth(policy(100, 100));
    a.authenticate("tim@example.org", "right", IP_A).await.unwrap();
    // Served from the cache, and still only for the right password.
    a.authenticate("tim@example.org", "right", IP_A).await.unwrap();
    assert_eq!(
        a.authenticate("tim@example.org", "wrong", IP_A).await,
        Err(AuthError::InvalidCredentials)
    );
    // A new password hash (password change) makes the old password fail.
    accounts.set("tim@example.org", "changed");
    assert_eq!(
        a.authenticate("tim@example.org", "right", IP_A).await,
        Err(AuthError::InvalidCredentials)
    );
    a.authenticate("tim@example.org", "changed", IP_A).await.unwrap();
}

#[test]
fn ipv6_is_throttled_per_64_and_mapped_v4_as_v4() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(throttle_key(a), throttle_key(b));
    assert_ne!(throttle_key(a), throttle_key(c));
    let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
    assert_eq!(throttle_key(mapped), IP_A);
}

#[test]
fn dummy_hash_is_valid_and_matches_params() {
    let phc = dummy_hash(HashParams::MINIMAL);
    let parsed = PasswordHash::new(&phc).unwrap();
    assert_eq!(parsed.algorithm.as_str(), "argon2id");
    assert_eq!(parsed.params.get_decimal("m"), Some(8));
    assert_eq!(parsed.params.get_decimal("t"), Some(1));
    assert_eq!(parsed.hash.unwrap().len(), 32);
    assert!(!verify_password(&phc, ""));
    assert!(!verify_password(&phc, "password"));
    let default = dummy_hash(HashParams::default());
    assert!(default.contains("m=19456,t=2,p=1"), "{default}");
}

#[test]
fn failure_table_counts_expires_and_stays_bounded() {
    let window = Duration::from_secs(60);
    let mut t: FailureTable<u32> = FailureTable::new(window, 100);
    let t0 = Instant::now();
    t.add(1, t0);
    t.add(1, t0);
    assert_eq!(t.count(&1, t0), 2);
    assert_eq!(t.count(&1, t0 + window), 0, "expired");
    t.add(1, t0 + window);
    assert_eq!(t.count(&1, t0 + window), 1, "new window starts afresh");
    t.remove(&1);
    assert!(t.entries.is_empty());

    for k in 0..1000u32 {
        t.add(k, t0 + Duration::from_millis(u64::from(k)));
        assert!(t.entries.len() <= 100);
    }
    // The newest keys survive eviction, the oldest do not.
    let late = t0 + Duration::from_secs(1);
    assert_eq!(t.count(&999, late), 1);
    assert_eq!(t.count(&0, late), 0);
}

#[tokio::test]
async fn app_passwords_work_beside_the_account_password() {
    let (a, _) = auth(policy(10, 5));
    for form in [
        "abcd-efgh-ijkl-mnop-qrst",
        "ABCD EFGH IJKL MNOP QRST",
        "abcdefghijklmnopqrst",
    ] {
        assert_eq!(
            a.authenticate("tim@example.org", form, IP_A).await.unwrap().account_id,
            1
        );
    }
    a.authenticate("tim@example.org", "right", IP_A).await.unwrap();
    // Someone else's app password is not ours.
    assert_eq!(
        a.authenticate("ann@example.org", "abcd-efgh-ijkl-mnop-qrst", IP_A)
            .await,
        Err(AuthError::InvalidCredentials)
    );
}

#[tokio::test]
async fn bearer_tokens_are_checked_and_throttled_per_client() {
    let (a, _) = auth(policy(3, 1));
    assert_eq!(
        a.authenticate_bearer(TIM_TOKEN, None, IP_A).await.unwrap().account_id,
        1
    );
    let creds = Credentials::Bearer {
        user: Some("TIM@example.org".into()),
        token: crate::Secret::new(TIM_TOKEN),
    };
    assert_eq!(a.verify(&creds, IP_A).await.unwrap().address, "tim@example.org");
    // Right token, other user named: refused.
    assert_eq!(
        a.authenticate_bearer(TIM_TOKEN, Some("ann@example.org"), IP_A).await,
        Err(AuthError::InvalidCredentials)
    );
    // Token failures do not lock an account (per-account limit is 1 here)...
    assert_eq!(
        a.authenticate_bearer("forged", None, IP_A).await,
        Err(AuthError::InvalidCredentials)
    );
    a.authenticate("tim@example.org", "right", IP_B).await.unwrap();
    // ...but do count against the client: its third failure blocks it.
    assert_eq!(
        a.authenticate_bearer("forged", None, IP_A).await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        a.authenticate_bearer(TIM_TOKEN, None, IP_A).await,
        Err(AuthError::RateLimited)
    );
    assert!(a.authenticate_bearer(TIM_TOKEN, None, IP_C).await.is_ok());
}
