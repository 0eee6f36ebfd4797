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
pub fn decode_with<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Our seeds count depth themselves and stop at MAX_DEPTH; serde_json's own
    // limit (128) is far below what events need.
    de.disable_recursion_limit();
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The error a seed returns when nesting passes [`MAX_DEPTH`].
pub fn too_deep<E: serde::de::Error>() -> E {
    E::custom(format_args!("JSON nested deeper than {MAX_DEPTH} levels"))
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// A value that cannot be written as JSON, and where it sits in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    reason: String,
    /// Innermost segment first: segments are pushed as the error unwinds.
    path: Vec<PathSegment>,
}

impl EncodeError {
    pub fn new(reason: impl Into<String>) -> Self {
        EncodeError {
            reason: reason.into(),
            path: Vec::new(),
        }
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
/// so an oversize response is measured exactly without being held in memory.
pub struct Writer {
    out: Vec<u8>,
    pretty: bool,
    level: usize,
    limit: usize,
    /// Bytes produced beyond `limit` (not stored).
    overflow: usize,
}

impl Writer {
    pub fn new(pretty: bool) -> Self {
        Self::with_limit(pretty, usize::MAX)
    }

    /// A writer that stores at most `limit` bytes; see [`Writer::finish`].
    pub fn with_limit(pretty: bool, limit: usize) -> Self {
        Writer {
            out: Vec::new(),
            pretty,
            level: 0,
            limit,
            overflow: 0,
        }
    }

    /// The text; only for writers without a limit.
    pub fn into_bytes(self) -> Vec<u8> {
        debug_assert_eq!(self.overflow, 0, "into_bytes on a writer that overflowed");
        self.out
    }

    /// The text, or its full length when it went over the limit.
    pub fn finish(self) -> Result<Vec<u8>, usize> {
        if self.overflow == 0 {
            Ok(self.out)
        } else {
            Err(self.out.len() + self.overflow)
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.overflow == 0 && self.limit - self.out.len() >= bytes.len() {
            self.out.extend_from_slice(bytes);
        } else {
            self.overflow += bytes.len();
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
        // An escaped string is at most 6 bytes per input byte, plus quotes.
        let worst_case = s.len().saturating_mul(6).saturating_add(2);
        if self.overflow == 0 && self.limit - self.out.len() >= worst_case {
            write_json_string(&mut self.out, s);
        } else {
            let mut escaped = Vec::new();
            write_json_string(&mut escaped, s);
            self.put(&escaped);
        }
    }

    pub fn begin_array(&mut self) {
        self.put(b"[");
        self.level += 1;
    }

    /// Call before each array element; `first` for the first one.
    pub fn element(&mut self, first: bool) {
        if !first {
            self.put(b",");
        }
        self.newline();
    }

    pub fn end_array(&mut self, empty: bool) {
        self.level -= 1;
        if !empty {
            self.newline();
        }
        self.put(b"]");
    }

    pub fn begin_object(&mut self) {
        self.put(b"{");
        self.level += 1;
    }

    /// Call before each member's value; `first` for the first one.
    pub fn member(&mut self, first: bool, key: &str) {
        self.element(first);
        self.string(key);
        self.put(if self.pretty { b": " } else { b":" });
    }

    pub fn end_object(&mut self, empty: bool) {
        self.level -= 1;
        if !empty {
            self.newline();
        }
        self.put(b"}");
    }

    fn newline(&mut self) {
        if self.pretty {
            self.put(b"\n");
            for _ in 0..self.level {
                self.put(b"  ");
            }
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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
