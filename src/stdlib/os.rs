//! `os`: Lua's `os.exit` made an ordinary error (SPEC 6: nothing a script does
//! ends the process), and Rhai's `os::getenv` (a function's configuration lives in
//! its environment variables; Lua has `os.getenv` already).

use mlua::{Lua, Table};

use super::binding::{self, Args, Error, Function, Module, Param, Type, Value};

/// `os.exit` raises, at the caller's line, instead of ending the process.
pub fn register_lua(lua: &Lua) -> mlua::Result<()> {
    let exit = binding::lua::function(lua, "os", "exit", |_, _| {
        Ok(Err(Error::Failed(
            "not available in lure: return from the handler (or raise an error) instead".into(),
        )))
    })?;
    lua.globals().get::<Table>("os")?.set("exit", exit)
}

fn getenv(args: &Args) -> Result<Value, Error> {
    let name = args.text(1)?;
    Ok(std::env::var(name).map_or(Value::Nil, Value::Text))
}

static OS: Module = Module {
    name: "os",
    functions: &[Function {
        name: "getenv",
        params: &[Param::new("name", Type::Text)],
        returns: Type::Any,
        doc: "The value of the environment variable `name`, or `()` when it is unset (or not UTF-8).",
        call: getenv,
        rhai_blob_twin: None,
    }],
};

/// `os::getenv(name)`.
pub fn register_rhai(
    engine: &mut rhai::Engine,
    definitions: Option<&mut binding::rhai::Definitions>,
) {
    binding::rhai::register(engine, &OS, definitions);
}
