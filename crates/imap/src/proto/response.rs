//! Typed encoders for the server's untagged responses (RFC 9051 §7). Every
//! `* n FETCH (...)`, `EXISTS`, `EXPUNGE` and `VANISHED` the session sends is
//! built here, so the wire format lives in one place.

use super::{push_flags, SeqSet};

/// An untagged response about the selected mailbox's message numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagged<'a> {
    /// RFC 9051 §7.4.1.
    Exists(usize),
    /// RFC 3501 §7.3.2 (IMAP4rev1 only).
    Recent(usize),
    /// RFC 9051 §7.5.1.
    Expunge(usize),
    /// RFC 7162 §3.2.10; `earlier` for the (EARLIER) form. `uids` ascend.
    Vanished { earlier: bool, uids: &'a [u32] },
    /// RFC 7162 §3.1.2.1 `OK [HIGHESTMODSEQ n]`.
    HighestModSeq(u64),
}

impl Untagged<'_> {
    /// The response line with its CRLF; nothing for an empty VANISHED.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let line = match self {
            Untagged::Exists(n) => format!("* {n} EXISTS\r\n"),
            Untagged::Recent(n) => format!("* {n} RECENT\r\n"),
            Untagged::Expunge(n) => format!("* {n} EXPUNGE\r\n"),
            Untagged::Vanished { uids: [], .. } => return,
            Untagged::Vanished { earlier, uids } => format!(
                "* VANISHED {}{}\r\n",
                if *earlier { "(EARLIER) " } else { "" },
                SeqSet::from_numbers(uids).to_text()
            ),
            Untagged::HighestModSeq(m) => format!("* OK [HIGHESTMODSEQ {m}] highest mod-sequence\r\n"),
        };
        out.extend_from_slice(line.as_bytes());
    }
}

/// One `* n FETCH (...)` response (RFC 9051 §7.5.2), built item by item.
#[derive(Debug)]
pub struct FetchResponse {
    buf: Vec<u8>,
    items: usize,
}

impl FetchResponse {
    pub fn new(seq: usize) -> Self {
        FetchResponse {
            buf: format!("* {seq} FETCH (").into_bytes(),
            items: 0,
        }
    }

    /// Start a new item and return the buffer to write it into.
    pub fn item(&mut self) -> &mut Vec<u8> {
        if self.items > 0 {
            self.buf.push(b' ');
        }
        self.items += 1;
        &mut self.buf
    }

    pub fn uid(&mut self, uid: u32) -> &mut Self {
        self.item().extend_from_slice(format!("UID {uid}").as_bytes());
        self
    }

    pub fn flags<S: AsRef<str>>(&mut self, flags: &[S]) -> &mut Self {
        let out = self.item();
        out.extend_from_slice(b"FLAGS ");
        push_flags(out, flags);
        self
    }

    /// RFC 7162 §3.1.4.2 `MODSEQ (n)`.
    pub fn modseq(&mut self, modseq: u64) -> &mut Self {
        self.item().extend_from_slice(format!("MODSEQ ({modseq})").as_bytes());
        self
    }

    /// The finished line with its CRLF.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b")\r\n");
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_rfc_7162_examples() {
        let mut out = Vec::new();
        Untagged::Vanished {
            earlier: true,
            uids: &[300, 301, 302, 405, 411],
        }
        .encode(&mut out);
        Untagged::Vanished {
            earlier: false,
            uids: &[505, 507, 510, 625],
        }
        .encode(&mut out);
        Untagged::Vanished {
            earlier: false,
            uids: &[],
        }
        .encode(&mut out);
        Untagged::Expunge(3).encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* VANISHED (EARLIER) 300:302,405,411\r\n* VANISHED 505,507,510,625\r\n* 3 EXPUNGE\r\n"
        );
        let mut f = FetchResponse::new(1);
        f.uid(4).modseq(65402).flags(&["\\Seen"]);
        assert_eq!(f.finish(), b"* 1 FETCH (UID 4 MODSEQ (65402) FLAGS (\\Seen))\r\n");
        let mut f = FetchResponse::new(50);
        f.modseq(12111230047);
        assert_eq!(f.finish(), b"* 50 FETCH (MODSEQ (12111230047))\r\n");
    }
}
