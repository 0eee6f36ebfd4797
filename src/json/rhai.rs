//! JSON ↔ Rhai `Dynamic` (SPEC §4).

use std::cell::Cell;
use std::fmt;

use rhai::{Array, Dynamic, FLOAT, INT, Map};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{EncodeError, MAX_DEPTH, Writer, decode_with, too_deep};
use crate::limits;
use crate::memory;

/// Why decoding failed: the text, or the script's memory.
#[derive(Debug)]
pub enum DecodeError {
    Json(serde_json::Error),
    /// The thread's heap went past the script's memory limit while decoding.
    OutOfMemory,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(e) => e.fmt(f),
            DecodeError::OutOfMemory => {
                f.write_str("the decoded value is over the script's memory limit")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// What an `ErrorDataTooLarge` names when a decoded document would go past the
/// script's memory: the engine reports it as `Runtime.OutOfMemory`.
pub const DOCUMENT_TOO_LARGE: &str = "Size of decoded JSON";

/// Decodes JSON text into a Rhai value: objects → maps, arrays → arrays,
/// `null` → `()`, integers → `INT` (beyond `i64` → `FLOAT`), other numbers → `FLOAT`.
///
/// The thread's heap is held to the script's memory limit as the value is built
/// (one look per [`Budget::ITEMS_PER_LOOK`] items): the progress callback that
/// holds the engine to it runs between operations only, and a decode is one.
pub fn decode(bytes: &[u8]) -> Result<Dynamic, DecodeError> {
    let budget = Budget {
        countdown: Cell::new(Budget::ITEMS_PER_LOOK),
        items: Cell::new(0),
        limit: limits::script_memory(),
        exceeded: Cell::new(false),
    };
    decode_with(
        bytes,
        RhaiSeed {
            depth: 0,
            budget: &budget,
        },
    )
    .map_err(|e| {
        if budget.exceeded.get() {
            DecodeError::OutOfMemory
        } else {
            DecodeError::Json(e)
        }
    })
}

/// How often a decode looks at the thread's heap, and whether it found it over.
struct Budget {
    countdown: Cell<u32>,
    items: Cell<usize>,
    limit: usize,
    exceeded: Cell<bool>,
}

impl Budget {
    /// Items decoded between two looks at the heap.
    const ITEMS_PER_LOOK: u32 = 1024;
    /// What the allocator keeps for itself per block, which the heap count
    /// leaves out (glibc: 8 to 16 bytes).
    const OVERHEAD_PER_ITEM: usize = 16;
}

#[derive(Clone, Copy)]
struct RhaiSeed<'b> {
    /// Containers enclosing the value being decoded.
    depth: usize,
    budget: &'b Budget,
}

impl RhaiSeed<'_> {
    fn nested(self) -> Self {
        RhaiSeed {
            depth: self.depth + 1,
            ..self
        }
    }

    /// Counts an item; now and then, fails when the heap is over the limit.
    fn tick<E: de::Error>(self) -> Result<(), E> {
        let left = self.budget.countdown.get();
        if left > 0 {
            self.budget.countdown.set(left - 1);
            return Ok(());
        }
        self.budget.countdown.set(Budget::ITEMS_PER_LOOK);
        let items = self.budget.items.get() + Budget::ITEMS_PER_LOOK as usize;
        self.budget.items.set(items);
        let overhead = items * Budget::OVERHEAD_PER_ITEM;
        if memory::thread_heap().saturating_add(overhead) > self.budget.limit {
            self.budget.exceeded.set(true);
            return Err(E::custom("over the script's memory limit"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for RhaiSeed<'_> {
    type Value = Dynamic;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RhaiSeed<'_> {
    type Value = Dynamic;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Dynamic, E> {
        Ok(Dynamic::UNIT)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Dynamic, E> {
        Ok(Dynamic::from_bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Dynamic, E> {
        Ok(Dynamic::from_int(i as INT))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Dynamic, E> {
        Ok(match INT::try_from(u) {
            Ok(i) => Dynamic::from_int(i),
            Err(_) => Dynamic::from_float(u as FLOAT),
        })
    }

    fn visit_f64<E>(self, f: f64) -> Result<Dynamic, E> {
        Ok(Dynamic::from_float(f as FLOAT))
    }

    fn visit_str<E>(self, s: &str) -> Result<Dynamic, E> {
        Ok(Dynamic::from(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Dynamic, E> {
        Ok(Dynamic::from(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dynamic, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let mut array = Array::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self.nested())? {
            array.push(item);
            self.tick()?;
        }
        Ok(Dynamic::from_array(array))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Dynamic, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let mut map = Map::new();
        while let Some(key) = access.next_key_seed(KeySeed)? {
            let value = access.next_value_seed(self.nested())?;
            // A repeated key keeps its last value, as JSON.parse does.
            map.insert(key, value);
            self.tick()?;
        }
        Ok(Dynamic::from_map(map))
    }
}

/// Rhai's map key type (a small-string type Rhai does not export by name).
type Identifier = <Map as MapKey>::Key;

trait MapKey {
    type Key;
}

impl<K, V> MapKey for std::collections::BTreeMap<K, V> {
    type Key = K;
}

/// Object keys go straight to Rhai's key type (short keys stay inline, unallocated).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Identifier;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Identifier, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Identifier;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, s: &str) -> Result<Identifier, E> {
        Ok(s.into())
    }
}

/// What an `ErrorDataTooLarge` names when JSON text would go past the script's
/// memory: the engine reports it as `Runtime.OutOfMemory`, as Rhai's own size
/// limits are.
pub const TEXT_TOO_LARGE: &str = "Length of JSON text";

/// Encodes a Rhai value as JSON (SPEC §4). Maps come out with sorted keys (Rhai
/// maps are ordered), the order the Lua encoder uses too; anything JSON cannot hold
/// is an [`EncodeError`] naming its path.
pub fn encode(value: &Dynamic, writer: &mut Writer) -> Result<(), EncodeError> {
    encode_at(value, writer, 0)?;
    writer.finish_document()
}

/// `depth`: containers enclosing `value`.
fn encode_at(value: &Dynamic, writer: &mut Writer, depth: usize) -> Result<(), EncodeError> {
    if value.is_shared() {
        // A variable captured by a closure: read it through its lock.
        let inner = value
            .read_lock::<Dynamic>()
            .ok_or_else(|| EncodeError::new("a shared value is locked for writing"))?;
        return encode_at(&inner, writer, depth);
    }
    if value.is_unit() {
        writer.null();
    } else if let Ok(b) = value.as_bool() {
        writer.bool(b);
    } else if let Ok(i) = value.as_int() {
        writer.int(i);
    } else if let Ok(f) = value.as_float() {
        writer.float(f)?;
    } else if let Ok(c) = value.as_char() {
        writer.string(c.encode_utf8(&mut [0; 4]));
    } else if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        writer.string(&s);
    } else if let Some(array) = value.read_lock::<Array>() {
        check_depth(depth)?;
        writer.begin_array();
        for (i, item) in array.iter().enumerate() {
            writer.element(i == 0);
            encode_at(item, writer, depth + 1).map_err(|e| e.at_index(i))?;
        }
        writer.end_array(array.is_empty());
    } else if let Some(map) = value.read_lock::<Map>() {
        check_depth(depth)?;
        writer.begin_object();
        for (i, (key, item)) in map.iter().enumerate() {
            writer.member(i == 0, key);
            encode_at(item, writer, depth + 1).map_err(|e| e.at_key(key.as_str()))?;
        }
        writer.end_object(map.is_empty());
    } else {
        return Err(EncodeError::new(format!(
            "a {} cannot be encoded as JSON",
            value.type_name()
        )));
    }
    if writer.exhausted() {
        return Err(EncodeError::too_large(writer.cap()));
    }
    Ok(())
}

fn check_depth(depth: usize) -> Result<(), EncodeError> {
    if depth >= MAX_DEPTH {
        return Err(EncodeError::new(format!(
            "arrays/maps nested deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::on_main_sized_stack;

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

    fn to_json(value: &Dynamic) -> std::result::Result<String, EncodeError> {
        let mut writer = Writer::new(false);
        encode(value, &mut writer)?;
        Ok(String::from_utf8(writer.into_bytes()).expect("UTF-8"))
    }

    fn round_trip(text: &str) -> Result<String> {
        Ok(to_json(&decode(text.as_bytes())?)?)
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// Found by the `decode_rhai` fuzz target: serde_json's default float parser
    /// may be one ULP off, so a number lure wrote (shortest round-trip form) did
    /// not read back as itself. The `float_roundtrip` feature parses exactly.
    #[test]
    fn floats_decode_correctly_rounded() -> Result {
        for text in [
            "1.8446744073709521e+27",
            "-9.223372036854777e+43",
            "0.30000000000000004",
            "2.2250738585072014e-308",
            "1.7976931348623157e308",
        ] {
            let expected: f64 = text.parse()?;
            assert_eq!(decode(text.as_bytes())?.as_float()?, expected, "{text}");
            assert_eq!(round_trip(text)?.parse::<f64>()?, expected, "{text}");
        }
        Ok(())
    }

    #[test]
    fn values_round_trip() -> Result {
        for text in [
            r#"{"a":[1,2.5,"x",true,false,null],"b":{"c":{}},"d":[]}"#,
            "[]",
            "{}",
            "null",
            "-7",
            r#""héllo ☃ 😀\n""#,
        ] {
            assert_eq!(round_trip(text)?, text);
        }
        Ok(())
    }

    #[test]
    fn keys_come_out_sorted() -> Result {
        assert_eq!(
            round_trip(r#"{"b":1,"a":2,"B":3}"#)?,
            r#"{"B":3,"a":2,"b":1}"#
        );
        Ok(())
    }

    #[test]
    fn integers_and_floats_keep_their_types() -> Result {
        let v = decode(b"[1, 1.0, 1.5, -0, 18446744073709551615, 1e3]")?;
        let a = v.into_array()?;
        assert!(a[0].is_int());
        assert!(a[1].is_float());
        assert!(a[2].is_float());
        assert!(
            a[3].is_float(),
            "serde_json reads -0 as a float, as JavaScript does"
        );
        assert!(a[4].is_float(), "u64 above i64::MAX becomes a float");
        assert!(a[5].is_float());
        assert_eq!(to_json(&Dynamic::from_float(1.0))?, "1");
        assert_eq!(to_json(&Dynamic::from_float(1.5))?, "1.5");
        assert_eq!(
            to_json(&Dynamic::from_int(INT::MIN))?,
            "-9223372036854775808"
        );
        Ok(())
    }

    #[test]
    fn chars_and_shared_values_encode() -> Result {
        assert_eq!(to_json(&Dynamic::from_char('é'))?, r#""é""#);
        let shared = Dynamic::from_array(vec![Dynamic::from_int(1)]).into_shared();
        let mut map = Map::new();
        map.insert("s".into(), shared);
        assert_eq!(to_json(&Dynamic::from_map(map))?, r#"{"s":[1]}"#);
        Ok(())
    }

    #[test]
    fn nesting_up_to_the_limit_decodes() {
        on_main_sized_stack(|| nesting_at_the_limit().unwrap());
    }

    fn nesting_at_the_limit() -> Result {
        let text = nested(MAX_DEPTH);
        assert_eq!(round_trip(&text)?, text);
        let err = decode(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 1024"), "{err}");
        Ok(())
    }

    #[test]
    fn absurd_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        assert!(decode(text.as_bytes()).is_err());
        let text = r#"{"a":"#.repeat(100_000);
        assert!(decode(text.as_bytes()).is_err());
    }

    #[test]
    fn encoding_too_deep_is_an_error() {
        on_main_sized_stack(encoding_too_deep);
    }

    fn encoding_too_deep() {
        let mut v = Dynamic::from_array(Array::new());
        for _ in 0..MAX_DEPTH {
            v = Dynamic::from_array(vec![v]);
        }
        let err = to_json(&v).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    #[test]
    fn invalid_json_is_an_error() {
        for text in ["", "{", "[1,]", "{\"a\" 1}", "1 2", "nul"] {
            assert!(decode(text.as_bytes()).is_err(), "{text:?}");
        }
    }

    #[test]
    fn errors_name_the_json_path() {
        let mut item = Map::new();
        item.insert("f".into(), Dynamic::from(rhai::FnPtr::new("f").unwrap()));
        let items = vec![Dynamic::UNIT, Dynamic::UNIT, Dynamic::from_map(item)];
        let mut top = Map::new();
        top.insert("items".into(), Dynamic::from_array(items));
        let err = to_json(&Dynamic::from_map(top)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a Fn cannot be encoded as JSON at $.items[2].f"
        );
        let err = to_json(&Dynamic::from_array(vec![Dynamic::from_float(FLOAT::NAN)])).unwrap_err();
        assert_eq!(err.to_string(), "NaN is not a JSON number at $[0]");
        let err = to_json(&Dynamic::from_blob(vec![1])).unwrap_err();
        assert_eq!(err.to_string(), "a blob cannot be encoded as JSON at $");
    }

    /// A capped writer never yields a cut document as a whole one.
    #[test]
    fn a_capped_writer_never_passes_off_a_cut_document() -> Result {
        let value = decode(b"[[1,[2]]]")?;
        for cap in 0..9 {
            let mut writer = Writer::with_limit(false, cap);
            let result = encode(&value, &mut writer);
            assert!(
                result.as_ref().is_err_and(EncodeError::is_too_large),
                "cap {cap}: {result:?}"
            );
        }
        let mut writer = Writer::with_limit(false, 9);
        encode(&value, &mut writer)?;
        assert_eq!(writer.into_bytes(), b"[[1,[2]]]");
        Ok(())
    }
}
