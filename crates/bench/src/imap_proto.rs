//! IMAP client side (RFC 9051 §7): reading responses, tagged, untagged
//! (`*`) and continuation (`+`), with any literals (`{n}`) they carry read
//! exactly; extracting what the workloads need (EXISTS, FETCH items, SEARCH
//! results, capabilities, APPENDUID); and a small command/response client.

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::conn::Stream;

/// Longest line (between literals) accepted from a server.
pub const MAX_LINE: usize = 4 << 20;
/// Largest literal accepted from a server.
pub const MAX_LITERAL: usize = 256 << 20;

/// Status of a tagged response, or of an untagged OK/NO/BAD/BYE/PREAUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    PreAuth,
}

impl Status {
    fn parse(word: &str) -> Option<Status> {
        Some(match word.to_ascii_uppercase().as_str() {
            "OK" => Status::Ok,
            "NO" => Status::No,
            "BAD" => Status::Bad,
            "BYE" => Status::Bye,
            "PREAUTH" => Status::PreAuth,
            _ => return None,
        })
    }
}

/// One server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `+ text`: the server waits for more of the command.
    Continuation(String),
    /// `* text`; the text keeps the `{n}` markers where literals stood, and
    /// the literals follow in order.
    Untagged { text: String, literals: Vec<Vec<u8>> },
    /// `tag STATUS text`.
    Tagged { tag: String, status: Status, text: String },
}

/// Read one line segment, ending in LF, of at most [`MAX_LINE`] bytes.
async fn read_segment<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    let n = (&mut *r).take(MAX_LINE as u64).read_until(b'\n', buf).await?;
    if n == 0 {
        bail!("connection closed");
    }
    if buf.last() != Some(&b'\n') {
        if n >= MAX_LINE {
            bail!("response line too long");
        }
        bail!("connection closed in the middle of a line");
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(())
}

/// The size of the literal announced at the end of a line: `{n}`, `{n+}` or
/// `~{n}` (RFC 3516).
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Read one complete response, literals included.
pub async fn read_response<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Response> {
    let mut text = Vec::new();
    let mut literals = Vec::new();
    let mut seg = Vec::new();
    loop {
        read_segment(r, &mut seg).await?;
        text.extend_from_slice(&seg);
        if text.len() > MAX_LINE {
            bail!("response too long");
        }
        let Some(n) = literal_len(&seg) else { break };
        if n > MAX_LITERAL {
            bail!("literal of {n} bytes is too large");
        }
        let mut lit = vec![0; n];
        r.read_exact(&mut lit)
            .await
            .context("connection closed inside a literal")?;
        literals.push(lit);
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    if let Some(rest) = text.strip_prefix('+') {
        return Ok(Response::Continuation(rest.trim_start().to_string()));
    }
    if let Some(rest) = text.strip_prefix("* ") {
        return Ok(Response::Untagged {
            text: rest.to_string(),
            literals,
        });
    }
    let mut words = text.splitn(3, ' ');
    let tag = words.next().unwrap_or_default();
    let status = words.next().and_then(Status::parse);
    match status {
        Some(status) if !tag.is_empty() && literals.is_empty() => Ok(Response::Tagged {
            tag: tag.to_string(),
            status,
            text: words.next().unwrap_or_default().to_string(),
        }),
        _ => bail!("malformed response: {:?}", truncate(&text)),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The status of an untagged `OK`/`NO`/`BAD`/`BYE`/`PREAUTH`, and its text.
pub fn untagged_status(text: &str) -> Option<(Status, &str)> {
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    Some((Status::parse(word)?, rest))
}

/// `N EXISTS` → N.
pub fn exists(text: &str) -> Option<u32> {
    let (n, word) = text.split_once(' ')?;
    if !word.trim_end().eq_ignore_ascii_case("EXISTS") {
        return None;
    }
    n.parse().ok()
}

/// `SEARCH 1 2 3` → the numbers (a trailing `(MODSEQ n)` is ignored).
pub fn search(text: &str) -> Option<Vec<u32>> {
    let mut words = text.split_ascii_whitespace();
    if !words.next()?.eq_ignore_ascii_case("SEARCH") {
        return None;
    }
    Some(
        words
            .take_while(|w| !w.starts_with('('))
            .filter_map(|w| w.parse().ok())
            .collect(),
    )
}

/// Capabilities from `CAPABILITY ...` or an `[CAPABILITY ...]` response
/// code, upper-cased.
pub fn capabilities(text: &str) -> Option<Vec<String>> {
    let list = if let Some(rest) = strip_prefix_ci(text, "CAPABILITY ") {
        rest
    } else {
        // A response code, right at the start of a tagged response's text
        // or after the status word of an untagged one.
        let code = strip_prefix_ci(text, "[CAPABILITY ").or_else(|| {
            let (_, rest) = text.split_once(' ')?;
            strip_prefix_ci(rest.trim_start(), "[CAPABILITY ")
        })?;
        code.split(']').next()?
    };
    Some(list.split_ascii_whitespace().map(str::to_ascii_uppercase).collect())
}

/// The UID from an `[APPENDUID uidvalidity uid]` response code.
pub fn appenduid(text: &str) -> Option<u32> {
    let rest = strip_prefix_ci(text.trim_start(), "[APPENDUID ")?;
    let code = rest.split(']').next()?;
    let mut words = code.split_ascii_whitespace();
    words.next()?;
    words.next()?.parse().ok()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// The items of an untagged `N FETCH (...)` the workloads use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub seq: u32,
    pub uid: Option<u32>,
    pub size: Option<u64>,
    pub flags: Option<Vec<String>>,
}

impl Fetch {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().flatten().any(|f| f.eq_ignore_ascii_case(flag))
    }
}

/// Tokens of a FETCH item list; quoted strings and literal markers only
/// need skipping.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    Atom(&'a str),
    Other,
}

fn tokens(s: &str) -> Vec<Token<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => i += 1,
            b'(' => {
                out.push(Token::Open);
                i += 1;
            }
            b')' => {
                out.push(Token::Close);
                i += 1;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push(Token::Other);
            }
            b'{' | b'~' if s[i..].starts_with('{') || s[i..].starts_with("~{") => {
                i += s[i..].find('}').map_or(b.len() - i, |e| e + 1);
                out.push(Token::Other);
            }
            _ => {
                // An atom; `[...]` sections (BODY[HEADER]) may hold spaces.
                let start = i;
                let mut depth = 0;
                while i < b.len() {
                    match b[i] {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b' ' | b'(' | b')' if depth <= 0 => break,
                        _ => {}
                    }
                    i += 1;
                }
                out.push(Token::Atom(&s[start..i]));
            }
        }
    }
    out
}

/// Parse `N FETCH (UID u FLAGS (...) RFC822.SIZE s ...)`.
pub fn fetch(text: &str) -> Option<Fetch> {
    let (seq, rest) = text.split_once(' ')?;
    let rest = strip_prefix_ci(rest, "FETCH ")?;
    let mut f = Fetch {
        seq: seq.parse().ok()?,
        ..Fetch::default()
    };
    let toks = tokens(rest);
    let mut it = toks.iter();
    if it.next() != Some(&Token::Open) {
        return None;
    }
    loop {
        let key = match it.next()? {
            Token::Close => return Some(f),
            Token::Atom(k) => k.to_ascii_uppercase(),
            _ => return None,
        };
        match it.next()? {
            Token::Open => {
                let mut depth = 1;
                let mut atoms = Vec::new();
                while depth > 0 {
                    match it.next()? {
                        Token::Open => depth += 1,
                        Token::Close => depth -= 1,
                        Token::Atom(a) if depth == 1 => atoms.push(a.to_string()),
                        _ => {}
                    }
                }
                if key == "FLAGS" {
                    f.flags = Some(atoms);
                }
            }
            Token::Atom(v) => match key.as_str() {
                "UID" => f.uid = v.parse().ok(),
                "RFC822.SIZE" => f.size = v.parse().ok(),
                _ => {}
            },
            Token::Other => {}
            Token::Close => return None,
        }
    }
}

/// A quoted string (RFC 9051 §4.3); fails on CR/LF, which need a literal.
pub fn quote(s: &str) -> Result<String> {
    if s.contains(['\r', '\n']) {
        bail!("CR/LF cannot be quoted");
    }
    Ok(format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// The outcome of one tagged command.
#[derive(Debug)]
pub struct Reply {
    pub status: Status,
    pub text: String,
    /// Untagged responses that arrived meanwhile (text, literals).
    pub untagged: Vec<(String, Vec<Vec<u8>>)>,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The last `N EXISTS` seen.
    pub fn exists(&self) -> Option<u32> {
        self.untagged.iter().filter_map(|(t, _)| exists(t)).next_back()
    }

    /// All numbers of all `SEARCH` responses.
    pub fn search(&self) -> Vec<u32> {
        self.untagged.iter().filter_map(|(t, _)| search(t)).flatten().collect()
    }

    pub fn fetches(&self) -> impl Iterator<Item = Fetch> + '_ {
        self.untagged.iter().filter_map(|(t, _)| fetch(t))
    }

    /// Total bytes of the literals received.
    pub fn literal_bytes(&self) -> usize {
        self.untagged.iter().flat_map(|(_, l)| l).map(Vec::len).sum()
    }
}

/// An IMAP connection issuing one command at a time.
pub struct Client {
    io: Stream,
    next_tag: u32,
    caps: Vec<String>,
    /// Bumped whenever the server announces capabilities.
    pub caps_gen: u32,
    bye: Option<String>,
}

impl Client {
    /// Read the greeting; fails unless it is `* OK` or `* PREAUTH`.
    pub async fn greet(io: Stream) -> Result<Client> {
        let mut c = Client {
            io,
            next_tag: 1,
            caps: Vec::new(),
            caps_gen: 0,
            bye: None,
        };
        match c.read().await.context("greeting")? {
            Response::Untagged { text, .. } => match untagged_status(&text) {
                Some((Status::Ok | Status::PreAuth, _)) => Ok(c),
                _ => bail!("server refused the connection: {}", truncate(&text)),
            },
            other => bail!("unexpected greeting {other:?}"),
        }
    }

    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    pub fn set_caps(&mut self, caps: Vec<String>) {
        self.caps = caps;
        self.caps_gen += 1;
    }

    pub fn caps(&self) -> &[String] {
        &self.caps
    }

    /// Read one response, noting capabilities and BYE on the way.
    pub async fn read(&mut self) -> Result<Response> {
        let r = match read_response(&mut self.io).await {
            Ok(r) => r,
            Err(e) => match &self.bye {
                Some(b) => return Err(e.context(format!("server said BYE {b}"))),
                None => return Err(e),
            },
        };
        let caps = match &r {
            Response::Untagged { text, .. } => {
                if let Some((Status::Bye, t)) = untagged_status(text) {
                    self.bye = Some(t.to_string());
                }
                capabilities(text)
            }
            // Only the response code: a tagged "OK CAPABILITY completed"
            // is no list.
            Response::Tagged { text, .. } => text.starts_with('[').then(|| capabilities(text)).flatten(),
            Response::Continuation(_) => return Ok(r),
        };
        if let Some(caps) = caps {
            self.set_caps(caps);
        }
        Ok(r)
    }

    fn tag(&mut self) -> String {
        let t = format!("B{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    /// Send `tag command` and collect everything up to its tagged response.
    pub async fn command(&mut self, command: &str) -> Result<Reply> {
        let tag = self.tag();
        self.io.write_all(format!("{tag} {command}\r\n").as_bytes()).await?;
        self.io.flush().await?;
        self.finish(&tag).await
    }

    async fn finish(&mut self, tag: &str) -> Result<Reply> {
        let mut untagged = Vec::new();
        loop {
            match self.read().await? {
                Response::Untagged { text, literals } => untagged.push((text, literals)),
                Response::Tagged { tag: t, status, text } if t == tag => return Ok(Reply { status, text, untagged }),
                Response::Tagged { tag: t, .. } => bail!("response for unknown tag {t}"),
                Response::Continuation(c) => bail!("unexpected continuation: {c}"),
            }
        }
    }

    /// `APPEND mailbox (flags) {n}` with the message as a literal: sent at
    /// once with LITERAL+ (RFC 7888), else after the `+` continuation.
    pub async fn append(&mut self, mailbox: &str, flags: &str, message: &[u8]) -> Result<Reply> {
        let tag = self.tag();
        let plus = self.has_cap("LITERAL+");
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" ({flags})")
        };
        let head = format!(
            "{tag} APPEND {}{flags} {{{}{}}}\r\n",
            quote(mailbox)?,
            message.len(),
            if plus { "+" } else { "" }
        );
        self.io.write_all(head.as_bytes()).await?;
        if !plus {
            self.io.flush().await?;
            let mut untagged = Vec::new();
            loop {
                match self.read().await? {
                    Response::Continuation(_) => break,
                    Response::Untagged { text, literals } => untagged.push((text, literals)),
                    // Refused before the literal was sent.
                    Response::Tagged { tag: t, status, text } if t == tag => {
                        return Ok(Reply { status, text, untagged });
                    }
                    Response::Tagged { tag: t, .. } => bail!("response for unknown tag {t}"),
                }
            }
        }
        self.io.write_all(message).await?;
        self.io.write_all(b"\r\n").await?;
        self.io.flush().await?;
        self.finish(&tag).await
    }

    /// MULTIAPPEND (RFC 3502) of several messages with LITERAL+ literals
    /// (the caller checked both are offered).
    pub async fn multiappend(&mut self, mailbox: &str, messages: &[Vec<u8>]) -> Result<Reply> {
        let tag = self.tag();
        self.io
            .write_all(format!("{tag} APPEND {}", quote(mailbox)?).as_bytes())
            .await?;
        for m in messages {
            self.io.write_all(format!(" {{{}+}}\r\n", m.len()).as_bytes()).await?;
            self.io.write_all(m).await?;
        }
        self.io.write_all(b"\r\n").await?;
        self.io.flush().await?;
        self.finish(&tag).await
    }

    /// Start IDLE (RFC 2177) and wait for the `+` continuation; returns the
    /// last EXISTS seen before it, if any.
    pub async fn idle(&mut self) -> Result<Option<u32>> {
        let tag = self.tag();
        self.io.write_all(format!("{tag} IDLE\r\n").as_bytes()).await?;
        self.io.flush().await?;
        let mut last = None;
        loop {
            match self.read().await? {
                Response::Continuation(_) => return Ok(last),
                Response::Untagged { text, .. } => last = exists(&text).or(last),
                Response::Tagged { status, text, .. } => bail!("IDLE refused: {status:?} {text}"),
            }
        }
    }

    /// Close the connection without further ado.
    pub async fn shutdown(mut self) {
        let _ = self.io.get_mut().shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(mut input: &[u8]) -> Result<Vec<Response>> {
        let mut out = Vec::new();
        while !input.is_empty() {
            out.push(read_response(&mut input).await?);
        }
        Ok(out)
    }

    fn untagged(text: &str, literals: &[&[u8]]) -> Response {
        Response::Untagged {
            text: text.into(),
            literals: literals.iter().map(|l| l.to_vec()).collect(),
        }
    }

    #[tokio::test]
    async fn kinds() {
        let r = all(b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n+ idling\r\n+\r\na1 NO [AUTHENTICATIONFAILED] no\r\n")
            .await
            .unwrap();
        assert_eq!(r[0], untagged("OK [CAPABILITY IMAP4rev1 IDLE] ready", &[]));
        assert_eq!(r[1], Response::Continuation("idling".into()));
        assert_eq!(r[2], Response::Continuation("".into()));
        assert_eq!(
            r[3],
            Response::Tagged {
                tag: "a1".into(),
                status: Status::No,
                text: "[AUTHENTICATIONFAILED] no".into()
            }
        );
        // Bare LF line ends are tolerated.
        let r = all(b"* 3 EXISTS\nx ok done\n").await.unwrap();
        assert_eq!(r[0], untagged("3 EXISTS", &[]));
        assert!(matches!(r[1], Response::Tagged { status: Status::Ok, .. }));
    }

    #[tokio::test]
    async fn literals_are_read_exactly() {
        // The literal holds CRLFs, a `}` line end and what looks like a tag.
        let body: &[u8] = b"Subject: x {5}\r\n\r\nb1 OK fake\r\n";
        let mut input = format!("* 1 FETCH (UID 7 BODY[] {{{}}}\r\n", body.len()).into_bytes();
        input.extend_from_slice(body);
        input.extend_from_slice(b" BODY[HEADER] {2}\r\n\r\n FLAGS (\\Seen))\r\nb1 OK done\r\n");
        let r = all(&input).await.unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            untagged(
                "1 FETCH (UID 7 BODY[] {30} BODY[HEADER] {2} FLAGS (\\Seen))",
                &[body, b"\r\n"]
            )
        );
        let Response::Untagged { text, .. } = &r[0] else {
            panic!()
        };
        let f = fetch(text).unwrap();
        assert_eq!(f.uid, Some(7));
        assert!(f.has_flag("\\seen"));
        assert!(matches!(&r[1], Response::Tagged { tag, .. } if tag == "b1"));
    }

    #[tokio::test]
    async fn truncated_input_fails() {
        assert!(all(b"* 1 FETCH (BODY[] {10}\r\nshort").await.is_err());
        assert!(all(b"* OK no line end").await.is_err());
        assert!(all(b"a1 MAYBE what\r\n").await.is_err());
        assert!(all(b"* 1 FETCH (BODY[] {999999999999}\r\n").await.is_err());
        let mut empty: &[u8] = b"";
        assert!(read_response(&mut empty).await.is_err());
    }

    #[test]
    fn literal_markers() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {42}"), Some(42));
        assert_eq!(literal_len(b"a APPEND INBOX {7+}"), Some(7));
        assert_eq!(literal_len(b"* 1 FETCH (BINARY[] ~{0}"), Some(0));
        assert_eq!(literal_len(b"* OK {x}"), None);
        assert_eq!(literal_len(b"* OK {}"), None);
        assert_eq!(literal_len(b"* OK {5} trailing"), None);
    }

    #[test]
    fn fetch_items() {
        let f = fetch("12 FETCH (FLAGS (\\Seen $Junk) UID 40 RFC822.SIZE 2048)").unwrap();
        assert_eq!(
            f,
            Fetch {
                seq: 12,
                uid: Some(40),
                size: Some(2048),
                flags: Some(vec!["\\Seen".into(), "$Junk".into()])
            }
        );
        let f = fetch("3 fetch (uid 9 FLAGS () ENVELOPE (\"a (b\" NIL) BODY[HEADER.FIELDS (SUBJECT)] {4})").unwrap();
        assert_eq!(f.uid, Some(9));
        assert_eq!(f.flags, Some(vec![]));
        assert!(!f.has_flag("\\Seen"));
        assert_eq!(fetch("3 EXISTS"), None);
        assert_eq!(fetch("3 FETCH (UID 1"), None);
        assert_eq!(fetch("x FETCH (UID 1)"), None);
    }

    #[test]
    fn small_parsers() {
        assert_eq!(exists("17 EXISTS"), Some(17));
        assert_eq!(exists("17 exists"), Some(17));
        assert_eq!(exists("17 RECENT"), None);
        assert_eq!(search("SEARCH 1 5 9"), Some(vec![1, 5, 9]));
        assert_eq!(search("SEARCH"), Some(vec![]));
        assert_eq!(search("SEARCH 4 (MODSEQ 88)"), Some(vec![4]));
        assert_eq!(search("FLAGS (\\Seen)"), None);
        assert_eq!(
            capabilities("CAPABILITY IMAP4rev1 literal+ IDLE"),
            Some(vec!["IMAP4REV1".into(), "LITERAL+".into(), "IDLE".into()])
        );
        assert_eq!(
            capabilities("OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in").unwrap()[1],
            "UIDPLUS"
        );
        assert_eq!(
            capabilities("[CAPABILITY IMAP4rev1] ok"),
            Some(vec!["IMAP4REV1".into()])
        );
        assert_eq!(capabilities("OK [READ-WRITE] done"), None);
        assert_eq!(appenduid("[APPENDUID 1700000 42] APPEND completed"), Some(42));
        assert_eq!(appenduid("APPEND completed"), None);
        assert_eq!(quote("a\"b\\c").unwrap(), "\"a\\\"b\\\\c\"");
        assert!(quote("a\r\nb").is_err());
        assert_eq!(untagged_status("BYE logging out"), Some((Status::Bye, "logging out")));
        assert_eq!(untagged_status("3 EXISTS"), None);
    }

    #[tokio::test]
    async fn client_append_waits_for_continuation() {
        // Without LITERAL+ the client sends the literal only after `+`;
        // with a duplex pipe the scripted server checks what it receives.
        let (client_io, server_io) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut s = tokio::io::BufReader::new(server_io);
            s.write_all(b"* OK [CAPABILITY IMAP4rev1] hi\r\n").await.unwrap();
            let mut line = String::new();
            s.read_line(&mut line).await.unwrap();
            assert_eq!(line, "B1 APPEND \"INBOX\" (\\Seen) {5}\r\n");
            s.write_all(b"+ go\r\n").await.unwrap();
            let mut lit = [0; 7];
            s.read_exact(&mut lit).await.unwrap();
            assert_eq!(&lit, b"hello\r\n");
            s.write_all(b"* 4 EXISTS\r\nB1 OK [APPENDUID 1 99] done\r\n")
                .await
                .unwrap();
        });
        let io: Box<dyn crate::conn::Io> = Box::new(client_io);
        let mut c = Client::greet(tokio::io::BufReader::new(io)).await.unwrap();
        assert!(c.has_cap("imap4rev1") && !c.has_cap("LITERAL+"));
        let r = c.append("INBOX", "\\Seen", b"hello").await.unwrap();
        assert!(r.ok());
        assert_eq!(r.exists(), Some(4));
        assert_eq!(appenduid(&r.text), Some(99));
        server.await.unwrap();
    }
}
