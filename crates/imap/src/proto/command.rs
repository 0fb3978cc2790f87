//! Client commands (RFC 9051 §6) and their parser.

use letterbox_mail::mailbox::{normalize_mailbox, FlagOp, SpecialUse};
use letterbox_mail::SectionSpec;

use super::parser::{Parser, SeqSet};
use super::ParseError;

/// RFC 9051 §6.3.11 STATUS data items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    /// RFC 3501 §6.3.10, rev1 only; always 0 here (no \Recent tracking).
    Recent,
    /// RFC 8474 §4.1.
    MailboxId,
    /// RFC 7162 §3.1.7.
    HighestModSeq,
    /// RFC 9208 §4.2: total size of the `\Deleted` messages.
    DeletedStorage,
    /// RFC 7889 §3: largest APPEND accepted.
    AppendLimit,
}

/// RFC 5258 §3.1 LIST selection options (with RFC 6154 SPECIAL-USE).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListSelect {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// RFC 5258 §3.2 LIST return options (with RFC 5819 STATUS, RFC 6154 SPECIAL-USE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<StatusItem>>,
}

/// RFC 9051 §6.4.5 FETCH data items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAtt {
    Envelope,
    Flags,
    InternalDate,
    Rfc822Size,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    Body,
    BodyStructure,
    Uid,
    /// `BODY[section]<partial>` / `BODY.PEEK[...]`.
    Section {
        peek: bool,
        /// The section text as the client wrote it (echoed in the response).
        text: String,
        spec: SectionSpec,
        partial: Option<(u32, u32)>,
    },
    /// `BINARY[part]<partial>` / `BINARY.PEEK[...]` (RFC 3516).
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize(Vec<u32>),
    /// RFC 8474 §5.1.
    EmailId,
    /// RFC 8474 §5.2.
    ThreadId,
    /// RFC 7162 §3.1.4.2.
    ModSeq,
    /// RFC 8970 §3 (`lazy`: the `(LAZY)` modifier).
    Preview {
        lazy: bool,
    },
}

/// RFC 7162 §3.2.5 `QRESYNC (uidvalidity modseq [known-uids [seq-match]])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uid_validity: u32,
    pub modseq: u64,
    pub known_uids: Option<SeqSet>,
    /// §3.2.5.2 (known sequence numbers, their UIDs); parsed and not
    /// needed: the store remembers every expunge.
    pub seq_match: Option<(SeqSet, SeqSet)>,
}

/// RFC 5256 §3 sort criteria, with RFC 5957 DISPLAYFROM/DISPLAYTO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// One criterion: a key, maybe REVERSEd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub key: SortKey,
    pub reverse: bool,
}

/// RFC 5256 §3 threading algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    /// INTERNALDATE to set (unix seconds).
    pub date: Option<i64>,
    pub message: Vec<u8>,
    /// Sent as a `literal8` (RFC 3516 §4.4): may carry `binary` parts.
    pub binary: bool,
}

/// A parsed client command; `uid` marks the `UID` forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    /// RFC 3501 §6.4.1 CHECK (rev1; every write is already durable).
    Check,
    Logout,
    StartTls,
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    Login {
        user: String,
        password: String,
    },
    Id(Vec<(String, Option<String>)>),
    Enable(Vec<String>),
    Select {
        mailbox: String,
        read_only: bool,
        /// RFC 7162 §3.1.8 `(CONDSTORE)`.
        condstore: bool,
        qresync: Option<Qresync>,
    },
    Create {
        mailbox: String,
        special_use: Option<SpecialUse>,
    },
    Delete(String),
    Rename {
        from: String,
        to: String,
    },
    Subscribe(String),
    Unsubscribe(String),
    List {
        reference: String,
        patterns: Vec<String>,
        select: ListSelect,
        ret: ListReturn,
        /// Any RFC 5258 syntax was used (selection/return options or a pattern list).
        extended: bool,
    },
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    /// RFC 9208 §4.1.1.
    GetQuota(String),
    /// RFC 9208 §4.1.2.
    GetQuotaRoot(String),
    /// RFC 9208 §4.1.3 (refused: limits are the administrator's).
    SetQuota(String),
    /// RFC 8437.
    Unauthenticate,
    /// RFC 4978 COMPRESS with its mechanism (upper-cased).
    Compress(String),
    Status {
        mailbox: String,
        items: Vec<StatusItem>,
    },
    /// RFC 9051 §6.3.12; several messages with RFC 3502 MULTIAPPEND.
    Append {
        mailbox: String,
        messages: Vec<AppendMessage>,
    },
    Idle,
    /// RFC 9051 §6.4.4 SEARCH / UID SEARCH.
    Search {
        uid: bool,
        /// RFC 4731 `RETURN (...)`; `None` asks for the classic response
        /// (an ESEARCH ALL for IMAP4rev2 clients).
        ret: Option<super::search::SearchReturn>,
        charset: Option<String>,
        key: super::SearchKey,
    },
    /// RFC 5256 SORT / UID SORT, with RFC 5267 ESORT `RETURN (...)`.
    Sort {
        uid: bool,
        ret: Option<super::search::SearchReturn>,
        criteria: Vec<SortCriterion>,
        charset: String,
        key: super::SearchKey,
    },
    /// RFC 5256 THREAD / UID THREAD.
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        key: super::SearchKey,
    },
    Close,
    Unselect,
    Expunge {
        uids: Option<SeqSet>,
    },
    Fetch {
        uid: bool,
        set: SeqSet,
        atts: Vec<FetchAtt>,
        /// RFC 7162 §3.1.4.1 CHANGEDSINCE modifier.
        changed_since: Option<u64>,
        /// RFC 7162 §3.2.6 VANISHED modifier (UID FETCH only).
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SeqSet,
        /// RFC 7162 §3.1.3 UNCHANGEDSINCE modifier.
        unchanged_since: Option<u64>,
        op: FlagOp,
        silent: bool,
        flags: Vec<String>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: String,
        is_move: bool,
    },
}

impl Command {
    /// Name for logs and error texts.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Check => "CHECK",
            Command::Logout => "LOGOUT",
            Command::StartTls => "STARTTLS",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::Login { .. } => "LOGIN",
            Command::Id(_) => "ID",
            Command::Enable(_) => "ENABLE",
            Command::Select { read_only: false, .. } => "SELECT",
            Command::Select { read_only: true, .. } => "EXAMINE",
            Command::Create { .. } => "CREATE",
            Command::Delete(_) => "DELETE",
            Command::Rename { .. } => "RENAME",
            Command::Subscribe(_) => "SUBSCRIBE",
            Command::Unsubscribe(_) => "UNSUBSCRIBE",
            Command::List { .. } => "LIST",
            Command::Lsub { .. } => "LSUB",
            Command::Namespace => "NAMESPACE",
            Command::GetQuota(_) => "GETQUOTA",
            Command::GetQuotaRoot(_) => "GETQUOTAROOT",
            Command::SetQuota(_) => "SETQUOTA",
            Command::Unauthenticate => "UNAUTHENTICATE",
            Command::Compress(_) => "COMPRESS",
            Command::Status { .. } => "STATUS",
            Command::Append { .. } => "APPEND",
            Command::Idle => "IDLE",
            Command::Close => "CLOSE",
            Command::Unselect => "UNSELECT",
            Command::Expunge { .. } => "EXPUNGE",
            Command::Search { .. } => "SEARCH",
            Command::Sort { .. } => "SORT",
            Command::Thread { .. } => "THREAD",
            Command::Fetch { .. } => "FETCH",
            Command::Store { .. } => "STORE",
            Command::Copy { is_move: false, .. } => "COPY",
            Command::Copy { is_move: true, .. } => "MOVE",
        }
    }
}

/// Parse the tag of a command, for error replies when the rest is bad.
pub fn parse_tag(line: &[u8]) -> Option<String> {
    let mut p = Parser::new(line);
    let tag = p.tag().ok()?.to_string();
    (p.peek() == Some(b' ')).then_some(tag)
}

/// Parse one complete command (literals inlined) into its tag and command.
pub fn parse_command(input: &[u8]) -> Result<(String, Command), ParseError> {
    let mut p = Parser::new(input);
    let tag = p.tag()?.to_string();
    p.sp()?;
    let name = p.atom()?.to_ascii_uppercase();
    let cmd = if name == "UID" {
        p.sp()?;
        let sub = p.atom()?.to_ascii_uppercase();
        p.sp()?;
        match sub.as_str() {
            "FETCH" => fetch(&mut p, true)?,
            "SEARCH" => search(&mut p, true)?,
            "SORT" => sort(&mut p, true)?,
            "THREAD" => thread(&mut p, true)?,
            "STORE" => store(&mut p, true)?,
            "COPY" => copy(&mut p, true, false)?,
            "MOVE" => copy(&mut p, true, true)?,
            "EXPUNGE" => Command::Expunge {
                uids: Some(p.seq_set()?),
            },
            _ => return Err(ParseError::Unknown(format!("UID {sub}"))),
        }
    } else {
        command(&mut p, &name)?
    };
    p.end()?;
    Ok((tag, cmd))
}

fn mailbox(p: &mut Parser<'_>) -> Result<String, ParseError> {
    Ok(normalize_mailbox(&p.astring()?))
}

fn command(p: &mut Parser<'_>, name: &str) -> Result<Command, ParseError> {
    Ok(match name {
        "CAPABILITY" => Command::Capability,
        "NOOP" => Command::Noop,
        "CHECK" => Command::Check,
        "LOGOUT" => Command::Logout,
        "STARTTLS" => Command::StartTls,
        "NAMESPACE" => Command::Namespace,
        "UNAUTHENTICATE" => Command::Unauthenticate,
        "COMPRESS" => {
            p.sp()?;
            Command::Compress(p.atom()?.to_ascii_uppercase())
        }
        "GETQUOTA" => {
            p.sp()?;
            Command::GetQuota(p.astring()?)
        }
        "GETQUOTAROOT" => {
            p.sp()?;
            Command::GetQuotaRoot(mailbox(p)?)
        }
        "SETQUOTA" => {
            p.sp()?;
            let root = p.astring()?;
            p.sp()?;
            // `"(" [setquota-resource *(SP setquota-resource)] ")"`.
            p.expect(b'(')?;
            while !p.eat(b')') {
                p.atom()?;
                p.sp()?;
                p.number64()?;
                p.eat(b' ');
            }
            Command::SetQuota(root)
        }
        "IDLE" => Command::Idle,
        "CLOSE" => Command::Close,
        "UNSELECT" => Command::Unselect,
        "EXPUNGE" => Command::Expunge { uids: None },
        "AUTHENTICATE" => {
            p.sp()?;
            let mechanism = p.atom()?.to_ascii_uppercase();
            // RFC 4959 SASL-IR: an initial response, `=` meaning empty.
            let initial = if p.eat(b' ') {
                Some(p.atom().map(|a| a.as_bytes().to_vec()).or_else(|_| {
                    if p.eat(b'=') {
                        Ok(b"=".to_vec())
                    } else {
                        Err(ParseError::Syntax("invalid initial response".into()))
                    }
                })?)
            } else {
                None
            };
            Command::Authenticate { mechanism, initial }
        }
        "LOGIN" => {
            p.sp()?;
            let user = p.astring()?;
            p.sp()?;
            let password = p.astring()?;
            Command::Login { user, password }
        }
        "ID" => {
            p.sp()?;
            let mut fields = Vec::new();
            if !p.keyword("NIL") {
                p.expect(b'(')?;
                while !p.eat(b')') {
                    if !fields.is_empty() {
                        p.sp()?;
                    }
                    let k = p.nstring()?.unwrap_or_default();
                    p.sp()?;
                    let v = p.nstring()?;
                    // RFC 2971 §3.3: at most 30 field-value pairs.
                    if fields.len() >= 30 {
                        return Err(ParseError::Syntax("too many ID fields".into()));
                    }
                    fields.push((k, v));
                }
            }
            Command::Id(fields)
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while p.eat(b' ') {
                caps.push(p.atom()?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return Err(ParseError::Syntax("ENABLE needs at least one capability".into()));
            }
            Command::Enable(caps)
        }
        "SELECT" | "EXAMINE" => {
            p.sp()?;
            let mailbox = mailbox(p)?;
            let (condstore, qresync) = select_params(p)?;
            Command::Select {
                mailbox,
                read_only: name == "EXAMINE",
                condstore,
                qresync,
            }
        }
        "CREATE" => {
            p.sp()?;
            let mailbox = mailbox(p)?;
            // RFC 6154 §3: CREATE name (USE (\Sent)).
            let special_use = if p.eat(b' ') {
                p.expect(b'(')?;
                if !p.keyword("USE") {
                    return Err(ParseError::Syntax("unknown CREATE parameter".into()));
                }
                p.sp()?;
                let flags = p.flag_list()?;
                p.expect(b')')?;
                match flags.as_slice() {
                    [] => None,
                    [one] => Some(SpecialUse::parse(one).ok_or(ParseError::UseAttr)?),
                    _ => return Err(ParseError::UseAttr),
                }
            } else {
                None
            };
            Command::Create { mailbox, special_use }
        }
        "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE" => {
            p.sp()?;
            let m = mailbox(p)?;
            match name {
                "DELETE" => Command::Delete(m),
                "SUBSCRIBE" => Command::Subscribe(m),
                _ => Command::Unsubscribe(m),
            }
        }
        "RENAME" => {
            p.sp()?;
            let from = mailbox(p)?;
            p.sp()?;
            let to = mailbox(p)?;
            Command::Rename { from, to }
        }
        "LIST" => {
            p.sp()?;
            let mut extended = false;
            let mut select = ListSelect::default();
            if p.eat(b'(') {
                extended = true;
                if !p.eat(b')') {
                    loop {
                        let opt = p.atom()?.to_ascii_uppercase();
                        match opt.as_str() {
                            "SUBSCRIBED" => select.subscribed = true,
                            "REMOTE" => select.remote = true,
                            "RECURSIVEMATCH" => select.recursive_match = true,
                            "SPECIAL-USE" => select.special_use = true,
                            _ => return Err(ParseError::Syntax(format!("unknown LIST selection option {opt}"))),
                        }
                        if p.eat(b')') {
                            break;
                        }
                        p.sp()?;
                    }
                }
                p.sp()?;
                // RFC 5258 §3.1: RECURSIVEMATCH needs an option it can modify.
                if select.recursive_match && !(select.subscribed || select.special_use) {
                    return Err(ParseError::Syntax(
                        "RECURSIVEMATCH needs another selection option".into(),
                    ));
                }
            }
            let reference = p.astring()?;
            p.sp()?;
            let mut patterns = Vec::new();
            if p.eat(b'(') {
                // RFC 5258 §3 pattern list.
                extended = true;
                loop {
                    patterns.push(p.list_mailbox()?);
                    if p.eat(b')') {
                        break;
                    }
                    p.sp()?;
                }
            } else {
                patterns.push(p.list_mailbox()?);
            }
            let mut ret = ListReturn::default();
            if p.eat(b' ') {
                if !p.keyword("RETURN") {
                    return Err(ParseError::Syntax("expected RETURN".into()));
                }
                extended = true;
                p.sp()?;
                p.expect(b'(')?;
                if !p.eat(b')') {
                    loop {
                        let opt = p.atom()?.to_ascii_uppercase();
                        match opt.as_str() {
                            "SUBSCRIBED" => ret.subscribed = true,
                            "CHILDREN" => ret.children = true,
                            "SPECIAL-USE" => ret.special_use = true,
                            "STATUS" => {
                                p.sp()?;
                                ret.status = Some(status_items(p)?);
                            }
                            _ => return Err(ParseError::Syntax(format!("unknown LIST return option {opt}"))),
                        }
                        if p.eat(b')') {
                            break;
                        }
                        p.sp()?;
                    }
                }
            }
            Command::List {
                reference,
                patterns,
                select,
                ret,
                extended,
            }
        }
        "LSUB" => {
            p.sp()?;
            let reference = p.astring()?;
            p.sp()?;
            let pattern = p.list_mailbox()?;
            Command::Lsub { reference, pattern }
        }
        "STATUS" => {
            p.sp()?;
            let mailbox = mailbox(p)?;
            p.sp()?;
            let items = status_items(p)?;
            Command::Status { mailbox, items }
        }
        "APPEND" => {
            p.sp()?;
            let mailbox = mailbox(p)?;
            p.sp()?;
            let mut messages = vec![append_message(p)?];
            // RFC 3502 §6: further messages follow, each with its own flags and date.
            while p.peek() == Some(b' ') {
                p.sp()?;
                messages.push(append_message(p)?);
            }
            Command::Append { mailbox, messages }
        }
        "FETCH" => {
            p.sp()?;
            fetch(p, false)?
        }
        "SEARCH" => {
            p.sp()?;
            search(p, false)?
        }
        "SORT" => {
            p.sp()?;
            sort(p, false)?
        }
        "THREAD" => {
            p.sp()?;
            thread(p, false)?
        }
        "STORE" => {
            p.sp()?;
            store(p, false)?
        }
        "COPY" | "MOVE" => {
            p.sp()?;
            copy(p, false, name == "MOVE")?
        }
        _ => return Err(ParseError::Unknown(name.to_string())),
    })
}

/// `[SP flag-list] [SP date-time] SP literal` of APPEND (RFC 9051 §9),
/// without the leading space.
fn append_message(p: &mut Parser<'_>) -> Result<AppendMessage, ParseError> {
    let flags = if p.peek() == Some(b'(') {
        let f = p.flag_list()?;
        p.sp()?;
        f
    } else {
        Vec::new()
    };
    let date = if p.peek() == Some(b'"') {
        let d = p.date_time()?;
        p.sp()?;
        Some(d)
    } else {
        None
    };
    // RFC 6855 §4 `UTF8 (literal8)`: a message with UTF-8 header fields.
    let (message, binary) = if p.keyword("UTF8") {
        p.sp()?;
        p.expect(b'(')?;
        let (m, _) = p.literal_bytes()?;
        p.expect(b')')?;
        (m, true)
    } else {
        p.literal_bytes()?
    };
    Ok(AppendMessage {
        flags,
        date,
        message: message.to_vec(),
        binary,
    })
}

/// `"(" status-att *(SP status-att) ")"` (RFC 9051 §6.3.11).
fn status_items(p: &mut Parser<'_>) -> Result<Vec<StatusItem>, ParseError> {
    p.expect(b'(')?;
    let mut items = Vec::new();
    loop {
        let a = p.atom()?.to_ascii_uppercase();
        items.push(match a.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "DELETED" => StatusItem::Deleted,
            "SIZE" => StatusItem::Size,
            "RECENT" => StatusItem::Recent,
            "MAILBOXID" => StatusItem::MailboxId,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "DELETED-STORAGE" => StatusItem::DeletedStorage,
            "APPENDLIMIT" => StatusItem::AppendLimit,
            _ => return Err(ParseError::Syntax(format!("unknown STATUS item {a}"))),
        });
        if p.eat(b')') {
            return Ok(items);
        }
        p.sp()?;
    }
}

fn search(p: &mut Parser<'_>, uid: bool) -> Result<Command, ParseError> {
    let ret = super::search::search_return(p)?;
    let (charset, key) = super::search::search_program(p)?;
    Ok(Command::Search { uid, ret, charset, key })
}

/// `[RETURN (...) SP] "(" sort-criterion *(SP sort-criterion) ")" SP
/// charset SP search-key...` (RFC 5256 §5, RFC 5267 §3).
fn sort(p: &mut Parser<'_>, uid: bool) -> Result<Command, ParseError> {
    let ret = super::search::search_return(p)?;
    p.expect(b'(')?;
    let mut criteria = Vec::new();
    loop {
        let mut name = p.atom()?.to_ascii_uppercase();
        let reverse = name == "REVERSE";
        if reverse {
            p.sp()?;
            name = p.atom()?.to_ascii_uppercase();
        }
        let key = match name.as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            _ => return Err(ParseError::Syntax(format!("unknown sort criterion {name}"))),
        };
        criteria.push(SortCriterion { key, reverse });
        if p.eat(b')') {
            break;
        }
        p.sp()?;
        if criteria.len() > 16 {
            return Err(ParseError::Syntax("too many sort criteria".into()));
        }
    }
    p.sp()?;
    let charset = p.astring()?;
    p.sp()?;
    let (_, key) = super::search::search_program(p)?;
    Ok(Command::Sort {
        uid,
        ret,
        criteria,
        charset,
        key,
    })
}

/// `algorithm SP charset SP search-key...` (RFC 5256 §5).
fn thread(p: &mut Parser<'_>, uid: bool) -> Result<Command, ParseError> {
    let name = p.atom()?.to_ascii_uppercase();
    let algorithm = match name.as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        _ => return Err(ParseError::Syntax(format!("unknown threading algorithm {name}"))),
    };
    p.sp()?;
    let charset = p.astring()?;
    p.sp()?;
    let (_, key) = super::search::search_program(p)?;
    Ok(Command::Thread {
        uid,
        algorithm,
        charset,
        key,
    })
}

fn fetch(p: &mut Parser<'_>, uid: bool) -> Result<Command, ParseError> {
    let set = p.seq_set()?;
    p.sp()?;
    let mut atts = Vec::new();
    if p.eat(b'(') {
        loop {
            atts.push(fetch_att(p)?);
            if p.eat(b')') {
                break;
            }
            p.sp()?;
        }
    } else if p.keyword("ALL") {
        atts = vec![
            FetchAtt::Flags,
            FetchAtt::InternalDate,
            FetchAtt::Rfc822Size,
            FetchAtt::Envelope,
        ];
    } else if p.keyword("FAST") {
        atts = vec![FetchAtt::Flags, FetchAtt::InternalDate, FetchAtt::Rfc822Size];
    } else if p.keyword("FULL") {
        atts = vec![
            FetchAtt::Flags,
            FetchAtt::InternalDate,
            FetchAtt::Rfc822Size,
            FetchAtt::Envelope,
            FetchAtt::Body,
        ];
    } else {
        atts.push(fetch_att(p)?);
    }
    let (mut changed_since, mut vanished) = (None, false);
    // RFC 4466 §2.4 fetch modifiers; RFC 7162 §3.1.4.1 and §3.2.6.
    if p.eat(b' ') {
        p.expect(b'(')?;
        loop {
            let m = p.atom()?.to_ascii_uppercase();
            match m.as_str() {
                "CHANGEDSINCE" => {
                    p.sp()?;
                    changed_since = Some(p.number64()?);
                }
                "VANISHED" if uid => vanished = true,
                _ => return Err(ParseError::Syntax(format!("unknown FETCH modifier {m}"))),
            }
            if p.eat(b')') {
                break;
            }
            p.sp()?;
        }
        if vanished && changed_since.is_none() {
            return Err(ParseError::Syntax("VANISHED needs CHANGEDSINCE".into()));
        }
    }
    Ok(Command::Fetch {
        uid,
        set,
        atts,
        changed_since,
        vanished,
    })
}

/// `[SP "(" select-param *(SP select-param) ")"]` of SELECT/EXAMINE
/// (RFC 4466 §2.1): CONDSTORE (RFC 7162 §3.1.8) and QRESYNC (§3.2.5).
fn select_params(p: &mut Parser<'_>) -> Result<(bool, Option<Qresync>), ParseError> {
    let (mut condstore, mut qresync) = (false, None);
    if !p.eat(b' ') {
        return Ok((condstore, qresync));
    }
    p.expect(b'(')?;
    loop {
        let name = p.atom()?.to_ascii_uppercase();
        match name.as_str() {
            "CONDSTORE" => condstore = true,
            "QRESYNC" => {
                p.sp()?;
                p.expect(b'(')?;
                let uid_validity = p.nz_number()?;
                p.sp()?;
                let modseq = p.number64()?;
                if modseq == 0 {
                    return Err(ParseError::Syntax("QRESYNC mod-sequence must be positive".into()));
                }
                let mut known_uids = None;
                let mut seq_match = None;
                if p.eat(b' ') {
                    if p.peek() != Some(b'(') {
                        known_uids = Some(p.seq_set()?);
                        p.eat(b' ');
                    }
                    if p.eat(b'(') {
                        let seqs = p.seq_set()?;
                        p.sp()?;
                        let uids = p.seq_set()?;
                        p.expect(b')')?;
                        seq_match = Some((seqs, uids));
                    }
                }
                p.expect(b')')?;
                qresync = Some(Qresync {
                    uid_validity,
                    modseq,
                    known_uids,
                    seq_match,
                });
            }
            _ => return Err(ParseError::Syntax(format!("unknown SELECT parameter {name}"))),
        }
        if p.eat(b')') {
            return Ok((condstore, qresync));
        }
        p.sp()?;
    }
}

fn partial(p: &mut Parser<'_>) -> Result<Option<(u32, u32)>, ParseError> {
    if !p.eat(b'<') {
        return Ok(None);
    }
    let start = p.number()?;
    // `<start>` alone (to the end) is not in the grammar, but Dovecot takes
    // it and clients and test suites rely on that.
    let len = if p.eat(b'.') { p.nz_number()? } else { u32::MAX };
    p.expect(b'>')?;
    Ok(Some((start, len)))
}

fn part_path(text: &str) -> Result<Vec<u32>, ParseError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split('.')
        .map(|n| n.parse::<u32>().ok().filter(|&n| n > 0))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ParseError::Syntax("invalid part number".into()))
}

fn fetch_att(p: &mut Parser<'_>) -> Result<FetchAtt, ParseError> {
    // Atoms stop at '[', which is an atom char; read the name by hand.
    let name = p.att_name()?.to_ascii_uppercase();
    Ok(match name.as_str() {
        "ENVELOPE" => FetchAtt::Envelope,
        "FLAGS" => FetchAtt::Flags,
        "INTERNALDATE" => FetchAtt::InternalDate,
        "RFC822.SIZE" => FetchAtt::Rfc822Size,
        "RFC822" => FetchAtt::Rfc822,
        "RFC822.HEADER" => FetchAtt::Rfc822Header,
        "RFC822.TEXT" => FetchAtt::Rfc822Text,
        "BODYSTRUCTURE" => FetchAtt::BodyStructure,
        "UID" => FetchAtt::Uid,
        "EMAILID" => FetchAtt::EmailId,
        "THREADID" => FetchAtt::ThreadId,
        "MODSEQ" => FetchAtt::ModSeq,
        "PREVIEW" => {
            // RFC 8970 §4: `PREVIEW (LAZY)`; a `(` after a lone PREVIEW
            // may also open the FETCH modifiers.
            let rest = p.rest();
            let lazy = rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b" (LAZY)");
            if lazy {
                p.sp()?;
                p.expect(b'(')?;
                p.keyword("LAZY");
                p.expect(b')')?;
            }
            FetchAtt::Preview { lazy }
        }
        "BODY" if p.peek() != Some(b'[') => FetchAtt::Body,
        "BODY" | "BODY.PEEK" => {
            p.expect(b'[')?;
            let text = p.until(b']')?.to_string();
            p.expect(b']')?;
            let spec = SectionSpec::parse(&text).map_err(|e| ParseError::Syntax(e.to_string()))?;
            FetchAtt::Section {
                peek: name == "BODY.PEEK",
                text,
                spec,
                partial: partial(p)?,
            }
        }
        "BINARY" | "BINARY.PEEK" | "BINARY.SIZE" => {
            p.expect(b'[')?;
            let part = part_path(p.until(b']')?)?;
            p.expect(b']')?;
            if name == "BINARY.SIZE" {
                FetchAtt::BinarySize(part)
            } else {
                FetchAtt::Binary {
                    peek: name == "BINARY.PEEK",
                    part,
                    partial: partial(p)?,
                }
            }
        }
        _ => return Err(ParseError::Syntax(format!("unknown FETCH item {name}"))),
    })
}

fn store(p: &mut Parser<'_>, uid: bool) -> Result<Command, ParseError> {
    let set = p.seq_set()?;
    p.sp()?;
    // RFC 4466 §2.5 store modifiers; RFC 7162 §3.1.3 UNCHANGEDSINCE.
    let mut unchanged_since = None;
    if p.eat(b'(') {
        loop {
            let m = p.atom()?.to_ascii_uppercase();
            if m != "UNCHANGEDSINCE" {
                return Err(ParseError::Syntax(format!("unknown STORE modifier {m}")));
            }
            p.sp()?;
            unchanged_since = Some(p.number64()?);
            if p.eat(b')') {
                break;
            }
            p.sp()?;
        }
        p.sp()?;
    }
    let item = p.atom()?.to_ascii_uppercase();
    let (op, rest) = match item.as_bytes().first() {
        Some(b'+') => (FlagOp::Add, &item[1..]),
        Some(b'-') => (FlagOp::Remove, &item[1..]),
        _ => (FlagOp::Replace, item.as_str()),
    };
    let silent = match rest {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return Err(ParseError::Syntax(format!("unknown STORE item {item}"))),
    };
    p.sp()?;
    let flags = p.store_flags()?;
    Ok(Command::Store {
        uid,
        set,
        unchanged_since,
        op,
        silent,
        flags,
    })
}

fn copy(p: &mut Parser<'_>, uid: bool, is_move: bool) -> Result<Command, ParseError> {
    let set = p.seq_set()?;
    p.sp()?;
    Ok(Command::Copy {
        uid,
        set,
        mailbox: mailbox(p)?,
        is_move,
    })
}
