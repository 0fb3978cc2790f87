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
use letterbox_store::{ChangeKind, DataType};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
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

const TYPES: &[(&str, DataType)] = &[
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
    let store = ctx.jmap.store().clone();
    let mut events = store.subscribe();
    let account = caller.account;
    let account_id = caller.account_id();
    tokio::spawn(async move {
        let _permit = permit;
        let states = |store: letterbox_store::SharedStore| {
            let wanted = wanted.clone();
            async move {
                let mut m = Map::new();
                for (name, t) in wanted {
                    if let Ok(s) = store.state(account, t).await {
                        m.insert(name.to_string(), json!(s.to_string()));
                    }
                }
                m
            }
        };
        let mut last = states(store.clone()).await;
        let change = |m: &Map<String, Value>| {
            let mut changed = Map::new();
            changed.insert(account_id.clone(), Value::Object(m.clone()));
            let v = json!({"@type": "StateChange", "changed": changed});
            format!("event: state\ndata: {v}\n\n")
        };
        // The current state first, so a client knows where it starts from.
        if tx.send(change(&last)).await.is_err() {
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
                ev = events.recv() => {
                    match ev {
                        // A commit by another process (the CLI) may concern anyone.
                        Ok(e) if e.account_id != account && e.kind != ChangeKind::External => continue,
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return,
                    }
                    tokio::time::sleep(COALESCE).await;
                    while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) = events.try_recv() {}
                    let now = states(store.clone()).await;
                    let diff: Map<String, Value> = now
                        .iter()
                        .filter(|(k, v)| last.get(*k) != Some(v))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    last = now;
                    if diff.is_empty() {
                        continue;
                    }
                    if tx.send(change(&diff)).await.is_err() || close_after_state {
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
