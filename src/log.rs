//! Function logs as the official runtimes write them (SPEC §7): Node's text layout
//! or one JSON object per record, filtered by `AWS_LAMBDA_LOG_LEVEL`, written to
//! stdout or to Lambda's telemetry descriptor in its binary framing. Each record
//! is formatted into one buffer and written with one `write_all`.

use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::diagnostic::Diagnostic;
use crate::env_vars;
use crate::json::write_json_string;
use crate::limits::MAX_RECORD_BYTES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }

    /// The name scripts call it by: `log.warn`, `log::warn`.
    pub fn method(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    fn parse(name: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The level bits of a telemetry frame type, as Lambda's runtimes set them.
    fn frame_mask(self) -> u32 {
        match self {
            Level::Trace => 0b00100,
            Level::Debug => 0b01000,
            Level::Info => 0b01100,
            Level::Warn => 0b10000,
            Level::Error => 0b10100,
            Level::Fatal => 0b11000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Where records go.
#[derive(Debug)]
pub enum Sink {
    Stdout,
    /// `lure invoke`, whose stdout carries only the response body.
    Stderr,
    /// Lambda's telemetry descriptor: framed records, a multi-line message stays
    /// one CloudWatch event.
    Telemetry(File),
}

#[derive(Debug)]
pub struct Logger {
    format: Format,
    min_level: Level,
    sink: Sink,
}

const FRAME_TEXT: u32 = 0xA55A_0003;
const FRAME_JSON: u32 = 0xA55A_0002;

static LOGGER: OnceLock<Logger> = OnceLock::new();

thread_local! {
    static REQUEST_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

impl Logger {
    /// Reads `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`. The JSON format
    /// filters at INFO unless told otherwise, as AWS documents; the text format
    /// shows every level unless a valid level is set, as Node's runtime does.
    pub fn from_env(sink: Sink) -> Logger {
        let format = match std::env::var(env_vars::LOG_FORMAT) {
            Ok(v) if v.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Text,
        };
        let level = std::env::var(env_vars::LOG_LEVEL)
            .ok()
            .and_then(|v| Level::parse(&v));
        let min_level = match (format, level) {
            (_, Some(level)) => level,
            (Format::Json, None) => Level::Info,
            (Format::Text, None) => Level::Trace,
        };
        Logger {
            format,
            min_level,
            sink,
        }
    }
}

/// Sets up logging from the environment, once, at process start. On Lambda
/// (`Sink::Stdout`) a `_LAMBDA_TELEMETRY_LOG_FD` takes over as the sink, and the
/// variable is removed so scripts do not see it.
pub fn init(default_sink: Sink) {
    let sink = match (&default_sink, telemetry_fd()) {
        (Sink::Stdout, Some(file)) => Sink::Telemetry(file),
        _ => default_sink,
    };
    let _ = LOGGER.set(Logger::from_env(sink));
}

fn telemetry_fd() -> Option<File> {
    let value = std::env::var(env_vars::TELEMETRY_LOG_FD).ok()?;
    // SAFETY: called at start-up, before any other thread exists.
    unsafe { std::env::remove_var(env_vars::TELEMETRY_LOG_FD) };
    let fd: i32 = value.trim().parse().ok().filter(|fd| *fd > 2)?;
    // SAFETY: Lambda hands this descriptor to the runtime for its logs; nothing
    // else in the process owns it.
    Some(unsafe { File::from_raw_fd(fd) })
}

fn logger() -> &'static Logger {
    LOGGER.get_or_init(|| Logger::from_env(Sink::Stdout))
}

/// The request id logged with each record; `None` outside an invocation.
pub fn set_request_id(id: Option<&str>) {
    REQUEST_ID.with(|r| *r.borrow_mut() = id.map(str::to_owned));
}

/// Whether a record at `level` would be written (scripts skip formatting if not).
pub fn enabled(level: Level) -> bool {
    level >= logger().min_level
}

/// A record's message: plain text, or a JSON value (a table logged on its own).
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    Text(&'a str),
    Json(&'a [u8]),
}

/// One log record. `fields` is a JSON object's text whose members are merged
/// into JSON records (and appended after a tab to text records).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub level: Level,
    pub message: Message<'a>,
    pub fields: Option<&'a [u8]>,
}

/// Writes a text message at `level`, cut at [`MAX_RECORD_BYTES`].
pub fn write(level: Level, message: &str) {
    let cut;
    let message = if message.len() > MAX_RECORD_BYTES {
        let mut text = RecordText::default();
        text.push(message);
        cut = text.finish();
        &cut
    } else {
        message
    };
    emit(&Record {
        level,
        message: Message::Text(message),
        fields: None,
    });
}

/// Logs a handler error as one record, as the official runtimes do.
pub fn invoke_error(diagnostic: &Diagnostic) {
    let body = diagnostic.to_json();
    match logger().format {
        // Node: `Invoke Error \t{"errorType":...}`.
        Format::Text => emit(&Record {
            level: Level::Error,
            message: Message::Text(&format!(
                "Invoke Error \t{}",
                String::from_utf8_lossy(&body)
            )),
            fields: None,
        }),
        Format::Json => emit(&Record {
            level: Level::Error,
            message: Message::Text("Invoke Error"),
            fields: Some(&body),
        }),
    }
}

/// The text of a record being built from a script's arguments: it keeps at most
/// [`MAX_RECORD_BYTES`] (CloudWatch's event limit), the marker included when the
/// arguments held more, so no log call builds more than that.
#[derive(Debug, Default)]
pub struct RecordText {
    text: String,
    cut: bool,
}

impl RecordText {
    /// The text's room: with the marker, a cut record is [`MAX_RECORD_BYTES`].
    const ROOM: usize = MAX_RECORD_BYTES - CUT_MARKER.len();

    /// Whether the record is full: further arguments are left out.
    pub fn is_full(&self) -> bool {
        self.cut
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The text so far, without the marker.
    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Appends `text`, as much of it as the record has room for.
    pub fn push(&mut self, text: &str) {
        let room = RecordText::ROOM.saturating_sub(self.text.len());
        if text.len() <= room {
            self.text.push_str(text);
            return;
        }
        let mut end = room;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&text[..end]);
        self.cut = true;
    }

    /// Appends bytes as text (invalid UTF-8 replaced), reading no more of them
    /// than the record has room for.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        let room = RecordText::ROOM.saturating_sub(self.text.len());
        let head = &bytes[..bytes.len().min(room.saturating_add(4))];
        self.push(&String::from_utf8_lossy(head));
        if head.len() < bytes.len() {
            self.cut = true;
        }
    }

    /// Marks the record as cut: what follows was left out.
    pub fn mark_cut(&mut self) {
        self.cut = true;
    }

    /// The record's text, with the marker when it was cut.
    pub fn finish(mut self) -> String {
        if self.cut {
            self.text.push_str(CUT_MARKER);
        }
        self.text
    }
}

/// What ends a record that was cut.
const CUT_MARKER: &str = "… [log record cut at 262144 bytes]";

pub fn emit(record: &Record<'_>) {
    let logger = logger();
    if record.level < logger.min_level {
        return;
    }
    let now = SystemTime::now();
    let framed = matches!(logger.sink, Sink::Telemetry(_));
    let mut buf = Vec::with_capacity(128);
    if framed {
        buf.resize(16, 0); // the frame header, filled in below
    }
    REQUEST_ID.with(|id| {
        let id = id.borrow();
        match logger.format {
            Format::Text => format_text(&mut buf, now, id.as_deref(), record, !framed),
            Format::Json => format_json(&mut buf, now, id.as_deref(), record),
        }
    });
    match &logger.sink {
        Sink::Telemetry(file) => {
            let kind = match logger.format {
                Format::Text => FRAME_TEXT,
                Format::Json => FRAME_JSON,
            } | record.level.frame_mask();
            let len = (buf.len() - 16) as u32;
            let micros = now
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros() as u64;
            buf[0..4].copy_from_slice(&kind.to_be_bytes());
            buf[4..8].copy_from_slice(&len.to_be_bytes());
            buf[8..16].copy_from_slice(&micros.to_be_bytes());
            // A log write that fails must not take the invocation down.
            let _ = (&*file).write_all(&buf);
        }
        Sink::Stdout | Sink::Stderr => {
            buf.push(b'\n');
            write_raw(&buf);
        }
    }
}

fn format_text(
    buf: &mut Vec<u8>,
    now: SystemTime,
    request_id: Option<&str>,
    record: &Record<'_>,
    one_line: bool,
) {
    let start = buf.len();
    buf.extend_from_slice(rfc3339_millis(now).as_bytes());
    buf.push(b'\t');
    // Node prints `undefined` outside an invocation.
    buf.extend_from_slice(request_id.unwrap_or("undefined").as_bytes());
    buf.push(b'\t');
    buf.extend_from_slice(record.level.name().as_bytes());
    buf.push(b'\t');
    match record.message {
        Message::Text(text) => buf.extend_from_slice(text.as_bytes()),
        Message::Json(json) => buf.extend_from_slice(json),
    }
    if let Some(fields) = record.fields {
        buf.push(b'\t');
        buf.extend_from_slice(fields);
    }
    if one_line {
        // As Node's runtime does on stdout: one line stays one CloudWatch event.
        for b in &mut buf[start..] {
            if *b == b'\n' {
                *b = b'\r';
            }
        }
    }
}

fn format_json(buf: &mut Vec<u8>, now: SystemTime, request_id: Option<&str>, record: &Record<'_>) {
    buf.extend_from_slice(b"{\"timestamp\":\"");
    buf.extend_from_slice(rfc3339_millis(now).as_bytes());
    buf.extend_from_slice(b"\",\"level\":\"");
    buf.extend_from_slice(record.level.name().as_bytes());
    buf.push(b'"');
    // Node leaves `requestId` out outside an invocation.
    if let Some(id) = request_id {
        buf.extend_from_slice(b",\"requestId\":");
        write_json_string(buf, id);
    }
    buf.extend_from_slice(b",\"message\":");
    match record.message {
        Message::Text(text) => write_json_string(buf, text),
        Message::Json(json) => buf.extend_from_slice(json),
    }
    if let Some(members) = record.fields.and_then(object_members)
        && !members.is_empty()
    {
        buf.push(b',');
        buf.extend_from_slice(members);
    }
    buf.push(b'}');
}

/// The members of a compact JSON object's text: `{"a":1}` → `"a":1`.
fn object_members(object: &[u8]) -> Option<&[u8]> {
    object.strip_prefix(b"{")?.strip_suffix(b"}")
}

/// Writes bytes to stdout or stderr as they are (e.g. Lambda-style REPORT lines).
pub fn write_raw(bytes: &[u8]) {
    // A log write that fails (closed pipe) must not take the invocation down.
    let _ = match logger().sink {
        Sink::Stderr => std::io::stderr().lock().write_all(bytes),
        Sink::Stdout | Sink::Telemetry(_) => std::io::stdout().lock().write_all(bytes),
    };
}

/// `2024-05-01T12:34:56.789Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    // Empty for a clock set past the year 9999: a log line is no reason to stop.
    crate::stdlib::time::iso8601(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const T: u64 = 1_709_251_199_123;

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(T)
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        assert_eq!(rfc3339_millis(at()), "2024-02-29T23:59:59.123Z");
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    fn text(record: &Record<'_>, request_id: Option<&str>, one_line: bool) -> String {
        let mut buf = Vec::new();
        format_text(&mut buf, at(), request_id, record, one_line);
        String::from_utf8(buf).unwrap()
    }

    fn json(record: &Record<'_>, request_id: Option<&str>) -> String {
        let mut buf = Vec::new();
        format_json(&mut buf, at(), request_id, record);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn text_records_use_nodes_layout() {
        let record = Record {
            level: Level::Warn,
            message: Message::Text("two\nlines"),
            fields: Some(br#"{"k":1}"#),
        };
        assert_eq!(
            text(&record, Some("req-1"), true),
            "2024-02-29T23:59:59.123Z\treq-1\tWARN\ttwo\rlines\t{\"k\":1}"
        );
        assert_eq!(
            text(&record, None, false),
            "2024-02-29T23:59:59.123Z\tundefined\tWARN\ttwo\nlines\t{\"k\":1}"
        );
    }

    #[test]
    fn json_records_merge_fields_and_embed_json_messages() {
        let record = Record {
            level: Level::Info,
            message: Message::Json(br#"{"a":[1]}"#),
            fields: Some(br#"{"user":"bob"}"#),
        };
        assert_eq!(
            json(&record, Some("req-1")),
            r#"{"timestamp":"2024-02-29T23:59:59.123Z","level":"INFO","requestId":"req-1","message":{"a":[1]},"user":"bob"}"#
        );
        let record = Record {
            level: Level::Error,
            message: Message::Text("a \"quoted\"\nline"),
            fields: Some(b"{}"),
        };
        assert_eq!(
            json(&record, None),
            r#"{"timestamp":"2024-02-29T23:59:59.123Z","level":"ERROR","message":"a \"quoted\"\nline"}"#
        );
    }

    #[test]
    fn levels_parse_case_insensitively_and_order() {
        assert_eq!(Level::parse("warn"), Some(Level::Warn));
        assert_eq!(Level::parse(" FATAL "), Some(Level::Fatal));
        assert_eq!(Level::parse("verbose"), None);
        assert!(Level::Trace < Level::Debug && Level::Error < Level::Fatal);
        assert_eq!(FRAME_TEXT | Level::Error.frame_mask(), 0xA55A_0017);
    }
}
