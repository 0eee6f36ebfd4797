use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::*;
use crate::context::{self, FunctionInfo, header};
use crate::handler_spec;
use crate::test_support::on_main_sized_stack;

type Result<T = ()> = std::result::Result<T, Diagnostic>;

/// A 128 MB function's limits.
const LIMITS: Limits = Limits {
    script_memory: 104 << 20,
    response_bytes: crate::limits::MAX_RESPONSE_BYTES,
};

/// A fresh task root holding `files`.
fn task_root(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lure-rhai-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn load(test: &str, handler: &str, files: &[(&str, &str)]) -> Result<RhaiEngine> {
    let root = task_root(test, files);
    RhaiEngine::load(&handler_spec::resolve(handler, &root)?, &LIMITS)
}

/// Invokes with a context made of `headers` and a fixed function's facts.
fn invoke_with(
    engine: &mut RhaiEngine,
    event: &str,
    headers: &[(&str, &str)],
) -> std::result::Result<Vec<u8>, Diagnostic> {
    let info = FunctionInfo {
        function_name: "orders".into(),
        function_version: "$LATEST".into(),
        memory_limit_in_mb: 256,
        log_group_name: "/aws/lambda/orders".into(),
        log_stream_name: "2024/05/01/[$LATEST]abc".into(),
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    engine.invoke(
        event.as_bytes(),
        &Context::new(&info, &headers, SystemTime::now()),
    )
}

fn invoke(engine: &mut RhaiEngine, event: &str) -> Result<String> {
    let body = invoke_with(engine, event, &[(header::REQUEST_ID, "req-1")])?;
    Ok(String::from_utf8(body).expect("JSON is UTF-8"))
}

fn invoke_err(engine: &mut RhaiEngine, event: &str) -> Diagnostic {
    invoke(engine, event).expect_err("the invocation fails")
}

#[test]
fn script_body_is_the_handler_without_main() -> Result {
    let mut engine = load(
        "body",
        "hello.rhai",
        &[(
            "hello.rhai",
            "let n = event.name;\n#{ greeting: `hello ${n}`, id: context.aws_request_id }",
        )],
    )?;
    assert_eq!(
        invoke(&mut engine, r#"{"name":"Ann"}"#)?,
        r#"{"greeting":"hello Ann","id":"req-1"}"#
    );
    assert_eq!(
        invoke(&mut engine, r#"{"name":"Bo"}"#)?,
        r#"{"greeting":"hello Bo","id":"req-1"}"#
    );
    Ok(())
}

#[test]
fn script_file_calls_main_when_defined() -> Result {
    let script =
        "let calls = 0;\nfn main(event, context) { calls += 1; #{ calls: calls, x: event.x } }";
    let mut engine = load(
        "main",
        "jobs/nightly.rhai",
        &[("jobs/nightly.rhai", script)],
    )?;
    assert_eq!(invoke(&mut engine, r#"{"x":1}"#)?, r#"{"calls":1,"x":1}"#);
    assert_eq!(invoke(&mut engine, r#"{"x":2}"#)?, r#"{"calls":2,"x":2}"#);
    Ok(())
}

#[test]
fn named_function_with_each_arity() -> Result {
    let script = "fn none() { 0 }\nfn one(event) { event }\nfn two(event, context) { [event, context.function_name] }";
    let files = [("app.rhai", script)];
    assert_eq!(invoke(&mut load("arity0", "app.none", &files)?, "1")?, "0");
    assert_eq!(
        invoke(&mut load("arity1", "app.one", &files)?, "[1.5]")?,
        "[1.5]"
    );
    assert_eq!(
        invoke(&mut load("arity2", "app.two", &files)?, "true")?,
        r#"[true,"orders"]"#
    );
    let overloaded = [("app.rhai", "fn h() { 0 }\nfn h(e) { 1 }\nfn h(e, c) { 2 }")];
    assert_eq!(
        invoke(&mut load("overloaded", "app.h", &overloaded)?, "{}")?,
        "2"
    );
    Ok(())
}

#[test]
fn missing_or_unusable_handler_function() {
    let files = [("app.rhai", "fn three(a, b, c) { 0 }")];
    let err = load("nofn", "app.handler", &files).err().unwrap();
    assert_eq!(err.error_type, error_type::HANDLER_NOT_FOUND);
    assert_eq!(err.error_message, "app.rhai does not define fn handler");
    let err = load(
        "private",
        "app.hidden",
        &[("app.rhai", "private fn hidden() { 0 }")],
    )
    .err()
    .unwrap();
    assert_eq!(err.error_type, error_type::HANDLER_NOT_FOUND);
    assert!(
        err.error_message.contains("is private"),
        "{}",
        err.error_message
    );
    let err = load("arity3", "app.three", &files).err().unwrap();
    assert_eq!(err.error_type, error_type::HANDLER_NOT_FOUND);
    assert!(
        err.error_message.contains("takes 3 parameters"),
        "{}",
        err.error_message
    );
}

#[test]
fn top_level_state_survives_warm_invocations() -> Result {
    let script = r#"
        print("init");            // runs once
        let seen = [];
        let cache = #{};
        const GREETING = "hi";
        fn greet(name) { global::GREETING + " " + name }
        fn handler(event) {
            seen.push(event.id);
            cache[event.id] = greet(event.id);
            let local = 1;        // gone after the call
            #{ seen: seen, cache: cache }
        }
    "#;
    let mut engine = load("state", "app.handler", &[("app.rhai", script)])?;
    assert_eq!(
        invoke(&mut engine, r#"{"id":"a"}"#)?,
        r#"{"cache":{"a":"hi a"},"seen":["a"]}"#
    );
    assert_eq!(
        invoke(&mut engine, r#"{"id":"b"}"#)?,
        r#"{"cache":{"a":"hi a","b":"hi b"},"seen":["a","b"]}"#
    );
    Ok(())
}

#[test]
fn context_fields_and_remaining_time() -> Result {
    let script = r#"
        fn handler(event, context) {
            let c = context;
            let left = c.get_remaining_time_in_millis();
            c.remove("deadline_ms");
            c.ok = left > 0 && left <= 10000;
            c
        }
    "#;
    let mut engine = load("context", "app.handler", &[("app.rhai", script)])?;
    let deadline = context::epoch_ms(SystemTime::now() + Duration::from_secs(10)).to_string();
    let headers = [
        (header::REQUEST_ID, "req-9"),
        (header::DEADLINE_MS, &deadline),
        (
            header::INVOKED_FUNCTION_ARN,
            "arn:aws:lambda:eu-west-1:1:function:orders",
        ),
        (header::COGNITO_IDENTITY, r#"{"cognitoIdentityId":"id-1"}"#),
        (header::CLIENT_CONTEXT, "not json"),
    ];
    let body = String::from_utf8(invoke_with(&mut engine, "{}", &headers)?).unwrap();
    assert_eq!(
        body,
        concat!(
            r#"{"aws_request_id":"req-9","client_context":"not json","function_name":"orders","#,
            r#""function_version":"$LATEST","headers":{"lambda-runtime-aws-request-id":"req-9","#,
            r#""lambda-runtime-client-context":"not json","#,
            r#""lambda-runtime-cognito-identity":"{\"cognitoIdentityId\":\"id-1\"}","#,
            r#""lambda-runtime-deadline-ms":"DEADLINE","#,
            r#""lambda-runtime-invoked-function-arn":"arn:aws:lambda:eu-west-1:1:function:orders"},"#,
            r#""identity":{"cognitoIdentityId":"id-1"},"#,
            r#""invoked_function_arn":"arn:aws:lambda:eu-west-1:1:function:orders","#,
            r#""log_group_name":"/aws/lambda/orders","log_stream_name":"2024/05/01/[$LATEST]abc","#,
            r#""memory_limit_in_mb":256,"ok":true,"tenant_id":null,"xray_trace_id":null}"#
        )
        .replace("DEADLINE", &deadline)
    );

    // No plausible deadline: the clock counts down from Lambda's longest timeout.
    let script = "context.get_remaining_time_in_millis()";
    let mut engine = load("no-deadline", "left.rhai", &[("left.rhai", script)])?;
    let left: u64 = invoke(&mut engine, "{}")?.parse().unwrap();
    assert!((899_000..=900_000).contains(&left), "{left}");
    let body = invoke_with(&mut engine, "{}", &[(header::DEADLINE_MS, "600000")])?;
    let left: u64 = String::from_utf8(body).unwrap().parse().unwrap();
    assert!((899_000..=900_000).contains(&left), "{left}");
    Ok(())
}

#[test]
fn absent_identity_is_unit() -> Result {
    let script = "[context.identity, context.client_context]";
    let mut engine = load("identity", "ctx.rhai", &[("ctx.rhai", script)])?;
    assert_eq!(invoke(&mut engine, "{}")?, "[null,null]");
    Ok(())
}

#[test]
fn thrown_string_reads_like_lua_error() {
    let script = "fn handler(event) {\n    let x = 1;\n    throw \"order missing\";\n}";
    let mut engine = load("throw", "error.handler", &[("error.rhai", script)]).unwrap();
    let err = invoke_err(&mut engine, "{}");
    assert_eq!(err.error_type, "Error");
    assert_eq!(err.error_message, "error.rhai:3: order missing");
    assert_eq!(err.stack_trace, ["error.rhai:3:5 in fn handler"]);
    assert!(!err.from_runtime);
}

#[test]
fn thrown_map_sets_the_error_type() {
    let script = r#"throw #{ errorType: "OrderNotFound", errorMessage: `no order ${event.id}` };"#;
    let mut engine = load("typed", "typed.rhai", &[("typed.rhai", script)]).unwrap();
    let err = invoke_err(&mut engine, r#"{"id":7}"#);
    assert_eq!(err.error_type, "OrderNotFound");
    assert_eq!(err.error_message, "no order 7");
    assert_eq!(err.stack_trace, ["typed.rhai:1:1"]);
    assert!(!err.from_runtime);
}

#[test]
fn runtime_errors_name_file_line_and_column_with_callers() {
    let script = "fn validate(order) {\n    if order.qty > 0 { return order; }\n    order.missing_fn()\n}\n\nfn handler(event) {\n    let order = event;\n    validate(order)\n}";
    let mut engine = load("trace", "app.handler", &[("app.rhai", script)]).unwrap();
    let err = invoke_err(&mut engine, r#"{"qty":0}"#);
    assert_eq!(err.error_type, "Error");
    assert_eq!(
        err.error_message,
        "app.rhai:3:11: Function not found: missing_fn (map)"
    );
    assert_eq!(
        err.stack_trace,
        ["app.rhai:3:11 in fn validate", "app.rhai:8:5 in fn handler"]
    );

    let mut engine = load("notfound", "v.rhai", &[("v.rhai", "\n  nope + 1")]).unwrap();
    let err = invoke_err(&mut engine, "{}");
    assert_eq!(err.error_message, "v.rhai:2:3: Variable not found: nope");
    assert_eq!(err.stack_trace, ["v.rhai:2:3"]);
}

#[test]
fn syntax_error_at_init() {
    let err = load(
        "syntax",
        "bad.rhai",
        &[("bad.rhai", "let x = 1;\nlet = 2;")],
    )
    .err()
    .unwrap();
    assert_eq!(err.error_type, error_type::USER_CODE_SYNTAX_ERROR);
    assert!(
        err.error_message.starts_with("bad.rhai:2:5: "),
        "{}",
        err.error_message
    );
    assert!(err.from_runtime);
}

#[test]
fn missing_file_at_init() {
    let root = task_root("missing", &[("gone.rhai", "1")]);
    let handler = handler_spec::resolve("gone.rhai", &root).unwrap();
    std::fs::remove_file(root.join("gone.rhai")).unwrap();
    let err = RhaiEngine::load(&handler, &LIMITS).err().unwrap();
    assert_eq!(err.error_type, error_type::IMPORT_MODULE_ERROR);
    assert!(
        err.error_message.starts_with("Cannot load 'gone.rhai': "),
        "{}",
        err.error_message
    );
}

#[test]
fn top_level_error_is_an_import_error_keeping_the_message() {
    let script = "let config = #{};\nlet port = config.port + 1;\nfn handler() { port }";
    let err = load("toplevel", "app.handler", &[("app.rhai", script)])
        .err()
        .unwrap();
    assert_eq!(err.error_type, error_type::IMPORT_MODULE_ERROR);
    assert_eq!(
        err.error_message,
        "app.rhai:2:24: Function not found: + ((), i64)"
    );
    let script = "throw \"no config\";\nfn handler() { 1 }";
    let err = load("toplevel-throw", "app.handler", &[("app.rhai", script)])
        .err()
        .unwrap();
    assert_eq!(err.error_type, error_type::IMPORT_MODULE_ERROR);
    assert_eq!(err.error_message, "app.rhai:1: no config");
}

#[test]
fn bad_event_is_an_unmarshal_error() -> Result {
    let mut engine = load("unmarshal", "e.rhai", &[("e.rhai", "event")])?;
    let err = invoke_err(&mut engine, "{\"a\":");
    assert_eq!(err.error_type, error_type::UNMARSHAL_ERROR);
    assert_eq!(
        err.error_message,
        "Unable to unmarshal input: EOF while parsing a value at line 1 column 5"
    );
    assert!(err.from_runtime);
    Ok(())
}

#[test]
fn unencodable_result_is_a_marshal_error_naming_the_path() -> Result {
    let script = "#{ items: [1, 2, #{ f: |x| x }] }";
    let mut engine = load("marshal", "m.rhai", &[("m.rhai", script)])?;
    let err = invoke_err(&mut engine, "{}");
    assert_eq!(err.error_type, error_type::MARSHAL_ERROR, "{err:?}");
    assert_eq!(
        err.error_message,
        "Unable to marshal response: a Fn cannot be encoded as JSON at $.items[2].f"
    );
    Ok(())
}

#[test]
fn values_round_trip_through_a_handler() -> Result {
    let mut engine = load("echo", "echo.rhai", &[("echo.rhai", "event")])?;
    let event = r#"{"a":[1,2.5,"é☃",true,null,{}],"b":[],"n":-3}"#;
    assert_eq!(invoke(&mut engine, event)?, event);
    let mut engine = load("types", "t.rhai", &[("t.rhai", "[2.0, 'c', (), \"s\"]")])?;
    assert_eq!(invoke(&mut engine, "{}")?, r#"[2,"c",null,"s"]"#);
    Ok(())
}

#[test]
fn deep_events_decode_and_encode() {
    on_main_sized_stack(|| {
        let mut engine = load("deep", "echo.rhai", &[("echo.rhai", "event")]).unwrap();
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(
            invoke(&mut engine, &deep(json::MAX_DEPTH)).unwrap(),
            deep(json::MAX_DEPTH)
        );
        let err = invoke_err(&mut engine, &deep(100_000));
        assert_eq!(err.error_type, error_type::UNMARSHAL_ERROR);
        assert!(
            err.error_message.contains("nested deeper than 1024"),
            "{}",
            err.error_message
        );
    });
}

#[test]
fn size_limits_are_out_of_memory() -> Result {
    let cases = [
        (
            "let s = \"x\";\nloop { s += s; }",
            "string data is limited to 16777216 bytes",
        ),
        (
            "let a = [0];\nloop { a += a; }",
            "arrays are limited to 1000000 elements",
        ),
        (
            "let a = [#{ a: 0, b: 1, c: 2, d: 3, e: 4, f: 5, g: 6, h: 7, i: 8, j: 9, k: 10, l: 11, m: 12, n: 13, o: 14, p: 15 }];\nloop { a += a; }",
            // Doubling a million properties' worth of maps holds two copies at
            // once: the heap limit (104 MB, for 128 MB) stops it first.
            "exceeded its memory limit of 104 MB",
        ),
    ];
    for (i, (script, limit)) in cases.into_iter().enumerate() {
        let mut engine = load(&format!("oom{i}"), "oom.rhai", &[("oom.rhai", script)])?;
        let err = invoke_err(&mut engine, "{}");
        assert_eq!(err.error_type, error_type::OUT_OF_MEMORY, "{script}");
        assert!(
            err.error_message.starts_with("oom.rhai:2:"),
            "{}",
            err.error_message
        );
        assert!(err.error_message.contains(limit), "{}", err.error_message);
        // The process and the engine carry on.
        assert_eq!(
            invoke_err(&mut engine, "{}").error_type,
            error_type::OUT_OF_MEMORY
        );
    }
    Ok(())
}

/// A map grown through `m[key] = value` escapes Rhai's size limits (Rhai checks
/// the value assigned, not the map): the heap limit stops it, the values are
/// freed, and the next invocation may use the memory again.
#[test]
fn heap_limit_stops_what_size_limits_miss() -> Result {
    let script = r#"
        fn main(event, context) {
            let s = "";
            s.pad(100000, 'x');
            let m = #{};
            let n = 0;
            for i in 0..event.n { m["k" + i] = s + i; n += 1; }
            n
        }
    "#;
    let mut engine = load("heap", "app.rhai", &[("app.rhai", script)])?;
    let limit = LIMITS.script_memory;
    let entries_over = limit / 100_000 + 100;
    let err = invoke_err(&mut engine, &format!(r#"{{"n":{entries_over}}}"#));
    assert_eq!(err.error_type, error_type::OUT_OF_MEMORY, "{err:?}");
    assert!(
        err.error_message.contains(&format!("{} MB", limit >> 20)),
        "{}",
        err.error_message
    );
    // A third: `s + i` may reserve more than it uses. Had the first run's
    // values not been freed, the heap would already be over the limit.
    let most = limit / 100_000 / 3;
    assert_eq!(
        invoke(&mut engine, &format!(r#"{{"n":{most}}}"#))?,
        most.to_string(),
        "the memory is back"
    );
    Ok(())
}

#[test]
fn runaway_recursion_is_a_clean_error() {
    on_main_sized_stack(|| {
        // Each level also nests expressions as deep as a function body may.
        let nested = (0..15).fold("down(n + 1)".to_owned(), |e, _| format!("[{e}]"));
        let script =
            format!("fn down(n) {{ if n >= 0 {{ {nested} }} }}\nfn handler() {{ down(0) }}");
        let mut engine = load("recursion", "app.handler", &[("app.rhai", &script)]).unwrap();
        let err = invoke_err(&mut engine, "{}");
        assert_eq!(err.error_type, "Error");
        // Rhai passes this error straight up, without the callers' positions.
        assert_eq!(
            err.error_message,
            "app.rhai: stack overflow (more than 64 nested function calls)"
        );
        assert_eq!(err.stack_trace, ["app.rhai in fn handler"]);
    });
}

#[test]
fn imports_resolve_under_the_task_root() -> Result {
    let files = [
        (
            "lib/util.rhai",
            "export const PREFIX = \"hi \";\nfn greet(name) { global::PREFIX + name }\nfn fail() { throw \"util failed\"; }",
        ),
        (
            "app.rhai",
            "import \"lib/util\" as util;\nfn handler(event) { util::greet(event.name) }\nfn inner() { import \"lib/util\" as u; u::PREFIX }\nfn broken() { util::fail() }",
        ),
    ];
    let mut engine = load("import", "app.handler", &files)?;
    assert_eq!(invoke(&mut engine, r#"{"name":"Ann"}"#)?, r#""hi Ann""#);
    assert_eq!(invoke(&mut engine, r#"{"name":"Bo"}"#)?, r#""hi Bo""#);
    let root = std::env::temp_dir().join(format!("lure-rhai-{}-import", std::process::id()));
    let mut engine = RhaiEngine::load(&handler_spec::resolve("app.inner", &root)?, &LIMITS)?;
    assert_eq!(invoke(&mut engine, "{}")?, r#""hi ""#);
    let mut engine = RhaiEngine::load(&handler_spec::resolve("app.broken", &root)?, &LIMITS)?;
    let err = invoke_err(&mut engine, "{}");
    assert_eq!(err.error_message, "lib/util.rhai:3: util failed");
    assert_eq!(
        err.stack_trace,
        [
            "lib/util.rhai:3:13 in fn fail",
            "app.rhai:4:21 in fn broken"
        ]
    );

    let files = [("app.rhai", "import \"nowhere\" as n;\nfn handler() { 1 }")];
    let err = load("import-missing", "app.handler", &files).err().unwrap();
    assert_eq!(err.error_type, error_type::IMPORT_MODULE_ERROR);
    assert_eq!(err.error_message, "app.rhai:1:8: Module not found: nowhere");
    Ok(())
}
