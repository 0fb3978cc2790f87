//! The statistical classifier: word tokens of a message, and the
//! Robinson–Fisher combination of their spam probabilities (Gary
//! Robinson's "A Statistical Approach to the Spam Problem", as SpamBayes
//! and SpamAssassin's Bayes use it). One model per account, one site-wide.

use letterbox_store::BayesCounts;
use mail_parser::{MessageParser, MimeHeaders};

/// Distinct tokens taken from one message.
pub const MAX_TOKENS: usize = 3000;
/// Messages each model needs of both classes before it is trusted.
pub const MIN_TRAINED: u64 = 10;
/// Clues (most extreme token probabilities) combined per message: more
/// than SpamBayes' 150 (bench/RESULTS.md: 150 caught 92.1 %, 250 93.4 %, 400
/// 94.1 % of the corpus spam, each with the same one false positive).
const MAX_CLUES: usize = 400;
/// Robinson's x and s: a token seen n times moves from 0.5 by n/(n+s).
const UNKNOWN_PROB: f64 = 0.5;
const STRENGTH: f64 = 0.45;
/// Tokens closer than this to 0.5 say nothing.
const MIN_DISTANCE: f64 = 0.1;

/// What the tokenizer takes from a message: hashed tokens, deduplicated.
pub fn tokens(raw: &[u8]) -> Vec<u64> {
    match MessageParser::default().parse(raw) {
        Some(msg) => tokens_of(&msg),
        None => Vec::new(),
    }
}

/// [`tokens`] of a parsed message.
pub fn tokens_of(msg: &mail_parser::Message<'_>) -> Vec<u64> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // False once the message has given all the tokens it may.
    let mut push = |prefix: &str, word: &str| -> bool {
        if out.len() >= MAX_TOKENS {
            return false;
        }
        let h = fnv1a(prefix, word);
        if seen.insert(h) {
            out.push(h);
        }
        true
    };
    if let Some(s) = msg.subject() {
        words(s, |w| push("s", w));
        // Shouting is a sign of its own ("FREE" is not "free").
        for w in s.split_whitespace().filter(|w| {
            w.len() >= 3
                && w.chars().all(|c| c.is_uppercase() || !c.is_alphabetic())
                && w.chars().any(char::is_alphabetic)
        }) {
            push("S", w);
        }
        if s.contains('!') {
            push("s", "!");
        }
    }
    if let Some(from) = msg.from().and_then(|a| a.first()) {
        if let Some(addr) = from.address() {
            let addr = addr.to_lowercase();
            if let Some((_, d)) = addr.rsplit_once('@') {
                push("fromdomain", d);
            }
            push("from", &addr);
        }
        if let Some(name) = from.name() {
            words(name, |w| push("fromname", w));
        }
    }
    // Which fields a message has says much about the software that made
    // it; the values of a few say more (SpamBayes' header tokens).
    // The hops nearest the sender (the last Received: fields) say where it
    // came from; the top ones are this site's own and always the same.
    let received_total = msg
        .root_part()
        .headers()
        .iter()
        .filter(|h| h.name == mail_parser::HeaderName::Received)
        .count();
    let mut received = 0;
    for h in msg.root_part().headers() {
        let name = h.name.as_str().to_ascii_lowercase();
        push("h", &name);
        let value = msg
            .raw_message()
            .get(h.offset_start as usize..h.offset_end as usize)
            .unwrap_or_default();
        let value = String::from_utf8_lossy(&value[..value.len().min(1024)]);
        match name.as_str() {
            "x-mailer"
            | "user-agent"
            | "organization"
            | "list-id"
            | "precedence"
            | "x-priority"
            | "x-msmail-priority"
            | "content-transfer-encoding"
            | "mime-version" => {
                words(&value, |w| push(&name, w));
            }
            "reply-to" | "to" | "cc" | "return-path" | "sender" => {
                for d in value.split(|c: char| c.is_whitespace() || matches!(c, ',' | '<' | '>')) {
                    if let Some((_, dom)) = d.rsplit_once('@') {
                        push(
                            &format!("{name}-domain"),
                            &dom.trim_end_matches('.').to_ascii_lowercase(),
                        );
                    }
                }
            }
            "message-id" => {
                if let Some((_, dom)) = value.trim().trim_matches(['<', '>']).rsplit_once('@') {
                    push("msgid-domain", &dom.to_ascii_lowercase());
                }
            }
            "received" => {
                received += 1;
                if received + 2 > received_total {
                    words(&value, |w| push("received", w));
                    for ip in value
                        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                        .filter(|t| t.parse::<std::net::Ipv4Addr>().is_ok())
                    {
                        // The address and its /24 and /16.
                        let mut parts: Vec<&str> = ip.split('.').collect();
                        push("ip", ip);
                        parts.pop();
                        push("ip", &parts.join("."));
                        parts.pop();
                        push("ip", &parts.join("."));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(ct) = msg.root_part().content_type() {
        push(
            "ct",
            &format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase(),
        );
    }
    for part in &msg.parts {
        if let Some(cs) = part.content_type().and_then(|ct| ct.attribute("charset")) {
            push("charset", &cs.to_ascii_lowercase());
        }
    }
    for part in msg.attachments() {
        if let Some(name) = part.attachment_name() {
            let ext = name.rsplit_once('.').map_or("", |(_, e)| e).to_ascii_lowercase();
            push("att", &ext);
        }
    }
    for i in 0..msg.text_body_count().min(4) {
        if let Some(text) = msg.body_text(i) {
            let text: &str = &text;
            let text = &text[..floor_char_boundary(text, 256 * 1024)];
            // Words, and pairs of neighbouring words ("click here" says
            // more than "click" and "here").
            let (mut last, mut pair) = (String::new(), String::new());
            words(text, |w| {
                let more = push("", w);
                if !last.is_empty() {
                    pair.clear();
                    pair.push_str(&last);
                    pair.push(' ');
                    pair.push_str(w);
                    push("2", &pair);
                }
                last.clear();
                last.push_str(w);
                more
            });
            for host in text.split_whitespace().filter_map(url_host) {
                push("url", &host);
            }
        }
    }
    for i in 0..msg.html_body_count().min(4) {
        if let Some(html) = msg.body_html(i) {
            let html: &str = &html;
            let html = &html[..floor_char_boundary(html, 256 * 1024)];
            for host in html.split(['"', '\'', ' ', '<', '>']).filter_map(url_host) {
                push("url", &host);
            }
        }
    }
    out
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Han, kana and Hangul: written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

/// Words of 3 to 20 letters or digits, lower-cased; longer runs become a
/// "skip" token of their first letter and length class (SpamBayes). Runs
/// of CJK characters, which have no spaces, become overlapping pairs.
/// `f` answers false to stop early (the message's tokens are all taken).
fn words(text: &str, mut f: impl FnMut(&str) -> bool) {
    let mut buf = String::new();
    let mut prev: Option<char> = None;
    for c in text.chars() {
        if is_cjk(c) {
            if let Some(p) = prev {
                buf.clear();
                buf.push(p);
                buf.push(c);
                if !f(&buf) {
                    return;
                }
            }
            prev = Some(c);
        } else {
            prev = None;
        }
    }
    for w in text.split(|c: char| !(c.is_alphanumeric() || c == '$' || c == '\'') || is_cjk(c)) {
        let w = w.trim_matches('\'');
        let n = w.chars().count();
        if n < 3 {
            continue;
        }
        buf.clear();
        if n > 20 {
            use std::fmt::Write;
            let first = w.chars().next().unwrap_or('x');
            let _ = write!(buf, "skip:{}:{}", first.to_lowercase(), n / 10 * 10);
        } else {
            buf.extend(w.chars().flat_map(char::to_lowercase));
        }
        if !f(&buf) {
            return;
        }
    }
}

fn url_host(s: &str) -> Option<String> {
    let rest = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://"))?;
    let host = rest.split(['/', '?', '#', ':', ')', ']', '>']).next()?;
    (host.contains('.') && host.len() <= 253).then(|| host.to_lowercase())
}

/// FNV-1a (64 bits) of `prefix:word`: stable across builds, so stored
/// counts keep their meaning.
fn fnv1a(prefix: &str, word: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in prefix.bytes().chain([b':']).chain(word.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The probability that a message is spam, from the counts of its tokens
/// in one model; `None` while the model knows too few messages.
pub fn spam_probability(model: &BayesCounts, min_trained: u64) -> Option<f64> {
    let (ns, nh) = (model.spam_messages, model.ham_messages);
    if ns < min_trained || nh < min_trained {
        return None;
    }
    let mut clues: Vec<f64> = model
        .tokens
        .iter()
        .map(|&(_, s, h)| {
            let ps = (f64::from(s) / ns as f64).min(1.0);
            let ph = (f64::from(h) / nh as f64).min(1.0);
            let p = if ps + ph > 0.0 { ps / (ps + ph) } else { UNKNOWN_PROB };
            let n = f64::from(s) + f64::from(h);
            (STRENGTH * UNKNOWN_PROB + n * p) / (STRENGTH + n)
        })
        .filter(|f| (f - 0.5).abs() >= MIN_DISTANCE)
        .collect();
    if clues.is_empty() {
        return Some(0.5);
    }
    clues.sort_by(|a, b| (b - 0.5).abs().total_cmp(&(a - 0.5).abs()));
    clues.truncate(MAX_CLUES);
    let clues: Vec<f64> = clues.into_iter().map(|f| f.clamp(1e-6, 1.0 - 1e-6)).collect();
    let n = clues.len();
    let ln_h: f64 = clues.iter().map(|f| f.ln()).sum();
    let ln_s: f64 = clues.iter().map(|f| (1.0 - f).ln()).sum();
    let s = 1.0 - chi2q(-2.0 * ln_s, 2 * n);
    let h = 1.0 - chi2q(-2.0 * ln_h, 2 * n);
    Some(((s - h + 1.0) / 2.0).clamp(0.0, 1.0))
}

/// P(chi² ≥ x2) with `v` (even) degrees of freedom.
fn chi2q(x2: f64, v: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..v / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

/// The rule a probability fires (name suffix, score): SpamAssassin's
/// BAYES_ bands, with scores for a Junk threshold of 6. A model trained
/// on the user's own judgments sure at 99 % junks a message by itself
/// (bench/RESULTS.md: no ham of the SpamAssassin corpus reaches it).
pub fn band(p: f64) -> Option<(&'static str, f64)> {
    Some(match p {
        p if p >= 0.999 => ("999", 7.0),
        p if p >= 0.99 => ("99", 6.0),
        p if p >= 0.95 => ("95", 4.5),
        p if p >= 0.80 => ("80", 3.0),
        p if p < 0.01 => ("00", -1.5),
        p if p < 0.05 => ("05", -0.5),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn mail(subject: &str, body: &str) -> Vec<u8> {
        format!("From: x@y.test\r\nSubject: {subject}\r\n\r\n{body}\r\n").into_bytes()
    }

    /// A model trained on `spam` and `ham`, asked about `raw`.
    fn model(spam: &[Vec<u8>], ham: &[Vec<u8>], raw: &[u8]) -> BayesCounts {
        let mut counts: HashMap<u64, (u32, u32)> = HashMap::new();
        for m in spam {
            for t in tokens(m) {
                counts.entry(t).or_default().0 += 1;
            }
        }
        for m in ham {
            for t in tokens(m) {
                counts.entry(t).or_default().1 += 1;
            }
        }
        BayesCounts {
            spam_messages: spam.len() as u64,
            ham_messages: ham.len() as u64,
            tokens: tokens(raw)
                .into_iter()
                .filter_map(|t| counts.get(&t).map(|&(s, h)| (t, s, h)))
                .collect(),
        }
    }

    #[test]
    fn learns_the_difference() {
        let spam: Vec<_> = (0..20)
            .map(|i| {
                mail(
                    &format!("Cheap pills offer {i}"),
                    "Buy cheap viagra pills now, limited offer, click",
                )
            })
            .collect();
        let ham: Vec<_> = (0..20)
            .map(|i| {
                mail(
                    &format!("Meeting notes {i}"),
                    "Attached are the notes from the project meeting today",
                )
            })
            .collect();
        let p_spam = spam_probability(&model(&spam, &ham, &mail("Pills", "cheap pills offer, click now")), 10).unwrap();
        let p_ham = spam_probability(
            &model(&spam, &ham, &mail("Notes", "the meeting notes of the project")),
            10,
        )
        .unwrap();
        assert!(p_spam > 0.99, "{p_spam}");
        assert!(p_ham < 0.01, "{p_ham}");
        assert!(
            spam_probability(&model(&spam[..5], &ham, &spam[0]), 10).is_none(),
            "too few spam trained"
        );
        let p_new = spam_probability(&model(&spam, &ham, &mail("Zebra", "unrelated giraffe words")), 10).unwrap();
        assert!((p_new - 0.5).abs() < 0.01, "{p_new}");
    }

    #[test]
    fn tokens_are_stable_and_bounded() {
        assert_eq!(fnv1a("s", "hello"), fnv1a("s", "hello"));
        assert_ne!(fnv1a("s", "hello"), fnv1a("", "hello"));
        let big: String = (0..20000).map(|i| format!("word{i} ")).collect();
        assert_eq!(tokens(&mail("s", &big)).len(), MAX_TOKENS);
        let t = tokens(&mail(
            "Hello World",
            "see http://example.com/x and aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ));
        assert!(t.contains(&fnv1a("s", "hello")) && t.contains(&fnv1a("url", "example.com")));
        assert!(t.contains(&fnv1a("", "skip:a:30")));
        // Markup cut anywhere, also inside a multi-byte character.
        let html = format!(
            "From: x@y.test\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p class=\"{}\">x</p>\r\n",
            "é".repeat(300)
        );
        assert!(!tokens(html.as_bytes()).is_empty());
        assert!(tokens("Subject: 特价优惠\r\n\r\n今天特价优惠\r\n".as_bytes()).contains(&fnv1a("", "特价")));
    }
}
