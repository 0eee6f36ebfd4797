//! The example handlers in `scripts/` are documentation, so each one runs here
//! exactly as scripts/README.md tells a newcomer to run it:
//! `lure invoke NAME.handler --task-root scripts --event scripts/events/NAME.json`
//! from the crate root, and the same with `rhai/NAME.handler`.
//!
//! The Lua and Rhai versions of an example must print byte-identical responses
//! and log the same lines, so a difference between the engines shows up here.
//! The response, the product, is snapshotted as raw text.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::moto::Moto;
use support::web::{Ca, WebServer};

const LURE: &str = env!("CARGO_BIN_EXE_lure");
const CRATE_ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LOG_LEVELS: &[&str] = &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// One test per example, named after it. `EXAMPLES` lists the same names, so
/// `every_example_is_complete_and_tested` notices a script without a test.
macro_rules! example_tests {
    ($($name:ident: $check:ident),* $(,)?) => {
        const EXAMPLES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                $check(stringify!($name));
            }
        )*
    };
}

example_tests! {
    hello: succeeds_alike,
    echo: succeeds_alike,
    api_gateway: succeeds_alike,
    sqs_batch: succeeds_alike,
    custom_error: fails_alike,
    github_repo: calls_a_local_api_alike,
    dynamodb_crud: calls_aws_alike,
    s3_presign: calls_aws_alike,
    stream_csv: succeeds_alike,
    s3_object: succeeds_alike,
    schedule: succeeds_alike,
}

/// What one `lure invoke` did.
struct Run {
    command: String,
    exit_code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The function's log records as `LEVEL\tmessage`, without the timestamp and
    /// request id that change from run to run (and without the REPORT line).
    fn log_records(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(4, '\t');
                let (_timestamp, _request_id) = (fields.next()?, fields.next()?);
                let level = fields.next().filter(|l| LOG_LEVELS.contains(l))?;
                Some(format!("{level}\t{}", fields.next()?))
            })
            .collect()
    }

    fn assert_exit_code(&self, expected: i32) {
        assert_eq!(
            self.exit_code,
            Some(expected),
            "`{}` exited with {:?}\nstdout: {}\nstderr:\n{}",
            self.command,
            self.exit_code,
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `lure invoke HANDLER --task-root scripts --event EVENT` in the crate
/// root. `stdin` is fed to lure, for `--event -`.
fn lure_invoke(handler: &str, event: &str, stdin: Option<&str>) -> Run {
    lure_invoke_with(handler, event, stdin, &[])
}

/// [`lure_invoke`] with `env` set for lure.
fn lure_invoke_with(handler: &str, event: &str, stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    let args = [
        "invoke",
        handler,
        "--task-root",
        "scripts",
        "--event",
        event,
    ];
    let mut child = Command::new(LURE)
        .args(args)
        .current_dir(CRATE_ROOT)
        // The developer's or CI's log settings must not change what is compared.
        .env_remove("AWS_LAMBDA_LOG_FORMAT")
        .env_remove("AWS_LAMBDA_LOG_LEVEL")
        .env_remove("_LAMBDA_TELEMETRY_LOG_FD")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lure starts");
    let mut child_stdin = child.stdin.take().expect("piped stdin");
    child_stdin
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("lure reads the event");
    drop(child_stdin);
    let output = child.wait_with_output().expect("lure finishes");
    Run {
        command: format!("lure {}", args.join(" ")),
        exit_code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("the response is UTF-8"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs both versions of example `name` on its sample event.
fn run_pair(name: &str) -> (Run, Run) {
    let event = format!("scripts/events/{name}.json");
    (
        lure_invoke(&format!("{name}.handler"), &event, None),
        lure_invoke(&format!("rhai/{name}.handler"), &event, None),
    )
}

/// Runs both versions of example `name` on `event` (JSON text); returns the
/// response, after checking both succeeded with the same one.
fn run_pair_on(name: &str, event: &str) -> String {
    let lua = lure_invoke(&format!("{name}.handler"), "-", Some(event));
    let rhai = lure_invoke(&format!("rhai/{name}.handler"), "-", Some(event));
    lua.assert_exit_code(0);
    rhai.assert_exit_code(0);
    assert_eq!(rhai.stdout, lua.stdout, "Lua and Rhai responses differ");
    lua.stdout
}

/// Snapshots name the command that produced them.
fn snapshot_settings(description: String) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    settings.set_description(description);
    settings
}

/// `lure invoke HANDLER ...` as the README writes it.
fn command_line(handler: &str, name: &str) -> String {
    format!("lure invoke {handler} --task-root scripts --event scripts/events/{name}.json")
}

/// The example succeeds in both languages with the same response and logs.
fn succeeds_alike(name: &str) {
    let (lua, rhai) = run_pair(name);
    lua.assert_exit_code(0);
    rhai.assert_exit_code(0);
    assert_eq!(rhai.stdout, lua.stdout, "Lua and Rhai responses differ");
    assert_eq!(
        rhai.log_records(),
        lua.log_records(),
        "Lua and Rhai log different lines"
    );
    let description = format!(
        "{} (rhai/{name}.handler prints the same)",
        command_line(&format!("{name}.handler"), name)
    );
    snapshot_settings(description).bind(|| insta::assert_snapshot!(name, lua.stdout));
}

/// The example calls an HTTPS API: here a local stand-in with a certificate of
/// the test's own CA (`API_BASE_URL`, `LURE_EXTRA_CA_CERTS`). It succeeds in both
/// languages alike on its sample event, and a repository the API does not know
/// is the example's typed error.
fn calls_a_local_api_alike(name: &str) {
    let ca = Ca::new("lure example CA");
    let api = WebServer::https(ca.server_config());
    let ca_file = std::env::temp_dir().join(format!("lure-{name}-{}-ca.pem", std::process::id()));
    std::fs::write(&ca_file, ca.pem()).expect("write the CA");
    let ca_path = ca_file.to_string_lossy().into_owned();
    let env = [
        ("API_BASE_URL", api.base.as_str()),
        ("LURE_EXTRA_CA_CERTS", ca_path.as_str()),
    ];
    let event = format!("scripts/events/{name}.json");
    let run = |handler: &str, event: &str, stdin: Option<&str>| {
        lure_invoke_with(handler, event, stdin, &env)
    };
    let (lua, rhai) = (
        run(&format!("{name}.handler"), &event, None),
        run(&format!("rhai/{name}.handler"), &event, None),
    );
    lua.assert_exit_code(0);
    rhai.assert_exit_code(0);
    assert_eq!(rhai.stdout, lua.stdout, "Lua and Rhai responses differ");
    let description = format!(
        "{} with API_BASE_URL set to a local stand-in for api.github.com (rhai/{name}.handler prints the same)",
        command_line(&format!("{name}.handler"), name)
    );
    snapshot_settings(description).bind(|| insta::assert_snapshot!(name, lua.stdout));
    let sent = &api.requests()[0];
    assert_eq!(sent.path, "/repos/rust-lang/rust");
    assert_eq!(sent.header("accept"), Some("application/vnd.github+json"));

    let missing = r#"{"owner": "rust-lang", "repo": "no-such-repo"}"#;
    for handler in [format!("{name}.handler"), format!("rhai/{name}.handler")] {
        let run = run(&handler, "-", Some(missing));
        run.assert_exit_code(1);
        let error = without_stack_trace(&run.stdout);
        assert_eq!(error["errorType"], "RepositoryNotFound", "{handler}");
        assert_eq!(
            error["errorMessage"],
            "no repository rust-lang/no-such-repo"
        );
    }
    let _ = std::fs::remove_file(ca_file);
}

/// The example calls AWS: here moto, with its signature checks on, holding the
/// table (`items`, key `id`) or the bucket (`my-bucket`, with the sample
/// event's object) the example needs. Both languages answer the sample event
/// alike; then each route or failure of the example, in both languages.
fn calls_aws_alike(name: &str) {
    let moto = Moto::start();
    let setup = moto.run_python(
        r#"
import boto3
boto3.client("dynamodb").create_table(
    TableName="items",
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)
s3 = boto3.client("s3")
s3.create_bucket(Bucket="my-bucket")
s3.put_object(Bucket="my-bucket", Key="reports/2024 q1.pdf", Body=b"%PDF-1.7 report", ContentType="application/pdf")
"#,
    );
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let mut env = moto.env();
    env.push(("TABLE_NAME".into(), "items".into()));
    env.push(("BUCKET_NAME".into(), "my-bucket".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = |handler: &str, stdin: Option<&str>| {
        let event = match stdin {
            Some(_) => "-".to_owned(),
            None => format!("scripts/events/{name}.json"),
        };
        lure_invoke_with(handler, &event, stdin, &env)
    };
    let both = |stdin: Option<&str>| {
        let lua = run(&format!("{name}.handler"), stdin);
        let rhai = run(&format!("rhai/{name}.handler"), stdin);
        assert_eq!(
            lua.exit_code, rhai.exit_code,
            "{}\n{}",
            lua.stdout, rhai.stdout
        );
        if lua.exit_code == Some(0) {
            // The two runs may sign in different seconds.
            let unsigned =
                regex::Regex::new(r"X-Amz-Date=\d{8}T\d{6}Z|X-Amz-Signature=[0-9a-f]{64}")
                    .expect("a regex");
            assert_eq!(
                unsigned.replace_all(&rhai.stdout, ""),
                unsigned.replace_all(&lua.stdout, ""),
                "Lua and Rhai responses differ"
            );
        } else {
            assert_eq!(
                without_stack_trace(&rhai.stdout),
                without_stack_trace(&lua.stdout),
                "Lua and Rhai errors differ"
            );
        }
        lua
    };

    let sample = both(None);
    sample.assert_exit_code(0);
    let description = format!(
        "{} with AWS_ENDPOINT_URL set to moto (rhai/{name}.handler prints the same)",
        command_line(&format!("{name}.handler"), name)
    );
    let mut settings = snapshot_settings(description);
    // A presigned URL carries the stand-in's port, the time and its signature.
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT");
    settings.add_filter(r"X-Amz-Date=\d{8}T\d{6}Z", "X-Amz-Date=DATE");
    settings.add_filter(r"%2F\d{8}%2F", "%2FDAY%2F");
    settings.add_filter(r"Credential=[A-Z0-9]+%2F", "Credential=KEY%2F");
    settings.add_filter(r"X-Amz-Signature=[0-9a-f]{64}", "X-Amz-Signature=SIGNATURE");
    settings.bind(|| insta::assert_snapshot!(name, sample.stdout));

    match name {
        "dynamodb_crud" => {
            let request = |method: &str, path: &str, body: Option<&str>| {
                let mut event = sample_event(name);
                event["rawPath"] = path.into();
                event["requestContext"]["http"]["method"] = method.into();
                event["requestContext"]["http"]["path"] = path.into();
                event["body"] = body.map_or(Value::Null, Value::from);
                let run = both(Some(&event.to_string()));
                run.assert_exit_code(0);
                let response: Value = serde_json::from_str(&run.stdout).expect("a JSON response");
                let body = response["body"].as_str().unwrap_or_default();
                (
                    response["statusCode"].clone(),
                    if body.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(body).expect("a JSON body")
                    },
                )
            };
            let item = serde_json::json!({ "id": "42", "name": "coffee", "price": 3.5 });
            assert_eq!(request("GET", "/items/42", None), (200.into(), item));
            let updated = r#"{"name":"tea","price":2}"#;
            assert_eq!(
                request("PUT", "/items/42", Some(updated)),
                (
                    200.into(),
                    serde_json::json!({ "id": "42", "name": "tea", "price": 2 })
                )
            );
            assert_eq!(
                request("PUT", "/items/7", Some(updated)),
                (404.into(), serde_json::json!({ "error": "no item 7" })),
                "a failed condition is a 404"
            );
            assert_eq!(
                request("DELETE", "/items/42", None),
                (204.into(), Value::Null)
            );
            assert_eq!(
                request("GET", "/items/42", None),
                (404.into(), serde_json::json!({ "error": "no item 42" }))
            );
        }
        "s3_presign" => {
            let response: Value = serde_json::from_str(&sample.stdout).expect("a JSON response");
            assert_eq!(response["size"], 15);
            assert_eq!(response["content_type"], "application/pdf");
            let missing = both(Some(r#"{"key": "reports/none.pdf"}"#));
            missing.assert_exit_code(1);
            let error = without_stack_trace(&missing.stdout);
            assert_eq!(error["errorType"], "ObjectNotFound");
            assert_eq!(error["errorMessage"], "no object reports/none.pdf");
        }
        other => panic!("no checks for {other}"),
    }
}

/// The example fails in both languages with the same error type and message.
/// Stack traces name each language's own files and frames, so each language
/// has its own snapshot.
fn fails_alike(name: &str) {
    let (lua, rhai) = run_pair(name);
    lua.assert_exit_code(1);
    rhai.assert_exit_code(1);
    assert_eq!(
        without_stack_trace(&rhai.stdout),
        without_stack_trace(&lua.stdout),
        "Lua and Rhai errors differ"
    );
    snapshot_settings(command_line(&format!("{name}.handler"), name))
        .bind(|| insta::assert_snapshot!(format!("{name}_lua"), lua.stdout));
    snapshot_settings(command_line(&format!("rhai/{name}.handler"), name))
        .bind(|| insta::assert_snapshot!(format!("{name}_rhai"), rhai.stdout));
}

fn without_stack_trace(error_body: &str) -> Value {
    let mut error: Value = serde_json::from_str(error_body).expect("the error body is JSON");
    let trace = error
        .as_object_mut()
        .and_then(|e| e.remove("stackTrace"))
        .expect("the error body has a stackTrace");
    assert!(trace.is_array(), "stackTrace is an array: {error_body}");
    error
}

fn sample_event(name: &str) -> Value {
    let path = Path::new(CRATE_ROOT).join(format!("scripts/events/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn hello_logs_with_print() {
    let (lua, rhai) = run_pair("hello");
    assert_eq!(lua.log_records(), ["INFO\tgreeting Ada"]);
    assert_eq!(rhai.log_records(), ["INFO\tgreeting Ada"]);
}

#[test]
fn hello_greets_the_world_by_default() {
    assert_eq!(run_pair_on("hello", "{}"), r#"{"message":"Hello, world!"}"#);
}

#[test]
fn api_gateway_answers_unknown_routes_with_404() {
    let mut event = sample_event("api_gateway");
    event["rawPath"] = "/menu".into();
    event["requestContext"]["http"]["method"] = "GET".into();
    assert_eq!(
        run_pair_on("api_gateway", &event.to_string()),
        r#"{"body":"{\"error\":\"no route for GET /menu\"}","headers":{"content-type":"application/json"},"statusCode":404}"#
    );
}

#[test]
fn api_gateway_answers_a_malformed_body_with_400() {
    let mut event = sample_event("api_gateway");
    event["body"] = "{\"item\":".into();
    assert_eq!(
        run_pair_on("api_gateway", &event.to_string()),
        r#"{"body":"{\"error\":\"the body must be a JSON object\"}","headers":{"content-type":"application/json"},"statusCode":400}"#
    );
}

/// REST APIs (payload 1.0) send `"queryStringParameters": null` for a URL without
/// a query: a JSON null, which Lua sees as `json.null`, a true value, so the
/// common `event.queryStringParameters or {}` would index it and fail.
#[test]
fn api_gateway_reads_json_nulls_as_absent() {
    let mut event = sample_event("api_gateway");
    event["queryStringParameters"] = Value::Null;
    assert_eq!(
        run_pair_on("api_gateway", &event.to_string()),
        r#"{"body":"{\"currency\":\"USD\",\"item\":\"coffee\",\"quantity\":2}","headers":{"content-type":"application/json"},"statusCode":200}"#
    );
    event["body"] = Value::Null;
    assert_eq!(
        run_pair_on("api_gateway", &event.to_string()),
        r#"{"body":"{\"error\":\"the body must be a JSON object\"}","headers":{"content-type":"application/json"},"statusCode":400}"#
    );
}

#[test]
fn sqs_batch_without_failures_reports_an_empty_list() {
    // The sample event less its malformed message: the failure list must still
    // be a JSON array (the point of json.array_mt in sqs_batch.lua).
    let mut event = sample_event("sqs_batch");
    event["Records"].as_array_mut().unwrap().remove(1);
    assert_eq!(
        run_pair_on("sqs_batch", &event.to_string()),
        r#"{"batchItemFailures":[]}"#
    );
}

/// File stems in `dir` with extension `ext`, sorted.
fn stems(dir: &str, ext: &str) -> Vec<String> {
    let mut stems: Vec<String> = std::fs::read_dir(Path::new(CRATE_ROOT).join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    stems
}

#[test]
fn every_example_is_complete_and_tested() {
    let mut tested: Vec<String> = EXAMPLES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    let hint = "each example needs scripts/NAME.lua, scripts/rhai/NAME.rhai, \
                scripts/events/NAME.json and a line in example_tests! (tests/scripts.rs)";
    assert_eq!(stems("scripts", "lua"), tested, "{hint}");
    assert_eq!(stems("scripts/rhai", "rhai"), tested, "{hint}");
    assert_eq!(stems("scripts/events", "json"), tested, "{hint}");

    let readme = std::fs::read_to_string(Path::new(CRATE_ROOT).join("scripts/README.md"))
        .expect("scripts/README.md exists");
    for name in EXAMPLES {
        for handler in [
            format!("`{name}.handler`"),
            format!("`rhai/{name}.handler`"),
        ] {
            assert!(
                readme.contains(&handler),
                "scripts/README.md does not mention {handler}"
            );
        }
    }
}
