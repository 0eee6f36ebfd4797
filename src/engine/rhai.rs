//! The Rhai engine. (Being written: see json/rhai.rs for the conversions.)

use crate::context::Context;
use crate::diagnostic::Diagnostic;
use crate::engine::Engine;
use crate::handler_spec::Handler;

pub struct RhaiEngine {}

impl RhaiEngine {
    pub fn load(handler: &Handler) -> Result<Self, Diagnostic> {
        let _ = handler;
        todo!("Rhai engine")
    }
}

impl Engine for RhaiEngine {
    fn invoke(&mut self, event: &[u8], context: &Context) -> Result<Vec<u8>, Diagnostic> {
        let _ = (event, context);
        todo!("Rhai engine")
    }
}
