//! A service client (SPEC 7.4): where to send (region, endpoint), with which
//! credentials, and [`Client::send`] for any operation of the JSON- and
//! query-protocol services and S3's object operations; each call signed,
//! retried as the SDKs' standard mode does, and bounded by the deadline.

use std::time::Duration;

use super::service::{self, Protocol, Service};
use super::sigv4::{self, Credentials, Options, Scope, Time};
use super::{credentials, query, s3, var, xml};
use crate::deadline;
use crate::http;
use crate::stdlib::binding::Value;

/// Attempts at most, the first included (standard mode).
const MAX_ATTEMPTS: u32 = 3;

/// The X-Ray trace header a call carries on Lambda.
const TRACE_HEADER: &str = "x-amzn-trace-id";

/// The longest wait between attempts (standard mode).
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// One attempt's time at most (the deadline bounds it further); SQS's long
/// polls last up to 20 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Statuses retried whatever the error code.
const RETRIED_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// Error codes retried (timeouts and throttling): the whole of standard mode's list.
const RETRIED_CODES: [&str; 16] = [
    "RequestTimeout",
    "RequestTimeoutException",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// What `aws.client` was given.
#[derive(Debug, Default)]
pub struct Config {
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub credentials: Option<Credentials>,
}

#[derive(Debug)]
pub struct Client {
    pub service: &'static Service,
    pub region: String,
    /// The endpoint's URL, without a trailing `/`.
    pub endpoint: String,
    /// Given (option or variable) rather than AWS's: S3 then addresses buckets
    /// by path.
    pub custom_endpoint: bool,
    /// Given to `aws.client`; else the function's, read at each call.
    credentials: Option<Credentials>,
}

/// An error AWS answered: its code, message, HTTP status and request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub code: String,
    pub message: String,
    pub status: u16,
    pub request_id: String,
}

/// Why a call has no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The service answered with an error.
    Service(ServiceError),
    /// No answer (after the retries): the `Http.*` error.
    Http(http::ErrorKind, String),
    /// The invocation's stop came first.
    Deadline,
    /// The call could not be made: bad parameters, no credentials, an
    /// unknown operation.
    Invalid(String),
}

impl From<http::Failure> for Failure {
    fn from(failure: http::Failure) -> Self {
        match failure {
            http::Failure::Http(kind, message) => Failure::Http(kind, message),
            http::Failure::Deadline => Failure::Deadline,
        }
    }
}

/// A request before it is signed.
pub struct Prepared {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Client {
    /// A client for the service boto3 calls `name`; the error says what is missing.
    pub fn new(name: &str, config: Config) -> Result<Client, String> {
        let service = service::lookup(name)
            .ok_or_else(|| format!("unknown service {name:?} (known: {})", service::names()))?;
        let region = super::region(config.region)?;
        let custom = config
            .endpoint
            .or_else(|| var(&service.endpoint_variable()))
            .or_else(|| var("AWS_ENDPOINT_URL"));
        let endpoint = match &custom {
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("the endpoint {url:?} is not an http(s) URL"));
                }
                url.trim_end_matches('/').to_owned()
            }
            None => service.public_endpoint(&region),
        };
        Ok(Client {
            service,
            region,
            endpoint,
            custom_endpoint: custom.is_some(),
            credentials: config.credentials,
        })
    }

    /// Runs `operation` with `params` (the service's own names), reading at most
    /// `max_body_bytes` of the answer.
    pub fn send(
        &self,
        operation: &str,
        params: &Value,
        max_body_bytes: u64,
    ) -> Result<Value, Failure> {
        if operation.is_empty() || !operation.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Failure::Invalid(format!(
                "{operation:?} is not an operation name (PascalCase, as in the API reference)"
            )));
        }
        match self.service.protocol {
            Protocol::Json {
                version,
                target_prefix,
            } => {
                let body = serde_json::to_vec(&to_json(params).map_err(Failure::Invalid)?)
                    .map_err(|e| Failure::Invalid(e.to_string()))?;
                let prepared = Prepared {
                    method: "POST",
                    url: format!("{}/", self.endpoint),
                    headers: vec![
                        (
                            "content-type".into(),
                            format!("application/x-amz-json-{version}"),
                        ),
                        (
                            "x-amz-target".into(),
                            format!("{target_prefix}.{operation}"),
                        ),
                    ],
                    body,
                };
                let response = self.call(&prepared, max_body_bytes)?;
                if response.body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Value::Map(Vec::new()));
                }
                let json: serde_json::Value =
                    serde_json::from_slice(&response.body).map_err(|e| {
                        Failure::Invalid(format!("{operation}: the answer is not JSON ({e})"))
                    })?;
                Ok(from_json(json))
            }
            Protocol::Query { api_version } => {
                let body = query::body(operation, api_version, params).map_err(Failure::Invalid)?;
                let prepared = Prepared {
                    method: "POST",
                    url: format!("{}/", self.endpoint),
                    headers: vec![(
                        "content-type".into(),
                        "application/x-www-form-urlencoded; charset=utf-8".into(),
                    )],
                    body: body.into_bytes(),
                };
                let response = self.call(&prepared, max_body_bytes)?;
                let text = String::from_utf8_lossy(&response.body);
                xml::query_result(&text, operation)
                    .map_err(|e| Failure::Invalid(format!("{operation}: {e}")))
            }
            Protocol::RestXml => s3::send(self, operation, params, max_body_bytes),
        }
    }

    /// Sends `prepared`, signed afresh for each attempt, retrying what standard
    /// mode retries while the deadline allows; an error status is a [`Failure::Service`].
    pub fn call(
        &self,
        prepared: &Prepared,
        max_body_bytes: u64,
    ) -> Result<http::Response, Failure> {
        let mut attempt = 1;
        loop {
            let result = self.attempt(prepared, max_body_bytes);
            let retry = match &result {
                Ok(_) => false,
                Err(Failure::Service(e)) => {
                    RETRIED_STATUSES.contains(&e.status) || RETRIED_CODES.contains(&e.code.as_str())
                }
                Err(Failure::Http(kind, _)) => {
                    matches!(
                        kind,
                        http::ErrorKind::ConnectError | http::ErrorKind::Timeout
                    )
                }
                Err(Failure::Deadline | Failure::Invalid(_)) => false,
            };
            if !retry || attempt == MAX_ATTEMPTS {
                return result;
            }
            // Full jitter: a random wait up to 100 ms × 2^(attempt − 1), at most 20 s.
            let cap = Duration::from_millis(100 * (1 << (attempt - 1))).min(MAX_BACKOFF);
            let wait = cap.mul_f64(random_fraction());
            if deadline::time_left().is_some_and(|left| left <= wait) {
                // Waiting would reach the stop: the error stands.
                return result;
            }
            if !deadline::wait(wait) {
                return Err(Failure::Deadline);
            }
            attempt += 1;
        }
    }

    fn attempt(&self, prepared: &Prepared, max_body_bytes: u64) -> Result<http::Response, Failure> {
        let credentials = match &self.credentials {
            Some(given) => given.clone(),
            None => credentials::current().map_err(Failure::Invalid)?,
        };
        let scope = Scope {
            service: self.service.signing_name,
            region: &self.region,
            time: Time::now(),
        };
        let options = Options::for_service(self.service.signing_name);
        let request = sigv4::Request {
            method: prepared.method,
            url: &prepared.url,
            headers: &prepared.headers,
            body: &prepared.body,
        };
        let signed =
            sigv4::sign(&request, &credentials, &scope, &options).map_err(Failure::Invalid)?;
        let mut headers = prepared.headers.clone();
        headers.extend(signed.headers);
        // The invocation's trace header, as the AWS SDKs' recursion detection sends
        // it on Lambda (unsigned: a tracing proxy may rewrite it).
        if let Some(trace_id) = crate::context::running_trace_id()
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case(TRACE_HEADER))
        {
            headers.push((TRACE_HEADER.to_owned(), trace_id));
        }
        let response = http::send(&http::Request {
            method: prepared.method.to_owned(),
            url: prepared.url.clone(),
            headers,
            body: (!prepared.body.is_empty() || prepared.method != "GET")
                .then(|| prepared.body.clone()),
            timeout: ATTEMPT_TIMEOUT,
            follow_redirects: false,
            max_body_bytes,
        })?;
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(Failure::Service(service_error(&response)))
        }
    }
}

/// The error in an answer whose status is not 2xx, whether its body is JSON or XML.
pub fn service_error(response: &http::Response) -> ServiceError {
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.first().cloned())
    };
    let mut code = String::new();
    let mut message = String::new();
    let mut request_id = header("x-amzn-requestid").or_else(|| header("x-amz-request-id"));
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&response.body) {
        let text = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| json[*n].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        code = text(&["__type", "code", "Code"]);
        message = text(&["message", "Message", "errorMessage"]);
    } else if let Some(error) = xml::error(&String::from_utf8_lossy(&response.body)) {
        code = error.code;
        message = error.message;
        request_id = request_id.or(error.request_id);
    }
    // A query-compatible JSON service (SQS) names the query protocol's code too.
    if let Some(query_code) = header("x-amzn-query-error").and_then(|v| {
        v.split(';')
            .next()
            .map(str::to_owned)
            .filter(|c| !c.is_empty())
    }) {
        code = query_code;
    }
    if code.is_empty() {
        code = header("x-amzn-errortype").unwrap_or_default();
    }
    // `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException`, `Code:http://...`
    let code = code.rsplit('#').next().unwrap_or_default();
    let code = code.split(':').next().unwrap_or_default();
    let code = if code.is_empty() {
        status_code(response.status).to_owned()
    } else {
        code.to_owned()
    };
    ServiceError {
        code,
        message,
        status: response.status,
        request_id: request_id.unwrap_or_default(),
    }
}

/// The code of an error answered without a body (a HEAD's 404), as the JS SDK names it.
fn status_code(status: u16) -> &'static str {
    match status {
        301 => "PermanentRedirect",
        304 => "NotModified",
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        412 => "PreconditionFailed",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        _ => "UnknownError",
    }
}

/// A number in [0, 1) from the operating system's generator.
fn random_fraction() -> f64 {
    let bytes = crate::stdlib::crypto::random_bytes(8);
    let n = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
    (n >> 11) as f64 / (1u64 << 53) as f64
}

/// Parameters as the JSON protocols want them: binary data (a Rhai Blob, a Lua
/// string that is not UTF-8, a value marked binary) as base64 text.
pub fn to_json(value: &Value) -> Result<serde_json::Value, String> {
    use base64::Engine;
    use serde_json::Value as J;
    let base64 = |b: &[u8]| J::String(base64::engine::general_purpose::STANDARD.encode(b));
    Ok(match value {
        Value::Nil | Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| format!("{f} is not a number JSON can carry"))?,
        Value::Text(s) => J::String(s.clone()),
        Value::Bytes(b) | Value::Decoded(b) => match std::str::from_utf8(b) {
            Ok(text) => J::String(text.to_owned()),
            Err(_) => base64(b),
        },
        Value::Binary(b) => base64(b),
        Value::List(items) => J::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        Value::Other(name) => return Err(format!("a {name} cannot be sent to AWS")),
    })
}

/// A JSON answer as binding values: integers that fit as integers, objects as maps.
pub fn from_json(json: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
        J::String(s) => Value::Text(s),
        J::Array(items) => Value::List(items.into_iter().map(from_json).collect()),
        J::Object(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k, from_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response {
        http::Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), vec![v.to_string()]))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn json_errors_give_the_code_after_the_shape_namespace() {
        let e = service_error(&response(
            400,
            &[("x-amzn-requestid", "RID1")],
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#,
        ));
        assert_eq!(e.code, "ConditionalCheckFailedException");
        assert_eq!(e.message, "The conditional request failed");
        assert_eq!((e.status, e.request_id.as_str()), (400, "RID1"));
    }

    #[test]
    fn xml_errors_and_query_compatible_codes_are_understood() {
        let e = service_error(&response(
            403,
            &[],
            "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>\
             <Message>bad</Message></Error><RequestId>R2</RequestId></ErrorResponse>",
        ));
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.request_id.as_str()),
            ("SignatureDoesNotMatch", "bad", "R2")
        );
        let e = service_error(&response(
            400,
            &[(
                "x-amzn-query-error",
                "AWS.SimpleQueueService.NonExistentQueue;Sender",
            )],
            r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"no queue"}"#,
        ));
        assert_eq!(e.code, "AWS.SimpleQueueService.NonExistentQueue");
        let e = service_error(&response(404, &[("x-amz-request-id", "R3")], ""));
        assert_eq!((e.code.as_str(), e.request_id.as_str()), ("NotFound", "R3"));
    }

    #[test]
    fn binary_parameters_are_base64_in_json() {
        let params = Value::Map(vec![
            ("Text".into(), Value::Bytes(b"plain".to_vec())),
            ("Blob".into(), Value::Bytes(vec![0xff, 0x00])),
            ("Marked".into(), Value::Binary(b"hi".to_vec())),
        ]);
        assert_eq!(
            to_json(&params).unwrap(),
            serde_json::json!({"Text": "plain", "Blob": "/wA=", "Marked": "aGk="})
        );
        assert!(
            to_json(&Value::Other("function"))
                .unwrap_err()
                .contains("function")
        );
    }

    #[test]
    fn random_fractions_stay_below_one() {
        for _ in 0..1000 {
            let f = random_fraction();
            assert!((0.0..1.0).contains(&f));
        }
    }
}
