//! Lua errors → the Lambda error shape (SPEC 5): a raised string or table, or an
//! error from Rust, with the traceback of where it was raised.

use mlua::{Lua, Value};

use crate::diagnostic::{Diagnostic, cut_bytes, cut_head, error_type};
use crate::json::{self, Writer};
use crate::limits::MAX_RECORD_BYTES;

/// The stack at the point of the error, as Lua's `traceback` prints it, minus the
/// frames that are lure's (the `error` builtin above, `xpcall` below).
pub(super) fn capture_traceback(lua: &Lua) -> Vec<String> {
    let Ok(text) = lua.traceback(None, 1) else {
        return Vec::new();
    };
    let text = text.to_string_lossy();
    let mut lines: Vec<String> = text
        .lines()
        .skip(1) // "stack traceback:"
        .map(|l| l.trim().to_owned())
        .collect();
    // The outermost frame is Lua's own `xpcall`, through which the engine called
    // the script (unnamed: scripts' `xpcall` is the sandbox's).
    if lines.last().is_some_and(|l| l.starts_with("[C]: in ")) {
        lines.pop();
    }
    if lines
        .first()
        .is_some_and(|l| l == "[C]: in function 'error'")
    {
        lines.remove(0);
    }
    lines
}

/// Maps an error value raised by a script to the Lambda error shape (SPEC §5).
pub(super) fn error_to_diagnostic(lua: &Lua, error: Value, stack_trace: Vec<String>) -> Diagnostic {
    match error {
        // Lua raises exactly this string (no position) when an allocation fails.
        Value::String(s) if s.as_bytes().as_ref() == b"not enough memory" => {
            Diagnostic::runtime(error_type::OUT_OF_MEMORY, "not enough memory")
        }
        Value::String(s) => Diagnostic::script(error_type::SCRIPT_ERROR, text_of(&s), stack_trace),
        Value::Table(t) => {
            let text = |key: &str| match t.raw_get::<Value>(key) {
                Ok(Value::String(s)) => Some(text_of(&s)),
                _ => None,
            };
            let error_type =
                text("errorType").unwrap_or_else(|| error_type::SCRIPT_ERROR.to_owned());
            let message = text("errorMessage")
                .or_else(|| text("message"))
                .unwrap_or_else(|| {
                    let mut writer = Writer::with_limit(false, MAX_RECORD_BYTES);
                    match json::lua::encode(lua, &Value::Table(t.clone()), &mut writer) {
                        Ok(()) => String::from_utf8_lossy(&writer.into_bytes()).into_owned(),
                        Err(e) if e.is_too_large() => cut_head(&writer.stored()),
                        Err(_) => "(error object)".to_owned(),
                    }
                });
            Diagnostic::script(error_type, message, stack_trace)
        }
        Value::Error(e) => rust_error_to_diagnostic(&e, stack_trace),
        Value::Nil => Diagnostic::script(error_type::SCRIPT_ERROR, "nil", stack_trace),
        Value::Boolean(b) => {
            Diagnostic::script(error_type::SCRIPT_ERROR, b.to_string(), stack_trace)
        }
        Value::Integer(i) => {
            Diagnostic::script(error_type::SCRIPT_ERROR, i.to_string(), stack_trace)
        }
        Value::Number(n) => {
            Diagnostic::script(error_type::SCRIPT_ERROR, n.to_string(), stack_trace)
        }
        other => Diagnostic::script(
            error_type::SCRIPT_ERROR,
            format!("(error object is a {} value)", other.type_name()),
            stack_trace,
        ),
    }
}

/// Errors raised from Rust (stdlib functions, mlua itself).
fn rust_error_to_diagnostic(error: &mlua::Error, stack_trace: Vec<String>) -> Diagnostic {
    match error {
        mlua::Error::CallbackError { cause, .. } => rust_error_to_diagnostic(cause, stack_trace),
        mlua::Error::WithContext { cause, .. } => rust_error_to_diagnostic(cause, stack_trace),
        mlua::Error::MemoryError(message) => {
            Diagnostic::runtime(error_type::OUT_OF_MEMORY, message.clone())
        }
        mlua::Error::RuntimeError(message) => {
            Diagnostic::script(error_type::SCRIPT_ERROR, message.clone(), stack_trace)
        }
        other => Diagnostic::script(error_type::SCRIPT_ERROR, other.to_string(), stack_trace),
    }
}

/// A Lua string as message text: at most [`MAX_RECORD_BYTES`] of it are copied
/// (a script may raise a string as large as its memory).
fn text_of(s: &mlua::LuaString) -> String {
    cut_bytes(&s.as_bytes())
}
