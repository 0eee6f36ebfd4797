//! The Lua engine. (Being written.)

use crate::context::Context;
use crate::diagnostic::Diagnostic;
use crate::engine::Engine;
use crate::handler_spec::Handler;

pub struct LuaEngine {}

impl LuaEngine {
    pub fn load(handler: &Handler) -> Result<Self, Diagnostic> {
        let _ = handler;
        todo!("Lua engine")
    }
}

impl Engine for LuaEngine {
    fn invoke(&mut self, event: &[u8], context: &Context) -> Result<Vec<u8>, Diagnostic> {
        let _ = (event, context);
        todo!("Lua engine")
    }
}
