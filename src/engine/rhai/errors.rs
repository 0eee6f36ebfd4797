//! Rhai errors → the Lambda error shape (SPEC §5): the message with the script's
//! `file:line`, the stack of `file:line:column` frames, and the runtime's own types
//! for the limits a script ran into.

use rhai::{Dynamic, EvalAltResult, Map, Position};

use super::{MAX_ARRAY_SIZE, MAX_CALL_LEVELS, MAX_MAP_SIZE, MAX_STRING_SIZE};
use crate::diagnostic::{Diagnostic, bounded, error_type};
use crate::json;

/// The termination value of a script stopped at the memory limit.
#[derive(Debug, Clone, Copy)]
pub(super) struct MemoryLimitHit {
    pub limit_mb: usize,
}

/// An error from top-level code at init: an import error keeping the original message.
pub(super) fn init_error(err: EvalAltResult, script: &str) -> Diagnostic {
    let diagnostic = script_error(err, script, None);
    if diagnostic.from_runtime {
        return diagnostic;
    }
    let message = if diagnostic.error_type == error_type::SCRIPT_ERROR {
        diagnostic.error_message
    } else {
        format!("{}: {}", diagnostic.error_type, diagnostic.error_message)
    };
    Diagnostic {
        stack_trace: diagnostic.stack_trace,
        ..Diagnostic::runtime(error_type::IMPORT_MODULE_ERROR, message)
    }
}

/// Turns a Rhai error into the answer for the invocation (SPEC §5). `script` is the
/// source the error unwinds to; `function` the script function called from Rust, if
/// any (Rhai strips its `ErrorInFunctionCall` layer).
pub(super) fn script_error(err: EvalAltResult, script: &str, function: Option<&str>) -> Diagnostic {
    // Unwrap call layers, outermost first: each names the function it entered and
    // where, in the function being left, the call was made.
    let mut stack = Vec::new();
    let mut source = script.to_owned();
    let mut function = function.map(str::to_owned);
    let mut err = err;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(callee, callee_source, inner, call) => {
                stack.push(frame(&source, call, function.as_deref()));
                if !callee_source.is_empty() {
                    source = module_file(&callee_source);
                }
                function = Some(callee);
                err = *inner;
            }
            EvalAltResult::ErrorInModule(module, inner, import) => {
                stack.push(frame(&source, import, function.as_deref()));
                source = module_file(&module);
                function = None;
                err = *inner;
            }
            _ => break,
        }
    }
    let position = err.position();
    stack.push(frame(&source, position, function.as_deref()));
    stack.reverse();

    let message = match err {
        EvalAltResult::ErrorRuntime(value, _) => return thrown(value, &source, position, stack),
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            return Diagnostic::runtime(
                error_type::OUT_OF_MEMORY,
                format!(
                    "{}: {}",
                    location(&source, position, true),
                    size_limit_message(&what)
                ),
            );
        }
        EvalAltResult::ErrorTerminated(token, _) if token.is::<MemoryLimitHit>() => {
            let limit_mb = token.cast::<MemoryLimitHit>().limit_mb;
            return Diagnostic::runtime(
                error_type::OUT_OF_MEMORY,
                format!(
                    "{}: the script exceeded its memory limit of {limit_mb} MB",
                    location(&source, position, true)
                ),
            );
        }
        EvalAltResult::ErrorTooManyOperations(_) => {
            return Diagnostic::runtime(
                error_type::OUT_OF_MEMORY,
                format!("{}: too many operations", location(&source, position, true)),
            );
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            format!("stack overflow (more than {MAX_CALL_LEVELS} nested function calls)")
        }
        mut other => {
            other.clear_position();
            other.to_string()
        }
    };
    Diagnostic::script(
        error_type::SCRIPT_ERROR,
        format!("{}: {message}", location(&source, position, true)),
        stack,
    )
}

/// `throw value`: a map with `errorType` sets the type (SPEC §5); anything else is an
/// `Error` whose message reads like Lua's `error("msg")`: `file:line: msg`.
fn thrown(value: Dynamic, source: &str, position: Position, stack: Vec<String>) -> Diagnostic {
    // `bounded`: a script may throw a value whose text is as large as its memory.
    let typed = value.read_lock::<Map>().and_then(|map| {
        let kind = bounded(map.get("errorType").filter(|t| t.is_string())?);
        let message = map.get("errorMessage").map(bounded);
        Some((kind, message.unwrap_or_default()))
    });
    if let Some((kind, message)) = typed {
        return Diagnostic::script(kind, message, stack);
    }
    Diagnostic::script(
        error_type::SCRIPT_ERROR,
        format!("{}: {}", location(source, position, false), bounded(value)),
        stack,
    )
}

fn size_limit_message(what: &str) -> String {
    let limit = match what {
        "Length of string" => format!("string data is limited to {MAX_STRING_SIZE} bytes"),
        "Size of object map" => format!("object maps are limited to {MAX_MAP_SIZE} properties"),
        // Raised by lure's JSON codec (`json::encode`/`decode`, the event), not by
        // Rhai: the script's memory limit bounds one value's whole text.
        json::rhai::DOCUMENT_TOO_LARGE => {
            return format!(
                "{what} too large: the event or document does not fit in the script's memory"
            );
        }
        crate::stdlib::binding::rhai::TOO_LARGE_FOR_MEMORY => {
            return format!("{what} too large: it does not fit in the script's memory");
        }
        json::rhai::TEXT_TOO_LARGE => {
            return format!("{what} too large: the text does not fit in the script's memory");
        }
        _ => format!("arrays are limited to {MAX_ARRAY_SIZE} elements"),
    };
    format!("{what} too large: {limit} in one value, nested values included")
}

/// `file:line:column` of a frame, then ` in fn name` inside a function.
fn frame(source: &str, position: Position, function: Option<&str>) -> String {
    let place = location(source, position, true);
    match function {
        Some(name) if name.starts_with("anon$") => format!("{place} in closure"),
        Some(name) => format!("{place} in fn {name}"),
        None => place,
    }
}

/// `file:line:column` (or `file:line`); just `file` where Rhai knows no position.
pub(super) fn location(source: &str, position: Position, with_column: bool) -> String {
    match (position.line(), position.position()) {
        (Some(line), Some(column)) if with_column => format!("{source}:{line}:{column}"),
        (Some(line), _) => format!("{source}:{line}"),
        _ => source.to_owned(),
    }
}

/// Rhai names a module by its import path (`lib/util`); show the file.
fn module_file(path: &str) -> String {
    if path.ends_with(".rhai") {
        path.to_owned()
    } else {
        format!("{path}.rhai")
    }
}
