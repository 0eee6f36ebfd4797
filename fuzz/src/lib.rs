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

/// Checks the writers' size bounds on a value whose whole text is `encoded`,
/// encoding it again with `encode` into bounded writers; `seed` picks the bounds.
///
/// - a measuring writer (a response: stores up to its limit, measures past it)
///   gives the text when it fits, and its exact length when not;
/// - a writer with a cap (a log record, `json.encode`'s memory) either gives the
///   whole text, or stops with a "too large" error having stored the text's head,
///   as much of it as the cap allows (up to one escape sequence);
/// - a measuring writer whose cap is below the text stops the same way.
pub fn assert_size_bounds(
    encoded: &[u8],
    seed: usize,
    mut encode: impl FnMut(&mut lure::json::Writer) -> Result<(), lure::json::EncodeError>,
) {
    use lure::json::Writer;
    let limit = seed % (encoded.len() + 2);

    let mut measuring = Writer::measuring(false, limit, usize::MAX);
    encode(&mut measuring).expect("encoded once already");
    match measuring.finish() {
        Ok(bytes) => assert_eq!(bytes, encoded, "limit {limit}"),
        Err(len) => {
            assert!(encoded.len() > limit, "limit {limit} refused {len} bytes");
            assert_eq!(len, encoded.len(), "limit {limit}");
        }
    }

    let mut capped = Writer::with_limit(false, limit);
    match encode(&mut capped) {
        Ok(()) => {
            assert!(encoded.len() <= limit, "limit {limit}: no stop");
            assert_eq!(capped.finish(), Ok(encoded.to_vec()), "limit {limit}");
        }
        Err(e) => {
            assert!(e.is_too_large(), "limit {limit}: {e}");
            assert!(encoded.len() > limit, "limit {limit}: stopped early");
            let head = capped.stored();
            assert!(head.len() <= limit, "limit {limit}: stored {}", head.len());
            assert!(
                encoded.starts_with(&head),
                "limit {limit}: not the text's head"
            );
            assert!(
                head.len() + 6 >= limit,
                "limit {limit}: only {} bytes",
                head.len()
            );
        }
    }

    let cap = limit + seed % 7;
    let mut measuring = Writer::measuring(false, limit, cap);
    match encode(&mut measuring) {
        Ok(()) if encoded.len() <= limit => {
            assert_eq!(measuring.finish(), Ok(encoded.to_vec()), "limit {limit}");
        }
        Ok(()) => {
            assert!(encoded.len() <= cap, "cap {cap}: no stop");
            assert_eq!(measuring.finish(), Err(encoded.len()), "cap {cap}");
        }
        Err(e) => {
            assert!(e.is_too_large() && encoded.len() > cap, "cap {cap}: {e}");
        }
    }
}

thread_local! {
    // A Lua state with lure's sandbox, as scripts get it; kept like `LUA`.
    static SANDBOX: mlua::Lua =
        lure::sandboxed_lua(std::path::Path::new("/nonexistent")).expect("the sandbox installs");
}

/// Runs `f` with this thread's sandboxed Lua state.
pub fn with_sandbox<R>(f: impl FnOnce(&mlua::Lua) -> R) -> R {
    SANDBOX.with(f)
}
