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
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// Shortest ping interval honoured (RFC 8620 §7.3: the server may raise it).
pub const MIN_PING_SECS: u64 = 10;
/// Changes closer together than this are sent as one StateChange.
const COALESCE: Duration = Duration::from_millis(100);

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
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(8);
    let mut watcher = StateWatcher::new(ctx.jmap.store().clone(), caller.account, caller.account_id(), wanted).await;
    tokio::spawn(async move {
        let _permit = permit;
        let event = |v: Value| format!("event: state\ndata: {v}\n\n");
        // The current state first, so a client knows where it starts from.
        if tx.send(event(watcher.state_change(watcher.current()))).await.is_err() {
            return;
        }
        let mut ticker = ping.map(|p| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        loop {
            let tick = async {
                match ticker.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                diff = watcher.changed() => {
                    let Some(diff) = diff else { return };
                    if tx.send(event(watcher.state_change(&diff))).await.is_err() || close_after_state {
                        return;
                    }
                }
                _ = tick => {
                    let secs = ping.map_or(0, |p| p.as_secs());
                    if tx.send(format!("event: ping\ndata: {{\"interval\":{secs}}}\n\n")).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|s| (Ok::<_, std::io::Error>(s), rx))
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

/// One account's states of some data types, and waiting for them to change:
/// what EventSource and WebSocket push share (RFC 8620 §7.1).
pub(crate) struct StateWatcher {
    store: SharedStore,
    account: AccountId,
    account_id: String,
    wanted: Vec<(&'static str, DataType)>,
    events: broadcast::Receiver<ChangeEvent>,
    last: Map<String, Value>,
}

impl StateWatcher {
    /// Subscribed before the first read, so no change falls in between.
    pub async fn new(
        store: SharedStore,
        account: AccountId,
        account_id: String,
        wanted: Vec<(&'static str, DataType)>,
    ) -> StateWatcher {
        let events = store.subscribe();
        let mut w = StateWatcher {
            store,
            account,
            account_id,
            wanted,
            events,
            last: Map::new(),
        };
        w.last = w.read().await;
        w
    }

    async fn read(&self) -> Map<String, Value> {
        states(&self.store, self.account, &self.wanted).await
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

    /// Wait for a commit that changes a watched state; the changed types
    /// with their new states, or `None` once the store has closed.
    pub async fn changed(&mut self) -> Option<Map<String, Value>> {
        loop {
            match self.events.recv().await {
                // A commit by another process (the CLI) may concern anyone.
                Ok(e) if e.account_id != self.account && e.kind != ChangeKind::External => continue,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
            tokio::time::sleep(COALESCE).await;
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = self.events.try_recv() {}
            let now = self.read().await;
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
