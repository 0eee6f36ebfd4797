//! The context's methods (SPEC 4, 9): `context:get_remaining_time_in_millis()`
//! and `context:stream(options)` in Lua, `context.get_remaining_time_in_millis()`
//! and `context.stream(options)` in Rhai. The engines build the context itself,
//! per invocation, from the same [`Context`](crate::context::Context).

use mlua::{Function, Lua, Table};
use rhai::{Dynamic, INT, Map, NativeCallContext};

use super::binding::{self, Budget, Error, Lang, Name, Value};
use crate::context::remaining_time_ms;
use crate::stream;

/// The context's methods in a Lua state, shared by every context table.
#[derive(Clone)]
pub struct LuaMethods {
    pub get_remaining_time_in_millis: Function,
    pub stream: Function,
}

/// `context:stream(options)`'s options, from the script's table / map.
fn stream_options(value: &Value, lang: Lang) -> Result<stream::Options, Error> {
    let entries: &[(String, Value)] = match value {
        Value::Nil => &[],
        Value::Map(entries) => entries,
        Value::List(items) if items.is_empty() => &[],
        other => {
            return Err(Error::argument(
                1,
                format!(
                    "must be a table / map of options, not {}",
                    binding::type_name(other, lang)
                ),
            ));
        }
    };
    let text = |value: &Value, name: &str| -> Result<String, Error> {
        match value {
            Value::Int(i) => Ok(i.to_string()),
            other => binding::option_text(other, 1, name),
        }
    };
    let mut options = stream::Options::default();
    for (name, value) in entries {
        match name.as_str() {
            "content_type" => options.content_type = Some(text(value, name)?),
            "status_code" => match value {
                Value::Int(code) => options.status_code = Some(*code),
                _ => return Err(Error::argument(1, "option status_code must be an integer")),
            },
            "headers" => {
                let pairs: &[(String, Value)] = match value {
                    Value::Map(pairs) => pairs,
                    Value::List(items) if items.is_empty() => &[],
                    _ => return Err(Error::argument(1, "option headers must be a table / map")),
                };
                options.headers = Some(
                    pairs
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), text(v, &format!("headers.{k}"))?)))
                        .collect::<Result<_, Error>>()?,
                );
            }
            "cookies" => {
                let Value::List(items) = value else {
                    return Err(Error::argument(
                        1,
                        "option cookies must be an array of strings",
                    ));
                };
                options.cookies = Some(
                    items
                        .iter()
                        .map(|c| text(c, "cookies[]"))
                        .collect::<Result<_, Error>>()?,
                );
            }
            other => {
                return Err(Error::argument(
                    1,
                    format!(
                        "has an unknown option {other:?} (content_type, status_code, headers, cookies)"
                    ),
                ));
            }
        }
    }
    Ok(options)
}

/// Makes the methods, for the engine's context tables ([`lua_methods`]).
pub fn register_lua(lua: &Lua) -> mlua::Result<()> {
    let get_remaining_time_in_millis =
        binding::lua::function(lua, "context", "get_remaining_time_in_millis", |_, args| {
            let this = match args.front() {
                Some(mlua::Value::Table(t)) => t.clone(),
                _ => {
                    return Ok(Err(Error::Failed(
                        "call it as a method: context:get_remaining_time_in_millis()".into(),
                    )));
                }
            };
            let deadline_ms = this.get::<u64>("deadline_ms")?;
            Ok(Ok(mlua::Value::Integer(
                i64::try_from(remaining_time_ms(deadline_ms)).unwrap_or(i64::MAX),
            )))
        })?;
    // The stream object: `out:write(data)`.
    let write = binding::lua::function(lua, "stream", "write", |_, args| {
        let data = match args.get(1) {
            Some(mlua::Value::String(s)) => s.as_bytes().to_vec(),
            other => {
                return Ok(Err(Error::argument(
                    1,
                    format!(
                        "must be a string, not {}",
                        other.map_or("no value", mlua::Value::type_name)
                    ),
                )));
            }
        };
        Ok(stream::write(&data)
            .map(|()| mlua::Value::Nil)
            .map_err(Error::Failed))
    })?;
    let stream_mt = lua.create_table()?;
    stream_mt.raw_set("__name", "lure.stream")?;
    let stream_methods = lua.create_table()?;
    stream_methods.raw_set("write", write)?;
    stream_mt.raw_set("__index", stream_methods)?;
    let stream = binding::lua::function(lua, "context", "stream", move |lua, args| {
        let mut budget = Budget::left(lua.used_memory());
        let options = args.get(1).unwrap_or(&mlua::Value::Nil);
        let options = match binding::lua::from_lua(lua, options, &mut budget)
            .and_then(|v| stream_options(&v, Lang::Lua))
        {
            Ok(options) => options,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = stream::start(&options) {
            return Ok(Err(Error::Failed(e)));
        }
        let out: Table = lua.create_table()?;
        out.set_metatable(Some(stream_mt.clone()))?;
        Ok(Ok(mlua::Value::Table(out)))
    })?;
    lua.set_app_data(LuaMethods {
        get_remaining_time_in_millis,
        stream,
    });
    Ok(())
}

/// A response stream in Rhai: `out.write(data)`.
#[derive(Clone)]
pub struct RhaiStream;

fn rhai_name(module: &'static str, function: &'static str) -> Name {
    Name {
        module,
        function,
        lang: Lang::Rhai,
    }
}

fn rhai_stream(
    ctx: &NativeCallContext,
    options: &Dynamic,
) -> Result<RhaiStream, Box<rhai::EvalAltResult>> {
    let mut budget = Budget::left(crate::memory::thread_heap());
    binding::rhai::from_rhai(options, &mut budget)
        .and_then(|v| stream_options(&v, Lang::Rhai))
        .and_then(|options| stream::start(&options).map_err(Error::Failed))
        .map(|()| RhaiStream)
        .map_err(|e| binding::rhai::throw(ctx, &e, rhai_name("context", "stream")))
}

/// The methods [`register_lua`] made for `lua`.
pub fn lua_methods(lua: &Lua) -> LuaMethods {
    lua.app_data_ref::<LuaMethods>()
        .expect("the context's methods are registered with the stdlib")
        .clone()
}

/// `context.get_remaining_time_in_millis()`: the context map's `deadline_ms`, less now.
fn remaining_time_in_millis(context: &mut Map) -> INT {
    let deadline_ms = context
        .get("deadline_ms")
        .and_then(|v| v.as_int().ok())
        .unwrap_or(0);
    let remaining = remaining_time_ms(u64::try_from(deadline_ms).unwrap_or(0));
    INT::try_from(remaining).unwrap_or(INT::MAX)
}

/// The Rhai method, on maps (the context is one).
pub fn register_rhai(
    engine: &mut rhai::Engine,
    definitions: Option<&mut binding::rhai::Definitions>,
) {
    engine.register_fn("get_remaining_time_in_millis", remaining_time_in_millis);
    engine.register_type_with_name::<RhaiStream>("ResponseStream");
    engine.register_fn("stream", |ctx: NativeCallContext, _context: &mut Map| {
        rhai_stream(&ctx, &Dynamic::UNIT)
    });
    engine.register_fn(
        "stream",
        |ctx: NativeCallContext, _context: &mut Map, options: Dynamic| rhai_stream(&ctx, &options),
    );
    engine.register_fn(
        "write",
        |ctx: NativeCallContext, _out: &mut RhaiStream, data: Dynamic| {
            let bytes = if let Some(text) = data.read_lock::<rhai::ImmutableString>() {
                Ok(text.as_bytes().to_vec())
            } else if let Some(blob) = data.read_lock::<rhai::Blob>() {
                Ok(blob.clone())
            } else {
                Err(Error::argument(
                    1,
                    format!("must be a string or a Blob, not {}", data.type_name()),
                ))
            };
            bytes
                .and_then(|bytes| stream::write(&bytes).map_err(Error::Failed))
                .map_err(|e| binding::rhai::throw(&ctx, &e, rhai_name("stream", "write")))
        },
    );
    if let Some(definitions) = definitions {
        definitions.add_static(&[
            (
                "get_remaining_time_in_millis(context: Map) -> int",
                "Milliseconds left before the invocation's deadline (never below 0): `context.get_remaining_time_in_millis()`.",
            ),
            (
                "stream(context: Map) -> ResponseStream",
                "Streams the answer (SPEC 9): `let out = context.stream();` then `out.write(data)`; options as the next form.",
            ),
            (
                "stream(context: Map, options: Map) -> ResponseStream",
                "Streams the answer: `content_type` (default application/octet-stream); or, for Function URLs, `status_code`, `headers`, `cookies` (an HTTP-integration prelude). Once per invocation; the handler's result is the last chunk.",
            ),
            (
                "write(stream: ResponseStream, data: ?)",
                "Sends `data` (a string or a Blob) at once as one chunk of the streamed answer.",
            ),
        ]);
    }
}
