//! JSON ↔ Lua values (SPEC §4).

use std::cell::{Cell, RefCell};
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
    /// Anchors the decoder's [`KeyCache`] strings, slot `i` at index `i + 1`.
    key_strings: Table,
    /// Taken while a decode uses them; a decode nested in one (from a finalizer
    /// the collector runs meanwhile) goes without.
    key_cache: Cell<Option<Box<KeyCache>>>,
    /// Taken while an encode uses them.
    key_literals: Cell<KeyLiterals>,
}

impl Sentinels {
    pub fn create(lua: &Lua) -> mlua::Result<Self> {
        let array_mt = lua.create_table()?;
        array_mt.set("__name", "json.array")?;
        Ok(Sentinels {
            array_mt,
            key_strings: lua.create_table_with_capacity(KeyCache::SLOTS, 0)?,
            key_cache: Cell::new(Some(Box::default())),
            key_literals: Cell::default(),
        })
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

/// Runs `f` on the state's raw stack with `args` pushed and no memory limit, so
/// that no Lua API call inside `f` can raise an error (which would jump over Rust
/// frames): allocations cannot fail, and a collection step cannot raise either (Lua
/// 5.4 turns errors in finalizers into warnings). The limit is checked afterwards.
/// This is the fast path for whole documents: one protected call instead of one
/// per value created or read.
///
/// The collector keeps running (pausing it would cost a collection step on every
/// restart, which resets its debt): values `f` creates must stay anchored on the
/// stack until they are set into a table.
fn with_raw_stack(
    lua: &Lua,
    args: impl mlua::IntoLuaMulti,
    f: impl FnOnce(*mut ffi::lua_State),
) -> mlua::Result<Value> {
    let limit = lua.set_memory_limit(0)?;
    // SAFETY: `f` only uses the stack above the arguments, and with no limit the
    // API calls it makes cannot raise Lua errors.
    let result = unsafe { lua.exec_raw::<Value>(args, f) };
    lua.set_memory_limit(limit)?;
    // Over the limit, garbage may be what fills it (a script that caught its own
    // out-of-memory error leaves plenty): collect it before giving up.
    if limit != 0
        && lua.used_memory() > limit
        && (lua.gc_collect().is_err() || lua.used_memory() > limit)
    {
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
    let (array_mt, key_strings, cache) = with_sentinels(lua, |s| {
        (
            s.array_mt.clone(),
            s.key_strings.clone(),
            s.key_cache.take(),
        )
    });
    let keys = cache.map(RefCell::new);
    let mut outcome = None;
    let value = with_raw_stack(lua, (Value::Nil, array_mt, key_strings), |state| {
        let seed = RawSeed {
            state,
            depth: 0,
            keys: keys.as_ref(),
            hint: 0,
        };
        // SAFETY: room for the top-level value (a container reserves its own).
        let decoded = if unsafe { ffi::lua_checkstack(state, 1) } == 0 {
            Err(de::Error::custom("the Lua stack cannot grow"))
        } else {
            decode_with(bytes, seed)
        };
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
    });
    if let Some(keys) = keys {
        with_sentinels(lua, |s| s.key_cache.set(Some(keys.into_inner())));
    }
    let value = value.map_err(DecodeError::Lua)?;
    match outcome {
        Some(Ok(())) => Ok(value),
        Some(Err(e)) => Err(DecodeError::Json(e)),
        None => unreachable!("the raw call ran"),
    }
}

/// Stack index of the table anchoring the [`KeyCache`] strings while decoding.
const KEY_STRINGS: c_int = ARRAY_MT + 1;

/// Object keys decoded before, in this document or an earlier one, found by a hash
/// of their bytes: documents repeat their keys, and pushing a string kept in a table
/// is cheaper than interning the bytes again (hashing them, then a lookup in the
/// state's string table, cold in the cache). Direct-mapped; each slot's string is
/// anchored in the state's `key_strings` table, so its bytes stay where they are.
///
/// It also keeps container sizes as hints: a container is created with the size the
/// last one decoded in the same place had (under the same key, or as an element of
/// an array under it), and its items are set as they are decoded. Records repeat
/// their shapes, so the hint is mostly exact; a wrong one costs Lua a rehash.
struct KeyCache {
    /// Per slot, the string anchored for it (`ptr` null: none yet).
    slots: [CachedKey; Self::SLOTS],
    /// Per hint slot (see [`RawSeed::hint`]), the size of the container last
    /// decoded there.
    sizes: [u16; Self::HINTS],
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            slots: [CachedKey::default(); Self::SLOTS],
            sizes: [0; Self::HINTS],
        }
    }
}

impl KeyCache {
    const SLOTS: usize = 128;
    const HINTS: usize = 256;
    /// The largest size hint: an outlier should not make every container in its
    /// place start huge.
    const MAX_HINT: u16 = 1024;

    /// The hint slot of a member value, from its key's Lua string (at `ptr`).
    fn member_hint(ptr: *const c_char) -> usize {
        address_slot(ptr as usize, Self::HINTS)
    }

    /// The hint slot of the elements of the array whose hint slot is `hint`.
    fn element_hint(hint: usize) -> usize {
        (hint.wrapping_mul(31) + 17) % Self::HINTS
    }

    /// Pushes the Lua string for `key` and returns its address.
    ///
    /// SAFETY: the stack of the raw call, with the anchoring table at
    /// [`KEY_STRINGS`] and room for two more values.
    unsafe fn push(&mut self, state: *mut ffi::lua_State, key: &str) -> *const c_char {
        let bytes = key.as_bytes();
        let (head, tail) = ends(bytes);
        let len = bytes.len();
        // A multiplicative hash of the length and the ends: cheap, and enough to
        // spread the few dozen keys events have.
        let hash = (head ^ tail.rotate_left(29) ^ len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let slot = (hash >> 57) as usize % Self::SLOTS;
        let index = slot as ffi::lua_Integer + 1;
        let cached = self.slots[slot];
        // The ends cover keys of up to 16 bytes; longer ones compare their middle.
        let same = !cached.ptr.is_null()
            && cached.len == len
            && cached.head == head
            && cached.tail == tail
            // SAFETY: a cached pointer is the content of the string anchored at
            // `index`; Lua strings never change or move.
            && (len <= 16 || unsafe { std::slice::from_raw_parts(cached.ptr, len) } == bytes);
        // SAFETY: see the function's contract.
        unsafe {
            if same {
                ffi::lua_rawgeti(state, KEY_STRINGS, index);
                cached.ptr.cast::<c_char>()
            } else {
                let interned =
                    ffi::lua_pushlstring(state, bytes.as_ptr().cast::<c_char>(), bytes.len());
                ffi::lua_pushvalue(state, -1);
                ffi::lua_rawseti(state, KEY_STRINGS, index);
                self.slots[slot] = CachedKey {
                    ptr: interned.cast::<u8>(),
                    len,
                    head,
                    tail,
                };
                interned
            }
        }
    }
}

/// A slot out of `slots` for the address of a Lua string's bytes: they sit at the
/// same offset into blocks aligned to 16 bytes, so the low four bits are the same
/// for every string, and the bits above them, folded with higher ones, tell
/// strings apart.
fn address_slot(address: usize, slots: usize) -> usize {
    (address >> 4 ^ address >> 12) % slots
}

/// A [`KeyCache`] slot: the anchored string's bytes, and their [`ends`].
#[derive(Clone, Copy)]
struct CachedKey {
    ptr: *const u8,
    len: usize,
    head: u64,
    tail: u64,
}

impl Default for CachedKey {
    fn default() -> Self {
        CachedKey {
            ptr: std::ptr::null(),
            len: 0,
            head: 0,
            tail: 0,
        }
    }
}

/// The first and the last 8 bytes of `bytes` as integers (overlapping, or in
/// shorter overlapping pieces, when there are fewer than 16): with the length,
/// they tell keys of up to 16 bytes apart exactly, and without a call to `memcpy`.
fn ends(bytes: &[u8]) -> (u64, u64) {
    let n = bytes.len();
    let le8 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let le4 = |at: usize| {
        u64::from(u32::from_le_bytes(
            bytes[at..at + 4].try_into().expect("4 bytes"),
        ))
    };
    let le2 = |at: usize| {
        u64::from(u16::from_le_bytes(
            bytes[at..at + 2].try_into().expect("2 bytes"),
        ))
    };
    match n {
        8.. => (le8(0), le8(n - 8)),
        4..=7 => (le4(0), le4(n - 4)),
        2..=3 => (le2(0), le2(n - 2)),
        1 => (u64::from(bytes[0]), 0),
        0 => (0, 0),
    }
}

/// Pushes each decoded value onto the Lua stack.
#[derive(Clone, Copy)]
struct RawSeed<'k> {
    state: *mut ffi::lua_State,
    /// Containers enclosing the value being decoded.
    depth: usize,
    /// None in a decode nested in another (see [`Sentinels`]).
    keys: Option<&'k RefCell<Box<KeyCache>>>,
    /// Where the size hint for this value, if a container, is kept
    /// ([`KeyCache::sizes`]); 0 for the document itself.
    hint: usize,
}

impl RawSeed<'_> {
    /// The seed for an item of this container, whose size hint is kept at `hint`.
    fn item(self, hint: usize) -> Self {
        RawSeed {
            depth: self.depth + 1,
            hint,
            ..self
        }
    }

    /// Room for a container, the item being decoded and its key, or an error.
    fn reserve<E: de::Error>(self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        // SAFETY: a valid state; `lua_checkstack` reports failure, never raises.
        if unsafe { ffi::lua_checkstack(self.state, 4) } == 0 {
            return Err(E::custom("the Lua stack cannot grow"));
        }
        Ok(())
    }

    /// The size of the last container decoded where this one is.
    fn size_hint(self) -> c_int {
        self.keys
            .map_or(0, |keys| c_int::from(keys.borrow().sizes[self.hint]))
    }

    /// Keeps the larger of `size` and the hint less a quarter: containers that
    /// vary in size (an order's items) are mostly created big enough, and an
    /// outlier's hint fades.
    fn record_size(self, size: usize) {
        if let Some(keys) = self.keys {
            let size =
                u16::try_from(size).map_or(KeyCache::MAX_HINT, |s| s.min(KeyCache::MAX_HINT));
            let hint = &mut keys.borrow_mut().sizes[self.hint];
            *hint = size.max(*hint - *hint / 4);
        }
    }

    fn push_str(self, s: &str) {
        // SAFETY: pushes a copy of the bytes; cannot raise (see `with_raw_stack`).
        unsafe { ffi::lua_pushlstring(self.state, s.as_ptr().cast::<c_char>(), s.len()) };
    }
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

// SAFETY (every `unsafe` below): pushes onto the stack of the raw call, which has
// room (`reserve`) and cannot raise errors (see `with_raw_stack`).
impl<'de> Visitor<'de> for RawSeed<'_> {
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
        let state = self.state;
        let table = unsafe {
            ffi::lua_createtable(state, self.size_hint(), 0);
            ffi::lua_gettop(state)
        };
        let element = self.item(KeyCache::element_hint(self.hint));
        let mut count: usize = 0;
        while seq.next_element_seed(element)?.is_some() {
            count += 1;
            unsafe { ffi::lua_rawseti(state, table, count as ffi::lua_Integer) };
        }
        self.record_size(count);
        unsafe {
            ffi::lua_pushvalue(state, ARRAY_MT);
            ffi::lua_setmetatable(state, table);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.reserve()?;
        let state = self.state;
        let table = unsafe {
            ffi::lua_createtable(state, 0, self.size_hint());
            ffi::lua_gettop(state)
        };
        let mut count: usize = 0;
        // In document order, so a repeated key keeps its last value, as in JavaScript.
        while let Some(hint) = map.next_key_seed(KeySeed(self))? {
            map.next_value_seed(self.item(hint))?;
            unsafe { ffi::lua_rawset(state, table) };
            count += 1;
        }
        self.record_size(count);
        Ok(())
    }
}

/// Object keys go to Lua strings through the [`KeyCache`], without an owned Rust copy;
/// the value is the hint slot of the member's value.
struct KeySeed<'k>(RawSeed<'k>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
        Ok(match self.0.keys {
            // SAFETY: the raw call's stack, with room for the key and its copy
            // (`RawSeed::reserve`).
            Some(keys) => KeyCache::member_hint(unsafe { keys.borrow_mut().push(self.0.state, s) }),
            None => {
                self.0.push_str(s);
                0
            }
        })
    }
}

/// Encodes a Lua value as JSON (SPEC §4): tables with keys `1..n` or carrying
/// `json.array_mt` are arrays, other tables objects (keys sorted, so output is
/// stable); anything JSON cannot hold is an [`EncodeError`] naming its path.
pub fn encode(lua: &Lua, value: &Value, writer: &mut Writer) -> Result<(), EncodeError> {
    let (array_mt, mut keys) = with_sentinels(lua, |s| (s.array_mt.clone(), s.key_literals.take()));
    keys.start_over();
    let mut outcome = None;
    let called = with_raw_stack(lua, (value.clone(), array_mt), |state| {
        let mut encoder = RawEncoder {
            state,
            writer: &mut *writer,
            enclosing: Vec::new(),
            entries: Vec::new(),
            keys: &mut keys,
        };
        outcome = Some(encoder.value(1));
        // SAFETY: nothing is returned.
        unsafe { ffi::lua_settop(state, 0) };
    });
    with_sentinels(lua, |s| s.key_literals.set(keys));
    called.map_err(|e| EncodeError::new(e.to_string()))?;
    outcome.unwrap_or_else(|| unreachable!("the raw call ran"))
}

/// Walks a value on the raw stack, writing JSON.
///
/// It calls only Lua API functions that never step the collector (reads, `lua_next`,
/// pushing copies, growing the stack: none creates an object), so no collection or
/// finalizer runs while it walks: tables stay as they are, and a string's address
/// stays its own.
///
/// SAFETY (every `unsafe` in its methods): reads and pushes on the stack of the
/// raw call, which has room (`lua_checkstack` per table and per 64 entries) and
/// cannot raise errors (see `with_raw_stack`); the bytes of a string stay valid
/// while the string is on the stack or a key of a table on the stack, which is
/// unchanged meanwhile.
struct RawEncoder<'w> {
    state: *mut ffi::lua_State,
    writer: &'w mut Writer,
    /// Tables being encoded, outermost first: finds cycles and bounds depth.
    enclosing: Vec<*const c_void>,
    /// The entries of the tables being encoded as objects or sequences, innermost
    /// last: one buffer for the whole document.
    entries: Vec<Entry>,
    keys: &'w mut KeyLiterals,
}

/// A table entry whose key and value sit on the stack (key at `slot`, value above).
struct Entry {
    slot: c_int,
    key: Key,
    /// The key's first 8 bytes, big-endian and zero-padded, so that sorting keys
    /// mostly compares integers; set just before sorting.
    prefix: u64,
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

/// The bytes of the string at stack `index`, for as long as it stays there.
///
/// SAFETY: `index` holds a string, which stays on the stack (or in a table on it)
/// while the slice is used.
unsafe fn string_bytes<'a>(state: *mut ffi::lua_State, index: c_int) -> &'a [u8] {
    let mut len = 0;
    unsafe {
        let ptr = ffi::lua_tolstring(state, index, &mut len);
        std::slice::from_raw_parts(ptr.cast::<u8>(), len)
    }
}

/// Object keys written so far in one encoding, as JSON string literals, found by the
/// address of their Lua string: records repeat their keys, and an address stands for
/// the same bytes for the whole encoding (Lua strings are immutable, and nothing is
/// collected meanwhile: see [`RawEncoder`]). Direct-mapped; bounded in size; kept
/// from one encoding to the next for its memory only.
#[derive(Default)]
struct KeyLiterals {
    slots: Vec<LiteralSlot>,
    text: Vec<u8>,
    /// Counts the times the cache started over: a slot from before is empty.
    round: u32,
}

#[derive(Clone, Copy, Default)]
struct LiteralSlot {
    address: usize,
    round: u32,
    /// The literal's range in `text`.
    start: u32,
    end: u32,
}

impl KeyLiterals {
    const SLOTS: usize = 256;
    /// Past this much text, the cache starts over.
    const MAX_TEXT: usize = 64 * 1024;

    /// Empties the cache, for a new encoding (or when full).
    fn start_over(&mut self) {
        self.text.clear();
        self.round = self.round.wrapping_add(1);
        if self.round == 0 || self.slots.is_empty() {
            self.slots = vec![LiteralSlot::default(); Self::SLOTS];
            self.round = 1;
        }
    }

    /// The literal for the key `bytes` at `ptr`, or an error if it is not UTF-8.
    fn literal(&mut self, ptr: *const u8, bytes: &[u8]) -> Result<&[u8], std::str::Utf8Error> {
        let address = ptr as usize;
        let index = address_slot(address, Self::SLOTS);
        let slot = self.slots[index];
        if slot.address == address && slot.round == self.round {
            return Ok(&self.text[slot.start as usize..slot.end as usize]);
        }
        if self.text.len() + bytes.len() > Self::MAX_TEXT {
            self.start_over();
        }
        let start = self.text.len();
        if let Err(e) = super::write_json_bytes(&mut self.text, bytes) {
            self.text.truncate(start);
            return Err(e);
        }
        // Both fit in u32: the text stays under MAX_TEXT plus one key, and a key
        // this long is longer than any event.
        if let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(self.text.len())) {
            self.slots[index] = LiteralSlot {
                address,
                round: self.round,
                start: s,
                end: e,
            };
        }
        Ok(&self.text[start..])
    }
}

/// A Lua type's name in error messages (`lua_typename`, but telling light userdata
/// apart).
fn type_name(lua_type: c_int) -> &'static str {
    match lua_type {
        ffi::LUA_TNIL => "nil",
        ffi::LUA_TBOOLEAN => "boolean",
        ffi::LUA_TNUMBER => "number",
        ffi::LUA_TSTRING => "string",
        ffi::LUA_TTABLE => "table",
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TTHREAD => "thread",
        ffi::LUA_TLIGHTUSERDATA => "lightuserdata",
        _ => "userdata",
    }
}

/// A key's first 8 bytes as a big-endian integer, zero-padded: ordering these
/// orders the keys, up to ties that the full bytes break.
fn prefix(bytes: &[u8]) -> u64 {
    let mut first = [0; 8];
    let n = bytes.len().min(8);
    first[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(first)
}

impl RawEncoder<'_> {
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
            ffi::LUA_TSTRING => self
                .writer
                .string_bytes(unsafe { string_bytes(state, index) })
                .map_err(|_| EncodeError::new("string is not valid UTF-8"))?,
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
                return Err(EncodeError::new(format!(
                    "a {} cannot be encoded as JSON",
                    type_name(other)
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
        if self.has_array_mt(index) {
            let len = unsafe { ffi::lua_rawlen(self.state, index) };
            return self.array(index, len);
        }
        let base = unsafe { ffi::lua_gettop(self.state) };
        let start = self.entries.len();
        let result = self.collect_entries(index).and_then(|is_sequence| {
            if is_sequence {
                self.entries[start..].sort_unstable_by_key(|e| match e.key {
                    Key::Integer(i, _) => i,
                    _ => 0,
                });
                self.sequence(start)
            } else {
                self.object(start)
            }
        });
        self.entries.truncate(start);
        unsafe { ffi::lua_settop(self.state, base) };
        result
    }

    /// Pushes the table's entries onto the stack and into `entries`, in one pass:
    /// `lua_next` takes the previous key from the top, so a copy of it is pushed
    /// each time. True when the keys are exactly `1..n` (n > 0).
    fn collect_entries(&mut self, index: c_int) -> Result<bool, EncodeError> {
        const BATCH: c_int = 64;
        let state = self.state;
        let (mut count, mut max, mut sequence) = (0, 0i64, true);
        unsafe {
            ffi::lua_pushnil(state);
            loop {
                // Each entry adds two slots (its key and value); room for a batch.
                if count % BATCH == 0 && ffi::lua_checkstack(state, 2 * BATCH + 2) == 0 {
                    return Err(EncodeError::new("table too large for the Lua stack"));
                }
                if ffi::lua_next(state, index) == 0 {
                    break;
                }
                count += 1;
                let slot = ffi::lua_gettop(state) - 1;
                let key = match ffi::lua_type(state, slot) {
                    ffi::LUA_TSTRING => {
                        sequence = false;
                        let bytes = string_bytes(state, slot);
                        Key::Str(bytes.as_ptr(), bytes.len())
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
                        return Err(EncodeError::new(format!(
                            "a table key of type {} cannot be a JSON object key",
                            type_name(other)
                        )));
                    }
                };
                self.entries.push(Entry {
                    slot,
                    key,
                    prefix: 0,
                });
                ffi::lua_pushvalue(state, slot);
            }
        }
        Ok(sequence && count > 0 && max == i64::from(count))
    }

    /// A table with keys `1..n`: its entries from `start` on, sorted by key.
    fn sequence(&mut self, start: usize) -> Result<(), EncodeError> {
        self.writer.begin_array();
        for i in 0..self.entries.len() - start {
            self.writer.element(i == 0);
            let slot = self.entries[start + i].slot;
            self.value(slot + 1).map_err(|e| e.at_index(i))?;
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

    /// A table written as an object: its entries from `start` on.
    fn object(&mut self, start: usize) -> Result<(), EncodeError> {
        let entries = &mut self.entries[start..];
        for entry in entries.iter_mut() {
            if let Key::Integer(i, text) = &mut entry.key {
                *text = i.to_string();
            }
            entry.prefix = prefix(entry.key.bytes());
        }
        entries.sort_unstable_by(|a, b| {
            (a.prefix.cmp(&b.prefix)).then_with(|| a.key.bytes().cmp(b.key.bytes()))
        });
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

        let count = entries.len();
        self.writer.begin_object();
        for i in 0..count {
            let entry = &self.entries[start + i];
            let slot = entry.slot;
            match entry.key {
                Key::Str(ptr, len) => {
                    // SAFETY: see `Key::bytes`.
                    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
                    let literal = self
                        .keys
                        .literal(ptr, bytes)
                        .map_err(|_| EncodeError::new("table key is not valid UTF-8"))?;
                    self.writer.member_literal(i == 0, literal);
                }
                Key::Integer(_, ref text) | Key::Float(ref text) => {
                    self.writer.member(i == 0, text);
                }
            }
            self.value(slot + 1).map_err(|e| {
                let key = self.entries[start + i].key.bytes();
                e.at_key(String::from_utf8_lossy(key))
            })?;
        }
        self.writer.end_object(count == 0);
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
                "{a = {ok = 1}, b = {ok = 2, ['\\xff'] = 3}}",
                "table key is not valid UTF-8 at $.b",
            ),
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

    /// Keys repeated across records come from the encoder's cache of key literals;
    /// enough distinct long keys to make it start over; escapes in keys.
    #[test]
    fn repeated_and_distinct_keys_encode_exactly() -> mlua::Result<()> {
        let lua = lua()?;
        let value: Value = lua
            .load(
                r#"
                local rows = setmetatable({}, json.array_mt)
                for i = 1, 300 do rows[i] = { id = i, ["say \"hi\"\n"] = "v" .. i } end
                local wide = {}
                for i = 1, 2000 do wide[string.rep("k", 40) .. i] = i end
                return { rows = rows, wide = wide }
                "#,
            )
            .eval()?;
        let mut writer = Writer::new(false);
        encode(&lua, &value, &mut writer).unwrap();
        let rows: Vec<serde_json::Value> = (1..=300)
            .map(|i| serde_json::json!({"id": i, "say \"hi\"\n": format!("v{i}")}))
            .collect();
        let wide: serde_json::Map<String, serde_json::Value> = (1..=2000)
            .map(|i| (format!("{}{i}", "k".repeat(40)), i.into()))
            .collect();
        let expected = serde_json::json!({"rows": rows, "wide": wide});
        let written: serde_json::Value = serde_json::from_slice(&writer.into_bytes()).unwrap();
        assert_eq!(written, expected);
        Ok(())
    }

    /// The decoder's key cache outlives a document: documents with colliding keys,
    /// in turn, and finalizers decoding and encoding while the collector runs in the
    /// middle of a decode (a nested decode goes without the cache).
    #[test]
    fn keys_decode_exactly_across_documents_and_nested_decodes() -> mlua::Result<()> {
        let lua = lua()?;
        let nested: mlua::Function = lua
            .load(
                r#"
                return function(n)
                  for i = 1, n do
                    setmetatable({}, { __gc = function()
                      nested_ok = json.encode(json.decode('{"inner":[1,{"deep":true}]}'))
                    end })
                  end
                end
                "#,
            )
            .eval()?;
        let documents: Vec<String> = (0..4)
            .map(|d| {
                let members: Vec<String> = (0..500)
                    .map(|i| format!("\"key{}\":{{\"v\":{i},\"doc\":{d}}}", i * 7 + d))
                    .collect();
                format!("{{{}}}", members.join(","))
            })
            .collect();
        for round in 0..3 {
            for text in &documents {
                nested.call::<()>(200)?;
                let value = decode(&lua, text.as_bytes()).unwrap();
                let mut writer = Writer::new(false);
                encode(&lua, &value, &mut writer).unwrap();
                let written: serde_json::Value =
                    serde_json::from_slice(&writer.into_bytes()).unwrap();
                let expected: serde_json::Value = serde_json::from_str(text).unwrap();
                assert_eq!(written, expected, "round {round}");
            }
        }
        lua.gc_collect()?;
        let inner: String = lua.globals().get("nested_ok")?;
        assert_eq!(inner, r#"{"inner":[1,{"deep":true}]}"#);
        Ok(())
    }

    #[test]
    fn big_containers_and_repeated_keys_decode_exactly() -> mlua::Result<()> {
        let lua = lua()?;
        // Far past any size hint (and past the hint's cap).
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
    fn keys_differing_in_any_one_byte_stay_distinct() -> mlua::Result<()> {
        let lua = lua()?;
        // The key cache tells keys apart by their length and ends (and middle,
        // past 16 bytes): keys one byte apart, at every length and position.
        for len in 0..=24 {
            let base = "k".repeat(len);
            let mut keys = vec![base.clone()];
            for at in 0..len {
                let mut key = base.clone().into_bytes();
                key[at] = b'x';
                keys.push(String::from_utf8(key).unwrap());
            }
            let members: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| format!("\"{k}\":{i}"))
                .collect();
            let text = format!("{{{}}}", members.join(","));
            for _ in 0..2 {
                let value = decode(&lua, text.as_bytes()).unwrap();
                let table = value.as_table().unwrap();
                for (i, key) in keys.iter().enumerate() {
                    assert_eq!(table.raw_get::<usize>(key.as_str())?, i, "{key:?}");
                }
                assert_eq!(table.pairs::<Value, Value>().count(), keys.len());
            }
        }
        Ok(())
    }

    #[test]
    fn containers_decode_exactly_whatever_their_size_hint() -> mlua::Result<()> {
        let lua = lua()?;
        // Containers in the same place take the size of the ones before as a hint:
        // growing, shrinking and empty ones must all come out whole.
        for n in [0, 3, 1, 2000, 5, 0, 64, 2, 1500, 1] {
            let items: Vec<String> = (0..n).map(|i| format!("[{i},{{\"k{i}\":{i}}}]")).collect();
            let members: Vec<String> = (0..n).map(|i| format!("\"m{i}\":{i}")).collect();
            let text = format!(
                "{{\"list\":[{}],\"map\":{{{}}}}}",
                items.join(","),
                members.join(",")
            );
            let value = decode(&lua, text.as_bytes()).unwrap();
            let table = value.as_table().unwrap();
            assert_eq!(table.get::<Table>("list")?.raw_len(), n, "{n} elements");
            assert_eq!(
                table.get::<Table>("map")?.pairs::<Value, Value>().count(),
                n
            );
            let mut writer = Writer::new(false);
            encode(&lua, &value, &mut writer).unwrap();
            let written: serde_json::Value = serde_json::from_slice(&writer.into_bytes()).unwrap();
            let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(written, expected, "{n} items");
        }
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
