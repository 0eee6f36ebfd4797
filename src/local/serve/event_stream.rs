//! The answer of `InvokeWithResponseStream` (SPEC 10): a chunked HTTP body of
//! `application/vnd.amazon.eventstream` messages, `PayloadChunk` events as the
//! handler writes and one `InvokeComplete` at the end, as the AWS SDKs read them.
//!
//! A message is its total length, its headers' length and a CRC32 of those two
//! (big-endian u32s), the headers (name length, name, type 7 "string", value
//! length, value), the payload, and a CRC32 of everything before it.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender};

use super::invoke_api::header;

/// A larger payload is split over several events: the SDKs refuse a message whose
/// payload passes 16 MiB (botocore: 24 MiB), and Lambda's own events are small.
const MAX_EVENT_PAYLOAD: usize = 1 << 20;

/// The events of one invocation on their way to its caller. A thread of its own
/// writes them, so a caller that reads slowly never holds up the dispatcher.
pub struct EventStream {
    frames: Sender<Vec<u8>>,
}

/// How the invocation ended, for `InvokeComplete`.
#[derive(Debug, Default)]
pub struct Completion {
    /// The error type; `None` when the function succeeded.
    pub error_code: Option<String>,
    pub error_details: Option<String>,
    /// The base64 log tail (`X-Amz-Log-Type: Tail`).
    pub log_result: Option<String>,
}

impl EventStream {
    /// Sends the response head to `caller` and returns the stream of its events.
    pub fn open(caller: tiny_http::Request, content_type: &str, request_id: &str) -> EventStream {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{}: {request_id}\r\n\
             {}: $LATEST\r\nTransfer-Encoding: chunked\r\n\r\n",
            header::REQUEST_ID,
            header::EXECUTED_VERSION,
        );
        let (frames, queue) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = caller.into_writer();
            // A caller that went away is no concern of the function's.
            let _ = write_all(&mut out, head.as_bytes(), queue);
        });
        EventStream { frames }
    }

    /// `PayloadChunk` events carrying `bytes` (none for an empty write).
    pub fn payload(&self, bytes: &[u8]) {
        for part in bytes.chunks(MAX_EVENT_PAYLOAD) {
            let event = message("PayloadChunk", "application/octet-stream", part);
            let _ = self.frames.send(event);
        }
    }

    /// The `InvokeComplete` event; the body ends after it.
    pub fn complete(self, completion: &Completion) {
        let mut fields = serde_json::Map::new();
        for (name, value) in [
            ("ErrorCode", &completion.error_code),
            ("ErrorDetails", &completion.error_details),
            ("LogResult", &completion.log_result),
        ] {
            if let Some(value) = value {
                fields.insert(name.to_owned(), value.as_str().into());
            }
        }
        let payload = serde_json::Value::Object(fields).to_string();
        let event = message("InvokeComplete", "application/json", payload.as_bytes());
        let _ = self.frames.send(event);
    }
}

/// The head, then each message as one HTTP chunk, flushed at once; the last chunk
/// when the stream is dropped.
fn write_all(out: &mut impl Write, head: &[u8], frames: Receiver<Vec<u8>>) -> io::Result<()> {
    out.write_all(head)?;
    out.flush()?;
    for frame in frames {
        write_chunk(out, &frame)?;
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

/// One chunk of a chunked HTTP body, flushed at once; nothing for no bytes (an
/// empty chunk would end the body).
pub fn write_chunk(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    out.write_all(format!("{:x}\r\n", bytes.len()).as_bytes())?;
    out.write_all(bytes)?;
    out.write_all(b"\r\n")?;
    out.flush()
}

/// One event message.
fn message(event_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut headers = Vec::new();
    for (name, value) in [
        (":event-type", event_type),
        (":content-type", content_type),
        (":message-type", "event"),
    ] {
        const STRING: u8 = 7;
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(STRING);
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn messages_have_lengths_and_checksums_where_the_sdks_read_them() {
        let event = message("PayloadChunk", "application/octet-stream", b"hello");
        assert_eq!(u32_at(&event, 0) as usize, event.len());
        let headers_len = u32_at(&event, 4) as usize;
        assert_eq!(u32_at(&event, 8), crc32fast::hash(&event[..8]));
        let end = event.len() - 4;
        assert_eq!(u32_at(&event, end), crc32fast::hash(&event[..end]));
        assert_eq!(&event[12 + headers_len..end], b"hello");
        let headers = &event[12..12 + headers_len];
        assert_eq!(
            &headers[..1 + 11 + 1 + 2 + 12],
            b"\x0b:event-type\x07\x00\x0cPayloadChunk"
        );
    }

    #[test]
    fn the_body_is_chunked_and_ends_after_the_last_event() {
        let (frames, queue) = mpsc::channel();
        let stream = EventStream { frames };
        stream.payload(b"");
        stream.payload(&vec![b'x'; MAX_EVENT_PAYLOAD + 1]);
        stream.complete(&Completion {
            error_code: Some("Boom".into()),
            ..Completion::default()
        });
        let mut out = Vec::new();
        write_all(&mut out, b"HEAD\r\n\r\n", queue).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HEAD\r\n\r\n"));
        assert!(text.ends_with("\r\n0\r\n\r\n"));
        // Two payload events (the write split at 1 MiB), then the completion.
        assert_eq!(text.matches("PayloadChunk").count(), 2);
        assert!(text.contains(r#"{"ErrorCode":"Boom"}"#));
    }
}
