//! JMAP wire format (RFC 8620 core, RFC 8621 mail): the request and
//! response envelopes, result references, errors, wire ids and the Session
//! object. Pure data and functions: no I/O, no store, no async.
//!
//! Method arguments stay `serde_json::Value` here; each method in the
//! `letterbox-jmap` crate deserialises the arguments it defines, so an
//! unknown or mistyped argument becomes that method's `invalidArguments`.

pub mod error;
pub mod id;
pub mod reference;
pub mod request;
pub mod session;

pub use error::{MethodError, MethodErrorType, RequestError, SetError, SetErrorType};
pub use id::{Id, IdKind};
pub use reference::{evaluate_pointer, resolve_references};
pub use request::{Invocation, Request, Response};

/// Capability URIs (RFC 8620 §2, RFC 8621 §1.3.1–1.3.2, RFC 9007 §1.2).
pub mod capability {
    pub const CORE: &str = "urn:ietf:params:jmap:core";
    pub const MAIL: &str = "urn:ietf:params:jmap:mail";
    pub const SUBMISSION: &str = "urn:ietf:params:jmap:submission";
    pub const MDN: &str = "urn:ietf:params:jmap:mdn";
    pub const VACATION: &str = "urn:ietf:params:jmap:vacationresponse";
    pub const WEBSOCKET: &str = "urn:ietf:params:jmap:websocket";
    pub const WEBPUSH_VAPID: &str = "urn:ietf:params:jmap:webpush-vapid";
}
