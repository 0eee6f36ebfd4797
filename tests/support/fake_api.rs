//! A fake AWS Lambda Runtime API (2018-06-01) on std only: a thread per connection,
//! HTTP/1.1 keep-alive, `/next` long-polling a queue the test fills, every POST
//! recorded. Faults are scripted replies, taken in order, per kind of request.
//!
//! Like Lambda, the fake accepts one answer per invocation: a later POST for a
//! request id that already has an accepted answer gets a 400, so a runtime that
//! retries after a lost reply sees what it would see on Lambda.

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::http::{self, Request};

/// Default deadline distance: long enough that no test meets `Runtime.Timeout` by
/// accident on a slow machine.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);

pub const DEFAULT_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:lure-test";

/// One invocation to hand out on `/next`: a body and the headers sent with it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// Sent as given (Lambda's capitalisation); lure must lower-case them itself.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Set `Lambda-Runtime-Deadline-Ms` this long after the moment `/next` hands
    /// the invocation out, rather than from when it was queued.
    pub deadline_after_dispatch: Option<Duration>,
}

impl Invocation {
    /// An invocation with the headers Lambda always sends: request id, a deadline
    /// [`DEFAULT_DEADLINE`] from now and the function ARN. No trace id.
    pub fn new(request_id: &str, body: impl Into<Vec<u8>>) -> Self {
        Invocation {
            request_id: request_id.to_owned(),
            headers: Vec::new(),
            body: body.into(),
            deadline_after_dispatch: None,
        }
        .header("Lambda-Runtime-Aws-Request-Id", request_id)
        .deadline_ms(epoch_ms() + DEFAULT_DEADLINE.as_millis() as u64)
        .header("Lambda-Runtime-Invoked-Function-Arn", DEFAULT_ARN)
    }

    /// Sets (or replaces, whatever its case) a header.
    pub fn header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self
    }

    pub fn deadline_ms(self, ms: impl ToString) -> Self {
        self.header("Lambda-Runtime-Deadline-Ms", ms)
    }

    /// A deadline `distance` after `/next` hands the invocation out: for invocations
    /// queued in bulk, each of which must get its full time.
    pub fn deadline_in(mut self, distance: Duration) -> Self {
        self.deadline_after_dispatch = Some(distance);
        self
    }

    pub fn trace_id(self, id: &str) -> Self {
        self.header("Lambda-Runtime-Trace-Id", id)
    }

    pub fn client_context(self, json: &str) -> Self {
        self.header("Lambda-Runtime-Client-Context", json)
    }

    pub fn cognito_identity(self, json: &str) -> Self {
        self.header("Lambda-Runtime-Cognito-Identity", json)
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }
}

/// Which endpoint a POST went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostKind {
    /// `/runtime/invocation/{id}/response`
    Response,
    /// `/runtime/invocation/{id}/error`
    Error,
    /// `/runtime/init/error`
    InitError,
}

/// A POST lure made, as received.
#[derive(Debug, Clone)]
pub struct Post {
    pub kind: PostKind,
    /// The full path, prefix included.
    pub path: String,
    /// `None` for `/init/error`.
    pub request_id: Option<String>,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What the fake recorded: `None` when it dropped the connection instead of
    /// answering; `Some(202)` for [`Reply::AcceptThenDrop`], whose answer was lost.
    pub status: Option<u16>,
    /// When the request had been fully received, in ms since the epoch.
    pub received_ms: u64,
}

impl Post {
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the posted body is UTF-8")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body posted to {} is not JSON ({e}): {:.300}",
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Accepted by the fake (2xx).
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A scripted answer replacing the normal one, for fault injection.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this status and a small JSON body. On `/next` no invocation is
    /// taken from the queue; a POST is still recorded (with this status).
    Status(u16),
    /// Read the request, then close the connection without answering. A POST is
    /// still recorded (with status `None`).
    Drop,
    /// POST only: accept the answer (recorded with status 202), then close the
    /// connection before the 202 reaches lure, as when the API restarts at the wrong
    /// moment. A retry of that POST then gets Lambda's 400. On `/next`: as `Drop`.
    AcceptThenDrop,
}

/// Everything the fake has seen so far.
#[derive(Debug, Default, Clone)]
pub struct Log {
    pub posts: Vec<Post>,
    /// TCP connections accepted.
    pub connections: usize,
    /// `GET /next` requests received (including ones still waiting).
    pub next_requests: usize,
    /// Requests to paths the Runtime API does not have, as `METHOD path`.
    pub unexpected: Vec<String>,
    /// The chunks of streamed (chunked) POSTs, in the order they arrived, each
    /// recorded as soon as it is read (before the POST ends).
    pub chunks: Vec<Vec<u8>>,
}

impl Log {
    /// Accepted answers (responses and errors) for one invocation: exactly one once
    /// it has been answered, whatever faults and retries happened on the way.
    pub fn accepted_answers(&self, request_id: &str) -> usize {
        self.posts
            .iter()
            .filter(|p| p.request_id.as_deref() == Some(request_id) && p.accepted())
            .count()
    }
}

#[derive(Default)]
struct State {
    log: Log,
    queue: VecDeque<Invocation>,
    next_replies: VecDeque<Reply>,
    post_replies: VecDeque<Reply>,
    /// Close each connection after answering on it, without saying so.
    close_after_answer: bool,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not hide what was recorded.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct FakeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    prefix: String,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeApi {
    /// Listens on `127.0.0.1:0`; lure gets `host:port`, as on Lambda.
    pub fn start() -> Self {
        Self::with_prefix("")
    }

    /// Listens on `127.0.0.1:0`, serving under `prefix` (`"/.rt"`); lure gets
    /// `http://127.0.0.1:PORT/.rt`, as cargo-lambda sets it.
    pub fn with_prefix(prefix: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Self::on_listener(listener, prefix)
    }

    /// Serves on a listener the test bound itself (e.g. late, on a reserved port,
    /// to play an API that is not listening yet when lure starts).
    pub fn on_listener(listener: TcpListener, prefix: &str) -> Self {
        let addr = listener.local_addr().expect("listener address");
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            changed: Condvar::new(),
        });
        let prefix = prefix.trim_end_matches('/').to_owned();
        let acceptor = {
            let shared = shared.clone();
            let prefix = prefix.clone();
            thread::spawn(move || accept_loop(listener, shared, prefix))
        };
        FakeApi {
            shared,
            addr,
            prefix,
            acceptor: Some(acceptor),
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        if self.prefix.is_empty() {
            self.addr.to_string()
        } else {
            format!("http://{}{}", self.addr, self.prefix)
        }
    }

    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues an invocation; a waiting (or the next) `/next` gets it.
    pub fn push(&self, invocation: Invocation) {
        self.shared.lock().queue.push_back(invocation);
        self.shared.changed.notify_all();
    }

    /// The next `GET /next` (not yet answered) gets `reply` instead of an invocation.
    pub fn script_next(&self, reply: Reply) {
        self.shared.lock().next_replies.push_back(reply);
    }

    /// The next POST (to any endpoint) gets `reply` instead of 202.
    pub fn script_post(&self, reply: Reply) {
        self.shared.lock().post_replies.push_back(reply);
    }

    /// From now on, close each connection after answering one request on it,
    /// without a `Connection: close` header: an API that drops idle keep-alive
    /// connections, so that lure's next request meets a closed one.
    pub fn close_after_each_answer(&self) {
        self.shared.lock().close_after_answer = true;
    }

    /// A copy of everything seen so far.
    pub fn log(&self) -> Log {
        self.shared.lock().log.clone()
    }

    pub fn posts(&self) -> Vec<Post> {
        self.shared.lock().log.posts.clone()
    }

    pub fn connections(&self) -> usize {
        self.shared.lock().log.connections
    }

    /// Blocks until `done` holds for the log, or `timeout` passes; returns whether it held.
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&Log) -> bool) -> bool {
        let end = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if done(&state.log) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        // Wake the acceptor out of `accept`.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, prefix: String) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        {
            let mut state = shared.lock();
            if state.shutdown {
                return;
            }
            state.log.connections += 1;
        }
        shared.changed.notify_all();
        let shared = shared.clone();
        let prefix = prefix.clone();
        thread::spawn(move || serve_connection(stream, &shared, &prefix));
    }
}

/// What to do with one request.
enum Answer {
    Send {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Drop,
    /// Recorded as accepted, then the connection is closed without answering.
    AcceptThenDrop,
}

impl Answer {
    fn status(status: u16) -> Self {
        let body = if (200..300).contains(&status) {
            r#"{"status":"OK"}"#.to_owned()
        } else {
            format!(r#"{{"errorMessage":"fake API answered {status}","errorType":"Fake"}}"#)
        };
        Answer::Send {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
        }
    }

    fn scripted(reply: Reply) -> Self {
        match reply {
            Reply::Status(status) => Answer::status(status),
            Reply::Drop => Answer::Drop,
            Reply::AcceptThenDrop => Answer::AcceptThenDrop,
        }
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared, prefix: &str) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let mut on_chunk = |chunk: &[u8]| {
            shared.lock().log.chunks.push(chunk.to_vec());
            shared.changed.notify_all();
        };
        let request = match http::read_request_observed(&mut reader, &mut on_chunk) {
            Ok(Some(request)) => request,
            Ok(None) | Err(_) => return,
        };
        match route(&request, shared, prefix) {
            Answer::Send {
                status,
                headers,
                body,
            } => {
                if http::write_response(&mut writer, status, &headers, &body).is_err() {
                    return;
                }
                if shared.lock().close_after_answer {
                    let _ = writer.flush();
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
            }
            Answer::Drop | Answer::AcceptThenDrop => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        }
        if request.wants_close() {
            let _ = writer.flush();
            return;
        }
    }
}

fn route(request: &Request, shared: &Shared, prefix: &str) -> Answer {
    let path = request
        .path
        .strip_prefix(prefix)
        .and_then(|p| p.strip_prefix("/2018-06-01/runtime/"));
    let endpoint = match (request.method.as_str(), path) {
        ("GET", Some("invocation/next")) => return next(shared),
        ("POST", Some("init/error")) => Some((PostKind::InitError, None)),
        ("POST", Some(p)) => p.strip_prefix("invocation/").and_then(|p| {
            if let Some(id) = p.strip_suffix("/response") {
                Some((PostKind::Response, Some(id.to_owned())))
            } else {
                p.strip_suffix("/error")
                    .map(|id| (PostKind::Error, Some(id.to_owned())))
            }
        }),
        _ => None,
    };
    let Some((kind, request_id)) = endpoint else {
        shared
            .lock()
            .log
            .unexpected
            .push(format!("{} {}", request.method, request.path));
        shared.changed.notify_all();
        return Answer::status(404);
    };
    let mut state = shared.lock();
    let already_answered = request_id
        .as_deref()
        .is_some_and(|id| state.log.accepted_answers(id) > 0);
    let answer = match state.post_replies.pop_front() {
        Some(reply) => Answer::scripted(reply),
        // What Lambda says to a second answer for the same invocation.
        None if already_answered => Answer::Send {
            status: 400,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"errorMessage":"Invalid state transition: invocation already answered","errorType":"InvalidStateTransition"}"#.to_vec(),
        },
        None => Answer::status(202),
    };
    state.log.posts.push(Post {
        kind,
        path: request.path.clone(),
        request_id,
        headers: request.headers.clone(),
        body: request.body.clone(),
        status: match &answer {
            Answer::Send { status, .. } => Some(*status),
            Answer::Drop => None,
            Answer::AcceptThenDrop => Some(202),
        },
        received_ms: epoch_ms(),
    });
    drop(state);
    shared.changed.notify_all();
    answer
}

/// `GET /next`: a scripted reply, or the next queued invocation (waiting for one).
fn next(shared: &Shared) -> Answer {
    let mut state = shared.lock();
    state.log.next_requests += 1;
    shared.changed.notify_all();
    if let Some(reply) = state.next_replies.pop_front() {
        return match Answer::scripted(reply) {
            Answer::AcceptThenDrop => Answer::Drop,
            answer => answer,
        };
    }
    loop {
        if state.shutdown {
            return Answer::Drop;
        }
        if let Some(mut invocation) = state.queue.pop_front() {
            if let Some(distance) = invocation.deadline_after_dispatch {
                invocation = invocation.deadline_ms(epoch_ms() + distance.as_millis() as u64);
            }
            // Deliberately no Content-Type: lure must not rely on it.
            return Answer::Send {
                status: 200,
                headers: invocation.headers,
                body: invocation.body,
            };
        }
        state = shared
            .changed
            .wait(state)
            .unwrap_or_else(|e| e.into_inner());
    }
}

pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}
