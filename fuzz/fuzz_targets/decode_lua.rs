//! Event bytes → Lua values (`json::lua::decode`) → JSON again must never panic, and
//! whatever decodes must encode to the same document, and that text must decode and
//! encode to itself (a fixed point); the writers' size bounds hold on it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lure::json::{self, Writer};
use mlua::{Lua, Value};

fn encode(lua: &Lua, value: &Value) -> Vec<u8> {
    let mut writer = Writer::new(false);
    json::lua::encode(lua, value, &mut writer)
        .unwrap_or_else(|e| panic!("a decoded value does not encode: {e}"));
    writer.into_bytes()
}

fuzz_target!(|data: &[u8]| {
    lure_fuzz::with_lua(|lua| {
        let Ok(value) = json::lua::decode(lua, data) else {
            return;
        };
        let first = encode(lua, &value);
        lure_fuzz::assert_same_document(data, &first);
        let again = json::lua::decode(lua, &first)
            .unwrap_or_else(|e| panic!("lure's own output does not decode: {e}"));
        let second = encode(lua, &again);
        assert_eq!(
            String::from_utf8_lossy(&first),
            String::from_utf8_lossy(&second),
            "encode(decode(text)) is not a fixed point"
        );
        lure_fuzz::assert_size_bounds(&first, data.len(), |writer| {
            json::lua::encode(lua, &value, writer)
        });
    });
});
