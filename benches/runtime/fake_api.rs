//! A lean fake Runtime API that measures as it serves. std only: a thread per
//! connection, HTTP/1.1 keep-alive with `TCP_NODELAY`, each `/next` answered with a
//! reply built once per event and written in one call, nothing logged.
//!
//! It records when the first `/next` arrives (cold ready) and, for each invocation,
//! the round trip from the moment it starts writing the `/next` reply to the moment
//! the whole `/response` POST has been read.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:lure-bench";
const TRACE_ID: &str = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";
const ACCEPTED: &[u8] =
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}";
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
/// The answer to `/next` once the fake is closed: a runtime ends on it, at once.
const GONE: &[u8] =
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// How long a run may go without the runtime answering before the bench gives up.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// The complete HTTP reply to `/next` for one event: status line, the headers Lambda
/// sends (a deadline an hour away) and the body.
pub fn next_reply(event: &[u8]) -> Arc<[u8]> {
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis()
        + 3_600_000;
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\n\
         Content-Type: application/json\r\n\
         Lambda-Runtime-Aws-Request-Id: {REQUEST_ID}\r\n\
         Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n\
         Lambda-Runtime-Invoked-Function-Arn: {FUNCTION_ARN}\r\n\
         Lambda-Runtime-Trace-Id: {TRACE_ID}\r\n\
         Content-Length: {}\r\n\r\n",
        event.len()
    )
    .into_bytes();
    reply.extend_from_slice(event);
    reply.into()
}

/// A batch of invocations of one event. It ends at the first `/next` that finds both
/// `min_time` elapsed and `min_count` invocations answered, or `max_time` elapsed.
#[derive(Clone)]
pub struct Run {
    pub reply: Arc<[u8]>,
    pub min_count: usize,
    pub min_time: Duration,
    pub max_time: Duration,
}

/// What a run measured.
pub struct RunResult {
    /// One round trip per invocation.
    pub round_trips: Vec<Duration>,
    /// From writing the first `/next` reply to reading the last `/response`.
    pub elapsed: Duration,
    /// The body of the first `/response`, to check that the runtime echoed.
    pub first_response: Vec<u8>,
    /// Per invocation, from writing the `/next` reply to the first byte of the
    /// response's body (a streamed response's first chunk).
    pub first_bytes: Vec<Duration>,
}

impl RunResult {
    pub fn throughput(&self) -> f64 {
        self.round_trips.len() as f64 / self.elapsed.as_secs_f64()
    }
}

pub struct FakeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    first_next: Option<Instant>,
    run: Option<Progress>,
    closed: bool,
}

struct Progress {
    run: Run,
    started: Option<Instant>,
    /// When each invocation in flight was handed out, oldest first (one unless
    /// the runtime runs workers: their answers are matched to them in order).
    sent_at: VecDeque<Instant>,
    last_answer: Option<Instant>,
    round_trips: Vec<Duration>,
    first_bytes: Vec<Duration>,
    first_response: Option<Vec<u8>>,
    finished: bool,
}

impl FakeApi {
    pub fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("the listener's address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let accepting = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if accepting.lock().closed {
                    return;
                }
                let shared = accepting.clone();
                thread::spawn(move || {
                    // An error here is the runtime going away (killed): nothing to do.
                    let _ = serve(stream, &shared);
                });
            }
        });
        FakeApi { addr, shared }
    }

    /// `host:port`, as Lambda sets `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// When the first `/next` arrived, waiting up to `timeout` for it.
    pub fn first_next(&self, timeout: Duration) -> Option<Instant> {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, timeout, |s| s.first_next.is_none())
            .expect("the fake's lock");
        state.first_next
    }

    /// Serves `run` to the runtime (which must be waiting on `/next`) until it ends.
    pub fn run(&self, run: Run) -> RunResult {
        let capacity = run.min_count.max(1024);
        let mut state = self.shared.lock();
        state.run = Some(Progress {
            run,
            started: None,
            sent_at: VecDeque::new(),
            last_answer: None,
            round_trips: Vec::with_capacity(capacity),
            first_bytes: Vec::with_capacity(capacity),
            first_response: None,
            finished: false,
        });
        self.shared.changed.notify_all();
        loop {
            let answered = state.run.as_ref().map_or(0, |p| p.round_trips.len());
            let (next, timeout) = self
                .shared
                .changed
                .wait_timeout(state, STALL_LIMIT)
                .expect("the fake's lock");
            state = next;
            let progress = state.run.as_ref().expect("the run in progress");
            if progress.finished {
                break;
            }
            if timeout.timed_out() && progress.round_trips.len() == answered {
                panic!(
                    "the runtime at {} answered nothing for {STALL_LIMIT:?}",
                    self.addr
                );
            }
        }
        let progress = state.run.take().expect("the finished run");
        let elapsed = match (progress.started, progress.last_answer) {
            (Some(started), Some(last)) => last - started,
            _ => Duration::ZERO,
        };
        RunResult {
            round_trips: progress.round_trips,
            elapsed,
            first_response: progress.first_response.unwrap_or_default(),
            first_bytes: progress.first_bytes,
        }
    }

    /// From now on `/next` gets a 500, which ends a runtime.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.close();
        // Wake the accepting thread so that it sees `closed` and ends.
        let _ = TcpStream::connect(self.addr);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("the fake's lock")
    }

    /// A `/next` arrived: the reply to write, once a run has an invocation to give
    /// (`None` when the fake is closing).
    fn next(&self, arrived: Instant) -> Option<Arc<[u8]>> {
        let mut state = self.lock();
        if state.first_next.is_none() {
            state.first_next = Some(arrived);
            self.changed.notify_all();
        }
        loop {
            if state.closed {
                return None;
            }
            if let Some(progress) = state.run.as_mut().filter(|p| !p.finished) {
                let now = Instant::now();
                let started = *progress.started.get_or_insert(now);
                let run = &progress.run;
                let elapsed = now - started;
                let done = (elapsed >= run.min_time && progress.round_trips.len() >= run.min_count)
                    || elapsed >= run.max_time;
                if done {
                    progress.finished = true;
                    self.changed.notify_all();
                } else {
                    progress.sent_at.push_back(now);
                    return Some(run.reply.clone());
                }
            }
            state = self.changed.wait(state).expect("the fake's lock");
        }
    }

    /// A `/response` POST was read completely at `arrived`, its body's first
    /// byte having arrived at `first_byte`.
    fn answer(&self, body: &mut Vec<u8>, first_byte: Instant, arrived: Instant) {
        let mut state = self.lock();
        let Some(progress) = state.run.as_mut() else {
            return;
        };
        let Some(sent_at) = progress.sent_at.pop_front() else {
            return;
        };
        progress.round_trips.push(arrived - sent_at);
        progress.first_bytes.push(first_byte - sent_at);
        progress.last_answer = Some(arrived);
        if progress.first_response.is_none() {
            progress.first_response = Some(std::mem::take(body));
        }
        // No notify: waking the bench's thread per invocation would steal the CPU
        // being measured. It looks at progress when the run ends or stalls.
    }
}

/// One keep-alive connection: requests in order until the runtime hangs up.
fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut request_line = Vec::with_capacity(256);
    let mut header = Vec::with_capacity(256);
    let mut body = Vec::new();
    loop {
        request_line.clear();
        if reader.read_until(b'\n', &mut request_line)? == 0 {
            return Ok(());
        }
        let mut content_length = 0;
        let mut chunked = false;
        loop {
            header.clear();
            if reader.read_until(b'\n', &mut header)? == 0 {
                return Ok(());
            }
            if header == b"\r\n" {
                break;
            }
            if let Some(value) = header_value(&header, b"content-length") {
                content_length = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| io::Error::other("bad Content-Length"))?;
            }
            if header_value(&header, b"transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"))
            {
                chunked = true;
            }
        }
        let first_byte;
        if chunked {
            // A streamed response: chunks, then (trailers and) an empty line.
            body.clear();
            let mut first = None;
            loop {
                header.clear();
                reader.read_until(b'\n', &mut header)?;
                let size = std::str::from_utf8(header.trim_ascii())
                    .ok()
                    .and_then(|s| usize::from_str_radix(s, 16).ok())
                    .ok_or_else(|| io::Error::other("bad chunk size"))?;
                if size == 0 {
                    loop {
                        header.clear();
                        if reader.read_until(b'\n', &mut header)? == 0 || header == b"\r\n" {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                reader.read_exact(&mut body[start..])?;
                first.get_or_insert_with(Instant::now);
                header.clear();
                reader.read_until(b'\n', &mut header)?;
            }
            first_byte = first.unwrap_or_else(Instant::now);
        } else {
            first_byte = Instant::now();
            body.resize(content_length, 0);
            reader.read_exact(&mut body)?;
        }
        let arrived = Instant::now();

        let mut parts = request_line.split(|&b| b == b' ');
        let method = parts.next().unwrap_or_default();
        let path = parts.next().unwrap_or_default();
        if method == b"GET" && path.ends_with(b"/runtime/invocation/next") {
            match shared.next(arrived) {
                Some(reply) => writer.write_all(&reply)?,
                None => return writer.write_all(GONE),
            }
        } else if method == b"POST" && path.ends_with(b"/response") {
            shared.answer(&mut body, first_byte, arrived);
            writer.write_all(ACCEPTED)?;
        } else {
            // An `/error` or `/init/error` means the handler did not echo: the bench
            // reports it rather than timing it.
            let what = String::from_utf8_lossy(&request_line);
            let detail = String::from_utf8_lossy(&body);
            eprintln!(
                "runtime bench: unexpected {}: {detail:.500}",
                what.trim_end()
            );
            writer.write_all(NOT_FOUND)?;
        }
    }
}

/// The value of `line` if it is the header `name` (lower case).
fn header_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let (key, value) = line.split_at(line.iter().position(|&b| b == b':')?);
    key.eq_ignore_ascii_case(name)
        .then(|| value[1..].trim_ascii())
}
