//! `log`: `log.info(...)` (Lua) and `log::info(...)` (Rhai) at every Lambda level.
//!
//! Arguments are joined with tabs (strings as they are, tables/maps/arrays as
//! JSON, anything else through `tostring`/`to_string`). With two or more
//! arguments, a final table/map is a set of fields merged into JSON records. A
//! lone table/map is the message itself, embedded as JSON.
//!
//! A record is at most [`MAX_RECORD_BYTES`] (CloudWatch's event limit): what a
//! script logs beyond that is cut, with a marker, and never built in full.

use mlua::{Function, Lua, Table, Value, Variadic};
use rhai::Dynamic;

use super::binding;

use crate::json::{self, EncodeError, Writer};
use crate::limits::MAX_RECORD_BYTES;
use crate::log::{self, Level, Message, Record, RecordText};

/// A record's parts, built by either language.
#[derive(Default)]
struct Parts {
    text: RecordText,
    json_message: Option<Vec<u8>>,
    fields: Option<Vec<u8>>,
}

impl Parts {
    fn emit(self, level: Level) {
        let text = self.text.finish();
        let message = match &self.json_message {
            Some(json) => Message::Json(json),
            None => Message::Text(&text),
        };
        log::emit(&Record {
            level,
            message,
            fields: self.fields.as_deref(),
        });
    }

    fn push_separator(&mut self) {
        if !self.text.is_empty() {
            self.text.push("\t");
        }
    }

    /// Appends a table's or map's JSON (whole or cut), or returns false when it
    /// cannot be written as JSON.
    fn push_json(&mut self, json: Option<Json>) -> bool {
        match json {
            Some(Json::Whole(json)) => self.text.push_bytes(&json),
            Some(Json::Cut(json)) => {
                self.text.push_bytes(&json);
                self.text.mark_cut();
            }
            None => return false,
        }
        true
    }
}

/// A table's or map's JSON for a record.
enum Json {
    Whole(Vec<u8>),
    /// The first [`MAX_RECORD_BYTES`] of a longer text.
    Cut(Vec<u8>),
}

/// JSON written by `encode` into a writer that stops at [`MAX_RECORD_BYTES`];
/// `None` for a value JSON cannot hold.
fn bounded_json(encode: impl FnOnce(&mut Writer) -> Result<(), EncodeError>) -> Option<Json> {
    let mut writer = Writer::with_limit(false, MAX_RECORD_BYTES);
    match encode(&mut writer) {
        Ok(()) => Some(Json::Whole(writer.into_bytes())),
        Err(e) if e.is_too_large() => Some(Json::Cut(writer.stored())),
        Err(_) => None,
    }
}

/// Installs the `log` global (also `require("log")`).
pub fn register_lua(lua: &Lua) -> mlua::Result<()> {
    binding::lua::install_lazy(lua, "log", build_lua)
}

fn build_lua(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let tostring: Function = lua.globals().get("tostring")?;
    for level in Level::ALL {
        let tostring = tostring.clone();
        let f = lua.create_function(move |lua, args: Variadic<Value>| {
            if log::enabled(level) {
                lua_parts(lua, &tostring, &args)?.emit(level);
            }
            Ok(())
        })?;
        module.set(level.method(), f)?;
    }
    Ok(())
}

fn lua_json(lua: &Lua, value: &Value) -> Option<Json> {
    bounded_json(|writer| json::lua::encode(lua, value, writer))
}

/// The lone table as the message, or the final table as fields: only when its
/// JSON is whole (and, for fields, an object).
fn whole(json: Option<Json>, object: bool) -> Option<Vec<u8>> {
    match json {
        Some(Json::Whole(json)) if !object || json.starts_with(b"{") => Some(json),
        _ => None,
    }
}

fn lua_parts(lua: &Lua, tostring: &Function, args: &[Value]) -> mlua::Result<Parts> {
    let mut parts = Parts::default();
    let mut message_args = args;
    if let [rest @ .., last @ Value::Table(_)] = args {
        if rest.is_empty() {
            parts.json_message = whole(lua_json(lua, last), false);
            if parts.json_message.is_some() {
                return Ok(parts);
            }
        } else if let Some(fields) = whole(lua_json(lua, last), true) {
            parts.fields = Some(fields);
            message_args = rest;
        }
    }
    for arg in message_args {
        if parts.text.is_full() {
            break;
        }
        parts.push_separator();
        match arg {
            Value::String(s) => parts.text.push_bytes(&s.as_bytes()),
            Value::Table(_) if parts.push_json(lua_json(lua, arg)) => {}
            _ => parts
                .text
                .push_bytes(&tostring.call::<mlua::LuaString>(arg)?.as_bytes()),
        }
    }
    Ok(parts)
}

fn rhai_json(value: &Dynamic) -> Option<Json> {
    bounded_json(|writer| json::rhai::encode(value, writer))
}

fn rhai_parts(args: &[Dynamic]) -> Parts {
    let mut parts = Parts::default();
    let mut message_args = args;
    if let [rest @ .., last] = args
        && (last.is_map() || (rest.is_empty() && last.is_array()))
    {
        if rest.is_empty() {
            parts.json_message = whole(rhai_json(last), false);
            if parts.json_message.is_some() {
                return parts;
            }
        } else if let Some(fields) = whole(rhai_json(last), true) {
            parts.fields = Some(fields);
            message_args = rest;
        }
    }
    for arg in message_args {
        if parts.text.is_full() {
            break;
        }
        parts.push_separator();
        if (arg.is_map() || arg.is_array()) && parts.push_json(rhai_json(arg)) {
            continue;
        }
        parts.text.push(&crate::diagnostic::bounded(arg));
    }
    parts
}

/// Installs the static module `log` (`log::info("x", #{ user: 1 })`, `log::dbg(..)`).
/// Rhai functions have fixed arities, so each level takes one to six arguments.
pub fn register_rhai(
    engine: &mut rhai::Engine,
    definitions: Option<&mut binding::rhai::Definitions>,
) {
    let mut module = binding::rhai::ModuleBuilder::new("log");
    for level in Level::ALL {
        let emit = move |args: &[Dynamic]| {
            if log::enabled(level) {
                rhai_parts(args).emit(level);
            }
        };
        // `debug` is a reserved word in Rhai: its debug level is `log::dbg`.
        let (name, signatures, doc) = rhai_level(level);
        module.custom(signatures, doc, |m| {
            m.set_native_fn(name, move |a: Dynamic| {
                emit(&[a]);
                Ok(())
            });
            m.set_native_fn(name, move |a: Dynamic, b: Dynamic| {
                emit(&[a, b]);
                Ok(())
            });
            m.set_native_fn(name, move |a: Dynamic, b: Dynamic, c: Dynamic| {
                emit(&[a, b, c]);
                Ok(())
            });
            m.set_native_fn(
                name,
                move |a: Dynamic, b: Dynamic, c: Dynamic, d: Dynamic| {
                    emit(&[a, b, c, d]);
                    Ok(())
                },
            );
            m.set_native_fn(
                name,
                move |a: Dynamic, b: Dynamic, c: Dynamic, d: Dynamic, e: Dynamic| {
                    emit(&[a, b, c, d, e]);
                    Ok(())
                },
            );
            m.set_native_fn(
                name,
                move |a: Dynamic, b: Dynamic, c: Dynamic, d: Dynamic, e: Dynamic, f: Dynamic| {
                    emit(&[a, b, c, d, e, f]);
                    Ok(())
                },
            );
        });
    }
    module.register(engine, definitions);
}

/// A level's Rhai function: its name, its six overloads as the definitions
/// write them, and their doc.
fn rhai_level(level: Level) -> (&'static str, &'static [&'static str], &'static str) {
    macro_rules! level {
        ($name:literal, $doc:literal) => {
            (
                $name,
                &[
                    concat!($name, "(a: ?) -> ()"),
                    concat!($name, "(a: ?, b: ?) -> ()"),
                    concat!($name, "(a: ?, b: ?, c: ?) -> ()"),
                    concat!($name, "(a: ?, b: ?, c: ?, d: ?) -> ()"),
                    concat!($name, "(a: ?, b: ?, c: ?, d: ?, e: ?) -> ()"),
                    concat!($name, "(a: ?, b: ?, c: ?, d: ?, e: ?, f: ?) -> ()"),
                ],
                concat!(
                    $doc,
                    " Arguments are joined with tabs; with two or more, a final map is the fields of JSON records."
                ),
            )
        };
    }
    match level {
        Level::Trace => level!("trace", "Logs at TRACE."),
        Level::Debug => level!("dbg", "Logs at DEBUG (`debug` is a Rhai keyword)."),
        Level::Info => level!("info", "Logs at INFO."),
        Level::Warn => level!("warn", "Logs at WARN."),
        Level::Error => level!("error", "Logs at ERROR."),
        Level::Fatal => level!("fatal", "Logs at FATAL."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua_parts_of(code: &str) -> Parts {
        let lua = Lua::new();
        crate::json::lua::Codec::install(&lua).unwrap();
        crate::stdlib::register_lua(&lua).unwrap();
        let args: Variadic<Value> = lua.load(code).eval().unwrap();
        let tostring: Function = lua.globals().get("tostring").unwrap();
        lua_parts(&lua, &tostring, &args).unwrap()
    }

    fn text(parts: &Parts) -> (&str, Option<&str>, Option<&str>) {
        (
            parts.text.as_str(),
            parts
                .json_message
                .as_deref()
                .map(|j| std::str::from_utf8(j).unwrap()),
            parts
                .fields
                .as_deref()
                .map(|j| std::str::from_utf8(j).unwrap()),
        )
    }

    #[test]
    fn records_are_cut_at_cloudwatchs_event_limit_and_never_built_whole() {
        // 200 arguments of 1 MB each, and a table holding a 1 MB string 6000 times
        // (6 GB of JSON): the record stops at the limit, with its marker.
        let p = lua_parts_of(
            "local s = string.rep('x', 1 << 20) local t = {} for i = 1, 6000 do t[i] = s end \
             local args = {} for i = 1, 200 do args[i] = s end args[201] = t \
             return table.unpack(args)",
        );
        assert!(p.text.is_full());
        let record = p.text.finish();
        assert!(record.ends_with("… [log record cut at 262144 bytes]"));
        assert_eq!(record.len(), MAX_RECORD_BYTES);
        let p = lua_parts_of(
            "local s = string.rep('y', 1 << 20) local t = {} for i = 1, 6000 do t[i] = s end return t",
        );
        assert_eq!(p.json_message, None, "too long to be the message as JSON");
        assert!(p.text.is_full());
        assert!(p.text.as_str().starts_with('['));
    }

    #[test]
    fn lua_arguments_join_with_tabs_and_a_final_table_is_fields() {
        let p = lua_parts_of("return 'order', 42, true, nil, {id = 7}");
        assert_eq!(
            text(&p),
            ("order\t42\ttrue\tnil", None, Some(r#"{"id":7}"#))
        );
        let p = lua_parts_of("return {a = {1, 2}}");
        assert_eq!(text(&p), ("", Some(r#"{"a":[1,2]}"#), None));
        let p = lua_parts_of("return 'list', {1, 2}");
        assert_eq!(text(&p), ("list\t[1,2]", None, None));
        let p = lua_parts_of("return 1.5");
        assert_eq!(text(&p), ("1.5", None, None));
    }

    #[test]
    fn rhai_arguments_follow_the_same_rules() {
        let mut map = rhai::Map::new();
        map.insert("id".into(), Dynamic::from(7_i64));
        let p = rhai_parts(&[
            "order".into(),
            Dynamic::from(42_i64),
            Dynamic::from_map(map.clone()),
        ]);
        assert_eq!(text(&p), ("order\t42", None, Some(r#"{"id":7}"#)));
        let p = rhai_parts(&[Dynamic::from_map(map)]);
        assert_eq!(text(&p), ("", Some(r#"{"id":7}"#), None));
        let p = rhai_parts(&["a".into(), Dynamic::UNIT, Dynamic::from(1.5_f64)]);
        assert_eq!(text(&p), ("a\t\t1.5", None, None));
    }
}
