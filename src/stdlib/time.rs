//! `time` (SPEC 7.2): wall-clock milliseconds, a monotonic clock, ISO 8601 text
//! both ways, and a sleep that never outlasts the invocation.
//!
//! ISO 8601 is read in the profile RFC 3339 and JavaScript's `Date` use, date-only
//! allowed: `YYYY-MM-DD`, then optionally `T` (or `t` or a space), `hh:mm`,
//! `:ss`, a fraction after `.` or `,` (digits past milliseconds are truncated),
//! and an offset `Z`, `±hh:mm`, `±hhmm` or `±hh` (none: UTC). The calendar is
//! hand-written (Howard Hinnant's day arithmetic): the date and time crates that
//! do this cost more than the two functions used.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::binding::{self, Args, Error, Function, Module, Param, Type, Value};
use crate::deadline;

const MS_PER_DAY: i64 = 86_400_000;
/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the years four digits hold.
const EARLIEST_MS: i64 = -62_167_219_200_000;
const LATEST_MS: i64 = 253_402_300_799_999;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_millis() as i64,
        Err(before) => -(before.duration().as_millis() as i64),
    }
}

/// `ms` since the epoch as `2024-05-01T12:00:00.123Z`; `None` outside years 0-9999.
pub fn iso8601(ms: i64) -> Option<String> {
    if !(EARLIEST_MS..=LATEST_MS).contains(&ms) {
        return None;
    }
    let (days, in_day) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    let secs = in_day / 1000;
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        in_day % 1000
    ))
}

/// Days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Milliseconds since the epoch of an ISO 8601 date-time (see the module doc); the
/// error says what was expected and at which byte.
pub fn parse_iso8601(text: &str) -> Result<i64, String> {
    let mut p = Cursor {
        bytes: text.as_bytes(),
        at: 0,
    };
    let year = p.number(4, "a four-digit year")?;
    p.expect(b'-')?;
    let month = p.number(2, "a two-digit month")?;
    p.expect(b'-')?;
    let day = p.number(2, "a two-digit day")?;
    if !(1..=12).contains(&month) {
        return Err(format!("has no month {month}"));
    }
    if !(1..=days_in_month(year, month)).contains(&day) {
        return Err(format!("has no day {day} in {year:04}-{month:02}"));
    }
    let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
    if p.done() {
        return Ok(ms);
    }
    if !matches!(p.next(), Some(b'T' | b't' | b' ')) {
        return Err(p.expected("'T' between the date and the time", 1));
    }
    let hour = p.number(2, "a two-digit hour")?;
    p.expect(b':')?;
    let minute = p.number(2, "two-digit minutes")?;
    let mut second = 0;
    if p.peek() == Some(b':') {
        p.at += 1;
        second = p.number(2, "two-digit seconds")?;
        if matches!(p.peek(), Some(b'.' | b',')) {
            p.at += 1;
            let digits = p.digits();
            if digits.is_empty() {
                return Err(p.expected("the digits of a fraction of a second", 0));
            }
            // Milliseconds: the first three digits, zero-padded; the rest are cut.
            let millis = digits
                .iter()
                .chain(b"000")
                .take(3)
                .fold(0, |n, d| n * 10 + i64::from(d - b'0'));
            ms += millis;
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("has no time {hour:02}:{minute:02}:{second:02}"));
    }
    ms += ((hour * 60 + minute) * 60 + second) * 1000;
    let offset_minutes = match p.next() {
        None => 0,
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hours = p.number(2, "a two-digit offset hour")?;
            if p.peek() == Some(b':') {
                p.at += 1;
            }
            let minutes = if p.done() {
                0
            } else {
                p.number(2, "two-digit offset minutes")?
            };
            if hours > 23 || minutes > 59 {
                return Err(format!("has no offset {hours:02}:{minutes:02}"));
            }
            let offset = hours * 60 + minutes;
            if sign == b'-' { -offset } else { offset }
        }
        Some(_) => return Err(p.expected("an offset (Z, +hh:mm or -hh:mm)", 1)),
    };
    if !p.done() {
        return Err(p.expected("the end of the text", 0));
    }
    Ok(ms - offset_minutes * 60_000)
}

/// Reads a date-time text byte by byte.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek();
        self.at += 1;
        byte
    }

    fn digits(&mut self) -> &[u8] {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        &self.bytes[start..self.at]
    }

    /// Exactly `n` digits, as a number.
    fn number(&mut self, n: usize, what: &str) -> Result<i64, String> {
        let digits = self.bytes.get(self.at..self.at + n);
        match digits {
            Some(d) if d.iter().all(u8::is_ascii_digit) => {
                self.at += n;
                Ok(d.iter().fold(0, |acc, b| acc * 10 + i64::from(b - b'0')))
            }
            _ => Err(self.expected(what, 0)),
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.next() == Some(byte) {
            Ok(())
        } else {
            Err(self.expected(&format!("'{}'", byte as char), 1))
        }
    }

    /// "expected WHAT at byte N", N being the byte `back` bytes before the cursor.
    fn expected(&self, what: &str, back: usize) -> String {
        let at = self.at.saturating_sub(back);
        format!("is not an ISO 8601 date-time: expected {what} at byte {at}")
    }
}

/// Milliseconds since the first call, as a float: for measuring durations.
fn monotonic_ms() -> f64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

fn now_fn(_: &Args) -> Result<Value, Error> {
    Ok(Value::Int(now_ms()))
}

fn monotonic_fn(_: &Args) -> Result<Value, Error> {
    Ok(Value::Float(monotonic_ms()))
}

fn iso8601_fn(args: &Args) -> Result<Value, Error> {
    let ms = args.optional_int(1)?.unwrap_or_else(now_ms);
    iso8601(ms).map(Value::Text).ok_or_else(|| {
        Error::argument(
            1,
            format!("must be from {EARLIEST_MS} to {LATEST_MS} (the years 0 to 9999), not {ms}"),
        )
    })
}

fn parse_iso8601_fn(args: &Args) -> Result<Value, Error> {
    parse_iso8601(args.text(1)?)
        .map(Value::Int)
        .map_err(|detail| Error::argument(1, detail))
}

fn sleep_fn(args: &Args) -> Result<Value, Error> {
    let ms = args.number(1)?;
    let wanted = Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| {
        Error::argument(
            1,
            format!("must be a number of milliseconds from 0, not {ms}"),
        )
    })?;
    if deadline::wait(wanted) {
        Ok(Value::Nil)
    } else {
        // The engine answers Runtime.Timeout: the stop counts as reached, so even a
        // script that catches this error is stopped at its next instruction.
        Err(Error::Failed(format!(
            "the invocation's deadline came before {ms} ms were over"
        )))
    }
}

static TIME: Module = Module {
    name: "time",
    functions: &[
        Function {
            name: "now",
            params: &[],
            returns: Type::Int,
            doc: "Milliseconds since the Unix epoch, now.",
            call: now_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "monotonic",
            params: &[],
            returns: Type::Number,
            doc: "A monotonic clock in milliseconds (a float), for measuring how long something took.",
            call: monotonic_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "iso8601",
            params: &[Param::optional("ms", Type::Int)],
            returns: Type::Text,
            doc: "`ms` since the epoch (default: now) as ISO 8601 UTC text: `2024-05-01T12:00:00.123Z`.",
            call: iso8601_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "parse_iso8601",
            params: &[Param::new("text", Type::Text)],
            returns: Type::Int,
            doc: "Milliseconds since the epoch of ISO 8601 text (offsets honoured, none means UTC).",
            call: parse_iso8601_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "sleep",
            params: &[Param::new("ms", Type::Number)],
            returns: Type::Nothing,
            doc: "Waits `ms` milliseconds; a wait that would outlast the invocation's deadline ends it with Runtime.Timeout.",
            call: sleep_fn,
            rhai_blob_twin: None,
        },
    ],
};

pub fn register_lua(lua: &mlua::Lua) -> mlua::Result<()> {
    binding::lua::register(lua, &TIME)
}

pub fn register_rhai(
    engine: &mut rhai::Engine,
    definitions: Option<&mut binding::rhai::Definitions>,
) {
    binding::rhai::register(engine, &TIME, definitions);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds_across_the_calendar() {
        assert_eq!(iso8601(0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601(1_709_251_199_123).unwrap(),
            "2024-02-29T23:59:59.123Z"
        );
        assert_eq!(iso8601(-1).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso8601(EARLIEST_MS).unwrap(), "0000-01-01T00:00:00.000Z");
        assert_eq!(iso8601(LATEST_MS).unwrap(), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso8601(LATEST_MS + 1), None);
        assert_eq!(iso8601(EARLIEST_MS - 1), None);
    }

    #[test]
    fn parses_what_it_formats_and_every_day_round_trips() {
        for ms in [0, -1, 1_709_251_199_123, EARLIEST_MS, LATEST_MS] {
            assert_eq!(parse_iso8601(&iso8601(ms).unwrap()), Ok(ms));
        }
        let mut day = days_from_civil(1899, 12, 25);
        while day < days_from_civil(2101, 1, 7) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            day += 1;
        }
    }

    #[test]
    fn honours_offsets_and_defaults_to_utc() {
        let utc = parse_iso8601("2024-05-01T12:00:00Z").unwrap();
        for text in [
            "2024-05-01T12:00:00",
            "2024-05-01t12:00:00z",
            "2024-05-01 12:00:00.000Z",
            "2024-05-01T14:00:00+02:00",
            "2024-05-01T14:00:00+0200",
            "2024-05-01T14:00:00+02",
            "2024-05-01T06:30:00-05:30",
            "2024-05-01T12:00Z",
        ] {
            assert_eq!(parse_iso8601(text), Ok(utc), "{text}");
        }
        assert_eq!(parse_iso8601("2024-05-01"), Ok(utc - 12 * 3_600_000));
        // Fractions beyond milliseconds are truncated, shorter ones scaled.
        assert_eq!(parse_iso8601("2024-05-01T12:00:00.1239999Z"), Ok(utc + 123));
        assert_eq!(parse_iso8601("2024-05-01T12:00:00.5Z"), Ok(utc + 500));
        assert_eq!(parse_iso8601("2024-05-01T12:00:00,25Z"), Ok(utc + 250));
    }

    #[test]
    fn bad_text_says_what_was_expected_where() {
        let cases = [
            (
                "",
                "is not an ISO 8601 date-time: expected a four-digit year at byte 0",
            ),
            (
                "2024/05/01",
                "is not an ISO 8601 date-time: expected '-' at byte 4",
            ),
            ("2024-13-01", "has no month 13"),
            ("2023-02-29", "has no day 29 in 2023-02"),
            (
                "2024-05-01X12:00",
                "is not an ISO 8601 date-time: expected 'T' between the date and the time at byte 10",
            ),
            ("2024-05-01T25:00", "has no time 25:00:00"),
            (
                "2024-05-01T12:00:00.Z",
                "is not an ISO 8601 date-time: expected the digits of a fraction of a second at byte 20",
            ),
            (
                "2024-05-01T12:00:00Q",
                "is not an ISO 8601 date-time: expected an offset (Z, +hh:mm or -hh:mm) at byte 19",
            ),
            (
                "2024-05-01T12:00:00Z and more",
                "is not an ISO 8601 date-time: expected the end of the text at byte 20",
            ),
            ("2024-05-01T12:00:00+25:00", "has no offset 25:00"),
        ];
        for (text, error) in cases {
            assert_eq!(parse_iso8601(text).unwrap_err(), error, "{text:?}");
        }
    }
}
