//! serve's Runtime API (2018-06-01), which only the function's own process calls.
//!
//! It speaks HTTP/1.1 itself rather than through tiny_http: a streamed `/response`
//! (SPEC 9) ends with trailers, which tiny_http's chunked decoder refuses, and its
//! chunks must reach the caller as they arrive, not once the body is whole. A thread
//! per connection reads requests (httparse for the head, already linked through
//! ureq), hands each to the dispatcher as a [`Message`], and writes the dispatcher's
//! [`Reply`] before reading the next request on the connection (keep-alive, which the
//! runtime's connection pool relies on).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Sender, SyncSender};

use crate::diagnostic::Diagnostic;
use crate::stdlib::base64;

use super::dispatcher::Message;

const PREFIX: &str = "/2018-06-01/runtime/";
/// Longer request heads and chunk lines are refused: the runtime sends short ones.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A streamed body is handed on in pieces of at most this size, so a huge write
/// of the handler is never held whole (and never makes one huge event).
const MAX_PIECE_BYTES: usize = 1 << 20;
const MAX_HEADERS: usize = 64;
const STREAMING_MODE: &str = "Lambda-Runtime-Function-Response-Mode";
const ERROR_TYPE_TRAILER: &str = "Lambda-Runtime-Function-Error-Type";
const ERROR_BODY_TRAILER: &str = "Lambda-Runtime-Function-Error-Body";

/// One request of the runtime loop, with its whole body.
pub struct Call {
    pub method: String,
    /// The path after `/2018-06-01/runtime/`, without its query; empty when the
    /// path is not under it.
    pub route: String,
    pub path: String,
    pub body: Vec<u8>,
    pub reply: Reply,
}

/// A streamed `/invocation/{id}/response`, handed on piece by piece as it is read.
pub enum Piece {
    Begin {
        content_type: String,
    },
    Chunk(Vec<u8>),
    /// The body ended: with the error its trailers name, if any.
    End {
        error: Option<Vec<u8>>,
        reply: Reply,
    },
}

/// Where the dispatcher's answer to one request goes. Dropping it unanswered
/// answers 500 (the process it was for is being stopped).
pub struct Reply(SyncSender<Response>);

pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn send(self, response: Response) {
        // The connection may be gone with its process: nobody to tell.
        let _ = self.0.send(response);
    }

    /// `202 {"status":"OK"}`, the Runtime API's "accepted".
    pub fn accepted(self) {
        self.send(Response::json(202, br#"{"status":"OK"}"#.to_vec()));
    }

    /// An error of the API itself, in the shape of the Runtime API's own.
    pub fn error(self, status: u16, error_type: &str, message: &str) {
        let body = Diagnostic::runtime(error_type, message).to_json();
        self.send(Response::json(status, body));
    }
}

impl Response {
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".to_owned())],
            body,
        }
    }
}

/// Accepts the process's connections until the dispatcher is gone.
pub fn run(listener: TcpListener, dispatcher: Sender<Message>) {
    for connection in listener.incoming() {
        let Ok(connection) = connection else {
            continue;
        };
        let dispatcher = dispatcher.clone();
        std::thread::spawn(move || {
            // A broken connection ends with its thread; the process is watched elsewhere.
            let _ = serve_connection(connection, &dispatcher);
        });
    }
}

fn serve_connection(connection: TcpStream, dispatcher: &Sender<Message>) -> io::Result<()> {
    connection.set_nodelay(true)?;
    let mut reader = BufReader::new(connection.try_clone()?);
    let mut writer = connection;
    while let Some(head) = read_head(&mut reader)? {
        let route = head
            .path
            .split('?')
            .next()
            .and_then(|path| path.strip_prefix(PREFIX))
            .unwrap_or("")
            .to_owned();
        let streamed = head.method == "POST"
            && route.starts_with("invocation/")
            && route.ends_with("/response")
            && head
                .header(STREAMING_MODE)
                .is_some_and(|mode| mode.eq_ignore_ascii_case("streaming"));
        let (reply, answer) = mpsc::sync_channel(1);
        let reply = Reply(reply);
        let sent = if streamed {
            let request_id = route["invocation/".len()..route.len() - "/response".len()].to_owned();
            relay_stream(&mut reader, &head, request_id, reply, dispatcher)?
        } else {
            let body = read_whole_body(&mut reader, &head)?;
            let call = Call {
                method: head.method.clone(),
                route,
                path: head.path.clone(),
                body,
                reply,
            };
            dispatcher.send(Message::Runtime(call)).is_ok()
        };
        if !sent {
            return Ok(()); // serve is ending
        }
        let response = answer.recv().unwrap_or_else(|_| {
            let body = Diagnostic::runtime("Runtime.Unavailable", "the environment is stopping");
            Response::json(500, body.to_json())
        });
        write_response(&mut writer, &response)?;
        if head.wants_close() {
            return Ok(());
        }
    }
    Ok(())
}

/// Hands a streamed response on as it is read: `Begin`, its chunks, then `End`
/// with the error of its trailers. Returns whether the dispatcher took it.
fn relay_stream(
    reader: &mut impl BufRead,
    head: &Head,
    request_id: String,
    reply: Reply,
    dispatcher: &Sender<Message>,
) -> io::Result<bool> {
    let piece = |piece| Message::Stream {
        request_id: request_id.clone(),
        piece,
    };
    let content_type = head
        .header("Content-Type")
        .unwrap_or("application/octet-stream");
    let begin = Piece::Begin {
        content_type: content_type.to_owned(),
    };
    if dispatcher.send(piece(begin)).is_err() {
        return Ok(false);
    }
    let trailers = read_body(reader, head, &mut |chunk| {
        dispatcher
            .send(piece(Piece::Chunk(chunk)))
            .map_err(|_| io::Error::other("serve is ending"))
    })?;
    let error = trailer(&trailers, ERROR_TYPE_TRAILER).map(|error_type| {
        trailer(&trailers, ERROR_BODY_TRAILER)
            .and_then(|body| base64::decode(body.as_bytes()).ok())
            // A type without a (readable) body still ends the stream in error.
            .unwrap_or_else(|| Diagnostic::runtime(error_type, "").to_json())
    });
    Ok(dispatcher.send(piece(Piece::End { error, reply })).is_ok())
}

fn trailer<'a>(trailers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    trailers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

struct Head {
    method: String,
    path: String,
    /// HTTP/1.0 closes after each message unless asked not to.
    version_minor: u8,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        trailer(&self.headers, name)
    }

    fn wants_close(&self) -> bool {
        match self.header("Connection") {
            Some(value) if value.eq_ignore_ascii_case("close") => true,
            Some(value) if value.eq_ignore_ascii_case("keep-alive") => false,
            _ => self.version_minor == 0,
        }
    }
}

/// The next request's head, or `None` when the client closed between requests.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut bytes = Vec::new();
    loop {
        let before = bytes.len();
        read_line(reader, &mut bytes)?;
        if bytes.len() == before {
            return if before == 0 {
                Ok(None)
            } else {
                Err(invalid("the connection closed inside a request head"))
            };
        }
        if bytes == b"\r\n" || bytes == b"\n" {
            bytes.clear(); // an empty line between messages (RFC 9112 2.2)
        } else if bytes.ends_with(b"\n\r\n") || bytes.ends_with(b"\n\n") {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(invalid("an incomplete request head")),
        Err(e) => return Err(invalid(&format!("a malformed request head: {e}"))),
    }
    Ok(Some(Head {
        method: request.method.unwrap_or_default().to_owned(),
        path: request.path.unwrap_or_default().to_owned(),
        version_minor: request.version.unwrap_or(1),
        headers: owned_headers(request.headers),
    }))
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_owned();
            (h.name.to_owned(), value)
        })
        .collect()
}

/// Reads a request body framed by `Content-Length` or chunked, handing each piece
/// to `on_piece` as it arrives; returns the trailers of a chunked body.
fn read_body(
    reader: &mut impl BufRead,
    head: &Head,
    on_piece: &mut dyn FnMut(Vec<u8>) -> io::Result<()>,
) -> io::Result<Vec<(String, String)>> {
    let mut pieces = |reader: &mut _, len: usize| -> io::Result<()> {
        let mut left = len;
        while left > 0 {
            let mut piece = vec![0; left.min(MAX_PIECE_BYTES)];
            Read::read_exact(reader, &mut piece)?;
            left -= piece.len();
            on_piece(piece)?;
        }
        Ok(())
    };
    let chunked = head
        .header("Transfer-Encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if !chunked {
        let len = match head.header("Content-Length") {
            Some(len) => len
                .parse()
                .map_err(|_| invalid("an unreadable Content-Length"))?,
            None => 0,
        };
        pieces(reader, len)?;
        return Ok(Vec::new());
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        read_line(reader, &mut line)?;
        let text = String::from_utf8_lossy(&line);
        let size = text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(&format!("a bad chunk size line {text:?}")))?;
        if size == 0 {
            break;
        }
        pieces(reader, size)?;
        line.clear();
        read_line(reader, &mut line)?;
        if line != b"\r\n" && line != b"\n" {
            return Err(invalid("a chunk that does not end where its size says"));
        }
    }
    // The trailer section: header lines up to an empty line.
    let mut section = Vec::new();
    loop {
        let before = section.len();
        read_line(reader, &mut section)?;
        match &section[before..] {
            [] => return Err(invalid("the connection closed inside the trailers")),
            b"\r\n" | b"\n" => break,
            _ => {}
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(&section, &mut headers) {
        Ok(httparse::Status::Complete((_, parsed))) => Ok(owned_headers(parsed)),
        _ => Err(invalid("malformed trailers")),
    }
}

/// The whole body of a request that is not streamed: the runtime's buffered
/// answers, at most 6 MB. A bound well above that keeps a broken client from
/// filling serve's memory.
fn read_whole_body(reader: &mut impl BufRead, head: &Head) -> io::Result<Vec<u8>> {
    const MAX_BODY_BYTES: usize = 16 << 20;
    let mut body = Vec::new();
    read_body(reader, head, &mut |piece| {
        if body.len() + piece.len() > MAX_BODY_BYTES {
            return Err(invalid("a request body over 16 MiB"));
        }
        body.extend_from_slice(&piece);
        Ok(())
    })?;
    Ok(body)
}

/// Appends one line (up to and including `\n`, or to the end of the input).
fn read_line(reader: &mut impl BufRead, into: &mut Vec<u8>) -> io::Result<()> {
    let limit = (MAX_HEAD_BYTES + 1).saturating_sub(into.len()) as u64;
    reader.take(limit).read_until(b'\n', into)?;
    if into.len() > MAX_HEAD_BYTES {
        return Err(invalid("a request head or chunk line over 64 KiB"));
    }
    Ok(())
}

fn write_response(writer: &mut impl Write, response: &Response) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
        response.status,
        tiny_http::StatusCode(response.status).default_reason_phrase(),
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    writer.write_all(&[head.as_bytes(), &response.body].concat())?;
    writer.flush()
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::Receiver;

    fn server() -> (TcpStream, Receiver<Message>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (messages, inbox) = mpsc::channel();
        std::thread::spawn(move || run(listener, messages));
        (TcpStream::connect(address).unwrap(), inbox)
    }

    /// The head and body of one response with a `Content-Length`.
    fn response(client: &mut TcpStream) -> String {
        let mut reader = BufReader::new(client);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            assert_ne!(reader.read_line(&mut head).unwrap(), 0, "{head}");
        }
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        head + String::from_utf8(body).unwrap().as_str()
    }

    fn piece(inbox: &Receiver<Message>, id: &str) -> Piece {
        match inbox.recv().unwrap() {
            Message::Stream { request_id, piece } if request_id == id => piece,
            _ => panic!("not a piece of {id}'s stream"),
        }
    }

    #[test]
    fn whole_and_streamed_requests_share_a_connection() {
        let (mut client, inbox) = server();
        client
            .write_all(
                b"POST /2018-06-01/runtime/invocation/r1/error HTTP/1.1\r\nHost: x\r\n\
                  Content-Length: 2\r\n\r\n{}",
            )
            .unwrap();
        let Message::Runtime(call) = inbox.recv().unwrap() else {
            panic!("not a call");
        };
        assert_eq!(call.method, "POST");
        assert_eq!(call.route, "invocation/r1/error");
        assert_eq!(call.body, b"{}");
        call.reply.accepted();
        let answer = response(&mut client);
        assert!(answer.starts_with("HTTP/1.1 202 Accepted\r\n"), "{answer}");
        assert!(answer.ends_with(r#"{"status":"OK"}"#), "{answer}");

        client
            .write_all(
                b"POST /2018-06-01/runtime/invocation/r2/response HTTP/1.1\r\nHost: x\r\n\
                  Lambda-Runtime-Function-Response-Mode: streaming\r\nContent-Type: text/csv\r\n\
                  Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            )
            .unwrap();
        let Piece::Begin { content_type } = piece(&inbox, "r2") else {
            panic!("the stream did not begin");
        };
        assert_eq!(content_type, "text/csv");
        // The chunk is handed on while the body is still open.
        let Piece::Chunk(bytes) = piece(&inbox, "r2") else {
            panic!("no chunk");
        };
        assert_eq!(bytes, b"hello");
        let error = br#"{"errorType":"Boom"}"#;
        let trailers = format!(
            "0\r\nLambda-Runtime-Function-Error-Type: Boom\r\n\
             Lambda-Runtime-Function-Error-Body: {}\r\n\r\n",
            base64::encode(error)
        );
        client.write_all(trailers.as_bytes()).unwrap();
        let Piece::End { error: got, reply } = piece(&inbox, "r2") else {
            panic!("the stream did not end");
        };
        assert_eq!(got.as_deref(), Some(&error[..]));
        reply.accepted();
        assert!(response(&mut client).starts_with("HTTP/1.1 202"));
    }

    #[test]
    fn a_stream_without_trailers_ends_without_error() {
        let (mut client, inbox) = server();
        client
            .write_all(
                b"POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\n\
                  Lambda-Runtime-Function-Response-Mode: streaming\r\n\
                  Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
            )
            .unwrap();
        let Piece::Begin { content_type } = piece(&inbox, "r") else {
            panic!("the stream did not begin");
        };
        assert_eq!(content_type, "application/octet-stream");
        assert!(matches!(piece(&inbox, "r"), Piece::Chunk(b) if b == b"abc"));
        assert!(matches!(piece(&inbox, "r"), Piece::End { error: None, .. }));
    }

    #[test]
    fn an_unanswered_request_gets_500_and_a_bad_body_closes_the_connection() {
        let (mut client, inbox) = server();
        client
            .write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n")
            .unwrap();
        let Message::Runtime(call) = inbox.recv().unwrap() else {
            panic!("not a call");
        };
        assert_eq!(call.route, "invocation/next");
        drop(call);
        assert!(response(&mut client).starts_with("HTTP/1.1 500"));

        client
            .write_all(
                b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n\
                  Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            )
            .unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
        assert!(inbox.try_recv().is_err());
    }
}
