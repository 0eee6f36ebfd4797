//! JSON ↔ Lua values (SPEC §4).

use std::ffi::{c_char, c_int, c_void};
use std::fmt;

use mlua::{LightUserData, Lua, Table, Value, ffi};
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

/// Runs `f` on the state's raw stack with `args` pushed, the garbage collector
/// paused and no memory limit, so that no Lua API call inside `f` can raise an
/// error (which would jump over Rust frames). The limit is checked afterwards.
/// This is the fast path for whole documents: one protected call instead of one
/// per value created or read.
fn with_raw_stack(
    lua: &Lua,
    args: impl mlua::IntoLuaMulti,
    f: impl FnOnce(*mut ffi::lua_State),
) -> mlua::Result<Value> {
    let limit = lua.set_memory_limit(0)?;
    // SAFETY: `f` only uses the stack above the arguments, and with the collector
    // paused and no limit the API calls it makes cannot raise Lua errors.
    let result = unsafe {
        lua.exec_raw::<Value>(args, |state| {
            let collecting = ffi::lua_gc(state, ffi::LUA_GCISRUNNING, 0) != 0;
            if collecting {
                ffi::lua_gc(state, ffi::LUA_GCSTOP, 0);
            }
            f(state);
            if collecting {
                ffi::lua_gc(state, ffi::LUA_GCRESTART, 0);
            }
        })
    };
    lua.set_memory_limit(limit)?;
    if limit != 0 && lua.used_memory() > limit {
        return Err(mlua::Error::MemoryError("not enough memory".into()));
    }
    result
}

/// Stack index of `json.array_mt` while decoding or encoding (the second argument
/// of the raw call; the first is the value or a placeholder).
const ARRAY_MT: c_int = 2;

/// Decodes JSON text into a Lua value: objects → tables, arrays → tables carrying
/// `json.array_mt`, `null` → `json.null`, integers → integers, others → floats.
pub fn decode(lua: &Lua, bytes: &[u8]) -> Result<Value, DecodeError> {
    let array_mt = with_sentinels(lua, |s| s.array_mt.clone());
    let mut outcome = None;
    let value = with_raw_stack(lua, (Value::Nil, array_mt), |state| {
        let decoded = decode_with(bytes, RawSeed { state, depth: 0 });
        // SAFETY: on success the value is on top; leave exactly it as the result.
        unsafe {
            if decoded.is_ok() {
                ffi::lua_replace(state, 1);
                ffi::lua_settop(state, 1);
            } else {
                ffi::lua_settop(state, 0);
            }
        }
        outcome = Some(decoded);
    })
    .map_err(DecodeError::Lua)?;
    match outcome {
        Some(Ok(())) => Ok(value),
        Some(Err(e)) => Err(DecodeError::Json(e)),
        None => unreachable!("the raw call ran"),
    }
}

/// Pushes each decoded value onto the Lua stack.
#[derive(Clone, Copy)]
struct RawSeed {
    state: *mut ffi::lua_State,
    /// Containers enclosing the value being decoded.
    depth: usize,
}

impl RawSeed {
    fn nested(self) -> Self {
        RawSeed {
            depth: self.depth + 1,
            ..self
        }
    }

    /// Room for a container, its key and its value, or an error.
    fn reserve<E: de::Error>(self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        // SAFETY: a valid state; `lua_checkstack` reports failure, never raises.
        if unsafe { ffi::lua_checkstack(self.state, 3) } == 0 {
            return Err(E::custom("the Lua stack cannot grow"));
        }
        Ok(())
    }

    fn push_str(self, s: &str) {
        // SAFETY: pushes a copy of the bytes; cannot raise (see `with_raw_stack`).
        unsafe { ffi::lua_pushlstring(self.state, s.as_ptr().cast::<c_char>(), s.len()) };
    }
}

impl<'de> DeserializeSeed<'de> for RawSeed {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

// SAFETY (every `unsafe` below): pushes onto the stack of the raw call, which has
// room (`reserve`) and cannot raise errors (see `with_raw_stack`).
impl<'de> Visitor<'de> for RawSeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        unsafe { ffi::lua_pushlightuserdata(self.state, std::ptr::null_mut()) };
        Ok(())
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        unsafe { ffi::lua_pushboolean(self.state, c_int::from(b)) };
        Ok(())
    }

    fn visit_i64<E>(self, i: i64) -> Result<(), E> {
        unsafe { ffi::lua_pushinteger(self.state, i) };
        Ok(())
    }

    fn visit_u64<E>(self, u: u64) -> Result<(), E> {
        match i64::try_from(u) {
            Ok(i) => unsafe { ffi::lua_pushinteger(self.state, i) },
            Err(_) => unsafe { ffi::lua_pushnumber(self.state, u as f64) },
        }
        Ok(())
    }

    fn visit_f64<E>(self, f: f64) -> Result<(), E> {
        unsafe { ffi::lua_pushnumber(self.state, f) };
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.push_str(s);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.reserve()?;
        let mut pending = Pending::new(self.state, 1);
        let mut index = 1;
        while seq.next_element_seed(self.nested())?.is_some() {
            if pending.push::<A::Error>()? {
                pending.flush(|state, table, slot| unsafe {
                    ffi::lua_pushvalue(state, slot);
                    ffi::lua_rawseti(state, table, index);
                    index += 1;
                });
            }
        }
        pending.flush(|state, table, slot| unsafe {
            ffi::lua_pushvalue(state, slot);
            ffi::lua_rawseti(state, table, index);
            index += 1;
        });
        unsafe {
            ffi::lua_pushvalue(self.state, ARRAY_MT);
            ffi::lua_setmetatable(self.state, -2);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.reserve()?;
        let mut pending = Pending::new(self.state, 2);
        // In document order, so a repeated key keeps its last value, as in JavaScript.
        let set = |state, table, slot| unsafe {
            ffi::lua_pushvalue(state, slot);
            ffi::lua_pushvalue(state, slot + 1);
            ffi::lua_rawset(state, table);
        };
        while map.next_key_seed(KeySeed(self))?.is_some() {
            map.next_value_seed(self.nested())?;
            if pending.push::<A::Error>()? {
                pending.flush(set);
            }
        }
        pending.flush(set);
        Ok(())
    }
}

/// Items of a container being decoded, waiting on the stack so that its table can
/// be created with their number as its size; flushed into the table every
/// [`Pending::CHUNK`] items so that a huge array does not exhaust the stack.
struct Pending {
    state: *mut ffi::lua_State,
    /// Stack slots per item: 1 (array element) or 2 (key and value).
    width: c_int,
    /// The slot the table goes to, once created; items start above it.
    table: c_int,
    created: bool,
    count: c_int,
}

impl Pending {
    const CHUNK: c_int = 1024;

    fn new(state: *mut ffi::lua_State, width: c_int) -> Self {
        // SAFETY: reads the stack top of the raw call.
        let table = unsafe { ffi::lua_gettop(state) } + 1;
        Pending {
            state,
            width,
            table,
            created: false,
            count: 0,
        }
    }

    /// Counts the item just pushed; true when the chunk is full.
    fn push<E: de::Error>(&mut self) -> Result<bool, E> {
        self.count += 1;
        // SAFETY: `lua_checkstack` reports failure, never raises.
        if unsafe { ffi::lua_checkstack(self.state, self.width + 2) } == 0 {
            return Err(E::custom("the Lua stack cannot grow"));
        }
        Ok(self.count == Self::CHUNK)
    }

    /// Creates the table if needed (sized for the items waiting), sets each item
    /// with `set(state, table slot, item slot)`, and leaves the table on top.
    fn flush(&mut self, mut set: impl FnMut(*mut ffi::lua_State, c_int, c_int)) {
        let state = self.state;
        // SAFETY: the raw call's stack, with room (`push`), cannot raise errors.
        unsafe {
            if !self.created {
                let (narr, nrec) = if self.width == 1 {
                    (self.count, 0)
                } else {
                    (0, self.count)
                };
                ffi::lua_createtable(state, narr, nrec);
                ffi::lua_rotate(state, self.table, 1);
                self.created = true;
            }
            for i in 0..self.count {
                set(state, self.table, self.table + 1 + i * self.width);
            }
            ffi::lua_settop(state, self.table);
        }
        self.count = 0;
    }
}

/// Object keys go straight to Lua strings, without an owned Rust copy.
struct KeySeed(RawSeed);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.0.push_str(s);
        Ok(())
    }
}

/// Encodes a Lua value as JSON (SPEC §4): tables with keys `1..n` or carrying
/// `json.array_mt` are arrays, other tables objects (keys sorted, so output is
/// stable); anything JSON cannot hold is an [`EncodeError`] naming its path.
pub fn encode(lua: &Lua, value: &Value, writer: &mut Writer) -> Result<(), EncodeError> {
    let array_mt = with_sentinels(lua, |s| s.array_mt.clone());
    let mut outcome = None;
    with_raw_stack(lua, (value.clone(), array_mt), |state| {
        let mut encoder = RawEncoder {
            state,
            writer: &mut *writer,
            enclosing: Vec::new(),
        };
        outcome = Some(encoder.value(1));
        // SAFETY: nothing is returned.
        unsafe { ffi::lua_settop(state, 0) };
    })
    .map_err(|e| EncodeError::new(e.to_string()))?;
    outcome.unwrap_or_else(|| unreachable!("the raw call ran"))
}

/// Walks a value on the raw stack, writing JSON.
///
/// SAFETY (every `unsafe` in its methods): reads and pushes on the stack of the
/// raw call, which has room (`lua_checkstack` per table) and cannot raise errors
/// (see `with_raw_stack`); the bytes of a string stay valid while the string is
/// on the stack or a key of a table on the stack, which is unchanged meanwhile.
struct RawEncoder<'w> {
    state: *mut ffi::lua_State,
    writer: &'w mut Writer,
    /// Tables being encoded, outermost first: finds cycles and bounds depth.
    enclosing: Vec<*const c_void>,
}

/// A table entry whose key and value sit on the stack (key at `slot`, value above).
struct Entry {
    slot: c_int,
    key: Key,
}

/// An object key: a Lua string's bytes, or a number (also written as JSON text).
enum Key {
    Str(*const u8, usize),
    Integer(i64, String),
    Float(String),
}

impl Key {
    fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: see `RawEncoder`: the key string is on the stack.
            Key::Str(ptr, len) => unsafe { std::slice::from_raw_parts(*ptr, *len) },
            Key::Integer(_, text) | Key::Float(text) => text.as_bytes(),
        }
    }
}

impl RawEncoder<'_> {
    fn string_at(&self, index: c_int) -> &[u8] {
        let mut len = 0;
        let ptr = unsafe { ffi::lua_tolstring(self.state, index, &mut len) };
        unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
    }

    /// Encodes the value at stack `index` (absolute).
    fn value(&mut self, index: c_int) -> Result<(), EncodeError> {
        let state = self.state;
        match unsafe { ffi::lua_type(state, index) } {
            ffi::LUA_TNIL => self.writer.null(),
            ffi::LUA_TBOOLEAN => self
                .writer
                .bool(unsafe { ffi::lua_toboolean(state, index) } != 0),
            ffi::LUA_TNUMBER => {
                if unsafe { ffi::lua_isinteger(state, index) } != 0 {
                    self.writer
                        .int(unsafe { ffi::lua_tointegerx(state, index, std::ptr::null_mut()) });
                } else {
                    self.writer
                        .float(unsafe { ffi::lua_tonumberx(state, index, std::ptr::null_mut()) })?;
                }
            }
            ffi::LUA_TSTRING => match std::str::from_utf8(self.string_at(index)) {
                Ok(text) => {
                    // The borrow of the stack ends before the writer is used.
                    let (ptr, len) = (text.as_ptr(), text.len());
                    let text = unsafe {
                        std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len))
                    };
                    self.writer.string(text);
                }
                Err(_) => return Err(EncodeError::new("string is not valid UTF-8")),
            },
            ffi::LUA_TTABLE => self.table(index)?,
            ffi::LUA_TLIGHTUSERDATA => {
                let ptr = unsafe { ffi::lua_touserdata(state, index) };
                if ptr.is_null() {
                    self.writer.null();
                } else if ptr == empty_array_ptr() {
                    self.writer.begin_array();
                    self.writer.end_array(true);
                } else {
                    return Err(EncodeError::new(
                        "a lightuserdata cannot be encoded as JSON",
                    ));
                }
            }
            other => {
                let name = match other {
                    ffi::LUA_TFUNCTION => "function",
                    ffi::LUA_TTHREAD => "thread",
                    _ => "userdata",
                };
                return Err(EncodeError::new(format!(
                    "a {name} cannot be encoded as JSON"
                )));
            }
        }
        Ok(())
    }

    fn table(&mut self, index: c_int) -> Result<(), EncodeError> {
        let ptr = unsafe { ffi::lua_topointer(self.state, index) };
        if self.enclosing.contains(&ptr) {
            return Err(EncodeError::new("table contains itself (recursive table)"));
        }
        if self.enclosing.len() >= MAX_DEPTH || unsafe { ffi::lua_checkstack(self.state, 4) } == 0 {
            return Err(EncodeError::new(format!(
                "tables nested deeper than {MAX_DEPTH} levels"
            )));
        }
        self.enclosing.push(ptr);
        let result = self.table_contents(index);
        self.enclosing.pop();
        result
    }

    fn has_array_mt(&self, index: c_int) -> bool {
        let state = self.state;
        unsafe {
            if ffi::lua_getmetatable(state, index) == 0 {
                return false;
            }
            let same = ffi::lua_rawequal(state, -1, ARRAY_MT) != 0;
            ffi::lua_pop(state, 1);
            same
        }
    }

    fn table_contents(&mut self, index: c_int) -> Result<(), EncodeError> {
        let state = self.state;
        if self.has_array_mt(index) {
            let len = unsafe { ffi::lua_rawlen(state, index) };
            return self.array(index, len);
        }
        // One pass over the table, leaving each key and value on the stack: `lua_next`
        // takes the previous key from the top, so a copy of it is pushed each time.
        let base = unsafe { ffi::lua_gettop(state) };
        let mut entries = Vec::new();
        let (mut max, mut sequence) = (0i64, true);
        unsafe {
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, index) != 0 {
                let slot = ffi::lua_gettop(state) - 1;
                let key = match ffi::lua_type(state, slot) {
                    ffi::LUA_TSTRING => {
                        sequence = false;
                        let mut len = 0;
                        let ptr = ffi::lua_tolstring(state, slot, &mut len);
                        Key::Str(ptr.cast::<u8>(), len)
                    }
                    ffi::LUA_TNUMBER if ffi::lua_isinteger(state, slot) != 0 => {
                        let i = ffi::lua_tointegerx(state, slot, std::ptr::null_mut());
                        sequence &= i >= 1;
                        max = max.max(i);
                        Key::Integer(i, String::new())
                    }
                    ffi::LUA_TNUMBER => {
                        sequence = false;
                        let f = ffi::lua_tonumberx(state, slot, std::ptr::null_mut());
                        let mut w = Writer::new(false);
                        w.float(f)?;
                        Key::Float(String::from_utf8(w.into_bytes()).expect("ASCII number"))
                    }
                    other => {
                        let name = match other {
                            ffi::LUA_TBOOLEAN => "boolean",
                            ffi::LUA_TTABLE => "table",
                            ffi::LUA_TFUNCTION => "function",
                            ffi::LUA_TTHREAD => "thread",
                            ffi::LUA_TLIGHTUSERDATA => "lightuserdata",
                            _ => "userdata",
                        };
                        return Err(EncodeError::new(format!(
                            "a table key of type {name} cannot be a JSON object key"
                        )));
                    }
                };
                entries.push(Entry { slot, key });
                if ffi::lua_checkstack(state, 3) == 0 {
                    return Err(EncodeError::new("table too large for the Lua stack"));
                }
                ffi::lua_pushvalue(state, slot);
            }
        }
        let result = if sequence && !entries.is_empty() && max as usize == entries.len() {
            entries.sort_unstable_by_key(|e| match e.key {
                Key::Integer(i, _) => i,
                _ => 0,
            });
            self.sequence(&entries)
        } else {
            self.object(entries)
        };
        unsafe { ffi::lua_settop(state, base) };
        result
    }

    /// A table with keys `1..n`, its entries on the stack sorted by key.
    fn sequence(&mut self, entries: &[Entry]) -> Result<(), EncodeError> {
        self.writer.begin_array();
        for (i, entry) in entries.iter().enumerate() {
            self.writer.element(i == 0);
            self.value(entry.slot + 1).map_err(|e| e.at_index(i))?;
        }
        self.writer.end_array(false);
        Ok(())
    }

    fn array(&mut self, index: c_int, len: usize) -> Result<(), EncodeError> {
        self.writer.begin_array();
        for i in 0..len {
            self.writer.element(i == 0);
            unsafe { ffi::lua_rawgeti(self.state, index, i as i64 + 1) };
            let top = unsafe { ffi::lua_gettop(self.state) };
            self.value(top).map_err(|e| e.at_index(i))?;
            unsafe { ffi::lua_pop(self.state, 1) };
        }
        self.writer.end_array(len == 0);
        Ok(())
    }

    fn object(&mut self, mut entries: Vec<Entry>) -> Result<(), EncodeError> {
        for entry in &mut entries {
            if let Key::Integer(i, text) = &mut entry.key {
                *text = i.to_string();
            }
        }
        entries.sort_unstable_by(|a, b| a.key.bytes().cmp(b.key.bytes()));
        // `t[2]` and `t["2"]` are two entries but one JSON key: writing both would
        // give a document whose readers keep one of them, silently.
        if let Some(pair) = entries
            .windows(2)
            .find(|w| w[0].key.bytes() == w[1].key.bytes())
        {
            let key = String::from_utf8_lossy(pair[0].key.bytes()).into_owned();
            return Err(EncodeError::new(format!(
                "table has the number key {key} and the string key \"{key}\", the same JSON object key"
            )));
        }

        self.writer.begin_object();
        for (i, entry) in entries.iter().enumerate() {
            let key_text = std::str::from_utf8(entry.key.bytes())
                .map_err(|_| EncodeError::new("table key is not valid UTF-8"))?;
            self.writer.member(i == 0, key_text);
            self.value(entry.slot + 1).map_err(|e| e.at_key(key_text))?;
        }
        self.writer.end_object(entries.is_empty());
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
    fn big_containers_and_repeated_keys_decode_exactly() -> mlua::Result<()> {
        let lua = lua()?;
        // Several chunks of pending items, and a partial last one.
        let items: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
        let text = format!("[{}]", items.join(","));
        let value = decode(&lua, text.as_bytes()).unwrap();
        let mut writer = Writer::new(false);
        encode(&lua, &value, &mut writer).unwrap();
        assert_eq!(writer.into_bytes(), text.into_bytes());
        // A repeated key keeps its last value, as in JavaScript.
        let members: Vec<String> = (0..2000).map(|i| format!("\"k{i}\":{i}")).collect();
        let text = format!("{{{},\"k7\":\"last\"}}", members.join(","));
        let value = decode(&lua, text.as_bytes()).unwrap();
        let table = value.as_table().unwrap();
        assert_eq!(table.get::<String>("k7")?, "last");
        assert_eq!(table.get::<i64>("k1999")?, 1999);
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
