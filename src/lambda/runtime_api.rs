//! The Lambda Runtime API (2018-06-01) client, on blocking `ureq`: one keep-alive
//! connection for the life of the process, no timeout on the long-polled `/next`.

use std::borrow::Cow;
use std::io;
use std::thread::sleep;
use std::time::{Duration, Instant};

use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, NextTimeout, TcpConnector, Transport,
};

use crate::context::header;
use crate::diagnostic::Diagnostic;
use crate::limits::{MAX_RESPONSE_BYTES, response_too_large};

/// Larger than any event Lambda sends (6 MB synchronous), so a full read always fits.
const MAX_EVENT_BYTES: u64 = 64 * 1024 * 1024;

/// ureq's buffers for the connection (its default: 128 KB each, zeroed when the
/// connection opens). Bodies stream through them, so a smaller buffer only means
/// more reads of a large event; it saves a quarter megabyte of page faults at start.
const IO_BUFFER_BYTES: usize = 32 * 1024;

/// While the API is not yet listening at start, keep trying at least this long.
const STARTUP_PATIENCE: Duration = Duration::from_secs(15);

/// Attempts for a POST that meets a transient fault (dropped connection, 5xx).
const POST_ATTEMPTS: u32 = 6;

const ERROR_CONTENT_TYPE: &str = "application/vnd.aws.lambda.error+json";

/// One invocation as received from `/next`.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// Every `Lambda-Runtime-*` header, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Invocation {
    /// `Lambda-Runtime-Invocation-Id`, to send back with the answer (SPEC 3).
    pub fn invocation_id(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name == header::INVOCATION_ID)
            .map(|(_, value)| value.as_str())
    }
}

/// What lure sends to the Runtime API; each variant names its endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Post<'a> {
    /// `POST /runtime/invocation/{id}/response`
    Response {
        invocation: &'a Invocation,
        body: &'a [u8],
    },
    /// `POST /runtime/invocation/{id}/error`
    Error {
        invocation: &'a Invocation,
        diagnostic: &'a Diagnostic,
    },
    /// `POST /runtime/init/error`
    InitError { diagnostic: &'a Diagnostic },
}

/// The Runtime API could not be used; the process should end.
#[derive(Debug)]
pub enum ApiError {
    /// `AWS_LAMBDA_RUNTIME_API` is not a usable address.
    BadAddress(String),
    /// The API answered with a status that means the environment is broken.
    Status { path: String, status: u16 },
    /// The connection failed and retries did not help.
    Transport { path: String, error: ureq::Error },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::BadAddress(why) => write!(f, "bad AWS_LAMBDA_RUNTIME_API: {why}"),
            ApiError::Status { path, status } => {
                write!(f, "Runtime API answered {status} to {path}")
            }
            ApiError::Transport { path, error } => {
                write!(f, "Runtime API unreachable at {path}: {error}")
            }
        }
    }
}

impl std::error::Error for ApiError {}

pub struct RuntimeApi {
    agent: ureq::Agent,
    /// `http://host:port[/prefix]/2018-06-01`
    base: String,
}

impl RuntimeApi {
    /// Accepts `host:port` (as Lambda sets it) or a URL with a scheme and a path
    /// prefix (`http://[::1]:9000/.rt`, as cargo-lambda's emulator sets it).
    pub fn new(address: &str) -> Result<Self, ApiError> {
        let address = address.trim().trim_end_matches('/');
        if address.is_empty() {
            return Err(ApiError::BadAddress("it is empty".into()));
        }
        let base = if let Some(rest) = address.strip_prefix("http://") {
            format!("http://{rest}/2018-06-01")
        } else if address.contains("://") {
            return Err(ApiError::BadAddress(format!(
                "'{address}': only http:// is supported"
            )));
        } else {
            format!("http://{address}/2018-06-01")
        };
        base.parse::<ureq::http::Uri>()
            .map_err(|e| ApiError::BadAddress(format!("'{address}': {e}")))?;
        Ok(Self::with_base(base))
    }

    /// Another client of the same API, with a connection of its own (a worker's).
    pub fn again(&self) -> RuntimeApi {
        Self::with_base(self.base.clone())
    }

    fn with_base(base: String) -> RuntimeApi {
        let agent = ureq::Agent::with_parts(
            ureq::Agent::config_builder()
                // The Runtime API is local to the sandbox: proxy variables the
                // function sets are for its own calls (SPEC 3), never for this one.
                .proxy(None)
                .http_status_as_error(false)
                .max_redirects(0)
                .user_agent(concat!("lure/", env!("CARGO_PKG_VERSION")))
                .input_buffer_size(IO_BUFFER_BYTES)
                .output_buffer_size(IO_BUFFER_BYTES)
                .build(),
            UnprobedTcp(TcpConnector::default()),
            DefaultResolver::default(),
        );
        RuntimeApi { agent, base }
    }

    /// Opens the streamed answer of an invocation, when its handler streams.
    pub fn stream_opener(&self) -> crate::stream::Opener {
        let base = self.base.clone();
        Box::new(move |request_id, invocation_id| {
            Box::new(super::stream_post::ApiStream::new(
                &base,
                request_id,
                invocation_id,
            ))
        })
    }

    /// `GET /runtime/invocation/next`: blocks until Lambda has an invocation.
    pub fn next(&self) -> Result<Invocation, ApiError> {
        let path = "/runtime/invocation/next";
        let url = format!("{}{path}", self.base);
        let started = Instant::now();
        let mut backoff = Backoff::new();
        loop {
            match self.agent.get(&url).call() {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let body = read_event(response.body_mut());
                    if status != 200 {
                        return Err(ApiError::Status {
                            path: path.into(),
                            status,
                        });
                    }
                    let body = match body {
                        Ok(body) => body,
                        Err(e) if is_transient(&e) => {
                            backoff.wait();
                            continue;
                        }
                        Err(error) => {
                            return Err(ApiError::Transport {
                                path: path.into(),
                                error,
                            });
                        }
                    };
                    let headers: Vec<(String, String)> = response
                        .headers()
                        .iter()
                        .filter(|(name, _)| name.as_str().starts_with("lambda-runtime-"))
                        .map(|(name, value)| {
                            (
                                name.as_str().to_owned(),
                                String::from_utf8_lossy(value.as_bytes()).into_owned(),
                            )
                        })
                        .collect();
                    let request_id = headers
                        .iter()
                        .find(|(k, _)| k == header::REQUEST_ID)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    return Ok(Invocation {
                        request_id,
                        headers,
                        body,
                    });
                }
                Err(e) if is_transient(&e) && started.elapsed() < STARTUP_PATIENCE => {
                    backoff.wait();
                }
                Err(error) => {
                    return Err(ApiError::Transport {
                        path: path.into(),
                        error,
                    });
                }
            }
        }
    }

    /// Sends a response or an error. Transient faults are retried; a 400 on a retry
    /// means an earlier attempt was accepted. Returns the final HTTP status.
    pub fn post(&self, post: Post<'_>) -> Result<u16, ApiError> {
        let (path, body, content_type, error_header, invocation_id) = match post {
            Post::Response { invocation, body } => (
                format!("/runtime/invocation/{}/response", invocation.request_id),
                Cow::Borrowed(body),
                "application/json",
                None,
                invocation.invocation_id(),
            ),
            Post::Error {
                invocation,
                diagnostic,
            } => (
                format!("/runtime/invocation/{}/error", invocation.request_id),
                Cow::Owned(diagnostic.to_json()),
                ERROR_CONTENT_TYPE,
                diagnostic
                    .from_runtime
                    .then_some(diagnostic.error_type.as_str()),
                invocation.invocation_id(),
            ),
            Post::InitError { diagnostic } => (
                "/runtime/init/error".to_owned(),
                Cow::Owned(diagnostic.to_json()),
                ERROR_CONTENT_TYPE,
                Some(diagnostic.error_type.as_str()),
                None,
            ),
        };
        let url = format!("{}{path}", self.base);
        let mut backoff = Backoff::new();
        for attempt in 1..=POST_ATTEMPTS {
            let mut request = self.agent.post(&url).header("Content-Type", content_type);
            if let Some(kind) = error_header {
                request = request.header(header::FUNCTION_ERROR_TYPE, kind);
            }
            if let Some(id) = invocation_id {
                request = request.header(header::INVOCATION_ID, id);
            }
            let last = attempt == POST_ATTEMPTS;
            match request.send(&body[..]) {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    // Read the whole reply (202s too): only then is the connection reused.
                    let _ = response.body_mut().read_to_vec();
                    match status {
                        400 if attempt > 1 => return Ok(202),
                        500..=599 if !last => backoff.wait(),
                        _ => return Ok(status),
                    }
                }
                Err(e) if is_transient(&e) && !last => backoff.wait(),
                Err(error) => return Err(ApiError::Transport { path, error }),
            }
        }
        unreachable!("the last attempt always returns")
    }

    /// Answers an invocation exactly once: the response, or an error. A 413 for the
    /// response is answered with `Function.ResponseSizeTooLarge`.
    pub fn answer(
        &self,
        invocation: &Invocation,
        outcome: &Result<Vec<u8>, Diagnostic>,
    ) -> Result<(), ApiError> {
        let status = match outcome {
            Ok(body) => self.post(Post::Response { invocation, body })?,
            Err(diagnostic) => self.post(Post::Error {
                invocation,
                diagnostic,
            })?,
        };
        if status == 413 && outcome.is_ok() {
            let size = outcome.as_ref().map(Vec::len).unwrap_or(0);
            let diagnostic = response_too_large(size, MAX_RESPONSE_BYTES);
            self.post(Post::Error {
                invocation,
                diagnostic: &diagnostic,
            })?;
        } else if !(200..300).contains(&status) {
            crate::log::write(
                crate::log::Level::Error,
                &format!(
                    "Runtime API answered {status} for invocation {}",
                    invocation.request_id
                ),
            );
        }
        Ok(())
    }
}

/// ureq's TCP connector, without the probe of a pooled connection before and after
/// each request (a non-blocking read between two `ioctl`s: 12 of the 17 system calls
/// of an invocation). The Runtime API keeps its connection open; if it has closed it
/// anyway, the request fails before reaching it, as a dropped connection, and is
/// retried on a new one (see [`is_transient`]).
#[derive(Debug)]
struct UnprobedTcp(TcpConnector);

impl Connector for UnprobedTcp {
    type Out = Unprobed<<TcpConnector as Connector>::Out>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(self.0.connect(details, chained)?.map(Unprobed))
    }
}

/// A transport that reports itself open without looking: see [`UnprobedTcp`].
#[derive(Debug)]
struct Unprobed<T>(T);

impl<T: Transport> Transport for Unprobed<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.0.transmit_output(amount, timeout)
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.0.maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.0.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        true
    }
}

/// The event body, in a buffer of its announced length (not grown as it arrives).
fn read_event(body: &mut ureq::Body) -> Result<Vec<u8>, ureq::Error> {
    use std::io::Read;
    let announced = body.content_length().unwrap_or(0).min(MAX_EVENT_BYTES);
    let mut event = Vec::with_capacity(announced as usize);
    body.with_config()
        .limit(MAX_EVENT_BYTES)
        .reader()
        .read_to_end(&mut event)?;
    Ok(event)
}

/// Connection-level faults worth another try: refused (API not up yet),
/// reset or dropped (API restarted, stale keep-alive connection).
fn is_transient(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::NotConnected
        ),
        ureq::Error::ConnectionFailed | ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Exponential backoff from 5 ms, capped at 500 ms.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(5))
    }

    fn wait(&mut self) {
        sleep(self.0);
        self.0 = (self.0 * 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_and_without_scheme() {
        assert_eq!(
            RuntimeApi::new("127.0.0.1:9001").unwrap().base,
            "http://127.0.0.1:9001/2018-06-01"
        );
        assert_eq!(
            RuntimeApi::new("http://[::1]:9000/.rt").unwrap().base,
            "http://[::1]:9000/.rt/2018-06-01"
        );
        assert!(RuntimeApi::new("").is_err());
        assert!(RuntimeApi::new("https://x:1").is_err());
    }
}
