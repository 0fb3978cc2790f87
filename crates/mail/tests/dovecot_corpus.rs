//! Compares every golden FETCH answer of the Dovecot corpus
//! (`shared/mime-corpus`, see its README.md) byte for byte.

use letterbox_mail::{analyze, binary, section, to_wire, BinaryError, MessageInfo, SectionSpec};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/mime-corpus")
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

/// Documented deviations from Dovecot: (file, item, reason). The test
/// expects our (RFC) answer here and fails if Dovecot's answer is produced.
const EXCEPTIONS: &[(&str, &str, &str)] = &[];

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
    let mut per_item: BTreeMap<String, (usize, usize)> = BTreeMap::new();
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
            let ok = match (&want, &got) {
                // Dovecot dropped the connection (README: accept a NO).
                (Err(w), Err(_)) if w.starts_with("BYE ") => true,
                _ => want == got,
            };
            let entry = per_item.entry(item.clone()).or_default();
            entry.1 += 1;
            match (ok, exception) {
                (true, None) => entry.0 += 1,
                (true, Some(e)) => mismatches.push(format!(
                    "{name} {item}: listed as exception ({}) but matches Dovecot now",
                    e.2
                )),
                (false, Some(_)) => {}
                (false, None) => {
                    let show = |r: &Result<Vec<u8>, String>| match r {
                        Ok(b) => b.escape_ascii().to_string(),
                        Err(e) => format!("refused: {e}"),
                    };
                    mismatches.push(format!(
                        "{name} {item}:\n  want: {}\n  got:  {}",
                        show(&want),
                        show(&got)
                    ));
                }
            }
        }
    }
    assert_eq!(files, 231, "expected the 231 corpus messages");
    for (item, (ok, total)) in &per_item {
        eprintln!("{item}: {ok}/{total} match");
    }
    if !mismatches.is_empty() {
        panic!("{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    }
}
