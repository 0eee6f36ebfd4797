//! The Lambda side of `lure serve`: hands queued invocations, one at a time and in
//! arrival order, to the execution environment through serve's own Runtime API,
//! (re)starts the environment when it is missing, has died or the task root
//! changed, prints the platform lines, and answers each caller.
//!
//! One thread owns all of it; requests from both HTTP servers reach it as
//! [`Message`]s, and a short tick notices a process that exited or overran.
//!
//! A streamed answer (SPEC 9) arrives piece by piece: relayed as events to an
//! `InvokeWithResponseStream` caller as it comes, gathered for a plain `Invoke`
//! (whose caller gets the whole body, as Lambda gives it).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use tiny_http::Request;

use crate::context::{epoch_ms, header as runtime_header};
use crate::diagnostic::{Diagnostic, error_type};
use crate::limits::MAX_RESPONSE_BYTES;
use crate::local::report::{Report, end_line, random_hex, start_line};

use super::event_stream::{Completion, EventStream};
use super::execution_env::{ExecutionEnv, Function};
use super::function_url::{self, UrlStream};
use super::invoke_api::{header, http_header};
use super::runtime_api::{Call, Piece, Reply, Response as RuntimeResponse};
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

pub enum Message {
    /// From the Invoke API: one invocation to queue.
    Invoke(Job),
    /// From serve's Runtime API: a request of the execution environment's loop.
    Runtime(Call),
    /// From serve's Runtime API: a piece of a streamed `/response`.
    Stream { request_id: String, piece: Piece },
}

/// Who waits for an invocation's answer, and how.
pub enum Caller {
    /// An `Event` invocation: the log is all there is to see.
    Nobody,
    /// `Invoke`: the whole answer at once.
    Invoke(Request),
    /// `InvokeWithResponseStream`: events, as the function writes.
    Stream(Request),
    /// A Function URL request: the answer mapped to an HTTP response, a streamed
    /// one streamed.
    Url(Request),
    /// The console's Invoke button: the answer with its duration, memory and log.
    Console(Request),
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
    pub caller: Caller,
    pub arrived: Instant,
}

/// How an invocation ended: its response, or an error JSON body.
enum Answer {
    Response { body: Vec<u8>, content_type: String },
    Error(Vec<u8>),
}

impl Answer {
    fn json(body: Vec<u8>) -> Answer {
        Answer::Response {
            body,
            content_type: "application/json".to_owned(),
        }
    }
}

struct Running {
    job: Job,
    start_line: String,
    started: Instant,
    deadline: Instant,
    /// The answer being streamed, once its `/response` began.
    stream: Option<Streamed>,
}

/// A streamed answer on its way (SPEC 9).
enum Streamed {
    /// For an `InvokeWithResponseStream` caller: each piece relayed at once.
    Relayed(EventStream),
    /// For an `Invoke` caller, who gets the body whole (up to Lambda's 6 MB).
    Gathered {
        content_type: String,
        body: Vec<u8>,
        too_large: bool,
    },
    /// For a Function URL request: the body streamed to the client.
    Url(UrlStream),
    /// For an `Event` invocation: nobody reads the body.
    Dropped,
}

impl Streamed {
    fn take(&mut self, bytes: &[u8]) {
        match self {
            Streamed::Relayed(events) => events.payload(bytes),
            Streamed::Gathered {
                body, too_large, ..
            } => {
                if *too_large || body.len() + bytes.len() > MAX_RESPONSE_BYTES {
                    *too_large = true;
                    *body = Vec::new();
                } else {
                    body.extend_from_slice(bytes);
                }
            }
            Streamed::Url(stream) => stream.write(bytes),
            Streamed::Dropped => {}
        }
    }

    /// The answer of a stream that ended with `error` (its trailers') or none.
    fn answer(&mut self, error: Option<Vec<u8>>) -> Answer {
        match (error, self) {
            (Some(error), _) => Answer::Error(error),
            (
                None,
                Streamed::Gathered {
                    too_large: true, ..
                },
            ) => Answer::Error(response_too_large()),
            (
                None,
                Streamed::Gathered {
                    content_type, body, ..
                },
            ) => Answer::Response {
                body: std::mem::take(body),
                content_type: std::mem::take(content_type),
            },
            // All of it was relayed already, or nobody reads it.
            (None, Streamed::Relayed(_) | Streamed::Url(_) | Streamed::Dropped) => {
                Answer::json(Vec::new())
            }
        }
    }
}

pub struct Dispatcher {
    function: Function,
    env: Option<ExecutionEnv>,
    queue: VecDeque<Job>,
    /// The invocations in flight: at most `function.concurrency`.
    running: Vec<Running>,
}

impl Dispatcher {
    pub fn new(function: Function) -> Self {
        Dispatcher {
            function,
            env: None,
            queue: VecDeque::new(),
            running: Vec::new(),
        }
    }

    pub fn run(mut self, messages: Receiver<Message>) {
        // Start at once, so an init error shows before the first invocation.
        self.start_env();
        loop {
            match messages.recv_timeout(TICK) {
                Ok(Message::Invoke(job)) => self.queue.push_back(job),
                Ok(Message::Runtime(call)) => self.runtime_request(call),
                Ok(Message::Stream { request_id, piece }) => self.on_stream(&request_id, piece),
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

    /// Sends queued invocations to the environment while it waits on `/next`, up
    /// to the function's concurrency.
    fn dispatch(&mut self) {
        while self.running.len() < self.function.concurrency && !self.queue.is_empty() {
            let Some(env) = &mut self.env else {
                return self.start_env();
            };
            if env.next.is_empty() {
                return; // still in init (or about to exit after an init error)
            }
            if Snapshot::take(&self.function.task_root) != env.snapshot {
                if !self.running.is_empty() {
                    return; // the redeploy waits for the invocations in flight
                }
                // A redeploy: the next invocation gets a fresh environment and init.
                eprintln!(
                    "lure serve: files under the task root changed; starting a new environment"
                );
                self.env = None;
                return self.start_env();
            }
            self.dispatch_one();
        }
    }

    /// Hands the first queued invocation to a worker waiting on `/next`.
    fn dispatch_one(&mut self) {
        let Some(env) = &mut self.env else {
            return;
        };
        let Some(next) = env.next.pop_front() else {
            return;
        };
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
        let mut response = RuntimeResponse::json(200, running.job.event.clone());
        response.headers.extend([
            (runtime_header::REQUEST_ID, running.job.request_id.clone()),
            (runtime_header::DEADLINE_MS, deadline_ms.to_string()),
            (runtime_header::INVOKED_FUNCTION_ARN, arn),
            (runtime_header::TRACE_ID, trace_id),
        ]);
        if let Some(context) = &running.job.client_context
            && let Ok(value) = serde_json::from_str::<serde_json::Value>(context)
        {
            // Compact, so it fits on one header line whatever the caller's layout.
            response
                .headers
                .push((runtime_header::CLIENT_CONTEXT, value.to_string()));
        }
        // If the process is gone, `watch_env` notices and answers for it.
        next.send(response);
        self.running.push(running);
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
            stream: None,
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

        let whole_log = || [running.start_line.as_bytes(), b"\n", &log, &platform].concat();
        let log_result = running.job.tail.then(|| {
            let text = whole_log();
            base64::encode(&text[text.len().saturating_sub(LOG_TAIL_BYTES)..])
        });
        match (running.job.caller, running.stream) {
            (Caller::Console(caller), _) => {
                let (failed, body) = match answer {
                    Answer::Response { body, .. } => (false, body),
                    Answer::Error(body) => (true, body),
                };
                let result = serde_json::json!({
                    "request_id": request_id,
                    "failed": failed,
                    "body": String::from_utf8_lossy(&body),
                    "duration_ms": (duration.as_secs_f64() * 1e5).round() / 100.0,
                    "max_memory_used_mb": max_memory_used_mb,
                    "memory_size_mb": self.function.memory_mb,
                    "log": String::from_utf8_lossy(&whole_log()),
                });
                super::console::json_response(caller, 200, &result);
            }
            (_, Some(Streamed::Relayed(events))) => complete(events, answer, log_result),
            // The body went to the client as it came; an error after it began can
            // only end it (the status was sent), as on Lambda.
            (_, Some(Streamed::Url(_))) => {}
            (Caller::Url(caller), _) => {
                let outgoing = match answer {
                    Answer::Response { body, .. } => function_url::buffered(&body),
                    Answer::Error(_) => function_url::function_error(),
                };
                function_url::respond(caller, outgoing, request_id);
            }
            (Caller::Stream(caller), _) => {
                // An answer that was not streamed: its body as one event.
                let content_type = match &answer {
                    Answer::Response { content_type, .. } => content_type,
                    Answer::Error(_) => "application/json",
                };
                let events = EventStream::open(caller, content_type, request_id);
                complete(events, answer, log_result);
            }
            (Caller::Invoke(caller), _) => {
                let (body, content_type, failed) = match answer {
                    Answer::Response { body, content_type } => (body, content_type, false),
                    Answer::Error(body) => (body, "application/json".to_owned(), true),
                };
                let mut response = tiny_http::Response::from_data(body)
                    .with_chunked_threshold(usize::MAX)
                    .with_header(http_header("Content-Type", &content_type))
                    .with_header(http_header(header::REQUEST_ID, request_id))
                    .with_header(http_header(header::EXECUTED_VERSION, "$LATEST"));
                if failed {
                    response.add_header(http_header(header::FUNCTION_ERROR, "Unhandled"));
                }
                if let Some(tail) = log_result {
                    response.add_header(http_header(header::LOG_RESULT, &tail));
                }
                // A caller that went away is no concern of the function's.
                let _ = caller.respond(response);
            }
            (Caller::Nobody, _) => {} // an `Event` invocation: the log is all there is to see
        }
    }

    /// Requests of the execution environment's runtime loop (Runtime API 2018-06-01).
    fn runtime_request(&mut self, call: Call) {
        let Call {
            method,
            route,
            path,
            body,
            reply,
        } = call;
        match (method.as_str(), route.as_str()) {
            ("GET", "invocation/next") => return self.on_next(reply),
            ("POST", "init/error") => return self.on_init_error(body, reply),
            ("POST", _) => {
                if let Some(rest) = route.strip_prefix("invocation/") {
                    if let Some(id) = rest.strip_suffix("/response") {
                        return self.on_answer(id, Answer::json(body), reply);
                    }
                    if let Some(id) = rest.strip_suffix("/error") {
                        return self.on_answer(id, Answer::Error(body), reply);
                    }
                }
            }
            _ => {}
        }
        reply.error(404, "UnknownRoute", &format!("{method} {path}"));
    }

    /// A piece of a streamed `/response`: relayed to an `InvokeWithResponseStream`
    /// caller as it comes, gathered for any other; the end answers the invocation.
    fn on_stream(&mut self, request_id: &str, piece: Piece) {
        let running = self
            .running
            .iter_mut()
            .find(|running| running.job.request_id == request_id);
        match (running, piece) {
            (Some(running), Piece::Begin { content_type }) => {
                let caller = std::mem::replace(&mut running.job.caller, Caller::Nobody);
                running.stream = Some(match caller {
                    Caller::Stream(caller) => {
                        Streamed::Relayed(EventStream::open(caller, &content_type, request_id))
                    }
                    // Whole answers: gathered, to give at the end.
                    caller @ (Caller::Invoke(_) | Caller::Console(_)) => {
                        running.job.caller = caller;
                        Streamed::Gathered {
                            content_type,
                            body: Vec::new(),
                            too_large: false,
                        }
                    }
                    Caller::Url(caller) => {
                        Streamed::Url(UrlStream::open(caller, &content_type, request_id))
                    }
                    Caller::Nobody => Streamed::Dropped,
                });
            }
            (Some(running), Piece::Chunk(bytes)) => {
                if let Some(stream) = &mut running.stream {
                    stream.take(&bytes);
                }
            }
            (Some(_), Piece::End { error, reply }) => {
                let mut running = self.take_running(request_id).expect("it is running");
                reply.accepted();
                let answer = match &mut running.stream {
                    Some(stream) => stream.answer(error),
                    None => error.map_or_else(|| Answer::json(Vec::new()), Answer::Error),
                };
                self.finish(running, answer, None);
            }
            (None, Piece::End { reply, .. }) => invalid_request_id(request_id, reply),
            (None, _) => {} // a late stream of an invocation already answered
        }
    }

    /// `GET /runtime/invocation/next`: parked until there is an invocation.
    fn on_next(&mut self, reply: Reply) {
        let Some(env) = &mut self.env else {
            return; // a process that was just stopped; dropping the reply answers 500
        };
        if env.init_duration.is_none() {
            env.init_duration = Some(env.spawned.elapsed());
        }
        env.next.push_back(reply);
    }

    /// `POST /runtime/invocation/{id}/response` and `…/error`.
    fn on_answer(&mut self, id: &str, answer: Answer, reply: Reply) {
        let Some(running) = self.take_running(id) else {
            return invalid_request_id(id, reply);
        };
        reply.accepted();
        self.finish(running, answer, None);
    }

    /// The invocation `id` if it is in flight, no longer counted as such.
    fn take_running(&mut self, id: &str) -> Option<Running> {
        let at = self.running.iter().position(|r| r.job.request_id == id)?;
        Some(self.running.remove(at))
    }

    /// `POST /runtime/init/error`: the process exits next; `watch_env` answers
    /// the invocation that was waiting for this init, if any.
    fn on_init_error(&mut self, body: Vec<u8>, reply: Reply) {
        if let Some(env) = &mut self.env {
            env.init_duration = Some(env.spawned.elapsed());
            env.init_error = Some(body);
        }
        reply.accepted();
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
            } else if !self.running.is_empty() {
                for running in std::mem::take(&mut self.running) {
                    self.exit_error(running, &status.to_string());
                }
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

        let now = Instant::now();
        if self.running.iter().any(|r| now >= r.deadline + KILL_GRACE) {
            // The environment is stopped: the invocation that overran is timed out,
            // any other in flight (a worker's) is lost with the process.
            for running in std::mem::take(&mut self.running) {
                if now >= running.deadline + KILL_GRACE {
                    let message = format!(
                        "RequestId: {} Error: Task timed out after {:.2} seconds",
                        running.job.request_id,
                        self.function.timeout.as_secs_f64()
                    );
                    let body = Diagnostic::runtime("Sandbox.Timedout", message).to_json();
                    self.finish(running, Answer::Error(body), Some("Status: timeout"));
                } else {
                    self.exit_error(running, "stopped: another invocation overran its deadline");
                }
            }
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

fn invalid_request_id(id: &str, reply: Reply) {
    let message = format!("Invalid request ID: {id} is not the running invocation");
    reply.error(400, "InvalidRequestID", &message);
}

/// A streamed body past what `Invoke` returns: Lambda's error for it.
fn response_too_large() -> Vec<u8> {
    let message = format!(
        "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
    );
    Diagnostic::runtime(error_type::RESPONSE_SIZE_TOO_LARGE, message).to_json()
}

/// Ends an event stream with the answer: the rest of its body as a payload, or
/// its error as `ErrorCode` and `ErrorDetails`.
fn complete(events: EventStream, answer: Answer, log_result: Option<String>) {
    let mut completion = Completion {
        log_result,
        ..Completion::default()
    };
    match answer {
        Answer::Response { body, .. } => events.payload(&body),
        Answer::Error(body) => {
            let error = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
            let field = |name| error.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            completion.error_code = Some(field("errorType").unwrap_or_else(|| "Unknown".into()));
            completion.error_details = field("errorMessage");
        }
    }
    events.complete(&completion);
}

/// Copies the function's log to serve's stderr as it was written.
fn echo(bytes: &[u8]) {
    if !bytes.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes).and_then(|()| err.flush());
    }
}
