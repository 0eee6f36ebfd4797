//! Just enough HTTP/1.1 for the fake Runtime API: messages with `Content-Length` or
//! chunked bodies, responses written with `Content-Length`, keep-alive by default.

use std::io::{self, BufRead, Write};

/// One request as received. Header names are lower-cased.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// HTTP/1.1 keeps the connection open unless the client says otherwise.
    pub fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Case-insensitive header lookup.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads one request; `Ok(None)` when the client closed the connection between requests.
pub fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    read_request_observed(reader, &mut |_| {})
}

/// [`read_request`], telling `on_chunk` of each chunk of a chunked body as it
/// arrives (a streamed response). Trailers join the headers.
pub fn read_request_observed(
    reader: &mut impl BufRead,
    on_chunk: &mut dyn FnMut(&[u8]),
) -> io::Result<Option<Request>> {
    let Some((start, headers, body)) = read_message(reader, on_chunk)? else {
        return Ok(None);
    };
    let mut parts = start.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(bad(format!("bad request line {start:?}")));
    };
    Ok(Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body,
    }))
}

/// A response as a client sees it (for tests that drive the fake API directly).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Reads one response with a `Content-Length` (or chunked) body.
pub fn read_response(reader: &mut impl BufRead) -> io::Result<Response> {
    let (start, headers, body) = read_message(reader, &mut |_| {})?
        .ok_or_else(|| bad("connection closed before a response".into()))?;
    let status = start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {start:?}")))?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

type Message = (String, Vec<(String, String)>, Vec<u8>);

/// Start line, headers (names lower-cased, trailers after them) and body of one
/// HTTP/1.1 message; `on_chunk` sees each chunk of a chunked body as it arrives.
fn read_message(
    reader: &mut impl BufRead,
    on_chunk: &mut dyn FnMut(&[u8]),
) -> io::Result<Option<Message>> {
    let mut line = String::new();
    // Tolerate stray empty lines between messages (RFC 9112 §2.2).
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let start = line.trim_end().to_owned();

    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside the headers".into()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }

    let body = if header(&headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        read_chunked(reader, &mut headers, on_chunk)?
    } else {
        let len = match header(&headers, "content-length") {
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| bad(format!("bad Content-Length {v:?}")))?,
            None => 0,
        };
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some((start, headers, body)))
}

fn read_chunked(
    reader: &mut impl BufRead,
    headers: &mut Vec<(String, String)>,
    on_chunk: &mut dyn FnMut(&[u8]),
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| bad(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Trailers, then the empty line that ends the body.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
                let (name, value) = line
                    .trim_end()
                    .split_once(':')
                    .ok_or_else(|| bad(format!("bad trailer line {line:?}")))?;
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        on_chunk(&body[start..]);
        line.clear();
        reader.read_line(&mut line)?; // the CRLF after the chunk data
    }
}

/// Writes a complete response with a `Content-Length`.
pub fn write_response(
    w: &mut impl Write,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    // One write: a head and a body in separate segments meet Nagle and delayed ACKs.
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    w.write_all(&message)?;
    w.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
