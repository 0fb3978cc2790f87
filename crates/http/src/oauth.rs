//! The OAuth 2.0 authorization server inside Letterbox: authorization code
//! grant (RFC 6749 §4.1) for public clients with mandatory PKCE S256
//! (RFC 7636), rotating refresh tokens (RFC 6749 §6, replay revokes the
//! grant as §10.4 suggests), revocation (RFC 7009), metadata (RFC 8414 §2)
//! and the `iss` response parameter (RFC 9207). RFCs 6749, 7009, 7636,
//! 8414 and 9207 are not in the shared RFC set: this follows them from
//! memory, section numbers as published.
//!
//! The login page is the only HTML here: no script, a strict CSP, no
//! framing, a double-submit CSRF token, and the password goes through the
//! shared `Authenticator` (same throttling as IMAP and SMTP). Tokens are
//! opaque random strings; the store keeps their SHA-256 only, so they work
//! on every node and for IMAP/SMTP/POP3 SASL OAUTHBEARER and XOAUTH2.

use crate::conn::Peer;
use crate::routes::{json_response, read_body, request_base};
use crate::webmail::cookie;
use crate::HttpCtx;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use letterbox_directory::{generate_token, pkce_s256, secret_digest};
use letterbox_store::{Exchange, NewToken, TokenKind, TokenRecord};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Access tokens live an hour (RFC 6749 §4.2.2 `expires_in`).
pub const ACCESS_TTL_SECS: i64 = 3600;
/// Refresh tokens live 30 days from their last use.
pub const REFRESH_TTL_SECS: i64 = 30 * 24 * 3600;
/// Authorization codes live two minutes (RFC 6749 §4.1.2: "10 minutes
/// maximum lifetime is RECOMMENDED").
pub const CODE_TTL_SECS: i64 = 120;
/// Largest form body accepted by these endpoints.
const MAX_FORM: usize = 16 * 1024;
/// Longest client id, state or scope accepted.
const MAX_PARAM: usize = 1000;
const CSRF_COOKIE: &str = "lbx_oauth_csrf";

use letterbox_store::unix_now as now;

fn issuer(ctx: &HttpCtx, headers: &HeaderMap, peer: &Peer) -> String {
    ctx.config
        .base_url
        .clone()
        .or_else(|| request_base(headers, peer))
        .unwrap_or_else(|| ctx.config.https_base.clone())
        .trim_end_matches('/')
        .to_string()
}

/// RFC 8414 §2 / §3: `/.well-known/oauth-authorization-server`.
pub async fn metadata(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let iss = issuer(&ctx, &headers, &peer);
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/oauth/authorize"),
            "token_endpoint": format!("{iss}/oauth/token"),
            "revocation_endpoint": format!("{iss}/oauth/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["mail", "offline_access"],
            "authorization_response_iss_parameter_supported": true,
        }),
    )
}

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
#[derive(Debug, Clone, Default)]
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    scope: String,
    code_challenge: String,
}

/// Why a request cannot proceed: shown on our page when the redirect URI
/// is not trustworthy (§4.1.2.1 forbids redirecting then), else sent back
/// to the client.
enum Refusal {
    Page(&'static str),
    Redirect(&'static str, &'static str),
}

fn printable(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_PARAM && !s.chars().any(char::is_control)
}

/// Redirect URIs we deliver codes to (RFC 8252 §7 for native apps): https
/// anywhere, http only to loopback, or a private-use scheme; never a
/// fragment, nor a scheme a browser would run.
fn valid_redirect(uri: &str) -> Option<url::Url> {
    let u = url::Url::parse(uri).ok()?;
    if u.fragment().is_some() || uri.len() > 2000 {
        return None;
    }
    let ok = match u.scheme() {
        "https" => u.host().is_some(),
        "http" => matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")),
        "javascript" | "data" | "file" | "blob" | "about" | "vbscript" | "ftp" | "ws" | "wss" => false,
        _ => true,
    };
    ok.then_some(u)
}

impl AuthRequest {
    fn parse(params: &HashMap<String, String>) -> Result<AuthRequest, Refusal> {
        let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let client_id = get("client_id");
        if !printable(client_id) {
            return Err(Refusal::Page("The application did not say who it is (client_id)."));
        }
        let redirect_uri = get("redirect_uri");
        if valid_redirect(redirect_uri).is_none() {
            return Err(Refusal::Page(
                "The application asked to be sent to an address that is not allowed (redirect_uri).",
            ));
        }
        let req = AuthRequest {
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            state: params.get("state").filter(|s| printable(s)).cloned(),
            scope: params
                .get("scope")
                .filter(|s| printable(s))
                .cloned()
                .unwrap_or_else(|| "mail".into()),
            code_challenge: get("code_challenge").to_string(),
        };
        if get("response_type") != "code" {
            return Err(Refusal::Redirect(
                "unsupported_response_type",
                "only response_type=code",
            ));
        }
        // RFC 7636 §4.2: 43 to 128 unreserved characters.
        let challenge_ok = (43..=128).contains(&req.code_challenge.len())
            && req
                .code_challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !challenge_ok || get("code_challenge_method") != "S256" {
            return Err(Refusal::Redirect(
                "invalid_request",
                "PKCE is required: code_challenge with code_challenge_method=S256",
            ));
        }
        Ok(req)
    }

    /// The client's redirect URI with `pairs` added (and state, iss).
    fn redirect(&self, iss: &str, pairs: &[(&str, &str)]) -> Response {
        let Some(mut u) = valid_redirect(&self.redirect_uri) else {
            return page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The redirect address is not allowed.",
                None,
            );
        };
        {
            let mut q = u.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", iss);
        }
        let mut resp = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(u.as_str()) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        no_store(&mut resp);
        resp
    }
}

fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

use letterbox_mail::escape_html as escape;

/// The strict policy of our pages: nothing but our stylesheet, no
/// framing, forms only to us and (after the redirect) the client.
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One HTML page: title, a message, and an optional body (already escaped).
fn page(status: StatusCode, title: &str, message: &str, body: Option<String>) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><link rel=\"stylesheet\" href=\"/oauth/style.css\"></head>\
         <body><main><h1>{t}</h1><p class=\"message\">{m}</p>{b}</main></body></html>\n",
        t = escape(title),
        m = escape(message),
        b = body.unwrap_or_default(),
    );
    let mut resp = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    no_store(&mut resp);
    resp
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
         main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;\
         box-shadow:0 1px 4px rgba(0,0,0,.15)}h1{font-size:1.4rem;margin-top:0}\
         label{display:block;margin:.8rem 0 .2rem}input[type=email],input[type=password]\
         {width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}\
         .buttons{margin-top:1.2rem;display:flex;gap:.6rem}button{padding:.5rem 1rem;font-size:1rem}\
         .error{color:#b00020}.client{font-weight:600}",
    )
        .into_response()
}

/// The login and consent form for `req`.
fn login_form(req: &AuthRequest, csrf: &str, error: Option<&str>, status: StatusCode, secure: bool) -> Response {
    let host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| req.redirect_uri.clone());
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        )
    };
    let mut body = String::new();
    if let Some(e) = error {
        body.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)));
    }
    body.push_str(&format!(
        "<p><span class=\"client\">{}</span> (returning to {}) asks to read and send your mail.</p>\
         <form method=\"post\" action=\"/oauth/authorize\">",
        escape(&req.client_id),
        escape(&host)
    ));
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", req.client_id.as_str()),
        ("redirect_uri", req.redirect_uri.as_str()),
        ("scope", req.scope.as_str()),
        ("code_challenge", req.code_challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("csrf", csrf),
    ] {
        body.push_str(&hidden(k, v));
    }
    if let Some(s) = &req.state {
        body.push_str(&hidden("state", s));
    }
    body.push_str(
        "<label for=\"username\">Email address</label>\
         <input type=\"email\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <div class=\"buttons\"><button type=\"submit\" name=\"action\" value=\"allow\">Sign in and allow</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\" formnovalidate>Deny</button></div></form>",
    );
    let mut resp = page(
        status,
        "Sign in to Letterbox",
        "An application wants access to your mailbox.",
        Some(body),
    );
    let cookie = format!(
        "{CSRF_COOKIE}={csrf}; Path=/oauth; HttpOnly; SameSite=Strict; Max-Age=1800{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn query_params(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn form_params(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

fn refusal(
    req: Result<AuthRequest, Refusal>,
    iss: &str,
    params: &HashMap<String, String>,
) -> Result<AuthRequest, Box<Response>> {
    match req {
        Ok(r) => Ok(r),
        Err(Refusal::Page(why)) => Err(Box::new(page(StatusCode::BAD_REQUEST, "Cannot sign in", why, None))),
        Err(Refusal::Redirect(error, description)) => {
            // Redirect URI already checked: tell the client.
            let back = AuthRequest {
                redirect_uri: params.get("redirect_uri").cloned().unwrap_or_default(),
                state: params.get("state").filter(|s| printable(s)).cloned(),
                ..AuthRequest::default()
            };
            Err(Box::new(
                back.redirect(iss, &[("error", error), ("error_description", description)]),
            ))
        }
    }
}

/// RFC 6749 §4.1.1: show the login and consent page.
pub async fn authorize_page(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if !peer.tls && !ctx.config.api_on_plain {
        return (StatusCode::FORBIDDEN, "use HTTPS").into_response();
    }
    let iss = issuer(&ctx, &headers, &peer);
    let params = query_params(&uri);
    let req = match refusal(AuthRequest::parse(&params), &iss, &params) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let csrf = generate_token("");
    login_form(&req, &csrf, None, StatusCode::OK, peer.tls)
}

/// The form's answer: check CSRF and the password, then redirect back with
/// a code (RFC 6749 §4.1.2) or `access_denied`.
pub async fn authorize_submit(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !peer.tls && !ctx.config.api_on_plain {
        return (StatusCode::FORBIDDEN, "use HTTPS").into_response();
    }
    let Some(bytes) = read_body(&headers, body, MAX_FORM).await else {
        return page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Cannot sign in",
            "The form was too large.",
            None,
        );
    };
    let params = form_params(&bytes);
    let iss = issuer(&ctx, &headers, &peer);
    let csrf = params.get("csrf").cloned().unwrap_or_default();
    // Double submit: a cross-site form cannot read or set our cookie
    // (SameSite=Strict keeps it off cross-site posts altogether).
    if csrf.len() < 32 || cookie(&headers, CSRF_COOKIE).as_deref() != Some(csrf.as_str()) {
        return page(
            StatusCode::FORBIDDEN,
            "Cannot sign in",
            "The sign-in form expired or came from elsewhere. Go back to the application and start again.",
            None,
        );
    }
    let req = match refusal(AuthRequest::parse(&params), &iss, &params) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if params.get("action").map(String::as_str) == Some("deny") {
        return req.redirect(
            &iss,
            &[("error", "access_denied"), ("error_description", "the user said no")],
        );
    }
    let user = params.get("username").map(String::as_str).unwrap_or("");
    let password = params.get("password").map(String::as_str).unwrap_or("");
    let authed = match ctx.auth.authenticate(user, password, peer.info.peer.ip()).await {
        Ok(a) => a,
        Err(e) => {
            let (status, text) = crate::auth::signin_refusal(&e);
            let fresh = generate_token("");
            return login_form(&req, &fresh, Some(text), status, peer.tls);
        }
    };
    let code = generate_token("lbx_code_");
    let payload = json!({ "redirect_uri": req.redirect_uri, "challenge": req.code_challenge }).to_string();
    let token = NewToken {
        digest: secret_digest(&code),
        kind: TokenKind::Code,
        expires: now() + CODE_TTL_SECS,
        payload,
    };
    match ctx
        .jmap
        .store()
        .create_grant(authed.account_id, &req.client_id, &req.scope, vec![token])
        .await
    {
        Ok(_) => {
            tracing::info!(account = %authed.address, client = %req.client_id, "OAuth authorization granted");
            req.redirect(&iss, &[("code", &code)])
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot store an authorization code");
            req.redirect(&iss, &[("error", "temporarily_unavailable")])
        }
    }
}

/// RFC 6749 §5.1.
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
    scope: String,
}

/// RFC 6749 §5.2.
fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = json_response(status, &json!({ "error": error, "error_description": description }));
    no_store(&mut resp);
    resp
}

#[derive(Deserialize)]
struct CodePayload {
    redirect_uri: String,
    challenge: String,
}

/// Fresh access and refresh tokens, as stored and as returned.
fn issue(scope: &str) -> (Vec<NewToken>, TokenResponse) {
    let access = generate_token("lbx_at_");
    let refresh = generate_token("lbx_rt_");
    let t = now();
    let stored = vec![
        NewToken {
            digest: secret_digest(&access),
            kind: TokenKind::Access,
            expires: t + ACCESS_TTL_SECS,
            payload: String::new(),
        },
        NewToken {
            digest: secret_digest(&refresh),
            kind: TokenKind::Refresh,
            expires: t + REFRESH_TTL_SECS,
            payload: String::new(),
        },
    ];
    let resp = TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECS,
        refresh_token: refresh,
        scope: scope.to_string(),
    };
    (stored, resp)
}

/// Checks a presented code or refresh token against the request, before
/// it is spent. `Err` is the §5.2 error to answer.
fn check_grant(record: &TokenRecord, params: &HashMap<String, String>) -> Result<(), &'static str> {
    if let Some(client) = params.get("client_id") {
        if client != &record.grant.client_id {
            return Err("the token was issued to another client");
        }
    }
    if record.kind != TokenKind::Code {
        return Ok(());
    }
    if params.get("client_id").is_none() {
        return Err("client_id is required");
    }
    let Ok(p) = serde_json::from_str::<CodePayload>(&record.payload) else {
        return Err("the code is damaged");
    };
    // RFC 6749 §4.1.3: the same redirect_uri as in the request.
    if params.get("redirect_uri") != Some(&p.redirect_uri) {
        return Err("redirect_uri does not match the authorization request");
    }
    // RFC 7636 §4.6.
    let verifier = params.get("code_verifier").map(String::as_str).unwrap_or("");
    if !(43..=128).contains(&verifier.len()) || pkce_s256(verifier) != p.challenge {
        return Err("code_verifier does not match the code_challenge");
    }
    Ok(())
}

/// The form body of a token or revocation request, over TLS (RFC 6749
/// §3.2 requires it; `--dev` allows loopback HTTP), or the §5.2 error.
async fn endpoint_form(
    ctx: &HttpCtx,
    peer: &Peer,
    headers: &HeaderMap,
    body: Body,
) -> Result<HashMap<String, String>, Box<Response>> {
    if !peer.tls && !ctx.config.api_on_plain {
        return Err(Box::new(token_error(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "use HTTPS",
        )));
    }
    match read_body(headers, body, MAX_FORM).await {
        Some(bytes) => Ok(form_params(&bytes)),
        None => Err(Box::new(token_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "body too large",
        ))),
    }
}

/// RFC 6749 §4.1.3 and §6: the token endpoint.
pub async fn token(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = match endpoint_form(&ctx, &peer, &headers, body).await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (kind, secret) = match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => (TokenKind::Code, params.get("code")),
        Some("refresh_token") => (TokenKind::Refresh, params.get("refresh_token")),
        Some(_) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "authorization_code or refresh_token",
            )
        }
        None => return token_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is required"),
    };
    let Some(secret) = secret.filter(|s| !s.is_empty() && s.len() <= MAX_PARAM) else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the code or refresh_token is missing",
        );
    };
    let store = ctx.jmap.store();
    let digest = secret_digest(secret);
    let record = match store.token(&digest).await {
        Ok(Some(r)) if r.kind == kind => r,
        Ok(_) => return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or expired grant"),
        Err(e) => {
            tracing::warn!(error = %e, "token lookup failed");
            return token_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again");
        }
    };
    if let Err(why) = check_grant(&record, &params) {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    }
    let (stored, resp) = issue(&record.grant.scope);
    match store.exchange_token(&digest, kind, stored).await {
        Ok(Exchange::Done(_)) => {
            let mut r = json_response(StatusCode::OK, &resp);
            no_store(&mut r);
            r
        }
        Ok(Exchange::Replayed) => {
            tracing::warn!(account = %record.address, client = %record.grant.client_id, "OAuth grant replayed: revoked");
            token_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "already used; the grant is revoked",
            )
        }
        Ok(Exchange::NotFound) => token_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or expired grant"),
        Err(e) => {
            tracing::warn!(error = %e, "token exchange failed");
            token_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again")
        }
    }
}

/// RFC 7009 §2: revoke the grant of an access or refresh token. Answers
/// 200 whether or not the token was known (§2.2).
pub async fn revoke(
    State(ctx): State<Arc<HttpCtx>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = match endpoint_form(&ctx, &peer, &headers, body).await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Some(token) = params.get("token").filter(|t| !t.is_empty() && t.len() <= MAX_PARAM) else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request", "token is required");
    };
    match ctx.jmap.store().revoke_token(&secret_digest(token)).await {
        Ok(_) => {
            let mut r = StatusCode::OK.into_response();
            no_store(&mut r);
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "token revocation failed");
            token_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn redirect_uris() {
        assert!(valid_redirect("https://app.example/cb").is_some());
        assert!(valid_redirect("http://127.0.0.1:5123/cb").is_some());
        assert!(valid_redirect("http://localhost/cb").is_some());
        assert!(valid_redirect("com.example.app:/oauth2redirect").is_some());
        assert!(valid_redirect("http://evil.example/cb").is_none());
        assert!(valid_redirect("javascript:alert(1)").is_none());
        assert!(valid_redirect("https://app.example/cb#frag").is_none());
        assert!(valid_redirect("not a url").is_none());
    }

    #[test]
    fn authorization_requests_need_pkce_s256() {
        let good = [
            ("response_type", "code"),
            ("client_id", "thunderbird"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "xyz"),
        ];
        let req = AuthRequest::parse(&params(&good)).ok().unwrap();
        assert_eq!(req.scope, "mail");
        assert_eq!(req.state.as_deref(), Some("xyz"));
        let mut plain = params(&good);
        plain.insert("code_challenge_method".into(), "plain".into());
        assert!(matches!(
            AuthRequest::parse(&plain),
            Err(Refusal::Redirect("invalid_request", _))
        ));
        let mut token = params(&good);
        token.insert("response_type".into(), "token".into());
        assert!(matches!(
            AuthRequest::parse(&token),
            Err(Refusal::Redirect("unsupported_response_type", _))
        ));
        let mut evil = params(&good);
        evil.insert("redirect_uri".into(), "http://evil.example/".into());
        assert!(matches!(AuthRequest::parse(&evil), Err(Refusal::Page(_))));
    }

    #[test]
    fn pages_escape_what_clients_send() {
        let req = AuthRequest {
            client_id: "<script>x</script>".into(),
            redirect_uri: "https://a.example/\"><b>".into(),
            state: Some("'\"".into()),
            scope: "mail".into(),
            code_challenge: CHALLENGE.into(),
        };
        let resp = login_form(&req, "c".repeat(40).as_str(), Some("<i>"), StatusCode::OK, true);
        let csp = resp
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert!(resp
            .headers()
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Secure"));
        assert_eq!(escape("<a href=\"x\">'&"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;");
    }
}
