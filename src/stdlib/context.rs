//! The context's methods (SPEC 4): `context:get_remaining_time_in_millis()` in Lua,
//! `context.get_remaining_time_in_millis()` in Rhai. The engines build the context
//! itself, per invocation, from the same [`Context`](crate::context::Context).

use mlua::{Function, Lua};
use rhai::{INT, Map};

use super::binding::{self, Error};
use crate::context::remaining_time_ms;

/// The context's methods in a Lua state, shared by every context table.
#[derive(Clone)]
pub struct LuaMethods {
    pub get_remaining_time_in_millis: Function,
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
    lua.set_app_data(LuaMethods {
        get_remaining_time_in_millis,
    });
    Ok(())
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
    if let Some(definitions) = definitions {
        definitions.add_static(&[(
            "get_remaining_time_in_millis(context: Map) -> int",
            "Milliseconds left before the invocation's deadline (never below 0): `context.get_remaining_time_in_millis()`.",
        )]);
    }
}
