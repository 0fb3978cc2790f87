//! MIME analysis of a whole message, and every read path a client can ask
//! for over it: sections (IMAP BODY[...]), BINARY decoding, wire form.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (info, _text) = letterbox_mail::analyze_with_text(data);
    let _ = letterbox_mail::header_section(data);
    let _ = letterbox_mail::to_wire(data);
    let _ = letterbox_mail::encode_binary_parts(data);
    for spec in [
        "",
        "TEXT",
        "HEADER",
        "1",
        "1.MIME",
        "1.1",
        "2.HEADER",
        "1.2.3.TEXT",
        "HEADER.FIELDS (From To)",
    ] {
        if let Ok(s) = letterbox_mail::SectionSpec::parse(spec) {
            let _ = letterbox_mail::section(data, &info, &s);
        }
    }
    for part in [&[][..], &[1], &[1, 1], &[2], &[1, 2, 1]] {
        let _ = letterbox_mail::binary(data, &info, part);
    }
});
