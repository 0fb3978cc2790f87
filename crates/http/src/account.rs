//! The account's own credentials and settings over HTTP, for the webmail's
//! settings and scripts: app passwords (create, list, revoke), the OAuth
//! grants of connected applications (list, revoke), and spam allow/block
//! lists (issue 15). JSON in and out; any of the
//! account's credentials authenticates, as for JMAP.

use crate::auth::authenticate;
use crate::conn::Peer;
use crate::routes::{json_response, small_json};
use crate::HttpCtx;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use letterbox_directory::{app_password_form, generate_app_password, secret_digest};
use letterbox_store::StoreError;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Invalid(m) => json_response(StatusCode::BAD_REQUEST, &json!({ "error": m })),
        other => {
            tracing::warn!(error = %other, "credential operation failed");
            json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": "try again later" }))
        }
    }
}

/// The answer to a DELETE: 204, or 404 with `missing` when there was nothing.
fn deleted(result: Result<bool, StoreError>, missing: &str) -> Response {
    match result {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => json_response(StatusCode::NOT_FOUND, &json!({ "error": missing })),
        Err(e) => store_error(e),
    }
}

macro_rules! caller {
    ($ctx:expr, $headers:expr, $peer:expr) => {
        match authenticate(&$ctx, &$headers, &$peer).await {
            Ok(c) => c,
            Err(r) => return r,
        }
    };
}

pub async fn list_app_passwords(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let caller = caller!(ctx, headers, peer);
    match ctx.jmap.store().app_passwords(caller.account).await {
        Ok(list) => json_response(
            StatusCode::OK,
            &list
                .iter()
                .map(|p| json!({ "id": p.id, "name": p.name, "created": p.created }))
                .collect::<Vec<_>>(),
        ),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct NewAppPassword {
    name: String,
}

/// The password is in this response only; the store keeps its digest.
pub async fn add_app_password(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = caller!(ctx, headers, peer);
    let req: NewAppPassword = match small_json(&headers, body, "{\"name\": ...}").await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let password = generate_app_password();
    let Some(form) = app_password_form(&password) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match ctx
        .jmap
        .store()
        .add_app_password(caller.account, &req.name, &secret_digest(&form))
        .await
    {
        Ok(p) => {
            tracing::info!(account = %caller.address, name = %p.name, "app password created");
            json_response(
                StatusCode::CREATED,
                &json!({ "id": p.id, "name": p.name, "created": p.created, "password": password }),
            )
        }
        Err(e) => store_error(e),
    }
}

pub async fn remove_app_password(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let caller = caller!(ctx, headers, peer);
    let removed = ctx.jmap.store().remove_app_password(caller.account, id).await;
    if matches!(removed, Ok(true)) {
        // Basic logins are cached briefly; forget them all so the revoked
        // password stops working now.
        ctx.cache.clear();
    }
    deleted(removed, "no such app password")
}

/// `GET /api/spam-lists`: the caller's allow/block entries.
pub async fn list_spam_lists(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let caller = caller!(ctx, headers, peer);
    match ctx.jmap.store().spam_lists(Some(caller.account)).await {
        Ok(list) => json_response(
            StatusCode::OK,
            &list
                .iter()
                .map(|e| json!({ "entry": e.entry, "allow": e.allow }))
                .collect::<Vec<_>>(),
        ),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct SpamListEntry {
    entry: String,
    allow: bool,
}

/// `POST /api/spam-lists` `{"entry": "a@b.example" | "@b.example", "allow": bool}`:
/// mail from it always to the inbox (when authenticated) or always to Junk.
pub async fn set_spam_list(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = caller!(ctx, headers, peer);
    let req: SpamListEntry = match small_json(&headers, body, "{\"entry\": ..., \"allow\": ...}").await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let Ok(entry) = letterbox_store::spam_list_entry(&req.entry) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "entry must be an address or @domain" }),
        );
    };
    match ctx
        .jmap
        .store()
        .set_spam_list(caller.account, &entry, Some(req.allow))
        .await
    {
        Ok(_) => json_response(StatusCode::OK, &json!({ "entry": entry, "allow": req.allow })),
        Err(e) => store_error(e),
    }
}

/// `DELETE /api/spam-lists/{entry}`.
pub async fn remove_spam_list(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    Path(entry): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = caller!(ctx, headers, peer);
    let removed = ctx
        .jmap
        .store()
        .set_spam_list(caller.account, &entry.trim().to_lowercase(), None)
        .await;
    deleted(removed, "no such entry")
}

pub async fn list_grants(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let caller = caller!(ctx, headers, peer);
    match ctx.jmap.store().grants(caller.account).await {
        Ok(list) => json_response(
            StatusCode::OK,
            &list
                .iter()
                .map(|g| json!({ "id": g.id, "clientId": g.client_id, "scope": g.scope, "created": g.created }))
                .collect::<Vec<_>>(),
        ),
        Err(e) => store_error(e),
    }
}

pub async fn revoke_grant(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let caller = caller!(ctx, headers, peer);
    deleted(ctx.jmap.store().revoke_grant(caller.account, id).await, "no such grant")
}

/// Longest password accepted (as the CLI's limit).
const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest new password.
const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Deserialize)]
struct NewPassword {
    old: String,
    new: String,
}

/// `POST /api/password` `{"old","new"}`: change the account password. The
/// old one must be the account password itself (not an app password) and
/// is checked through the shared throttle. Every token, grant and app
/// password of the account is revoked with it; a webmail caller gets a
/// fresh session in the answer so it stays logged in.
pub async fn change_password(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = caller!(ctx, headers, peer);
    let req: NewPassword = match small_json(&headers, body, "{\"old\": ..., \"new\": ...}").await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if req.new.chars().count() < MIN_PASSWORD_CHARS || req.new.len() > MAX_PASSWORD_BYTES {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": format!("The new password needs {MIN_PASSWORD_CHARS} characters or more.") }),
        );
    }
    if let Err(e) = ctx
        .auth
        .authenticate_primary(&caller.address, &req.old, peer.info.peer.ip())
        .await
    {
        let (status, text) = match e {
            letterbox_directory::AuthError::InvalidCredentials => {
                (StatusCode::FORBIDDEN, "The current password is wrong.")
            }
            letterbox_directory::AuthError::RateLimited => {
                (StatusCode::TOO_MANY_REQUESTS, "Too many attempts. Try again later.")
            }
            letterbox_directory::AuthError::Temporary(_) => (StatusCode::SERVICE_UNAVAILABLE, "Try again later."),
        };
        return json_response(status, &json!({ "error": text }));
    }
    let new = req.new;
    let hashed = tokio::task::spawn_blocking(move || letterbox_directory::hash_password(&new)).await;
    let Ok(Ok(hash)) = hashed else {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": "cannot hash the password" }),
        );
    };
    if let Err(e) = ctx.jmap.store().set_password(&caller.address, &hash).await {
        return store_error(e);
    }
    ctx.cache.clear();
    tracing::info!(account = %caller.address, peer = %peer.info.peer, "password changed");
    let by_cookie = !headers.contains_key(header::AUTHORIZATION)
        && crate::webmail::cookie(&headers, crate::webmail::SESSION_COOKIE).is_some();
    if by_cookie {
        crate::webmail::start_session(&ctx, caller.account, &caller.address, &peer).await
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}
