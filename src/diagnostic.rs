//! The one error shape that reaches Lambda: `{"errorMessage","errorType","stackTrace"}`.

use crate::json::write_json_string;

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

    /// An error raised by the handler script.
    pub fn script(
        error_type: impl Into<String>,
        error_message: impl Into<String>,
        stack_trace: Vec<String>,
    ) -> Self {
        Diagnostic {
            error_type: error_type.into(),
            error_message: error_message.into(),
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
