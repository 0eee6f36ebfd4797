//! The Runtime API protocol (SPEC §3, with the context of §4 and the errors of §5),
//! end to end: the real binary against a fake Runtime API, handlers in both languages.

mod support;

use std::collections::HashSet;
use std::io::{BufReader, Write};
use std::net::TcpStream;

use serde_json::{Value, json};
use support::http::{self, Response};
use support::*;

const ERROR_CONTENT_TYPE: &str = "application/vnd.aws.lambda.error+json";
const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";

/// A scenario with one script written and lure started on `handler`.
fn started(name: &str, file: &str, script: &str, handler: &str) -> Scenario {
    let mut s = Scenario::new(name);
    s.write(file, script);
    s.start(handler);
    s
}

/// Every invocation is answered exactly once (SPEC §3): one accepted POST per id.
fn assert_answered_once(posts: &[Post]) {
    let mut seen = HashSet::new();
    for post in posts.iter().filter(|p| p.accepted()) {
        let id = post.request_id.as_deref().unwrap_or("<init>");
        assert!(
            seen.insert(id.to_owned()),
            "{id} answered twice: {posts:#?}"
        );
    }
}

/// The error body is exactly `{"errorMessage","errorType","stackTrace"}`.
fn assert_error_shape(post: &Post) -> Value {
    assert_eq!(
        post.header("content-type"),
        Some(ERROR_CONTENT_TYPE),
        "{post:?}"
    );
    let body = post.json();
    let keys: HashSet<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["errorMessage", "errorType", "stackTrace"]),
        "{body}"
    );
    assert!(body["errorMessage"].is_string(), "{body}");
    assert!(body["errorType"].is_string(), "{body}");
    let trace = body["stackTrace"]
        .as_array()
        .expect("stackTrace is an array");
    assert!(trace.iter().all(Value::is_string), "{body}");
    body
}

// ---------------------------------------------------------------------------
// The fake API itself, driven by a plain client, so the bench is proven before
// it judges lure.

fn send(stream: &mut TcpStream, method: &str, path: &str, extra: &str, body: &[u8]) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
}

fn receive(reader: &mut BufReader<TcpStream>) -> Response {
    http::read_response(reader).expect("a response")
}

#[test]
fn fake_api_serves_next_records_posts_and_scripts_faults() {
    let api = FakeApi::with_prefix("/.rt");
    assert!(api.address().starts_with("http://127.0.0.1:"));
    assert!(api.address().ends_with("/.rt"));
    api.push(
        Invocation::new("abc", r#"{"x":1}"#)
            .trace_id("Root=1-2-3")
            .header("Lambda-Runtime-Extra", "e"),
    );
    let mut stream = TcpStream::connect(api.socket_addr()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());

    send(
        &mut stream,
        "GET",
        "/.rt/2018-06-01/runtime/invocation/next",
        "",
        b"",
    );
    let next = receive(&mut reader);
    assert_eq!(next.status, 200);
    assert_eq!(next.body, br#"{"x":1}"#);
    assert_eq!(next.header("lambda-runtime-aws-request-id"), Some("abc"));
    assert_eq!(next.header("lambda-runtime-trace-id"), Some("Root=1-2-3"));
    assert_eq!(next.header("lambda-runtime-extra"), Some("e"));
    assert_eq!(
        next.header("lambda-runtime-invoked-function-arn"),
        Some(support::fake_api::DEFAULT_ARN)
    );
    let deadline: u64 = next
        .header("lambda-runtime-deadline-ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(deadline > epoch_ms());
    assert_eq!(next.header("content-type"), None);

    // Keep-alive: the POSTs go over the same connection.
    send(
        &mut stream,
        "POST",
        "/.rt/2018-06-01/runtime/invocation/abc/response",
        "Content-Type: application/json\r\n",
        b"\"ok\"",
    );
    let accepted = receive(&mut reader);
    assert_eq!(
        (accepted.status, &accepted.body[..]),
        (202, &br#"{"status":"OK"}"#[..])
    );

    api.script_post(Reply::Status(500));
    send(
        &mut stream,
        "POST",
        "/.rt/2018-06-01/runtime/invocation/abc/error",
        "",
        b"{}",
    );
    assert_eq!(receive(&mut reader).status, 500);

    // A chunked body is understood too.
    let chunked = "POST /.rt/2018-06-01/runtime/init/error HTTP/1.1\r\nHost: t\r\n\
                   Transfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n";
    stream.write_all(chunked.as_bytes()).unwrap();
    assert_eq!(receive(&mut reader).status, 202);

    // Outside the prefix: 404, noted as unexpected.
    send(
        &mut stream,
        "GET",
        "/2018-06-01/runtime/invocation/next",
        "",
        b"",
    );
    assert_eq!(receive(&mut reader).status, 404);

    // A scripted 5xx on /next leaves the queue alone.
    api.script_next(Reply::Status(503));
    send(
        &mut stream,
        "GET",
        "/.rt/2018-06-01/runtime/invocation/next",
        "",
        b"",
    );
    assert_eq!(receive(&mut reader).status, 503);

    api.script_post(Reply::Drop);
    send(
        &mut stream,
        "POST",
        "/.rt/2018-06-01/runtime/invocation/abc/response",
        "",
        b"1",
    );
    assert!(
        http::read_response(&mut reader).is_err(),
        "connection dropped"
    );

    let log = api.log();
    assert_eq!(log.connections, 1);
    assert_eq!(log.next_requests, 2);
    assert_eq!(log.unexpected, ["GET /2018-06-01/runtime/invocation/next"]);
    let summary: Vec<_> = log
        .posts
        .iter()
        .map(|p| (p.kind, p.request_id.as_deref(), p.status, p.text()))
        .collect();
    assert_eq!(
        summary,
        [
            (PostKind::Response, Some("abc"), Some(202), "\"ok\""),
            (PostKind::Error, Some("abc"), Some(500), "{}"),
            (PostKind::InitError, None, Some(202), "{\"a\":1}"),
            (PostKind::Response, Some("abc"), None, "1"),
        ]
    );
    assert_eq!(
        log.posts[0].header("content-type"),
        Some("application/json")
    );

    // /next long-polls: a request waits until the test pushes an invocation.
    let addr = api.socket_addr();
    let poller = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        send(
            &mut stream,
            "GET",
            "/.rt/2018-06-01/runtime/invocation/next",
            "",
            b"",
        );
        receive(&mut reader)
    });
    assert!(api.wait_until(WAIT, |log| log.next_requests == 3));
    api.push(Invocation::new("late", "{}"));
    let late = poller.join().unwrap();
    assert_eq!(late.header("lambda-runtime-aws-request-id"), Some("late"));
    assert_eq!(api.connections(), 2);
}

// ---------------------------------------------------------------------------
// Responses

fn check_response(s: &mut Scenario) {
    let post = s.answer(Invocation::new("r1", r#"{"name":"world"}"#));
    assert_eq!(post.kind, PostKind::Response);
    assert_eq!(post.path, "/2018-06-01/runtime/invocation/r1/response");
    assert_eq!(post.text(), r#"{"greeting":"hello world"}"#);
    assert_eq!(post.header(ERROR_TYPE_HEADER), None);

    // Warm: the same process answers the next one.
    let post = s.answer(Invocation::new("r2", r#"{"name":"again"}"#));
    assert_eq!(post.text(), r#"{"greeting":"hello again"}"#);
    assert_answered_once(&s.api.posts());
}

#[test]
fn response_body_is_the_handlers_json_result_lua() {
    let mut s = started(
        "response_lua",
        "hello.lua",
        r#"function main(event, context) return { greeting = "hello " .. event.name } end"#,
        "hello.lua",
    );
    check_response(&mut s);
}

/// An event near Lambda's 6 MB limit streams through the connection's buffers (far
/// smaller) and back: the echo is the same document, twice on one connection.
#[test]
fn a_large_event_is_read_whole_and_echoed() {
    let mut s = started(
        "large_event",
        "echo.lua",
        "function main(event, context) return event end",
        "echo.lua",
    );
    let records: Vec<String> = (0..60_000)
        .map(|i| format!(r#"{{"id":{i},"name":"record {i}","tags":["a","b"],"ok":true}}"#))
        .collect();
    let event = format!(r#"{{"records":[{}]}}"#, records.join(","));
    assert!(event.len() > 3_000_000, "{} bytes", event.len());
    let expected: Value = serde_json::from_str(&event).unwrap();
    for id in ["big-1", "big-2"] {
        let post = s.answer(Invocation::new(id, event.clone()));
        assert_eq!(post.kind, PostKind::Response, "{id}");
        assert_eq!(post.json(), expected, "{id}");
    }
    assert_answered_once(&s.api.posts());
    assert_eq!(s.api.connections(), 1);
}

#[test]
fn response_body_is_the_handlers_json_result_rhai() {
    let mut s = started(
        "response_rhai",
        "hello.rhai",
        r#"fn main(event, context) { #{ greeting: "hello " + event.name } }"#,
        "hello.rhai",
    );
    check_response(&mut s);
}

// ---------------------------------------------------------------------------
// Handler errors: posted to /error, without the runtime's error-type header, and
// the process goes on.

fn check_handler_errors(s: &mut Scenario) {
    let post = s.answer(Invocation::new("e1", r#"{"fail":"plain"}"#));
    assert_eq!(post.kind, PostKind::Error);
    assert_eq!(post.path, "/2018-06-01/runtime/invocation/e1/error");
    assert_eq!(
        post.header(ERROR_TYPE_HEADER),
        None,
        "script errors carry no header"
    );
    let body = assert_error_shape(&post);
    assert_eq!(body["errorType"], "Error", "{body}");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("boom"),
        "{body}"
    );

    let post = s.answer(Invocation::new("e2", r#"{"fail":"typed"}"#));
    assert_eq!(post.kind, PostKind::Error);
    assert_eq!(
        post.header(ERROR_TYPE_HEADER),
        None,
        "script errors carry no header"
    );
    let body = assert_error_shape(&post);
    assert_eq!(body["errorType"], "OrderNotFound", "{body}");
    assert_eq!(body["errorMessage"], "no order 42", "{body}");

    let post = s.answer(Invocation::new("e3", r#"{"fail":"no"}"#));
    assert_eq!(post.kind, PostKind::Response);
    assert_eq!(post.text(), r#""fine""#);
    assert_answered_once(&s.api.posts());
}

#[test]
fn handler_error_is_posted_and_the_process_goes_on_lua() {
    let mut s = started(
        "handler_error_lua",
        "app.lua",
        r#"
local M = {}
function M.handler(event, context)
  if event.fail == "plain" then error("boom") end
  if event.fail == "typed" then
    error({ errorType = "OrderNotFound", errorMessage = "no order 42" })
  end
  return "fine"
end
return M
"#,
        "app.handler",
    );
    check_handler_errors(&mut s);
}

#[test]
fn handler_error_is_posted_and_the_process_goes_on_rhai() {
    let mut s = started(
        "handler_error_rhai",
        "app.rhai",
        r#"
fn handler(event, context) {
    if event.fail == "plain" { throw "boom"; }
    if event.fail == "typed" {
        throw #{ errorType: "OrderNotFound", errorMessage: "no order 42" };
    }
    "fine"
}
"#,
        "app.handler",
    );
    check_handler_errors(&mut s);
}

// ---------------------------------------------------------------------------
// Init errors: one POST to /init/error with the error-type header, then a
// non-zero exit, without ever asking for an invocation.

/// Starts lure on `handler` over `files`; returns the init error body.
fn init_error(name: &str, files: &[(&str, &str)], handler: &str, error_type: &str) -> Value {
    let mut s = Scenario::new(name);
    for (file, text) in files {
        s.write(file, text);
    }
    s.start(handler);
    let status = s.wait_exit();
    let posts = s.api.posts();
    if status.success() || posts.len() != 1 {
        s.fail(&format!(
            "handler {handler:?}: expected one init error and a failed exit, got {status}"
        ));
    }
    let post = &posts[0];
    assert_eq!(post.kind, PostKind::InitError, "{handler:?}: {post:?}");
    assert_eq!(post.path, "/2018-06-01/runtime/init/error");
    assert_eq!(
        post.header(ERROR_TYPE_HEADER),
        Some(error_type),
        "{handler:?}: {post:?}"
    );
    let body = assert_error_shape(post);
    assert_eq!(body["errorType"], error_type, "{handler:?}: {body}");
    assert!(!body["errorMessage"].as_str().unwrap().is_empty(), "{body}");
    assert_eq!(
        s.api.log().next_requests,
        0,
        "{handler:?}: asked for work after init failed"
    );
    body
}

#[test]
fn init_error_missing_file() {
    for handler in [
        "missing.lua",
        "missing.rhai",
        "missing.handler",
        "lib/missing.handler",
    ] {
        let body = init_error(
            "init_missing_file",
            &[("other.lua", "function main() end")],
            handler,
            "Runtime.ImportModuleError",
        );
        assert!(
            body["errorMessage"].as_str().unwrap().contains("missing"),
            "{body}"
        );
    }
}

#[test]
fn init_error_malformed_handler_name() {
    for handler in [
        "app",
        "app.my-fn",
        "../app.handler",
        "/var/task/app.handler",
        "",
    ] {
        init_error(
            "init_malformed",
            &[("app.lua", "return { handler = function() end }")],
            handler,
            "Runtime.MalformedHandlerName",
        );
    }
}

#[test]
fn init_error_syntax_lua() {
    init_error(
        "init_syntax_lua",
        &[("app.lua", "function main(event\n  return 1\nend\n")],
        "app.lua",
        "Runtime.UserCodeSyntaxError",
    );
}

#[test]
fn init_error_syntax_rhai() {
    init_error(
        "init_syntax_rhai",
        &[("app.rhai", "fn main(event, context) {\n  let x = ;\n}\n")],
        "app.rhai",
        "Runtime.UserCodeSyntaxError",
    );
}

#[test]
fn init_error_in_top_level_code_lua() {
    let body = init_error(
        "init_top_level_lua",
        &[(
            "app.lua",
            "error(\"top-level boom\")\nfunction main() return 1 end\n",
        )],
        "app.lua",
        "Runtime.ImportModuleError",
    );
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("top-level boom"),
        "keeps the original error: {body}"
    );
}

#[test]
fn init_error_in_top_level_code_rhai() {
    let body = init_error(
        "init_top_level_rhai",
        &[(
            "app.rhai",
            "throw \"top-level boom\";\nfn handler(event, context) { 1 }\n",
        )],
        "app.handler",
        "Runtime.ImportModuleError",
    );
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("top-level boom"),
        "keeps the original error: {body}"
    );
}

#[test]
fn init_error_handler_not_found_lua() {
    init_error(
        "init_not_found_lua",
        &[("app.lua", "return { handler = function() return 1 end }\n")],
        "app.nothere",
        "Runtime.HandlerNotFound",
    );
    // The script-file form needs a `main`.
    init_error(
        "init_no_main_lua",
        &[("hello.lua", "local x = 1\n")],
        "hello.lua",
        "Runtime.HandlerNotFound",
    );
}

#[test]
fn init_error_handler_not_found_rhai() {
    init_error(
        "init_not_found_rhai",
        &[("app.rhai", "fn handler(event, context) { 1 }\n")],
        "app.nothere",
        "Runtime.HandlerNotFound",
    );
}

// ---------------------------------------------------------------------------
// _X_AMZN_TRACE_ID follows Lambda-Runtime-Trace-Id. Lua only: Rhai scripts have
// no way to read the environment.

#[test]
fn trace_id_env_var_is_set_and_unset_per_invocation_lua() {
    let mut s = started(
        "trace_id_lua",
        "trace.lua",
        r#"function main() return os.getenv("_X_AMZN_TRACE_ID") end"#,
        "trace.lua",
    );
    let first = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let post = s.answer(Invocation::new("t1", "{}").trace_id(first));
    assert_eq!(post.json(), json!(first));

    let post = s.answer(Invocation::new("t2", "{}"));
    assert_eq!(post.json(), Value::Null, "unset when the header is absent");

    let third = "Root=1-00000000-000000000000000000000003;Sampled=0";
    let post = s.answer(Invocation::new("t3", "{}").trace_id(third));
    assert_eq!(post.json(), json!(third));
}

// ---------------------------------------------------------------------------
// Context: from the invocation headers and the function's environment.

const CONTEXT_ENV: &[(&str, &str)] = &[
    ("AWS_LAMBDA_FUNCTION_NAME", "ctx-fn"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "7"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
    ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ctx-fn"),
    ("AWS_LAMBDA_LOG_STREAM_NAME", "2024/05/06/[7]0123abcd"),
];

const CONTEXT_LUA: &str = r#"
function main(event, context)
  return {
    aws_request_id = context.aws_request_id,
    invoked_function_arn = context.invoked_function_arn,
    deadline_ms = context.deadline_ms,
    function_name = context.function_name,
    function_version = context.function_version,
    memory_limit_in_mb = context.memory_limit_in_mb,
    log_group_name = context.log_group_name,
    log_stream_name = context.log_stream_name,
    identity = context.identity,
    client_context = context.client_context,
    tenant_id = context.tenant_id,
    xray_trace_id = context.xray_trace_id,
    headers = context.headers,
    remaining = context:get_remaining_time_in_millis(),
  }
end
"#;

const CONTEXT_RHAI: &str = r#"
fn main(event, context) {
    #{
        aws_request_id: context.aws_request_id,
        invoked_function_arn: context.invoked_function_arn,
        deadline_ms: context.deadline_ms,
        function_name: context.function_name,
        function_version: context.function_version,
        memory_limit_in_mb: context.memory_limit_in_mb,
        log_group_name: context.log_group_name,
        log_stream_name: context.log_stream_name,
        identity: context.identity,
        client_context: context.client_context,
        tenant_id: context.tenant_id,
        xray_trace_id: context.xray_trace_id,
        headers: context.headers,
        remaining: context.get_remaining_time_in_millis(),
    }
}
"#;

fn check_context(name: &str, file: &str, script: &str) {
    let mut s = Scenario::new(name);
    s.write(file, script);
    s.start_with_env(file, CONTEXT_ENV);

    let arn = "arn:aws:lambda:eu-west-1:210987654321:function:ctx-fn:live";
    let identity =
        r#"{"cognitoIdentityId":"us-east-1:abc","cognitoIdentityPoolId":"us-east-1:pool"}"#;
    let client_context = r#"{"client":{"installation_id":"i-1","app_title":"Shop"},"custom":{"k":"v"},"env":{"platform":"Android"}}"#;
    let pushed_at = epoch_ms();
    let deadline = pushed_at + 120_000;
    let invocation = Invocation::new("ctx-1", "{}")
        .deadline_ms(deadline)
        .header("Lambda-Runtime-Invoked-Function-Arn", arn)
        .trace_id("Root=1-aaaa-bbbb;Sampled=1")
        .cognito_identity(identity)
        .client_context(client_context)
        .header("Lambda-Runtime-Aws-Tenant-Id", "tenant-42")
        .header("Lambda-Runtime-Invocation-Id", "inv-ctx-1")
        .header("Lambda-Runtime-Extra-Thing", "yes");
    let sent_headers = invocation.headers.clone();

    let post = s.answer(invocation);
    if post.kind != PostKind::Response {
        s.fail(&format!("expected a response, got {}", post.text()));
    }
    let ctx = post.json();
    assert_eq!(ctx["aws_request_id"], "ctx-1", "{ctx}");
    assert_eq!(ctx["invoked_function_arn"], arn, "{ctx}");
    assert_eq!(ctx["deadline_ms"].as_u64(), Some(deadline), "{ctx}");
    assert_eq!(ctx["function_name"], "ctx-fn", "{ctx}");
    assert_eq!(ctx["function_version"], "7", "{ctx}");
    assert_eq!(ctx["memory_limit_in_mb"].as_f64(), Some(512.0), "{ctx}");
    assert_eq!(ctx["log_group_name"], "/aws/lambda/ctx-fn", "{ctx}");
    assert_eq!(ctx["log_stream_name"], "2024/05/06/[7]0123abcd", "{ctx}");
    let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap();
    assert_eq!(ctx["identity"], parse(identity), "decoded: {ctx}");
    assert_eq!(
        ctx["client_context"],
        parse(client_context),
        "decoded: {ctx}"
    );
    assert_eq!(ctx["tenant_id"], "tenant-42", "{ctx}");
    assert_eq!(ctx["xray_trace_id"], "Root=1-aaaa-bbbb;Sampled=1", "{ctx}");
    // The invocation id of `/next` comes back on the answer (SPEC 3).
    assert_eq!(
        post.header("lambda-runtime-invocation-id"),
        Some("inv-ctx-1")
    );

    let headers = ctx["headers"].as_object().expect("headers is a map");
    for (name, value) in &sent_headers {
        let key = name.to_ascii_lowercase();
        assert_eq!(headers.get(&key), Some(&json!(value)), "{key} in {ctx}");
    }
    for key in headers.keys() {
        assert!(
            key.starts_with("lambda-runtime-") && *key == key.to_ascii_lowercase(),
            "only lower-case Lambda-Runtime-* headers: {key}"
        );
    }

    // Read after the push, so it cannot exceed the distance to the deadline then.
    let remaining = ctx["remaining"].as_f64().expect("remaining is a number");
    assert!(
        remaining > 0.0 && remaining <= (deadline - pushed_at) as f64,
        "remaining {remaining} not in (0, {}]",
        deadline - pushed_at
    );

    // Without identity or client context: nil / ().
    let post = s.answer(Invocation::new("ctx-2", "{}"));
    let ctx = post.json();
    assert_eq!(ctx["aws_request_id"], "ctx-2", "{ctx}");
    assert!(ctx.get("identity").is_none_or(Value::is_null), "{ctx}");
    assert!(
        ctx.get("client_context").is_none_or(Value::is_null),
        "{ctx}"
    );
    for absent in ["tenant_id", "xray_trace_id"] {
        assert!(ctx.get(absent).is_none_or(Value::is_null), "{ctx}");
    }
    assert_eq!(post.header("lambda-runtime-invocation-id"), None);
    let headers = ctx["headers"].as_object().expect("headers is a map");
    assert!(!headers.contains_key("lambda-runtime-trace-id"), "{ctx}");
    assert!(!headers.contains_key("lambda-runtime-extra-thing"), "{ctx}");
}

#[test]
fn context_comes_from_headers_and_environment_lua() {
    check_context("context_lua", "ctx.lua", CONTEXT_LUA);
}

#[test]
fn context_comes_from_headers_and_environment_rhai() {
    check_context("context_rhai", "ctx.rhai", CONTEXT_RHAI);
}

// ---------------------------------------------------------------------------
// Transport

#[test]
fn one_connection_serves_a_hundred_invocations() {
    let mut s = started(
        "one_connection",
        "echo.lua",
        "function main(event) return event.i end",
        "echo.lua",
    );
    for i in 0..100 {
        s.push(Invocation::new(
            &format!("req-{i}"),
            format!(r#"{{"i":{i}}}"#),
        ));
    }
    s.wait_for("100 answers and the next /next", |log| {
        log.posts.len() >= 100 && log.next_requests >= 101
    });
    let posts = s.api.posts();
    assert_answered_once(&posts);
    for (i, post) in posts.iter().enumerate() {
        assert_eq!(post.kind, PostKind::Response, "{post:?}");
        assert_eq!(
            post.request_id.as_deref(),
            Some(format!("req-{i}").as_str())
        );
        assert_eq!(post.text(), i.to_string());
    }
    assert_eq!(
        s.api.connections(),
        1,
        "keep-alive: one TCP connection throughout"
    );
}

#[test]
fn prefixed_api_address_is_honoured() {
    let mut s = Scenario::with_prefix("prefixed", "/.rt");
    s.write("hello.lua", r#"function main(event) return "prefixed" end"#);
    s.start("hello.lua");
    let post = s.answer(Invocation::new("p1", "{}"));
    assert_eq!(post.path, "/.rt/2018-06-01/runtime/invocation/p1/response");
    assert_eq!(post.text(), r#""prefixed""#);
    assert_eq!(s.api.log().unexpected, Vec::<String>::new());
}

#[test]
fn prefixed_api_address_gets_init_errors_too() {
    let mut s = Scenario::with_prefix("prefixed_init", "/.rt");
    s.start("nothing.lua");
    assert!(!s.wait_exit().success());
    let posts = s.api.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].path, "/.rt/2018-06-01/runtime/init/error");
    assert_eq!(s.api.log().unexpected, Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// cargo-lambda's constant `Deadline-Ms: 600000` is no deadline, not an expired one.

fn check_non_epoch_deadline(name: &str, file: &str, script: &str) {
    let mut s = started(name, file, script, file);
    let post = s.answer(Invocation::new("d1", "{}").deadline_ms(600000));
    if post.kind != PostKind::Response {
        s.fail(&format!("expected a response, got {}", post.text()));
    }
    let remaining = post.json().as_f64().expect("a number");
    assert!(
        remaining > 890_000.0 && remaining <= 900_000.0,
        "counts down from 900000: {remaining}"
    );
}

#[test]
fn non_epoch_deadline_means_no_deadline_lua() {
    check_non_epoch_deadline(
        "non_epoch_deadline_lua",
        "d.lua",
        "function main(event, context) return context:get_remaining_time_in_millis() end",
    );
}

#[test]
fn non_epoch_deadline_means_no_deadline_rhai() {
    check_non_epoch_deadline(
        "non_epoch_deadline_rhai",
        "d.rhai",
        "fn main(event, context) { context.get_remaining_time_in_millis() }",
    );
}

// ---------------------------------------------------------------------------
// A response over Lambda's 6,291,556-byte limit is never sent.

fn check_oversize(s: &mut Scenario, body_len: usize) {
    let post = s.answer(Invocation::new("big", r#"{"big":true}"#));
    assert_eq!(
        post.kind,
        PostKind::Error,
        "{:.200}",
        String::from_utf8_lossy(&post.body)
    );
    assert_eq!(post.path, "/2018-06-01/runtime/invocation/big/error");
    assert_eq!(
        post.header(ERROR_TYPE_HEADER),
        Some("Function.ResponseSizeTooLarge")
    );
    let body = assert_error_shape(&post);
    assert_eq!(body["errorType"], "Function.ResponseSizeTooLarge", "{body}");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains(&body_len.to_string()),
        "gives the size {body_len}: {message}"
    );

    let post = s.answer(Invocation::new("small", r#"{"big":false}"#));
    assert_eq!(post.kind, PostKind::Response);
    assert_eq!(post.text(), r#""small""#);
    assert_answered_once(&s.api.posts());
}

#[test]
fn oversize_response_is_refused_and_the_process_goes_on_lua() {
    let mut s = started(
        "oversize_lua",
        "big.lua",
        r#"
function main(event)
  if event.big then return string.rep("x", 7000000) end
  return "small"
end
"#,
        "big.lua",
    );
    // The JSON string: the quotes around 7,000,000 bytes.
    check_oversize(&mut s, 7_000_002);
}

#[test]
fn oversize_response_is_refused_and_the_process_goes_on_rhai() {
    // 100 strings of 70,000 bytes, so no single string meets Rhai's size limits.
    let mut s = started(
        "oversize_rhai",
        "big.rhai",
        r#"
fn main(event, context) {
    if event.big {
        let s = "";
        s.pad(70000, 'x');
        let a = [];
        a.pad(100, s);
        return a;
    }
    "small"
}
"#,
        "big.rhai",
    );
    // 100 quoted strings, 99 commas, 2 brackets.
    check_oversize(&mut s, 100 * 70_002 + 99 + 2);
}

// ---------------------------------------------------------------------------
// The fault hook against the real binary (the fault tests proper belong to the
// retry work): a 5xx on a POST is retried and the invocation still answered once.

#[test]
fn fault_hook_a_5xx_on_a_post_is_retried() {
    let mut s = started(
        "fault_post_5xx",
        "hello.lua",
        r#"function main() return "retried" end"#,
        "hello.lua",
    );
    s.api.script_post(Reply::Status(500));
    let post = s.answer(Invocation::new("f1", "{}"));
    assert_eq!(post.text(), r#""retried""#);
    let posts = s.api.posts();
    let statuses: Vec<_> = posts
        .iter()
        .map(|p| (p.request_id.as_deref(), p.status))
        .collect();
    assert_eq!(statuses, [(Some("f1"), Some(500)), (Some("f1"), Some(202))]);
    assert_eq!(posts[0].body, posts[1].body, "the same body again");
}

// ---------------------------------------------------------------------------
// Proxy variables are for the function's own calls, never for the Runtime API
// (SPEC §3): a function configured with a proxy still reaches Lambda.

/// A listener standing for a forward proxy: counts the connections it gets.
fn counting_proxy() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, count)
}

#[test]
fn proxy_variables_never_carry_the_runtime_api() {
    let (proxy, connections) = counting_proxy();
    let env: Vec<(&str, &str)> = [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .into_iter()
    .map(|name| (name, proxy.as_str()))
    .collect();

    let mut s = Scenario::new("proxy_env");
    s.write("hello.lua", r#"function main(event) return "direct" end"#);
    s.start_with_env("hello.lua", &env);
    for id in ["p1", "p2"] {
        let post = s.answer(Invocation::new(id, "{}"));
        assert_eq!(post.text(), r#""direct""#);
    }

    // An init error is posted directly too.
    let mut s = Scenario::new("proxy_env_init");
    s.start_with_env("nothing.lua", &env);
    assert!(!s.wait_exit().success());
    assert_eq!(s.api.posts()[0].path, "/2018-06-01/runtime/init/error");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the proxy was used"
    );
}
