//! The language side: one [`Engine`] trait, one implementation per language.
//! The runtime loop drives an `Engine` and knows nothing about either language.

pub mod lua;
pub mod rhai;

use crate::context::Context;
use crate::diagnostic::{Diagnostic, error_type};
use crate::handler_spec::{Handler, Language};
use crate::json::{EncodeError, Writer};
use crate::limits::{Limits, MEASURED_UP_TO, response_too_large, response_too_large_to_measure};

/// A loaded handler: script compiled and top-level code run (init done).
pub trait Engine {
    /// Runs the handler for one invocation. `event` is the invocation body as
    /// received; the result is the JSON body to POST as the response.
    fn invoke(&mut self, event: &[u8], context: &Context<'_>) -> Result<Vec<u8>, Diagnostic>;

    /// Called once an invocation's answer has been sent, before the next
    /// invocation is asked for: work that can wait for the answer (collecting the
    /// invocation's garbage) is done here, off the caller's latency. `Err` says
    /// why this environment should end rather than serve another invocation.
    fn after_answer(&mut self) -> Result<(), Retire> {
        Ok(())
    }
}

/// Why an engine asks to end its environment: it holds memory it cannot free, so
/// that the next invocations would run out of memory; a fresh environment (the
/// next invocation's cold start) gets it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retire(pub String);

impl std::fmt::Display for Retire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds response bodies, each allocated at the size of the one before: a
/// function's results are alike in size, so the body is written without growing
/// (and copying) its buffer along the way.
#[derive(Debug)]
pub struct ResponseBodies {
    limit: usize,
    last_len: usize,
}

impl ResponseBodies {
    /// Bodies of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        ResponseBodies { limit, last_len: 0 }
    }

    /// The response body for a handler's result, written by `encode`. Past
    /// Lambda's limit the writer only counts, so an oversize result is measured
    /// (up to [`MEASURED_UP_TO`]) without being copied, and answered with
    /// `Function.ResponseSizeTooLarge`.
    pub fn body(
        &mut self,
        encode: impl FnOnce(&mut Writer) -> Result<(), EncodeError>,
    ) -> Result<Vec<u8>, Diagnostic> {
        let mut writer = Writer::measuring(false, self.limit, MEASURED_UP_TO);
        writer.reserve(self.last_len);
        match encode(&mut writer) {
            Err(e) if e.is_too_large() => {
                return Err(response_too_large_to_measure(self.limit));
            }
            Err(e) if e.is_out_of_memory() => {
                return Err(Diagnostic::runtime(
                    error_type::OUT_OF_MEMORY,
                    format!("encoding the result: {e}"),
                ));
            }
            Err(e) => return Err(Diagnostic::marshal(e)),
            Ok(()) => {}
        }
        let body = writer
            .finish()
            .map_err(|len| response_too_large(len, self.limit))?;
        self.last_len = body.len();
        Ok(body)
    }
}

/// Init: loads and compiles the handler's script and runs its top-level code once,
/// in an engine that holds its scripts to `limits`.
pub fn load(handler: &Handler, limits: &Limits) -> Result<Box<dyn Engine>, Diagnostic> {
    Ok(match handler.language {
        Language::Lua => Box::new(lua::LuaEngine::load(handler, limits)?),
        Language::Rhai => Box::new(rhai::RhaiEngine::load(handler, limits)?),
    })
}
