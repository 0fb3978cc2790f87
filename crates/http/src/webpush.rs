//! Sending JMAP push (RFC 8620 §7.2) as Web Push: RFC 8030 POSTs with a
//! TTL, payloads encrypted for the subscription's keys (RFC 8291
//! aes128gcm) and signed with our VAPID key (RFC 8292), by
//! `web-push-native`. A background task turns the store's change events
//! into StateChange pushes for every verified subscription of the account.
//!
//! Only `https://` endpoints are pushed to, except loopback `http://` in
//! development (tests run a push service on 127.0.0.1).

use crate::events::TYPES;
use base64::Engine;
use letterbox_jmap_proto::{Id, IdKind};
use letterbox_store::{AccountId, ChangeKind, PushSubscription, SharedStore};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Semaphore;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};
use web_push_native::p256::PublicKey;
use web_push_native::{Auth, WebPushBuilder};

/// How long a push service should keep an undelivered message (RFC 8030 §5.2).
const TTL: Duration = Duration::from_secs(24 * 3600);
/// Pushes in flight at once, over all subscriptions.
const MAX_IN_FLIGHT: usize = 16;
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// Changes closer together than this go out as one StateChange.
const COALESCE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum WebPushError {
    #[error("VAPID key {path}: {source}")]
    Key { path: String, source: std::io::Error },
    #[error("VAPID key {0} is not a P-256 private key")]
    BadKey(String),
    #[error("HTTP client: {0}")]
    Client(String),
}

pub struct WebPush {
    store: SharedStore,
    key: ES256KeyPair,
    /// RFC 8292 §2.1 `sub`: how a push service reaches the operator.
    contact: String,
    allow_loopback_http: bool,
    client: reqwest::Client,
    in_flight: Arc<Semaphore>,
}

/// The VAPID key, made on first start (`DATA/vapid.key`, raw scalar in
/// URL-safe base64, mode 0600).
fn load_or_generate_key(data_dir: &Path) -> Result<ES256KeyPair, WebPushError> {
    let path = data_dir.join("vapid.key");
    let shown = path.display().to_string();
    let io = |source| WebPushError::Key {
        path: shown.clone(),
        source,
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let raw = b64
                .decode(text.trim())
                .map_err(|_| WebPushError::BadKey(shown.clone()))?;
            ES256KeyPair::from_bytes(&raw).map_err(|_| WebPushError::BadKey(shown.clone()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = ES256KeyPair::generate();
            let text = b64.encode(key.to_bytes());
            let tmp = path.with_extension("key.tmp");
            {
                use std::io::Write;
                #[cfg(unix)]
                use std::os::unix::fs::OpenOptionsExt;
                let mut o = std::fs::OpenOptions::new();
                o.write(true).create(true).truncate(true);
                #[cfg(unix)]
                o.mode(0o600);
                let mut f = o.open(&tmp).map_err(io)?;
                f.write_all(text.as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
            }
            std::fs::rename(&tmp, &path).map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

impl WebPush {
    pub fn new(
        store: SharedStore,
        data_dir: &Path,
        hostname: &str,
        allow_loopback_http: bool,
    ) -> Result<Arc<WebPush>, WebPushError> {
        let key = load_or_generate_key(data_dir)?;
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("letterbox")
            .build()
            .map_err(|e| WebPushError::Client(e.to_string()))?;
        Ok(Arc::new(WebPush {
            store,
            key,
            contact: format!("mailto:postmaster@{hostname}"),
            allow_loopback_http,
            client,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }))
    }

    /// The public key (uncompressed point, URL-safe base64) for the Session.
    pub fn public_key(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.key.public_key().public_key().to_bytes_uncompressed())
    }

    /// Build the request: encrypted when the subscription has keys, always
    /// with the VAPID Authorization.
    fn request(&self, sub: &PushSubscription, body: Vec<u8>) -> Option<http::Request<Vec<u8>>> {
        let uri: http::Uri = sub.url.parse().ok()?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        match (&sub.p256dh, &sub.auth) {
            (Some(p), Some(a)) => {
                let public = PublicKey::from_sec1_bytes(&b64.decode(p.trim_end_matches('=')).ok()?).ok()?;
                let auth = b64.decode(a.trim_end_matches('=')).ok()?;
                if auth.len() != 16 {
                    return None;
                }
                WebPushBuilder::new(uri, public, Auth::clone_from_slice(&auth))
                    .with_valid_duration(TTL)
                    .with_vapid(&self.key, &self.contact)
                    .build(body)
                    .ok()
            }
            _ => {
                let vapid = web_push_native::vapid::VapidSignature::sign(&uri, TTL, &self.contact, &self.key).ok()?;
                http::Request::post(uri)
                    .header("TTL", TTL.as_secs())
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header(http::header::AUTHORIZATION, vapid.to_string())
                    .body(body)
                    .ok()
            }
        }
    }

    /// POST one message; a subscription the push service says is gone
    /// (RFC 8030 §7.3: 404, 410) is removed.
    async fn send(self: &Arc<Self>, sub: PushSubscription, message: Value) {
        let Ok(_slot) = self.in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(req) = self.request(&sub, message.to_string().into_bytes()) else {
            tracing::warn!(subscription = sub.id, "push subscription unusable; removed");
            let _ = self.store.remove_push_subscription(sub.account_id, sub.id).await;
            return;
        };
        let (parts, body) = req.into_parts();
        let mut r = self.client.post(parts.uri.to_string()).body(body);
        for (k, v) in &parts.headers {
            r = r.header(k.as_str(), v.as_bytes());
        }
        r = r.header("Urgency", "normal");
        match r.send().await {
            Ok(resp) if resp.status().is_success() => {
                tracing::debug!(subscription = sub.id, status = %resp.status(), "push sent");
            }
            Ok(resp) if matches!(resp.status().as_u16(), 404 | 410) => {
                tracing::info!(subscription = sub.id, status = %resp.status(), "push subscription gone; removed");
                let _ = self.store.remove_push_subscription(sub.account_id, sub.id).await;
            }
            Ok(resp) => tracing::info!(subscription = sub.id, status = %resp.status(), "push refused"),
            Err(e) => tracing::info!(subscription = sub.id, error = %e, "push failed"),
        }
    }

    /// Run the change → push loop until the store closes.
    pub fn spawn(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move { me.run().await });
    }

    async fn run(self: Arc<Self>) {
        let mut events = self.store.subscribe();
        // Last states pushed, per account with subscriptions.
        let mut last: HashMap<AccountId, Map<String, Value>> = HashMap::new();
        loop {
            let mut accounts = HashSet::new();
            match events.recv().await {
                Ok(e) if e.kind == ChangeKind::External || e.kind == ChangeKind::Queued => continue,
                Ok(e) => {
                    accounts.insert(e.account_id);
                }
                Err(RecvError::Lagged(_)) => {
                    accounts.extend(last.keys().copied());
                }
                Err(RecvError::Closed) => return,
            }
            tokio::time::sleep(COALESCE).await;
            loop {
                match events.try_recv() {
                    Ok(e) if e.kind != ChangeKind::External && e.kind != ChangeKind::Queued => {
                        accounts.insert(e.account_id);
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                        accounts.extend(last.keys().copied())
                    }
                    Err(_) => break,
                }
            }
            for account in accounts {
                self.account_changed(account, &mut last).await;
            }
        }
    }

    async fn account_changed(self: &Arc<Self>, account: AccountId, last: &mut HashMap<AccountId, Map<String, Value>>) {
        let subs: Vec<PushSubscription> = match self.store.push_subscriptions(account).await {
            Ok(s) => s.into_iter().filter(|s| s.verified).collect(),
            Err(_) => return,
        };
        if subs.is_empty() {
            last.remove(&account);
            return;
        }
        let now = crate::events::states(&self.store, account, TYPES).await;
        let before = last.insert(account, now.clone()).unwrap_or_default();
        let changed = crate::events::diff(&before, &now);
        if changed.is_empty() {
            return;
        }
        let account_id = Id::new(IdKind::Account, account).to_string();
        for sub in subs {
            let wanted: Map<String, Value> = changed
                .iter()
                .filter(|(k, _)| sub.types.as_ref().is_none_or(|t| t.iter().any(|w| w == *k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let mut c = Map::new();
            c.insert(account_id.clone(), Value::Object(wanted));
            let message = json!({"@type": "StateChange", "changed": c});
            let me = self.clone();
            tokio::spawn(async move { me.send(sub, message).await });
        }
    }
}

/// The [`WebPush`] as JMAP's [`letterbox_jmap::push::Pusher`].
pub struct PushHandle(pub Arc<WebPush>);

impl letterbox_jmap::push::Pusher for PushHandle {
    fn verify(&self, subscription: PushSubscription, message: Value) {
        let me = self.0.clone();
        tokio::spawn(async move { me.send(subscription, message).await });
    }

    fn url_allowed(&self, url: &str) -> bool {
        let Ok(u) = url.parse::<http::Uri>() else {
            return false;
        };
        let host = u
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match u.scheme_str() {
            Some("https") => !host.is_empty() && (!loopback || self.0.allow_loopback_http),
            Some("http") => loopback && self.0.allow_loopback_http,
            _ => false,
        }
    }
}
