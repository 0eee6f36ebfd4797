//! lure: an AWS Lambda custom runtime for Lua and Rhai handlers.
//!
//! The data path is one straight line:
//! `/next` → `Invocation` → `Engine` (`event`, `context`) → result → `/response`
//! or `/error`. The Lambda side (`lambda`), the language side (`engine`, [`json`],
//! `stdlib`) and the local side (`local`) are separate; `invoke` and `serve` reuse
//! the same loop and engines.
//!
//! The crate exposes what its users need: the command line for the binary, the
//! JSON codec and handler resolution for the fuzz targets, and the allocator the
//! binary installs.

mod aws;
pub mod cli;
mod context;
mod deadline;
mod diagnostic;
mod engine;
mod env_vars;
pub mod handler_spec;
mod http;
pub mod json;
mod lambda;
mod limits;
mod local;
mod log;
mod memory;
mod stdlib;
mod stream;
#[cfg(test)]
mod test_support;

/// The global allocator lure's binary installs: it counts each thread's heap,
/// which is how the Rhai engine holds scripts to their memory limit. Without it
/// (a crate linking lure for its JSON codec) that limit goes unenforced.
pub use memory::CountingAllocator;

/// For the benchmark's native floor: `aws`'s Signature Version 4, so that the
/// floor's signed call is the one lure makes.
#[doc(hidden)]
pub use aws::sigv4;

/// For the fuzz targets: a Lua state with lure's sandbox, as scripts get it.
#[doc(hidden)]
pub use engine::lua::sandboxed_state as sandboxed_lua;

// Unit tests run the engines in this process: they need the counting allocator
// as much as the binary does.
#[cfg(test)]
#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;
