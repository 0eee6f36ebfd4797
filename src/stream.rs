//! Response streaming (SPEC 9): a handler that calls `context:stream()` sends
//! its answer as it writes it, through the [`Sink`] the caller of the engine
//! offered for the invocation (the Runtime API's streamed POST, `lure invoke`'s
//! stdout). The state lives on the invocation's thread, as the deadline's does:
//! the engines and the stdlib reach it without a handle.
//!
//! The caller says once where streams go ([`set_opener`]); then, per invocation:
//! [`offer`] streaming; the script may [`start`] (once: the sink is opened then)
//! and [`write`]; the engine asks [`is_started`] to know how to give its result;
//! [`conclude`] then writes that result as the last chunk, or ends the stream
//! with the error's trailers. An invocation that never started is answered as
//! before, by its caller.

use std::cell::RefCell;
use std::io;

use base64::Engine as _;

use crate::diagnostic::{Diagnostic, error_type};
use crate::json::write_json_string;

/// Lambda's limit for a streamed response, prelude included: 200 MiB.
pub const MAX_STREAM_BYTES: u64 = 200 << 20;

/// The content type of a stream with an HTTP-integration prelude.
pub const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";

/// Where a streamed answer goes.
pub trait Sink {
    /// Begins the answer: its content type, and the prelude (already framed) if any.
    fn start(&mut self, content_type: &str, prelude: Option<&[u8]>) -> io::Result<()>;
    /// Sends one chunk now.
    fn write(&mut self, chunk: &[u8]) -> io::Result<()>;
    /// Ends the answer: completed, or with `error`'s trailers.
    fn finish(&mut self, error: Option<&Diagnostic>) -> io::Result<()>;
}

/// What `context:stream(options)` was given.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Options {
    pub content_type: Option<String>,
    pub status_code: Option<i64>,
    pub headers: Option<Vec<(String, String)>>,
    pub cookies: Option<Vec<String>>,
}

impl Options {
    /// With any of `status_code`, `headers`, `cookies`: the HTTP-integration form.
    fn http_integration(&self) -> bool {
        self.status_code.is_some() || self.headers.is_some() || self.cookies.is_some()
    }

    /// The content type, and the prelude with its 8 zero bytes when there is one.
    pub fn content_type_and_prelude(&self) -> (String, Option<Vec<u8>>) {
        if !self.http_integration() {
            let content_type = self
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into());
            return (content_type, None);
        }
        let mut headers = self.headers.clone().unwrap_or_default();
        if let Some(content_type) = &self.content_type
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("content-type".into(), content_type.clone()));
        }
        let mut prelude = Vec::new();
        prelude.extend_from_slice(b"{\"statusCode\":");
        prelude.extend_from_slice(self.status_code.unwrap_or(200).to_string().as_bytes());
        prelude.extend_from_slice(b",\"headers\":{");
        for (i, (name, value)) in headers.iter().enumerate() {
            if i > 0 {
                prelude.push(b',');
            }
            write_json_string(&mut prelude, name);
            prelude.push(b':');
            write_json_string(&mut prelude, value);
        }
        prelude.extend_from_slice(b"},\"cookies\":[");
        for (i, cookie) in self.cookies.iter().flatten().enumerate() {
            if i > 0 {
                prelude.push(b',');
            }
            write_json_string(&mut prelude, cookie);
        }
        prelude.extend_from_slice(b"]}");
        prelude.extend_from_slice(&[0; 8]);
        (HTTP_INTEGRATION.into(), Some(prelude))
    }
}

/// Opens the sink of a stream, for the invocation with this request id (and this
/// `Lambda-Runtime-Invocation-Id`, when the Runtime API sent one).
pub type Opener = Box<dyn FnMut(&str, Option<&str>) -> Box<dyn Sink>>;

/// The running invocation's stream. Kept for the thread's life and reset per
/// invocation, so that offering streaming costs an invocation that never
/// streams no allocation.
#[derive(Default)]
struct Stream {
    /// Streaming is possible for the running invocation.
    offered: bool,
    request_id: String,
    /// Empty when the invocation has none.
    invocation_id: String,
    /// Open once the script started the stream.
    sink: Option<Box<dyn Sink>>,
    /// Bytes sent so far, prelude included.
    sent: u64,
    /// Why the stream must end in error whatever the script does next (the cap
    /// was passed, the sink failed).
    failure: Option<Diagnostic>,
}

thread_local! {
    static CURRENT: RefCell<Stream> = RefCell::new(Stream::default());
    static OPENER: RefCell<Option<Opener>> = const { RefCell::new(None) };
}

/// Where this thread's invocations stream to: the Runtime API, stdout.
pub fn set_opener(opener: Opener) {
    OPENER.set(Some(opener));
}

/// Makes streaming possible for the invocation `request_id`, about to run.
pub fn offer(request_id: &str, invocation_id: Option<&str>) {
    CURRENT.with_borrow_mut(|stream| {
        stream.offered = true;
        stream.request_id.clear();
        stream.request_id.push_str(request_id);
        stream.invocation_id.clear();
        stream
            .invocation_id
            .push_str(invocation_id.unwrap_or_default());
        stream.sink = None;
        stream.sent = 0;
        stream.failure = None;
    });
}

/// Whether the running invocation streams.
pub fn is_started() -> bool {
    CURRENT.with_borrow(|stream| stream.sink.is_some())
}

/// `context:stream(options)`: begins the answer. The error says why it cannot.
pub fn start(options: &Options) -> Result<(), String> {
    CURRENT.with_borrow_mut(|stream| {
        if !stream.offered {
            return Err("this invocation cannot stream".into());
        }
        if stream.sink.is_some() {
            return Err("the invocation already streams (stream may be called once)".into());
        }
        let invocation_id = Some(stream.invocation_id.as_str()).filter(|id| !id.is_empty());
        let opened = OPENER.with_borrow_mut(|opener| {
            opener
                .as_mut()
                .map(|open| open(&stream.request_id, invocation_id))
        });
        let Some(sink) = opened else {
            return Err("this invocation cannot stream".into());
        };
        let sink = stream.sink.insert(sink);
        let (content_type, prelude) = options.content_type_and_prelude();
        stream.sent = prelude.as_ref().map_or(0, |p| p.len() as u64);
        if let Err(e) = sink.start(&content_type, prelude.as_deref()) {
            return Err(fail(stream, format!("the stream could not start: {e}")));
        }
        Ok(())
    })
}

/// Marks `stream` failed with `message` (a `Runtime.InternalError`: the sink
/// failed, lure cannot deliver the answer; kept for [`conclude`]); returns the
/// message for the script.
fn fail(stream: &mut Stream, message: String) -> String {
    stream
        .failure
        .get_or_insert_with(|| Diagnostic::runtime(error_type::INTERNAL_ERROR, message.clone()));
    message
}

/// `out:write(data)`: sends `data` at once as one chunk (nothing for empty data).
pub fn write(data: &[u8]) -> Result<(), String> {
    CURRENT.with_borrow_mut(|stream| {
        if let Some(failure) = &stream.failure {
            return Err(failure.error_message.clone());
        }
        if !stream.offered || stream.sink.is_none() {
            return Err("the stream is not open (write after the handler returned?)".into());
        }
        if data.is_empty() {
            return Ok(());
        }
        if let Some(too_large) = past_cap(stream.sent, data.len()) {
            let message = too_large.error_message.clone();
            stream.failure = Some(too_large);
            return Err(message);
        }
        stream.sent += data.len() as u64;
        let written = stream.sink.as_mut().map(|sink| sink.write(data));
        match written {
            Some(Err(e)) => Err(fail(stream, format!("the stream broke: {e}"))),
            _ => Ok(()),
        }
    })
}

/// `Function.ResponseSizeTooLarge` when `more` bytes after `sent` would pass
/// Lambda's limit for a stream.
fn past_cap(sent: u64, more: usize) -> Option<Diagnostic> {
    (sent + more as u64 > MAX_STREAM_BYTES).then(|| {
        Diagnostic::runtime(
            error_type::RESPONSE_SIZE_TOO_LARGE,
            format!(
                "the streamed response would pass Lambda's limit of {MAX_STREAM_BYTES} bytes \
                 ({sent} sent, {more} more written)"
            ),
        )
    })
}

/// How a stream ended.
#[derive(Debug)]
pub struct Ended {
    /// The error its trailers carried; `None` when it completed.
    pub error: Option<Diagnostic>,
    /// Whether the sink took the end (a broken connection to the API does not).
    pub sent: io::Result<()>,
}

/// Ends the invocation's stream, if it started: `outcome`'s body is the last
/// chunk, or its error (or the stream's own failure) ends the stream in
/// trailers. `None` when the invocation did not stream: its caller answers it.
/// Streaming is not possible again until the next [`offer`].
pub fn conclude(outcome: &Result<Vec<u8>, Diagnostic>) -> Option<Ended> {
    let (mut sink, sent, failure) = CURRENT.with_borrow_mut(|stream| {
        stream.offered = false;
        Some((stream.sink.take()?, stream.sent, stream.failure.take()))
    })?;
    let mut error = failure;
    if error.is_none() {
        match outcome {
            Ok(body) => {
                error = past_cap(sent, body.len());
                if error.is_none()
                    && !body.is_empty()
                    && let Err(e) = sink.write(body)
                {
                    return Some(Ended {
                        error: None,
                        sent: Err(e),
                    });
                }
            }
            Err(diagnostic) => error = Some(diagnostic.clone()),
        }
    }
    let sent = sink.finish(error.as_ref());
    Some(Ended { error, sent })
}

/// The trailers that end a stream in error: the type, and the base64 of the
/// error's JSON (SPEC 5's shape).
pub fn error_trailers(diagnostic: &Diagnostic) -> [(&'static str, String); 2] {
    [
        (
            "Lambda-Runtime-Function-Error-Type",
            diagnostic.error_type.clone(),
        ),
        (
            "Lambda-Runtime-Function-Error-Body",
            base64::engine::general_purpose::STANDARD.encode(diagnostic.to_json()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    /// A sink that records what it was told.
    struct Recorder(Rc<RefCell<Vec<String>>>);

    impl Sink for Recorder {
        fn start(&mut self, content_type: &str, prelude: Option<&[u8]>) -> io::Result<()> {
            let prelude = prelude.map(|p| String::from_utf8_lossy(p).into_owned());
            self.0
                .borrow_mut()
                .push(format!("start {content_type} {prelude:?}"));
            Ok(())
        }
        fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
            self.0
                .borrow_mut()
                .push(format!("write {}", String::from_utf8_lossy(chunk)));
            Ok(())
        }
        fn finish(&mut self, error: Option<&Diagnostic>) -> io::Result<()> {
            self.0
                .borrow_mut()
                .push(format!("finish {:?}", error.map(|e| &e.error_type)));
            Ok(())
        }
    }

    /// Streams of this thread go to a [`Recorder`] writing into the log returned.
    fn recording() -> Rc<RefCell<Vec<String>>> {
        let log = Rc::new(RefCell::new(Vec::new()));
        let shared = Rc::clone(&log);
        set_opener(Box::new(move |_, _| Box::new(Recorder(Rc::clone(&shared)))));
        log
    }

    fn recorded(run: impl FnOnce() -> Result<Vec<u8>, Diagnostic>) -> Vec<String> {
        let log = recording();
        offer("r1", None);
        let outcome = run();
        if let Some(ended) = conclude(&outcome) {
            ended.sent.unwrap();
        }
        log.take()
    }

    #[test]
    fn chunks_go_out_as_written_then_the_result_then_the_end() {
        let log = recorded(|| {
            start(&Options::default()).unwrap();
            write(b"a").unwrap();
            write(b"").unwrap();
            write(b"b").unwrap();
            Ok(b"last".to_vec())
        });
        assert_eq!(
            log,
            [
                "start application/octet-stream None",
                "write a",
                "write b",
                "write last",
                "finish None"
            ]
        );
    }

    #[test]
    fn an_invocation_that_does_not_stream_is_left_to_its_caller() {
        let _log = recording();
        offer("r1", None);
        assert!(!is_started());
        assert!(conclude(&Ok(b"{}".to_vec())).is_none());
        assert!(
            start(&Options::default()).is_err(),
            "no stream after conclude"
        );
    }

    #[test]
    fn an_error_after_streaming_began_ends_in_its_trailers() {
        let log = recorded(|| {
            start(&Options::default()).unwrap();
            write(b"partial").unwrap();
            Err(Diagnostic::timeout(std::time::Duration::from_secs(1)))
        });
        assert_eq!(log.last().unwrap(), "finish Some(\"Runtime.Timeout\")");
        let trailers = error_trailers(&Diagnostic::runtime("Runtime.Timeout", "late"));
        assert_eq!(
            trailers[0],
            (
                "Lambda-Runtime-Function-Error-Type",
                "Runtime.Timeout".into()
            )
        );
        let body = base64::engine::general_purpose::STANDARD
            .decode(&trailers[1].1)
            .unwrap();
        assert!(
            String::from_utf8(body)
                .unwrap()
                .contains("\"errorMessage\":\"late\"")
        );
    }

    #[test]
    fn stream_may_be_called_once() {
        let log = recorded(|| {
            start(&Options::default()).unwrap();
            assert!(start(&Options::default()).unwrap_err().contains("once"));
            Ok(Vec::new())
        });
        assert_eq!(log.len(), 2);
    }

    #[test]
    fn passing_the_cap_fails_the_stream_even_if_the_script_goes_on() {
        let big = vec![b'x'; 1 << 20];
        let log = recorded(|| {
            start(&Options::default()).unwrap();
            for _ in 0..200 {
                write(&big).unwrap();
            }
            assert!(write(b"one more").unwrap_err().contains("limit"));
            Ok(Vec::new())
        });
        assert_eq!(log.len(), 202);
        assert_eq!(
            log.last().unwrap(),
            "finish Some(\"Function.ResponseSizeTooLarge\")"
        );
    }

    #[test]
    fn http_integration_options_make_a_prelude() {
        let options = Options {
            content_type: Some("text/html".into()),
            status_code: Some(201),
            headers: Some(vec![("x-a".into(), "1".into())]),
            cookies: Some(vec!["s=1; Secure".into()]),
        };
        let (content_type, prelude) = options.content_type_and_prelude();
        assert_eq!(content_type, HTTP_INTEGRATION);
        let prelude = prelude.unwrap();
        let (json, zeros) = prelude.split_at(prelude.len() - 8);
        assert_eq!(zeros, [0; 8]);
        assert_eq!(
            std::str::from_utf8(json).unwrap(),
            r#"{"statusCode":201,"headers":{"x-a":"1","content-type":"text/html"},"cookies":["s=1; Secure"]}"#
        );
        let plain = Options {
            status_code: Some(200),
            ..Options::default()
        };
        let (_, prelude) = plain.content_type_and_prelude();
        assert!(
            prelude
                .unwrap()
                .starts_with(br#"{"statusCode":200,"headers":{},"cookies":[]}"#)
        );
    }
}
