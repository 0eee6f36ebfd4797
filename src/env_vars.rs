//! Every environment variable lure reads, so the contract with Lambda fits on one screen.

pub const RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
pub const HANDLER: &str = "_HANDLER";
pub const TASK_ROOT: &str = "LAMBDA_TASK_ROOT";
pub const TRACE_ID: &str = "_X_AMZN_TRACE_ID";
pub const FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
pub const FUNCTION_VERSION: &str = "AWS_LAMBDA_FUNCTION_VERSION";
pub const FUNCTION_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// Lambda Managed Instances: how many invocations run at once (SPEC 13).
pub const MAX_CONCURRENCY: &str = "AWS_LAMBDA_MAX_CONCURRENCY";
pub const LOG_GROUP_NAME: &str = "AWS_LAMBDA_LOG_GROUP_NAME";
pub const LOG_STREAM_NAME: &str = "AWS_LAMBDA_LOG_STREAM_NAME";
pub const LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";
pub const LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
pub const TELEMETRY_LOG_FD: &str = "_LAMBDA_TELEMETRY_LOG_FD";
