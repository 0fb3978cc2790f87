//! Low-level IMAP tokens (RFC 9051 §4, §9): atoms, quoted strings,
//! literals, astrings, sequence sets and dates, read from one complete
//! command whose literals have been inlined by the framing layer as
//! `{n}\r\n` followed by the n bytes.

use super::ParseError;

/// RFC 9051 §9 `atom-specials` (plus CTL and 8-bit, which no atom has).
fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`.
fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// `list-char = ATOM-CHAR / list-wildcards / resp-specials`.
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// One element of a sequence set: a number or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    Num(u32),
    Star,
    /// Only inside [`SeqSet::saved`].
    Saved,
}

/// RFC 9051 §9 `sequence-set`: ranges, each inclusive and in either order.
/// `$` (RFC 5182, the saved search result) is a set of its own kind, see
/// [`SeqSet::is_saved`]; the session substitutes it before use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqSet(pub Vec<(SeqNum, SeqNum)>);

impl SeqSet {
    /// The `$` marker.
    pub fn saved() -> SeqSet {
        SeqSet(vec![(SeqNum::Saved, SeqNum::Saved)])
    }

    /// Whether this is `$`.
    pub fn is_saved(&self) -> bool {
        self.0.iter().any(|(a, b)| *a == SeqNum::Saved || *b == SeqNum::Saved)
    }

    /// A set naming exactly `numbers` (ascending or not), compacted into ranges.
    pub fn from_numbers(numbers: &[u32]) -> SeqSet {
        let mut v = numbers.to_vec();
        v.sort_unstable();
        v.dedup();
        let mut ranges: Vec<(SeqNum, SeqNum)> = Vec::new();
        for n in v {
            match ranges.last_mut() {
                Some((_, SeqNum::Num(hi))) if hi.checked_add(1) == Some(n) => *hi = n,
                _ => ranges.push((SeqNum::Num(n), SeqNum::Num(n))),
            }
        }
        SeqSet(ranges)
    }

    /// `lo:hi`, or the empty set when `hi < lo`.
    pub fn from_range(lo: u32, hi: u32) -> SeqSet {
        if hi < lo {
            return SeqSet(Vec::new());
        }
        SeqSet(vec![(SeqNum::Num(lo), SeqNum::Num(hi))])
    }

    /// RFC 9051 §9 `sequence-set` text, e.g. `1:3,7`.
    pub fn to_text(&self) -> String {
        let one = |s: SeqNum| match s {
            SeqNum::Num(x) => x.to_string(),
            SeqNum::Star => "*".into(),
            SeqNum::Saved => "$".into(),
        };
        self.0
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    one(a)
                } else {
                    format!("{}:{}", one(a), one(b))
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Does the set contain `n`, when `*` stands for `star`?
    pub fn contains(&self, n: u32, star: u32) -> bool {
        let v = |s: SeqNum| match s {
            SeqNum::Num(x) => x,
            SeqNum::Star => star,
            SeqNum::Saved => 0,
        };
        self.0.iter().any(|&(a, b)| {
            let (lo, hi) = (v(a).min(v(b)), v(a).max(v(b)));
            (lo..=hi).contains(&n)
        })
    }
}

/// A cursor over one command.
pub struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

type PResult<T> = Result<T, ParseError>;

fn err<T>(msg: impl Into<String>) -> PResult<T> {
    Err(ParseError::Syntax(msg.into()))
}

impl<'a> Parser<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Parser { b, pos: 0 }
    }

    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// The input not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// Require the end of the command.
    pub fn end(&self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            err("unexpected text at end of command")
        }
    }

    /// Consume `c` if it is next.
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, c: u8) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            err(format!("expected '{}'", char::from(c)))
        }
    }

    /// Exactly one space (RFC 9051 §9 `SP`).
    pub fn sp(&mut self) -> PResult<()> {
        self.expect(b' ')
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.b[start..self.pos]
    }

    /// An atom, as text.
    pub fn atom(&mut self) -> PResult<&'a str> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return err("expected an atom");
        }
        // Atom chars are ASCII.
        std::str::from_utf8(a).or_else(|_| err("atom is not ASCII"))
    }

    /// A FETCH item name: an atom that stops before `[` (`BODY[`).
    pub fn att_name(&mut self) -> PResult<&'a str> {
        let a = self.take_while(|b| is_atom_char(b) && b != b'[');
        if a.is_empty() {
            return err("expected a FETCH item");
        }
        std::str::from_utf8(a).or_else(|_| err("item is not ASCII"))
    }

    /// The command tag: astring chars except `+` (RFC 9051 §9 `tag`).
    pub fn tag(&mut self) -> PResult<&'a str> {
        let t = self.take_while(|b| is_astring_char(b) && b != b'+');
        if t.is_empty() {
            return err("missing or invalid tag");
        }
        std::str::from_utf8(t).or_else(|_| err("tag is not ASCII"))
    }

    /// A case-insensitive keyword.
    pub fn keyword(&mut self, kw: &str) -> bool {
        let end = self.pos + kw.len();
        let hit = self
            .b
            .get(self.pos..end)
            .is_some_and(|s| s.eq_ignore_ascii_case(kw.as_bytes()))
            && !self.b.get(end).copied().is_some_and(is_atom_char);
        if hit {
            self.pos = end;
        }
        hit
    }

    /// `number` (RFC 9051 §9): up to 2^32-1.
    pub fn number(&mut self) -> PResult<u32> {
        let d = self.take_while(|b| b.is_ascii_digit());
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or_else(|| err("expected a number"), Ok)
    }

    /// `number64` for sizes and modseqs.
    pub fn number64(&mut self) -> PResult<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or_else(|| err("expected a number"), Ok)
    }

    pub fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => err("zero is not a valid number here"),
            n => Ok(n),
        }
    }

    /// `quoted` (RFC 9051 §9): `\` escapes only `"` and `\`.
    fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n' | 0) => return err("unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return err("invalid escape in quoted string"),
                    }
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A literal as inlined by the framing layer: `{n}` or `{n+}`, CRLF, n bytes.
    fn literal(&mut self) -> PResult<&'a [u8]> {
        self.expect(b'{')?;
        let n = self.number64()?;
        self.eat(b'+');
        self.expect(b'}')?;
        if !(self.eat(b'\r') && self.eat(b'\n')) {
            return err("literal must end its line");
        }
        let n = usize::try_from(n).or_else(|_| err("literal too large"))?;
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return err("literal shorter than announced");
        };
        let data = &self.b[self.pos..end];
        self.pos = end;
        Ok(data)
    }

    /// `string = quoted / literal`, as bytes.
    pub fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal().map(<[u8]>::to_vec),
            _ => err("expected a string"),
        }
    }

    /// A literal's bytes without copying (APPEND message data), and whether
    /// it was an RFC 3516 `literal8` (`~{n}`), which may hold any octet.
    pub fn literal_bytes(&mut self) -> PResult<(&'a [u8], bool)> {
        let literal8 = self.peek() == Some(b'~');
        if literal8 {
            self.pos += 1;
        }
        self.literal().map(|data| (data, literal8))
    }

    /// `astring = 1*ASTRING-CHAR / string`, as bytes.
    pub fn astring_bytes(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    return err("expected an atom or string");
                }
                Ok(a.to_vec())
            }
        }
    }

    /// An astring that must be UTF-8 (RFC 9051 §4.3 allows UTF-8 strings).
    pub fn astring(&mut self) -> PResult<String> {
        String::from_utf8(self.astring_bytes()?).or_else(|_| err("string is not valid UTF-8"))
    }

    /// `nstring`: `NIL` or a string.
    pub fn nstring(&mut self) -> PResult<Option<String>> {
        if self.keyword("NIL") {
            return Ok(None);
        }
        String::from_utf8(self.string()?)
            .map(Some)
            .or_else(|_| err("string is not valid UTF-8"))
    }

    /// `list-mailbox` (RFC 9051 §9): may contain the wildcards `*` and `%`.
    pub fn list_mailbox(&mut self) -> PResult<String> {
        match self.peek() {
            Some(b'"' | b'{') => self.astring(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return err("expected a mailbox pattern");
                }
                String::from_utf8(a.to_vec()).or_else(|_| err("pattern is not valid UTF-8"))
            }
        }
    }

    /// `sequence-set` (RFC 9051 §9).
    pub fn seq_set(&mut self) -> PResult<SeqSet> {
        if self.eat(b'$') {
            return Ok(SeqSet::saved());
        }
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_num()?;
            let b = if self.eat(b':') { self.seq_num()? } else { a };
            ranges.push((a, b));
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SeqSet(ranges))
    }

    fn seq_num(&mut self) -> PResult<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Star)
        } else if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            match self.number() {
                Ok(0) | Err(_) => err("invalid sequence number"),
                Ok(n) => Ok(SeqNum::Num(n)),
            }
        } else {
            err("invalid sequence set")
        }
    }

    /// A flag: `\System` or a keyword atom (RFC 9051 §9 `flag`).
    pub fn flag(&mut self) -> PResult<String> {
        let system = self.eat(b'\\');
        let a = self.atom()?;
        Ok(if system { format!("\\{a}") } else { a.to_string() })
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"`.
    pub fn flag_list(&mut self) -> PResult<Vec<String>> {
        self.expect(b'(')?;
        let mut flags = Vec::new();
        if !self.eat(b')') {
            loop {
                flags.push(self.flag()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(flags)
    }

    /// Flags either parenthesised or as a bare space-separated list (STORE).
    pub fn store_flags(&mut self) -> PResult<Vec<String>> {
        if self.peek() == Some(b'(') {
            return self.flag_list();
        }
        let mut flags = vec![self.flag()?];
        while self.eat(b' ') {
            flags.push(self.flag()?);
        }
        Ok(flags)
    }

    /// Raw text up to (not including) the next byte in `stop`, outside
    /// quoted strings.
    pub fn until(&mut self, stop: u8) -> PResult<&'a str> {
        let start = self.pos;
        let mut quoted = false;
        while let Some(b) = self.peek() {
            match b {
                b'"' => quoted = !quoted,
                b'\\' if quoted => self.pos += 1,
                b'\r' | b'\n' => return err("unexpected line break"),
                _ if b == stop && !quoted => {
                    return std::str::from_utf8(&self.b[start..self.pos]).or_else(|_| err("not UTF-8"));
                }
                _ => {}
            }
            self.pos += 1;
        }
        err(format!("missing '{}'", char::from(stop)))
    }

    /// `date-time` (RFC 9051 §9): `"dd-MMM-yyyy hh:mm:ss +zzzz"`, as unix seconds.
    pub fn date_time(&mut self) -> PResult<i64> {
        let q = self.quoted()?;
        let s = std::str::from_utf8(&q).or_else(|_| err("invalid date-time"))?;
        parse_date_time(s).map_or_else(|| err("invalid date-time"), Ok)
    }
}

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of an RFC 5322 §3.3 `date-time` as written, ignoring its time
/// and zone (also the obsolete forms of §4.3: two- and three-digit years,
/// comments, no day name): unix seconds at 00:00 UTC of that day. This is
/// what SENTBEFORE/SENTON/SENTSINCE compare (RFC 9051 §6.4.4).
pub(crate) fn rfc5322_day(value: &[u8]) -> Option<i64> {
    // Drop comments (RFC 5322 §3.2.2), nested ones included.
    let mut text = String::with_capacity(value.len());
    let mut depth = 0usize;
    for &b in value {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => text.push(if b.is_ascii() { char::from(b) } else { ' ' }),
            _ => {}
        }
    }
    let mut words = text
        .split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter(|w| !w.is_empty());
    // Skip the day name (or anything else) up to the day of the month.
    let d: u32 = words
        .find(|w| w.len() <= 2 && w.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()?;
    let m = words.next()?;
    let m = MONTHS
        .iter()
        .position(|x| m.get(..3).is_some_and(|m| x.eq_ignore_ascii_case(m)))? as u32
        + 1;
    let y = words.next()?;
    if !(2..=4).contains(&y.len()) || !y.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = y.len();
    let y: i64 = y.parse().ok()?;
    // RFC 5322 §4.3: two-digit 00-49 are 2000-2049; other two- and
    // three-digit years add 1900.
    let y = match (digits, y) {
        (2, 0..=49) => y + 2000,
        (2 | 3, _) => y + 1900,
        _ => y,
    };
    (1..=31).contains(&d).then(|| days_from_civil(y, m, d) * 86_400)
}

pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.split('-');
    let (d, m, y) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || d.is_empty() || d.len() > 2 || y.len() != 4 {
        return None;
    }
    let d: u32 = d.parse().ok()?;
    let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(m))? as u32 + 1;
    let y: i64 = y.parse().ok()?;
    (1..=31).contains(&d).then(|| days_from_civil(y, m, d) * 86_400)
}

fn parse_date_time(s: &str) -> Option<i64> {
    // date-day-fixed may start with a space.
    let s = s.strip_prefix(' ').unwrap_or(s);
    let mut parts = s.split(' ');
    let (date, time, zone) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let day = parse_date(date)?;
    let mut t = time.split(':');
    let (h, mi, se) = (t.next()?, t.next()?, t.next()?);
    if t.next().is_some() || h.len() != 2 || mi.len() != 2 || se.len() != 2 {
        return None;
    }
    let (h, mi, se): (i64, i64, i64) = (h.parse().ok()?, mi.parse().ok()?, se.parse().ok()?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let z = zone.get(1..)?;
    if z.len() != 4 || !z.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let zh: i64 = z[..2].parse().ok()?;
    let zm: i64 = z[2..].parse().ok()?;
    Some(day + h * 3600 + mi * 60 + se - sign * (zh * 3600 + zm * 60))
}
