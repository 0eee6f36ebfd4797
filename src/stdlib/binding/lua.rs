//! The Lua half of the module contract: modules as globals that are also
//! `require`-able, values converted both ways, errors raised at the caller's line.
//!
//! An error returned from a Rust callback reaches Lua as a userdata (mlua wraps
//! it), which is not what `pcall` gives for Lua's own functions. So a bound
//! function is a small C closure, [`raise_errors`], around its Rust half: the Rust
//! half answers `true, result` or `false, error`, and the closure raises the
//! error as Lua's own library functions do (`luaL_error`): a message gets the
//! caller's `file:line:` in front, a typed error (a table) is raised as it is. A C
//! function called in tail position keeps its caller's frame, so even
//! `return base64.decode(s)` names the line, and tracebacks read as they do for
//! `string.rep`: `[C]: in function 'base64.decode'`, then the script's frames.

use std::ffi::c_int;

use mlua::{Function, IntoLua, Lua, MultiValue, Table, Value as LuaValue, ffi};

use super::{Args, Budget, Error, Lang, Module, Name, TypedError, Value};
use crate::json;

/// The C half of every bound function; upvalue 1 is its Rust half.
///
/// # Safety
/// Called by Lua as a C function, with the Rust half as its only upvalue.
unsafe extern "C-unwind" fn raise_errors(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua's C API on the stack of this call, as any C function uses it
    // (`lua_call` grows the stack as needed). A Lua error raised here (by the Rust
    // half, or `lua_error`) jumps over this frame, which holds nothing to drop.
    unsafe {
        let args = ffi::lua_gettop(state);
        if ffi::lua_checkstack(state, 3) == 0 {
            return ffi::luaL_error(state, c"stack overflow".as_ptr());
        }
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, args, 2);
        if ffi::lua_toboolean(state, 1) != 0 {
            return 1;
        }
        if ffi::lua_type(state, 2) == ffi::LUA_TSTRING {
            // Level 1: the function that called this one (the script's line).
            ffi::luaL_where(state, 1);
            ffi::lua_insert(state, 2);
            ffi::lua_concat(state, 2);
        }
        ffi::lua_error(state)
    }
}

/// The metatable of typed errors, kept per state: `tostring(err)` (and
/// `print(err)`) reads `Type: message`.
struct TypedErrors(Table);

fn typed_error_metatable(lua: &Lua) -> mlua::Result<Table> {
    if let Some(typed) = lua.app_data_ref::<TypedErrors>() {
        return Ok(typed.0.clone());
    }
    let metatable = lua.create_table()?;
    metatable.set("__name", "lure.error")?;
    metatable.set(
        "__tostring",
        lua.create_function(|_, error: Table| {
            let part = |key: &str| -> mlua::Result<String> {
                Ok(match error.raw_get::<LuaValue>(key)? {
                    LuaValue::String(s) => s.to_string_lossy(),
                    other => format!("{other:?}"),
                })
            };
            Ok(format!("{}: {}", part("errorType")?, part("errorMessage")?))
        })?,
    )?;
    lua.set_app_data(TypedErrors(metatable.clone()));
    Ok(metatable)
}

/// A script-facing function whose Rust half `f` answers a value or an [`Error`];
/// the error is raised at the caller's line, naming the function
/// (`base64.decode`). An `mlua::Error` from `f` (out of memory) propagates as such.
pub fn function<F>(
    lua: &Lua,
    module: &'static str,
    name: &'static str,
    f: F,
) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> mlua::Result<Result<LuaValue, Error>> + 'static,
{
    let typed_mt = typed_error_metatable(lua)?;
    let rust_half = lua.create_function(move |lua, args: MultiValue| {
        Ok(match f(lua, args)? {
            Ok(value) => (true, value),
            Err(error) => {
                let name = Name {
                    module,
                    function: name,
                    lang: Lang::Lua,
                };
                (false, error_value(lua, &typed_mt, &error, name)?)
            }
        })
    })?;
    // SAFETY: pushes one C closure, taking the Rust half (the raw call's argument)
    // as its upvalue; `exec_raw` checked the stack has room. An allocation error
    // jumps over this closure's frame, which holds nothing to drop.
    unsafe {
        lua.exec_raw::<Function>(rust_half, |state| {
            ffi::lua_pushcclosure(state, raise_errors, 1);
        })
    }
}

/// The value raised for `error`: the message as a string, or a typed error's table.
fn error_value(lua: &Lua, typed_mt: &Table, error: &Error, name: Name) -> mlua::Result<LuaValue> {
    match error {
        Error::Typed(TypedError {
            error_type,
            message,
            fields,
        }) => {
            let table = lua.create_table_with_capacity(0, 2 + fields.len())?;
            table.raw_set("errorType", error_type.as_str())?;
            table.raw_set("errorMessage", message.as_str())?;
            for (name, value) in fields {
                table.raw_set(name.as_str(), to_lua(lua, value)?)?;
            }
            table.set_metatable(Some(typed_mt.clone()))?;
            Ok(LuaValue::Table(table))
        }
        other => other.message(name).into_lua(lua),
    }
}

/// Makes `table` the global `name` and what `require(name)` returns.
fn install(lua: &Lua, name: &str, table: &Table) -> mlua::Result<()> {
    lua.globals().set(name, table)?;
    let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    loaded.set(name, table)
}

/// Fills a module's table: its functions and members.
pub type Build = fn(&Lua, &Table) -> mlua::Result<()>;

/// How a lazy module is built.
#[derive(Clone, Copy)]
enum Builder {
    /// From its description: its functions.
    Described(&'static Module),
    /// By a function of the module's own.
    Custom(Build),
}

/// The modules installed but not built yet, by name, and the metamethods that
/// build them.
struct Lazy {
    builds: Vec<(&'static str, Builder)>,
    index: Function,
    pairs: Function,
}

/// Installs `module`, described, as a lazy module (see [`install_lazy`]).
pub fn register(lua: &Lua, module: &'static Module) -> mlua::Result<()> {
    install_builder(lua, module.name, Builder::Described(module))
}

/// Installs the module `name` (see [`install`]), whose table `build` fills the
/// first time it is used: most functions use a few modules, and building all of
/// them would cost every cold start about 0.1 M instructions. Until then the
/// table is empty, with a metatable (named after the module) whose `__index` and
/// `__pairs` build it and then step aside.
pub fn install_lazy(lua: &Lua, name: &'static str, build: Build) -> mlua::Result<()> {
    install_builder(lua, name, Builder::Custom(build))
}

fn install_builder(lua: &Lua, name: &'static str, builder: Builder) -> mlua::Result<()> {
    if lua.app_data_ref::<Lazy>().is_none() {
        let index = lua.create_function(|lua, (table, key): (Table, LuaValue)| {
            build_now(lua, &table)?;
            table.raw_get::<LuaValue>(key)
        })?;
        let pairs = lua.create_function(|lua, table: Table| {
            build_now(lua, &table)?;
            let next: Function = lua.globals().get("next")?;
            Ok((next, table, LuaValue::Nil))
        })?;
        lua.set_app_data(Lazy {
            builds: Vec::new(),
            index,
            pairs,
        });
    }
    let (index, pairs) = {
        let mut lazy = lua.app_data_mut::<Lazy>().expect("set above");
        lazy.builds.push((name, builder));
        (lazy.index.clone(), lazy.pairs.clone())
    };
    let metatable = lua.create_table_with_capacity(0, 3)?;
    metatable.raw_set("__name", name)?;
    metatable.raw_set("__index", index)?;
    metatable.raw_set("__pairs", pairs)?;
    let table = lua.create_table()?;
    table.set_metatable(Some(metatable))?;
    install(lua, name, &table)
}

/// Builds the lazy module whose table is `table`, and drops its metatable.
fn build_now(lua: &Lua, table: &Table) -> mlua::Result<()> {
    let Some(metatable) = table.metatable() else {
        return Ok(());
    };
    let name: String = metatable.raw_get("__name")?;
    let build = lua.app_data_ref::<Lazy>().and_then(|lazy| {
        lazy.builds
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
    });
    match build {
        Some(Builder::Described(module)) => build_described(lua, table, module)?,
        Some(Builder::Custom(build)) => build(lua, table)?,
        None => {}
    }
    // Only once built: a build that failed (out of memory) is tried again on the
    // next use.
    table.set_metatable(None)
}

/// Fills `table` with `module`'s functions (a module that builds itself uses it
/// for its described part).
pub fn build_described(lua: &Lua, table: &Table, module: &'static Module) -> mlua::Result<()> {
    for function in module.functions {
        let call = function.call;
        let name = Name {
            module: module.name,
            function: function.name,
            lang: Lang::Lua,
        };
        let f = self::function(lua, module.name, function.name, move |lua, args| {
            let mut budget = Budget::left(lua.used_memory());
            let result = args
                .iter()
                .map(|a| from_lua(lua, a, &mut budget))
                .collect::<Result<Vec<_>, _>>()
                .and_then(|values| call(&Args::new(values, Lang::Lua).with_budget(budget)));
            match result {
                Ok(value) => to_lua(lua, &value).map(Ok),
                // As any allocation past the limit: a memory error.
                Err(error @ Error::OutOfMemory(_)) => {
                    Err(mlua::Error::MemoryError(error.message(name)))
                }
                Err(error) => Ok(Err(error)),
            }
        })?;
        table.raw_set(function.name, f)?;
    }
    Ok(())
}

/// Tables deeper than this are not converted (an argument, not a document).
const MAX_TABLE_DEPTH: usize = 32;

/// A Lua value as the binding carries it. Strings arrive as bytes (Lua strings
/// are); `json.null` is nil; a table is a list when it carries `json.array_mt` or
/// its keys are `1..n`, else a map whose number keys become text.
pub fn from_lua(lua: &Lua, value: &LuaValue, budget: &mut Budget) -> Result<Value, Error> {
    from_lua_at(lua, value, 0, budget)
}

/// What the binding counts for each value it converts, besides its bytes.
const VALUE_BYTES: usize = 48;

fn from_lua_at(
    lua: &Lua,
    value: &LuaValue,
    depth: usize,
    budget: &mut Budget,
) -> Result<Value, Error> {
    budget.take(VALUE_BYTES, "the arguments")?;
    Ok(match value {
        LuaValue::Nil => Value::Nil,
        LuaValue::Boolean(b) => Value::Bool(*b),
        LuaValue::Integer(i) => Value::Int(*i),
        LuaValue::Number(n) => Value::Float(*n),
        LuaValue::String(s) => {
            let bytes = s.as_bytes();
            budget.take(bytes.len(), "the arguments")?;
            Value::Bytes(bytes.to_vec())
        }
        LuaValue::LightUserData(p) if p.0.is_null() => Value::Nil,
        LuaValue::Table(t) if depth < MAX_TABLE_DEPTH => table_from_lua(lua, t, depth, budget)?,
        other => Value::Other(other.type_name()),
    })
}

fn table_from_lua(
    lua: &Lua,
    table: &Table,
    depth: usize,
    budget: &mut Budget,
) -> Result<Value, Error> {
    let len = table.raw_len();
    let metatable = table.metatable();
    let binary = binary_mt(lua).map_err(|e| Error::OutOfMemory(e.to_string()))?;
    if metatable.as_ref() == Some(&binary) {
        let bytes = table.raw_get::<mlua::LuaString>(1).map_err(|_| {
            Error::Failed("a binary value has lost its data (field 1 is not a string)".into())
        })?;
        budget.take(bytes.as_bytes().len(), "the arguments")?;
        return Ok(Value::Binary(bytes.as_bytes().to_vec()));
    }
    let is_array = metatable.is_some_and(|mt| mt == json::lua::Codec::array_mt(lua));
    let mut entries: Vec<(LuaValue, LuaValue)> = Vec::new();
    for pair in table.pairs::<LuaValue, LuaValue>() {
        let Ok(pair) = pair else { continue };
        budget.take(VALUE_BYTES, "the arguments")?;
        entries.push(pair);
    }
    if is_array || (len > 0 && entries.len() == len) {
        entries.sort_by_key(|(k, _)| match k {
            LuaValue::Integer(i) => *i,
            _ => i64::MAX,
        });
        return entries
            .iter()
            .filter(|(k, _)| matches!(k, LuaValue::Integer(_)))
            .map(|(_, v)| from_lua_at(lua, v, depth + 1, budget))
            .collect::<Result<_, _>>()
            .map(Value::List);
    }
    if entries.is_empty() {
        // `{}`, as `json.encode` writes it.
        return Ok(Value::Map(Vec::new()));
    }
    let mut map = Vec::with_capacity(entries.len());
    for (k, v) in &entries {
        let key = match k {
            LuaValue::String(s) => s.to_string_lossy(),
            LuaValue::Integer(i) => i.to_string(),
            LuaValue::Number(n) => n.to_string(),
            _ => continue,
        };
        budget.take(key.len(), "the arguments")?;
        map.push((key, from_lua_at(lua, v, depth + 1, budget)?));
    }
    map.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::Map(map))
}

/// The metatable of binary data a Lua script marks (`aws.dynamodb.binary(s)`):
/// Lua strings are bytes, so "this is binary, not text" needs a mark. Kept in the
/// registry under its name.
fn binary_mt(lua: &Lua) -> mlua::Result<Table> {
    const NAME: &str = "lure.binary";
    if let Ok(mt) = lua.named_registry_value::<Table>(NAME) {
        return Ok(mt);
    }
    let mt = lua.create_table()?;
    mt.raw_set("__name", NAME)?;
    lua.set_named_registry_value(NAME, &mt)?;
    Ok(mt)
}

/// `bytes` marked as binary: `{bytes}` with the `lure.binary` metatable, which
/// [`from_lua`] reads back as [`Value::Binary`].
pub fn binary(lua: &Lua, bytes: &[u8]) -> mlua::Result<Table> {
    let mt = binary_mt(lua)?;
    let table = lua.create_table_with_capacity(1, 0)?;
    table.raw_set(1, lua.create_string(bytes)?)?;
    table.set_metatable(Some(mt))?;
    Ok(table)
}

/// A binding value in Lua: text and bytes as strings, lists as tables carrying
/// `json.array_mt` (so they encode as arrays, even empty), maps as tables.
pub fn to_lua(lua: &Lua, value: &Value) -> mlua::Result<LuaValue> {
    Ok(match value {
        Value::Nil | Value::Other(_) => LuaValue::Nil,
        Value::Null => json::lua::null(),
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Int(i) => LuaValue::Integer(*i),
        Value::Float(f) => LuaValue::Number(*f),
        Value::Text(s) => LuaValue::String(lua.create_string(s)?),
        Value::Bytes(b) | Value::Decoded(b) => LuaValue::String(lua.create_string(b)?),
        Value::Binary(b) => LuaValue::Table(binary(lua, b)?),
        Value::List(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            table.set_metatable(Some(json::lua::Codec::array_mt(lua)))?;
            LuaValue::Table(table)
        }
        Value::Map(entries) => {
            let table = lua.create_table_with_capacity(0, entries.len())?;
            for (key, item) in entries {
                table.raw_set(key.as_str(), to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
    })
}
