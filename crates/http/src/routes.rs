//! Routes of the HTTP edge (RFC 8620 §2 session, §3 API, §6 blobs, §7.3
//! EventSource) and the plain-HTTP redirect.

use crate::auth::authenticate;
use crate::conn::Peer;
use crate::HttpCtx;
use crate::{account, oauth, webmail};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use letterbox_jmap::UploadError;
use letterbox_jmap_proto::RequestError;
use serde::Deserialize;
use std::sync::Arc;

/// Autoconfiguration routes, served on both listeners.
fn autoconfig_routes(r: Router<Arc<HttpCtx>>) -> Router<Arc<HttpCtx>> {
    r.route("/.well-known/autoconfig/mail/config-v1.1.xml", get(thunderbird))
        .route("/mail/config-v1.1.xml", get(thunderbird))
        .route("/autodiscover/autodiscover.xml", post(autodiscover))
        .route("/apple/mobileconfig", get(mobileconfig))
        .route("/Autodiscover/Autodiscover.xml", post(autodiscover))
}

#[derive(Debug, Deserialize)]
struct AutoconfigQuery {
    emailaddress: Option<String>,
}

async fn thunderbird(State(ctx): State<Arc<HttpCtx>>, Query(q): Query<AutoconfigQuery>) -> Response {
    let s = &ctx.config.clients;
    let domain = q
        .emailaddress
        .as_deref()
        .and_then(crate::autoconfig::checked_address)
        .and_then(|a| a.rsplit_once('@'))
        .map_or(s.hostname.clone(), |(_, d)| d.to_lowercase());
    crate::autoconfig::xml(crate::autoconfig::thunderbird(s, &domain))
}

/// Apple Mail's set-up: `/apple/mobileconfig?emailaddress=ADDRESS` (a
/// link a user opens on the device; the profile holds no secret).
async fn mobileconfig(State(ctx): State<Arc<HttpCtx>>, Query(q): Query<AutoconfigQuery>) -> Response {
    let Some(address) = q.emailaddress.as_deref().and_then(crate::autoconfig::checked_address) else {
        return (StatusCode::BAD_REQUEST, "emailaddress=ADDRESS is needed\n").into_response();
    };
    match crate::autoconfig::mobileconfig(&ctx.config.clients, address) {
        Some(body) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/x-apple-aspen-config".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"mail.mobileconfig\"".to_string(),
                ),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no IMAPS and submissions listeners\n").into_response(),
    }
}

async fn autodiscover(State(ctx): State<Arc<HttpCtx>>, headers: HeaderMap, body: Body) -> Response {
    let Some(bytes) = read_body(&headers, body, 64 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
    };
    let Some(address) = crate::autoconfig::request_address(&bytes) else {
        return (StatusCode::BAD_REQUEST, "no EMailAddress").into_response();
    };
    crate::autoconfig::xml(crate::autoconfig::autodiscover(&ctx.config.clients, &address))
}

/// RFC-less CORS (Fetch standard): allowed origins may call the API with
/// credentials in the Authorization header; preflights are answered here.
async fn cors(State(ctx): State<Arc<HttpCtx>>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let allowed = origin.as_deref().filter(|o| {
        ctx.config
            .cors_origins
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(o))
    });
    let Some(origin) = allowed.map(str::to_string) else {
        return next.run(req).await;
    };
    let preflight = req.method() == axum::http::Method::OPTIONS;
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, Accept, Last-Event-ID"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("3600"));
    }
    resp
}

pub fn api_router(ctx: Arc<HttpCtx>) -> Router {
    autoconfig_routes(Router::new())
        .route("/.well-known/jmap", get(well_known))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/jmap/session", get(session))
        .route("/jmap/api", post(api))
        .route("/jmap/upload/{account}", post(upload))
        .route("/jmap/download/{account}/{blob}/{name}", get(download))
        .route("/jmap/eventsource", get(crate::events::event_source))
        .route("/jmap/ws", get(crate::ws::upgrade))
        .route("/.well-known/oauth-authorization-server", get(oauth::metadata))
        .route(
            "/oauth/authorize",
            get(oauth::authorize_page).post(oauth::authorize_submit),
        )
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/oauth/style.css", get(oauth::stylesheet))
        .route(
            "/api/app-passwords",
            get(account::list_app_passwords).post(account::add_app_password),
        )
        .route("/api/app-passwords/{id}", delete(account::remove_app_password))
        .route("/api/password", post(account::change_password))
        .route(
            "/api/spam-lists",
            get(account::list_spam_lists).post(account::set_spam_list),
        )
        .route("/api/spam-lists/{entry}", delete(account::remove_spam_list))
        .route("/api/grants", get(account::list_grants))
        .route("/api/grants/{id}", delete(account::revoke_grant))
        .route("/", get(webmail::index))
        .route("/sw.js", get(webmail::service_worker))
        .route("/manifest.webmanifest", get(webmail::manifest))
        .route("/assets/{version}/{*path}", get(webmail::asset))
        .route(
            "/auth/session",
            get(webmail::whoami).post(webmail::login).delete(webmail::logout),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn(webmail::csrf))
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), per_ip))
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), cors))
        .layer(axum::middleware::from_fn(count))
        .with_state(ctx)
}

/// Plain HTTP without `--dev`: autoconfiguration (Thunderbird asks over
/// plain HTTP too) and health; everything else redirects to HTTPS.
pub fn redirect_router(ctx: Arc<HttpCtx>) -> Router {
    let base = ctx.config.https_base.clone();
    autoconfig_routes(Router::new())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(move |uri: Uri| {
            let base = base.clone();
            async move {
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                Redirect::permanent(&format!("{}{}", base.trim_end_matches('/'), path))
            }
        })
        .with_state(ctx)
}

/// At most `max_requests_per_ip` requests in progress per client address;
/// more get 429 (the connection cap per IP bounds sockets, this bounds
/// HTTP/2 streams and pipelined work). Push streams are not counted: they
/// last for hours and have their own per-account limit.
async fn per_ip(
    State(ctx): State<Arc<HttpCtx>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    if path == "/jmap/eventsource" || path == "/jmap/ws" {
        return next.run(req).await;
    }
    let Some(ip) = req.extensions().get::<Peer>().map(|p| p.info.peer.ip()) else {
        return next.run(req).await;
    };
    match ctx.limits.per_ip(ip, ctx.config.max_requests_per_ip) {
        Some(_permit) => next.run(req).await,
        None => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "too many requests in progress from your address\n",
        )
            .into_response(),
    }
}

/// Counts answered requests by status class.
async fn count(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let class = match resp.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!(letterbox_net::metrics::HTTP_REQUESTS, "status" => class).increment(1);
    resp
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// Alive: the process answers HTTP.
async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Ready: a durable store write commits within 5 s and the store's file
/// system has room (a load balancer stops sending traffic to a node that
/// could not keep what it accepts).
async fn readyz(State(ctx): State<Arc<HttpCtx>>) -> Response {
    let unavailable = |why: String| (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    match tokio::time::timeout(std::time::Duration::from_secs(5), ctx.jmap.store().health()).await {
        Ok(Ok(h)) => match h.free_bytes {
            Some(free) if free < ctx.config.ready_min_free_bytes => {
                unavailable(format!("disk space low: {} MiB free\n", free >> 20))
            }
            _ => (StatusCode::OK, "ready\n").into_response(),
        },
        Ok(Err(e)) => unavailable(format!("store not writable: {e}\n")),
        Err(_) => unavailable("store did not answer within 5 s\n".into()),
    }
}

/// Prometheus text exposition (version 0.0.4) for loopback peers, or for
/// anyone with the configured `metrics_token`. Queue gauges are read at
/// scrape time.
async fn metrics(State(ctx): State<Arc<HttpCtx>>, Extension(peer): Extension<Peer>, headers: HeaderMap) -> Response {
    let Some(render) = ctx.config.metrics.clone() else {
        return not_found().await;
    };
    let token_ok = ctx.config.metrics_token.as_deref().is_some_and(|t| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            // Digests compared: no timing hint about the token's bytes.
            .is_some_and(|given| letterbox_directory::secret_digest(given) == letterbox_directory::secret_digest(t))
    });
    if !peer.info.peer.ip().to_canonical().is_loopback() && !token_ok {
        return (StatusCode::FORBIDDEN, "metrics are for loopback or the metrics token\n").into_response();
    }
    if let Ok(queue) = ctx.jmap.store().list_queue().await {
        let now = letterbox_store::unix_now();
        let oldest = queue.iter().map(|e| e.created).min().map_or(0, |c| (now - c).max(0));
        metrics::gauge!(letterbox_net::metrics::QUEUE_MESSAGES).set(queue.len() as f64);
        metrics::gauge!(letterbox_net::metrics::QUEUE_OLDEST).set(oldest as f64);
    }
    let body = tokio::task::spawn_blocking(move || (render.0)())
        .await
        .unwrap_or_default();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// RFC 8620 §2.2: the well-known URI redirects to the Session resource.
async fn well_known() -> Response {
    Redirect::temporary("/jmap/session").into_response()
}

pub(crate) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store")),
            ],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn problem(e: &RequestError) -> Response {
    match serde_json::to_vec(&e.to_problem()) {
        Ok(body) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn session(State(ctx): State<Arc<HttpCtx>>, Extension(peer): Extension<Peer>, headers: HeaderMap) -> Response {
    let caller = match authenticate(&ctx, &headers, &peer).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let base = ctx.config.base_url.clone().or_else(|| request_base(&headers, &peer));
    json_response(StatusCode::OK, &ctx.jmap.session(&caller, base.as_deref()).await)
}

/// `scheme://host[:port]` of the request, from its connection and `Host`
/// header, when that header is a plain host name or address with a port.
pub(crate) fn request_base(headers: &HeaderMap, peer: &Peer) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let ok = !host.is_empty()
        && host.len() <= 260
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    ok.then(|| format!("{}://{host}", if peer.tls { "https" } else { "http" }))
}

/// Read a body of at most `limit` bytes; `None` when larger (or broken).
/// A declared length over the limit is refused before reading anything.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Option<Bytes> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return None;
    }
    axum::body::to_bytes(body, limit).await.ok()
}

/// A small JSON request body (account API, sign-in): the value, or the
/// answer refusing it (413 past 4 KiB, 400 naming what was `expected`).
pub(crate) async fn small_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    expected: &str,
) -> Result<T, Box<Response>> {
    let Some(bytes) = read_body(headers, body, 4096).await else {
        return Err(Box::new(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &serde_json::json!({ "error": "body too large" }),
        )));
    };
    serde_json::from_slice(&bytes).map_err(|_| {
        Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "error": format!("expected {expected}") }),
        ))
    })
}

/// Which per-account concurrency limit a request counts against.
enum Pool {
    Requests,
    Uploads,
}

/// Authenticate, then take a slot of the account's pool (RFC 8620 §2
/// maxConcurrentRequests / maxConcurrentUpload) or refuse with the limit.
async fn admit(
    ctx: &HttpCtx,
    headers: &HeaderMap,
    peer: &Peer,
    pool: Pool,
) -> Result<(letterbox_jmap::Caller, tokio::sync::OwnedSemaphorePermit), Box<Response>> {
    let caller = authenticate(ctx, headers, peer).await.map_err(Box::new)?;
    let limits = &ctx.jmap.config().limits;
    let (permit, limit) = match pool {
        Pool::Requests => (
            ctx.limits
                .request(caller.account, limits.max_concurrent_requests as usize),
            "maxConcurrentRequests",
        ),
        Pool::Uploads => (
            ctx.limits.upload(caller.account, limits.max_concurrent_upload as usize),
            "maxConcurrentUpload",
        ),
    };
    match permit {
        Some(p) => Ok((caller, p)),
        None => Err(Box::new(problem(&RequestError::Limit { limit }))),
    }
}

async fn api(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (caller, _permit) = match admit(&ctx, &headers, &peer, Pool::Requests).await {
        Ok(admitted) => admitted,
        Err(r) => return *r,
    };
    let limits = &ctx.jmap.config().limits;
    let work = async {
        let Some(bytes) = read_body(&headers, body, limits.max_size_request as usize).await else {
            return problem(&RequestError::Limit {
                limit: "maxSizeRequest",
            });
        };
        match ctx.jmap.execute(&caller, &bytes).await {
            Ok(resp) => json_response(StatusCode::OK, &resp),
            Err(e) => problem(&e),
        }
    };
    match tokio::time::timeout(ctx.config.request_timeout, work).await {
        Ok(r) => r,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "request took too long").into_response(),
    }
}

async fn upload(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (caller, _permit) = match admit(&ctx, &headers, &peer, Pool::Uploads).await {
        Ok(admitted) => admitted,
        Err(r) => return *r,
    };
    let limits = &ctx.jmap.config().limits;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let Some(bytes) = read_body(&headers, body, limits.max_size_upload as usize).await else {
        return problem(&RequestError::Limit { limit: "maxSizeUpload" });
    };
    match ctx.jmap.upload(&caller, &account, &content_type, bytes.to_vec()).await {
        Ok(v) => json_response(StatusCode::CREATED, &v),
        Err(UploadError::AccountNotFound) => (StatusCode::NOT_FOUND, "account not found").into_response(),
        Err(UploadError::TooLarge) => problem(&RequestError::Limit { limit: "maxSizeUpload" }),
        Err(UploadError::OverQuota) => json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &serde_json::json!({
                "type": "urn:ietf:params:jmap:error:overQuota",
                "status": 413,
                "detail": "the account's pending uploads are at their limit; use or let them expire first",
            }),
        ),
        Err(UploadError::Store) => (StatusCode::INTERNAL_SERVER_ERROR, "storage error").into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct DownloadQuery {
    accept: Option<String>,
}

/// A media type safe to put in a header: `type/subtype` of token characters.
fn safe_type(t: &str) -> Option<&str> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let (a, b) = t.split_once('/')?;
    (ok(a) && ok(b)).then_some(t)
}

/// RFC 6266 §4.3 filename parameter (quoted ASCII plus RFC 8187 UTF-8).
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn download(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    Path((account, blob, name)): Path<(String, String, String)>,
    Query(q): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    let caller = match authenticate(&ctx, &headers, &peer).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(d) = ctx.jmap.download(&caller, &account, &blob).await else {
        return (StatusCode::NOT_FOUND, "blob not found").into_response();
    };
    let ctype = q
        .accept
        .as_deref()
        .and_then(safe_type)
        .map(str::to_string)
        .or(d.content_type.filter(|t| safe_type(t).is_some()))
        .unwrap_or_else(|| "application/octet-stream".into());
    let len = d.data.len() as u64;
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    let mut resp = match byte_range(&headers, len) {
        Ok(None) => (StatusCode::OK, d.data).into_response(),
        Ok(Some((first, last))) => {
            let mut data = d.data;
            data.truncate(last as usize + 1);
            data.drain(..first as usize);
            let mut r = (StatusCode::PARTIAL_CONTENT, data).into_response();
            set(
                r.headers_mut(),
                header::CONTENT_RANGE,
                &format!("bytes {first}-{last}/{len}"),
            );
            r
        }
        Err(()) => {
            let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, "range past the end of the blob\n").into_response();
            set(r.headers_mut(), header::CONTENT_RANGE, &format!("bytes */{len}"));
            return r;
        }
    };
    let h = resp.headers_mut();
    set(h, header::ACCEPT_RANGES, "bytes");
    set(h, header::CONTENT_TYPE, &ctype);
    set(h, header::CONTENT_DISPOSITION, &disposition(&name));
    // RFC 8620 §6.2: a blob's content never changes.
    set(h, header::CACHE_CONTROL, "private, immutable, max-age=31536000");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox");
    resp
}

/// RFC 9110 §14.1.2/§14.2: a single `bytes=` range of a `len`-byte body,
/// as inclusive (first, last). `Ok(None)`: serve it all (no Range, another
/// unit, or several ranges, which a server may ignore); `Err`: 416.
fn byte_range(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    let (first, last) = match (a.trim().is_empty(), num(a), num(b)) {
        // Suffix: the last N bytes.
        (true, _, Some(n)) if n > 0 => (len.saturating_sub(n), len.saturating_sub(1)),
        (true, _, _) => return Err(()),
        (false, Some(f), None) if b.trim().is_empty() => (f, len.saturating_sub(1)),
        (false, Some(f), Some(l)) if l >= f => (f, l.min(len.saturating_sub(1))),
        _ => return Ok(None),
    };
    if first >= len {
        return Err(());
    }
    Ok(Some((first, last)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(byte_range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(byte_range(&h("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(byte_range(&h("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(byte_range(&h("bytes=-4"), 10), Ok(Some((6, 9))));
        assert_eq!(byte_range(&h("bytes=-40"), 10), Ok(Some((0, 9))));
        assert_eq!(byte_range(&h("bytes=8-100"), 10), Ok(Some((8, 9))));
        assert_eq!(byte_range(&h("bytes=10-"), 10), Err(()));
        assert_eq!(byte_range(&h("bytes=-0"), 10), Err(()));
        assert_eq!(byte_range(&h("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(byte_range(&h("bytes=5-2"), 10), Ok(None));
        assert_eq!(byte_range(&h("items=0-1"), 10), Ok(None));
        assert_eq!(byte_range(&h("bytes=0-0"), 0), Err(()));
    }

    #[test]
    fn download_headers_are_safe() {
        assert_eq!(safe_type("image/png"), Some("image/png"));
        assert_eq!(safe_type("text/html\r\nX: y"), None);
        assert_eq!(safe_type("nope"), None);
        let d = disposition("résumé \"final\".pdf");
        assert!(d.starts_with("attachment; filename=\"r_sum_ _final_.pdf\""), "{d}");
        assert!(d.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"), "{d}");
    }
}
