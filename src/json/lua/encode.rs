//! Lua values → JSON text, walked on the raw stack.

use std::ffi::{c_int, c_void};

use mlua::{Lua, Value};

use super::key_cache::KeyLiterals;
use super::raw_stack::{self, RawStack, type_name, with_raw_stack};
use super::slot::ARRAY_MT;
use super::{empty_array_ptr, with_codec};
use crate::json::{EncodeError, MAX_DEPTH, Writer};

/// Encodes a Lua value as JSON (SPEC §4): tables with keys `1..n` or carrying
/// `json.array_mt` are arrays, other tables objects (keys sorted, so output is
/// stable); anything JSON cannot hold is an [`EncodeError`] naming its path.
pub fn encode(lua: &Lua, value: &Value, writer: &mut Writer) -> Result<(), EncodeError> {
    let (array_mt, mut keys) = with_codec(lua, |c| (c.array_mt.clone(), c.key_literals.take()));
    keys.start_over();
    let mut outcome = None;
    let called = with_raw_stack(lua, (value.clone(), array_mt), |stack| {
        let mut encoder = RawEncoder {
            stack,
            writer: &mut *writer,
            enclosing: Vec::new(),
            entries: Vec::new(),
            keys: &mut keys,
        };
        outcome = Some(encoder.value(1));
        stack.truncate(0);
    });
    with_codec(lua, |c| c.key_literals.set(keys));
    called.map_err(|e| EncodeError::new(e.to_string()))?;
    outcome.unwrap_or_else(|| unreachable!("the raw call ran"))?;
    writer.finish_document()
}

/// Walks a value on the raw stack, writing JSON.
///
/// It calls only Lua API functions that never step the collector (reads,
/// `lua_next`, pushing copies, growing the stack: none creates an object), so no
/// collection or finalizer runs while it walks: tables stay as they are, and a
/// string's address stays its own (rule 4 holds for every key and value read).
struct RawEncoder<'w, 's> {
    stack: RawStack<'s>,
    writer: &'w mut Writer,
    /// Tables being encoded, outermost first: finds cycles and bounds depth.
    enclosing: Vec<*const c_void>,
    /// The entries of the tables being encoded as objects or sequences, innermost
    /// last: one buffer for the whole document.
    entries: Vec<Entry>,
    keys: &'w mut KeyLiterals,
}

/// A table entry whose key and value sit on the stack (key at `slot`, value
/// above), or, in a table too large for the stack to hold all of its entries,
/// only in the table (`slot` 0): its value is then fetched again by its key.
struct Entry {
    slot: c_int,
    key: Key,
    /// The key's first 8 bytes, big-endian and zero-padded, so that sorting keys
    /// mostly compares integers; set just before sorting.
    prefix: u64,
}

/// An object key: a Lua string's bytes, or a number (also written as JSON text).
enum Key {
    /// The bytes of a key string on the stack (rule 4 keeps them valid while the
    /// entry is in [`RawEncoder::entries`]).
    Str(*const u8, usize),
    Integer(i64, String),
    Float(f64, String),
}

impl Key {
    fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: rule 4: the key string is on the stack while its entry exists.
            Key::Str(ptr, len) => unsafe { std::slice::from_raw_parts(*ptr, *len) },
            Key::Integer(_, text) | Key::Float(_, text) => text.as_bytes(),
        }
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

impl RawEncoder<'_, '_> {
    /// Encodes the value at stack `index` (absolute, on the stack: rule 5).
    fn value(&mut self, index: c_int) -> Result<(), EncodeError> {
        let stack = self.stack;
        // SAFETY: rule 5: `index` is a slot on the stack (any kind of value).
        match unsafe { stack.type_of(index) } {
            raw_stack::LUA_TNIL => self.writer.null(),
            // SAFETY: rule 5: a boolean at `index`.
            raw_stack::LUA_TBOOLEAN => self.writer.bool(unsafe { stack.to_bool(index) }),
            raw_stack::LUA_TNUMBER => {
                // SAFETY: rule 5: a number at `index`.
                if unsafe { stack.is_integer(index) } {
                    // SAFETY: rule 5: an integer.
                    self.writer.int(unsafe { stack.to_integer(index) });
                } else {
                    // SAFETY: rule 5: a float.
                    self.writer.float(unsafe { stack.to_number(index) })?;
                }
            }
            raw_stack::LUA_TSTRING => self
                .writer
                // SAFETY: rule 5: a string at `index`; rule 4: written at once.
                .string_bytes(unsafe { stack.to_bytes(index) })
                .map_err(|_| EncodeError::new("string is not valid UTF-8"))?,
            raw_stack::LUA_TTABLE => self.table(index)?,
            raw_stack::LUA_TLIGHTUSERDATA => {
                // SAFETY: rule 5: a light userdata at `index`.
                let ptr = unsafe { stack.to_light_userdata(index) };
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
        if self.writer.exhausted() {
            return Err(EncodeError::too_large(self.writer.cap()));
        }
        Ok(())
    }

    /// Encodes the table at `index` (rule 5).
    fn table(&mut self, index: c_int) -> Result<(), EncodeError> {
        // SAFETY: rule 5: a table at `index`.
        let ptr = unsafe { self.stack.to_pointer(index) };
        if self.enclosing.contains(&ptr) {
            return Err(EncodeError::new("table contains itself (recursive table)"));
        }
        if self.enclosing.len() >= MAX_DEPTH || !self.stack.reserve(4) {
            return Err(EncodeError::new(format!(
                "tables nested deeper than {MAX_DEPTH} levels"
            )));
        }
        self.enclosing.push(ptr);
        let result = self.table_contents(index);
        self.enclosing.pop();
        result
    }

    fn table_contents(&mut self, index: c_int) -> Result<(), EncodeError> {
        let stack = self.stack;
        // SAFETY: rule 2: `table` reserved room; rule 5: a table at `index`, and
        // the array metatable is an argument of the raw call.
        if unsafe { stack.has_metatable(index, ARRAY_MT) } {
            // SAFETY: rule 5: a table.
            let len = unsafe { stack.raw_len(index) };
            return self.array(index, len);
        }
        if let Some(len) = self.sequence_len(index) {
            return self.array(index, len);
        }
        let base = stack.top();
        let start = self.entries.len();
        let result = self
            .collect_entries(index)
            .and_then(|()| self.object(index, start));
        self.entries.truncate(start);
        stack.truncate(base);
        result
    }

    /// `Some(n)` when the keys of the table at `index` are exactly `1..=n` (n > 0):
    /// `n` is its border (`#t`, which is the only one then), and one walk sees n
    /// keys, all integers in `1..=n`. Nothing is collected, so a sequence of any
    /// length costs the encoder no memory.
    fn sequence_len(&mut self, index: c_int) -> Option<usize> {
        let stack = self.stack;
        // SAFETY: rule 5: a table at `index`.
        let n = unsafe { stack.raw_len(index) };
        if n == 0 {
            return None;
        }
        let base = stack.top();
        let mut count = 0;
        // SAFETY: rule 2: `table` reserved room for the key and the value that
        // `lua_next` pushes; rule 5: a table at `index`, which nothing changes.
        unsafe { stack.push_nil() };
        let is_sequence = loop {
            // SAFETY: as above: the previous key on top, room for key and value.
            if !unsafe { stack.next(index) } {
                break count == n;
            }
            stack.pop(1);
            let key = stack.top();
            // SAFETY: rule 5: the key `lua_next` pushed.
            let in_range = unsafe {
                stack.type_of(key) == raw_stack::LUA_TNUMBER
                    && stack.is_integer(key)
                    && usize::try_from(stack.to_integer(key)).is_ok_and(|i| (1..=n).contains(&i))
            };
            if !in_range {
                break false;
            }
            count += 1;
        };
        stack.truncate(base);
        is_sequence.then_some(n)
    }

    /// Pushes the table's entries onto the stack and into `entries`, in one pass:
    /// `lua_next` takes the previous key from the top, so a copy of it is pushed
    /// each time. Once the stack cannot grow (a table of hundreds of thousands of
    /// entries), the rest of the entries stay in the table only. The stack and
    /// `entries` count against the script's memory (with the text written so
    /// far): past its limit, encoding is out of memory.
    fn collect_entries(&mut self, index: c_int) -> Result<(), EncodeError> {
        const BATCH: usize = 64;
        let stack = self.stack;
        let mut count = 0;
        let mut on_stack = true;
        // SAFETY: rule 2: `table` reserved room for the first key.
        unsafe { stack.push_nil() };
        loop {
            if count % BATCH == 0 {
                // Small tables (one batch) are not worth a look at the memory.
                let working = self.entries.capacity() * size_of::<Entry>();
                if count > 0 && stack.over_memory_limit(working + self.writer.stored_len()) {
                    return Err(EncodeError::out_of_memory(format!(
                        "a table of over {count} entries does not fit in the memory left \
                         to encode it"
                    )));
                }
                // Each entry adds two slots (its key and value); room for a batch.
                if on_stack && !stack.reserve(2 * BATCH as c_int + 2) {
                    on_stack = false;
                }
            }
            // SAFETY: rule 2: the batch's room; rule 5: a table at `index`, which
            // nothing changes while the encoder walks it.
            if !unsafe { stack.next(index) } {
                break;
            }
            count += 1;
            let slot = stack.top() - 1;
            // SAFETY: rule 5: the key `lua_next` pushed at `slot`.
            let key = match unsafe { stack.type_of(slot) } {
                raw_stack::LUA_TSTRING => {
                    // SAFETY: rule 5: a string key; rule 4: it stays on the stack
                    // as long as its entry is in `entries`.
                    let bytes = unsafe { stack.to_bytes(slot) };
                    Key::Str(bytes.as_ptr(), bytes.len())
                }
                // SAFETY: rule 5: a number key.
                raw_stack::LUA_TNUMBER if unsafe { stack.is_integer(slot) } => {
                    // SAFETY: rule 5: an integer key.
                    let i = unsafe { stack.to_integer(slot) };
                    Key::Integer(i, String::new())
                }
                raw_stack::LUA_TNUMBER => {
                    // SAFETY: rule 5: a float key.
                    let f = unsafe { stack.to_number(slot) };
                    let mut w = Writer::new(false);
                    w.float(f)?;
                    Key::Float(f, String::from_utf8(w.into_bytes()).expect("ASCII number"))
                }
                other => {
                    return Err(EncodeError::new(format!(
                        "a table key of type {} cannot be a JSON object key",
                        type_name(other)
                    )));
                }
            };
            if on_stack {
                self.entries.push(Entry {
                    slot,
                    key,
                    prefix: 0,
                });
                // SAFETY: rule 2: the batch's room; rule 5: the key at `slot`.
                unsafe { stack.push_copy(slot) };
            } else {
                // The key stays in the table, unchanged, so its bytes stay valid
                // (rule 4); the value goes, and the key is the next `lua_next`'s.
                self.entries.push(Entry {
                    slot: 0,
                    key,
                    prefix: 0,
                });
                stack.pop(1);
            }
        }
        Ok(())
    }

    /// Encodes the value of entry `entry` of the table at `table`.
    fn entry_value(&mut self, table: c_int, entry: usize) -> Result<(), EncodeError> {
        let slot = self.entries[entry].slot;
        if slot != 0 {
            return self.value(slot + 1);
        }
        let stack = self.stack;
        // SAFETY: rule 2: `table` reserved room (two slots: the key, then the
        // value in its place); rule 5: a table at `table`. A string key is pushed
        // as a copy of the bytes of the table's own key (rule 4), which the table
        // finds by content; the copy is never used as the key-literal cache's key.
        unsafe {
            match &self.entries[entry].key {
                Key::Integer(i, _) => stack.push_index(table, *i),
                Key::Str(ptr, len) => {
                    stack.push_bytes(std::slice::from_raw_parts(*ptr, *len));
                    stack.replace_key_by_value(table);
                }
                Key::Float(f, _) => {
                    stack.push_number(*f);
                    stack.replace_key_by_value(table);
                }
            }
        }
        let result = self.value(stack.top());
        stack.pop(1);
        result
    }

    /// A sequence, or a table carrying `json.array_mt`: its items `1..=len`.
    fn array(&mut self, index: c_int, len: usize) -> Result<(), EncodeError> {
        let stack = self.stack;
        self.writer.begin_array();
        for i in 0..len {
            self.writer.element(i == 0);
            // SAFETY: rule 2: `table` reserved room; rule 5: a table at `index`.
            unsafe { stack.push_index(index, i as i64 + 1) };
            self.value(stack.top()).map_err(|e| e.at_index(i))?;
            stack.pop(1);
        }
        self.writer.end_array(len == 0);
        Ok(())
    }

    /// A table written as an object: its entries from `start` on.
    fn object(&mut self, table: c_int, start: usize) -> Result<(), EncodeError> {
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
            match entry.key {
                Key::Str(ptr, _) => {
                    let literal = self
                        .keys
                        .literal(ptr, entry.key.bytes())
                        .map_err(|_| EncodeError::new("table key is not valid UTF-8"))?;
                    self.writer.member_literal(i == 0, literal);
                }
                Key::Integer(_, ref text) | Key::Float(_, ref text) => {
                    self.writer.member(i == 0, text);
                }
            }
            self.entry_value(table, start + i).map_err(|e| {
                let key = self.entries[start + i].key.bytes();
                e.at_key(String::from_utf8_lossy(key))
            })?;
        }
        self.writer.end_object(count == 0);
        Ok(())
    }
}
