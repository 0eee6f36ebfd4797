//! JSON ↔ Lua values (SPEC §4).
//!
//! A document is decoded onto, or encoded from, the raw Lua stack in one protected
//! call ([`raw_stack`], whose rules make that sound); object keys are cached both
//! ways ([`key_cache`]). The state this needs lives in the [`Codec`], which the
//! engine installs in each Lua state it makes.

mod decode;
mod encode;
mod key_cache;
mod raw_stack;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::ffi::c_void;

use mlua::{LightUserData, Lua, Table, Value};

pub use decode::{DecodeError, decode};
pub use encode::encode;
use key_cache::{KeyCache, KeyLiterals};
pub use raw_stack::{PutOffFinalizers, finalizers_wait};

/// `json.null`: a NULL light userdata, as cjson and mlua use.
pub fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// `json.empty_array`: a light userdata that encodes as `[]`.
pub fn empty_array() -> Value {
    Value::LightUserData(LightUserData(empty_array_ptr()))
}

/// Any static byte gives `json.empty_array` an address no other light userdata has.
static EMPTY_ARRAY_TAG: u8 = 0;

fn empty_array_ptr() -> *mut c_void {
    (&raw const EMPTY_ARRAY_TAG).cast_mut().cast()
}

/// The arguments of the raw call, at these stack indices while a document is
/// decoded or encoded (index 1 is the value, or a placeholder for the result).
mod slot {
    use std::ffi::c_int;

    /// `json.array_mt`.
    pub const ARRAY_MT: c_int = 2;
    /// The table anchoring the decoder's cached key strings.
    pub const KEY_STRINGS: c_int = 3;
}

/// What the JSON mapping keeps per Lua state: `json.array_mt` and the key caches.
/// Stored as the state's app data by [`Codec::install`].
pub struct Codec {
    /// `json.array_mt`: tables carrying it encode as arrays, even when empty.
    array_mt: Table,
    /// Anchors the decoder's [`KeyCache`] strings, slot `i` at index `i + 1`.
    key_strings: Table,
    /// Taken while a decode uses them; a decode nested in one (from a finalizer
    /// the collector runs meanwhile) goes without.
    key_cache: Cell<Option<Box<KeyCache>>>,
    /// Taken while an encode uses them.
    key_literals: Cell<KeyLiterals>,
}

impl Codec {
    /// Gives `lua` the codec's state; [`decode`] and [`encode`] need it.
    pub fn install(lua: &Lua) -> mlua::Result<()> {
        let array_mt = lua.create_table()?;
        array_mt.set("__name", "json.array")?;
        lua.set_app_data(Codec {
            array_mt,
            key_strings: lua.create_table_with_capacity(KeyCache::SLOTS, 0)?,
            key_cache: Cell::new(Some(Box::default())),
            key_literals: Cell::default(),
        });
        Ok(())
    }

    /// `json.array_mt` of `lua`.
    pub fn array_mt(lua: &Lua) -> Table {
        with_codec(lua, |c| c.array_mt.clone())
    }
}

fn with_codec<R>(lua: &Lua, f: impl FnOnce(&Codec) -> R) -> R {
    let codec = lua
        .app_data_ref::<Codec>()
        .expect("the JSON codec is installed with the Lua state");
    f(&codec)
}
