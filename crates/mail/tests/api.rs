//! Section resolution, HEADER.FIELDS(.NOT), BINARY decoding and robustness
//! against malformed input.

use letterbox_mail::{
    analyze, binary, encode_binary_parts, section, to_wire, BinaryError, SectionKind, SectionSpec, SectionSpecError,
};

/// RFC 3501 §6.4.5's example structure, reduced: a multipart/mixed with a
/// text part, a base64 part, a message/rfc822 (itself multipart) and a
/// quoted-printable part.
const MSG: &str = "From: a@example.com\r\n\
Subject: Test\r\n\
\tfolded\r\n\
To: b@example.com\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"x\"\r\n\
\r\n\
preamble\r\n\
--x\r\n\
Content-Type: text/plain\r\n\
\r\n\
part one\r\n\
--x\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGVsbG8g\r\n\
d29ybGQ=\r\n\
--x\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
Content-Type: multipart/alternative; boundary=\"y\"\r\n\
\r\n\
--y\r\n\
\r\n\
inner one\r\n\
--y\r\n\
Content-Type: text/html\r\n\
\r\n\
<b>two</b>\r\n\
--y--\r\n\
--x\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
caf=C3=A9 soft=\r\n\
break\r\n\
--x--\r\n\
epilogue\r\n";

fn get(spec: &str) -> Option<String> {
    let raw = MSG.as_bytes();
    let info = analyze(raw);
    let spec = SectionSpec::parse(spec).unwrap();
    section(raw, &info, &spec).map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn parse_specs() {
    let s = SectionSpec::parse("1.2.MIME").unwrap();
    assert_eq!(s.part, vec![1, 2]);
    assert_eq!(s.kind, SectionKind::Mime);
    let s = SectionSpec::parse("header.fields.not (From \"Subject\")").unwrap();
    assert!(s.part.is_empty());
    assert_eq!(
        s.kind,
        SectionKind::HeaderFieldsNot(vec!["From".into(), "Subject".into()])
    );
    assert_eq!(SectionSpec::parse("").unwrap().kind, SectionKind::Full);
    assert_eq!(SectionSpec::parse("3.TEXT").unwrap().kind, SectionKind::Text);
    assert_eq!(SectionSpec::parse("MIME"), Err(SectionSpecError::MimeWithoutPart));
    assert_eq!(SectionSpec::parse("0"), Err(SectionSpecError::BadPartNumber));
    assert_eq!(SectionSpec::parse("1."), Err(SectionSpecError::BadPartNumber));
    assert!(SectionSpec::parse("HEADER.FIELDS ()").is_err());
    assert!(SectionSpec::parse("BOGUS").is_err());
}

#[test]
fn whole_header_text() {
    assert_eq!(get("").unwrap(), MSG);
    let header = get("HEADER").unwrap();
    assert!(header.starts_with("From: a@example.com\r\n"));
    assert!(header.ends_with("boundary=\"x\"\r\n\r\n"));
    assert!(get("TEXT").unwrap().starts_with("preamble\r\n--x\r\n"));
    assert!(get("TEXT").unwrap().ends_with("epilogue\r\n"));
}

#[test]
fn parts_and_mime_headers() {
    // The line break before a boundary belongs to the boundary.
    assert_eq!(get("1").unwrap(), "part one");
    assert_eq!(get("1.MIME").unwrap(), "Content-Type: text/plain\r\n\r\n");
    assert_eq!(get("2").unwrap(), "aGVsbG8g\r\nd29ybGQ=");
    assert!(get("5").is_none());
    assert!(get("1.1").is_none(), "a text part has no subparts");
}

#[test]
fn message_rfc822_parts() {
    assert_eq!(
        get("3.HEADER").unwrap(),
        "Subject: inner\r\nContent-Type: multipart/alternative; boundary=\"y\"\r\n\r\n"
    );
    assert!(get("3.TEXT").unwrap().starts_with("--y\r\n"));
    assert_eq!(get("3.1").unwrap(), "inner one");
    assert_eq!(get("3.1.MIME").unwrap(), "\r\n");
    assert_eq!(get("3.2").unwrap(), "<b>two</b>");
    assert_eq!(get("3.HEADER.FIELDS (subject)").unwrap(), "Subject: inner\r\n\r\n");
    // n.HEADER / n.TEXT only exist for message/rfc822 parts.
    assert!(get("1.HEADER").is_none());
    assert!(get("2.TEXT").is_none());
}

#[test]
fn part_one_of_single_part_message_is_its_body() {
    let raw = b"Subject: x\r\nX-A: 1\r\n\r\nhello\r\n";
    let info = analyze(raw);
    let one = SectionSpec::parse("1").unwrap();
    assert_eq!(section(raw, &info, &one).unwrap(), b"hello\r\n");
    let mime = SectionSpec::parse("1.MIME").unwrap();
    assert_eq!(section(raw, &info, &mime).unwrap(), b"Subject: x\r\nX-A: 1\r\n\r\n");
    assert!(section(raw, &info, &SectionSpec::parse("2").unwrap()).is_none());
    assert_eq!(binary(raw, &info, &[1]).unwrap(), b"hello\r\n");
}

#[test]
fn header_fields_keep_folding_and_order() {
    assert_eq!(
        get("HEADER.FIELDS (SUBJECT from)").unwrap(),
        "From: a@example.com\r\nSubject: Test\r\n\tfolded\r\n\r\n"
    );
    assert_eq!(get("HEADER.FIELDS (X-Nothing)").unwrap(), "\r\n");
    let not = get("HEADER.FIELDS.NOT (Subject Content-Type MIME-Version)").unwrap();
    assert_eq!(not, "From: a@example.com\r\nTo: b@example.com\r\n\r\n");
}

#[test]
fn binary_decoding() {
    let raw = MSG.as_bytes();
    let info = analyze(raw);
    assert_eq!(binary(raw, &info, &[1]).unwrap(), b"part one");
    assert_eq!(binary(raw, &info, &[2]).unwrap(), b"hello world");
    assert_eq!(binary(raw, &info, &[4]).unwrap(), "café softbreak".as_bytes());
    assert_eq!(binary(raw, &info, &[3, 2]).unwrap(), b"<b>two</b>");
    assert_eq!(binary(raw, &info, &[9]), Err(BinaryError::NoSuchPart));
}

#[test]
fn binary_errors() {
    let raw = to_wire(b"Content-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n");
    let info = analyze(&raw);
    assert!(matches!(binary(&raw, &info, &[1]), Err(BinaryError::UnknownCte(_))));
    let raw = to_wire(b"Content-Transfer-Encoding: base64\n\nnot*base64\n");
    let info = analyze(&raw);
    assert!(matches!(binary(&raw, &info, &[1]), Err(BinaryError::Invalid(_))));
    let raw = to_wire(b"Content-Transfer-Encoding: quoted-printable\n\nbad =ZZ\n");
    let info = analyze(&raw);
    assert!(matches!(binary(&raw, &info, &[1]), Err(BinaryError::Invalid(_))));
}

#[test]
fn structure_strings() {
    let info = analyze(MSG.as_bytes());
    assert!(info
        .body
        .starts_with(b"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0)"));
    assert!(info
        .bodystructure
        .ends_with(b" \"mixed\" (\"boundary\" \"x\") NIL NIL NIL)"));
    assert_eq!(
        info.envelope,
        b"(NIL {11}\r\nTest folded ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) \
((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"b\" \"example.com\")) NIL NIL NIL NIL)"
    );
    assert_eq!(info.subject, "Test folded");
    assert_eq!(info.size, MSG.len() as u64);
}

/// Deterministic xorshift so the fuzz loop is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Everything callable on an analysed message, asserting only "no panic"
/// and sane offsets.
fn exercise(raw: &[u8]) {
    let info = analyze(raw);
    let mut stack = vec![(&info.root, Vec::<u32>::new())];
    while let Some((p, path)) = stack.pop() {
        assert!(p.header_start <= p.body_start && p.body_start <= p.body_end);
        assert!(p.body_end <= raw.len());
        if !path.is_empty() {
            let _ = binary(raw, &info, &path);
            for kind in ["", ".MIME", ".HEADER", ".TEXT", ".HEADER.FIELDS (From)"] {
                let spec = format!(
                    "{}{kind}",
                    path.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
                );
                if let Ok(spec) = SectionSpec::parse(&spec) {
                    let _ = section(raw, &info, &spec);
                }
            }
        }
        for (i, c) in p.children.iter().enumerate() {
            let mut q = path.clone();
            q.push(i as u32 + 1);
            stack.push((c, q));
        }
        if let Some(m) = &p.message {
            stack.push((m, path.clone()));
        }
    }
    for spec in ["HEADER", "TEXT", "HEADER.FIELDS.NOT (To)", "1", "2.1"] {
        let _ = section(raw, &info, &SectionSpec::parse(spec).unwrap());
    }
}

#[test]
fn malformed_inputs_do_not_panic() {
    exercise(b"");
    exercise(b"\r\n");
    exercise(b"\n\n\n");
    exercise(b":\r\n\r\n");
    exercise(b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n");
    exercise(b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n--a\r\n--a--");
    exercise(b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n");
    exercise(b"From: \"unterminated\r\nTo: (comment <\r\nSubject: \xff\x00\r\n\r\n");
    exercise(b"Content-Type: text/plain; a*0*=x; a*1=y; a*99999999999=z; b*=\r\n\r\n");

    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/messages");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus missing at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for path in files {
        let wire = to_wire(&std::fs::read(&path).unwrap());
        // Truncations at random points.
        for _ in 0..4 {
            let cut = rng.below(wire.len() + 1);
            exercise(&wire[..cut]);
        }
        // Byte mangling that hits the structural characters.
        let mut m = wire.clone();
        for _ in 0..8 {
            if m.is_empty() {
                break;
            }
            let i = rng.below(m.len());
            m[i] = b"-\r\n:;\"(<=\\ \x00\xff"[rng.below(13)];
        }
        exercise(&m);
        // Deleting a chunk.
        if wire.len() > 2 {
            let a = rng.below(wire.len());
            let b = (a + rng.below(200)).min(wire.len());
            let mut d = wire[..a].to_vec();
            d.extend_from_slice(&wire[b..]);
            exercise(&d);
        }
    }
}

#[test]
fn deep_nesting_is_capped() {
    // 10 000 nested multiparts, each with its own boundary.
    let mut raw = Vec::new();
    for i in 0..10_000 {
        raw.extend_from_slice(format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\nleaf\r\n");
    let info = analyze(&raw);
    let mut depth = 0;
    let mut p = &info.root;
    while let Some(c) = p.children.first() {
        depth += 1;
        p = c;
    }
    assert!(depth <= letterbox_mail::MAX_DEPTH, "depth {depth}");
    exercise(&raw);

    // 10 000 nested message/rfc822 parts.
    let raw = "Content-Type: message/rfc822\r\n\r\n".repeat(10_000);
    exercise(raw.as_bytes());

    // Very many sibling parts.
    let mut raw = b"Content-Type: multipart/mixed; boundary=z\r\n\r\n".to_vec();
    raw.extend_from_slice(&b"--z\r\n\r\nx\r\n".repeat(50_000));
    let info = analyze(&raw);
    assert!(info.root.children.len() <= letterbox_mail::MAX_PARTS);
}

#[test]
fn binary_of_the_empty_section_is_the_whole_message() {
    // RFC 3516 §4.2: nothing to decode, so exactly the message.
    let raw = b"Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhell\xf6\r\n";
    let info = analyze(raw);
    assert_eq!(binary(raw, &info, &[]).unwrap(), raw);
    // Encoded leaves are decoded and say so in their header.
    let raw = to_wire(
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n--b\nContent-Transfer-Encoding: Quoted-Printable\nX: y\n\ncaf=C3=A9\n--b--\n",
    );
    let info = analyze(&raw);
    let want = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: binary\r\n\r\nhello\r\n--b\r\nContent-Transfer-Encoding: binary\r\nX: y\r\n\r\ncafé\r\n--b--\r\n";
    assert_eq!(String::from_utf8(binary(&raw, &info, &[]).unwrap()).unwrap(), want);
    let raw = to_wire(b"Content-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n");
    let info = analyze(&raw);
    assert!(matches!(binary(&raw, &info, &[]), Err(BinaryError::UnknownCte(_))));
}

#[test]
fn binary_parts_of_a_literal8_append_become_base64() {
    // RFC 3516 §4.4: the bytes of a `binary` part survive (NUL, bare LF).
    let part: &[u8] = b"\0-\xe4\n\r\n\n";
    let mut raw =
        b"From: a@x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    raw.extend_from_slice(part);
    let enc = encode_binary_parts(&raw).unwrap();
    assert_eq!(
        enc,
        b"From: a@x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAC3kCg0KCg==\r\n"
    );
    assert_eq!(to_wire(&enc), enc, "nothing left for the store to convert");
    let info = analyze(&enc);
    assert_eq!(binary(&enc, &info, &[1]).unwrap(), part);

    // Only binary leaves change; long data is cut into 76-character lines.
    let big = vec![0xffu8; 100];
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\n--b\r\nContent-Transfer-Encoding: BINARY\r\n\r\n".to_vec();
    raw.extend_from_slice(&big);
    raw.extend_from_slice(b"\r\n--b--\r\n");
    let enc = encode_binary_parts(&raw).unwrap();
    let text = String::from_utf8(enc.clone()).unwrap();
    assert!(text.starts_with("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
    assert!(text.ends_with("/w==\r\n--b--\r\n"));
    let lines: Vec<&str> = text.split("\r\n").filter(|l| l.starts_with("////")).collect();
    assert_eq!(lines.iter().map(|l| l.len()).collect::<Vec<_>>(), vec![76, 60]);
    let info = analyze(&to_wire(&enc));
    assert_eq!(binary(&to_wire(&enc), &info, &[2]).unwrap(), big);

    assert_eq!(encode_binary_parts(b"Subject: x\r\n\r\nplain\n"), None);
}
