//! Lexical layer for structured header fields: CFWS, atoms, quoted strings,
//! phrases (RFC 5322 §3.2) and MIME tokens (RFC 2045 §5.1).
//!
//! Every parse step returns [`Step`]: `More` (data follows), `End` (input
//! exhausted) or `Err` (syntax error at the current position). The parser
//! never moves backwards except when a caller restores a saved position.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    More,
    End,
    Err,
}

impl Step {
    pub fn ok(self) -> bool {
        self != Step::Err
    }
}

/// RFC 5322 §3.2.3 atext; 8-bit bytes are accepted as atext (RFC 6532).
pub fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b) || b >= 0x80
}

/// RFC 2045 §5.1 token characters.
pub fn is_token(b: u8) -> bool {
    b > b' ' && b != 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

pub struct Lexer<'a> {
    pub data: &'a [u8],
    pub pos: usize,
    /// Content of the last comment skipped, kept for addresses where a
    /// trailing comment supplies the display name.
    pub last_comment: Vec<u8>,
}

impl<'a> Lexer<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Lexer {
            data,
            pos: 0,
            last_comment: Vec::new(),
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn state(&self) -> Step {
        if self.at_end() {
            Step::End
        } else {
            Step::More
        }
    }

    /// Skip folding whitespace and comments (RFC 5322 §3.2.2 CFWS).
    pub fn skip_cfws(&mut self) -> Step {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.pos += 1,
                Some(b'(') => {
                    if self.skip_comment() == Step::Err {
                        return Step::Err;
                    }
                }
                _ => return self.state(),
            }
        }
    }

    /// Comments nest (RFC 5322 §3.2.2); an unterminated one is an error.
    fn skip_comment(&mut self) -> Step {
        let mut depth = 0usize;
        let mut text = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'(' => {
                    if depth > 0 {
                        text.push(b);
                    }
                    depth += 1;
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        self.last_comment = text;
                        return self.state();
                    }
                    text.push(b);
                }
                b'\\' => {
                    if let Some(n) = self.peek() {
                        self.pos += 1;
                        text.push(n);
                    }
                }
                b'\r' | b'\n' => {}
                _ => text.push(b),
            }
        }
        Step::Err
    }

    /// 1*atext followed by CFWS.
    pub fn atom(&mut self, out: &mut Vec<u8>) -> Step {
        self.run(out, is_atext)
    }

    /// Like [`Self::atom`] but dots are accepted too (obs-phrase, obs-local-part).
    pub fn atom_or_dot(&mut self, out: &mut Vec<u8>) -> Step {
        self.run(out, |b| is_atext(b) || b == b'.')
    }

    /// RFC 2045 §5.1 token followed by CFWS.
    pub fn token(&mut self, out: &mut Vec<u8>) -> Step {
        self.run(out, is_token)
    }

    fn run(&mut self, out: &mut Vec<u8>, ok: impl Fn(u8) -> bool) -> Step {
        let start = self.pos;
        while self.peek().is_some_and(&ok) {
            self.pos += 1;
        }
        if self.pos == start {
            return Step::Err;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        self.skip_cfws()
    }

    /// Bytes up to (not including) the first one matching `stop`, then CFWS.
    pub fn raw_until(&mut self, out: &mut Vec<u8>, stop: impl Fn(u8) -> bool) -> Step {
        let start = self.pos;
        while self.peek().is_some_and(|b| !stop(b)) {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        self.skip_cfws()
    }

    /// Quoted string (RFC 5322 §3.2.4): content unescaped and unfolded (CR and
    /// LF dropped), then CFWS.
    pub fn quoted_string(&mut self, out: &mut Vec<u8>) -> Step {
        if self.peek() != Some(b'"') {
            return Step::Err;
        }
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => return self.skip_cfws(),
                b'\\' => {
                    if let Some(n) = self.peek() {
                        self.pos += 1;
                        if n != b'\r' && n != b'\n' {
                            out.push(n);
                        }
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        Step::Err
    }

    /// Phrase (RFC 5322 §3.2.5 including obs-phrase): words joined by one
    /// space.
    pub fn phrase(&mut self, out: &mut Vec<u8>) -> Step {
        if self.peek() == Some(b'.') {
            return Step::Err;
        }
        loop {
            let r = if self.peek() == Some(b'"') {
                self.quoted_string(out)
            } else {
                self.atom_or_dot(out)
            };
            if r != Step::More {
                return r;
            }
            match self.peek() {
                Some(b) if is_atext(b) || b == b'"' || b == b'.' => out.push(b' '),
                _ => return Step::More,
            }
        }
    }

    /// dot-atom with CFWS allowed around the dots (obs-domain, obs-local-part).
    pub fn dot_atom(&mut self, out: &mut Vec<u8>) -> Step {
        let mut r = self.atom(out);
        while r == Step::More && self.peek() == Some(b'.') {
            out.push(b'.');
            self.pos += 1;
            r = self.skip_cfws();
            if r != Step::More {
                return Step::Err;
            }
            r = self.atom(out);
        }
        r
    }

    /// Domain literal `[...]` (RFC 5322 §3.4.1), kept with its brackets.
    pub fn domain_literal(&mut self, out: &mut Vec<u8>) -> Step {
        if self.peek() != Some(b'[') {
            return Step::Err;
        }
        let start = self.pos;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b']' => {
                    out.extend(self.data[start..self.pos].iter().filter(|&&c| c != b'\r' && c != b'\n'));
                    return self.skip_cfws();
                }
                b'\\' => self.pos += 1,
                _ => {}
            }
        }
        Step::Err
    }
}

/// A parsed `type/subtype; params` or `disposition; params` header value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypedValue {
    pub main: Vec<u8>,
    pub sub: Option<Vec<u8>>,
    /// `None` when the value was too broken to read parameters.
    pub params: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// Content-Type (RFC 2045 §5.1). Without a `/subtype` the whole value is
/// unusable and both type and subtype become empty (what Dovecot reports).
pub fn content_type(value: &[u8]) -> TypedValue {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let mut main = Vec::new();
    let r = lx.token(&mut main);
    if r != Step::More || lx.peek() != Some(b'/') {
        return TypedValue::default();
    }
    lx.pos += 1;
    let mut sub = Vec::new();
    let r = if lx.skip_cfws() == Step::More {
        lx.token(&mut sub)
    } else {
        Step::Err
    };
    if r == Step::More && lx.peek() != Some(b';') {
        // Junk after type/subtype: the whole value is unusable.
        return TypedValue::default();
    }
    let params = if r == Step::Err { None } else { Some(params(&mut lx)) };
    TypedValue {
        main,
        sub: Some(sub),
        params,
    }
}

/// Content-Disposition (RFC 2183 §2).
pub fn disposition(value: &[u8]) -> TypedValue {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let mut main = Vec::new();
    let r = lx.token(&mut main);
    let params = if r == Step::Err { None } else { Some(params(&mut lx)) };
    TypedValue {
        main,
        sub: None,
        params,
    }
}

/// `*(";" attribute "=" value)` (RFC 2045 §5.1); RFC 2231 continuations are
/// merged but not decoded (see [`merge_rfc2231`]).
fn params(lx: &mut Lexer<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        // Anything unparsable up to the next `;` is skipped, so one broken
        // parameter does not lose the ones after it.
        while lx.peek().is_some_and(|b| b != b';') {
            lx.pos += 1;
        }
        if lx.peek().is_none() {
            break;
        }
        lx.pos += 1;
        if lx.skip_cfws() != Step::More {
            break;
        }
        let mut name = Vec::new();
        if lx.token(&mut name) != Step::More || lx.peek() != Some(b'=') {
            // A parameter needs a value; a bare name is dropped.
            continue;
        }
        lx.pos += 1;
        let mut value = Vec::new();
        if lx.skip_cfws() != Step::More {
            out.push((name, value));
            break;
        }
        let r = if lx.peek() == Some(b'"') {
            lx.quoted_string(&mut value)
        } else if lx.peek() == Some(b'=') {
            // Unquoted encoded word (`name==?utf-8?b?...?=`), which
            // RFC 2047 §5 forbids but mailers send: up to `;` or blank.
            lx.raw_until(&mut value, |b| matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n'))
        } else {
            lx.token(&mut value)
        };
        if r != Step::Err {
            out.push((name, value));
        }
    }
    merge_rfc2231(out)
}

/// RFC 2231 §3-§4: `name*0`, `name*1*`, ... are joined into one parameter.
/// Values are not decoded; when any segment is extended (`*` suffix) the
/// result is named `name*` and keeps its `charset'lang'` prefix and
/// %-escapes. Non-RFC 2231 parameters come first in their order, joined
/// ones after, sorted by name.
fn merge_rfc2231(list: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    struct Joined {
        name: Vec<u8>,
        extended: bool,
        segs: Vec<(u32, Vec<u8>)>,
    }
    let mut plain = Vec::new();
    let mut joined: Vec<Joined> = Vec::new();
    for (name, value) in list {
        let Some(star) = name.iter().position(|&b| b == b'*') else {
            plain.push((name, value));
            continue;
        };
        let base = name[..star].to_vec();
        let rest = &name[star + 1..];
        let (idx, ext) = if rest.is_empty() {
            (0u32, true)
        } else {
            let (digits, ext) = match rest.strip_suffix(b"*") {
                Some(d) => (d, true),
                None => (rest, false),
            };
            match std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()) {
                Some(n) if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => (n, ext),
                _ => {
                    plain.push((name, value));
                    continue;
                }
            }
        };
        match joined.iter_mut().find(|j| j.name.eq_ignore_ascii_case(&base)) {
            Some(j) => {
                j.extended |= ext;
                j.segs.push((idx, value));
            }
            None => joined.push(Joined {
                name: base,
                extended: ext,
                segs: vec![(idx, value)],
            }),
        }
    }
    joined.sort_by_key(|j| j.name.to_ascii_lowercase());
    for mut j in joined {
        j.segs.sort_by_key(|s| s.0);
        let mut name = j.name;
        if j.extended {
            name.push(b'*');
        }
        let value = j.segs.into_iter().flat_map(|s| s.1).collect();
        plain.push((name, value));
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_after_subtype() {
        let t = content_type(b"multipart/mixed\tboundary=\"b\"");
        assert_eq!(t, TypedValue::default());
    }

    #[test]
    fn content_types() {
        let t = content_type(b"text/plain; charset=\"us-ascii\"");
        assert_eq!(t.main, b"text");
        assert_eq!(t.sub.as_deref(), Some(&b"plain"[..]));
        assert_eq!(t.params, Some(vec![(b"charset".to_vec(), b"us-ascii".to_vec())]));
        let t = content_type(b"application-x-gzip; name=x");
        assert_eq!(t.main, b"");
        assert_eq!(t.params, None);
        let t = content_type(b"a/b; x*0*=utf-8''%41; x*1=b; y=1");
        assert_eq!(
            t.params,
            Some(vec![
                (b"y".to_vec(), b"1".to_vec()),
                (b"x*".to_vec(), b"utf-8''%41b".to_vec())
            ])
        );
    }
}
