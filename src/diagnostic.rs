//! The one error shape that reaches Lambda: `{"errorMessage","errorType","stackTrace"}`.

use std::fmt::{self, Write};

use crate::json::write_json_string;
use crate::limits::MAX_RECORD_BYTES;

/// Error types the runtime itself reports, named as AWS names them.
pub mod error_type {
    pub const MALFORMED_HANDLER_NAME: &str = "Runtime.MalformedHandlerName";
    pub const HANDLER_NOT_FOUND: &str = "Runtime.HandlerNotFound";
    pub const IMPORT_MODULE_ERROR: &str = "Runtime.ImportModuleError";
    pub const USER_CODE_SYNTAX_ERROR: &str = "Runtime.UserCodeSyntaxError";
    pub const MARSHAL_ERROR: &str = "Runtime.MarshalError";
    pub const UNMARSHAL_ERROR: &str = "Runtime.UnmarshalError";
    pub const RESPONSE_SIZE_TOO_LARGE: &str = "Function.ResponseSizeTooLarge";
    pub const TIMEOUT: &str = "Runtime.Timeout";
    pub const OUT_OF_MEMORY: &str = "Runtime.OutOfMemory";
    /// A fault inside lure itself (a caught panic), answered instead of crashing.
    pub const INTERNAL_ERROR: &str = "Runtime.InternalError";
    /// Errors raised by a script without a type of its own (as Node's `Error`).
    pub const SCRIPT_ERROR: &str = "Error";
}

/// An error answer for an invocation or for init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub error_type: String,
    pub error_message: String,
    pub stack_trace: Vec<String>,
    /// Raised by the runtime rather than the script: such errors also carry the
    /// `Lambda-Runtime-Function-Error-Type` header, as the official clients do.
    pub from_runtime: bool,
}

impl Diagnostic {
    /// An error detected by lure itself (`Runtime.*`, `Function.*`).
    pub fn runtime(error_type: &str, error_message: impl Into<String>) -> Self {
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error_message.into(),
            stack_trace: Vec::new(),
            from_runtime: true,
        }
    }

    /// An error raised by the handler script; its message is cut at
    /// [`MAX_RECORD_BYTES`] (a script can raise a string of any length).
    pub fn script(
        error_type: impl Into<String>,
        error_message: impl Into<String>,
        stack_trace: Vec<String>,
    ) -> Self {
        Diagnostic {
            error_type: cut(error_type.into()),
            error_message: cut(error_message.into()),
            stack_trace,
            from_runtime: false,
        }
    }

    /// The event could not be turned into script values.
    pub fn unmarshal(reason: impl std::fmt::Display) -> Self {
        Self::runtime(
            error_type::UNMARSHAL_ERROR,
            format!("Unable to unmarshal input: {reason}"),
        )
    }

    /// The handler's result could not be turned into JSON.
    pub fn marshal(reason: impl std::fmt::Display) -> Self {
        Self::runtime(
            error_type::MARSHAL_ERROR,
            format!("Unable to marshal response: {reason}"),
        )
    }

    /// The script was stopped at its deadline, after running for `elapsed`.
    pub fn timeout(elapsed: std::time::Duration) -> Self {
        Self::runtime(
            error_type::TIMEOUT,
            format!("Task timed out after {:.2} seconds", elapsed.as_secs_f64()),
        )
    }

    /// The error body as Lambda expects it.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.error_message.len());
        out.extend_from_slice(b"{\"errorMessage\":");
        write_json_string(&mut out, &self.error_message);
        out.extend_from_slice(b",\"errorType\":");
        write_json_string(&mut out, &self.error_type);
        out.extend_from_slice(b",\"stackTrace\":[");
        for (i, line) in self.stack_trace.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_string(&mut out, line);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// Where a cut message ends, leaving room for the marker under [`MAX_RECORD_BYTES`].
const CUT_AT: usize = MAX_RECORD_BYTES - 64;

/// `text`, cut to at most [`MAX_RECORD_BYTES`] (on a character boundary) with a
/// marker saying how long it was.
pub fn cut(text: String) -> String {
    if text.len() > MAX_RECORD_BYTES {
        let len = text.len();
        mark_cut(text, Some(len))
    } else {
        text
    }
}

/// `bytes` as text (invalid UTF-8 replaced), cut as [`cut`] cuts, copying no more
/// than the head that is kept.
pub fn cut_bytes(bytes: &[u8]) -> String {
    if bytes.len() > MAX_RECORD_BYTES {
        let head = String::from_utf8_lossy(&bytes[..CUT_AT + 4]).into_owned();
        mark_cut(head, Some(bytes.len()))
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// The head of a text whose whole was never built (a bounded writer's
/// [`stored`](crate::json::Writer::stored) bytes), marked as cut.
pub fn cut_head(head: &[u8]) -> String {
    let head = &head[..head.len().min(CUT_AT + 4)];
    mark_cut(String::from_utf8_lossy(head).into_owned(), None)
}

/// `value` as text, as [`cut`] would cut it, without ever formatting more of it:
/// the text of a huge value is not built.
pub fn bounded(value: impl fmt::Display) -> String {
    /// Takes text up to the bound, then fails (which stops the formatting).
    struct Bounded(String);
    impl Write for Bounded {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.push_str(s);
            if self.0.len() > MAX_RECORD_BYTES {
                Err(fmt::Error)
            } else {
                Ok(())
            }
        }
    }
    let mut text = Bounded(String::new());
    match write!(text, "{value}") {
        Ok(()) => text.0,
        Err(_) => mark_cut(text.0, None),
    }
}

/// `head` cut at [`CUT_AT`] (on a character boundary), then the marker: with the
/// whole text's length when it is known.
fn mark_cut(mut head: String, total: Option<usize>) -> String {
    let mut end = head.len().min(CUT_AT);
    while !head.is_char_boundary(end) {
        end -= 1;
    }
    head.truncate(end);
    let _ = match total {
        Some(len) => write!(head, "… [cut: {len} bytes in all]"),
        None => write!(head, "… [cut]"),
    };
    head
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.error_message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_three_fields_in_lambda_order() {
        let d = Diagnostic::script("Oops", "bad \"thing\"\n", vec!["a.lua:1:".into()]);
        assert_eq!(
            String::from_utf8(d.to_json()).unwrap(),
            r#"{"errorMessage":"bad \"thing\"\n","errorType":"Oops","stackTrace":["a.lua:1:"]}"#
        );
        assert!(!d.from_runtime);
        assert!(Diagnostic::runtime(error_type::TIMEOUT, "x").from_runtime);
    }
}
