//! POP3 command lines (RFC 1939, RFC 2449, RFC 5034).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = letterbox_pop3::proto::parse_command(data);
});
