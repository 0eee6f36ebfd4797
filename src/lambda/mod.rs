//! The Lambda side: the Runtime API client and the runtime loop.

pub mod runtime;
pub mod runtime_api;
pub mod stream_post;
