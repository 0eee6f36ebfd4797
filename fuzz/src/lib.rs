//! Helpers the fuzz targets share: an independent JSON reading (serde_json's own
//! `Value`) to judge lure's decoders and encoders against.

use serde::Deserialize;
use serde_json::Value;

thread_local! {
    // One Lua state per thread, with lure's JSON codec, reused across inputs for
    // speed (it is never dropped, hence `-detect_leaks=0` for the Lua targets).
    static LUA: mlua::Lua = {
        let lua = mlua::Lua::new();
        lure::json::lua::Codec::install(&lua).expect("the codec installs");
        lua
    };
}

/// Runs `f` with this thread's Lua state.
pub fn with_lua<R>(f: impl FnOnce(&mlua::Lua) -> R) -> R {
    LUA.with(f)
}

/// `bytes` as serde_json reads it, nesting unbounded (lure allows 1024 levels,
/// serde_json's default stops at 128); `None` if it is not JSON.
pub fn parse(bytes: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = Value::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// The same JSON document, up to how numbers are spelled: `1.0` and `1` are the
/// same number (lure writes whole floats without `.0`, as JavaScript does), and
/// integers beyond `i64` become floats.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Panics unless `encoded` (what lure wrote for the value it decoded from `input`)
/// is valid JSON holding the same document as `input`.
pub fn assert_same_document(input: &[u8], encoded: &[u8]) {
    let original = parse(input).expect("lure decoded text serde_json rejects");
    let written = parse(encoded).unwrap_or_else(|| {
        panic!(
            "lure wrote invalid JSON: {:?}",
            String::from_utf8_lossy(encoded)
        )
    });
    assert!(
        same(&original, &written),
        "the document changed:\n in: {:.2000}\nout: {:.2000}",
        String::from_utf8_lossy(input),
        String::from_utf8_lossy(encoded)
    );
}
