//! The runtime loop: `/next` → engine → `/response` or `/error`, forever. On
//! Lambda Managed Instances (SPEC 13) that loop runs in N workers at once.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Barrier, Mutex, mpsc};
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

/// Whether `_X_AMZN_TRACE_ID` follows the running invocation: only when it is the
/// process's one invocation in flight (SPEC 3). Workers leave it alone (SPEC 13):
/// their scripts read `context.xray_trace_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceVariable {
    Set,
    Untouched,
}

/// Runs the runtime loop until the Runtime API fails; never returns on success.
pub fn run(api: &RuntimeApi, handler: &str, task_root: &Path) -> Exit {
    let info = FunctionInfo::from_env();
    let limits = Limits::for_function(&info);
    let engine = match init(handler, task_root, &limits) {
        Ok(engine) => engine,
        Err(diagnostic) => return init_failed(api, diagnostic),
    };
    serve(api, engine, &info, &limits, TraceVariable::Set)
}

/// Init failed: says so in the log and to the Runtime API.
fn init_failed(api: &RuntimeApi, diagnostic: Diagnostic) -> Exit {
    log::write(log::Level::Error, &diagnostic.to_string());
    if let Err(e) = api.post(Post::InitError {
        diagnostic: &diagnostic,
    }) {
        log::write(log::Level::Error, &e.to_string());
    }
    Exit::Init(diagnostic)
}

/// Lambda Managed Instances (SPEC 13): `workers` threads, each with its own engine
/// (the script loaded and its top-level code run once per worker), its own Runtime
/// API connection and its own loop, one invocation in flight each. No worker asks
/// for work before every worker's init succeeded; an init failure is posted once.
/// Returns when the first worker's loop ends, which ends the process.
pub fn run_workers(api: &RuntimeApi, workers: usize, handler: &str, task_root: &Path) -> Exit {
    /// As the main thread's: scripts recurse as deep on a worker.
    const WORKER_STACK_BYTES: usize = 8 << 20;
    let info = Arc::new(FunctionInfo::from_env());
    let limits = Limits::for_function(&info).shared_by(workers);
    let inited = Arc::new(Barrier::new(workers + 1));
    let failure: Arc<Mutex<Option<Diagnostic>>> = Arc::default();
    let (ended, first_end) = mpsc::channel();
    for worker in 0..workers {
        let (info, inited, failure, ended) = (
            Arc::clone(&info),
            Arc::clone(&inited),
            Arc::clone(&failure),
            ended.clone(),
        );
        let (handler, task_root) = (handler.to_owned(), task_root.to_owned());
        let worker_api = api.again();
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{worker}"))
            .stack_size(WORKER_STACK_BYTES)
            .spawn(move || {
                let engine = init(&handler, &task_root, &limits);
                if let Err(diagnostic) = &engine {
                    let mut first = failure.lock().unwrap_or_else(|e| e.into_inner());
                    first.get_or_insert_with(|| diagnostic.clone());
                }
                inited.wait();
                let Ok(engine) = engine else {
                    return;
                };
                if failure.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                    return; // another worker's init failed: the process ends
                }
                let reload = Reload {
                    handler: &handler,
                    task_root: &task_root,
                };
                let _ = ended.send(work(&worker_api, engine, &info, &limits, reload));
            });
        if let Err(e) = spawned {
            let diagnostic = Diagnostic::runtime(
                error_type::INTERNAL_ERROR,
                format!("cannot start worker {worker} of {workers}: {e}"),
            );
            return init_failed(api, diagnostic);
        }
    }
    inited.wait();
    let failed = failure.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(diagnostic) = failed {
        return init_failed(api, diagnostic);
    }
    first_end
        .recv()
        .expect("a worker ends only after sending how")
}

/// What a worker needs to load its script again.
#[derive(Clone, Copy)]
struct Reload<'a> {
    handler: &'a str,
    task_root: &'a Path,
}

/// A worker's loop: as [`serve`]'s, but an engine that asks to end the environment
/// is replaced by a fresh one instead, so the other workers' invocations go on.
fn work(
    api: &RuntimeApi,
    mut engine: Box<dyn Engine>,
    info: &FunctionInfo,
    limits: &Limits,
    reload: Reload<'_>,
) -> Exit {
    loop {
        let why = match serve(api, engine, info, limits, TraceVariable::Untouched) {
            Exit::Retired(why) => why,
            exit => return exit,
        };
        log::write(
            log::Level::Warn,
            &format!("lure: this worker loads the handler again: {why}"),
        );
        engine = match init(reload.handler, reload.task_root, limits) {
            Ok(engine) => engine,
            Err(diagnostic) => return Exit::Init(diagnostic),
        };
    }
}

/// The loop of one engine: `/next` → handler → answer, until the API fails or
/// the engine asks to end the environment.
fn serve(
    api: &RuntimeApi,
    mut engine: Box<dyn Engine>,
    info: &FunctionInfo,
    limits: &Limits,
    trace: TraceVariable,
) -> Exit {
    stream::set_opener(api.stream_opener());
    loop {
        let invocation = match api.next() {
            Ok(invocation) => invocation,
            Err(e) => return Exit::Api(e),
        };
        stream::offer(&invocation.request_id, invocation.invocation_id());
        let outcome = handle(engine.as_mut(), info, limits, &invocation, trace);
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
    trace: TraceVariable,
) -> Result<Vec<u8>, Diagnostic> {
    let context = Context::new(info, &invocation.headers, SystemTime::now());
    if trace == TraceVariable::Set {
        set_trace_id(context.xray_trace_id);
    }
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
    // SAFETY: with one invocation in flight (`TraceVariable::Set`), lure runs
    // scripts and the loop on this one thread and starts no other thread that
    // reads the environment.
    unsafe {
        match trace_id {
            Some(id) => std::env::set_var(env_vars::TRACE_ID, id),
            None => std::env::remove_var(env_vars::TRACE_ID),
        }
    }
}
