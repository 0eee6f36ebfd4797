//! The raw Lua stack that JSON is decoded onto and encoded from.
//!
//! A whole document goes through one protected call that works on the C API
//! directly, instead of one mlua call (each protected) per value created or read.
//! That is sound only while these rules hold, and [`RawStack`] is how they are
//! held: it exists only inside [`with_raw_stack`], and every API call goes through
//! its methods.
//!
//! 1. **Nothing raises.** A Lua error is a `longjmp`, which would jump over the Rust
//!    frames between the protected call and the API call. The calls `RawStack`
//!    offers raise only when an allocation fails or the stack cannot grow, and
//!    [`with_raw_stack`] lifts the state's memory limit for the call (it is checked
//!    afterwards), so allocations do not fail; collection steps do not raise either
//!    (Lua 5.4 turns errors in finalizers into warnings).
//! 2. **Room first.** A push needs a free slot, reserved beforehand with
//!    [`RawStack::reserve`]: the pushing methods are `unsafe` and their callers
//!    say which reservation they use.
//! 3. **Anchored.** The collector keeps running (pausing it would cost a collection
//!    step at every restart, which resets its debt), so a value that is created
//!    stays on the stack until it is set into a table that is itself anchored.
//! 4. **Borrowed bytes.** The bytes of a string read off the stack stay valid while
//!    the string stays on the stack or in a table on it, unchanged.
//! 5. **Valid indices.** An index given to a method names a slot on the stack
//!    (1 to the top, or -1 down to the bottom), holding the kind of value the
//!    method expects.
//!
//! Rule 1 is the type's own guarantee; the methods that rely on the others are
//! `unsafe`, and each caller says which rule it keeps.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::marker::PhantomData;

use mlua::{Function, Lua, Value, ffi};

thread_local! {
    /// Whether this thread is inside a raw call.
    static RAW: Cell<bool> = const { Cell::new(false) };
    /// Whether a finalizer was put off during it.
    static PUT_OFF: Cell<bool> = const { Cell::new(false) };
}

/// Whether a script's finalizer must wait: inside a raw call the memory limit is
/// lifted and the tables being built or read must not change, so no script code
/// may run there. The engine's finalizer guard asks this; when it answers true the
/// guard queues the finalizer, and [`with_raw_stack`] has the queue run, through
/// the state's [`PutOffFinalizers`], once the call is over.
pub fn finalizers_wait() -> bool {
    let raw = RAW.get();
    if raw {
        PUT_OFF.set(true);
    }
    raw
}

/// The function that runs the finalizers put off during a raw call (the engine
/// sets it as the state's app data).
pub struct PutOffFinalizers(pub Function);

/// Runs `f` on the raw stack, `args` pushed at indices 1, 2, ...: `f` leaves
/// its result at index 1 and nothing above it (or an empty stack: nil).
///
/// The state's memory limit is lifted for the call (rule 1) and checked once it
/// returns: over the limit, the garbage is collected, and if that does not bring
/// it back under, the call fails as out of memory.
pub fn with_raw_stack(
    lua: &Lua,
    args: impl mlua::IntoLuaMulti,
    f: impl FnOnce(RawStack<'_>),
) -> mlua::Result<Value> {
    let limit = lua.set_memory_limit(0)?;
    let outer = RAW.replace(true);
    // SAFETY: rule 1 holds (no limit), and `f` sees the state only through a
    // `RawStack`, whose methods make no other call than the ones rule 1 allows.
    let result = unsafe {
        lua.exec_raw::<Value>(args, |state| {
            f(RawStack {
                state,
                limit,
                _call: PhantomData,
            })
        })
    };
    RAW.set(outer);
    lua.set_memory_limit(limit)?;
    if !outer && PUT_OFF.replace(false) {
        let run = lua.app_data_ref::<PutOffFinalizers>().map(|p| p.0.clone());
        if let Some(run) = run {
            run.call::<()>(())?;
        }
    }
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

/// The stack of one [`with_raw_stack`] call. Indices are absolute (from 1) unless
/// a method says otherwise; negative ones count from the top, as in the C API.
#[derive(Clone, Copy)]
pub struct RawStack<'call> {
    state: *mut ffi::lua_State,
    /// The state's memory limit, lifted for the call (0: none).
    limit: usize,
    /// Bound to the call: a `RawStack` cannot outlive it.
    _call: PhantomData<&'call mut ffi::lua_State>,
}

/// Lua's type tags, as `RawStack::type_of` returns them.
pub use ffi::{
    LUA_TBOOLEAN, LUA_TFUNCTION, LUA_TLIGHTUSERDATA, LUA_TNIL, LUA_TNUMBER, LUA_TSTRING,
    LUA_TTABLE, LUA_TTHREAD,
};

// Each method forwards to one C API call on a state valid for the whole raw call.
// Its SAFETY comment names the rules that make it sound: rule 1 always holds (the
// type's construction); the others are the method's own contract for its callers.
impl RawStack<'_> {
    /// Room for `n` more values (rule 2); false when the stack cannot grow.
    #[inline]
    pub fn reserve(self, n: c_int) -> bool {
        // SAFETY: `lua_checkstack` reports failure instead of raising.
        unsafe { ffi::lua_checkstack(self.state, n) != 0 }
    }

    /// Whether the state uses more memory than its limit (lifted for the call),
    /// counting `extra` bytes more: a long decode checks it now and then, so that
    /// the limit holds while it runs and not only once it is over.
    pub fn over_memory_limit(self, extra: usize) -> bool {
        if self.limit == 0 {
            return false;
        }
        // SAFETY: rule 1 (the type); `LUA_GCCOUNT` reads a counter.
        let kb = unsafe { ffi::lua_gc(self.state, ffi::LUA_GCCOUNT, 0) };
        let used = usize::try_from(kb).unwrap_or(0).saturating_mul(1024);
        used.saturating_add(extra) > self.limit
    }

    /// The index of the top value (the number of values on the stack).
    #[inline]
    pub fn top(self) -> c_int {
        // SAFETY: rule 1 (the type); it reads no slot and pushes none.
        unsafe { ffi::lua_gettop(self.state) }
    }

    /// Drops the values above `index` (never more than there are; it never pushes).
    #[inline]
    pub fn truncate(self, index: c_int) {
        let index = index.clamp(0, self.top());
        // SAFETY: rule 1 (the type); it reads no slot and pushes none.
        unsafe { ffi::lua_settop(self.state, index) }
    }

    /// Drops the top `n` values (never more than there are).
    #[inline]
    pub fn pop(self, n: c_int) {
        let index = (self.top() - n).max(0);
        // SAFETY: rule 1 (the type); it reads no slot and pushes none.
        unsafe { ffi::lua_settop(self.state, index) }
    }

    /// Moves the top value to `index` (replacing what was there) and drops the
    /// rest above it: what [`with_raw_stack`] returns when `index` is 1.
    ///
    /// # Safety
    /// Rule 5: `index` and the top are slots on the stack.
    #[inline]
    pub unsafe fn keep_top_at(self, index: c_int) {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_replace(self.state, index) };
        self.truncate(index);
    }

    /// # Safety
    /// Rule 2: a reserved slot.
    #[inline]
    pub unsafe fn push_nil(self) {
        // SAFETY: rules 1 (the type), 2 (a reserved slot).
        unsafe { ffi::lua_pushnil(self.state) }
    }

    /// # Safety
    /// Rule 2.
    #[inline]
    pub unsafe fn push_bool(self, b: bool) {
        // SAFETY: rules 1 (the type), 2 (a reserved slot).
        unsafe { ffi::lua_pushboolean(self.state, c_int::from(b)) }
    }

    /// # Safety
    /// Rule 2.
    #[inline]
    pub unsafe fn push_integer(self, i: i64) {
        // SAFETY: rules 1 (the type), 2 (a reserved slot).
        unsafe { ffi::lua_pushinteger(self.state, i) }
    }

    /// # Safety
    /// Rule 2.
    #[inline]
    pub unsafe fn push_number(self, f: f64) {
        // SAFETY: rules 1 (the type), 2 (a reserved slot).
        unsafe { ffi::lua_pushnumber(self.state, f) }
    }

    /// Pushes a light userdata (`json.null` is the null one).
    ///
    /// # Safety
    /// Rule 2.
    #[inline]
    pub unsafe fn push_light_userdata(self, ptr: *mut c_void) {
        // SAFETY: rules 1 (the type), 2 (a reserved slot).
        unsafe { ffi::lua_pushlightuserdata(self.state, ptr) }
    }

    /// Pushes a string holding a copy of `bytes`; returns the address of the
    /// string's own bytes (valid under rule 4).
    ///
    /// # Safety
    /// Rule 2; rule 3 for the new string.
    #[inline]
    pub unsafe fn push_bytes(self, bytes: &[u8]) -> *const u8 {
        // SAFETY: rules 1 (the type), 2 (a reserved slot), 3 (kept anchored).
        unsafe {
            ffi::lua_pushlstring(self.state, bytes.as_ptr().cast::<c_char>(), bytes.len())
                .cast::<u8>()
        }
    }

    /// Pushes a copy of the value at `index`.
    ///
    /// # Safety
    /// Rule 2; rule 5 (any kind of value).
    #[inline]
    pub unsafe fn push_copy(self, index: c_int) {
        // SAFETY: rules 1 (the type), 2 (a reserved slot), 5 (slots on the stack).
        unsafe { ffi::lua_pushvalue(self.state, index) }
    }

    /// Pushes a new table with room for `array` items and `hash` members; returns
    /// its index.
    ///
    /// # Safety
    /// Rule 2; rule 3 for the new table.
    #[inline]
    pub unsafe fn push_table(self, array: c_int, hash: c_int) -> c_int {
        // SAFETY: rules 1 (the type), 2 (a reserved slot), 3 (kept anchored).
        unsafe { ffi::lua_createtable(self.state, array, hash) };
        self.top()
    }

    /// `table[i] = top`, popping the value (no metamethods).
    ///
    /// # Safety
    /// Rule 5: `table` holds a table, and a value is on top.
    #[inline]
    pub unsafe fn set_index(self, table: c_int, i: i64) {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_rawseti(self.state, table, i) }
    }

    /// `table[key] = value` for the key and the value on top, popping both (no
    /// metamethods).
    ///
    /// # Safety
    /// Rule 5: `table` holds a table, a key and a value are on top; the key is
    /// neither nil nor NaN.
    #[inline]
    pub unsafe fn set_member(self, table: c_int) {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_rawset(self.state, table) }
    }

    /// Pushes `table[i]` (no metamethods).
    ///
    /// # Safety
    /// Rule 2; rule 5: `table` holds a table.
    #[inline]
    pub unsafe fn push_index(self, table: c_int, i: i64) {
        // SAFETY: rules 1 (the type), 2 (a reserved slot), 5 (slots on the stack).
        unsafe { ffi::lua_rawgeti(self.state, table, i) };
    }

    /// Replaces the key on top with `table[key]` (no metamethods).
    ///
    /// # Safety
    /// Rule 5: `table` holds a table, and a key is on top.
    #[inline]
    pub unsafe fn replace_key_by_value(self, table: c_int) {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_rawget(self.state, table) };
    }

    /// Pops a table and makes it the metatable of the table at `index`.
    ///
    /// # Safety
    /// Rule 5: a table on top, and `index` holds a table.
    #[inline]
    pub unsafe fn set_metatable(self, index: c_int) {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_setmetatable(self.state, index) };
    }

    /// Whether the value at `index` has exactly the metatable held at `metatable`.
    ///
    /// # Safety
    /// Rule 2 (the metatable is pushed, compared and popped); rule 5 for both.
    #[inline]
    pub unsafe fn has_metatable(self, index: c_int, metatable: c_int) -> bool {
        // SAFETY: rules 1 (the type), 2 (a reserved slot), 5 (slots on the stack).
        unsafe {
            if ffi::lua_getmetatable(self.state, index) == 0 {
                return false;
            }
            let same = ffi::lua_rawequal(self.state, -1, metatable) != 0;
            self.pop(1);
            same
        }
    }

    /// Pushes the entry after the key on top of the stack (popping that key) and
    /// returns true, or pops the key and returns false after the last entry.
    ///
    /// # Safety
    /// Rule 2 (one more slot); rule 5: `table` holds a table, left unchanged
    /// since the traversal began (`lua_next` raises on a key it no longer finds).
    #[inline]
    pub unsafe fn next(self, table: c_int) -> bool {
        // SAFETY: rules 1 (the type), 2 (a reserved slot), 5 (slots on the stack).
        unsafe { ffi::lua_next(self.state, table) != 0 }
    }

    /// The type tag of the value at `index` (`LUA_T*`).
    ///
    /// # Safety
    /// Rule 5 (any kind of value).
    #[inline]
    pub unsafe fn type_of(self, index: c_int) -> c_int {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_type(self.state, index) }
    }

    /// # Safety
    /// Rule 5 (any kind of value: only `false` and `nil` are false).
    #[inline]
    pub unsafe fn to_bool(self, index: c_int) -> bool {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_toboolean(self.state, index) != 0 }
    }

    /// Whether the number at `index` is an integer (a subtype in Lua 5.4).
    ///
    /// # Safety
    /// Rule 5.
    #[inline]
    pub unsafe fn is_integer(self, index: c_int) -> bool {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_isinteger(self.state, index) != 0 }
    }

    /// # Safety
    /// Rule 5: an integer.
    #[inline]
    pub unsafe fn to_integer(self, index: c_int) -> i64 {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_tointegerx(self.state, index, std::ptr::null_mut()) }
    }

    /// # Safety
    /// Rule 5: a number.
    #[inline]
    pub unsafe fn to_number(self, index: c_int) -> f64 {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_tonumberx(self.state, index, std::ptr::null_mut()) }
    }

    /// The bytes of the string at `index`.
    ///
    /// # Safety
    /// Rule 5: a string (a number would be converted in place); the slice is used
    /// only while rule 4 keeps it valid.
    #[inline]
    pub unsafe fn to_bytes<'a>(self, index: c_int) -> &'a [u8] {
        let mut len = 0;
        // SAFETY: rules 1 (the type), 4 (bytes used in place), 5 (slots on the stack).
        unsafe {
            let ptr = ffi::lua_tolstring(self.state, index, &mut len);
            std::slice::from_raw_parts(ptr.cast::<u8>(), len)
        }
    }

    /// The address identifying the table (or other object) at `index`.
    ///
    /// # Safety
    /// Rule 5.
    #[inline]
    pub unsafe fn to_pointer(self, index: c_int) -> *const c_void {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_topointer(self.state, index) }
    }

    /// The pointer of the light userdata at `index`.
    ///
    /// # Safety
    /// Rule 5: a light userdata.
    #[inline]
    pub unsafe fn to_light_userdata(self, index: c_int) -> *mut c_void {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_touserdata(self.state, index) }
    }

    /// The length of the table at `index` (its border, no `__len`).
    ///
    /// # Safety
    /// Rule 5: a table.
    #[inline]
    pub unsafe fn raw_len(self, index: c_int) -> usize {
        // SAFETY: rules 1 (the type), 5 (slots on the stack).
        unsafe { ffi::lua_rawlen(self.state, index) }
    }
}

/// A Lua type's name in error messages (`lua_typename`, but telling light userdata
/// apart).
pub fn type_name(lua_type: c_int) -> &'static str {
    match lua_type {
        LUA_TNIL => "nil",
        LUA_TBOOLEAN => "boolean",
        LUA_TNUMBER => "number",
        LUA_TSTRING => "string",
        LUA_TTABLE => "table",
        LUA_TFUNCTION => "function",
        LUA_TTHREAD => "thread",
        LUA_TLIGHTUSERDATA => "lightuserdata",
        _ => "userdata",
    }
}
