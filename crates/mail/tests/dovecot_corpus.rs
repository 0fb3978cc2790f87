//! Compares every golden FETCH answer of the Dovecot corpus
//! (`tests/corpus`, see its README.md) byte for byte.

use letterbox_mail::{analyze, binary, section, to_wire, BinaryError, MessageInfo, SectionSpec};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Golden strings are the ISO-8859-1 decoding of the response bytes.
fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

fn literal(prefix: &str, data: &[u8]) -> Vec<u8> {
    let mut v = format!("{prefix} {{{}}}\r\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v
}

fn with_prefix(prefix: &str, data: &[u8]) -> Vec<u8> {
    let mut v = format!("{prefix} ").into_bytes();
    v.extend_from_slice(data);
    v
}

/// Why Dovecot refused BINARY for a part that decodes fine: README
/// "NO [PARSE] ... when any part of the message fails to decode, not only
/// part 1". RFC 3516 §4.2 decodes "the section", so a broken sibling must
/// not make a good part unfetchable; we answer for the requested part.
const OTHER: &str = "Dovecot refuses because another part fails to decode";
/// BINARY of a multipart: Dovecot returns its own rendition of the subtree
/// with every child decoded and headers rewritten (and fails when a child
/// fails). RFC 3516 does not define that; a multipart's transfer encoding is
/// an identity one (RFC 2045 §6.4), so we return its body unchanged.
const MULTI: &str = "multipart part: RFC answer is the undecoded body";
/// A base64 message/rfc822 top-level body: Dovecot answers 0 (it looks at
/// the unparseable embedded message); RFC 3516 asks for the section's
/// content with its transfer encoding (base64) removed, which we return.
const RFC822: &str = "base64 message/rfc822: RFC answer is the decoded content";
/// README: Dovecot dropped the connection (`* BYE FETCH failed`), a server
/// failure rather than an answer; part 1 itself is plain 7bit text.
const BYE: &str = "Dovecot disconnected; part 1 is valid 7bit text";

/// Documented deviations from Dovecot: (file, item, our answer, reason).
/// The test requires exactly our answer for these.
const EXCEPTIONS: &[(&str, &str, &str, &str)] = &[
    (
        "001-mailparser-rfc-000.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 269",
        OTHER,
    ),
    (
        "021-mailparser-thirdparty-017.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 21",
        OTHER,
    ),
    (
        "106-mail-content_transfer_encoding_with_semi_colon.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 677",
        OTHER,
    ),
    (
        "107-mail-content_transfer_encoding_x_uuencode.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 785",
        OTHER,
    ),
    (
        "165-flanker-enclosed-broken-body.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 7",
        OTHER,
    ),
    ("199-cpython-msg_15.eml", "BINARY.SIZE[1]", "BINARY.SIZE[1] 450", OTHER),
    (
        "014-mailparser-malformed-020.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 367",
        MULTI,
    ),
    (
        "015-mailparser-malformed-021.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 421",
        MULTI,
    ),
    (
        "022-mailparser-thirdparty-018.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 1042",
        MULTI,
    ),
    (
        "023-mailparser-thirdparty-019.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 1395",
        MULTI,
    ),
    (
        "056-mimekit-smime-thunderbird-signed.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 210011",
        MULTI,
    ),
    (
        "057-mimekit-messages-startrek.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 32395",
        MULTI,
    ),
    (
        "108-mail-empty_group_lists.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 2107",
        MULTI,
    ),
    (
        "126-mail-raw_email_with_nested_attachment.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 3011",
        MULTI,
    ),
    (
        "149-mail-attachment_message_rfc822_inline_image.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 1294",
        MULTI,
    ),
    ("152-mail-raw_email7.eml", "BINARY.SIZE[1]", "BINARY.SIZE[1] 761", MULTI),
    (
        "161-flanker-bounce-office365.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 51564",
        MULTI,
    ),
    (
        "058-mime4j-bad-newlines-multiple-parts-base64.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 336",
        RFC822,
    ),
    (
        "061-mime4j-base64encoded-rfc822message-nested.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 276",
        RFC822,
    ),
    (
        "062-mime4j-base64encoded-rfc822message.eml",
        "BINARY.SIZE[1]",
        "BINARY.SIZE[1] 91",
        RFC822,
    ),
    ("178-flanker-torture.eml", "BINARY.SIZE[1]", "BINARY.SIZE[1] 190", BYE),
    ("223-cpython-msg_39.eml", "BINARY.SIZE[1]", "BINARY.SIZE[1] 1621", BYE),
];

/// Our answer to one golden item, as Dovecot would print it; `Err` carries
/// the refusal text.
fn answer(wire: &[u8], info: &MessageInfo, item: &str) -> Result<Vec<u8>, String> {
    Ok(match item {
        "ENVELOPE" => with_prefix("ENVELOPE", &info.envelope),
        "BODYSTRUCTURE" => with_prefix("BODYSTRUCTURE", &info.bodystructure),
        "BODY" => with_prefix("BODY", &info.body),
        "RFC822.SIZE" => format!("RFC822.SIZE {}", info.size).into_bytes(),
        "BINARY.SIZE[1]" => match binary(wire, info, &[1]) {
            Ok(b) => format!("BINARY.SIZE[1] {}", b.len()).into_bytes(),
            Err(BinaryError::UnknownCte(_)) => return Err("NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding.".into()),
            Err(BinaryError::Invalid(_)) => return Err("NO [PARSE] Invalid data in MIME part.".into()),
            Err(e) => return Err(format!("NO {e}")),
        },
        "BODY.PEEK[HEADER.FIELDS (From Subject)]" => {
            let spec = SectionSpec::parse("HEADER.FIELDS (From Subject)").unwrap();
            let data = section(wire, info, &spec).ok_or("no section")?;
            literal("BODY[HEADER.FIELDS (FROM SUBJECT)]", &data)
        }
        "BODY.PEEK[1.MIME]" => {
            let spec = SectionSpec::parse("1.MIME").unwrap();
            let data = section(wire, info, &spec).ok_or("no section")?;
            literal("BODY[1.MIME]", &data)
        }
        other => panic!("unknown golden item {other}"),
    })
}

#[test]
fn dovecot_corpus_byte_for_byte() {
    let dir = corpus_dir();
    let golden_path = dir.join("dovecot-golden.json");
    let golden = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| {
        panic!(
            "the Dovecot corpus is required for this test but {} cannot be read: {e}",
            golden_path.display()
        )
    });
    let golden: BTreeMap<String, serde_json::Value> = serde_json::from_str(&golden).unwrap();
    let mut mismatches = Vec::new();
    // item -> (matches Dovecot, total, documented exceptions)
    let mut per_item: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut files = 0;
    for (name, items) in &golden {
        if name.starts_with('_') {
            continue;
        }
        files += 1;
        let raw = std::fs::read(dir.join("messages").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let wire = to_wire(&raw);
        let info = analyze(&wire);
        let items = items.as_object().unwrap();
        let refused = items.get("_refused").and_then(|v| v.as_object());
        let mut all: Vec<(String, Result<Vec<u8>, String>)> = items
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), Ok(latin1(v.as_str().unwrap()))))
            .collect();
        for (k, v) in refused.into_iter().flatten() {
            all.push((k.clone(), Err(v.as_str().unwrap().to_string())));
        }
        for (item, want) in all {
            let got = answer(&wire, &info, &item);
            let exception = EXCEPTIONS.iter().find(|e| e.0 == name && e.1 == item);
            let entry = per_item.entry(item.clone()).or_default();
            entry.1 += 1;
            let show = |r: &Result<Vec<u8>, String>| match r {
                Ok(b) => b.escape_ascii().to_string(),
                Err(e) => format!("refused: {e}"),
            };
            match exception {
                Some(&(_, _, ours, reason)) => {
                    entry.2 += 1;
                    if got.as_deref() != Ok(ours.as_bytes()) {
                        mismatches.push(format!(
                            "{name} {item}: documented exception ({reason}) expects {ours:?}, got {}",
                            show(&got)
                        ));
                    }
                }
                None if want == got => entry.0 += 1,
                None => mismatches.push(format!(
                    "{name} {item}:\n  want: {}\n  got:  {}",
                    show(&want),
                    show(&got)
                )),
            }
        }
    }
    assert_eq!(files, 231, "expected the 231 corpus messages");
    for (item, (ok, total, exc)) in &per_item {
        eprintln!("{item}: {ok}/{total} match Dovecot, {exc} documented exceptions");
    }
    if !mismatches.is_empty() {
        panic!("{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    }
}
