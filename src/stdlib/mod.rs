//! The standard library scripts see (SPEC 7). Each module is one file: its
//! language-neutral core, then `register_lua` and `register_rhai` side by side,
//! both through the one binding layer ([`binding`]), so the two languages cannot
//! drift apart.

pub mod aws;
pub mod base64;
pub mod binding;
pub mod context;
pub mod crypto;
pub mod hex;
pub mod http;
pub mod json;
pub mod log;
pub mod os;
pub mod print;
pub mod time;
pub mod url;
pub mod uuid;

use binding::rhai::Definitions;

/// Installs every stdlib module into a Lua state (which has the JSON codec).
pub fn register_lua(lua: &mlua::Lua) -> mlua::Result<()> {
    print::register_lua(lua)?;
    os::register_lua(lua)?;
    context::register_lua(lua)?;
    json::register_lua(lua)?;
    log::register_lua(lua)?;
    base64::register_lua(lua)?;
    hex::register_lua(lua)?;
    crypto::register_lua(lua)?;
    url::register_lua(lua)?;
    uuid::register_lua(lua)?;
    time::register_lua(lua)?;
    http::register_lua(lua)?;
    aws::register_lua(lua)?;
    Ok(())
}

/// Installs every stdlib module into a Rhai engine; with `definitions`, also
/// writes down what was registered (SPEC 11).
pub fn register_rhai(engine: &mut rhai::Engine, mut definitions: Option<&mut Definitions>) {
    print::register_rhai(engine);
    os::register_rhai(engine, definitions.as_deref_mut());
    context::register_rhai(engine, definitions.as_deref_mut());
    json::register_rhai(engine, definitions.as_deref_mut());
    log::register_rhai(engine, definitions.as_deref_mut());
    base64::register_rhai(engine, definitions.as_deref_mut());
    hex::register_rhai(engine, definitions.as_deref_mut());
    crypto::register_rhai(engine, definitions.as_deref_mut());
    url::register_rhai(engine, definitions.as_deref_mut());
    uuid::register_rhai(engine, definitions.as_deref_mut());
    time::register_rhai(engine, definitions.as_deref_mut());
    http::register_rhai(engine, definitions.as_deref_mut());
    aws::register_rhai(engine, definitions);
}
