//! SEARCH keys, RFC 9051 §6.4.4 (`search-key` in §9).

use super::parser::{parse_date, Parser};
use super::{ParseError, SeqSet};

/// Deepest nesting of NOT/OR/parentheses accepted.
const MAX_DEPTH: usize = 64;
/// Most keys in one search.
const MAX_KEYS: usize = 1000;

/// One search criterion. Dates are unix seconds at 00:00 UTC of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    /// Has this flag (system flag or keyword).
    Flag(String),
    /// Lacks this flag.
    NoFlag(String),
    New,
    Old,
    Recent,
    Bcc(String),
    Cc(String),
    From(String),
    To(String),
    Subject(String),
    Body(String),
    Text(String),
    Header(String, String),
    Before(i64),
    On(i64),
    Since(i64),
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Larger(u64),
    Smaller(u64),
    Uid(SeqSet),
    Seq(SeqSet),
    /// RFC 8474 §6: the objectid as given.
    EmailId(String),
    ThreadId(String),
    /// RFC 7162 §3.1.5: mod-sequence at least this (entry name and type
    /// are ignored: one mod-sequence per message).
    ModSeq(u64),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    And(Vec<SearchKey>),
}

fn syntax<T>(msg: &str) -> Result<T, ParseError> {
    Err(ParseError::Syntax(msg.to_string()))
}

/// `date = date-text / DQUOTE date-text DQUOTE`.
fn date(p: &mut Parser<'_>) -> Result<i64, ParseError> {
    let s = p.astring()?;
    parse_date(&s).map_or_else(|| syntax("invalid date"), Ok)
}

fn string(p: &mut Parser<'_>) -> Result<String, ParseError> {
    let b = p.astring_bytes()?;
    String::from_utf8(b).or_else(|_| syntax("search string is not UTF-8"))
}

/// RFC 4731 §3 / RFC 9051 §6.4.4 result options (`RETURN (...)`), with
/// RFC 5182 SAVE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    pub save: bool,
}

/// `RETURN (opts)`; `RETURN ()` means ALL (RFC 4731 §3.1).
pub fn search_return(p: &mut Parser<'_>) -> Result<Option<SearchReturn>, ParseError> {
    if !p.keyword("RETURN") {
        return Ok(None);
    }
    p.sp()?;
    p.expect(b'(')?;
    let mut r = SearchReturn::default();
    if !p.eat(b')') {
        loop {
            let opt = p.atom()?.to_ascii_uppercase();
            match opt.as_str() {
                "MIN" => r.min = true,
                "MAX" => r.max = true,
                "ALL" => r.all = true,
                "COUNT" => r.count = true,
                "SAVE" => r.save = true,
                _ => return syntax(&format!("unknown search return option {opt}")),
            }
            if p.eat(b')') {
                break;
            }
            p.sp()?;
        }
    }
    if !(r.min || r.max || r.all || r.count || r.save) {
        r.all = true;
    }
    p.sp()?;
    Ok(Some(r))
}

/// Parse `search-key *(SP search-key)` up to the end of the command, as one
/// key (an implicit AND). Also returns the CHARSET if one was given.
pub fn search_program(p: &mut Parser<'_>) -> Result<(Option<String>, SearchKey), ParseError> {
    let mut charset = None;
    if p.keyword("CHARSET") {
        p.sp()?;
        charset = Some(p.astring()?);
        p.sp()?;
    }
    let mut keys = Vec::new();
    let mut count = 0;
    loop {
        keys.push(key(p, 0, &mut count)?);
        if p.at_end() {
            break;
        }
        p.sp()?;
    }
    Ok((
        charset,
        if keys.len() == 1 {
            keys.remove(0)
        } else {
            SearchKey::And(keys)
        },
    ))
}

fn key(p: &mut Parser<'_>, depth: usize, count: &mut usize) -> Result<SearchKey, ParseError> {
    *count += 1;
    if depth > MAX_DEPTH || *count > MAX_KEYS {
        return syntax("search program too complex");
    }
    if p.eat(b'(') {
        let mut keys = Vec::new();
        loop {
            keys.push(key(p, depth + 1, count)?);
            if p.eat(b')') {
                break;
            }
            p.sp()?;
        }
        return Ok(if keys.len() == 1 {
            keys.remove(0)
        } else {
            SearchKey::And(keys)
        });
    }
    if p.peek().is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$') {
        return Ok(SearchKey::Seq(p.seq_set()?));
    }
    let name = p.atom()?.to_ascii_uppercase();
    let flag = |f: &str| Ok(SearchKey::Flag(f.to_string()));
    let noflag = |f: &str| Ok(SearchKey::NoFlag(f.to_string()));
    let arg = |p: &mut Parser<'_>| -> Result<String, ParseError> {
        p.sp()?;
        string(p)
    };
    match name.as_str() {
        "ALL" => Ok(SearchKey::All),
        "ANSWERED" => flag("\\Answered"),
        "DELETED" => flag("\\Deleted"),
        "DRAFT" => flag("\\Draft"),
        "FLAGGED" => flag("\\Flagged"),
        "SEEN" => flag("\\Seen"),
        "UNANSWERED" => noflag("\\Answered"),
        "UNDELETED" => noflag("\\Deleted"),
        "UNDRAFT" => noflag("\\Draft"),
        "UNFLAGGED" => noflag("\\Flagged"),
        "UNSEEN" => noflag("\\Seen"),
        "NEW" => Ok(SearchKey::New),
        "OLD" => Ok(SearchKey::Old),
        "RECENT" => Ok(SearchKey::Recent),
        "KEYWORD" => {
            p.sp()?;
            Ok(SearchKey::Flag(p.atom()?.to_string()))
        }
        "UNKEYWORD" => {
            p.sp()?;
            Ok(SearchKey::NoFlag(p.atom()?.to_string()))
        }
        "EMAILID" => {
            p.sp()?;
            Ok(SearchKey::EmailId(p.atom()?.to_string()))
        }
        "THREADID" => {
            p.sp()?;
            Ok(SearchKey::ThreadId(p.atom()?.to_string()))
        }
        "BCC" => Ok(SearchKey::Bcc(arg(p)?)),
        "CC" => Ok(SearchKey::Cc(arg(p)?)),
        "FROM" => Ok(SearchKey::From(arg(p)?)),
        "TO" => Ok(SearchKey::To(arg(p)?)),
        "SUBJECT" => Ok(SearchKey::Subject(arg(p)?)),
        "BODY" => Ok(SearchKey::Body(arg(p)?)),
        "TEXT" => Ok(SearchKey::Text(arg(p)?)),
        "HEADER" => {
            let field = arg(p)?;
            let value = arg(p)?;
            Ok(SearchKey::Header(field, value))
        }
        "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
            p.sp()?;
            let d = date(p)?;
            Ok(match name.as_str() {
                "BEFORE" => SearchKey::Before(d),
                "ON" => SearchKey::On(d),
                "SINCE" => SearchKey::Since(d),
                "SENTBEFORE" => SearchKey::SentBefore(d),
                "SENTON" => SearchKey::SentOn(d),
                _ => SearchKey::SentSince(d),
            })
        }
        "LARGER" | "SMALLER" => {
            p.sp()?;
            let n = p.number64()?;
            Ok(if name == "LARGER" {
                SearchKey::Larger(n)
            } else {
                SearchKey::Smaller(n)
            })
        }
        "UID" => {
            p.sp()?;
            Ok(SearchKey::Uid(p.seq_set()?))
        }
        "MODSEQ" => {
            p.sp()?;
            // `[entry-name SP entry-type-req SP]`: the name is a quoted string.
            if p.peek() == Some(b'"') {
                p.astring()?;
                p.sp()?;
                let kind = p.atom()?.to_ascii_lowercase();
                if !matches!(kind.as_str(), "priv" | "shared" | "all") {
                    return syntax("MODSEQ entry type must be priv, shared or all");
                }
                p.sp()?;
            }
            Ok(SearchKey::ModSeq(p.number64()?))
        }
        "NOT" => {
            p.sp()?;
            Ok(SearchKey::Not(Box::new(key(p, depth + 1, count)?)))
        }
        "OR" => {
            p.sp()?;
            let a = key(p, depth + 1, count)?;
            p.sp()?;
            let b = key(p, depth + 1, count)?;
            Ok(SearchKey::Or(Box::new(a), Box::new(b)))
        }
        _ => syntax(&format!("unknown search key {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<(Option<String>, SearchKey), ParseError> {
        let mut p = Parser::new(s.as_bytes());
        let r = search_program(&mut p)?;
        p.end()?;
        Ok(r)
    }

    #[test]
    fn keys() {
        assert_eq!(parse("ALL").unwrap().1, SearchKey::All);
        assert_eq!(parse("unseen").unwrap().1, SearchKey::NoFlag("\\Seen".into()));
        let (cs, k) = parse("CHARSET UTF-8 FROM \"Smith\" SINCE 1-Feb-1994 NOT TO x").unwrap();
        assert_eq!(cs.as_deref(), Some("UTF-8"));
        assert_eq!(
            k,
            SearchKey::And(vec![
                SearchKey::From("Smith".into()),
                SearchKey::Since(760_060_800),
                SearchKey::Not(Box::new(SearchKey::To("x".into()))),
            ])
        );
        assert!(matches!(parse("OR SEEN (FLAGGED 1:3)").unwrap().1, SearchKey::Or(_, _)));
        assert!(
            matches!(parse("HEADER X-Foo \"\"").unwrap().1, SearchKey::Header(f, v) if f == "X-Foo" && v.is_empty())
        );
        assert!(matches!(parse("2,4:*").unwrap().1, SearchKey::Seq(_)));
        assert!(matches!(parse("UID 1:5 LARGER 100").unwrap().1, SearchKey::And(_)));
        // RFC 7162 §3.1.5 examples 15 and 16.
        assert_eq!(
            parse("MODSEQ \"/flags/\\\\draft\" all 620162338").unwrap().1,
            SearchKey::ModSeq(620_162_338)
        );
        assert!(matches!(
            parse("OR NOT MODSEQ 720162338 LARGER 50000").unwrap().1,
            SearchKey::Or(_, _)
        ));
        assert!(parse("MODSEQ \"/flags/x\" other 5").is_err());
    }

    #[test]
    fn return_options() {
        let ret = |s: &str| {
            let mut p = Parser::new(s.as_bytes());
            search_return(&mut p)
        };
        assert_eq!(ret("ALL").unwrap(), None);
        let r = ret("RETURN (MIN count) ALL").unwrap().unwrap();
        assert!(r.min && r.count && !r.all && !r.max && !r.save);
        assert!(ret("RETURN () ALL").unwrap().unwrap().all);
        assert!(ret("RETURN (SAVE) ALL").unwrap().unwrap().save);
        assert!(ret("RETURN (FOO) ALL").is_err());
        assert!(matches!(parse("$").unwrap().1, SearchKey::Seq(s) if s.is_saved()));
        assert!(matches!(parse("UID $").unwrap().1, SearchKey::Uid(s) if s.is_saved()));
    }

    #[test]
    fn bad_programs() {
        assert!(parse("FROBNICATE").is_err());
        assert!(parse("SINCE yesterday").is_err());
        assert!(parse("OR SEEN").is_err());
        assert!(parse("(SEEN").is_err());
        assert!(parse(&format!("{}SEEN", "NOT ".repeat(100))).is_err());
    }
}
