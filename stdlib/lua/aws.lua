---@meta aws

---AWS services with the function's credentials, built in (also `require "aws"`).
---
---Credentials come from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`
---(what Lambda sets), the container credentials endpoint, or the shared
---credentials file; the region from `AWS_REGION`; the endpoint from
---`AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL`, else AWS's.
---
---A service error raises a table `{errorType = AWS's code, errorMessage, status,
---request_id}` (`ConditionalCheckFailedException`, `NoSuchKey`, ...), catchable
---with `pcall`; uncaught, it is the invocation's error. Throttling, 5xx and
---dropped connections are retried (at most 3 attempts, never past the deadline).
---@class awslib
aws = {}

---What a failed call raises: AWS's error code and message, the HTTP status
---and the request id (`pcall` returns it; `---@cast err -string, +aws.Error`
---tells the checker).
---@class aws.Error
---@field errorType string AWS's code (`ConditionalCheckFailedException`, `NoSuchKey`, ...) or `Http.*`
---@field errorMessage string AWS's message
---@field status integer? the HTTP status (absent for `Http.*` errors)
---@field request_id string? AWS's request id (`""` when AWS gave none)

---Static credentials, instead of the function's.
---@class aws.Credentials
---@field access_key_id string
---@field secret_access_key string
---@field session_token string?

---Where and as whom a client calls, every field optional.
---@class aws.ClientOptions
---@field region string? the region (default `AWS_REGION`)
---@field endpoint string? the endpoint URL (default `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, then AWS's)
---@field credentials aws.Credentials? (default: the function's)

---A service client: `client:send("GetItem", params)`, or the operation as a
---method, by its PascalCase or snake_case name: `client:GetItem(params)`,
---`client:get_item(params)`.
---@class aws.Client
---@field [string] fun(self: aws.Client, params: table?): table
local Client = {}

---Runs `operation` (PascalCase, as in the service's API reference) with
---`params` in the service's own names; returns the service's answer.
---
---Example: `ddb:send("GetItem", {TableName = "users", Key = aws.dynamodb.marshal({id = "7"})})`.
---@param operation string
---@param params table?
---@return table
function Client:send(operation, params) end

---A client for the service boto3 calls `service`: `dynamodb`, `s3`, `sqs`,
---`sns`, `secretsmanager`, `ssm`, `kms`, `events`, `kinesis`, `stepfunctions`,
---`logs`, `firehose`, `sts`, `ses`.
---
---Example: `local s3 = aws.client("s3")`.
---@param service string
---@param options aws.ClientOptions?
---@return aws.Client
---@nodiscard
function aws.client(service, options) end

---A request to sign: `url` and `service` are required.
---@class aws.SignRequest
---@field url string the URL, already percent-encoded; `host` comes from it
---@field service string the signing name (`s3`, `execute-api`, `es`, ...)
---@field method string? (default `"GET"`)
---@field headers table<string, string|string[]>? headers to sign (all but `user-agent`, `expect`, `x-amzn-trace-id`)
---@field body string? (default empty)
---@field region string? (default `AWS_REGION`)
---@field credentials aws.Credentials? (default: the function's)
---@field time string? `20150830T123600Z` (default: now)
---@field normalize_path boolean? (default true; false for S3)
---@field double_encode boolean? (default true; false for S3)
---@field sign_body boolean? add and sign `x-amz-content-sha256` (default false; true for S3)
---@field unsigned_payload boolean? with `sign_body`: `UNSIGNED-PAYLOAD` (default false)
---@field sign_session_token boolean? (default true; false adds the token after signing)

---@class aws.PresignRequest: aws.SignRequest
---@field expires integer? seconds the URL lasts (default 900, at most 604800)

---The headers Signature Version 4 adds: `authorization`, `x-amz-date`, and
---`x-amz-security-token` / `x-amz-content-sha256` when they apply.
---
---Example: `http.get(url, {headers = aws.sign{url = url, service = "execute-api"}})`.
---@param request aws.SignRequest
---@return table<string, string>
---@nodiscard
function aws.sign(request) end

---The URL with its signature in the query string.
---
---Example: `aws.presign{url = "https://bucket.s3.us-east-1.amazonaws.com/key", service = "s3", expires = 300}`.
---@param request aws.PresignRequest
---@return string
---@nodiscard
function aws.presign(request) end

---DynamoDB's AttributeValues, as the JS DocumentClient makes them.
aws.dynamodb = {}

---A plain value as AttributeValues: a table is an item (`{id = {N = "7"}}`),
---another value one AttributeValue (`{S = "x"}`). Strings are `S` (UTF-8),
---numbers `N`, booleans `BOOL`, `json.null` `NULL`, arrays `L`, tables `M`,
---`aws.dynamodb.binary(s)` `B`.
---@param value any
---@return table
---@nodiscard
function aws.dynamodb.marshal(value) end

---An item (or one AttributeValue) as plain values: `N` an integer or a float,
---`B` a string, `NULL` `json.null`, sets arrays.
---@param item table
---@return any
---@nodiscard
function aws.dynamodb.unmarshal(item) end

---Marks a string as binary data, for `marshal` (`B`, not `S`).
---@param data string
---@return table
---@nodiscard
function aws.dynamodb.binary(data) end
