---@meta lambda

-- Types of the Lambda invocation that lure passes to handlers. This file
-- declares types only; there is no `lambda` global or module.
--
-- A handler module:
-- ```lua
-- local M = {}
--
-- ---@param event table
-- ---@param context LambdaContext
-- function M.handler(event, context)
--   log.info("request", {id = context.aws_request_id})
--   return {statusCode = 200, body = json.encode({ok = true})}
-- end
--
-- return M
-- ```

---The context of one invocation, the handler's second argument. Field names
---follow Python's runtime (snake_case).
---@class LambdaContext
---@field aws_request_id string the invocation's request id (as in the log lines)
---@field function_name string the function's name
---@field function_version string the version being run (`$LATEST` or a number)
---@field invoked_function_arn string the ARN the function was invoked with (may carry a version or alias)
---@field memory_limit_in_mb integer the memory configured for the function, in MB
---@field log_group_name string the CloudWatch Logs group of the function
---@field log_stream_name string the CloudWatch Logs stream of this execution environment
---@field deadline_ms integer milliseconds since the Unix epoch when Lambda stops the invocation
---@field identity table? the Cognito identity (decoded JSON) when invoked through the AWS Mobile SDK; nil when absent
---@field client_context table? the client context (decoded JSON) when invoked through the AWS Mobile SDK; nil when absent
---@field tenant_id string? the tenant of the invocation, for functions with tenant isolation; nil otherwise
---@field xray_trace_id string? the invocation's X-Ray trace header (`Root=…;Parent=…;Sampled=…`); nil when absent
---@field headers table<string, string> every `Lambda-Runtime-*` header of the invocation, by lower-case name
local LambdaContext = {}

---Milliseconds left before the invocation's deadline, never below 0.
---
---Call with a colon: `context:get_remaining_time_in_millis()`.
---@return integer ms
---@nodiscard
function LambdaContext:get_remaining_time_in_millis() end

---What `context:stream` takes, every field optional. With any of
---`status_code`, `headers`, `cookies` the stream is an HTTP integration's (a
---Function URL's): the body starts with their prelude.
---@class StreamOptions
---@field content_type string? the content type (default `application/octet-stream`)
---@field status_code integer? the HTTP status (default 200)
---@field headers table<string, string>? HTTP headers
---@field cookies string[]? `Set-Cookie` values

---A streamed answer: each `write` goes to Lambda at once.
---@class ResponseStream
local ResponseStream = {}

---Sends `data` now as one chunk of the answer (an empty string sends nothing).
---
---Example: `out:write("data: " .. json.encode(item) .. "\n\n")`.
---@param data string
function ResponseStream:write(data) end

---Streams the answer (Function URLs, `InvokeWithResponseStream`): from now on
---each `write` is sent at once, up to 200 MiB; what the handler returns is
---written last (a string as it is, another value as JSON). Once per invocation.
---An error after streaming began ends the stream with the error's trailers.
---
---Example: `local out = context:stream({content_type = "text/event-stream"})`.
---@param options StreamOptions?
---@return ResponseStream
function LambdaContext:stream(options) end

---A handler: takes the event (decoded JSON, so usually a table) and the
---context; what it returns is encoded as JSON and becomes the response.
---Raising an error fails the invocation (see `LambdaError`).
---@alias LambdaHandler fun(event: any, context: LambdaContext): any

---A typed error: `error({errorType = "OrderNotFound", errorMessage = "no order 42"})`
---fails the invocation with that `errorType`, which Step Functions `Retry` and
---`Catch` match on. A string error (or a table without `errorType`) gets the
---type `Error`.
---@class LambdaError
---@field errorType string the error's type, e.g. `"OrderNotFound"`
---@field errorMessage string a message for people
