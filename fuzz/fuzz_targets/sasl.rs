//! SASL exchanges (RFC 4616 PLAIN, LOGIN, RFC 7628 OAUTHBEARER, XOAUTH2):
//! the first byte picks the mechanism, the rest are the client's responses.
#![no_main]
use letterbox_directory::{Mechanism, SaslServer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = letterbox_directory::decode_plain(data);
    let _ = letterbox_directory::decode_plain_b64(data);
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let names = ["PLAIN", "LOGIN", "OAUTHBEARER", "XOAUTH2"];
    let Some(mech) = Mechanism::from_name(names[pick as usize % names.len()]) else {
        return;
    };
    let mut steps = rest.split(|&b| b == b'\n');
    let initial = steps.next();
    let Ok((mut server, _)) = SaslServer::start(mech, initial) else {
        return;
    };
    for s in steps.take(8) {
        if server.step(s).is_err() {
            break;
        }
    }
});
