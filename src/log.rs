//! Function logs: one record per call, written with a single `write` so lines
//! from different sources never interleave.

use std::cell::RefCell;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

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
}

/// Where records go: stdout on Lambda, stderr for `lure invoke` (whose stdout
/// carries only the response body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

static SINK: OnceLock<Sink> = OnceLock::new();

thread_local! {
    static REQUEST_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Chooses the sink; the first call wins. Without a call, records go to stdout.
pub fn set_sink(sink: Sink) {
    let _ = SINK.set(sink);
}

/// The request id logged with each record; `None` outside an invocation.
pub fn set_request_id(id: Option<&str>) {
    REQUEST_ID.with(|r| *r.borrow_mut() = id.map(str::to_owned));
}

/// Writes one record in Node's text layout: `TIMESTAMP\tREQUEST_ID\tLEVEL\tmessage`.
/// Newlines in the message become `\r`, as Node's runtime does, so a multi-line
/// message stays one CloudWatch event.
pub fn write(level: Level, message: &str) {
    let mut line = String::with_capacity(48 + message.len());
    line.push_str(&rfc3339_millis(SystemTime::now()));
    line.push('\t');
    REQUEST_ID.with(|r| line.push_str(r.borrow().as_deref().unwrap_or("undefined")));
    line.push('\t');
    line.push_str(level.name());
    line.push('\t');
    line.extend(message.chars().map(|c| if c == '\n' { '\r' } else { c }));
    line.push('\n');
    write_raw(line.as_bytes());
}

/// Writes bytes to the sink as they are (e.g. Lambda-style REPORT lines).
pub fn write_raw(bytes: &[u8]) {
    // A log write that fails (closed pipe) must not take the invocation down.
    let _ = match SINK.get().copied().unwrap_or(Sink::Stdout) {
        Sink::Stdout => std::io::stdout().lock().write_all(bytes),
        Sink::Stderr => std::io::stderr().lock().write_all(bytes),
    };
}

/// `2024-05-01T12:34:56.789Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123); // leap year
        assert_eq!(rfc3339_millis(t), "2024-02-29T23:59:59.123Z");
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
