//! JSON ↔ Lua values (SPEC §4).

use std::cell::RefCell;
use std::ffi::c_void;
use std::fmt;

use mlua::{LightUserData, Lua, Table, Value};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{EncodeError, MAX_DEPTH, Writer, decode_with, too_deep};

/// `json.null`: a NULL light userdata, as cjson and mlua use.
pub fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// Any static byte gives `json.empty_array` an address no other light userdata has.
static EMPTY_ARRAY_TAG: u8 = 0;

fn empty_array_ptr() -> *mut c_void {
    (&raw const EMPTY_ARRAY_TAG).cast_mut().cast()
}

/// Per-state values the JSON mapping needs; stored as the state's app data.
pub struct Sentinels {
    /// `json.array_mt`: tables carrying it encode as arrays, even when empty.
    pub array_mt: Table,
}

impl Sentinels {
    pub fn create(lua: &Lua) -> mlua::Result<Self> {
        let array_mt = lua.create_table()?;
        array_mt.set("__name", "json.array")?;
        Ok(Sentinels { array_mt })
    }

    /// `json.empty_array`: encodes as `[]`.
    pub fn empty_array(&self) -> Value {
        Value::LightUserData(LightUserData(empty_array_ptr()))
    }
}

fn with_sentinels<R>(lua: &Lua, f: impl FnOnce(&Sentinels) -> R) -> R {
    let sentinels = lua
        .app_data_ref::<Sentinels>()
        .expect("json module registered before use");
    f(&sentinels)
}

/// Why decoding failed: the text, or the Lua state (out of memory).
#[derive(Debug)]
pub enum DecodeError {
    Json(serde_json::Error),
    Lua(mlua::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(e) => e.fmt(f),
            DecodeError::Lua(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes JSON text into a Lua value: objects → tables, arrays → tables carrying
/// `json.array_mt`, `null` → `json.null`, integers → integers, others → floats.
pub fn decode(lua: &Lua, bytes: &[u8]) -> Result<Value, DecodeError> {
    let lua_failure = RefCell::new(None);
    let result = with_sentinels(lua, |s| {
        decode_with(
            bytes,
            LuaSeed {
                lua,
                array_mt: &s.array_mt,
                lua_failure: &lua_failure,
                depth: 0,
            },
        )
    });
    result.map_err(|e| match lua_failure.into_inner() {
        Some(lua_error) => DecodeError::Lua(lua_error),
        None => DecodeError::Json(e),
    })
}

#[derive(Clone, Copy)]
struct LuaSeed<'a> {
    lua: &'a Lua,
    array_mt: &'a Table,
    /// The Lua error that stopped decoding, kept whole for the caller.
    lua_failure: &'a RefCell<Option<mlua::Error>>,
    /// Containers enclosing the value being decoded.
    depth: usize,
}

impl LuaSeed<'_> {
    fn nested(self) -> Self {
        LuaSeed {
            depth: self.depth + 1,
            ..self
        }
    }
}

impl<'de> DeserializeSeed<'de> for LuaSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl LuaSeed<'_> {
    fn fail<E: de::Error>(&self, e: mlua::Error) -> E {
        let error = E::custom(&e);
        *self.lua_failure.borrow_mut() = Some(e);
        error
    }
}

impl<'de> Visitor<'de> for LuaSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(null())
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Boolean(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Integer(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(match i64::try_from(u) {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::Number(u as f64),
        })
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Number(f))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.lua
            .create_string(s)
            .map(Value::String)
            .map_err(|e| self.fail(e))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let table = self
            .lua
            .create_table_with_capacity(seq.size_hint().unwrap_or(0), 0)
            .map_err(|e| self.fail(e))?;
        table
            .set_metatable(Some(self.array_mt.clone()))
            .map_err(|e| self.fail(e))?;
        let mut index = 1;
        while let Some(item) = seq.next_element_seed(self.nested())? {
            table.raw_set(index, item).map_err(|e| self.fail(e))?;
            index += 1;
        }
        Ok(Value::Table(table))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let table = self.lua.create_table().map_err(|e| self.fail(e))?;
        while let Some(key) = map.next_key_seed(KeySeed(self))? {
            let value = map.next_value_seed(self.nested())?;
            table.raw_set(key, value).map_err(|e| self.fail(e))?;
        }
        Ok(Value::Table(table))
    }
}

/// Object keys go straight to Lua strings, without an owned Rust copy.
struct KeySeed<'a>(LuaSeed<'a>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = mlua::LuaString;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<mlua::LuaString, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = mlua::LuaString;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<mlua::LuaString, E> {
        self.0.lua.create_string(s).map_err(|e| self.0.fail(e))
    }
}

/// Encodes a Lua value as JSON (SPEC §4): tables with keys `1..n` or carrying
/// `json.array_mt` are arrays, other tables objects (keys sorted, so output is
/// stable); anything JSON cannot hold is an [`EncodeError`] naming its path.
pub fn encode(lua: &Lua, value: &Value, writer: &mut Writer) -> Result<(), EncodeError> {
    with_sentinels(lua, |s| {
        Encoder {
            writer,
            array_mt: s.array_mt.to_pointer(),
            enclosing: Vec::new(),
        }
        .value(value)
    })
}

struct Encoder<'w> {
    writer: &'w mut Writer,
    array_mt: *const c_void,
    /// Tables being encoded, outermost first: finds cycles and bounds depth.
    enclosing: Vec<*const c_void>,
}

enum Key {
    Lua(mlua::LuaString),
    Owned(String),
}

impl Key {
    fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Key::Lua(s) => std::borrow::Cow::Owned(s.as_bytes().to_vec()),
            Key::Owned(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
        }
    }
}

impl Encoder<'_> {
    fn value(&mut self, value: &Value) -> Result<(), EncodeError> {
        match value {
            Value::Nil => self.writer.null(),
            Value::Boolean(b) => self.writer.bool(*b),
            Value::Integer(i) => self.writer.int(*i),
            Value::Number(f) => self.writer.float(*f)?,
            Value::String(s) => match s.to_str() {
                Ok(text) => self.writer.string(&text),
                Err(_) => return Err(EncodeError::new("string is not valid UTF-8")),
            },
            Value::Table(t) => self.table(t)?,
            Value::LightUserData(p) if p.0.is_null() => self.writer.null(),
            Value::LightUserData(p) if p.0 == empty_array_ptr() => {
                self.writer.begin_array();
                self.writer.end_array(true);
            }
            other => {
                return Err(EncodeError::new(format!(
                    "a {} cannot be encoded as JSON",
                    other.type_name()
                )));
            }
        }
        Ok(())
    }

    fn table(&mut self, table: &Table) -> Result<(), EncodeError> {
        let ptr = table.to_pointer();
        if self.enclosing.contains(&ptr) {
            return Err(EncodeError::new("table contains itself (recursive table)"));
        }
        if self.enclosing.len() >= MAX_DEPTH {
            return Err(EncodeError::new(format!(
                "tables nested deeper than {MAX_DEPTH} levels"
            )));
        }
        self.enclosing.push(ptr);
        let result = self.table_contents(table);
        self.enclosing.pop();
        result
    }

    fn table_contents(&mut self, table: &Table) -> Result<(), EncodeError> {
        let is_array_mt = table
            .metatable()
            .is_some_and(|mt| mt.to_pointer() == self.array_mt);
        if is_array_mt {
            let items = (1..=table.raw_len())
                .map(|i| table.raw_get::<Value>(i))
                .collect::<mlua::Result<Vec<_>>>()
                .map_err(|e| EncodeError::new(e.to_string()))?;
            return self.array(&items);
        }

        let mut entries = Vec::new();
        let mut all_positive_integers = true;
        for pair in table.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| EncodeError::new(e.to_string()))?;
            all_positive_integers &= matches!(k, Value::Integer(i) if i >= 1);
            entries.push((k, v));
        }
        if all_positive_integers && !entries.is_empty() {
            let max = entries
                .iter()
                .map(|(k, _)| k.as_integer().unwrap_or(0))
                .max()
                .unwrap_or(0);
            if max as usize == entries.len() {
                entries.sort_unstable_by_key(|(k, _)| k.as_integer().unwrap_or(0));
                let items: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();
                return self.array(&items);
            }
        }
        self.object(entries)
    }

    fn array(&mut self, items: &[Value]) -> Result<(), EncodeError> {
        self.writer.begin_array();
        for (i, item) in items.iter().enumerate() {
            self.writer.element(i == 0);
            self.value(item).map_err(|e| e.at_index(i))?;
        }
        self.writer.end_array(items.is_empty());
        Ok(())
    }

    fn object(&mut self, entries: Vec<(Value, Value)>) -> Result<(), EncodeError> {
        let mut members = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let key = match k {
                Value::String(s) => Key::Lua(s),
                Value::Integer(i) => Key::Owned(i.to_string()),
                Value::Number(f) => {
                    let mut w = Writer::new(false);
                    w.float(f)?;
                    Key::Owned(String::from_utf8(w.into_bytes()).expect("ASCII number"))
                }
                other => {
                    return Err(EncodeError::new(format!(
                        "a table key of type {} cannot be a JSON object key",
                        other.type_name()
                    )));
                }
            };
            members.push((key, v));
        }
        members.sort_unstable_by(|(a, _), (b, _)| a.bytes().cmp(&b.bytes()));
        // `t[2]` and `t["2"]` are two entries but one JSON key: writing both would
        // give a document whose readers keep one of them, silently.
        if let Some(pair) = members
            .windows(2)
            .find(|w| w[0].0.bytes() == w[1].0.bytes())
        {
            let key = String::from_utf8_lossy(&pair[0].0.bytes()).into_owned();
            return Err(EncodeError::new(format!(
                "table has the number key {key} and the string key \"{key}\", the same JSON object key"
            )));
        }

        self.writer.begin_object();
        for (i, (key, value)) in members.iter().enumerate() {
            let key_text = match key {
                Key::Lua(s) => s
                    .to_str()
                    .map(|s| s.to_owned())
                    .map_err(|_| EncodeError::new("table key is not valid UTF-8"))?,
                Key::Owned(s) => s.clone(),
            };
            self.writer.member(i == 0, &key_text);
            self.value(value).map_err(|e| e.at_key(key_text))?;
        }
        self.writer.end_object(members.is_empty());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::on_main_sized_stack;

    fn lua() -> mlua::Result<Lua> {
        let lua = Lua::new();
        crate::stdlib::register_lua(&lua)?;
        Ok(lua)
    }

    /// Evaluates a Lua expression and encodes it.
    fn encode_expr(lua: &Lua, expr: &str) -> Result<String, EncodeError> {
        let value: Value = lua
            .load(format!("return {expr}"))
            .eval()
            .expect("valid Lua");
        let mut writer = Writer::new(false);
        encode(lua, &value, &mut writer)?;
        Ok(String::from_utf8(writer.into_bytes()).unwrap())
    }

    #[test]
    fn tables_become_arrays_or_objects_by_their_keys() -> mlua::Result<()> {
        let lua = lua()?;
        let cases = [
            ("{1, 2, 3}", "[1,2,3]"),
            ("{}", "{}"),
            ("setmetatable({}, json.array_mt)", "[]"),
            ("json.empty_array", "[]"),
            ("{b = 1, a = {c = json.null}}", r#"{"a":{"c":null},"b":1}"#),
            ("{[1] = 'a', [3] = 'c'}", r#"{"1":"a","3":"c"}"#),
            ("{1, 2, x = 3}", r#"{"1":1,"2":2,"x":3}"#),
            ("{[1.5] = true}", r#"{"1.5":true}"#),
            ("3.0", "3"),
            ("-0.0", "0"),
            ("2^53", "9007199254740992"),
            ("'é\\n'", "\"é\\n\""),
            ("nil", "null"),
        ];
        for (expr, json) in cases {
            assert_eq!(encode_expr(&lua, expr).unwrap(), json, "{expr}");
        }
        Ok(())
    }

    #[test]
    fn unencodable_values_name_their_path() -> mlua::Result<()> {
        let lua = lua()?;
        let cases = [
            (
                "{items = {1, 2, {f = print}}}",
                "a function cannot be encoded as JSON at $.items[2].f",
            ),
            ("{x = 0/0}", "NaN is not a JSON number at $.x"),
            (
                "{['a b'] = {math.huge}}",
                "Infinity is not a JSON number at $['a b'][0]",
            ),
            ("{s = '\\xff'}", "string is not valid UTF-8 at $.s"),
            (
                "{[true] = 1}",
                "a table key of type boolean cannot be a JSON object key at $",
            ),
            (
                "{co = coroutine.create(print)}",
                "a thread cannot be encoded as JSON at $.co",
            ),
            // Found by the `encode_lua` fuzz target: these became duplicate keys.
            (
                "{a = {[2] = 'x', ['2'] = 'y', [3] = 'z'}}",
                "table has the number key 2 and the string key \"2\", the same JSON object key at $.a",
            ),
            (
                "{[0.5] = 1, ['0.5'] = 2}",
                "table has the number key 0.5 and the string key \"0.5\", the same JSON object key at $",
            ),
        ];
        for (expr, message) in cases {
            assert_eq!(
                encode_expr(&lua, expr).unwrap_err().to_string(),
                message,
                "{expr}"
            );
        }
        let err = encode_expr(
            &lua,
            "(function() local t = {}; t.self = {t}; return t end)()",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "table contains itself (recursive table) at $.self[0]"
        );
        Ok(())
    }

    #[test]
    fn decoded_values_round_trip() -> mlua::Result<()> {
        let lua = lua()?;
        let text = r#"{"a":[],"b":{},"c":[1,1.5,null,"x"],"d":18446744073709551615,"e":-7}"#;
        let value = decode(&lua, text.as_bytes()).unwrap();
        let table = value.as_table().unwrap();
        assert_eq!(table.get::<Value>("e")?, Value::Integer(-7));
        assert!(matches!(table.get::<Value>("d")?, Value::Number(_)));
        let mut writer = Writer::new(false);
        encode(&lua, &value, &mut writer).unwrap();
        assert_eq!(
            String::from_utf8(writer.into_bytes()).unwrap(),
            r#"{"a":[],"b":{},"c":[1,1.5,null,"x"],"d":18446744073709552000,"e":-7}"#
        );
        Ok(())
    }

    #[test]
    fn nesting_is_bounded_on_both_sides() {
        on_main_sized_stack(|| nesting_at_the_limit().unwrap());
    }

    fn nesting_at_the_limit() -> mlua::Result<()> {
        let lua = lua()?;
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let value = decode(&lua, deep(MAX_DEPTH).as_bytes()).unwrap();
        let mut writer = Writer::new(false);
        encode(&lua, &value, &mut writer).unwrap();
        assert_eq!(writer.into_bytes(), deep(MAX_DEPTH).into_bytes());
        let err = decode(&lua, deep(100_000).as_bytes()).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 1024"), "{err}");
        Ok(())
    }
}
