//! JMAP errors at their three levels: the request (RFC 8620 §3.6.1, an
//! RFC 7807 problem document), a method call (§3.6.2) and one object of a
//! `/set` (§5.3).

use serde::Serialize;
use serde_json::{json, Map, Value};

/// RFC 8620 §3.6.1 request-level errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the request is not valid JSON")]
    NotJson,
    #[error("the request is not a valid JMAP request: {0}")]
    NotRequest(String),
    #[error("unknown capability {0}")]
    UnknownCapability(String),
    /// `limit` names the Session capability property exceeded.
    #[error("request exceeds {limit}")]
    Limit { limit: &'static str },
}

impl RequestError {
    /// The problem document body (`application/problem+json`), status 400.
    pub fn to_problem(&self) -> Value {
        let base = "urn:ietf:params:jmap:error:";
        let (kind, extra) = match self {
            RequestError::NotJson => ("notJSON", None),
            RequestError::NotRequest(_) => ("notRequest", None),
            RequestError::UnknownCapability(_) => ("unknownCapability", None),
            RequestError::Limit { limit } => ("limit", Some(*limit)),
        };
        let mut v = json!({
            "type": format!("{base}{kind}"),
            "status": 400,
            "detail": self.to_string(),
        });
        if let (Some(limit), Some(map)) = (extra, v.as_object_mut()) {
            map.insert("limit".into(), Value::String(limit.into()));
        }
        v
    }
}

/// RFC 8620 §3.6.2 (and RFC 8621 additions) method-level error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MethodErrorType {
    ServerUnavailable,
    ServerFail,
    ServerPartialFail,
    UnknownMethod,
    InvalidArguments,
    InvalidResultReference,
    Forbidden,
    AccountNotFound,
    AccountNotSupportedByMethod,
    AccountReadOnly,
    RequestTooLarge,
    StateMismatch,
    CannotCalculateChanges,
    AnchorNotFound,
    UnsupportedSort,
    UnsupportedFilter,
    TooManyChanges,
    FromAccountNotFound,
    FromAccountNotSupportedByMethod,
}

/// A method call's error response: `["error", {type, description}, id]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodError {
    pub kind: MethodErrorType,
    pub description: Option<String>,
}

impl MethodError {
    pub fn new(kind: MethodErrorType) -> Self {
        MethodError {
            kind,
            description: None,
        }
    }

    pub fn with(kind: MethodErrorType, description: impl Into<String>) -> Self {
        MethodError {
            kind,
            description: Some(description.into()),
        }
    }

    pub fn invalid_arguments(description: impl Into<String>) -> Self {
        Self::with(MethodErrorType::InvalidArguments, description)
    }

    pub fn server_fail(description: impl Into<String>) -> Self {
        Self::with(MethodErrorType::ServerFail, description)
    }

    pub fn to_arguments(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), serde_json::to_value(self.kind).unwrap_or(Value::Null));
        if let Some(d) = &self.description {
            m.insert("description".into(), Value::String(d.clone()));
        }
        m
    }
}

impl std::fmt::Display for MethodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.kind)?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// RFC 8620 §5.3, RFC 8621 §2.3, §4.6, §7.5 SetError types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SetErrorType {
    Forbidden,
    OverQuota,
    TooLarge,
    RateLimit,
    NotFound,
    InvalidPatch,
    WillDestroy,
    InvalidProperties,
    Singleton,
    AlreadyExists,
    MailboxHasChild,
    MailboxHasEmail,
    BlobNotFound,
    TooManyKeywords,
    TooManyMailboxes,
    InvalidEmail,
    TooManyRecipients,
    NoRecipients,
    InvalidRecipients,
    ForbiddenMailFrom,
    ForbiddenFrom,
    ForbiddenToSend,
    CannotUnsend,
    /// RFC 9007 §3.1: the email has `$mdnsent` already.
    MdnAlreadySent,
}

/// One object's failure in a `/set` or `/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetError {
    #[serde(rename = "type")]
    pub kind: SetErrorType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Vec<String>>,
    /// `blobNotFound` (RFC 8621 §4.6): the blob ids that were not found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_found: Option<Vec<String>>,
}

impl SetError {
    pub fn new(kind: SetErrorType, description: impl Into<String>) -> Self {
        SetError {
            kind,
            description: Some(description.into()),
            properties: None,
            not_found: None,
        }
    }

    pub fn not_found() -> Self {
        SetError {
            kind: SetErrorType::NotFound,
            description: None,
            properties: None,
            not_found: None,
        }
    }

    /// RFC 8621 §4.6 `blobNotFound`, naming the missing blob.
    pub fn blob_not_found(blob_id: &str) -> Self {
        SetError {
            kind: SetErrorType::BlobNotFound,
            description: None,
            properties: None,
            not_found: Some(vec![blob_id.to_string()]),
        }
    }

    /// `invalidProperties` naming the offending properties.
    pub fn invalid_properties(properties: &[&str], description: impl Into<String>) -> Self {
        SetError {
            kind: SetErrorType::InvalidProperties,
            description: Some(description.into()),
            properties: Some(properties.iter().map(|p| p.to_string()).collect()),
            not_found: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_have_the_rfc_shapes() {
        let p = RequestError::Limit {
            limit: "maxCallsInRequest",
        }
        .to_problem();
        assert_eq!(p["type"], "urn:ietf:params:jmap:error:limit");
        assert_eq!(p["limit"], "maxCallsInRequest");
        assert_eq!(p["status"], 400);
        let m = MethodError::new(MethodErrorType::CannotCalculateChanges).to_arguments();
        assert_eq!(Value::Object(m), json!({"type": "cannotCalculateChanges"}));
        let s = serde_json::to_value(SetError::invalid_properties(&["name"], "bad")).unwrap();
        assert_eq!(
            s,
            json!({"type": "invalidProperties", "description": "bad", "properties": ["name"]})
        );
    }
}
