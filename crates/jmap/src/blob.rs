//! RFC 8620 §6 binary data: upload, download, and reading a blob for
//! Email/import and attachments. A blob id names a whole stored message or
//! upload (`G<sha256>`) or one part of a message (`G<sha256>_<n>`, decoded).

use crate::email::render;
use crate::{Call, Caller, Jmap};
use serde_json::{json, Value};

/// Why an upload failed (RFC 8620 §6.1).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("account not found")]
    AccountNotFound,
    #[error("upload larger than maxSizeUpload")]
    TooLarge,
    /// The account's pending uploads are at their cap (RFC 8620 §6.1: the
    /// server may reject uploads that take the account over its quota).
    #[error("too many pending uploads")]
    OverQuota,
    #[error("storage error")]
    Store,
}

/// A blob to send to a downloading client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub data: Vec<u8>,
    /// The part's own type when the blob is a message part.
    pub content_type: Option<String>,
}

/// The bytes of a blob the caller may read.
pub(crate) async fn read(call: &Call<'_>, blob_id: &str) -> Result<Vec<u8>, ()> {
    read_blob(call.jmap, call.caller, blob_id).await.map(|d| d.data)
}

async fn read_blob(jmap: &Jmap, caller: &Caller, blob_id: &str) -> Result<Download, ()> {
    let (whole, part) = match render::split_part_blob_id(blob_id) {
        Some((whole, n)) => (whole, Some(n)),
        None => (blob_id, None),
    };
    let raw = match jmap.store.blob(caller.account, whole).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return Err(()),
        Err(e) => {
            tracing::error!(error = %e, "store error reading a blob");
            return Err(());
        }
    };
    let Some(n) = part else {
        return Ok(Download {
            data: raw.as_ref().clone(),
            content_type: None,
        });
    };
    tokio::task::spawn_blocking(move || {
        let msg = render::parse(&raw).ok_or(())?;
        let data = render::part_bytes(&msg, n).ok_or(())?;
        let content_type = msg.parts.get(n).map(render::content_type);
        Ok(Download { data, content_type })
    })
    .await
    .map_err(|_| ())?
}

impl Jmap {
    /// RFC 8620 §6.1: store an upload; the response object.
    pub async fn upload(
        &self,
        caller: &Caller,
        account_id: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<Value, UploadError> {
        if account_id != caller.account_id() {
            return Err(UploadError::AccountNotFound);
        }
        if data.len() as u64 > self.config.limits.max_size_upload {
            return Err(UploadError::TooLarge);
        }
        let up = self
            .store
            .upload_blob(caller.account, data)
            .await
            .map_err(|e| match e {
                letterbox_store::StoreError::QuotaExceeded { .. } => UploadError::OverQuota,
                e => {
                    tracing::error!(error = %e, "store error on upload");
                    UploadError::Store
                }
            })?;
        Ok(json!({
            "accountId": account_id,
            "blobId": up.blob_id,
            "type": content_type,
            "size": up.size,
        }))
    }

    /// RFC 8620 §6.2: the blob's bytes, or `None` when the caller may not
    /// read it (unknown and forbidden look the same: 404).
    pub async fn download(&self, caller: &Caller, account_id: &str, blob_id: &str) -> Option<Download> {
        if account_id != caller.account_id() {
            return None;
        }
        read_blob(self, caller, blob_id).await.ok()
    }
}
