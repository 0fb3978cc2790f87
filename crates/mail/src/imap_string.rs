//! IMAP string output (RFC 3501 §4.3, §9 `string` / `nstring`): NIL, a
//! quoted string, or a literal, chosen the way Dovecot 2.3 chooses them so
//! cached FETCH answers match it byte for byte.

/// Append `{n}\r\n` followed by the bytes (RFC 3501 §4.3 literal).
fn push_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Append a string value. Quoted with `\` escapes unless it contains a byte
/// that cannot appear in a quoted string (CR, LF, NUL, 8-bit) or more than
/// four characters needing escapes; then a literal is sent (RFC 3501 §4.3
/// allows either form).
pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    let mut escapes = 0usize;
    for &b in s {
        match b {
            b'\r' | b'\n' | 0 | 0x80..=0xff => return push_literal(out, s),
            b'"' | b'\\' => escapes += 1,
            _ => {}
        }
    }
    if escapes > 4 {
        return push_literal(out, s);
    }
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// `nstring`: NIL when absent.
pub fn push_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => push_string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Text meant for humans (ENVELOPE subject and display names): unfolded,
/// whitespace runs collapsed to one space, trimmed. Whenever the cleanup
/// changed anything, or the text has `"`, `\` or 8-bit bytes, it is sent as a
/// literal (Dovecot never escapes such text inside a quoted string).
pub fn push_human(out: &mut Vec<u8>, s: &[u8]) {
    let mut clean = Vec::with_capacity(s.len());
    let mut pending_space = false;
    for &b in s {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => pending_space = true,
            _ => {
                if pending_space && !clean.is_empty() {
                    clean.push(b' ');
                }
                pending_space = false;
                clean.push(b);
            }
        }
    }
    if clean.is_empty() {
        out.extend_from_slice(b"\"\"");
        return;
    }
    let special = clean.iter().any(|&b| b == b'"' || b == b'\\' || b >= 0x80 || b == 0);
    if clean != s || special {
        push_literal(out, &clean);
    } else {
        out.push(b'"');
        out.extend_from_slice(&clean);
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: fn(&mut Vec<u8>, &[u8]), v: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        f(&mut o, v);
        o
    }

    #[test]
    fn quoting() {
        assert_eq!(s(push_string, b"a\"b"), b"\"a\\\"b\"");
        assert_eq!(s(push_string, b"a\r\nb"), b"{4}\r\na\r\nb");
        assert_eq!(s(push_string, b"\"\"\"\"\""), b"{5}\r\n\"\"\"\"\"");
        assert_eq!(s(push_human, b" a \t b "), b"{3}\r\na b");
        assert_eq!(s(push_human, b"a b"), b"\"a b\"");
        assert_eq!(s(push_human, b"  "), b"\"\"");
    }
}
