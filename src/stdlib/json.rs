//! `json`: encode/decode with cjson's names (SPEC 7), for Lua and Rhai. The
//! conversion itself is the engine's JSON codec ([`crate::json`]); this module
//! gives it to scripts. As with cjson, errors are plain strings a `pcall` / `catch`
//! can print or return; running out of memory stays out of memory.

use mlua::{Lua, Table, Value as LuaValue};
use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};

use super::binding::{self, Error, Lang};
use crate::json::{self, Writer};
use crate::limits;
use crate::memory;

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
        // The text is the script's to hold: past what its memory limit leaves, it
        // is out of memory, as any allocation would be.
        let room = limits::script_memory().saturating_sub(lua.used_memory());
        let mut writer = Writer::with_limit(pretty, room);
        Ok(match json::lua::encode(lua, &value, &mut writer) {
            Ok(()) => Ok(LuaValue::String(lua.create_string(writer.into_bytes())?)),
            Err(e) if e.is_too_large() || e.is_out_of_memory() => {
                return Err(mlua::Error::MemoryError(format!("json.encode: {e}")));
            }
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

/// Why `json::encode` failed: the script's mistake, or its memory.
enum EncodeFailure {
    Error(Error),
    TooLarge,
}

impl From<Error> for EncodeFailure {
    fn from(e: Error) -> Self {
        EncodeFailure::Error(e)
    }
}

fn encode_rhai(value: &Dynamic, options: Option<&Dynamic>) -> Result<String, EncodeFailure> {
    let pretty = match options {
        None => false,
        Some(options) => match options.read_lock::<Map>() {
            Some(map) => map
                .get("pretty")
                .and_then(|v| v.as_bool().ok())
                .unwrap_or(false),
            None => return Err(options_error(options.type_name()).into()),
        },
    };
    let room = limits::script_memory().saturating_sub(memory::thread_heap());
    let mut writer = Writer::with_limit(pretty, room);
    json::rhai::encode(value, &mut writer).map_err(|e| {
        if e.is_too_large() {
            EncodeFailure::TooLarge
        } else {
            EncodeFailure::Error(Error::Failed(e.to_string()))
        }
    })?;
    // The writer only ever emits UTF-8: Rhai strings are UTF-8 already.
    Ok(String::from_utf8(writer.into_bytes()).expect("JSON writer emits UTF-8"))
}

fn decode_rhai(ctx: &NativeCallContext, text: &Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
    let name = binding::Name {
        module: "json",
        function: "decode",
        lang: Lang::Rhai,
    };
    // The text is at most Rhai's string size: copied whole.
    let value = binding::rhai::from_rhai(text, &mut binding::Budget::unlimited())
        .map_err(|e| binding::rhai::throw(ctx, &e, name))?;
    let args = binding::Args::new(vec![value], Lang::Rhai);
    let text = args
        .data(1)
        .map_err(|e| binding::rhai::throw(ctx, &e, name))?;
    json::rhai::decode(text).map_err(|e| match e {
        json::rhai::DecodeError::Json(e) => {
            binding::rhai::throw(ctx, &Error::Failed(e.to_string()), name)
        }
        json::rhai::DecodeError::OutOfMemory => Box::new(EvalAltResult::ErrorDataTooLarge(
            json::rhai::DOCUMENT_TOO_LARGE.into(),
            ctx.call_position(),
        )),
    })
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
    let encode_failed = move |ctx: &NativeCallContext, failure| match failure {
        EncodeFailure::Error(e) => throw(ctx, "encode", e),
        EncodeFailure::TooLarge => Box::new(EvalAltResult::ErrorDataTooLarge(
            json::rhai::TEXT_TOO_LARGE.into(),
            ctx.call_position(),
        )),
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
                    encode_rhai(&value, None).map_err(|e| encode_failed(&ctx, e))
                });
                m.set_native_fn(
                    "encode",
                    move |ctx: NativeCallContext, value: Dynamic, options: Dynamic| {
                        encode_rhai(&value, Some(&options)).map_err(|e| encode_failed(&ctx, e))
                    },
                );
            },
        )
        .custom(
            &["decode(text: ?) -> ?"],
            "The value of the JSON text (a string or a Blob): objects as maps, arrays as arrays, `null` as `()`.",
            |m| {
                m.set_native_fn("decode", move |ctx: NativeCallContext, text: Dynamic| {
                    decode_rhai(&ctx, &text)
                });
            },
        );
    module.register(engine, definitions);
}
