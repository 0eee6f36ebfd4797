//! JSON ↔ Lua values (SPEC §4).

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

/// Decodes JSON text into a Lua value: objects → tables, arrays → tables carrying
/// `json.array_mt`, `null` → `json.null`, integers → integers, others → floats.
pub fn decode(lua: &Lua, bytes: &[u8]) -> Result<Value, serde_json::Error> {
    with_sentinels(lua, |s| {
        decode_with(
            bytes,
            LuaSeed {
                lua,
                array_mt: &s.array_mt,
                depth: 0,
            },
        )
    })
}

#[derive(Clone, Copy)]
struct LuaSeed<'a> {
    lua: &'a Lua,
    array_mt: &'a Table,
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

fn lua_err<E: de::Error>(e: mlua::Error) -> E {
    E::custom(e)
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
        self.lua.create_string(s).map(Value::String).map_err(lua_err)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let table = self
            .lua
            .create_table_with_capacity(seq.size_hint().unwrap_or(0), 0)
            .map_err(lua_err)?;
        table
            .set_metatable(Some(self.array_mt.clone()))
            .map_err(lua_err)?;
        let mut index = 1;
        while let Some(item) = seq.next_element_seed(self.nested())? {
            table.raw_set(index, item).map_err(lua_err)?;
            index += 1;
        }
        Ok(Value::Table(table))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let table = self.lua.create_table().map_err(lua_err)?;
        while let Some(key) = map.next_key_seed(KeySeed(self.lua))? {
            let value = map.next_value_seed(self.nested())?;
            table.raw_set(key, value).map_err(lua_err)?;
        }
        Ok(Value::Table(table))
    }
}

/// Object keys go straight to Lua strings, without an owned Rust copy.
struct KeySeed<'a>(&'a Lua);

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
        self.0.create_string(s).map_err(lua_err)
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
