//! The webmail's pages and its session: `/` (the client), `/assets/V/…`
//! (its files, cached forever), `/sw.js` and `/manifest.webmanifest` (fixed
//! URLs, never cached long), and `/auth/session` (log in, who am I, log out).
//!
//! A webmail session is an OAuth grant of client `webmail` whose access
//! token lives in an `HttpOnly; SameSite=Strict` cookie (`Secure` unless
//! the request came over plain HTTP in `--dev`): the page never sees the
//! token, and the session is listed and revocable with the other grants.
//! Requests that the cookie authenticates must carry the double-submit CSRF
//! token (`X-CSRF-Token`, equal to the readable `lbx_csrf` cookie) when they
//! change anything, and a WebSocket upgrade must come from our own origin:
//! see [`csrf`].

use crate::conn::Peer;
use crate::routes::{json_response, request_base, small_json};
use crate::HttpCtx;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use letterbox_directory::{generate_token, secret_digest};
use letterbox_store::{NewToken, TokenKind};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The cookie that carries the session's access token.
pub const SESSION_COOKIE: &str = "lbx_session";
/// The readable cookie the page echoes in `X-CSRF-Token`.
pub const CSRF_COOKIE: &str = "lbx_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A webmail session lasts two weeks.
pub const SESSION_TTL_SECS: i64 = 14 * 24 * 3600;
/// The OAuth client id of webmail sessions.
pub const CLIENT_ID: &str = "webmail";

/// The page's policy: no inline or foreign script, frames only from us
/// (the message iframe is `srcdoc`, which inherits this policy and adds
/// its own), images from anywhere only once the message view allows them.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob: https: http:; media-src 'self' blob:; font-src 'self'; connect-src 'self'; \
frame-src 'self' blob:; worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// A cookie's value from the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn security_headers(resp: &mut Response, cache: &'static str) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
}

fn serve(ctx: &HttpCtx, path: &str, headers: &HeaderMap, cache: &'static str) -> Response {
    let Some(asset) = ctx.webmail.get(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
    let mut resp = match (&asset.gzip, gzip_ok) {
        (Some(g), true) => {
            let mut r = Body::from(g.clone()).into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        _ => Body::from(asset.body.clone()).into_response(),
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    security_headers(&mut resp, if ctx.webmail.immutable() { cache } else { "no-cache" });
    resp
}

/// `/`: the client's page.
pub async fn index(State(ctx): State<Arc<HttpCtx>>, headers: HeaderMap) -> Response {
    serve(&ctx, "index.html", &headers, "no-cache")
}

/// `/sw.js`: the service worker, at the root so its scope is the whole site.
pub async fn service_worker(State(ctx): State<Arc<HttpCtx>>, headers: HeaderMap) -> Response {
    let mut r = serve(&ctx, "sw.js", &headers, "no-cache");
    r.headers_mut()
        .insert("service-worker-allowed", HeaderValue::from_static("/"));
    r
}

pub async fn manifest(State(ctx): State<Arc<HttpCtx>>, headers: HeaderMap) -> Response {
    serve(&ctx, "manifest.webmanifest", &headers, "no-cache")
}

/// `/assets/VERSION/PATH`: forever-cacheable under the current version;
/// an old version's URL is not found (the page and worker move on).
pub async fn asset(
    State(ctx): State<Arc<HttpCtx>>,
    Path((version, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if version != ctx.webmail.version() {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    serve(&ctx, &path, &headers, "public, max-age=31536000, immutable")
}

/// Whether `Origin`, when sent, is this server as the request reached it.
fn same_origin(headers: &HeaderMap, peer: &Peer) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => request_base(headers, peer).is_some_and(|b| b.eq_ignore_ascii_case(origin)),
    }
}

fn forbidden(why: &'static str) -> Response {
    json_response(StatusCode::FORBIDDEN, &json!({ "error": why }))
}

/// CSRF defence for cookie sessions (a middleware on every route): a
/// request that carries the session cookie and no `Authorization` header
/// must, when it is not a plain read, echo the CSRF cookie in
/// `X-CSRF-Token` and come from our origin; a WebSocket upgrade (which
/// cannot carry the header) must come from our origin.
pub async fn csrf(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let headers = req.headers();
    let by_cookie = !headers.contains_key(header::AUTHORIZATION) && cookie(headers, SESSION_COOKIE).is_some();
    if !by_cookie {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<Peer>().cloned();
    let origin_ok = peer.as_ref().is_some_and(|p| same_origin(headers, p));
    let read = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let upgrade = headers.contains_key(header::UPGRADE);
    if upgrade && !origin_ok {
        return forbidden("cross-origin WebSocket");
    }
    if !read {
        let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        let expected = cookie(headers, CSRF_COOKIE);
        let matches = match (given, expected.as_deref()) {
            // Digests compared: no timing hint about the token's bytes.
            (Some(g), Some(e)) if !e.is_empty() => secret_digest(g) == secret_digest(e),
            _ => false,
        };
        if !matches || !origin_ok {
            return forbidden("CSRF token missing or wrong");
        }
    }
    next.run(req).await
}

fn session_cookies(resp: &mut Response, token: &str, csrf: &str, secure: bool, max_age: i64) {
    let flags = if secure { "; Secure" } else { "" };
    for c in [
        format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{flags}"),
        format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={max_age}; SameSite=Strict{flags}"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

/// `POST /auth/session` with `{"username","password"}` (JSON, which a
/// cross-site form cannot send): checks the password through the shared
/// throttle and starts a session.
pub async fn login(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !peer.tls && !ctx.config.api_on_plain {
        return forbidden("use HTTPS");
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json || !same_origin(&headers, &peer) {
        return forbidden("log in from the webmail page");
    }
    let form: Login = match small_json(&headers, body, "{\"username\": ..., \"password\": ...}").await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let authed = match ctx
        .auth
        .authenticate(form.username.trim(), &form.password, peer.info.peer.ip())
        .await
    {
        Ok(a) => a,
        Err(e) => {
            let (status, text) = crate::auth::signin_refusal(&e);
            return json_response(status, &json!({ "error": text }));
        }
    };
    tracing::info!(account = %authed.address, peer = %peer.info.peer, "webmail login");
    start_session(&ctx, authed.account_id, &authed.address, &peer).await
}

/// A new webmail session for the account: its grant, and the answer that
/// sets its cookies (`{"username", "csrf"}`).
pub(crate) async fn start_session(ctx: &HttpCtx, account: i64, address: &str, peer: &Peer) -> Response {
    let token = generate_token("lbx_at_");
    let csrf = generate_token("");
    let stored = NewToken {
        digest: secret_digest(&token),
        kind: TokenKind::Access,
        expires: letterbox_store::unix_now() + SESSION_TTL_SECS,
        payload: String::new(),
    };
    if let Err(e) = ctx
        .jmap
        .store()
        .create_grant(account, CLIENT_ID, "mail", vec![stored])
        .await
    {
        tracing::warn!(error = %e, "cannot store a webmail session");
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": "try again later" }));
    }
    let mut resp = json_response(StatusCode::OK, &json!({ "username": address, "csrf": csrf }));
    session_cookies(&mut resp, &token, &csrf, peer.tls, SESSION_TTL_SECS);
    resp
}

/// `GET /auth/session`: who the cookie belongs to, or 401.
pub async fn whoami(State(ctx): State<Arc<HttpCtx>>, Extension(peer): Extension<Peer>, headers: HeaderMap) -> Response {
    if headers.contains_key(header::AUTHORIZATION) || cookie(&headers, SESSION_COOKIE).is_none() {
        return json_response(StatusCode::UNAUTHORIZED, &json!({ "error": "not logged in" }));
    }
    match crate::auth::authenticate(&ctx, &headers, &peer).await {
        Ok(c) => json_response(
            StatusCode::OK,
            &json!({ "username": c.address, "csrf": cookie(&headers, CSRF_COOKIE).unwrap_or_default() }),
        ),
        Err(_) => json_response(StatusCode::UNAUTHORIZED, &json!({ "error": "not logged in" })),
    }
}

/// `DELETE /auth/session`: log out. The grant is revoked, so the token
/// stops working everywhere at once, and the cookies are cleared.
pub async fn logout(State(ctx): State<Arc<HttpCtx>>, Extension(peer): Extension<Peer>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = ctx.jmap.store().revoke_token(&secret_digest(&token)).await {
            tracing::warn!(error = %e, "webmail logout: revocation failed");
            return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": "try again" }));
        }
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    session_cookies(&mut resp, "", "", peer.tls, 0);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; lbx_session=tok; lbx_csrf=c"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&h, CSRF_COOKIE).as_deref(), Some("c"));
        assert_eq!(cookie(&h, "lbx"), None);
    }

    #[test]
    fn the_page_policy_forbids_inline_and_foreign_script() {
        assert!(PAGE_CSP.contains("script-src 'self';"));
        assert!(!PAGE_CSP.contains("unsafe-eval"));
        assert!(PAGE_CSP.contains("object-src 'none'") && PAGE_CSP.contains("frame-ancestors 'none'"));
    }
}
