//! HTTP authentication (RFC 7617 Basic over TLS, RFC 6750 Bearer tokens
//! from our OAuth server) through the shared
//! `Authenticator`, so failures count against the same throttles as IMAP
//! and SMTP; a short-lived cache of verified credentials keeps Argon2 off
//! the path of every API call; per-account concurrency limits.

use crate::conn::Peer;
use crate::HttpCtx;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use letterbox_directory::AuthError;
use letterbox_jmap::Caller;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long verified credentials are trusted without a new Argon2 check. A
/// changed password takes at most this long to stop working over HTTP.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most cached credentials; the cache empties when full.
pub const CACHE_MAX: usize = 10_000;

/// Verified (user, password digest) pairs.
#[derive(Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<[u8; 32], (Caller, Instant)>>,
}

fn digest(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.to_lowercase().as_bytes());
    h.update([0]);
    h.update(password.as_bytes());
    h.finalize().into()
}

impl AuthCache {
    fn get(&self, key: &[u8; 32]) -> Option<Caller> {
        let map = self.entries.lock().ok()?;
        map.get(key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(c, _)| c.clone())
    }

    /// Forget every verified credential (after a revocation).
    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            map.clear();
        }
    }

    fn put(&self, key: [u8; 32], caller: Caller) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= CACHE_MAX {
                map.clear();
            }
            map.insert(key, (caller, Instant::now()));
        }
    }
}

/// Per-account concurrent API requests (RFC 8620 §2 maxConcurrentRequests).
#[derive(Default)]
pub struct AccountLimits {
    requests: Mutex<HashMap<i64, Arc<Semaphore>>>,
    uploads: Mutex<HashMap<i64, Arc<Semaphore>>>,
    events: Mutex<HashMap<i64, Arc<Semaphore>>>,
    ips: Mutex<HashMap<std::net::IpAddr, Arc<Semaphore>>>,
}

impl AccountLimits {
    fn take(map: &Mutex<HashMap<i64, Arc<Semaphore>>>, account: i64, max: usize) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut m = map.lock().ok()?;
            // Drop semaphores nobody holds, so the map stays small.
            if m.len() > 1024 {
                m.retain(|_, s| Arc::strong_count(s) > 1);
            }
            m.entry(account)
                .or_insert_with(|| Arc::new(Semaphore::new(max)))
                .clone()
        };
        sem.try_acquire_owned().ok()
    }

    pub fn request(&self, account: i64, max: usize) -> Option<OwnedSemaphorePermit> {
        Self::take(&self.requests, account, max)
    }

    /// RFC 8620 §2 maxConcurrentUpload: a pool apart from API requests
    /// (sharing one made the first kind used set the other's size).
    pub fn upload(&self, account: i64, max: usize) -> Option<OwnedSemaphorePermit> {
        Self::take(&self.uploads, account, max)
    }

    pub fn event_source(&self, account: i64, max: usize) -> Option<OwnedSemaphorePermit> {
        Self::take(&self.events, account, max)
    }

    /// A slot of the client address's pool of requests in progress.
    pub fn per_ip(&self, ip: std::net::IpAddr, max: usize) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut m = self.ips.lock().ok()?;
            if m.len() > 4096 {
                m.retain(|_, s| Arc::strong_count(s) > 1);
            }
            m.entry(ip.to_canonical())
                .or_insert_with(|| Arc::new(Semaphore::new(max)))
                .clone()
        };
        sem.try_acquire_owned().ok()
    }
}

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"Letterbox\", charset=\"UTF-8\", Bearer realm=\"Letterbox\"",
        )],
        message.to_string(),
    )
        .into_response()
}

/// RFC 6750 §3.1: a token that is not (or no longer) valid.
fn invalid_token() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"Letterbox\", error=\"invalid_token\", error_description=\"expired or revoked\"",
        )],
        "invalid token",
    )
        .into_response()
}

fn refused(e: AuthError, invalid: fn() -> Response) -> Response {
    match e {
        AuthError::InvalidCredentials => invalid(),
        AuthError::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "60")],
            "too many failed logins; try again later",
        )
            .into_response(),
        AuthError::Temporary(_) => (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response(),
    }
}

async fn bearer(ctx: &HttpCtx, token: &str, peer: &Peer) -> Result<Caller, Response> {
    match ctx.auth.authenticate_bearer(token, None, peer.info.peer.ip()).await {
        Ok(a) => Ok(Caller {
            account: a.account_id,
            address: a.address,
        }),
        Err(e) => Err(refused(e, invalid_token)),
    }
}

/// The caller of a request, or the response refusing it.
pub async fn authenticate(ctx: &HttpCtx, headers: &HeaderMap, peer: &Peer) -> Result<Caller, Response> {
    if !peer.tls && !ctx.config.api_on_plain {
        return Err((StatusCode::FORBIDDEN, "use HTTPS").into_response());
    }
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        // A webmail session: the cookie holds an access token (the CSRF
        // middleware has already checked the request's origin).
        if let Some(token) = crate::webmail::cookie(headers, crate::webmail::SESSION_COOKIE) {
            return bearer(ctx, &token, peer).await;
        }
        return Err(unauthorized("authentication required"));
    };
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(unauthorized("malformed Authorization header"));
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        // Not cached: a revoked token must stop working at once, and a
        // token check is one indexed read.
        return bearer(ctx, rest.trim(), peer).await;
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthorized("unsupported authentication scheme"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Err(unauthorized("malformed Basic credentials"));
    };
    let key = digest(user, password);
    if let Some(c) = ctx.cache.get(&key) {
        return Ok(c);
    }
    match ctx.auth.authenticate(user, password, peer.info.peer.ip()).await {
        Ok(a) => {
            let caller = Caller {
                account: a.account_id,
                address: a.address,
            };
            ctx.cache.put(key, caller.clone());
            Ok(caller)
        }
        Err(e) => Err(refused(e, || unauthorized("invalid credentials"))),
    }
}

/// What a sign-in page says for a refused password (webmail, OAuth).
pub(crate) fn signin_refusal(e: &AuthError) -> (StatusCode, &'static str) {
    match e {
        AuthError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "Wrong email address or password."),
        AuthError::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins. Try again later.",
        ),
        AuthError::Temporary(_) => (StatusCode::SERVICE_UNAVAILABLE, "Signing in is not possible right now."),
    }
}
