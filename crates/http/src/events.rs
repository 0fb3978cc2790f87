//! RFC 8620 §7.3 EventSource push: a `text/event-stream` of StateChange
//! objects (§7.1) built from the store's change events, with pings.

use crate::auth::authenticate;
use crate::conn::Peer;
use crate::HttpCtx;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use letterbox_store::{AccountId, ChangeEvent, ChangeKind, DataType, SharedStore};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

/// Shortest ping interval honoured (RFC 8620 §7.3: the server may raise it).
pub const MIN_PING_SECS: u64 = 10;

#[derive(Debug, Deserialize)]
pub struct EventQuery {
    types: Option<String>,
    closeafter: Option<String>,
    ping: Option<u64>,
}

pub(crate) const TYPES: &[(&str, DataType)] = &[
    ("Mailbox", DataType::Mailbox),
    ("Thread", DataType::Thread),
    ("Email", DataType::Email),
    ("VacationResponse", DataType::VacationResponse),
];

pub async fn event_source(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    Query(q): Query<EventQuery>,
    headers: HeaderMap,
) -> Response {
    let caller = match authenticate(&ctx, &headers, &peer).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(permit) = ctx.limits.event_source(caller.account, ctx.config.max_event_sources) else {
        return (StatusCode::TOO_MANY_REQUESTS, "too many event sources for this account").into_response();
    };
    let wanted: Vec<(&'static str, DataType)> = match q.types.as_deref() {
        None | Some("*") | Some("") => TYPES.to_vec(),
        Some(list) => TYPES
            .iter()
            .filter(|(n, _)| list.split(',').any(|t| t.trim() == *n))
            .copied()
            .collect(),
    };
    let close_after_state = q.closeafter.as_deref() == Some("state");
    let ping = q
        .ping
        .filter(|&p| p > 0)
        .map(|p| Duration::from_secs(p.clamp(MIN_PING_SECS, 3600)));
    let watcher = StateWatcher::new(&ctx.hub, caller.account, caller.account_id(), wanted).await;
    let ticker = ping.map(|p| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let feed = Feed {
        watcher,
        ticker,
        ping_secs: ping.map_or(0, |p| p.as_secs()),
        started: false,
        close_after_state,
        done: false,
        _permit: permit,
    };
    // The stream is the whole stream's state: no task or channel per
    // connection, and dropping it (the client left) ends everything.
    let body = Body::from_stream(futures_util::stream::unfold(feed, |mut f| async move {
        let event = |v: Value| format!("event: state\ndata: {v}\n\n");
        if f.done {
            return None;
        }
        if !f.started {
            // The current state first, so a client knows where it starts from.
            f.started = true;
            let first = event(f.watcher.state_change(f.watcher.current()));
            return Some((Ok::<_, std::io::Error>(first), f));
        }
        let (watcher, ticker) = (&mut f.watcher, &mut f.ticker);
        let tick = async {
            match ticker.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let out = tokio::select! {
            diff = watcher.changed() => {
                let diff = diff?;
                let e = event(watcher.state_change(&diff));
                f.done = f.close_after_state;
                e
            }
            _ = tick => format!("event: ping\ndata: {{\"interval\":{}}}\n\n", f.ping_secs),
        };
        Some((Ok(out), f))
    }));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Each account's latest states, as the streams watching it see them.
type States = Arc<Map<String, Value>>;
type Channels = HashMap<AccountId, watch::Sender<States>>;

/// Every push stream's source of states: one task reads the store's
/// change events and, per account that has watchers, reads its states
/// once per change and publishes them on that account's `watch` channel.
/// So a delivery costs one state read per account, not one per open
/// stream, and a stream wakes only for its own account.
pub(crate) struct StateHub {
    store: SharedStore,
    channels: std::sync::Mutex<Channels>,
    started: std::sync::Once,
}

impl StateHub {
    pub fn new(store: SharedStore) -> Arc<StateHub> {
        Arc::new(StateHub {
            store,
            channels: std::sync::Mutex::new(HashMap::new()),
            started: std::sync::Once::new(),
        })
    }

    /// The account's states channel (created with its current states).
    async fn subscribe(self: &Arc<Self>, account: AccountId) -> watch::Receiver<States> {
        // Started on first use: the hub is built before the runtime runs.
        self.started.call_once(|| {
            tokio::spawn(self.clone().pump(self.store.subscribe()));
        });
        if let Some(rx) = self.lock().get(&account).map(|tx| tx.subscribe()) {
            return rx;
        }
        let now = Arc::new(states(&self.store, account, TYPES).await);
        let rx = self
            .lock()
            .entry(account)
            .or_insert_with(|| watch::channel(now).0)
            .subscribe();
        // A change committed between the read and the channel's creation
        // went unseen by the pump: read once more now that it is there.
        self.refresh(account).await;
        rx
    }

    /// Read the account's states and publish them if they changed.
    async fn refresh(&self, account: AccountId) {
        let now = states(&self.store, account, TYPES).await;
        if let Some(tx) = self.lock().get(&account) {
            tx.send_if_modified(|cur| {
                let changed = **cur != now;
                if changed {
                    *cur = Arc::new(now);
                }
                changed
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Channels> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn pump(self: Arc<Self>, mut events: broadcast::Receiver<ChangeEvent>) {
        loop {
            let mut touched: Vec<AccountId> = Vec::new();
            let mut everyone = false;
            let mut note = |r: Result<ChangeEvent, bool>| match r {
                Ok(e) if e.kind == ChangeKind::External => everyone = true,
                Ok(e) => {
                    if !touched.contains(&e.account_id) {
                        touched.push(e.account_id);
                    }
                }
                // Lagged: some events are lost, so anyone may have changed.
                Err(_) => everyone = true,
            };
            match events.recv().await {
                Ok(e) => note(Ok(e)),
                Err(RecvError::Lagged(_)) => note(Err(true)),
                Err(RecvError::Closed) => {
                    self.lock().clear();
                    return;
                }
            }
            // What one commit batch announced arrives together.
            loop {
                match events.try_recv() {
                    Ok(e) => note(Ok(e)),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => note(Err(true)),
                    Err(_) => break,
                }
            }
            let accounts: Vec<AccountId> = {
                let mut map = self.lock();
                map.retain(|_, tx| tx.receiver_count() > 0);
                if everyone {
                    map.keys().copied().collect()
                } else {
                    touched.into_iter().filter(|a| map.contains_key(a)).collect()
                }
            };
            for account in accounts {
                self.refresh(account).await;
            }
        }
    }
}

/// One EventSource stream's state.
struct Feed {
    watcher: StateWatcher,
    ticker: Option<tokio::time::Interval>,
    ping_secs: u64,
    started: bool,
    close_after_state: bool,
    done: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// One account's states of some data types, and waiting for them to change:
/// what EventSource and WebSocket push share (RFC 8620 §7.1).
pub(crate) struct StateWatcher {
    account_id: String,
    wanted: Vec<(&'static str, DataType)>,
    rx: watch::Receiver<States>,
    last: Map<String, Value>,
}

impl StateWatcher {
    /// Subscribed before the first read, so no change falls in between.
    pub async fn new(
        hub: &Arc<StateHub>,
        account: AccountId,
        account_id: String,
        wanted: Vec<(&'static str, DataType)>,
    ) -> StateWatcher {
        let mut rx = hub.subscribe(account).await;
        let last = Self::pick(&rx.borrow_and_update(), &wanted);
        StateWatcher {
            account_id,
            wanted,
            rx,
            last,
        }
    }

    fn pick(all: &Map<String, Value>, wanted: &[(&'static str, DataType)]) -> Map<String, Value> {
        wanted
            .iter()
            .filter_map(|(n, _)| all.get(*n).map(|v| (n.to_string(), v.clone())))
            .collect()
    }

    /// The states last seen, by type name.
    pub fn current(&self) -> &Map<String, Value> {
        &self.last
    }

    /// A StateChange object for `changed` types of this account.
    pub fn state_change(&self, changed: &Map<String, Value>) -> Value {
        let mut c = Map::new();
        c.insert(self.account_id.clone(), Value::Object(changed.clone()));
        json!({"@type": "StateChange", "changed": c})
    }

    /// Wait for a change of a watched state; the changed types with their
    /// new states, or `None` once the store has closed.
    pub async fn changed(&mut self) -> Option<Map<String, Value>> {
        loop {
            self.rx.changed().await.ok()?;
            let now = Self::pick(&self.rx.borrow_and_update(), &self.wanted);
            let diff = diff(&self.last, &now);
            self.last = now;
            if !diff.is_empty() {
                return Some(diff);
            }
        }
    }
}

/// An account's states of `types`, by type name (unreadable ones left out).
pub(crate) async fn states(
    store: &SharedStore,
    account: AccountId,
    types: &[(&'static str, DataType)],
) -> Map<String, Value> {
    let mut m = Map::new();
    for &(name, t) in types {
        if let Ok(s) = store.state(account, t).await {
            m.insert(name.to_string(), json!(s.to_string()));
        }
    }
    m
}

/// The entries of `now` that differ from `before`.
pub(crate) fn diff(before: &Map<String, Value>, now: &Map<String, Value>) -> Map<String, Value> {
    now.iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
