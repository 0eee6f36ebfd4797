//! JSON in and out of script values: the pieces both languages share.
//!
//! Decoding goes straight from bytes to script values through serde's visitor API
//! (no intermediate `serde_json::Value`); encoding writes script values straight to
//! bytes. Each language's half lives in its own file.

pub mod lua;
pub mod rhai;

use std::fmt;

use serde::de::DeserializeSeed;

/// Deepest nesting decoded or encoded. Events nested up to this depth round-trip;
/// deeper ones are a clean error rather than a stack overflow.
pub const MAX_DEPTH: usize = 1024;

/// Decodes `bytes` with a language's seed, rejecting trailing garbage.
///
/// Read as bytes, serde_json checks that each string is UTF-8 on its own; checking
/// the whole text once and reading it as `str` is cheaper on an event of many
/// short strings (5% fewer instructions for a 256 KB echo). Text that is not UTF-8
/// is read as bytes, so that its error is serde_json's, with line and column.
pub(crate) fn decode_with<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => decode_from(serde_json::Deserializer::from_str(text), seed),
        Err(_) => decode_from(serde_json::Deserializer::from_slice(bytes), seed),
    }
    .map_err(|e| explain_surrogate(bytes, e))
}

/// serde_json calls an unpaired UTF-16 surrogate (`"\ud800"`, which
/// `JSON.parse` would take) an "unexpected end of hex escape" or a "lone
/// leading surrogate", whichever half it is: say what it is, and which escape.
fn explain_surrogate(bytes: &[u8], e: serde_json::Error) -> serde_json::Error {
    let message = e.to_string();
    if !message.contains("hex escape") {
        return e;
    }
    let (line, column) = (e.line(), e.column());
    let line_start = bytes
        .split(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum::<usize>();
    let end = (line_start + column).min(bytes.len());
    // The last escape up to the error that is half of a pair.
    let escape = (0..end.saturating_sub(5)).rev().find_map(|at| {
        let six = bytes.get(at..at + 6)?;
        let hex = std::str::from_utf8(six.strip_prefix(b"\\u")?).ok()?;
        let unit = u16::from_str_radix(hex, 16).ok()?;
        (0xd800..=0xdfff)
            .contains(&unit)
            .then(|| String::from_utf8_lossy(six).into_owned())
    });
    match escape {
        Some(escape) => serde::de::Error::custom(format_args!(
            "{escape} is a lone UTF-16 surrogate (half of a pair), not a Unicode character, \
             at line {line} column {column}"
        )),
        None => e,
    }
}

fn decode_from<'de, R: serde_json::de::Read<'de>, S: DeserializeSeed<'de>>(
    mut de: serde_json::Deserializer<R>,
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    // Our seeds count depth themselves and stop at MAX_DEPTH; serde_json's own
    // limit (128) is far below what events need.
    de.disable_recursion_limit();
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The error a seed returns when nesting passes [`MAX_DEPTH`].
pub(crate) fn too_deep<E: serde::de::Error>() -> E {
    E::custom(format_args!("JSON nested deeper than {MAX_DEPTH} levels"))
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathSegment {
    Key(String),
    Index(usize),
}

/// A value that cannot be written as JSON, and where it sits in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    reason: String,
    /// Innermost segment first: segments are pushed as the error unwinds.
    path: Vec<PathSegment>,
    kind: EncodeErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EncodeErrorKind {
    /// The value holds something JSON cannot.
    Value,
    /// The text went past its writer's cap (see [`Writer::exhausted`]).
    TooLarge,
    /// The encoder's own working memory would go past the script's memory limit.
    OutOfMemory,
}

impl EncodeError {
    pub fn new(reason: impl Into<String>) -> Self {
        EncodeError {
            reason: reason.into(),
            path: Vec::new(),
            kind: EncodeErrorKind::Value,
        }
    }

    /// The text went past `cap` bytes: the encoder stopped there.
    pub fn too_large(cap: usize) -> Self {
        EncodeError {
            kind: EncodeErrorKind::TooLarge,
            ..Self::new(format!("the JSON text is over {cap} bytes"))
        }
    }

    /// Encoding would take more memory than the script has left.
    pub fn out_of_memory(reason: impl Into<String>) -> Self {
        EncodeError {
            kind: EncodeErrorKind::OutOfMemory,
            ..Self::new(reason)
        }
    }

    /// Whether the text went past its writer's cap.
    pub fn is_too_large(&self) -> bool {
        self.kind == EncodeErrorKind::TooLarge
    }

    /// Whether encoding ran out of the script's memory.
    pub fn is_out_of_memory(&self) -> bool {
        self.kind == EncodeErrorKind::OutOfMemory
    }

    pub fn at_key(mut self, key: impl Into<String>) -> Self {
        self.path.push(PathSegment::Key(key.into()));
        self
    }

    pub fn at_index(mut self, index: usize) -> Self {
        self.path.push(PathSegment::Index(index));
        self
    }

    /// The JSONPath of the offending value, 0-based: `$.items[2].price`.
    pub fn path(&self) -> String {
        let mut out = String::from("$");
        for segment in self.path.iter().rev() {
            match segment {
                PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
                PathSegment::Key(k) if is_identifier(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                PathSegment::Key(k) => {
                    out.push_str("['");
                    for c in k.chars() {
                        if c == '\'' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push_str("']");
                }
            }
        }
        out
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.reason, self.path())
    }
}

impl std::error::Error for EncodeError {}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Writes JSON text, compact or indented by two spaces as `JSON.stringify(v, null, 2)`.
///
/// A writer may have a size limit: past it, bytes are only counted, not stored,
/// so an oversize response is measured without being held in memory; and a cap,
/// past which the encoders stop ([`Writer::exhausted`]), so that neither memory nor
/// time go into text that could never be used.
pub struct Writer {
    out: Vec<u8>,
    pretty: bool,
    level: usize,
    limit: usize,
    /// Bytes produced beyond `limit` (not stored).
    overflow: usize,
    cap: usize,
}

impl Writer {
    pub fn new(pretty: bool) -> Self {
        Self::measuring(pretty, usize::MAX, usize::MAX)
    }

    /// A writer that stores at most `limit` bytes and stops there: text for a
    /// bounded buffer (a script's `json.encode`, a log record).
    pub fn with_limit(pretty: bool, limit: usize) -> Self {
        Self::measuring(pretty, limit, limit)
    }

    /// A writer that stores at most `limit` bytes and measures what goes beyond,
    /// up to `cap` (at least `limit`): see [`Writer::finish`].
    pub fn measuring(pretty: bool, limit: usize, cap: usize) -> Self {
        Writer {
            out: Vec::new(),
            pretty,
            level: 0,
            limit,
            overflow: 0,
            cap: cap.max(limit),
        }
    }

    /// Whether the text went past the writer's cap: the encoders then stop, with
    /// [`EncodeError::too_large`].
    #[inline]
    pub fn exhausted(&self) -> bool {
        self.overflow > 0 && self.out.len() + self.overflow > self.cap
    }

    /// The end of a document: [`EncodeError::too_large`] if the text went past
    /// the cap, though only in its last bytes (closing brackets), after the
    /// encoder's last look at [`Writer::exhausted`].
    pub fn finish_document(&self) -> Result<(), EncodeError> {
        if self.exhausted() {
            Err(EncodeError::too_large(self.cap))
        } else {
            Ok(())
        }
    }

    /// The cap given to [`Writer::measuring`] (or the limit).
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// How many bytes are stored (the buffer's share of memory).
    pub fn stored_len(&self) -> usize {
        self.out.len()
    }

    /// The text stored so far: all of it, or its first `limit` bytes.
    pub fn stored(self) -> Vec<u8> {
        self.out
    }

    /// Room for `additional` bytes (up to the limit) before the buffer grows.
    pub fn reserve(&mut self, additional: usize) {
        let room = self.limit.saturating_sub(self.out.len());
        self.out.reserve(additional.min(room));
    }

    /// The text; only for writers without a limit.
    pub fn into_bytes(self) -> Vec<u8> {
        debug_assert_eq!(self.overflow, 0, "into_bytes on a writer that overflowed");
        self.out
    }

    /// The text, or its full length when it went over the limit (as far as it was
    /// measured: past the cap, the encoders stopped).
    pub fn finish(self) -> Result<Vec<u8>, usize> {
        if self.overflow == 0 {
            Ok(self.out)
        } else {
            Err(self.out.len() + self.overflow)
        }
    }

    /// Stores `bytes`, or as many of them as the limit leaves room for: what is
    /// stored is always the text's first bytes (see [`Writer::stored`]).
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if self.overflow == 0 && self.limit - self.out.len() >= bytes.len() {
            self.out.extend_from_slice(bytes);
        } else {
            let room = self.room();
            self.out.extend_from_slice(&bytes[..room]);
            self.overflow += bytes.len() - room;
        }
    }

    /// Bytes that can still be stored.
    #[inline]
    fn room(&self) -> usize {
        if self.overflow == 0 {
            self.limit - self.out.len()
        } else {
            0
        }
    }

    /// [`Writer::put`] for one byte: punctuation is most of what is written.
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        if self.overflow == 0 && self.limit > self.out.len() {
            self.out.push(byte);
        } else {
            self.overflow += 1;
        }
    }

    pub fn null(&mut self) {
        self.put(b"null");
    }

    pub fn bool(&mut self, b: bool) {
        self.put(if b { b"true" } else { b"false" });
    }

    pub fn int(&mut self, i: i64) {
        self.put(itoa::Buffer::new().format(i).as_bytes());
    }

    /// Floats as JavaScript prints them: whole numbers without `.0`.
    pub fn float(&mut self, f: f64) -> Result<(), EncodeError> {
        if !f.is_finite() {
            return Err(EncodeError::new(format!(
                "{} is not a JSON number",
                if f.is_nan() { "NaN" } else { "Infinity" }
            )));
        }
        if f == 0.0 {
            // -0 prints as 0, as in JavaScript.
            self.put(b"0");
        } else {
            self.put(ryu_js::Buffer::new().format_finite(f).as_bytes());
        }
        Ok(())
    }

    pub fn string(&mut self, s: &str) {
        let _ = self.escaped(s.as_bytes(), false);
    }

    /// A string given as bytes, which must be UTF-8.
    pub fn string_bytes(&mut self, bytes: &[u8]) -> Result<(), std::str::Utf8Error> {
        self.escaped(bytes, true)
    }

    /// Writes a string literal: straight into the output when even the worst case
    /// fits under the limit; escaped aside, then stored as far as it fits, when at
    /// least its unescaped length does; else only its head, as much as the limit
    /// leaves room for, is escaped and stored, and the rest measured (a huge string
    /// is never copied past the limit).
    #[inline]
    fn escaped(&mut self, bytes: &[u8], check_utf8: bool) -> Result<(), std::str::Utf8Error> {
        let room = self.room();
        // An escaped string is at most 6 bytes per input byte, plus quotes.
        if bytes.len().saturating_mul(6).saturating_add(2) <= room {
            escape_into(&mut self.out, bytes, check_utf8)
        } else if bytes.len().saturating_add(2) <= room {
            let mut escaped = Vec::new();
            let result = escape_into(&mut escaped, bytes, check_utf8);
            self.put(&escaped);
            result
        } else {
            self.escaped_head(bytes, check_utf8, room)
        }
    }

    /// [`Writer::escaped`] for a string longer than the room left: its head is
    /// stored, the rest measured. Out of line: the common case stays small.
    #[cold]
    #[inline(never)]
    fn escaped_head(
        &mut self,
        bytes: &[u8],
        check_utf8: bool,
        room: usize,
    ) -> Result<(), std::str::Utf8Error> {
        if check_utf8 {
            std::str::from_utf8(bytes)?;
        }
        let total = escaped_len(bytes);
        let mut stored = 0;
        if room > 0 {
            // Escaping never shortens text: `room` input bytes (back to a
            // character's start) make at least the head that fits. Without its
            // closing quote, the head's text is the start of the whole's.
            let mut end = room.min(bytes.len());
            while end > 0 && end < bytes.len() && bytes[end] & 0xC0 == 0x80 {
                end -= 1;
            }
            let mut head = Vec::with_capacity(room + 8);
            escape_into(&mut head, &bytes[..end], false).expect("checked");
            head.pop();
            stored = head.len().min(room);
            self.out.extend_from_slice(&head[..stored]);
        }
        self.overflow = self.overflow.saturating_add(total - stored);
        Ok(())
    }

    pub fn begin_array(&mut self) {
        self.put_byte(b'[');
        self.level += 1;
    }

    /// Call before each array element; `first` for the first one.
    pub fn element(&mut self, first: bool) {
        if !first {
            self.put_byte(b',');
        }
        self.newline();
    }

    pub fn end_array(&mut self, empty: bool) {
        self.level -= 1;
        if !empty {
            self.newline();
        }
        self.put_byte(b']');
    }

    pub fn begin_object(&mut self) {
        self.put_byte(b'{');
        self.level += 1;
    }

    /// Call before each member's value; `first` for the first one.
    pub fn member(&mut self, first: bool, key: &str) {
        self.element(first);
        self.string(key);
        self.colon();
    }

    /// [`Writer::member`] with the key already written as a JSON string literal.
    pub fn member_literal(&mut self, first: bool, literal: &[u8]) {
        self.element(first);
        self.put(literal);
        self.colon();
    }

    fn colon(&mut self) {
        self.put_byte(b':');
        if self.pretty {
            self.put_byte(b' ');
        }
    }

    pub fn end_object(&mut self, empty: bool) {
        self.level -= 1;
        if !empty {
            self.newline();
        }
        self.put_byte(b'}');
    }

    fn newline(&mut self) {
        if self.pretty {
            self.put_byte(b'\n');
            for _ in 0..self.level {
                self.put(b"  ");
            }
        }
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // A `str` is UTF-8 already: nothing to check.
    let _ = escape_into(out, s.as_bytes(), false);
}

/// Appends `bytes` as a JSON string literal, or fails if they are not UTF-8 (having
/// written part of it: the caller discards the output).
pub(crate) fn write_json_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), std::str::Utf8Error> {
    escape_into(out, bytes, true)
}

/// What follows the backslash for each byte JSON requires escaped (0: as it is;
/// `u`: `\u00XX`), as `JSON.stringify` writes them.
static ESCAPE: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);

/// The length of `bytes` as a JSON string literal, quotes included.
fn escaped_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|&b| match ESCAPE[usize::from(b)] {
            0 => 1,
            b'u' => 6,
            _ => 2,
        })
        .sum::<usize>()
        + 2
}

/// Whether any of the 8 bytes in `word` is a control character, `"`, `\`, or (with
/// `high` = [`HIGH`]) not ASCII: the bit tricks of "Bit Twiddling Hacks" (a byte
/// less than n; a zero byte), exact for each byte, so no false positive either.
fn needs_a_look(word: u64, high: u64) -> bool {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let is_quote = quote.wrapping_sub(ONES) & !quote;
    let is_backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | is_quote | is_backslash | (word & high)) & HIGH != 0
}

/// The one pass over a string's bytes: eight at a time while none needs escaping,
/// and, with `check_utf8`, the first non-ASCII byte validates the rest as UTF-8 (the
/// bytes before it being ASCII) once.
fn escape_into(
    out: &mut Vec<u8>,
    bytes: &[u8],
    check_utf8: bool,
) -> Result<(), std::str::Utf8Error> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut high = if check_utf8 { HIGH } else { 0 };
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_ne_bytes(chunk.try_into().expect("8 bytes"));
            if !needs_a_look(word, high) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape = ESCAPE[usize::from(b)];
        if b >= 0x80 && high != 0 {
            std::str::from_utf8(&bytes[i..])?;
            high = 0;
        } else if escape != 0 {
            out.extend_from_slice(&bytes[start..i]);
            if escape == b'u' {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            } else {
                out.extend_from_slice(&[b'\\', escape]);
            }
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_jsonpath_zero_based() {
        let e = EncodeError::new("x")
            .at_key("price")
            .at_index(2)
            .at_key("items");
        assert_eq!(e.path(), "$.items[2].price");
        let e = EncodeError::new("x").at_key("content-type").at_key("it's");
        assert_eq!(e.path(), "$['it\\'s']['content-type']");
        assert_eq!(EncodeError::new("x").path(), "$");
    }

    #[test]
    fn floats_print_as_javascript_does() {
        let mut w = Writer::new(false);
        for f in [3.0, 0.5, -0.0, 1e21, 1e-7, 123456789012.0] {
            w.float(f).unwrap();
            w.put(b" ");
        }
        assert_eq!(
            String::from_utf8(w.into_bytes()).unwrap(),
            "3 0.5 0 1e+21 1e-7 123456789012 "
        );
        assert!(Writer::new(false).float(f64::NAN).is_err());
        assert!(Writer::new(false).float(f64::INFINITY).is_err());
    }

    #[test]
    fn strings_escape_only_what_json_requires() {
        let mut out = Vec::new();
        write_json_string(&mut out, "a\"b\\c\n\u{1}é☃");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\n\\u0001é☃\""
        );
    }

    /// Every special byte, and a non-UTF-8 one, at every position of strings around
    /// the 8-byte chunks: the same literal as serde_json writes (JSON.stringify's
    /// escapes), or an error exactly when the bytes are not UTF-8.
    #[test]
    fn the_chunked_escaper_matches_serde_json_everywhere() {
        let specials: [&[u8]; 10] = [
            b"\"",
            b"\\",
            b"\n",
            b"\x00",
            b"\x1f",
            b"\x7f",
            "é".as_bytes(),
            "☃".as_bytes(),
            b"\xff",
            b"\xe2\x98",
        ];
        for special in specials {
            for len in 0..20 {
                for at in 0..=len {
                    let mut bytes = vec![b'a'; len];
                    bytes.splice(at..at, special.iter().copied());
                    let mut out = Vec::new();
                    let result = write_json_bytes(&mut out, &bytes);
                    match std::str::from_utf8(&bytes) {
                        Ok(text) => {
                            assert!(result.is_ok(), "{bytes:?}");
                            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{bytes:?}");
                            let mut from_str = Vec::new();
                            write_json_string(&mut from_str, text);
                            assert_eq!(from_str, out);
                        }
                        Err(_) => assert!(result.is_err(), "{bytes:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn a_limited_writer_counts_what_it_does_not_store() {
        let mut w = Writer::with_limit(false, 9);
        w.begin_array();
        w.element(true);
        w.string("abc\n");
        w.end_array(false);
        assert_eq!(w.finish(), Ok(b"[\"abc\\n\"]".to_vec()));

        let mut w = Writer::with_limit(false, 8);
        w.begin_array();
        for i in 0..5 {
            w.element(i == 0);
            w.string("long string");
        }
        w.end_array(false);
        let full = 2 + 5 * 13 + 4;
        assert_eq!(w.finish(), Err(full));
    }

    /// What a limited writer stores is always the text's first bytes, and, up to
    /// a character or escape sequence, as many as the limit allows: a cut log
    /// record or error message shows as much of the value as it can.
    #[test]
    fn a_limited_writer_stores_the_texts_head_up_to_its_limit() {
        let write = |w: &mut Writer| {
            w.begin_object();
            w.member(true, "k\u{e9}y");
            w.string("line\nquote\"caf\u{e9} \u{1F600}\u{1} end");
            w.member(false, "n");
            w.int(-12345);
            w.end_object(false);
        };
        let mut whole = Writer::new(false);
        write(&mut whole);
        let whole = whole.into_bytes();
        for limit in 0..whole.len() + 2 {
            let mut w = Writer::with_limit(false, limit);
            write(&mut w);
            let stored = w.stored();
            assert!(whole.starts_with(&stored), "limit {limit}: {stored:?}");
            assert!(
                stored.len() + 6 >= limit.min(whole.len()),
                "limit {limit}: only {} bytes stored",
                stored.len()
            );
        }
    }

    #[test]
    fn pretty_output_matches_json_stringify() {
        let mut w = Writer::new(true);
        w.begin_object();
        w.member(true, "a");
        w.begin_array();
        w.element(true);
        w.int(1);
        w.end_array(false);
        w.member(false, "b");
        w.begin_object();
        w.end_object(true);
        w.end_object(false);
        assert_eq!(
            String::from_utf8(w.into_bytes()).unwrap(),
            "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}"
        );
    }
}
