//! Object keys, cached both ways: the decoder's Lua strings for keys it has read
//! before ([`KeyCache`]), and the encoder's JSON literals for keys it has written
//! before in the same document ([`KeyLiterals`]). Documents repeat their keys;
//! interning or escaping the same bytes again is most of what a key costs.

use std::ffi::c_int;

use super::raw_stack::RawStack;
use super::slot::KEY_STRINGS;

/// Object keys decoded before, in this document or an earlier one, found by a hash
/// of their bytes: pushing a string kept in a table is cheaper than interning the
/// bytes again (hashing them, then a lookup in the state's string table, cold in
/// the cache). Direct-mapped; each slot's string is anchored in the codec's
/// `key_strings` table, so its bytes stay where they are.
///
/// It also keeps container sizes as hints: a container is created with the size the
/// last one decoded in the same place had (under the same key, or as an element of
/// an array under it), and its items are set as they are decoded. Records repeat
/// their shapes, so the hint is mostly exact; a wrong one costs Lua a rehash.
pub struct KeyCache {
    /// Per slot, the string anchored for it (`ptr` null: none yet).
    slots: [CachedKey; Self::SLOTS],
    /// Per hint slot (see [`KeyCache::member_hint`]), the size of the container
    /// last decoded there.
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
    pub const SLOTS: usize = 128;
    const HINTS: usize = 256;
    /// The largest size hint: an outlier should not make every container in its
    /// place start huge.
    const MAX_HINT: u16 = 1024;

    /// The hint slot of a member value, from its key's Lua string (at `ptr`).
    pub fn member_hint(ptr: *const u8) -> usize {
        address_slot(ptr as usize, Self::HINTS)
    }

    /// The hint slot of the elements of the array whose hint slot is `hint`.
    pub fn element_hint(hint: usize) -> usize {
        (hint.wrapping_mul(31) + 17) % Self::HINTS
    }

    /// The size of the last container decoded at hint slot `hint`.
    pub fn size_hint(&self, hint: usize) -> c_int {
        c_int::from(self.sizes[hint])
    }

    /// Keeps the larger of `size` and the hint less a quarter: containers that
    /// vary in size (an order's items) are mostly created big enough, and an
    /// outlier's hint fades.
    pub fn record_size(&mut self, hint: usize, size: usize) {
        let size = u16::try_from(size).map_or(Self::MAX_HINT, |s| s.min(Self::MAX_HINT));
        let kept = &mut self.sizes[hint];
        *kept = size.max(*kept - *kept / 4);
    }

    /// Pushes the Lua string for `key` and returns the address of its bytes.
    ///
    /// # Safety
    /// The stack of a decode: the anchoring table at [`KEY_STRINGS`], and room for
    /// two more values (rule 2).
    pub unsafe fn push(&mut self, stack: RawStack<'_>, key: &str) -> *const u8 {
        let bytes = key.as_bytes();
        let (head, tail) = ends(bytes);
        let len = bytes.len();
        // A multiplicative hash of the length and the ends: cheap, and enough to
        // spread the few dozen keys events have.
        let hash = (head ^ tail.rotate_left(29) ^ len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let slot = (hash >> 57) as usize % Self::SLOTS;
        let index = slot as i64 + 1;
        let cached = self.slots[slot];
        // The ends cover keys of up to 16 bytes; longer ones compare their middle.
        let same = !cached.ptr.is_null()
            && cached.len == len
            && cached.head == head
            && cached.tail == tail
            // SAFETY: rule 4: a cached pointer is the content of the string anchored
            // at `index`, and Lua strings never change or move.
            && (len <= 16 || unsafe { std::slice::from_raw_parts(cached.ptr, len) } == bytes);
        if same {
            // SAFETY: rule 2 (this function's contract); rule 5: the table at
            // KEY_STRINGS.
            unsafe { stack.push_index(KEY_STRINGS, index) };
            return cached.ptr;
        }
        // SAFETY: rule 2 for the string and its copy; rule 3: the copy is anchored
        // in the table, the string stays on the stack for the caller.
        unsafe {
            let interned = stack.push_bytes(bytes);
            stack.push_copy(-1);
            stack.set_index(KEY_STRINGS, index);
            self.slots[slot] = CachedKey {
                ptr: interned,
                len,
                head,
                tail,
            };
            interned
        }
    }
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

/// A slot out of `slots` for the address of a Lua string's bytes: they sit at the
/// same offset into blocks aligned to 16 bytes, so the low four bits are the same
/// for every string, and the bits above them, folded with higher ones, tell
/// strings apart.
fn address_slot(address: usize, slots: usize) -> usize {
    (address >> 4 ^ address >> 12) % slots
}

/// Object keys written so far in one encoding, as JSON string literals, found by the
/// address of their Lua string: an address stands for the same bytes for the whole
/// encoding (Lua strings are immutable, and nothing is collected meanwhile: see
/// the encoder). Direct-mapped; bounded in size; kept from one encoding to the
/// next for its memory only.
#[derive(Default)]
pub struct KeyLiterals {
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
    pub fn start_over(&mut self) {
        self.text.clear();
        self.round = self.round.wrapping_add(1);
        if self.round == 0 || self.slots.is_empty() {
            self.slots = vec![LiteralSlot::default(); Self::SLOTS];
            self.round = 1;
        }
    }

    /// The literal for the key `bytes` at `ptr`, or an error if it is not UTF-8.
    pub fn literal(&mut self, ptr: *const u8, bytes: &[u8]) -> Result<&[u8], std::str::Utf8Error> {
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
        if let Err(e) = crate::json::write_json_bytes(&mut self.text, bytes) {
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
