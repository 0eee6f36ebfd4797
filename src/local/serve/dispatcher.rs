//! The Lambda side of `lure serve`: hands queued invocations, one at a time and in
//! arrival order, to the execution environment through serve's own Runtime API,
//! (re)starts the environment when it is missing, has died or the task root
//! changed, prints the platform lines, and answers each caller.
//!
//! One thread owns all of it; requests from both HTTP servers reach it as
//! [`Message`]s, and a short tick notices a process that exited or overran.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use tiny_http::{Method, Request, Response};

use crate::context::{epoch_ms, header as runtime_header};
use crate::diagnostic::Diagnostic;
use crate::local::report::{Report, end_line, random_hex, start_line};

use super::execution_env::{ExecutionEnv, Function};
use super::invoke_api::{header, http_header};
use super::task_root::Snapshot;
use crate::stdlib::base64;

/// How often the process is checked on while nothing else happens.
const TICK: Duration = Duration::from_millis(50);
/// Lambda's limit for the init phase.
const INIT_LIMIT: Duration = Duration::from_secs(10);
/// lure stops a script before its deadline by itself; the environment is killed
/// only when that answer is this late (a long call into C, a bug).
const KILL_GRACE: Duration = Duration::from_secs(5);
/// What `X-Amz-Log-Result` carries: the end of the invocation's log, as Lambda's.
const LOG_TAIL_BYTES: usize = 4096;
const RUNTIME_API_PREFIX: &str = "/2018-06-01/runtime/";

pub enum Message {
    /// From the Invoke API: one invocation to queue.
    Invoke(Job),
    /// From serve's Runtime API: a request of the execution environment's loop.
    Runtime(Request),
}

pub struct Job {
    pub request_id: String,
    /// The function name or ARN in the invoke URL.
    pub invoked_as: String,
    pub event: Vec<u8>,
    /// The decoded `X-Amz-Client-Context`.
    pub client_context: Option<String>,
    /// `X-Amz-Log-Type: Tail`.
    pub tail: bool,
    /// The HTTP request waiting for the answer; `None` for an `Event` invocation.
    pub caller: Option<Request>,
    pub arrived: Instant,
}

/// How an invocation ended: its response, or an error JSON body.
enum Answer {
    Response(Vec<u8>),
    Error(Vec<u8>),
}

struct Running {
    job: Job,
    start_line: String,
    started: Instant,
    deadline: Instant,
}

pub struct Dispatcher {
    function: Function,
    env: Option<ExecutionEnv>,
    queue: VecDeque<Job>,
    running: Option<Running>,
}

impl Dispatcher {
    pub fn new(function: Function) -> Self {
        Dispatcher {
            function,
            env: None,
            queue: VecDeque::new(),
            running: None,
        }
    }

    pub fn run(mut self, messages: Receiver<Message>) {
        // Start at once, so an init error shows before the first invocation.
        self.start_env();
        loop {
            match messages.recv_timeout(TICK) {
                Ok(Message::Invoke(job)) => self.queue.push_back(job),
                Ok(Message::Runtime(request)) => self.runtime_request(request),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.watch_env();
            self.dispatch();
        }
    }

    fn start_env(&mut self) {
        match ExecutionEnv::start(&self.function) {
            Ok(env) => self.env = Some(env),
            Err(e) => {
                let message = format!("lure serve: cannot start the function: {e}");
                eprintln!("{message}");
                if let Some(job) = self.queue.pop_front() {
                    let running = self.begin(job);
                    let body = Diagnostic::runtime("Runtime.Unknown", message).to_json();
                    self.finish(running, Answer::Error(body), None);
                }
            }
        }
    }

    /// Sends the next queued invocation to the environment once it waits on `/next`.
    fn dispatch(&mut self) {
        if self.running.is_some() || self.queue.is_empty() {
            return;
        }
        let Some(env) = &mut self.env else {
            return self.start_env();
        };
        let Some(next) = env.next.take() else {
            return; // still in init (or about to exit after an init error)
        };
        if Snapshot::take(&self.function.task_root) != env.snapshot {
            // A redeploy: the next invocation gets a fresh environment and init.
            eprintln!("lure serve: files under the task root changed; starting a new environment");
            drop(next);
            self.env = None;
            return self.start_env();
        }
        // What the process logged while idle (its init, on a fresh start) comes before START.
        echo(&env.read_log());
        let job = self.queue.pop_front().expect("the queue is not empty");
        let running = self.begin(job);
        let deadline_ms = epoch_ms(SystemTime::now()) + self.function.timeout.as_millis() as u64;
        let arn = if running.job.invoked_as.starts_with("arn:") {
            running.job.invoked_as.clone()
        } else {
            format!(
                "arn:aws:lambda:{}:000000000000:function:{}",
                self.function.region, running.job.invoked_as
            )
        };
        let trace_id = format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            epoch_ms(SystemTime::now()) / 1000,
            random_hex(12),
            random_hex(8)
        );
        let mut response = Response::from_data(running.job.event.clone())
            .with_chunked_threshold(usize::MAX)
            .with_header(http_header("Content-Type", "application/json"))
            .with_header(http_header(
                runtime_header::REQUEST_ID,
                &running.job.request_id,
            ))
            .with_header(http_header(
                runtime_header::DEADLINE_MS,
                &deadline_ms.to_string(),
            ))
            .with_header(http_header(runtime_header::INVOKED_FUNCTION_ARN, &arn))
            .with_header(http_header(runtime_header::TRACE_ID, &trace_id));
        if let Some(context) = &running.job.client_context
            && let Ok(value) = serde_json::from_str::<serde_json::Value>(context)
        {
            // Compact, so it fits on one header line whatever the caller's layout.
            response.add_header(http_header(
                runtime_header::CLIENT_CONTEXT,
                &value.to_string(),
            ));
        }
        // If the process is gone, `watch_env` notices and answers for it.
        let _ = next.respond(response);
        self.running = Some(running);
    }

    /// Prints START for an invocation handed to the function now.
    fn begin(&self, job: Job) -> Running {
        self.begin_at(job, Instant::now())
    }

    /// Prints START for an invocation that never reached the function (its init
    /// failed): its time is counted from when it began to wait for that init.
    fn begin_waiting(&self, job: Job) -> Running {
        let since = match &self.env {
            Some(env) => job.arrived.max(env.spawned),
            None => Instant::now(),
        };
        self.begin_at(job, since)
    }

    fn begin_at(&self, job: Job, started: Instant) -> Running {
        let start_line = start_line(&job.request_id, "$LATEST");
        eprintln!("{start_line}");
        Running {
            job,
            start_line,
            started,
            deadline: started + self.function.timeout,
        }
    }

    /// Prints the invocation's log, END and REPORT, and answers its caller.
    fn finish(&mut self, running: Running, answer: Answer, status: Option<&str>) {
        let duration = running.started.elapsed();
        let (log, init_duration, max_memory_used_mb) = match &mut self.env {
            Some(env) => (
                env.read_log(),
                env.unreported_init(),
                env.max_memory_used_mb(),
            ),
            None => (Vec::new(), None, None),
        };
        let request_id = &running.job.request_id;
        let report = Report {
            request_id,
            duration,
            memory_size_mb: self.function.memory_mb,
            max_memory_used_mb,
            init_duration,
            status: status.map(str::to_owned),
        };
        let mut platform = Vec::new();
        if !log.is_empty() && !log.ends_with(b"\n") {
            platform.push(b'\n');
        }
        platform.extend_from_slice(format!("{}\n{report}\n", end_line(request_id)).as_bytes());
        echo(&[&log[..], &platform[..]].concat());

        let Some(caller) = running.job.caller else {
            return; // an `Event` invocation: the log is all there is to see
        };
        let (body, failed) = match answer {
            Answer::Response(body) => (body, false),
            Answer::Error(body) => (body, true),
        };
        let mut response = Response::from_data(body)
            .with_chunked_threshold(usize::MAX)
            .with_header(http_header("Content-Type", "application/json"))
            .with_header(http_header(header::REQUEST_ID, request_id))
            .with_header(http_header(header::EXECUTED_VERSION, "$LATEST"));
        if failed {
            response.add_header(http_header(header::FUNCTION_ERROR, "Unhandled"));
        }
        if running.job.tail {
            let text = [running.start_line.as_bytes(), b"\n", &log, &platform].concat();
            let tail = &text[text.len().saturating_sub(LOG_TAIL_BYTES)..];
            response.add_header(http_header(header::LOG_RESULT, &base64::encode(tail)));
        }
        // A caller that went away is no concern of the function's.
        let _ = caller.respond(response);
    }

    /// Requests of the execution environment's runtime loop (Runtime API 2018-06-01).
    fn runtime_request(&mut self, mut request: Request) {
        let url = request.url().to_owned();
        let route = url
            .split('?')
            .next()
            .and_then(|path| path.strip_prefix(RUNTIME_API_PREFIX))
            .unwrap_or("");
        let method = request.method().clone();
        if method == Method::Get && route == "invocation/next" {
            return self.on_next(request);
        }
        if method == Method::Post {
            let mut body = Vec::new();
            let _ = request.as_reader().read_to_end(&mut body);
            if route == "init/error" {
                return self.on_init_error(body, request);
            }
            if let Some(rest) = route.strip_prefix("invocation/") {
                if let Some(id) = rest.strip_suffix("/response") {
                    return self.on_answer(id, Answer::Response(body), request);
                }
                if let Some(id) = rest.strip_suffix("/error") {
                    return self.on_answer(id, Answer::Error(body), request);
                }
            }
        }
        runtime_reply(request, 404, "UnknownRoute", &format!("{method} {url}"));
    }

    /// `GET /runtime/invocation/next`: parked until there is an invocation.
    fn on_next(&mut self, request: Request) {
        let Some(env) = &mut self.env else {
            return; // a process that was just stopped; dropping the request answers 500
        };
        if env.init_duration.is_none() {
            env.init_duration = Some(env.spawned.elapsed());
        }
        env.next = Some(request);
    }

    /// `POST /runtime/invocation/{id}/response` and `…/error`.
    fn on_answer(&mut self, id: &str, answer: Answer, request: Request) {
        let Some(running) = self.running.take_if(|running| running.job.request_id == id) else {
            let message = format!("Invalid request ID: {id} is not the running invocation");
            return runtime_reply(request, 400, "InvalidRequestID", &message);
        };
        let _ = request.respond(runtime_accepted());
        self.finish(running, answer, None);
    }

    /// `POST /runtime/init/error`: the process exits next; `watch_env` answers
    /// the invocation that was waiting for this init, if any.
    fn on_init_error(&mut self, body: Vec<u8>, request: Request) {
        if let Some(env) = &mut self.env {
            env.init_duration = Some(env.spawned.elapsed());
            env.init_error = Some(body);
        }
        let _ = request.respond(runtime_accepted());
    }

    /// Notices a process that exited, an invocation the runtime did not stop in
    /// time, or an init that does not end; answers whoever was waiting.
    fn watch_env(&mut self) {
        let Some(env) = &mut self.env else {
            return;
        };
        if let Some(status) = env.exited() {
            let init_error = env.init_error.take();
            let in_init = env.init_duration.is_none();
            if let Some(body) = init_error {
                let error_type = error_type_of(&body);
                let status = format!("Status: error\tError Type: {error_type}");
                match self.queue.pop_front() {
                    Some(job) => {
                        let running = self.begin_waiting(job);
                        self.finish(running, Answer::Error(body), Some(&status));
                    }
                    None => self.init_report(&status),
                }
            } else if let Some(running) = self.running.take() {
                self.exit_error(running, &status.to_string());
            } else if in_init && let Some(job) = self.queue.pop_front() {
                let running = self.begin_waiting(job);
                self.exit_error(running, &status.to_string());
            } else {
                echo(&env.read_log());
                eprintln!(
                    "lure serve: the function's process exited ({status}); the next invocation starts a new one"
                );
            }
            self.env = None;
            return;
        }

        let overran = self
            .running
            .take_if(|r| Instant::now() >= r.deadline + KILL_GRACE);
        if let Some(running) = overran {
            let message = format!(
                "RequestId: {} Error: Task timed out after {:.2} seconds",
                running.job.request_id,
                self.function.timeout.as_secs_f64()
            );
            let body = Diagnostic::runtime("Sandbox.Timedout", message).to_json();
            self.finish(running, Answer::Error(body), Some("Status: timeout"));
            self.env = None;
        } else if env.init_duration.is_none() && env.spawned.elapsed() >= INIT_LIMIT {
            env.init_duration = Some(env.spawned.elapsed());
            let status = "Status: timeout";
            match self.queue.pop_front() {
                Some(job) => {
                    let running = self.begin_waiting(job);
                    let message = format!(
                        "RequestId: {} Error: init did not finish within {} seconds",
                        running.job.request_id,
                        INIT_LIMIT.as_secs()
                    );
                    let body = Diagnostic::runtime("Sandbox.Timedout", message).to_json();
                    self.finish(running, Answer::Error(body), Some(status));
                }
                None => self.init_report(status),
            }
            self.env = None;
        }
    }

    /// The process died while an invocation waited on it.
    fn exit_error(&mut self, running: Running, status: &str) {
        let message = format!(
            "RequestId: {} Error: Runtime exited with error: {status}",
            running.job.request_id
        );
        let body = Diagnostic::runtime("Runtime.ExitError", message).to_json();
        let status = "Status: error\tError Type: Runtime.ExitError";
        self.finish(running, Answer::Error(body), Some(status));
    }

    /// Lambda's line for an init that failed while no invocation waited for it.
    fn init_report(&mut self, status: &str) {
        let Some(env) = &mut self.env else {
            return;
        };
        echo(&env.read_log());
        let init = env.init_duration.unwrap_or_default();
        eprintln!(
            "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\t{status}",
            init.as_secs_f64() * 1000.0
        );
    }
}

/// The `errorType` of an error body, for the REPORT line.
fn error_type_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errorType")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "Unknown".to_owned())
}

fn runtime_accepted() -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(&br#"{"status":"OK"}"#[..])
        .with_status_code(202)
        .with_chunked_threshold(usize::MAX)
        .with_header(http_header("Content-Type", "application/json"))
}

fn runtime_reply(request: Request, status: u16, error_type: &str, message: &str) {
    let body = Diagnostic::runtime(error_type, message).to_json();
    let _ = request.respond(
        Response::from_data(body)
            .with_status_code(status)
            .with_chunked_threshold(usize::MAX)
            .with_header(http_header("Content-Type", "application/json")),
    );
}

/// Copies the function's log to serve's stderr as it was written.
fn echo(bytes: &[u8]) {
    if !bytes.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes).and_then(|()| err.flush());
    }
}
