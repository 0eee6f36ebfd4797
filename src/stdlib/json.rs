//! `json`: encode/decode with cjson's names (SPEC 7), for Lua and Rhai. The
//! conversion itself is the engine's JSON codec ([`crate::json`]); this module
//! gives it to scripts. As with cjson, errors are plain strings a `pcall` / `catch`
//! can print or return; running out of memory stays out of memory.

use mlua::{Lua, Table, Value as LuaValue};
use rhai::{Array, Dynamic, Map, NativeCallContext};

use super::binding::{self, Error, Lang};
use crate::json::{self, Writer};

/// Installs the `json` global (also `require("json")`).
pub fn register_lua(lua: &Lua) -> mlua::Result<()> {
    binding::lua::install_lazy(lua, "json", build_lua)
}

fn build_lua(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let encode = binding::lua::function(lua, "json", "encode", |lua, args| {
        let mut args = args.into_iter();
        let value = args.next().unwrap_or(LuaValue::Nil);
        let pretty = match args.next() {
            None | Some(LuaValue::Nil) => false,
            Some(LuaValue::Table(options)) => {
                options.get::<Option<bool>>("pretty")?.unwrap_or(false)
            }
            Some(other) => return Ok(Err(options_error(other.type_name()))),
        };
        let mut writer = Writer::new(pretty);
        Ok(match json::lua::encode(lua, &value, &mut writer) {
            Ok(()) => Ok(LuaValue::String(lua.create_string(writer.into_bytes())?)),
            Err(e) => Err(Error::Failed(e.to_string())),
        })
    })?;
    let decode = binding::lua::function(lua, "json", "decode", |lua, args| {
        let text = match args.front() {
            Some(LuaValue::String(s)) => s.as_bytes(),
            other => {
                let got = other.map_or("nil", LuaValue::type_name);
                return Ok(Err(Error::argument(
                    1,
                    format!("must be a string, not {got}"),
                )));
            }
        };
        match json::lua::decode(lua, &text) {
            Ok(value) => Ok(Ok(value)),
            Err(json::lua::DecodeError::Lua(memory)) => Err(memory),
            Err(json::lua::DecodeError::Json(e)) => Ok(Err(Error::Failed(e.to_string()))),
        }
    })?;
    module.set("encode", encode)?;
    module.set("decode", decode)?;
    module.set("null", json::lua::null())?;
    module.set("array_mt", json::lua::Codec::array_mt(lua))?;
    module.set("empty_array", json::lua::empty_array())
}

fn options_error(got: &str) -> Error {
    Error::argument(
        2,
        format!("must be a table of options ({{pretty = true}}), not {got}"),
    )
}

fn encode_rhai(value: &Dynamic, options: Option<&Dynamic>) -> Result<String, Error> {
    let pretty = match options {
        None => false,
        Some(options) => match options.read_lock::<Map>() {
            Some(map) => map
                .get("pretty")
                .and_then(|v| v.as_bool().ok())
                .unwrap_or(false),
            None => return Err(options_error(options.type_name())),
        },
    };
    let mut writer = Writer::new(pretty);
    json::rhai::encode(value, &mut writer).map_err(|e| Error::Failed(e.to_string()))?;
    // The writer only ever emits UTF-8: Rhai strings are UTF-8 already.
    Ok(String::from_utf8(writer.into_bytes()).expect("JSON writer emits UTF-8"))
}

fn decode_rhai(text: &Dynamic) -> Result<Dynamic, Error> {
    let value = binding::rhai::from_rhai(text);
    let args = binding::Args::new(vec![value], Lang::Rhai);
    json::rhai::decode(args.data(1)?).map_err(|e| Error::Failed(e.to_string()))
}

/// Installs the static module `json` (`json::encode(x)`, `json::empty_array`, ...).
/// `null` is a reserved word in Rhai: JSON's null is `()`.
pub fn register_rhai(
    engine: &mut rhai::Engine,
    definitions: Option<&mut binding::rhai::Definitions>,
) {
    let throw = |ctx: &NativeCallContext, function, e: Error| {
        let name = binding::Name {
            module: "json",
            function,
            lang: Lang::Rhai,
        };
        binding::rhai::throw(ctx, &e, name)
    };
    let mut module = binding::rhai::ModuleBuilder::new("json");
    module
        .constant(
            "empty_array",
            Dynamic::from_array(Array::new()),
            "Array",
            "An empty array, `[]` (cjson's name; any Rhai array encodes as a JSON array).",
        )
        .custom(
            &[
                "encode(value: ?) -> String",
                "encode(value: ?, options: Map) -> String",
            ],
            "`value` as JSON text; `#{ pretty: true }` indents it by two spaces.",
            |m| {
                m.set_native_fn("encode", move |ctx: NativeCallContext, value: Dynamic| {
                    encode_rhai(&value, None).map_err(|e| throw(&ctx, "encode", e))
                });
                m.set_native_fn(
                    "encode",
                    move |ctx: NativeCallContext, value: Dynamic, options: Dynamic| {
                        encode_rhai(&value, Some(&options))
                            .map_err(|e| throw(&ctx, "encode", e))
                    },
                );
            },
        )
        .custom(
            &["decode(text: ?) -> ?"],
            "The value of the JSON text (a string or a Blob): objects as maps, arrays as arrays, `null` as `()`.",
            |m| {
                m.set_native_fn("decode", move |ctx: NativeCallContext, text: Dynamic| {
                    decode_rhai(&text).map_err(|e| throw(&ctx, "decode", e))
                });
            },
        );
    module.register(engine, definitions);
}
