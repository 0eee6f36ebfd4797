//! Event bytes → Rhai values (`json::rhai::decode`) → JSON again must never panic,
//! and whatever decodes must encode to the same document, and that text must decode
//! and encode to itself (a fixed point); the writers' size bounds hold on it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lure::json::{self, Writer};
use rhai::Dynamic;

fn encode(value: &Dynamic) -> Vec<u8> {
    let mut writer = Writer::new(false);
    json::rhai::encode(value, &mut writer)
        .unwrap_or_else(|e| panic!("a decoded value does not encode: {e}"));
    writer.into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = json::rhai::decode(data) else {
        return;
    };
    let first = encode(&value);
    lure_fuzz::assert_same_document(data, &first);
    let again = json::rhai::decode(&first)
        .unwrap_or_else(|e| panic!("lure's own output does not decode: {e}"));
    let second = encode(&again);
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second),
        "encode(decode(text)) is not a fixed point"
    );
    lure_fuzz::assert_size_bounds(&first, data.len(), |writer| {
        json::rhai::encode(&value, writer)
    });
});
