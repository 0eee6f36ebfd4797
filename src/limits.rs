//! What lure holds a function to: Lambda's response size and the memory its
//! scripts may use. Both the Lambda side (the loop, the Runtime API client) and the
//! language side (the engines) import them from here, and the caller builds the
//! [`Limits`] once, from the function's configuration.

use std::cell::Cell;

use crate::context::FunctionInfo;
use crate::diagnostic::{Diagnostic, error_type};

/// Lambda's limit for a buffered response body.
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// Lambda's limit for a synchronous invocation's payload (the event).
pub const MAX_EVENT_BYTES: usize = 6_291_456;

/// Memory kept for lure itself (executable, event and response buffers, JSON
/// copies) out of the function's memory size; scripts get the rest.
pub const RUNTIME_HEADROOM_MB: u64 = 24;

/// The smallest limit a script gets, whatever the configured memory size.
const MIN_SCRIPT_MEMORY_MB: u64 = 32;

/// The longest log record, CloudWatch's event limit: a longer one is cut, with a
/// marker. Error messages are held to the same length.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

thread_local! {
    /// The script memory limit of the engine this thread runs (none: unlimited).
    static SCRIPT_MEMORY: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Sets the script memory limit for what this thread's stdlib builds (the text
/// of `json.encode`, a decoded document): the engine sets it when it loads.
pub fn set_script_memory(bytes: usize) {
    SCRIPT_MEMORY.set(bytes);
}

/// The script memory limit of this thread's engine (`usize::MAX` when none set).
pub fn script_memory() -> usize {
    SCRIPT_MEMORY.get()
}

/// The limits an engine enforces on the scripts it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes a script's state may use (Lua's allocator, Rhai's thread heap).
    pub script_memory: usize,
    /// The largest response body sent; past it the answer is
    /// `Function.ResponseSizeTooLarge`.
    pub response_bytes: usize,
}

impl Limits {
    /// The limits of a function of `memory_mb` MB: scripts get the memory size
    /// minus [`RUNTIME_HEADROOM_MB`] (at least 32 MB).
    pub fn for_memory_size(memory_mb: u64) -> Self {
        let script_mb = memory_mb
            .saturating_sub(RUNTIME_HEADROOM_MB)
            .max(MIN_SCRIPT_MEMORY_MB);
        Limits {
            script_memory: (script_mb as usize) << 20,
            response_bytes: MAX_RESPONSE_BYTES,
        }
    }

    /// The limits of the function the environment describes
    /// (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, 128 MB when unset).
    pub fn for_function(info: &FunctionInfo) -> Self {
        Self::for_memory_size(info.memory_limit_in_mb)
    }

    /// The limits of each of `workers` workers sharing the function's memory
    /// (SPEC 13): the script memory divided among them.
    pub fn shared_by(self, workers: usize) -> Self {
        Limits {
            script_memory: self.script_memory / workers.max(1),
            ..self
        }
    }

    /// The error answer for a response body that Lambda would refuse.
    pub fn check_response_size(&self, len: usize) -> Result<(), Diagnostic> {
        if len > self.response_bytes {
            Err(response_too_large(len, self.response_bytes))
        } else {
            Ok(())
        }
    }
}

/// How far a response over the limit is measured, for the error's message; past
/// this the encoder stops (a result could hold gigabytes of repeated strings).
pub const MEASURED_UP_TO: usize = 64 << 20;

/// The error answer for a response body over [`MEASURED_UP_TO`] bytes.
pub fn response_too_large_to_measure(limit: usize) -> Diagnostic {
    Diagnostic::runtime(
        error_type::RESPONSE_SIZE_TOO_LARGE,
        format!(
            "Response payload size (over {MEASURED_UP_TO} bytes) exceeded maximum allowed payload size ({limit} bytes)."
        ),
    )
}

/// The error answer for a response body of `len` bytes, over the `limit`.
pub fn response_too_large(len: usize, limit: usize) -> Diagnostic {
    Diagnostic::runtime(
        error_type::RESPONSE_SIZE_TOO_LARGE,
        format!(
            "Response payload size ({len} bytes) exceeded maximum allowed payload size ({limit} bytes)."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_get_the_memory_size_less_the_headroom() {
        assert_eq!(Limits::for_memory_size(128).script_memory, 104 << 20);
        assert_eq!(Limits::for_memory_size(1024).script_memory, 1000 << 20);
        assert_eq!(Limits::for_memory_size(40).script_memory, 32 << 20);
    }

    #[test]
    fn workers_share_the_script_memory() {
        let limits = Limits::for_memory_size(2048);
        assert_eq!(limits.shared_by(8).script_memory, (2024 << 20) / 8);
        assert_eq!(limits.shared_by(1), limits);
        assert_eq!(limits.shared_by(8).response_bytes, MAX_RESPONSE_BYTES);
    }

    #[test]
    fn oversize_bodies_are_refused_before_sending() {
        let limits = Limits::for_memory_size(128);
        assert!(limits.check_response_size(MAX_RESPONSE_BYTES).is_ok());
        let err = limits
            .check_response_size(MAX_RESPONSE_BYTES + 1)
            .unwrap_err();
        assert_eq!(err.error_type, error_type::RESPONSE_SIZE_TOO_LARGE);
        assert!(err.error_message.contains("6291557 bytes"));
    }
}
