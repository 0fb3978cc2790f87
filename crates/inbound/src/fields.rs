//! Header fields from outside that would speak in our name.

use letterbox_mail::{field_is, header_fields};

/// Fields only this server writes: a sender's own verdict must not pass
/// for ours.
const OUR_FIELDS: &[&str] = &["X-Spam-Status", "X-Spam-Flag", "X-Spam-Score"];

/// `raw` without the `Authentication-Results:` fields that claim
/// `authserv_id` (RFC 8601 §5: a receiver removes them, or an outsider
/// could forge our verdict) and without our spam fields; `None` when it has
/// none of them (the common case: no copy).
pub fn remove_ours(raw: &[u8], authserv_id: &str) -> Option<Vec<u8>> {
    let fields = header_fields(raw);
    let ours = |f: &[u8]| {
        (field_is(f, "Authentication-Results") && claims(f, authserv_id)) || OUR_FIELDS.iter().any(|n| field_is(f, n))
    };
    if !fields.iter().any(|f| ours(f)) {
        return None;
    }
    let header_len: usize = fields.iter().map(|f| f.len()).sum();
    let mut out = Vec::with_capacity(raw.len());
    for f in fields.iter().filter(|f| !ours(f)) {
        out.extend_from_slice(f);
    }
    out.extend_from_slice(&raw[header_len..]);
    Some(out)
}

/// Whether an Authentication-Results field's authserv-id (RFC 8601 §2.2:
/// the first token of the value, before any version and `;`) is `id`.
fn claims(field: &[u8], id: &str) -> bool {
    let text = String::from_utf8_lossy(field);
    let value = text.split_once(':').map_or("", |(_, v)| v);
    // Comments (RFC 5322 CFWS) may precede the id.
    let mut v = value.trim_start();
    while let Some(rest) = v.strip_prefix('(') {
        v = rest.split_once(')').map_or("", |(_, r)| r).trim_start();
    }
    let token: String = v
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ';' && *c != '(')
        .collect();
    token.eq_ignore_ascii_case(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_results_go_others_stay() {
        let raw = b"Authentication-Results: MX.Example.Test;\r\n spf=pass\r\n\
Authentication-Results: (c) mx.example.test 1; dkim=pass\r\n\
Authentication-Results: other.test; dmarc=pass\r\n\
X-Spam-Status: No\r\nSubject: hi\r\n\r\nAuthentication-Results: mx.example.test; body\r\n";
        let out = remove_ours(raw, "mx.example.test").expect("fields removed");
        assert_eq!(
            out,
            b"Authentication-Results: other.test; dmarc=pass\r\nSubject: hi\r\n\r\nAuthentication-Results: mx.example.test; body\r\n"
        );
    }

    #[test]
    fn clean_messages_are_not_copied() {
        assert_eq!(
            remove_ours(b"Authentication-Results: other.test; spf=pass\r\n\r\nx", "mx.test"),
            None
        );
    }
}
