//! lure: an AWS Lambda custom runtime for Lua and Rhai handlers.
//!
//! The data path is one straight line:
//! `/next` → [`lambda::runtime_api::Invocation`] → [`engine::Engine`] (`event`, `context`)
//! → result → `/response` or `/error`.
//! The Lambda side ([`lambda`]), the language side ([`engine`], [`json`], [`stdlib`])
//! and the local side ([`local`]) are separate; `invoke` and `serve` reuse the same
//! loop and engines.

pub mod cli;
pub mod context;
pub mod diagnostic;
pub mod engine;
pub mod env_vars;
pub mod handler_spec;
pub mod json;
pub mod lambda;
pub mod local;
pub mod log;
pub mod stdlib;
#[cfg(test)]
mod test_support;
