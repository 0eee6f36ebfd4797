//! The language side: one [`Engine`] trait, one implementation per language.
//! The runtime loop drives an `Engine` and knows nothing about either language.

pub mod lua;
pub mod rhai;

use crate::context::Context;
use crate::diagnostic::Diagnostic;
use crate::handler_spec::{Handler, Language};

/// A loaded handler: script compiled and top-level code run (init done).
pub trait Engine {
    /// Runs the handler for one invocation. `event` is the invocation body as
    /// received; the result is the JSON body to POST as the response.
    fn invoke(&mut self, event: &[u8], context: &Context) -> Result<Vec<u8>, Diagnostic>;
}

/// Init: loads and compiles the handler's script and runs its top-level code once.
pub fn load(handler: &Handler) -> Result<Box<dyn Engine>, Diagnostic> {
    Ok(match handler.language {
        Language::Lua => Box::new(lua::LuaEngine::load(handler)?),
        Language::Rhai => Box::new(rhai::RhaiEngine::load(handler)?),
    })
}
