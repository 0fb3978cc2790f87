//! RFC 8887 JMAP over WebSocket: `/jmap/ws`, subprotocol `jmap`,
//! authenticated on the upgrade request like the API. Text frames carry
//! Request objects (answered with Response or RequestError, with the
//! client's `id` as `requestId`), WebSocketPushEnable and
//! WebSocketPushDisable; push sends StateChange objects with a `pushState`
//! that a reconnecting client hands back to get what it missed.

use crate::auth::authenticate;
use crate::conn::Peer;
use crate::events::{diff, StateWatcher, TYPES};
use crate::HttpCtx;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use letterbox_jmap::Caller;
use letterbox_jmap_proto::RequestError;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// RFC 6455 §7.4.1 close codes.
const UNSUPPORTED_DATA: u16 = 1003;
const POLICY: u16 = 1008;
const TOO_BIG: u16 = 1009;
/// Keeps NAT mappings and proxies from dropping a quiet connection.
const PING_EVERY: Duration = Duration::from_secs(50);

pub async fn upgrade(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let caller = match authenticate(&ctx, &headers, &peer).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    // §4.2: the client must ask for the jmap subprotocol.
    if !ws
        .requested_protocols()
        .filter_map(|p| p.to_str().ok())
        .any(|p| p.split(',').any(|p| p.trim() == "jmap"))
    {
        return (StatusCode::BAD_REQUEST, "Sec-WebSocket-Protocol must include jmap\n").into_response();
    }
    // WebSocket and EventSource connections share the per-account cap.
    let Some(permit) = ctx.limits.event_source(caller.account, ctx.config.max_event_sources) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many push connections for this account\n",
        )
            .into_response();
    };
    let max = ctx.jmap.config().limits.max_size_request as usize;
    ws.protocols(["jmap"])
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            run(ctx, caller, socket).await;
        })
}

/// `pushState` (§4.3.5.1): every type's state, in [`TYPES`] order.
fn push_state(states: &Map<String, Value>) -> String {
    TYPES
        .iter()
        .map(|(name, _)| states.get(*name).and_then(Value::as_str).unwrap_or("0"))
        .collect::<Vec<_>>()
        .join(".")
}

fn parse_push_state(s: &str) -> Option<Map<String, Value>> {
    let parts: Vec<&str> = s.split('.').collect();
    (parts.len() == TYPES.len() && parts.iter().all(|p| p.parse::<u64>().is_ok())).then(|| {
        TYPES
            .iter()
            .zip(parts)
            .map(|((name, _), p)| (name.to_string(), json!(p)))
            .collect()
    })
}

/// What push is on for: `None` = off; an empty list = every type.
type Push = Option<Vec<String>>;

async fn run(ctx: Arc<HttpCtx>, caller: Caller, mut socket: WebSocket) {
    let mut watcher = StateWatcher::new(&ctx.hub, caller.account, caller.account_id(), TYPES.to_vec()).await;
    let mut push: Push = None;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        // §4.3.1: binary frames are not part of the subprotocol.
                        close(&mut socket, UNSUPPORTED_DATA, "text frames only").await;
                        return;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => return,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "WebSocket ended");
                        if e.to_string().contains("too long") {
                            close(&mut socket, TOO_BIG, "message too large").await;
                        }
                        return;
                    }
                };
                let reply = handle(&ctx, &caller, text.as_str(), &mut push, &watcher).await;
                for r in reply {
                    if socket.send(Message::Text(r.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
            changed = watcher.changed(), if push.is_some() => {
                let Some(changed) = changed else {
                    close(&mut socket, POLICY, "server shutting down").await;
                    return;
                };
                if let Some(m) = push_message(&watcher, &changed, push.as_deref()) {
                    if socket.send(Message::Text(m.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A StateChange for the types push is on for, with the pushState.
fn push_message(watcher: &StateWatcher, changed: &Map<String, Value>, types: Option<&[String]>) -> Option<Value> {
    let filtered: Map<String, Value> = changed
        .iter()
        .filter(|(k, _)| types.is_none_or(|t| t.is_empty() || t.iter().any(|w| w == *k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if filtered.is_empty() {
        return None;
    }
    let mut m = watcher.state_change(&filtered);
    m["pushState"] = json!(push_state(watcher.current()));
    Some(m)
}

fn request_error(e: &RequestError, request_id: Option<&Value>) -> Value {
    let mut v = serde_json::to_value(e.to_problem()).unwrap_or_else(|_| json!({}));
    v["@type"] = json!("RequestError");
    if let Some(id) = request_id {
        v["requestId"] = id.clone();
    }
    v
}

/// One client message: the messages to send back.
async fn handle(ctx: &HttpCtx, caller: &Caller, text: &str, push: &mut Push, watcher: &StateWatcher) -> Vec<Value> {
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(text) else {
        return vec![request_error(&RequestError::NotJson, None)];
    };
    let kind = obj.remove("@type");
    match kind.as_ref().and_then(Value::as_str) {
        Some("Request") => {
            let id = obj.remove("id");
            let Some(permit) = ctx.limits.request(
                caller.account,
                ctx.jmap.config().limits.max_concurrent_requests as usize,
            ) else {
                let e = RequestError::Limit {
                    limit: "maxConcurrentRequests",
                };
                return vec![request_error(&e, id.as_ref())];
            };
            let body = Value::Object(obj).to_string();
            let out = tokio::time::timeout(ctx.config.request_timeout, ctx.jmap.execute(caller, body.as_bytes())).await;
            drop(permit);
            match out {
                Ok(Ok(resp)) => {
                    let mut v = serde_json::to_value(resp).unwrap_or_else(|_| json!({}));
                    v["@type"] = json!("Response");
                    if let Some(id) = id {
                        v["requestId"] = id;
                    }
                    vec![v]
                }
                Ok(Err(e)) => vec![request_error(&e, id.as_ref())],
                Err(_) => vec![request_error(
                    &RequestError::Limit { limit: "request time" },
                    id.as_ref(),
                )],
            }
        }
        Some("WebSocketPushEnable") => {
            let types = match obj.get("dataTypes") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(l)) => l.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                Some(_) => {
                    return vec![request_error(
                        &RequestError::NotRequest("dataTypes must be a list".into()),
                        None,
                    )]
                }
            };
            *push = Some(types);
            // §4.3.5.2: send at once what changed since the client's pushState.
            let since = obj.get("pushState").and_then(Value::as_str).and_then(parse_push_state);
            match since.map(|old| diff(&old, watcher.current())) {
                Some(changed) => push_message(watcher, &changed, push.as_deref()).into_iter().collect(),
                None => Vec::new(),
            }
        }
        Some("WebSocketPushDisable") => {
            *push = None;
            Vec::new()
        }
        _ => vec![request_error(
            &RequestError::NotRequest("@type must be Request, WebSocketPushEnable or WebSocketPushDisable".into()),
            obj.get("id"),
        )],
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_state_round_trips_and_rejects_junk() {
        let m: Map<String, Value> = TYPES
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.to_string(), json!((i * 7).to_string())))
            .collect();
        let s = push_state(&m);
        assert_eq!(parse_push_state(&s), Some(m));
        assert_eq!(parse_push_state("1.2"), None);
        assert_eq!(parse_push_state("a.b.c.d"), None);
    }
}
