//! `print` (Lua and Rhai) and Rhai's `debug`: a record at INFO in the function's
//! log (SPEC 7), as `console.log` is on Node.

use mlua::{Function, Lua, Value, Variadic};

use crate::log::{self, Level, RecordText};

/// Lua's `print`: its arguments through `tostring`, joined with tabs.
pub fn register_lua(lua: &Lua) -> mlua::Result<()> {
    let tostring: Function = lua.globals().get("tostring")?;
    let print = lua.create_function(move |_, args: Variadic<Value>| {
        let mut line = RecordText::default();
        for (i, arg) in args.iter().enumerate() {
            if line.is_full() {
                break;
            }
            if i > 0 {
                line.push("\t");
            }
            match arg {
                Value::String(s) => line.push_bytes(&s.as_bytes()),
                other => line.push_bytes(&tostring.call::<mlua::LuaString>(other)?.as_bytes()),
            }
        }
        log::write(Level::Info, &line.finish());
        Ok(())
    })?;
    lua.globals().set("print", print)
}

/// Rhai's `print` and `debug` statements.
pub fn register_rhai(engine: &mut rhai::Engine) {
    engine.on_print(|text| log::write(Level::Info, text));
    engine.on_debug(|text, _source, _position| log::write(Level::Info, text));
}
