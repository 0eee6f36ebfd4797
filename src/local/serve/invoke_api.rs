//! The Lambda Invoke APIs as `lure serve` offers them:
//! `POST /2015-03-31/functions/{name}/invocations` (Invoke) and
//! `POST /2021-11-15/functions/{name}/response-streaming-invocations`
//! (InvokeWithResponseStream), with the headers the AWS SDKs, the AWS CLI and the
//! Runtime Interface Emulator's users send and read; every other request is a
//! Function URL request (`function_url`).
//!
//! Guards (SPEC 10): a request whose `Host` is not this machine is refused (a web
//! page cannot reach serve by DNS rebinding), and the Invoke APIs refuse any
//! request with an `Origin` (only browsers send one): a page the developer visits
//! cannot run their function with their credentials, nor read its answers.

use std::io::Read;
use std::sync::mpsc::{SendError, Sender};

use tiny_http::{Method, Request, Response, Server};

use crate::local::report::new_request_id;

use super::console::{self, Console};
use super::dispatcher::{Caller, Job, Message};
use super::function_url::{self, Incoming};
use crate::stdlib::base64;

/// Lambda's limit for a synchronous invocation's payload.
const MAX_PAYLOAD_BYTES: u64 = crate::limits::MAX_EVENT_BYTES as u64;

/// The two APIs' paths: before and after the function's name.
const INVOKE_PATH: (&str, &str) = ("/2015-03-31/functions/", "/invocations");
const STREAM_PATH: (&str, &str) = ("/2021-11-15/functions/", "/response-streaming-invocations");

pub mod header {
    pub const INVOCATION_TYPE: &str = "X-Amz-Invocation-Type";
    pub const LOG_TYPE: &str = "X-Amz-Log-Type";
    pub const CLIENT_CONTEXT: &str = "X-Amz-Client-Context";
    pub const LOG_RESULT: &str = "X-Amz-Log-Result";
    pub const FUNCTION_ERROR: &str = "X-Amz-Function-Error";
    pub const EXECUTED_VERSION: &str = "X-Amz-Executed-Version";
    pub const REQUEST_ID: &str = "X-Amzn-RequestId";
    pub const ERROR_TYPE: &str = "X-Amzn-ErrorType";
}

/// Who serve is, for the requests it takes.
pub struct Site {
    /// The names and addresses a request's `Host` may name: loopback ones and
    /// serve's own address.
    pub own_hosts: Vec<String>,
    /// The function's name and region, for Function URL events.
    pub function_name: String,
    pub region: String,
    pub console: Console,
}

impl Site {
    /// Whether `host` (a `Host` header, port included) names this machine.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return true; // HTTP/1.0: no browser sends such a request
        };
        let (name, _) = host_parts(host);
        name == "localhost"
            || name.ends_with(".localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
            || self
                .own_hosts
                .iter()
                .any(|own| own.eq_ignore_ascii_case(&name))
    }
}

/// A `Host` header's name (lower case; an IPv6 address without its brackets) and
/// its port, when it gives one.
pub fn host_parts(host: &str) -> (String, Option<&str>) {
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => {
            let (name, rest) = v6.split_once(']').unwrap_or((v6, ""));
            (name, rest.strip_prefix(':'))
        }
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    (name.to_ascii_lowercase(), port)
}

/// Accepts requests until the process ends, handing invocations to the dispatcher
/// in the order they arrive; answers `Event` and `DryRun` invocations at once.
pub fn run(server: &Server, dispatcher: &Sender<Message>, site: &Site) {
    for request in server.incoming_requests() {
        accept(request, dispatcher, site);
    }
}

fn accept(mut request: Request, dispatcher: &Sender<Message>, site: &Site) {
    if !site.allows(header_value(&request, "Host")) {
        let message = format!(
            "Host {:?} is not this machine: lure serve answers requests to localhost or its own address",
            header_value(&request, "Host").unwrap_or_default()
        );
        return api_error(request, 403, "AccessDeniedException", &message);
    }
    let is_post = *request.method() == Method::Post;
    let (invoked_as, streaming) = match (
        function_name(request.url(), INVOKE_PATH),
        function_name(request.url(), STREAM_PATH),
    ) {
        (Some(name), _) if is_post => (name, false),
        (_, Some(name)) if is_post => (name, true),
        _ => return function_url_request(request, dispatcher, site),
    };
    if header_value(&request, "Origin").is_some() {
        let message = "The Invoke API does not answer web pages (the request has an Origin header): \
                       call it from curl, the AWS CLI or an SDK, or call the function through its URL path";
        return api_error(request, 403, "AccessDeniedException", message);
    }
    let kind = header_value(&request, header::INVOCATION_TYPE).unwrap_or("RequestResponse");
    let kinds: &[&str] = if streaming {
        &["RequestResponse", "DryRun"]
    } else {
        &["Event", "RequestResponse", "DryRun"]
    };
    if !kinds.contains(&kind) {
        let message = format!(
            "1 validation error detected: Value '{kind}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            kinds.join(", ")
        );
        return api_error(request, 400, "ValidationException", &message);
    }
    let kind = kind.to_owned();
    let tail = header_value(&request, header::LOG_TYPE) == Some("Tail");
    let client_context = match header_value(&request, header::CLIENT_CONTEXT) {
        None => None,
        Some(encoded) => match decode_client_context(encoded) {
            Some(json) => Some(json),
            None => {
                let message = "Client context must be a valid Base64-encoded JSON object.";
                return api_error(request, 400, "InvalidRequestContentException", message);
            }
        },
    };

    let mut event = match read_body(&mut request) {
        Ok(event) => event,
        Err((status, error_type, message)) => {
            return api_error(request, status, error_type, &message);
        }
    };
    // `aws lambda invoke` without `--payload`, or `curl -X POST`: Lambda's `{}`.
    if event.iter().all(u8::is_ascii_whitespace) {
        event = b"{}".to_vec();
    }

    let request_id = new_request_id();
    let mut job = Job {
        request_id: request_id.clone(),
        invoked_as,
        event,
        client_context,
        tail,
        caller: Caller::Nobody,
        arrived: std::time::Instant::now(),
    };
    match kind.as_str() {
        "DryRun" => respond(request, Response::empty(204), &request_id),
        "Event" => {
            // Queued before the 202 goes out, so a later request from the same
            // client is always served after it.
            let queued = dispatcher.send(Message::Invoke(job)).is_ok();
            let status = if queued { 202 } else { 500 };
            respond(request, Response::empty(status), &request_id);
        }
        _ => {
            job.caller = if streaming {
                Caller::Stream(request)
            } else {
                Caller::Invoke(request)
            };
            if let Err(SendError(Message::Invoke(job))) = dispatcher.send(Message::Invoke(job))
                && let Caller::Invoke(caller) | Caller::Stream(caller) = job.caller
            {
                api_error(
                    caller,
                    500,
                    "ServiceException",
                    "lure serve is shutting down",
                );
            }
        }
    }
}

/// Any other request: a Function URL request, the event made of it.
fn function_url_request(mut request: Request, dispatcher: &Sender<Message>, site: &Site) {
    if console::owns(request.url().split('?').next().unwrap_or("")) {
        return console::handle(&site.console, site, request, dispatcher);
    }
    let body = match read_body(&mut request) {
        Ok(body) => body,
        Err((status, error_type, message)) => {
            return api_error(request, status, error_type, &message);
        }
    };
    let request_id = new_request_id();
    let incoming = Incoming::of(&request, body);
    let event = function_url::event(&incoming, &request_id, &site.function_name, &site.region);
    let job = Job {
        request_id,
        invoked_as: site.function_name.clone(),
        event: event.to_string().into_bytes(),
        client_context: None,
        tail: false,
        caller: Caller::Url(request),
        arrived: std::time::Instant::now(),
    };
    if let Err(SendError(Message::Invoke(job))) = dispatcher.send(Message::Invoke(job))
        && let Caller::Url(caller) = job.caller
    {
        function_url::respond(caller, function_url::function_error(), "");
    }
}

/// The request's body, or why it is refused (status, error type, message): it
/// could not be read, or it is larger than Lambda takes.
fn read_body(request: &mut Request) -> Result<Vec<u8>, (u16, &'static str, String)> {
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_PAYLOAD_BYTES + 1)
        .read_to_end(&mut body);
    if let Err(e) = read {
        let message = format!("Could not read the request body: {e}");
        return Err((400, "InvalidRequestContentException", message));
    }
    if body.len() as u64 > MAX_PAYLOAD_BYTES {
        let message = format!(
            "Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation"
        );
        return Err((413, "RequestTooLargeException", message));
    }
    Ok(body)
}

/// `{name}` from `/2015-03-31/functions/{name}/invocations[?Qualifier=…]` (or the
/// streaming API's path), percent-decoded (the SDKs encode the `:` of an ARN).
fn function_name(url: &str, (prefix, suffix): (&str, &str)) -> Option<String> {
    let path = url.split('?').next()?;
    let name = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
    let name = percent_decode(name)?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// The client context as the runtime receives it: the decoded JSON object's text.
fn decode_client_context(encoded: &str) -> Option<String> {
    let json = String::from_utf8(base64::decode(encoded.trim().as_bytes()).ok()?).ok()?;
    let value: serde_json::Value = serde_json::from_str(&json).ok()?;
    value.is_object().then_some(json)
}

pub fn header_value<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().trim())
}

/// A `tiny_http` header from text that is known to be valid (ASCII, no newlines).
pub fn http_header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|()| panic!("invalid header {name}: {value:?}"))
}

fn respond<R: Read>(request: Request, response: Response<R>, request_id: &str) {
    // A caller that went away is no concern of the function's.
    let _ = request.respond(response.with_header(http_header(header::REQUEST_ID, request_id)));
}

/// An error of the Invoke API itself, in the shape the AWS SDKs parse.
fn api_error(request: Request, status: u16, error_type: &str, message: &str) {
    let mut body = br#"{"Type":"User","message":"#.to_vec();
    crate::json::write_json_string(&mut body, message);
    body.push(b'}');
    let response = Response::from_data(body)
        .with_status_code(status)
        .with_chunked_threshold(usize::MAX)
        .with_header(http_header("Content-Type", "application/json"))
        .with_header(http_header(header::ERROR_TYPE, error_type));
    respond(request, response, &new_request_id());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_come_from_the_invoke_path() {
        let name = |url| function_name(url, INVOKE_PATH);
        assert_eq!(
            name("/2015-03-31/functions/function/invocations").as_deref(),
            Some("function")
        );
        assert_eq!(
            name("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Ax/invocations?Qualifier=1")
                .as_deref(),
            Some("arn:aws:lambda:us-east-1:1:function:x")
        );
        assert_eq!(name("/2015-03-31/functions//invocations"), None);
        assert_eq!(name("/2015-03-31/functions/a/b/invocations"), None);
        assert_eq!(name("/invocations"), None);
        assert_eq!(
            function_name(
                "/2021-11-15/functions/f/response-streaming-invocations",
                STREAM_PATH
            )
            .as_deref(),
            Some("f")
        );
    }

    #[test]
    fn client_context_must_be_base64_json_object() {
        let encoded = base64::encode(br#"{"custom":{"k":"v"}}"#);
        assert_eq!(
            decode_client_context(&encoded).as_deref(),
            Some(r#"{"custom":{"k":"v"}}"#)
        );
        assert_eq!(decode_client_context(&base64::encode(b"[1]")), None);
        assert_eq!(decode_client_context("not base64!"), None);
    }
}
