//! The standard library scripts see. Each module is one file holding both its Lua
//! and its Rhai binding, side by side, so the two languages cannot drift apart.

pub mod json;
pub mod log;

/// Installs every stdlib module into a Lua state.
pub fn register_lua(lua: &mlua::Lua) -> mlua::Result<()> {
    json::register_lua(lua)?;
    log::register_lua(lua)?;
    Ok(())
}

/// Installs every stdlib module into a Rhai engine.
pub fn register_rhai(engine: &mut rhai::Engine) {
    json::register_rhai(engine);
    log::register_rhai(engine);
}
