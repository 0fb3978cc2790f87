//! Command parsing, RFC 5321 §4.1 with the ESMTP parameters of RFC 1870
//! (SIZE), 6152 (BODY=8BITMIME), 3030 (BDAT, BODY=BINARYMIME), 6531
//! (SMTPUTF8), 3461 (DSN: RET, ENVID, NOTIFY, ORCPT) and 4954 (AUTH).

/// RFC 5321 §4.5.3.1.1: local part at most 64 octets.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2: domain at most 255 octets.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 §4.5.3.1.3: path at most 256 octets including the brackets.
pub const MAX_PATH: usize = 256;
/// RFC 3461 §4.2 / §4.4: ENVID and ORCPT at most 100 / 500 octets.
pub const MAX_ENVID: usize = 100;
pub const MAX_ORCPT: usize = 500;

/// A mailbox `local@domain` (the part inside `<>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Local part as sent (quoted local parts keep their quotes).
    pub local: String,
    /// Domain or address literal (`[192.0.2.1]`).
    pub domain: String,
}

impl Path {
    /// `local@domain`.
    pub fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }

    /// Whether the path needs SMTPUTF8 (RFC 6531 §3.3).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.is_ascii()
    }
}

/// Body type of MAIL FROM (RFC 6152, RFC 3030).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyType {
    #[default]
    SevenBit,
    EightBitMime,
    BinaryMime,
}

/// DSN RET (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Headers,
}

impl Ret {
    /// The keyword as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Headers => "HDRS",
        }
    }
}

/// Parameters of MAIL FROM.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: BodyType,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// ENVID, still xtext-encoded (RFC 3461 §4.4).
    pub envid: Option<String>,
    /// AUTH= (RFC 4954 §5), xtext-encoded; `<>` kept as is.
    pub auth: Option<String>,
    /// REQUIRETLS (RFC 8689).
    pub requiretls: bool,
}

/// DSN NOTIFY (RFC 3461 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

/// Parameters of RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    /// ORCPT as `addr-type;xtext` (RFC 3461 §4.2).
    pub orcpt: Option<String>,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// `None` is the null reverse-path `<>`.
    Mail(Option<Path>, MailParams),
    Rcpt(Path, RcptParams),
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Help,
    Vrfy(String),
    Expn(String),
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
}

impl Command {
    /// The verb, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ehlo(_) => "EHLO",
            Command::Helo(_) => "HELO",
            Command::Mail(..) => "MAIL",
            Command::Rcpt(..) => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Help => "HELP",
            Command::Vrfy(_) => "VRFY",
            Command::Expn(_) => "EXPN",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
        }
    }
}

/// Why a command line was refused; each maps to one reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// RFC 5321 §4.2.4: 500 unrecognised command.
    #[error("command not recognized")]
    Unknown,
    /// 501: syntax error in parameters or arguments.
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// RFC 5321 §4.5.3.1: 501 path too long (5.1.3 bad address syntax).
    #[error("address too long")]
    TooLong,
    /// RFC 1869 / 5321 §4.1.1.11: 555 unrecognised MAIL/RCPT parameter.
    #[error("parameter not recognized: {0}")]
    UnknownParameter(String),
}

fn split_verb(line: &str) -> (&str, &str) {
    match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    }
}

/// Parse one command line (without its line ending).
pub fn parse_command(line: &str) -> Result<Command, CommandError> {
    let (verb, rest) = split_verb(line);
    let verb = verb.to_ascii_uppercase();
    let arg = rest.trim();
    let no_arg = |c: Command| {
        if arg.is_empty() {
            Ok(c)
        } else {
            Err(CommandError::Syntax("no parameters allowed"))
        }
    };
    match verb.as_str() {
        "EHLO" | "HELO" => {
            if arg.is_empty() || arg.contains(' ') && verb == "HELO" {
                return Err(CommandError::Syntax("a domain name is required"));
            }
            let domain = arg.split(' ').next().unwrap_or_default().to_string();
            if domain.len() > MAX_DOMAIN || domain.chars().any(|c| c.is_control()) {
                return Err(CommandError::Syntax("invalid domain"));
            }
            Ok(if verb == "EHLO" {
                Command::Ehlo(domain)
            } else {
                Command::Helo(domain)
            })
        }
        "MAIL" => parse_mail(rest),
        "RCPT" => parse_rcpt(rest),
        "DATA" => no_arg(Command::Data),
        "RSET" => no_arg(Command::Rset),
        "QUIT" => no_arg(Command::Quit),
        "STARTTLS" => no_arg(Command::StartTls),
        // RFC 5321 §4.1.1.9 / §4.1.1.8: NOOP and HELP may carry a string.
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" if !arg.is_empty() => Ok(Command::Vrfy(arg.to_string())),
        "EXPN" if !arg.is_empty() => Ok(Command::Expn(arg.to_string())),
        "VRFY" | "EXPN" => Err(CommandError::Syntax("an argument is required")),
        "BDAT" => parse_bdat(arg),
        "AUTH" => {
            let mut it = arg.split(' ').filter(|s| !s.is_empty());
            let mechanism = it
                .next()
                .ok_or(CommandError::Syntax("a mechanism is required"))?
                .to_ascii_uppercase();
            let initial = it.next().map(str::to_string);
            if it.next().is_some() {
                return Err(CommandError::Syntax("too many arguments"));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        _ => Err(CommandError::Unknown),
    }
}

/// `BDAT SP chunk-size [ SP end-marker ]`, RFC 3030 §2.
fn parse_bdat(arg: &str) -> Result<Command, CommandError> {
    let mut it = arg.split(' ').filter(|s| !s.is_empty());
    let size = it
        .next()
        .filter(|s| s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(CommandError::Syntax("BDAT needs a chunk size"))?;
    let last = match it.next() {
        None => false,
        Some(m) if m.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(CommandError::Syntax("expected LAST")),
    };
    if it.next().is_some() {
        return Err(CommandError::Syntax("too many arguments"));
    }
    Ok(Command::Bdat { size, last })
}

/// Strip `FROM:`/`TO:` (case-insensitive), tolerating a space after the colon
/// as many clients send one.
fn strip_keyword<'a>(rest: &'a str, kw: &str) -> Result<&'a str, CommandError> {
    let head = rest.get(..kw.len()).ok_or(CommandError::Syntax("missing keyword"))?;
    if !head.eq_ignore_ascii_case(kw) {
        return Err(CommandError::Syntax("missing keyword"));
    }
    Ok(rest[kw.len()..].trim_start())
}

/// Split `<path> params...` into the path text (without brackets) and params.
fn split_path(s: &str) -> Result<(&str, &str), CommandError> {
    let s = s
        .strip_prefix('<')
        .ok_or(CommandError::Syntax("the address must be in angle brackets"))?;
    // Quoted local parts may contain '>', so scan respecting quotes.
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '>' if !in_quotes => {
                let params = &s[i + 1..];
                if !params.is_empty() && !params.starts_with(' ') {
                    return Err(CommandError::Syntax("expected a space after the address"));
                }
                return Ok((&s[..i], params.trim()));
            }
            _ => {}
        }
    }
    Err(CommandError::Syntax("unterminated address"))
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

/// `Mailbox = Local-part "@" ( Domain / address-literal )`, RFC 5321 §4.1.2;
/// a source route (`@a,@b:`) is accepted and ignored (§C).
fn parse_mailbox(s: &str) -> Result<Path, CommandError> {
    if s.len() + 2 > MAX_PATH {
        return Err(CommandError::TooLong);
    }
    let s = match s.strip_prefix('@') {
        Some(route) => route
            .split_once(':')
            .map(|(_, m)| m)
            .ok_or(CommandError::Syntax("bad source route"))?,
        None => s,
    };
    let at = s.rfind('@').ok_or(CommandError::Syntax("the address needs a domain"))?;
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if local.is_empty() || local.len() > MAX_LOCAL_PART {
        return Err(if local.is_empty() {
            CommandError::Syntax("empty local part")
        } else {
            CommandError::TooLong
        });
    }
    let local_ok = if local.starts_with('"') {
        local.len() >= 2 && local.ends_with('"') && !local.chars().any(|c| c.is_control())
    } else {
        local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
    };
    if !local_ok {
        return Err(CommandError::Syntax("invalid local part"));
    }
    if domain.is_empty() || domain.len() > MAX_DOMAIN {
        return Err(CommandError::Syntax("invalid domain"));
    }
    let domain_ok = if domain.starts_with('[') {
        domain.ends_with(']') && !domain.chars().any(|c| c.is_control() || c == ' ')
    } else {
        domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
    };
    if !domain_ok {
        return Err(CommandError::Syntax("invalid domain"));
    }
    Ok(Path {
        local: local.to_string(),
        domain: domain.to_string(),
    })
}

/// `esmtp-param = esmtp-keyword ["=" esmtp-value]`, RFC 5321 §4.1.2.
fn params(s: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    s.split(' ').filter(|p| !p.is_empty()).map(|p| match p.split_once('=') {
        Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
        None => (p.to_ascii_uppercase(), None),
    })
}

/// RFC 3461 §4: xtext = *( xchar / hexchar ); we check shape, not decode.
fn valid_xtext(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let ok = b
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c)));
                if !ok {
                    return false;
                }
                i += 3;
            }
            c if (b'!'..=b'~').contains(&c) && c != b'=' => i += 1,
            _ => return false,
        }
    }
    true
}

/// RFC 5321 §4.1.1.11 gives each parameter once; a second SIZE or RET
/// would leave which one counts to the implementation.
fn once(seen: &mut Vec<String>, key: &str) -> Result<(), CommandError> {
    if seen.iter().any(|k| k == key) {
        return Err(CommandError::Syntax("duplicate parameter"));
    }
    seen.push(key.to_string());
    Ok(())
}

/// RFC 3461 §4.2: `addr-type ";" xtext`, addr-type an atom.
fn valid_orcpt(v: &str) -> bool {
    let Some((kind, addr)) = v.split_once(';') else {
        return false;
    };
    !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
        && !addr.is_empty()
        && valid_xtext(addr)
}

fn parse_mail(rest: &str) -> Result<Command, CommandError> {
    let s = strip_keyword(rest, "FROM:")?;
    let (path, ps) = split_path(s)?;
    let path = if path.is_empty() {
        None
    } else {
        Some(parse_mailbox(path)?)
    };
    let mut p = MailParams::default();
    let mut seen = Vec::new();
    for (k, v) in params(ps) {
        once(&mut seen, &k)?;
        match (k.as_str(), v) {
            ("SIZE", Some(v)) => {
                p.size = Some(v.parse().map_err(|_| CommandError::Syntax("SIZE must be a number"))?);
            }
            ("BODY", Some(v)) => {
                p.body = match v.to_ascii_uppercase().as_str() {
                    "7BIT" => BodyType::SevenBit,
                    "8BITMIME" => BodyType::EightBitMime,
                    "BINARYMIME" => BodyType::BinaryMime,
                    _ => return Err(CommandError::Syntax("BODY must be 7BIT, 8BITMIME or BINARYMIME")),
                }
            }
            ("SMTPUTF8", None) => p.smtputf8 = true,
            ("REQUIRETLS", None) => p.requiretls = true,
            ("RET", Some(v)) => {
                p.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Headers,
                    _ => return Err(CommandError::Syntax("RET must be FULL or HDRS")),
                })
            }
            ("ENVID", Some(v)) if v.len() <= MAX_ENVID && valid_xtext(v) => p.envid = Some(v.to_string()),
            ("ENVID", _) => return Err(CommandError::Syntax("invalid ENVID")),
            ("AUTH", Some(v)) if v == "<>" || valid_xtext(v) => p.auth = Some(v.to_string()),
            ("AUTH", _) => return Err(CommandError::Syntax("invalid AUTH parameter")),
            _ => return Err(CommandError::UnknownParameter(k)),
        }
    }
    if !p.smtputf8 && path.as_ref().is_some_and(Path::is_utf8) {
        return Err(CommandError::Syntax("UTF-8 address without SMTPUTF8"));
    }
    Ok(Command::Mail(path, p))
}

fn parse_rcpt(rest: &str) -> Result<Command, CommandError> {
    let s = strip_keyword(rest, "TO:")?;
    let (path, ps) = split_path(s)?;
    // RFC 5321 §4.1.1.3: "<Postmaster>" without a domain must be accepted.
    let path = if path.eq_ignore_ascii_case("postmaster") {
        Path {
            local: "postmaster".into(),
            domain: String::new(),
        }
    } else {
        parse_mailbox(path)?
    };
    let mut p = RcptParams::default();
    let mut seen = Vec::new();
    for (k, v) in params(ps) {
        once(&mut seen, &k)?;
        match (k.as_str(), v) {
            ("NOTIFY", Some(v)) => {
                let mut n = Notify::default();
                for item in v.split(',') {
                    match item.to_ascii_uppercase().as_str() {
                        "NEVER" => n.never = true,
                        "SUCCESS" => n.success = true,
                        "FAILURE" => n.failure = true,
                        "DELAY" => n.delay = true,
                        _ => return Err(CommandError::Syntax("invalid NOTIFY value")),
                    }
                }
                // RFC 3461 §4.1: NEVER excludes every other value.
                if n.never && (n.success || n.failure || n.delay) {
                    return Err(CommandError::Syntax("NOTIFY=NEVER cannot be combined"));
                }
                p.notify = Some(n);
            }
            ("ORCPT", Some(v)) if v.len() <= MAX_ORCPT && valid_orcpt(v) => p.orcpt = Some(v.to_string()),
            ("ORCPT", _) => return Err(CommandError::Syntax("invalid ORCPT")),
            _ => return Err(CommandError::UnknownParameter(k)),
        }
    }
    Ok(Command::Rcpt(path, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 18: parameters are given once, ORCPT is `type;xtext`.
    #[test]
    fn duplicate_parameters_and_bad_orcpt_are_refused() {
        for bad in [
            "MAIL FROM:<a@b.example> SIZE=10 SIZE=20",
            "MAIL FROM:<a@b.example> RET=FULL RET=HDRS",
            "RCPT TO:<c@d.example> NOTIFY=FAILURE NOTIFY=SUCCESS",
            "RCPT TO:<c@d.example> ORCPT=;c@d.example",
            "RCPT TO:<c@d.example> ORCPT=rfc822;",
            "RCPT TO:<c@d.example> ORCPT=rfc 822;c@d.example",
        ] {
            assert!(parse_command(bad).is_err(), "{bad}");
        }
        assert!(parse_command("RCPT TO:<c@d.example> ORCPT=rfc822;c+2Bx@d.example NOTIFY=NEVER").is_ok());
    }

    fn path(l: &str, d: &str) -> Path {
        Path {
            local: l.into(),
            domain: d.into(),
        }
    }

    #[test]
    fn greetings() {
        assert_eq!(
            parse_command("EHLO client.test"),
            Ok(Command::Ehlo("client.test".into()))
        );
        assert_eq!(
            parse_command("helo [192.0.2.1]"),
            Ok(Command::Helo("[192.0.2.1]".into()))
        );
        assert!(matches!(parse_command("EHLO"), Err(CommandError::Syntax(_))));
    }

    #[test]
    fn mail_from_with_parameters() {
        let c = parse_command("MAIL FROM:<a@b.test> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1").unwrap();
        let Command::Mail(Some(p), params) = c else { panic!() };
        assert_eq!(p, path("a", "b.test"));
        assert_eq!(params.size, Some(1000));
        assert_eq!(params.body, BodyType::EightBitMime);
        assert_eq!(params.ret, Some(Ret::Headers));
        assert_eq!(params.envid.as_deref(), Some("QQ+2B1"));
        // Null reverse path, lower-case keyword, space after the colon.
        assert!(matches!(parse_command("mail from: <>"), Ok(Command::Mail(None, _))));
    }

    #[test]
    fn bad_mail_from() {
        assert!(matches!(
            parse_command("MAIL FROM:a@b.test"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            parse_command("MAIL FROM:<a@b.test> FOO=1"),
            Err(CommandError::UnknownParameter(_))
        ));
        assert!(matches!(
            parse_command("MAIL FROM:<a@b.test> SIZE=x"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            parse_command("MAIL FROM:<@b.test>"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(parse_command("MAIL FROM:<a@>"), Err(CommandError::Syntax(_))));
        assert!(matches!(
            parse_command("MAIL FROM:<a@b.test>SIZE=1"),
            Err(CommandError::Syntax(_))
        ));
        let long = format!("MAIL FROM:<{}@b.test>", "a".repeat(65));
        assert_eq!(parse_command(&long), Err(CommandError::TooLong));
        assert!(matches!(
            parse_command("MAIL FROM:<j\u{f6}rg@b.test>"),
            Err(CommandError::Syntax(_))
        ));
        assert!(parse_command("MAIL FROM:<j\u{f6}rg@b.test> SMTPUTF8").is_ok());
    }

    #[test]
    fn rcpt_to() {
        let c = parse_command("RCPT TO:<\"odd >name\"@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@y").unwrap();
        let Command::Rcpt(p, params) = c else { panic!() };
        assert_eq!(p.local, "\"odd >name\"");
        let n = params.notify.unwrap();
        assert!(n.success && n.failure && !n.delay);
        assert_eq!(params.orcpt.as_deref(), Some("rfc822;x@y"));
        assert!(matches!(parse_command("RCPT TO:<Postmaster>"), Ok(Command::Rcpt(_, _))));
        assert!(matches!(
            parse_command("RCPT TO:<a@b.test> NOTIFY=NEVER,DELAY"),
            Err(CommandError::Syntax(_))
        ));
        let c = parse_command("RCPT TO:<@relay.test:a@b.test>").unwrap();
        assert!(matches!(c, Command::Rcpt(p, _) if p == path("a", "b.test")));
    }

    #[test]
    fn simple_verbs() {
        assert_eq!(parse_command("DATA"), Ok(Command::Data));
        assert!(parse_command("DATA now").is_err());
        assert_eq!(parse_command("noop anything"), Ok(Command::Noop));
        assert_eq!(
            parse_command("BDAT 100 LAST"),
            Ok(Command::Bdat { size: 100, last: true })
        );
        assert!(parse_command("BDAT -1").is_err());
        assert!(parse_command("BDAT 99999999999999999999999").is_err());
        assert_eq!(
            parse_command("AUTH plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(parse_command("XYZZY"), Err(CommandError::Unknown));
        assert_eq!(parse_command(""), Err(CommandError::Unknown));
    }
}
