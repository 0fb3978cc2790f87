//! The DATA receiver, RFC 5321 §4.1.1.4 and §4.5.2.

/// Result of feeding one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStep {
    /// More lines expected.
    Continue,
    /// `CRLF . CRLF` seen: the message is complete (or refused; see `finish`).
    Done,
}

/// Why a received message is refused. The whole message has been read (drained)
/// when this is reported, so the session stays in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// A line ended in a bare LF, or held a bare CR (RFC 5321 §2.3.8).
    #[error("message contains a bare CR or LF")]
    BareLineEnding,
    /// More than the size limit (RFC 1870 §6.3: 552).
    #[error("message exceeds the size limit")]
    TooLarge,
    /// A NUL octet: not allowed in DATA content, 8BITMIME included
    /// (RFC 6152 §3; only BDAT with BINARYMIME carries binary).
    #[error("message contains a NUL octet")]
    Nul,
}

/// Collects a message from DATA lines, undoing dot-stuffing.
#[derive(Debug)]
pub struct DataReceiver {
    message: Vec<u8>,
    max_size: usize,
    error: Option<DataError>,
}

impl DataReceiver {
    /// A receiver refusing messages larger than `max_size` bytes.
    pub fn new(max_size: usize) -> DataReceiver {
        DataReceiver {
            message: Vec::new(),
            max_size,
            error: None,
        }
    }

    /// Feed one line: its bytes without terminator, and whether it ended in
    /// CRLF. Only a lone "." ending in CRLF, after a CRLF, ends the data.
    pub fn line(&mut self, content: &[u8], crlf: bool) -> DataStep {
        if crlf && content == b"." {
            return DataStep::Done;
        }
        if !crlf || content.contains(&b'\r') {
            self.error.get_or_insert(DataError::BareLineEnding);
        }
        if content.contains(&0) {
            self.error.get_or_insert(DataError::Nul);
        }
        if self.error.is_some() {
            return DataStep::Continue;
        }
        // RFC 5321 §4.5.2: a leading dot was doubled by the sender.
        let content = content.strip_prefix(b".").unwrap_or(content);
        if self.message.len() + content.len() + 2 > self.max_size {
            self.error = Some(DataError::TooLarge);
            self.message = Vec::new();
            return DataStep::Continue;
        }
        self.message.extend_from_slice(content);
        self.message.extend_from_slice(b"\r\n");
        DataStep::Continue
    }

    /// Bytes collected so far (for progress and limits).
    pub fn len(&self) -> usize {
        self.message.len()
    }

    /// Whether nothing has been collected.
    pub fn is_empty(&self) -> bool {
        self.message.is_empty()
    }

    /// The message, or why it was refused.
    pub fn finish(self) -> Result<Vec<u8>, DataError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[(&[u8], bool)], max: usize) -> (Vec<DataStep>, Result<Vec<u8>, DataError>) {
        let mut r = DataReceiver::new(max);
        let steps = lines.iter().map(|(l, crlf)| r.line(l, *crlf)).collect();
        (steps, r.finish())
    }

    /// Issue 18: NUL in DATA is refused (the message is still read to its end).
    #[test]
    fn nul_is_refused() {
        let (steps, msg) = feed(&[(b"Subject: x", true), (b"a\0b", true), (b".", true)], 1000);
        assert_eq!(steps.last(), Some(&DataStep::Done));
        assert_eq!(msg, Err(DataError::Nul));
    }

    #[test]
    fn unstuffs_dots_and_ends_at_lone_dot() {
        let (steps, msg) = feed(
            &[(b"Subject: x", true), (b"", true), (b"..leading", true), (b".", true)],
            1000,
        );
        assert_eq!(steps.last(), Some(&DataStep::Done));
        assert_eq!(msg.unwrap(), b"Subject: x\r\n\r\n.leading\r\n");
    }

    #[test]
    fn bare_lf_dot_does_not_end_data() {
        // The smuggling pattern: "\n.\n" must not end the message.
        let (steps, msg) = feed(
            &[(b"a", true), (b".", false), (b"MAIL FROM:<x@y>", true), (b".", true)],
            1000,
        );
        assert_eq!(
            steps,
            vec![
                DataStep::Continue,
                DataStep::Continue,
                DataStep::Continue,
                DataStep::Done
            ]
        );
        assert_eq!(msg, Err(DataError::BareLineEnding));
    }

    #[test]
    fn bare_cr_is_refused() {
        let (_, msg) = feed(&[(b"a\rb", true), (b".", true)], 1000);
        assert_eq!(msg, Err(DataError::BareLineEnding));
    }

    #[test]
    fn oversize_is_drained_not_buffered() {
        let mut r = DataReceiver::new(10);
        r.line(b"0123456789", true);
        assert_eq!(r.len(), 0);
        r.line(b"more", true);
        assert_eq!(r.len(), 0);
        assert_eq!(r.line(b".", true), DataStep::Done);
        assert_eq!(r.finish(), Err(DataError::TooLarge));
    }

    #[test]
    fn exact_size_fits() {
        let (_, msg) = feed(&[(b"12345678", true), (b".", true)], 10);
        assert_eq!(msg.unwrap().len(), 10);
    }
}
