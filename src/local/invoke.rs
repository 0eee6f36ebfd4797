//! `lure invoke`: init and one invocation in-process, through the same code as
//! the Lambda loop; stdout carries exactly the body that would be POSTed.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use crate::context::{FunctionInfo, epoch_ms, header};
use crate::diagnostic::Diagnostic;
use crate::lambda::runtime::{self, TraceVariable, handle};
use crate::lambda::runtime_api::Invocation;
use crate::limits::{Limits, MAX_EVENT_BYTES};
use crate::local::report::{Report, max_memory_used_mb, new_request_id};
use crate::log;
use crate::stream;

/// Process exit codes of `lure invoke`.
pub mod exit_code {
    pub const SUCCESS: u8 = 0;
    pub const HANDLER_ERROR: u8 = 1;
    pub const INIT_ERROR_OR_USAGE: u8 = 2;
}

pub struct InvokeOptions<'a> {
    pub handler: &'a str,
    pub task_root: &'a Path,
    pub event: Vec<u8>,
    pub timeout: Duration,
    /// The request id to use instead of a random one (`lure test`'s, stable).
    pub request_id: Option<String>,
}

pub fn invoke(options: InvokeOptions<'_>) -> u8 {
    log::init(log::Sink::Stderr);
    if options.event.len() > MAX_EVENT_BYTES {
        eprintln!(
            "lure: the event is {} bytes: Lambda refuses an invocation over {MAX_EVENT_BYTES} bytes \
             (RequestTooLargeException)",
            options.event.len()
        );
        return exit_code::INIT_ERROR_OR_USAGE;
    }
    // The function runs in its task root, as on Lambda (`/var/task`): relative
    // paths in scripts (`package.path`, `io.open`) mean the same in both places.
    let task_root = match std::path::absolute(options.task_root)
        .and_then(|root| std::env::set_current_dir(&root).map(|()| root))
    {
        Ok(root) => root,
        Err(e) => {
            eprintln!(
                "lure: cannot run in the task root {}: {e}",
                options.task_root.display()
            );
            return exit_code::INIT_ERROR_OR_USAGE;
        }
    };
    let body = Body::take_stdout();
    let info = FunctionInfo::from_env();
    let limits = Limits::for_function(&info);
    let init_started = Instant::now();
    let mut engine = match runtime::init(options.handler, &task_root, &limits) {
        Ok(engine) => engine,
        Err(diagnostic) => {
            eprintln!("lure: init failed: {diagnostic}");
            body.write(&diagnostic.to_json());
            return exit_code::INIT_ERROR_OR_USAGE;
        }
    };
    let init_duration = init_started.elapsed();

    let request_id = options.request_id.clone().unwrap_or_else(new_request_id);
    let deadline = epoch_ms(SystemTime::now()) + options.timeout.as_millis() as u64;
    let invocation = Invocation {
        request_id: request_id.clone(),
        headers: vec![
            (header::REQUEST_ID.into(), request_id.clone()),
            (header::DEADLINE_MS.into(), deadline.to_string()),
            (
                header::INVOKED_FUNCTION_ARN.into(),
                format!(
                    "arn:aws:lambda:us-east-1:000000000000:function:{}",
                    info.function_name
                ),
            ),
        ],
        body: options.event,
    };
    let started = Instant::now();
    // Lambda ends the environment at the deadline whatever the script does: lure
    // stops a script itself, but not a call blocked in C (`io.popen("sleep 8")`).
    let watchdog = Watchdog::start(&body, &request_id, options.timeout, &info);
    let stdout = body.stream();
    stream::set_opener(Box::new(move |_, _| Box::new(stdout.again())));
    stream::offer(&request_id, None);
    let outcome = handle(
        engine.as_mut(),
        &info,
        &limits,
        &invocation,
        TraceVariable::Set,
    );
    let ended = stream::conclude(&outcome);
    drop(watchdog);
    let duration = started.elapsed();
    // What a script wrote through C's stdio (Lua's `io.write`) is buffered: out
    // with it before the REPORT line, as the logs would have it.
    // SAFETY: `fflush(NULL)` flushes every C output stream; it has no preconditions.
    unsafe { libc::fflush(std::ptr::null_mut()) };
    let report = Report {
        request_id: &request_id,
        duration,
        memory_size_mb: info.memory_limit_in_mb,
        max_memory_used_mb: max_memory_used_mb("self"),
        init_duration: Some(init_duration),
        status: None,
    };
    log::write_raw(format!("{report}\n").as_bytes());
    if let Some(ended) = ended {
        // Streamed to stdout as it came; an error after streaming began is the
        // last line on stderr.
        return match ended.error {
            None => exit_code::SUCCESS,
            Some(diagnostic) => {
                log::write_raw(&diagnostic.to_json());
                log::write_raw(b"\n");
                exit_code::HANDLER_ERROR
            }
        };
    }
    match outcome {
        Ok(response) => {
            body.write(&response);
            exit_code::SUCCESS
        }
        Err(diagnostic) => {
            body.write(&diagnostic.to_json());
            exit_code::HANDLER_ERROR
        }
    }
}

/// How long after the deadline an invocation that has not ended is timed out by
/// the watchdog (lure's own stop comes 50 ms before the deadline).
const WATCHDOG_GRACE: Duration = Duration::from_millis(500);

/// Ends the process with Lambda's timeout answer when the invocation outlives its
/// deadline; dropped (disarmed) when it ends in time.
struct Watchdog {
    /// Dropping it disarms the watchdog.
    _disarm: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    fn start(body: &Body, request_id: &str, timeout: Duration, info: &FunctionInfo) -> Watchdog {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let out = body.stream();
        let request_id = request_id.to_owned();
        let memory_size_mb = info.memory_limit_in_mb;
        let started = Instant::now();
        let spawned = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                if disarmed.recv_timeout(timeout + WATCHDOG_GRACE)
                    != Err(mpsc::RecvTimeoutError::Timeout)
                {
                    return;
                }
                let message = format!(
                    "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                    timeout.as_secs_f64()
                );
                let report = Report {
                    request_id: &request_id,
                    duration: started.elapsed(),
                    memory_size_mb,
                    max_memory_used_mb: max_memory_used_mb("self"),
                    init_duration: None,
                    status: Some("Status: timeout".into()),
                };
                log::write_raw(format!("{report}\n").as_bytes());
                out.0
                    .write(&Diagnostic::runtime("Sandbox.Timedout", message).to_json());
                // Out at once, as Lambda ends a timed-out environment: `exit` would
                // flush C's streams, and the one the script is blocked on (the
                // pipe of `io.popen`) stays locked until its call returns.
                // SAFETY: `_exit` ends the process; nothing needs to run after it.
                unsafe { libc::_exit(exit_code::HANDLER_ERROR.into()) }
            });
        Watchdog {
            _disarm: spawned.ok().map(|_| disarm),
        }
    }
}

/// A streamed body, to stdout as it comes (the prelude of an HTTP integration
/// included, as Lambda receives it).
struct StdoutStream(Body);

impl StdoutStream {
    fn again(&self) -> StdoutStream {
        self.0.stream()
    }
}

impl stream::Sink for StdoutStream {
    fn start(&mut self, _content_type: &str, prelude: Option<&[u8]>) -> std::io::Result<()> {
        if let Some(prelude) = prelude {
            self.0.write(prelude);
        }
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.0.write(chunk);
        Ok(())
    }

    fn finish(&mut self, _error: Option<&crate::diagnostic::Diagnostic>) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where the body goes: the process's stdout, kept aside, while descriptor 1
/// itself points at stderr for the run, so that what a script writes to stdout
/// (Lua's `io.write`) lands with the logs and stdout carries the body alone.
struct Body(Option<std::fs::File>);

impl Body {
    fn take_stdout() -> Body {
        use std::os::fd::AsFd;
        let Ok(saved) = std::io::stdout().as_fd().try_clone_to_owned() else {
            return Body(None);
        };
        // SAFETY: `dup2` on the process's own standard descriptors, which stay
        // open for its life; on failure nothing changed.
        if unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
            return Body(None);
        }
        Body(Some(std::fs::File::from(saved)))
    }

    /// A second handle on the same stdout, for a streamed body.
    fn stream(&self) -> StdoutStream {
        StdoutStream(Body(self.0.as_ref().and_then(|f| f.try_clone().ok())))
    }

    fn write(&self, bytes: &[u8]) {
        // A closed pipe must not make lure panic.
        let _ = match &self.0 {
            Some(file) => {
                let mut out = file;
                out.write_all(bytes).and_then(|()| out.flush())
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
        };
    }
}
