//! The runtime loop: `/next` → engine → `/response` or `/error`, forever.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::time::SystemTime;

use crate::context::{self, Context, FunctionInfo};
use crate::diagnostic::{Diagnostic, error_type};
use crate::engine::{self, Engine, Retire};
use crate::env_vars;
use crate::handler_spec;
use crate::lambda::runtime_api::{ApiError, Invocation, Post, RuntimeApi};
use crate::limits::Limits;
use crate::log;
use crate::stream;

/// Why the loop ended.
#[derive(Debug)]
pub enum Exit {
    /// Init failed; `/init/error` was posted (if the API could be reached).
    Init(Diagnostic),
    /// The Runtime API failed in a way that ends the environment.
    Api(ApiError),
    /// The engine asked to end the environment between two invocations.
    Retired(Retire),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Init(d) => write!(f, "init failed: {d}"),
            Exit::Api(e) => e.fmt(f),
            Exit::Retired(why) => write!(f, "ending this environment: {why}"),
        }
    }
}

/// Init: resolves the handler and loads its script (top-level code runs here).
pub fn init(
    handler: &str,
    task_root: &Path,
    limits: &Limits,
) -> Result<Box<dyn Engine>, Diagnostic> {
    let handler = handler_spec::resolve(handler, task_root)?;
    guard_panics(|| engine::load(&handler, limits))
}

/// Runs `f`, turning a panic inside lure into a `Runtime.InternalError` answer.
fn guard_panics<T>(f: impl FnOnce() -> Result<T, Diagnostic>) -> Result<T, Diagnostic> {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(Diagnostic::runtime(
            error_type::INTERNAL_ERROR,
            format!("internal error in lure: {what}"),
        ))
    })
}

/// Runs the runtime loop until the Runtime API fails; never returns on success.
pub fn run(api: &RuntimeApi, handler: &str, task_root: &Path) -> Exit {
    let info = FunctionInfo::from_env();
    let limits = Limits::for_function(&info);
    let mut engine = match init(handler, task_root, &limits) {
        Ok(engine) => engine,
        Err(diagnostic) => {
            log::write(log::Level::Error, &diagnostic.to_string());
            if let Err(e) = api.post(Post::InitError {
                diagnostic: &diagnostic,
            }) {
                log::write(log::Level::Error, &e.to_string());
            }
            return Exit::Init(diagnostic);
        }
    };
    stream::set_opener(api.stream_opener());
    loop {
        let invocation = match api.next() {
            Ok(invocation) => invocation,
            Err(e) => return Exit::Api(e),
        };
        stream::offer(&invocation.request_id, invocation.invocation_id());
        let outcome = handle(engine.as_mut(), &info, &limits, &invocation);
        match stream::conclude(&outcome).map(|ended| ended.sent) {
            // Streamed: its end (the last chunk, or the error's trailers) was the answer.
            Some(Ok(())) => {}
            Some(Err(e)) => log::write(
                log::Level::Error,
                &format!(
                    "lure: the streamed response of {} could not be finished: {e}",
                    invocation.request_id
                ),
            ),
            None => {
                if let Err(e) = api.answer(&invocation, &outcome) {
                    return Exit::Api(e);
                }
            }
        }
        if let Err(why) = engine.after_answer() {
            log::write(
                log::Level::Warn,
                &format!("lure: ending this environment: {why}"),
            );
            return Exit::Retired(why);
        }
    }
}

/// Runs one invocation through the engine: the answer lure would send for it.
/// Shared by the Lambda loop and `lure invoke`, so both produce the same bytes.
pub fn handle(
    engine: &mut dyn Engine,
    info: &FunctionInfo,
    limits: &Limits,
    invocation: &Invocation,
) -> Result<Vec<u8>, Diagnostic> {
    let context = Context::new(info, &invocation.headers, SystemTime::now());
    set_trace_id(context.xray_trace_id);
    context::set_running_trace_id(context.xray_trace_id);
    log::set_request_id(Some(&invocation.request_id));
    // A bug in lure must cost one invocation, not the warm environment.
    let outcome = guard_panics(|| engine.invoke(&invocation.body, &context))
        // The engines already measure their results; this holds for any engine. A
        // streamed answer has its own limit (`stream`'s).
        .and_then(|body| match stream::is_started() {
            true => Ok(body),
            false => limits.check_response_size(body.len()).map(|()| body),
        });
    if let Err(diagnostic) = &outcome {
        log::invoke_error(diagnostic);
    }
    log::set_request_id(None);
    context::set_running_trace_id(None);
    outcome
}

fn set_trace_id(trace_id: Option<&str>) {
    // SAFETY: lure runs scripts and the loop on this one thread and starts no
    // other thread that reads the environment.
    unsafe {
        match trace_id {
            Some(id) => std::env::set_var(env_vars::TRACE_ID, id),
            None => std::env::remove_var(env_vars::TRACE_ID),
        }
    }
}
