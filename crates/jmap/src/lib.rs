//! JMAP (RFC 8620 core, RFC 8621 mail, RFC 8621 §7 submission) over the
//! store: the Session object, the method calls of one API request, uploads
//! and downloads. HTTP is the `letterbox-http` crate's; nothing here knows
//! about sockets.
//!
//! Each request runs its method calls in order (RFC 8620 §3.3); result
//! references are resolved against the responses so far, creation ids
//! (`#id`) against the objects created so far in this request.

mod args;
mod blob;
mod copy;
pub mod date;
mod email;
mod headers;
mod identity;
mod keywords;
mod mailbox;
mod mdn;
pub mod push;
mod submission;
pub use submission::run_releaser;
mod thread;
mod vacation;

pub use blob::{Download, UploadError};

use letterbox_jmap_proto::capability;
use letterbox_jmap_proto::session::{object, CoreLimits, Session, SessionAccount};
use letterbox_jmap_proto::{
    resolve_references, Id, IdKind, Invocation, MethodError, MethodErrorType, Request, RequestError, Response,
};
use letterbox_store::{AccountId, SharedStore};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// DKIM signing of submitted mail (the server adapts its signer).
pub trait MessageSigner: Send + Sync {
    /// Header fields to prepend when signing `message` as `domain`.
    fn sign(&self, domain: &str, message: &[u8]) -> Result<Option<String>, String>;
}

/// Settings of the JMAP API.
#[derive(Clone)]
pub struct JmapConfig {
    /// Where clients reach the API, e.g. `https://mail.example.com`.
    pub base_url: String,
    /// This server's name (Message-ID, Received).
    pub hostname: String,
    pub limits: CoreLimits,
    /// Longest Email body value returned when a client asks for no limit.
    pub max_body_value_bytes: usize,
    /// The VAPID public key (URL-safe base64 of the P-256 point), when push is on.
    pub vapid_public_key: Option<String>,
}

impl JmapConfig {
    pub fn new(base_url: impl Into<String>, hostname: impl Into<String>) -> Self {
        JmapConfig {
            base_url: base_url.into(),
            hostname: hostname.into(),
            limits: CoreLimits::default(),
            max_body_value_bytes: 4 << 20,
            vapid_public_key: None,
        }
    }
}

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: AccountId,
    pub address: String,
}

impl Caller {
    /// The account's wire id (RFC 8620 §1.6.2).
    pub fn account_id(&self) -> String {
        Id::new(IdKind::Account, self.account).to_string()
    }
}

/// The JMAP service.
pub struct Jmap {
    pub(crate) store: SharedStore,
    /// Local copies of sent mail are delivered through the pipeline.
    pub(crate) inbound: letterbox_inbound::Inbound,
    pub(crate) config: JmapConfig,
    pub(crate) signer: Option<Arc<dyn MessageSigner>>,
    pub(crate) after_delivery: Option<Arc<dyn letterbox_store::AfterDelivery>>,
    pub(crate) pusher: Option<Arc<dyn push::Pusher>>,
    /// Wakes [`submission::run_releaser`] when a held submission is created.
    pub(crate) releaser_wake: Arc<tokio::sync::Notify>,
}

/// Capabilities this server implements, each with its Session value.
const CAPABILITIES: &[&str] = &[
    capability::CORE,
    capability::MAIL,
    capability::SUBMISSION,
    capability::VACATION,
    capability::MDN,
    capability::WEBSOCKET,
];

/// State of one request while its calls run.
pub(crate) struct Call<'a> {
    pub jmap: &'a Jmap,
    pub caller: &'a Caller,
    /// Creation id → id of the object created in this request (RFC 8620 §5.3).
    pub created: &'a mut HashMap<String, String>,
}

impl Call<'_> {
    pub fn store(&self) -> &SharedStore {
        &self.jmap.store
    }

    /// An id argument that may be a creation reference (`#cid`, §5.3).
    pub fn resolve_id(&self, raw: &str) -> Option<String> {
        match raw.strip_prefix('#') {
            Some(cid) => self.created.get(cid).cloned(),
            None => Some(raw.to_string()),
        }
    }
}

/// What a method produces: usually one response, sometimes more (an
/// implicit `Email/set` after `EmailSubmission/set`, RFC 8621 §7.5).
pub(crate) type MethodResult = Result<Vec<(String, Map<String, Value>)>, MethodError>;

pub(crate) fn one(name: &str, args: Map<String, Value>) -> MethodResult {
    Ok(vec![(name.to_string(), args)])
}

impl Jmap {
    pub fn new(
        store: SharedStore,
        inbound: letterbox_inbound::Inbound,
        config: JmapConfig,
        signer: Option<Arc<dyn MessageSigner>>,
    ) -> Self {
        Jmap {
            store,
            inbound,
            config,
            signer,
            after_delivery: None,
            pusher: None,
            releaser_wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Who sends PushSubscription messages (RFC 8620 §7.2); `public_key`
    /// is the VAPID key (RFC 8292) clients subscribe with.
    pub fn with_pusher(mut self, pusher: Arc<dyn push::Pusher>, public_key: String) -> Self {
        self.pusher = Some(pusher);
        self.config.vapid_public_key = Some(public_key);
        self
    }

    /// Tell `hook` of submitted mail stored for local accounts (the
    /// vacation responder answers colleagues too).
    pub fn with_after_delivery(mut self, hook: Arc<dyn letterbox_store::AfterDelivery>) -> Self {
        self.after_delivery = Some(hook);
        self
    }

    pub fn config(&self) -> &JmapConfig {
        &self.config
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// RFC 8620 §2: the Session resource for `caller`, with URLs under
    /// `base` (e.g. `https://mail.example.com`), or the configured base URL.
    pub async fn session(&self, caller: &Caller, base: Option<&str>) -> Session {
        let l = &self.config.limits;
        let base = base.unwrap_or(&self.config.base_url).trim_end_matches('/');
        let mut capabilities = BTreeMap::new();
        capabilities.insert(capability::CORE.to_string(), Value::Object(object(l)));
        capabilities.insert(capability::MAIL.to_string(), json!({}));
        capabilities.insert(capability::SUBMISSION.to_string(), json!({}));
        capabilities.insert(capability::VACATION.to_string(), json!({}));
        capabilities.insert(capability::MDN.to_string(), json!({}));
        // RFC 8887 §3: the same host and port, ws(s) for http(s).
        let ws = match base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}/jmap/ws"),
            None => format!("ws://{}/jmap/ws", base.trim_start_matches("http://")),
        };
        capabilities.insert(
            capability::WEBSOCKET.to_string(),
            json!({"url": ws, "supportsPush": true}),
        );
        if let Some(key) = &self.config.vapid_public_key {
            // RFC 9749: the key browsers' pushManager.subscribe() needs.
            capabilities.insert(
                capability::WEBPUSH_VAPID.to_string(),
                json!({"applicationServerKey": key}),
            );
        }
        let mut account_capabilities = BTreeMap::new();
        account_capabilities.insert(
            capability::MAIL.to_string(),
            json!({
                "maxMailboxesPerEmail": null,
                "maxMailboxDepth": mailbox::MAX_DEPTH,
                "maxSizeMailboxName": mailbox::MAX_NAME_BYTES,
                "maxSizeAttachmentsPerEmail": l.max_size_upload,
                "emailQuerySortOptions": ["receivedAt", "sentAt", "size"],
                "mayCreateTopLevelMailbox": true,
            }),
        );
        account_capabilities.insert(
            capability::SUBMISSION.to_string(),
            json!({
                "maxDelayedSend": letterbox_store::submission::MAX_HOLD_SECS,
                "submissionExtensions": {"FUTURERELEASE": [letterbox_store::submission::MAX_HOLD_SECS.to_string()]},
            }),
        );
        account_capabilities.insert(capability::VACATION.to_string(), json!({}));
        account_capabilities.insert(capability::MDN.to_string(), json!({}));
        let id = caller.account_id();
        let mut accounts = BTreeMap::new();
        accounts.insert(
            id.clone(),
            SessionAccount {
                name: caller.address.clone(),
                is_personal: true,
                is_read_only: false,
                account_capabilities,
            },
        );
        let mut primary = BTreeMap::new();
        primary.insert(capability::MAIL.to_string(), id.clone());
        primary.insert(capability::SUBMISSION.to_string(), id.clone());
        primary.insert(capability::VACATION.to_string(), id.clone());
        primary.insert(capability::MDN.to_string(), id);

        Session {
            capabilities,
            accounts,
            primary_accounts: primary,
            username: caller.address.clone(),
            api_url: format!("{base}/jmap/api"),
            download_url: format!("{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}"),
            upload_url: format!("{base}/jmap/upload/{{accountId}}"),
            event_source_url: format!(
                "{base}/jmap/eventsource?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"
            ),
            state: self.session_state(caller),
        }
    }

    /// The Session's state (§2): it changes when the Session would; ours
    /// changes only with the account's address or the server's limits.
    fn session_state(&self, caller: &Caller) -> String {
        let l = &self.config.limits;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in caller.address.bytes().chain(l.max_size_upload.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// RFC 8620 §3: run one API request (the body of a POST to the API URL).
    pub async fn execute(&self, caller: &Caller, body: &[u8]) -> Result<Response, RequestError> {
        if body.len() as u64 > self.config.limits.max_size_request {
            return Err(RequestError::Limit {
                limit: "maxSizeRequest",
            });
        }
        let value: Value = serde_json::from_slice(body).map_err(|_| RequestError::NotJson)?;
        let request: Request = serde_json::from_value(value).map_err(|e| RequestError::NotRequest(e.to_string()))?;
        // RFC 8620 §3.6.1 unknownCapability, except for other IETF JMAP
        // capabilities: widely used clients (the jmap-client crate) name every
        // one they know in each request. Their methods answer unknownMethod.
        if let Some(unknown) = request
            .using
            .iter()
            .find(|u| !CAPABILITIES.contains(&u.as_str()) && !u.starts_with("urn:ietf:params:jmap:"))
        {
            return Err(RequestError::UnknownCapability(unknown.clone()));
        }
        if request.method_calls.len() > self.config.limits.max_calls_in_request as usize {
            return Err(RequestError::Limit {
                limit: "maxCallsInRequest",
            });
        }
        let mut created: HashMap<String, String> =
            request.created_ids.clone().unwrap_or_default().into_iter().collect();
        let mut responses: Vec<Invocation> = Vec::new();
        for call in request.method_calls {
            let Invocation {
                name,
                mut arguments,
                call_id,
            } = call;
            let outcome = match resolve_references(&mut arguments, &responses) {
                Ok(()) => {
                    let mut ctx = Call {
                        jmap: self,
                        caller,
                        created: &mut created,
                    };
                    dispatch(&mut ctx, &name, &request.using, arguments).await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(results) => {
                    for (n, args) in results {
                        responses.push(Invocation::new(n, args, call_id.clone()));
                    }
                }
                Err(e) => {
                    tracing::debug!(method = %name, error = %e, "JMAP method error");
                    responses.push(Invocation::new("error", e.to_arguments(), call_id));
                }
            }
        }
        Ok(Response {
            method_responses: responses,
            created_ids: request
                .created_ids
                .map(|_| created.into_iter().collect::<BTreeMap<_, _>>()),
            session_state: self.session_state(caller),
        })
    }
}

/// Which capability a method needs in `using` (RFC 8620 §3.3: a method of a
/// capability the client did not ask for is unknown).
fn needs(name: &str) -> Option<&'static str> {
    let (kind, _) = name.split_once('/')?;
    Some(match kind {
        "Core" | "Blob" | "PushSubscription" => capability::CORE,
        "Mailbox" | "Thread" | "Email" | "SearchSnippet" => capability::MAIL,
        "Identity" | "EmailSubmission" => capability::SUBMISSION,
        "VacationResponse" => capability::VACATION,
        "MDN" => capability::MDN,
        _ => return None,
    })
}

async fn dispatch(ctx: &mut Call<'_>, name: &str, using: &[String], args: Map<String, Value>) -> MethodResult {
    let Some(cap) = needs(name) else {
        return Err(MethodError::new(MethodErrorType::UnknownMethod));
    };
    if !using.iter().any(|u| u == cap) {
        return Err(MethodError::with(
            MethodErrorType::UnknownMethod,
            format!("{name} needs {cap} in using"),
        ));
    }
    // §7.2: push subscriptions are the user's, not an account's.
    if name != "Core/echo" && !name.starts_with("PushSubscription/") {
        args::check_account(ctx.caller, &args)?;
    }
    match name {
        "Core/echo" => one(name, args),
        "Mailbox/get" => mailbox::get(ctx, args).await,
        "Mailbox/changes" => mailbox::changes(ctx, args).await,
        "Mailbox/query" => mailbox::query(ctx, args).await,
        "Mailbox/queryChanges" => mailbox::query_changes(ctx, args).await,
        "Email/queryChanges" => email::query_changes(ctx, args).await,
        "Mailbox/set" => mailbox::set(ctx, args).await,
        "Thread/get" => thread::get(ctx, args).await,
        "Thread/changes" => thread::changes(ctx, args).await,
        "Email/get" => email::get(ctx, args).await,
        "Email/changes" => email::changes(ctx, args).await,
        "Email/query" => email::query(ctx, args).await,
        "Email/set" => email::set(ctx, args).await,
        "Email/import" => email::import(ctx, args).await,
        "Email/copy" | "Blob/copy" => copy::copy(ctx, args).await,
        "Email/parse" => email::parse(ctx, args).await,
        "SearchSnippet/get" => email::snippet::get(ctx, args).await,
        "Identity/get" => identity::get(ctx, args).await,
        "Identity/changes" => identity::changes(ctx, args).await,
        "Identity/set" => identity::set(ctx, args).await,
        "EmailSubmission/get" => submission::get(ctx, args).await,
        "EmailSubmission/changes" => submission::changes(ctx, args).await,
        "EmailSubmission/query" => submission::query(ctx, args).await,
        "EmailSubmission/set" => submission::set(ctx, args).await,
        "VacationResponse/get" => vacation::get(ctx, args).await,
        "MDN/send" => mdn::send(ctx, args).await,
        "MDN/parse" => mdn::parse(ctx, args).await,
        "PushSubscription/get" => push::get(ctx, args).await,
        "PushSubscription/set" => push::set(ctx, args).await,
        "VacationResponse/set" => vacation::set(ctx, args).await,
        _ => Err(MethodError::new(MethodErrorType::UnknownMethod)),
    }
}
