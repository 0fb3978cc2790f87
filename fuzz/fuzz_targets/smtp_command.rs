//! SMTP command lines (RFC 5321 §4.1) as a client may send them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = letterbox_smtp_proto::parse_command(line);
    }
});
