//! `json`: encode/decode with cjson's names (SPEC §7), for Lua and Rhai.

use mlua::{Lua, Table, Value};
use rhai::{Dynamic, EvalAltResult, Map, Module};

use crate::json::{self, Writer};

fn pretty_requested_lua(options: Option<Table>) -> mlua::Result<bool> {
    match options {
        Some(t) => Ok(t.get::<Option<bool>>("pretty")?.unwrap_or(false)),
        None => Ok(false),
    }
}

/// Installs the `json` global (also `require("json")`).
pub fn register_lua(lua: &Lua) -> mlua::Result<()> {
    let sentinels = json::lua::Sentinels::create(lua)?;
    let module = lua.create_table()?;
    module.set("null", json::lua::null())?;
    module.set("array_mt", sentinels.array_mt.clone())?;
    module.set("empty_array", sentinels.empty_array())?;
    module.set(
        "encode",
        lua.create_function(|lua, (value, options): (Value, Option<Table>)| {
            let mut writer = Writer::new(pretty_requested_lua(options)?);
            json::lua::encode(lua, &value, &mut writer)
                .map_err(|e| mlua::Error::runtime(format!("json.encode: {e}")))?;
            lua.create_string(writer.into_bytes())
        })?,
    )?;
    module.set(
        "decode",
        lua.create_function(|lua, text: mlua::LuaString| {
            json::lua::decode(lua, &text.as_bytes()).map_err(|e| match e {
                // Out of memory stays a memory error, whoever catches it.
                json::lua::DecodeError::Lua(lua_error) => lua_error,
                json::lua::DecodeError::Json(e) => {
                    mlua::Error::runtime(format!("json.decode: {e}"))
                }
            })
        })?,
    )?;
    lua.set_app_data(sentinels);
    lua.globals().set("json", module.clone())?;
    let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    loaded.set("json", module)?;
    Ok(())
}

fn encode_rhai(value: &Dynamic, pretty: bool) -> Result<String, Box<EvalAltResult>> {
    let mut writer = Writer::new(pretty);
    json::rhai::encode(value, &mut writer).map_err(|e| format!("json::encode: {e}"))?;
    // The writer only ever emits UTF-8: Rhai strings are UTF-8 already.
    Ok(String::from_utf8(writer.into_bytes()).expect("JSON writer emits UTF-8"))
}

/// Installs the static module `json` (`json::encode(x)`, `json::null`, ...).
pub fn register_rhai(engine: &mut rhai::Engine) {
    let mut module = Module::new();
    module.set_var("null", ());
    module.set_var("empty_array", rhai::Array::new());
    module.set_native_fn("encode", |value: Dynamic| encode_rhai(&value, false));
    module.set_native_fn("encode", |value: Dynamic, options: Map| {
        let pretty = options
            .get("pretty")
            .and_then(|v| v.as_bool().ok())
            .unwrap_or(false);
        encode_rhai(&value, pretty)
    });
    module.set_native_fn("decode", |text: &str| {
        json::rhai::decode(text.as_bytes())
            .map_err(|e| Box::<EvalAltResult>::from(format!("json::decode: {e}")))
    });
    engine.register_static_module("json", module.into());
}
