//! JSON text → Lua values, pushed onto the raw stack as serde_json reads them.

use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::fmt;

use mlua::{Lua, Value};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::key_cache::KeyCache;
use super::raw_stack::{RawStack, with_raw_stack};
use super::slot::ARRAY_MT;
use super::with_codec;
use crate::json::{MAX_DEPTH, decode_with, too_deep};

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
    let (array_mt, key_strings, cache) = with_codec(lua, |c| {
        (
            c.array_mt.clone(),
            c.key_strings.clone(),
            c.key_cache.take(),
        )
    });
    let keys = cache.map(RefCell::new);
    let budget = Budget::default();
    let mut outcome = None;
    let value = with_raw_stack(lua, (Value::Nil, array_mt, key_strings), |stack| {
        if !stack.over_memory_limit(bytes.len().saturating_mul(Budget::MAX_BYTES_PER_BYTE)) {
            // Even at its largest the document fits: no need to look again.
            budget.countdown.set(usize::MAX);
        }
        let seed = RawSeed {
            stack,
            depth: 0,
            keys: keys.as_ref(),
            hint: 0,
            budget: &budget,
        };
        let decoded = if stack.reserve(1) {
            decode_with(bytes, seed)
        } else {
            Err(de::Error::custom("the Lua stack cannot grow"))
        };
        if decoded.is_ok() {
            // SAFETY: rule 5: on success the value is on top, above the arguments.
            unsafe { stack.keep_top_at(1) };
        } else {
            stack.truncate(0);
        }
        outcome = Some(decoded);
    });
    if let Some(keys) = keys {
        with_codec(lua, |c| c.key_cache.set(Some(keys.into_inner())));
    }
    let value = value.map_err(DecodeError::Lua)?;
    if budget.exceeded.get() {
        return Err(DecodeError::Lua(mlua::Error::MemoryError(
            "not enough memory".into(),
        )));
    }
    match outcome {
        Some(Ok(())) => Ok(value),
        Some(Err(e)) => Err(DecodeError::Json(e)),
        None => unreachable!("the raw call ran"),
    }
}

/// Pushes each decoded value onto the stack.
#[derive(Clone, Copy)]
struct RawSeed<'k, 's> {
    stack: RawStack<'s>,
    /// Containers enclosing the value being decoded.
    depth: usize,
    /// None in a decode nested in another (see `Codec::key_cache`).
    keys: Option<&'k RefCell<Box<KeyCache>>>,
    /// Where the size hint for this value, if a container, is kept; 0 for the
    /// document itself.
    hint: usize,
    budget: &'k Budget,
}

/// How often a decode looks at the state's memory, and whether it found it over.
#[derive(Default)]
struct Budget {
    /// Items left before the next look.
    countdown: Cell<usize>,
    /// Items decoded so far.
    items: Cell<usize>,
    exceeded: Cell<bool>,
}

impl Budget {
    /// Items decoded between two looks at the state's memory: each item is at most
    /// as large as the text it comes from, so the limit is overrun by little.
    const ITEMS_PER_LOOK: usize = 1024;
    /// What the allocator keeps for itself per item, which Lua's count leaves
    /// out (glibc: 8 to 16 bytes a block): an event of millions of tiny values
    /// would otherwise take the process past the function's memory.
    const OVERHEAD_PER_ITEM: usize = 16;
    /// The most memory one byte of JSON text decodes to. Measured in Lua's count:
    /// `[[],[],…]` 28 bytes a byte, `[[[…]]]` (a table every 2 bytes) 46; with the
    /// allocator's share (8 a table a byte) at most 54. Nearly twice that.
    const MAX_BYTES_PER_BYTE: usize = 96;
}

impl RawSeed<'_, '_> {
    /// The seed for an item of this container, whose size hint is kept at `hint`.
    fn item(self, hint: usize) -> Self {
        RawSeed {
            depth: self.depth + 1,
            hint,
            ..self
        }
    }

    /// Room for a container, the item being decoded and its key (rule 2: the
    /// reservation every push of a container's items relies on), or an error.
    fn reserve<E: de::Error>(self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        if !self.stack.reserve(4) {
            return Err(E::custom("the Lua stack cannot grow"));
        }
        Ok(())
    }

    /// Counts `n` items just made (a container's, when it ends, or a batch of a
    /// long one); now and then, fails when the state is over its memory limit (the
    /// decode then ends as out of memory). Counting by containers, not items,
    /// keeps this off the path of every value.
    fn tick<E: de::Error>(self, n: usize) -> Result<(), E> {
        let left = self.budget.countdown.get();
        if n < left {
            self.budget.countdown.set(left - n);
            return Ok(());
        }
        self.budget.countdown.set(Budget::ITEMS_PER_LOOK);
        let items = self.budget.items.get() + n;
        self.budget.items.set(items);
        if self
            .stack
            .over_memory_limit(items * Budget::OVERHEAD_PER_ITEM)
        {
            self.budget.exceeded.set(true);
            return Err(E::custom("the Lua state is over its memory limit"));
        }
        Ok(())
    }

    /// The size of the last container decoded where this one is.
    fn size_hint(self) -> c_int {
        self.keys
            .map_or(0, |keys| keys.borrow().size_hint(self.hint))
    }

    fn record_size(self, size: usize) {
        if let Some(keys) = self.keys {
            keys.borrow_mut().record_size(self.hint, size);
        }
    }
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

// SAFETY (every scalar push below): rule 2: a value is decoded either as the
// document (one slot reserved by `decode`) or as an item of a container, which
// reserved room for it (`RawSeed::reserve`); rule 3: it stays on the stack until
// its container sets it.
impl<'de> Visitor<'de> for RawSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        // SAFETY: see the impl (json.null is the null light userdata).
        unsafe { self.stack.push_light_userdata(std::ptr::null_mut()) };
        Ok(())
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        // SAFETY: see the impl.
        unsafe { self.stack.push_bool(b) };
        Ok(())
    }

    fn visit_i64<E>(self, i: i64) -> Result<(), E> {
        // SAFETY: see the impl.
        unsafe { self.stack.push_integer(i) };
        Ok(())
    }

    fn visit_u64<E>(self, u: u64) -> Result<(), E> {
        // SAFETY: see the impl.
        match i64::try_from(u) {
            Ok(i) => unsafe { self.stack.push_integer(i) },
            Err(_) => unsafe { self.stack.push_number(u as f64) },
        }
        Ok(())
    }

    fn visit_f64<E>(self, f: f64) -> Result<(), E> {
        // SAFETY: see the impl.
        unsafe { self.stack.push_number(f) };
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        // SAFETY: see the impl.
        unsafe { self.stack.push_bytes(s.as_bytes()) };
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.reserve()?;
        let stack = self.stack;
        // SAFETY: rule 2: reserved just above; rule 3: the table stays on the
        // stack until its own container sets it.
        let table = unsafe { stack.push_table(self.size_hint(), 0) };
        let element = self.item(KeyCache::element_hint(self.hint));
        let mut count: usize = 0;
        while seq.next_element_seed(element)?.is_some() {
            count += 1;
            // SAFETY: rule 5: the table at `table`, the element on top.
            unsafe { stack.set_index(table, count as i64) };
            if count.is_multiple_of(Budget::ITEMS_PER_LOOK) {
                self.tick(Budget::ITEMS_PER_LOOK)?;
            }
        }
        self.tick(count % Budget::ITEMS_PER_LOOK + 1)?;
        self.record_size(count);
        // SAFETY: rule 2: the element's slot is free again; rule 5: the
        // metatable is an argument of the raw call.
        unsafe {
            stack.push_copy(ARRAY_MT);
            stack.set_metatable(table);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.reserve()?;
        let stack = self.stack;
        // SAFETY: as in `visit_seq`.
        let table = unsafe { stack.push_table(0, self.size_hint()) };
        let mut count: usize = 0;
        // In document order, so a repeated key keeps its last value, as in JavaScript.
        while let Some(hint) = map.next_key_seed(KeySeed(self))? {
            map.next_value_seed(self.item(hint))?;
            // SAFETY: rule 5: the table at `table`, its key and value on top (a
            // JSON key is a string: neither nil nor NaN).
            unsafe { stack.set_member(table) };
            count += 1;
            if count.is_multiple_of(Budget::ITEMS_PER_LOOK) {
                self.tick(Budget::ITEMS_PER_LOOK)?;
            }
        }
        self.tick(count % Budget::ITEMS_PER_LOOK + 1)?;
        self.record_size(count);
        Ok(())
    }
}

/// Object keys go to Lua strings through the [`KeyCache`], without an owned Rust copy;
/// the value is the hint slot of the member's value.
struct KeySeed<'k, 's>(RawSeed<'k, 's>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
        let stack = self.0.stack;
        Ok(match self.0.keys {
            // SAFETY: rule 2: the container reserved room for the key and the
            // cache's copy of it; the anchoring table is an argument of the call.
            Some(keys) => KeyCache::member_hint(unsafe { keys.borrow_mut().push(stack, s) }),
            None => {
                // SAFETY: rule 2, as above; rule 3: the key stays on the stack
                // until the member is set.
                unsafe { stack.push_bytes(s.as_bytes()) };
                0
            }
        })
    }
}
