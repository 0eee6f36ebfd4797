//! What lure changes in a Lua state so that no script can stop the clock or crash
//! the process (SPEC 6).
//!
//! - **The deadline hook** is a C function: it raises the stop with `lua_error`
//!   directly. (A hook written as an mlua callback cleans its frame with
//!   `lua_settop`, which, run inside a hook, closes the script function's `<close>`
//!   variables there and then, with hooks off: a `__close` that never ends would
//!   never be stopped.) Once the stop has passed it fires on every instruction of
//!   the thread it stopped, so no `pcall` can swallow it; coroutines inherit it.
//! - **`xpcall`'s message handler** does not run once the stop has passed: Lua runs
//!   the handler of an error raised by a hook with hooks off, so a handler that
//!   never ends would never be stopped.
//! - **Finalizers** (`__gc`, set through `setmetatable`) run in a coroutine of
//!   their own: Lua runs finalizers with hooks off on the collecting thread, but a
//!   coroutine started there has hooks on, so the deadline stops a finalizer too.
//!   While lure holds the raw stack (JSON), finalizers wait for it to be released.
//! - **Chunks are text**: `load`, `loadfile`, `dofile` and `require` refuse
//!   precompiled chunks, which can crash the VM (Lua does not verify bytecode).

use std::ffi::c_int;

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, Table, Value, ffi};

use crate::deadline;
use crate::json;

/// How many VM instructions run between two looks at the clock.
const INSTRUCTIONS_PER_CHECK: c_int = 1000;

/// The error a stopped script sees (and the engine recognises by the deadline).
const STOP_MESSAGE: &str = "Runtime.Timeout: the invocation's deadline has passed";

/// The instruction hook: once the invocation's stop has passed, it makes this
/// thread check on every instruction and raises the stop.
///
/// # Safety
/// Called by Lua as a hook, which has `LUA_MINSTACK` free slots.
unsafe extern "C-unwind" fn deadline_hook(state: *mut ffi::lua_State, _: *mut ffi::lua_Debug) {
    if !deadline::check() {
        return;
    }
    // SAFETY: a hook may set hooks and raise errors; the pushed message uses one
    // of the slots Lua guarantees a hook. `lua_error` jumps over this frame,
    // which holds nothing to drop.
    unsafe {
        ffi::lua_sethook(state, Some(deadline_hook), ffi::LUA_MASKCOUNT, 1);
        ffi::lua_pushlstring(state, STOP_MESSAGE.as_ptr().cast(), STOP_MESSAGE.len());
        ffi::lua_error(state);
    }
}

/// Sets the cheap periodic deadline check on the state's main thread (coroutines
/// created from then on inherit it); also what undoes the per-instruction check
/// after a stop.
pub fn set_periodic_hook(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: `lua_sethook` neither raises nor touches the stack.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            ffi::lua_sethook(
                state,
                Some(deadline_hook),
                ffi::LUA_MASKCOUNT,
                INSTRUCTIONS_PER_CHECK,
            );
        })
    }
}

/// `true` once the current invocation's stop has passed.
fn stopped(_: &Lua, _: ()) -> mlua::Result<bool> {
    Ok(deadline::check())
}

/// The metatable of `value`, whatever its `__metatable` field says.
fn metatable_of(_: &Lua, value: Value) -> mlua::Result<Option<Table>> {
    Ok(match value {
        Value::Table(t) => t.metatable(),
        _ => None,
    })
}

/// Whether a finalizer must wait for lure's raw stack to be released.
fn finalizers_wait(_: &Lua, _: ()) -> mlua::Result<bool> {
    Ok(json::lua::finalizers_wait())
}

/// Replaces `xpcall`, `setmetatable`, `load`, `loadfile`, `dofile` and the Lua
/// file searcher of `require` with the versions described in the module doc.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let package: Table = globals.get("package")?;
    let searchers: Table = package.get("searchers")?;
    let run_put_off: Function = guards(lua)?.call((
        lua.create_function(stopped)?,
        lua.create_function(metatable_of)?,
        lua.create_function(finalizers_wait)?,
        searchers,
    ))?;
    lua.set_app_data(json::lua::PutOffFinalizers(run_put_off));
    set_periodic_hook(lua)
}

/// [`GUARDS`] compiled, as `string.dump` writes it: loading it takes a few
/// thousand instructions where compiling the text takes about 360,000 (a tenth of
/// a millisecond of every cold start). It is lure's own chunk, checked against the
/// text by a unit test (`LURE_BLESS=1 cargo test guards` rewrites it); scripts
/// still cannot load bytecode.
const GUARDS_BYTECODE: &[u8] = include_bytes!("guards.luac");

/// The guards' chunk: the bytecode, or the text should this build's Lua not take
/// the bytecode (a different integer or float size than where it was dumped).
fn guards(lua: &Lua) -> mlua::Result<Function> {
    lua.load(GUARDS_BYTECODE)
        .set_mode(ChunkMode::Binary)
        .into_function()
        .or_else(|_| {
            lua.load(GUARDS)
                .set_name("=lure")
                .set_mode(ChunkMode::Text)
                .into_function()
        })
}

/// The Lua side of [`install`]. `require`'s searcher for Lua files is rewritten
/// with `loadfile(path, "t")`; its messages are those of Lua's own searcher.
const GUARDS: &str = r##"
local stopped, metatable_of, finalizers_wait, searchers = ...
local error, type, select, rawget, rawset = error, type, select, rawget, rawset
local xpcall, load, loadfile, setmetatable = xpcall, load, loadfile, setmetatable
local create, resume = coroutine.create, coroutine.resume
local searchpath = package.searchpath

-- Finalizers: each metatable's own __gc, kept here; the metatable gets `guard`.
local finalizers = setmetatable({}, { __mode = "k" })
-- Objects (and their finalizers) whose finalizer waits for the raw stack.
local put_off = {}

-- A coroutine has hooks on even while its creator runs a finalizer with them off.
local function finalize(object, finalizer)
  if type(finalizer) == "function" and not stopped() then
    resume(create(finalizer), object)
  end
end

local function guard(object)
  local finalizer = finalizers[metatable_of(object)]
  if finalizer == nil then return end
  if finalizers_wait() then
    put_off[#put_off + 1] = object
    put_off[#put_off + 1] = finalizer
  else
    finalize(object, finalizer)
  end
end

_G.setmetatable = function(t, mt)
  if type(mt) == "table" then
    local finalizer = rawget(mt, "__gc")
    if finalizer ~= nil and finalizer ~= guard then
      finalizers[mt] = finalizer
      rawset(mt, "__gc", guard)
    end
  end
  return setmetatable(t, mt)
end

_G.xpcall = function(f, handler, ...)
  if type(handler) ~= "function" then return xpcall(f, handler, ...) end
  return xpcall(f, function(e)
    if stopped() then return e end
    return handler(e)
  end, ...)
end

-- An environment given, even nil, is the chunk's _ENV: pass it on only if given.
_G.load = function(chunk, name, mode, ...)
  if select("#", ...) > 0 then return load(chunk, name, "t", (...)) end
  return load(chunk, name, "t")
end

_G.loadfile = function(filename, mode, ...)
  if select("#", ...) > 0 then return loadfile(filename, "t", (...)) end
  return loadfile(filename, "t")
end

_G.dofile = function(filename)
  local f, err = loadfile(filename, "t")
  if not f then error(err, 0) end
  return f()
end

searchers[2] = function(name)
  local file, err = searchpath(name, package.path)
  if not file then return err end
  local f, lerr = loadfile(file, "t")
  if not f then
    error(("error loading module '%s' from file '%s':\n\t%s"):format(name, file, lerr), 0)
  end
  return f, file
end

-- Runs the finalizers put off while lure held the raw stack.
return function()
  local list = put_off
  put_off = {}
  for i = 1, #list, 2 do finalize(list[i], list[i + 1]) end
end
"##;

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed bytecode is the text's: with `LURE_BLESS=1`, the test writes
    /// it instead of comparing.
    #[test]
    fn guards_bytecode_is_the_compiled_text() -> mlua::Result<()> {
        let lua = Lua::new();
        let compiled = lua
            .load(GUARDS)
            .set_name("=lure")
            .set_mode(ChunkMode::Text)
            .into_function()?
            .dump(false);
        if std::env::var_os("LURE_BLESS").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/engine/lua/guards.luac");
            std::fs::write(path, &compiled).expect("write guards.luac");
            return Ok(());
        }
        assert!(
            compiled == GUARDS_BYTECODE,
            "src/engine/lua/guards.luac is not GUARDS compiled: run `LURE_BLESS=1 cargo test guards`"
        );
        // The bytecode loads, as what `install` uses.
        lua.load(GUARDS_BYTECODE)
            .set_mode(ChunkMode::Binary)
            .into_function()?;
        Ok(())
    }
}
