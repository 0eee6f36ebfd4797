//! The invocation context handed to handlers, independent of the script language.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::env_vars;

/// Lambda's longest timeout: the remaining time counts down from this when the
/// Runtime API gives no plausible deadline.
pub const MAX_TIMEOUT_MS: u64 = 900_000;

/// Deadlines before 2000-01-01 are not epoch times (cargo-lambda sends `600000`).
const EARLIEST_PLAUSIBLE_DEADLINE_MS: u64 = 946_684_800_000;

/// What the environment says about the function; read once per process.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub function_name: String,
    pub function_version: String,
    pub memory_limit_in_mb: u64,
    pub log_group_name: String,
    pub log_stream_name: String,
}

impl FunctionInfo {
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        FunctionInfo {
            function_name: var(env_vars::FUNCTION_NAME, "lure-local"),
            function_version: var(env_vars::FUNCTION_VERSION, "$LATEST"),
            memory_limit_in_mb: std::env::var(env_vars::FUNCTION_MEMORY_SIZE)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(128),
            log_group_name: var(env_vars::LOG_GROUP_NAME, ""),
            log_stream_name: var(env_vars::LOG_STREAM_NAME, ""),
        }
    }
}

/// One invocation's context: the function's facts plus the invocation headers,
/// borrowed from both (built on every invocation, it copies nothing).
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub aws_request_id: &'a str,
    pub function_name: &'a str,
    pub function_version: &'a str,
    pub invoked_function_arn: &'a str,
    pub memory_limit_in_mb: u64,
    pub log_group_name: &'a str,
    pub log_stream_name: &'a str,
    /// The effective deadline, ms since the epoch (see [`Context::deadline_known`]).
    pub deadline_ms: u64,
    /// False when the Runtime API sent no plausible deadline: `deadline_ms` is then
    /// the start of the invocation plus [`MAX_TIMEOUT_MS`] and no stop is enforced.
    pub deadline_known: bool,
    /// Raw JSON of `Lambda-Runtime-Cognito-Identity`, if sent.
    pub identity: Option<&'a str>,
    /// Raw JSON of `Lambda-Runtime-Client-Context`, if sent.
    pub client_context: Option<&'a str>,
    /// `Lambda-Runtime-Aws-Tenant-Id`, for functions with tenant isolation.
    pub tenant_id: Option<&'a str>,
    /// `Lambda-Runtime-Trace-Id`: the invocation's X-Ray trace header.
    pub xray_trace_id: Option<&'a str>,
    /// Every `Lambda-Runtime-*` header of the invocation, names in lower case.
    pub headers: &'a [(String, String)],
}

pub mod header {
    pub const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
    pub const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
    pub const INVOKED_FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
    pub const TRACE_ID: &str = "lambda-runtime-trace-id";
    pub const CLIENT_CONTEXT: &str = "lambda-runtime-client-context";
    pub const COGNITO_IDENTITY: &str = "lambda-runtime-cognito-identity";
    pub const TENANT_ID: &str = "lambda-runtime-aws-tenant-id";
    /// Sent with `/next` on Managed Instances; echoed on the invocation's answer.
    pub const INVOCATION_ID: &str = "lambda-runtime-invocation-id";
    pub const FUNCTION_ERROR_TYPE: &str = "Lambda-Runtime-Function-Error-Type";
}

impl<'a> Context<'a> {
    /// Builds the context from an invocation's `Lambda-Runtime-*` headers
    /// (lower-case names), `now` being when the invocation arrived.
    pub fn new(info: &'a FunctionInfo, headers: &'a [(String, String)], now: SystemTime) -> Self {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let declared = get(header::DEADLINE_MS)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&ms| ms >= EARLIEST_PLAUSIBLE_DEADLINE_MS);
        let (deadline_ms, deadline_known) = match declared {
            Some(ms) => (ms, true),
            None => (epoch_ms(now) + MAX_TIMEOUT_MS, false),
        };
        Context {
            aws_request_id: get(header::REQUEST_ID).unwrap_or_default(),
            function_name: &info.function_name,
            function_version: &info.function_version,
            invoked_function_arn: get(header::INVOKED_FUNCTION_ARN).unwrap_or_default(),
            memory_limit_in_mb: info.memory_limit_in_mb,
            log_group_name: &info.log_group_name,
            log_stream_name: &info.log_stream_name,
            deadline_ms,
            deadline_known,
            identity: get(header::COGNITO_IDENTITY),
            client_context: get(header::CLIENT_CONTEXT),
            tenant_id: get(header::TENANT_ID),
            xray_trace_id: get(header::TRACE_ID),
            headers,
        }
    }
}

thread_local! {
    /// The running invocation's trace header, per thread (per worker, SPEC 13).
    static TRACE_ID: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records the running invocation's `Lambda-Runtime-Trace-Id` (none between
/// invocations), for the calls its script makes.
pub fn set_running_trace_id(trace_id: Option<&str>) {
    TRACE_ID.with_borrow_mut(|current| {
        current.clear();
        current.push_str(trace_id.unwrap_or_default());
    });
}

/// The running invocation's trace header, if it has one.
pub fn running_trace_id() -> Option<String> {
    TRACE_ID.with_borrow(|current| (!current.is_empty()).then(|| current.clone()))
}

/// Milliseconds left before `deadline_ms`, clamped at 0.
pub fn remaining_time_ms(deadline_ms: u64) -> u64 {
    deadline_ms.saturating_sub(epoch_ms(SystemTime::now()))
}

pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> FunctionInfo {
        FunctionInfo {
            function_name: "f".into(),
            function_version: "$LATEST".into(),
            memory_limit_in_mb: 128,
            log_group_name: "g".into(),
            log_stream_name: "s".into(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plausible_deadline_is_used_as_is() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let (info, headers) = (
            info(),
            headers(&[
                (header::DEADLINE_MS, "1700000003000"),
                (header::REQUEST_ID, "r"),
            ]),
        );
        let ctx = Context::new(&info, &headers, now);
        assert!(ctx.deadline_known);
        assert_eq!(ctx.deadline_ms, 1_700_000_003_000);
        assert_eq!(ctx.aws_request_id, "r");
    }

    #[test]
    fn non_epoch_or_missing_deadline_means_unknown() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        for h in [headers(&[(header::DEADLINE_MS, "600000")]), headers(&[])] {
            let info = info();
            let ctx = Context::new(&info, &h, now);
            assert!(!ctx.deadline_known);
            assert_eq!(ctx.deadline_ms, 1_700_000_000_000 + MAX_TIMEOUT_MS);
        }
    }
}
