//! Function URL requests (SPEC 10): any request to `lure serve` outside the
//! Invoke APIs becomes the payload-2.0 event a Lambda Function URL sends, and the
//! function's answer becomes the HTTP response as Lambda maps it back, a streamed
//! one (`RESPONSE_STREAM` mode) streamed to the client as the handler writes.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender};

use serde_json::{Map, Value, json};
use sha2::Digest;
use tiny_http::Request;

use crate::stdlib::base64;
use crate::stdlib::time;

use super::event_stream::write_chunk;
use super::invoke_api::{header, http_header};

/// The content type of a streamed answer that starts with a prelude (SPEC 9).
const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
/// What ends the prelude of such an answer.
const PRELUDE_END: [u8; 8] = [0; 8];

/// The request's parts the event is made of (the body read separately).
pub struct Incoming {
    pub method: String,
    /// Path and query, as sent.
    pub url: String,
    /// Names as sent.
    pub headers: Vec<(String, String)>,
    pub source_ip: String,
    pub body: Vec<u8>,
}

impl Incoming {
    pub fn of(request: &Request, body: Vec<u8>) -> Incoming {
        Incoming {
            method: request.method().as_str().to_owned(),
            url: request.url().to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_owned(),
                        h.value.as_str().to_owned(),
                    )
                })
                .collect(),
            source_ip: request
                .remote_addr()
                .map_or_else(|| "127.0.0.1".to_owned(), |a| a.ip().to_string()),
            body,
        }
    }
}

/// The payload-2.0 event of a Function URL request.
pub fn event(incoming: &Incoming, request_id: &str, function_name: &str, region: &str) -> Value {
    let (path, query) = incoming
        .url
        .split_once('?')
        .unwrap_or((incoming.url.as_str(), ""));
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &incoming.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| Value::from(c.to_owned())),
            );
            continue;
        }
        join_into(&mut headers, name, value);
    }
    let mut parameters = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        join_into(
            &mut parameters,
            decode_component(key),
            &decode_component(value),
        );
    }
    let now = time::now_ms();
    // A Function URL's id: 32 lower-case characters, the same for a function.
    let url_id = crate::stdlib::hex::encode(&sha2::Sha256::digest(function_name.as_bytes()))[..32]
        .to_owned();
    let user_agent = headers.get("user-agent").cloned().unwrap_or(Value::Null);
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": format!("{url_id}.lambda-url.{region}.on.aws"),
            "domainPrefix": url_id,
            "http": {
                "method": incoming.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": incoming.source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": clf_time(now),
            "timeEpoch": now,
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !parameters.is_empty() {
        event["queryStringParameters"] = Value::Object(parameters);
    }
    if !incoming.body.is_empty() {
        let content_type = event["headers"]["content-type"].as_str().unwrap_or("");
        match std::str::from_utf8(&incoming.body) {
            Ok(text) if is_textual(content_type) => event["body"] = text.into(),
            _ => {
                event["body"] = base64::encode(&incoming.body).into();
                event["isBase64Encoded"] = true.into();
            }
        }
    }
    event
}

/// Repeated names are joined with `,`, as Lambda joins them.
fn join_into(map: &mut Map<String, Value>, name: String, value: &str) {
    match map.get_mut(&name) {
        Some(Value::String(joined)) => {
            joined.push(',');
            joined.push_str(value);
        }
        _ => {
            map.insert(name, value.into());
        }
    }
}

/// A query component percent-decoded (`+` is a space), as Lambda decodes them.
fn decode_component(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Content types whose bodies Lambda passes as text.
fn is_textual(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media.starts_with("text/")
        || media.ends_with("+json")
        || media.ends_with("+xml")
        || [
            "application/json",
            "application/xml",
            "application/javascript",
            "application/x-www-form-urlencoded",
            "application/graphql",
        ]
        .contains(&media.as_str())
}

/// `12/Mar/2020:19:03:58 +0000`, the request time's format in the event.
fn clf_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // `2020-03-12T19:03:58.123Z`
    let iso = time::iso8601(ms).unwrap_or_default();
    let month = iso
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .unwrap_or(&"Jan");
    format!(
        "{}/{month}/{}:{} +0000",
        iso.get(8..10).unwrap_or("01"),
        iso.get(0..4).unwrap_or("1970"),
        iso.get(11..19).unwrap_or("00:00:00"),
    )
}

/// A response's parts, from the function's answer.
#[derive(Debug, PartialEq)]
pub struct Outgoing {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The HTTP response for a buffered answer, as Lambda maps a Function URL's: an
/// object with `statusCode` gives that status, its `headers`, each of `cookies`
/// as a `Set-Cookie` and its `body` (base64-decoded when `isBase64Encoded`); any
/// other JSON is a 200 `application/json` response of that JSON.
pub fn buffered(body: &[u8]) -> Outgoing {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let json_response = |body: Vec<u8>| Outgoing {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
    };
    let Some(status) = value.get("statusCode").and_then(Value::as_u64) else {
        return json_response(body.to_vec());
    };
    let mut headers = header_pairs(&value);
    default_content_type(&mut headers, "application/json");
    let text = match &value["body"] {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let body = if value["isBase64Encoded"] == true {
        base64::decode(text.as_bytes()).unwrap_or_else(|_| text.into_bytes())
    } else {
        text.into_bytes()
    };
    Outgoing {
        status: u16::try_from(status).unwrap_or(500),
        headers,
        body,
    }
}

/// `headers` (string values; others as their JSON) and a `Set-Cookie` per cookie.
fn header_pairs(value: &Value) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = value["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, v)| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            (name.clone(), text)
        })
        .collect();
    for cookie in value["cookies"].as_array().into_iter().flatten() {
        if let Some(cookie) = cookie.as_str() {
            headers.push(("Set-Cookie".into(), cookie.to_owned()));
        }
    }
    // Only what fits in a header line.
    headers.retain(|(n, v)| valid_header(n, v));
    headers
}

/// A `Content-Type` of `default` unless `headers` have one.
fn default_content_type(headers: &mut Vec<(String, String)>, default: &str) {
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), default.into()));
    }
}

fn valid_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        && value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// A function error, as a Function URL answers it.
pub fn function_error() -> Outgoing {
    Outgoing {
        status: 502,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: br#"{"Message":"Internal Server Error"}"#.to_vec(),
    }
}

/// Sends a buffered response to the client.
pub fn respond(caller: Request, outgoing: Outgoing, request_id: &str) {
    let mut response = tiny_http::Response::from_data(outgoing.body)
        .with_status_code(outgoing.status)
        .with_chunked_threshold(usize::MAX)
        .with_header(http_header(header::REQUEST_ID, request_id));
    for (name, value) in &outgoing.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    // A client that went away is no concern of the function's.
    let _ = caller.respond(response);
}

/// A streamed answer on its way to the client: the status and headers once known
/// (the prelude's, for an HTTP-integration stream), then each piece at once.
pub struct UrlStream {
    pieces: Sender<Vec<u8>>,
}

impl UrlStream {
    pub fn open(caller: Request, content_type: &str, request_id: &str) -> UrlStream {
        let (pieces, queue) = mpsc::channel();
        let prelude = content_type.eq_ignore_ascii_case(HTTP_INTEGRATION);
        let content_type = content_type.to_owned();
        let request_id = request_id.to_owned();
        std::thread::spawn(move || {
            let mut out = caller.into_writer();
            // A client that went away is no concern of the function's.
            let _ = relay(&mut out, prelude, &content_type, &request_id, queue);
        });
        UrlStream { pieces }
    }

    pub fn write(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            let _ = self.pieces.send(bytes.to_vec());
        }
    }
}

/// Writes the head (after the prelude, when there is one), then each piece as a
/// chunk, flushed at once; the last chunk once the stream is dropped.
fn relay(
    out: &mut impl Write,
    has_prelude: bool,
    content_type: &str,
    request_id: &str,
    pieces: Receiver<Vec<u8>>,
) -> io::Result<()> {
    let mut pending = Vec::new();
    let mut head_sent = false;
    let send_head = |out: &mut dyn Write, prelude: Option<&[u8]>| -> io::Result<()> {
        let (status, mut headers) = match prelude {
            None => (
                200,
                vec![("Content-Type".to_owned(), content_type.to_owned())],
            ),
            Some(prelude) => {
                let value: Value = serde_json::from_slice(prelude).unwrap_or(Value::Null);
                let status = value["statusCode"].as_u64().unwrap_or(200);
                (u16::try_from(status).unwrap_or(500), header_pairs(&value))
            }
        };
        default_content_type(&mut headers, "application/octet-stream");
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\n",
            tiny_http::StatusCode(status).default_reason_phrase()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "{}: {request_id}\r\nTransfer-Encoding: chunked\r\n\r\n",
            header::REQUEST_ID
        ));
        out.write_all(head.as_bytes())?;
        out.flush()
    };
    if !has_prelude {
        send_head(out, None)?;
        head_sent = true;
    }
    for piece in pieces {
        if head_sent {
            write_chunk(out, &piece)?;
            continue;
        }
        pending.extend_from_slice(&piece);
        if let Some(at) = pending.windows(8).position(|w| w == PRELUDE_END) {
            send_head(out, Some(&pending[..at]))?;
            head_sent = true;
            write_chunk(out, &pending[at + 8..])?;
            pending = Vec::new();
        }
    }
    if !head_sent {
        // The stream ended inside its prelude: what came is the body.
        send_head(out, None)?;
        write_chunk(out, &pending)?;
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Incoming {
        Incoming {
            method: "POST".into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            source_ip: "127.0.0.1".into(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn events_are_payload_2_0() {
        let request = incoming(
            "/orders/7?a=1&b=x%20y&a=2&flag",
            &[
                ("Host", "localhost:9000"),
                ("User-Agent", "curl/8"),
                ("X-Multi", "one"),
                ("x-multi", "two"),
                ("Cookie", "s=1; theme=dark"),
                ("Content-Type", "application/json"),
            ],
            br#"{"n":1}"#,
        );
        let event = event(&request, "req-1", "fn", "eu-west-1");
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["rawPath"], "/orders/7");
        assert_eq!(event["rawQueryString"], "a=1&b=x%20y&a=2&flag");
        assert_eq!(
            event["queryStringParameters"],
            json!({ "a": "1,2", "b": "x y", "flag": "" })
        );
        assert_eq!(event["headers"]["x-multi"], "one,two");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["cookies"], json!(["s=1", "theme=dark"]));
        assert_eq!(event["requestContext"]["http"]["method"], "POST");
        assert_eq!(event["requestContext"]["http"]["userAgent"], "curl/8");
        assert_eq!(event["requestContext"]["requestId"], "req-1");
        assert_eq!(event["body"], r#"{"n":1}"#);
        assert_eq!(event["isBase64Encoded"], false);

        let binary = incoming("/", &[("Content-Type", "image/png")], b"\x89PNG");
        let event = super::event(&binary, "req-2", "fn", "eu-west-1");
        assert_eq!(event["body"], base64::encode(b"\x89PNG"));
        assert_eq!(event["isBase64Encoded"], true);
        assert!(event.get("queryStringParameters").is_none());
        assert!(event.get("cookies").is_none());
    }

    #[test]
    fn request_times_are_in_lambdas_format() {
        assert_eq!(clf_time(1_583_348_638_390), "04/Mar/2020:19:03:58 +0000");
    }

    #[test]
    fn answers_map_back_as_lambda_maps_them() {
        let answer = json!({
            "statusCode": 201,
            "headers": { "x-a": "1" },
            "cookies": ["a=1", "b=2; Path=/"],
            "body": base64::encode(b"\x00\x01"),
            "isBase64Encoded": true,
        });
        let out = buffered(answer.to_string().as_bytes());
        assert_eq!(out.status, 201);
        assert_eq!(out.body, b"\x00\x01");
        assert!(out.headers.contains(&("x-a".into(), "1".into())));
        assert!(
            out.headers
                .contains(&("Set-Cookie".into(), "b=2; Path=/".into()))
        );
        let plain = buffered(br#"{"ok":true}"#);
        assert_eq!(plain.status, 200);
        assert_eq!(plain.body, br#"{"ok":true}"#);
        assert_eq!(
            plain.headers,
            vec![("Content-Type".to_owned(), "application/json".to_owned())]
        );
    }

    #[test]
    fn a_prelude_becomes_the_status_and_headers() {
        let (pieces, queue) = mpsc::channel();
        let prelude =
            br#"{"statusCode":202,"headers":{"content-type":"text/plain"},"cookies":["c=1"]}"#;
        pieces.send(prelude[..10].to_vec()).unwrap();
        pieces
            .send([&prelude[10..], &PRELUDE_END[..], b"hel"].concat())
            .unwrap();
        pieces.send(b"lo".to_vec()).unwrap();
        drop(pieces);
        let mut out = Vec::new();
        relay(&mut out, true, HTTP_INTEGRATION, "r1", queue).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 202 Accepted\r\n"), "{text}");
        assert!(text.contains("content-type: text/plain\r\n"), "{text}");
        assert!(text.contains("Set-Cookie: c=1\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"),
            "{text}"
        );
    }
}
