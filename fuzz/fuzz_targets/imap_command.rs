//! IMAP command lines with their literals inline (RFC 9051 §9 grammar).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = letterbox_imap::proto::parse_command(data);
    let _ = letterbox_imap::proto::parse_tag(data);
});
