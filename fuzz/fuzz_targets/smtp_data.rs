//! The DATA receiver (RFC 5321 §4.5.2 dot-stuffing, bare CR/LF, size
//! limit), fed the input as lines split the way the session splits them.
#![no_main]
use letterbox_smtp_proto::{DataReceiver, DataStep};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = DataReceiver::new(64 * 1024);
    for line in data.split_inclusive(|&b| b == b'\n') {
        let crlf = line.ends_with(b"\r\n");
        let content = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(line);
        if !matches!(r.line(content, crlf), DataStep::Continue) {
            break;
        }
    }
    let _ = r.finish();
});
