//! The spam verdict's parsers of arriving mail: content rules, the Bayes
//! tokenizer, the removal of forged verdict fields. Any input: no panic,
//! bounded output.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hits = letterbox_inbound::spam::rules::content(data, &["bad.test".to_string()], 1_700_000_000);
    assert!(hits.len() < 64);
    let tokens = letterbox_inbound::spam::bayes::tokens(data);
    assert!(tokens.len() <= letterbox_inbound::spam::bayes::MAX_TOKENS);
    if let Some(cleaned) = letterbox_inbound::fields::remove_ours(data, "mx.example.test") {
        assert!(cleaned.len() < data.len());
    }
});
