//! `json`: encode/decode with cjson's names (SPEC §7), for Lua and Rhai.

use mlua::{Lua, Table, Value};
use rhai::{Dynamic, EvalAltResult, Map, Module, NativeCallContext};

use crate::json::{self, Writer};

fn pretty_requested_lua(options: Option<Table>) -> mlua::Result<bool> {
    match options {
        Some(t) => Ok(t.get::<Option<bool>>("pretty")?.unwrap_or(false)),
        None => Ok(false),
    }
}

/// Installs the `json` global (also `require("json")`).
///
/// Like cjson's, its errors are plain strings a `pcall` can print or return; the
/// Rust halves report failures as a second result and a Lua wrapper raises them
/// at the caller's line. Out of memory stays a memory error.
pub fn register_lua(lua: &Lua) -> mlua::Result<()> {
    let encode = lua.create_function(|lua, (value, options): (Value, Option<Table>)| {
        let mut writer = Writer::new(pretty_requested_lua(options)?);
        Ok(match json::lua::encode(lua, &value, &mut writer) {
            Ok(()) => (Some(lua.create_string(writer.into_bytes())?), None),
            Err(e) => (None, Some(format!("json.encode: {e}"))),
        })
    })?;
    let decode = lua.create_function(|lua, text: mlua::LuaString| {
        Ok(match json::lua::decode(lua, &text.as_bytes()) {
            Ok(value) => (value, None),
            Err(json::lua::DecodeError::Lua(memory)) => return Err(memory),
            Err(json::lua::DecodeError::Json(e)) => (Value::Nil, Some(format!("json.decode: {e}"))),
        })
    })?;
    let module: Table = lua
        .load(
            r#"
            local encode, decode, error = ...
            return {
              encode = function(value, options)
                local text, err = encode(value, options)
                if err then error(err, 2) end
                return text
              end,
              decode = function(text)
                local value, err = decode(text)
                if err then error(err, 2) end
                return value
              end,
            }
            "#,
        )
        .set_name("=json")
        .call((encode, decode, lua.globals().get::<Value>("error")?))?;
    module.set("null", json::lua::null())?;
    module.set("array_mt", json::lua::Codec::array_mt(lua))?;
    module.set("empty_array", json::lua::empty_array())?;
    lua.globals().set("json", module.clone())?;
    let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    loaded.set("json", module)?;
    Ok(())
}

/// A script-visible error raised where the module function was called.
fn at_call(ctx: &NativeCallContext, message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        message.into(),
        ctx.call_position(),
    ))
}

fn encode_rhai(value: &Dynamic, pretty: bool) -> Result<String, String> {
    let mut writer = Writer::new(pretty);
    json::rhai::encode(value, &mut writer).map_err(|e| format!("json::encode: {e}"))?;
    // The writer only ever emits UTF-8: Rhai strings are UTF-8 already.
    Ok(String::from_utf8(writer.into_bytes()).expect("JSON writer emits UTF-8"))
}

/// Installs the static module `json` (`json::encode(x)`, `json::empty_array`, ...).
/// `null` is a reserved word in Rhai: JSON's null is `()`.
pub fn register_rhai(engine: &mut rhai::Engine) {
    let mut module = Module::new();
    module.set_var("empty_array", rhai::Array::new());
    // Rhai adds no position to errors from module functions: give the call's.
    module.set_native_fn("encode", |ctx: NativeCallContext, value: Dynamic| {
        encode_rhai(&value, false).map_err(|e| at_call(&ctx, e))
    });
    module.set_native_fn(
        "encode",
        |ctx: NativeCallContext, value: Dynamic, options: Map| {
            let pretty = options
                .get("pretty")
                .and_then(|v| v.as_bool().ok())
                .unwrap_or(false);
            encode_rhai(&value, pretty).map_err(|e| at_call(&ctx, e))
        },
    );
    module.set_native_fn("decode", |ctx: NativeCallContext, text: &str| {
        json::rhai::decode(text.as_bytes()).map_err(|e| at_call(&ctx, format!("json::decode: {e}")))
    });
    engine.register_static_module("json", module.into());
}
