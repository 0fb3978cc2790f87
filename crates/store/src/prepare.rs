//! Message preparation, the same for every backend: wire form, hash,
//! analysis and threading keys are computed here on a blocking thread,
//! before a backend's write lock is taken.

use crate::thread::ThreadKeys;
use crate::{NewMessage, Result, StoreError};
use letterbox_mail::{MessageInfo, ANALYSIS_VERSION};
use sha2::{Digest, Sha256};

/// A message ready to be written.
pub struct PreparedBody {
    /// Hex SHA-256 of `raw`: the blob's content address.
    pub hash: String,
    /// The bytes to store (IMAP wire form).
    pub raw: Vec<u8>,
    /// Serialised [`MessageInfo`].
    pub info_json: String,
    /// The analyser version `info_json` was made by.
    pub info_version: u32,
    /// What threading needs.
    pub thread: ThreadKeys,
    /// What the full-text index holds.
    pub text: SearchDoc,
    /// Date: header as unix seconds.
    pub sent_at: Option<i64>,
    /// [`letterbox_mail::sort::SortKeys`], encoded.
    pub sort_keys: String,
    /// Initial flags, normalised.
    pub flags: Vec<String>,
    /// INTERNALDATE (unix seconds).
    pub internal_date: i64,
}

/// The decoded text of a message, by index column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchDoc {
    /// Decoded Subject.
    pub subject: String,
    /// Decoded From.
    pub from: String,
    /// Decoded To.
    pub to: String,
    /// Decoded Cc.
    pub cc: String,
    /// Decoded Bcc.
    pub bcc: String,
    /// The header block as written (lossy UTF-8), for IMAP TEXT.
    pub headers: String,
    /// Decoded body text.
    pub body: String,
    /// Attachment file names.
    pub attachments: String,
}

/// Most header text indexed per message.
const MAX_HEADER_TEXT: usize = 8 << 10;

impl SearchDoc {
    /// Everything searchable of one message.
    pub fn of(raw: &[u8], info: &MessageInfo, text: letterbox_mail::SearchText) -> SearchDoc {
        let head_end = info.root.body_start.min(raw.len()).min(MAX_HEADER_TEXT);
        SearchDoc {
            subject: info.subject.clone(),
            from: info.from.clone(),
            to: info.to.clone(),
            cc: info.cc.clone(),
            bcc: info.bcc.clone(),
            headers: String::from_utf8_lossy(&raw[..head_end]).into_owned(),
            body: text.body,
            attachments: text.attachments,
        }
    }
}

/// The stored form of an analysis.
pub fn info_json(info: &MessageInfo) -> String {
    // Serialising a plain struct of strings and numbers cannot fail.
    serde_json::to_string(info).unwrap_or_default()
}

/// Prepare synchronously (CPU work: call from a blocking thread).
pub fn prepare(message: NewMessage) -> PreparedBody {
    // Stored bytes are IMAP wire form (CRLF line ends): sizes and section
    // offsets are computed on exactly what clients will get.
    let raw = if has_bare_lf(&message.raw) {
        letterbox_mail::to_wire(&message.raw)
    } else {
        message.raw
    };
    let hash = hex::encode(Sha256::digest(&raw));
    let (info, text) = letterbox_mail::analyze_with_text(&raw);
    PreparedBody {
        text: SearchDoc::of(&raw, &info, text),
        hash,
        info_json: info_json(&info),
        info_version: ANALYSIS_VERSION,
        thread: ThreadKeys::of(&info),
        sent_at: info.date,
        sort_keys: letterbox_mail::sort::sort_keys(&raw).encode(),
        raw,
        flags: crate::normalize_flags(&message.flags),
        internal_date: message.internal_date,
    }
}

/// [`prepare`] on the blocking pool.
pub async fn prepare_async(message: NewMessage) -> Result<PreparedBody> {
    tokio::task::spawn_blocking(move || prepare(message))
        .await
        .map_err(|e| StoreError::Backend(format!("message analysis failed: {e}")))
}

fn has_bare_lf(raw: &[u8]) -> bool {
    raw.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || raw[i - 1] != b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_becomes_crlf() {
        let p = prepare(NewMessage {
            raw: b"Subject: s\n\nbody\n".to_vec(),
            flags: vec!["\\seen".into()],
            internal_date: 1,
        });
        assert_eq!(p.raw, b"Subject: s\r\n\r\nbody\r\n");
        assert_eq!(p.flags, vec!["\\Seen"]);
    }
}
