//! `lure serve` as its users drive it: the real binary started with `--port 0`,
//! invoked over HTTP the way curl, the AWS CLI and the AWS SDKs do (and, in
//! `aws_python_sdk_drives_serve`, by boto3 itself).
//!
//! Nothing here waits for time to pass: each test waits for an answer or for a
//! line in serve's output, with [`WAIT`] as an upper bound that only matters
//! when something is broken.

mod support;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use support::http::{Response, read_response};
use support::{Scratch, WAIT};

const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";

/// A running `lure serve`; killed when dropped. Its stderr is collected as it comes.
struct Serve {
    child: Child,
    address: String,
    output: Arc<(Mutex<Vec<u8>>, Condvar)>,
    scratch: Scratch,
}

impl Serve {
    /// Starts `lure serve HANDLER --task-root … --port 0 ARGS` on the scratch's task
    /// root and waits for the address it prints.
    fn start(scratch: Scratch, handler: &str, args: &[&str]) -> Serve {
        Self::start_with_env(scratch, handler, args, &[])
    }

    /// As [`Serve::start`], with `env` in serve's environment.
    fn start_with_env(
        scratch: Scratch,
        handler: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lure"))
            .arg("serve")
            .arg(handler)
            .arg("--task-root")
            .arg(scratch.task_root())
            .args(["--port", "0"])
            .args(args)
            .env_clear()
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lure serve");
        let output = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let mut stderr = child.stderr.take().expect("serve's stderr");
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                let (text, changed) = &*sink;
                text.lock().unwrap().extend_from_slice(&buf[..n]);
                changed.notify_all();
            }
        });
        let mut serve = Serve {
            child,
            address: String::new(),
            output,
            scratch,
        };
        let line = serve.wait_line("the address serve listens on", |l| {
            l.starts_with("lure serve: ") && l.contains(INVOKE_PATH)
        });
        let url = line.split(" at http://").nth(1).expect("an http:// URL");
        serve.address = url.split('/').next().unwrap().to_owned();
        serve
    }

    /// Everything serve wrote to stderr so far.
    fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.0.lock().unwrap()).into_owned()
    }

    /// Waits until serve's output holds a line matching `pred`; returns it.
    fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + WAIT;
        let (text, changed) = &*self.output;
        let mut guard = text.lock().unwrap();
        loop {
            let out = String::from_utf8_lossy(&guard).into_owned();
            if let Some(line) = out.lines().find(|l| pred(l)) {
                return line.to_owned();
            }
            let now = Instant::now();
            if now >= end {
                drop(guard);
                panic!("timed out waiting for {what}; serve's output:\n{out}");
            }
            guard = changed.wait_timeout(guard, end - now).unwrap().0;
        }
    }

    /// The REPORT line of invocation `id` (waits for it).
    fn report(&self, id: &str) -> String {
        let prefix = format!("REPORT RequestId: {id}\t");
        self.wait_line(&format!("the REPORT of {id}"), |l| l.starts_with(&prefix))
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.address).expect("connect to lure serve");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
    }

    /// POSTs `body` to the invoke path with `headers`; the response.
    fn invoke_with(&self, headers: &[(&str, &str)], body: &str) -> Response {
        self.request("POST", INVOKE_PATH, headers, body)
    }

    fn invoke(&self, body: &str) -> Response {
        self.invoke_with(&[], body)
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        self.request_raw(method, path, headers, body.as_bytes())
    }

    fn request_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut stream = self.connect();
        stream
            .write_all(&request_bytes(method, path, headers, body))
            .unwrap();
        read_response(&mut BufReader::new(stream)).unwrap_or_else(|e| {
            panic!(
                "no answer to {method} {path}: {e}\nserve's output:\n{}",
                self.output()
            )
        })
    }

    fn task_root(&self) -> PathBuf {
        self.scratch.task_root()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("lure serve's output:\n{}", self.output());
        }
    }
}

/// A request; `Host: localhost` unless `headers` name a `Host`.
fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str("Host: localhost\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    [head.as_bytes(), body].concat()
}

/// A scratch task root holding `files`.
fn scratch(name: &str, files: &[(&str, &str)]) -> Scratch {
    let scratch = Scratch::new(name);
    for (path, contents) in files {
        scratch.write(path, contents);
    }
    scratch
}

fn json_body(response: &Response) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "body is not JSON ({e}): {}",
            String::from_utf8_lossy(&response.body)
        )
    })
}

fn request_id(response: &Response) -> String {
    response
        .header("x-amzn-requestid")
        .expect("X-Amzn-RequestId")
        .to_owned()
}

/// A successful invocation: 200, `$LATEST`, no function error.
fn assert_success(response: &Response) -> Value {
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(response.header("x-amz-function-error"), None);
    assert_eq!(response.header("content-type"), Some("application/json"));
    json_body(response)
}

/// A function error as Lambda returns it: 200 with `X-Amz-Function-Error: Unhandled`.
fn assert_function_error(response: &Response, error_type: &str) -> Value {
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(response.header("x-amz-executed-version"), Some("$LATEST"));
    let body = json_body(response);
    assert_eq!(body["errorType"], error_type, "{body}");
    body
}

const GREETER_LUA: &str = r#"
local M = {}
function M.handler(event, context)
  log.info("greeting", event.name)
  return {
    greeting = "hello " .. event.name,
    function_name = context.function_name,
    arn = context.invoked_function_arn,
    memory = context.memory_limit_in_mb,
    remaining_ok = context:get_remaining_time_in_millis() > 0,
  }
end
return M
"#;

const GREETER_RHAI: &str = r#"
fn handler(event, context) {
    log::info("greeting", event.name);
    #{
        greeting: "hello " + event.name,
        function_name: context.function_name,
        arn: context.invoked_function_arn,
        memory: context.memory_limit_in_mb,
        remaining_ok: context.get_remaining_time_in_millis() > 0,
    }
}
"#;

fn check_greeter(serve: &Serve) {
    let response = serve.invoke(r#"{"name": "Ann"}"#);
    let body = assert_success(&response);
    assert_eq!(
        body,
        json!({
            "greeting": "hello Ann",
            "function_name": "lure-local",
            "arn": "arn:aws:lambda:us-east-1:000000000000:function:function",
            "memory": 256,
            "remaining_ok": true,
        })
    );
    let id = request_id(&response);
    let report = serve.report(&id);
    for part in [
        "\tDuration: ",
        "\tBilled Duration: ",
        "\tMemory Size: 256 MB",
        "\tMax Memory Used: ",
        "\tInit Duration: ",
    ] {
        assert!(report.contains(part), "{part:?} missing from {report:?}");
    }
    let out = serve.output();
    let start = out
        .find(&format!("START RequestId: {id} Version: $LATEST\n"))
        .expect("START line");
    let log = out
        .find(&format!("\t{id}\tINFO\tgreeting\tAnn"))
        .expect("log line");
    let end = out
        .find(&format!("END RequestId: {id}\n"))
        .expect("END line");
    let report = out.find(&format!("REPORT RequestId: {id}\t")).unwrap();
    assert!(start < log && log < end && end < report, "{out}");

    // Warm: same environment, no init.
    let response = serve.invoke(r#"{"name": "Bob"}"#);
    assert_eq!(assert_success(&response)["greeting"], "hello Bob");
    let report = serve.report(&request_id(&response));
    assert!(!report.contains("Init Duration"), "{report}");
}

#[test]
fn lua_handler_answers_through_http() {
    let s = scratch("serve_lua", &[("app.lua", GREETER_LUA)]);
    check_greeter(&Serve::start(s, "app.handler", &["--memory", "256"]));
}

#[test]
fn rhai_handler_answers_through_http() {
    let s = scratch("serve_rhai", &[("app.rhai", GREETER_RHAI)]);
    check_greeter(&Serve::start(s, "app.handler", &["--memory", "256"]));
}

#[test]
fn function_error_has_lambdas_headers() {
    let script = r#"
local M = {}
function M.handler(event)
  error({errorType = "OrderNotFound", errorMessage = "order " .. event.order .. " not found"})
end
return M
"#;
    let serve = Serve::start(
        scratch("serve_error", &[("app.lua", script)]),
        "app.handler",
        &[],
    );
    let response = serve.invoke(r#"{"order": 42}"#);
    let body = assert_function_error(&response, "OrderNotFound");
    assert_eq!(body["errorMessage"], "order 42 not found");
    // The error is logged too, inside the invocation.
    serve.report(&request_id(&response));
    assert!(
        serve.output().contains("Invoke Error"),
        "{}",
        serve.output()
    );
}

#[test]
fn edited_script_runs_new_code_after_a_fresh_init() {
    let version = |n: u32| {
        format!("local M = {{}}\nfunction M.handler() return {{version = {n}}} end\nreturn M\n")
    };
    let serve = Serve::start(
        scratch("serve_edit", &[("app.lua", &version(1))]),
        "app.handler",
        &[],
    );
    let first = serve.invoke("{}");
    assert_eq!(assert_success(&first)["version"], 1);
    assert!(serve.report(&request_id(&first)).contains("Init Duration"));

    // A different size, so the change shows whatever the file system's clock.
    std::fs::write(serve.task_root().join("app.lua"), version(22)).unwrap();
    let second = serve.invoke("{}");
    assert_eq!(assert_success(&second)["version"], 22);
    let report = serve.report(&request_id(&second));
    assert!(report.contains("Init Duration"), "{report}");
    assert!(serve.output().contains("files under the task root changed"));

    // Nothing changed since: the same warm environment.
    let third = serve.invoke("{}");
    assert_eq!(assert_success(&third)["version"], 22);
    let report = serve.report(&request_id(&third));
    assert!(!report.contains("Init Duration"), "{report}");

    // A new module file counts as a change too.
    std::fs::write(serve.task_root().join("util.lua"), "return {}").unwrap();
    let fourth = serve.invoke("{}");
    assert_success(&fourth);
    assert!(serve.report(&request_id(&fourth)).contains("Init Duration"));
}

#[test]
fn init_error_answers_the_invocation_and_a_fix_is_picked_up() {
    let serve = Serve::start(
        scratch("serve_init_error", &[("app.lua", "function main( return")]),
        "app.lua",
        &[],
    );
    let response = serve.invoke("{}");
    assert_function_error(&response, "Runtime.UserCodeSyntaxError");
    let report = serve.report(&request_id(&response));
    assert!(
        report.contains("\tStatus: error\tError Type: Runtime.UserCodeSyntaxError"),
        "{report}"
    );

    std::fs::write(
        serve.task_root().join("app.lua"),
        "function main() return 'fixed' end",
    )
    .unwrap();
    assert_eq!(assert_success(&serve.invoke("{}")), json!("fixed"));
}

#[test]
fn timeout_is_answered_and_the_environment_serves_on() {
    let script = r#"
local calls = 0
function main(event)
  calls = calls + 1
  if event.spin then
    while true do end
  end
  return {calls = calls}
end
"#;
    let serve = Serve::start(
        scratch("serve_timeout", &[("spin.lua", script)]),
        "spin.lua",
        &["--timeout", "1"],
    );
    let response = serve.invoke(r#"{"spin": true}"#);
    let body = assert_function_error(&response, "Runtime.Timeout");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Task timed out after"),
        "{body}"
    );
    // The same process (its state survived) answers the next invocation.
    assert_eq!(assert_success(&serve.invoke("{}")), json!({"calls": 2}));
}

#[test]
fn a_process_that_dies_mid_invocation_is_answered_and_replaced() {
    let script = r#"
function main(event)
  if event.hang then
    while true do end
  end
  return "alive"
end
"#;
    let serve = Serve::start(
        scratch("serve_crash", &[("app.lua", script)]),
        "app.lua",
        &["--timeout", "600"],
    );
    let address = serve.address.clone();
    let hung = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let request = request_bytes("POST", INVOKE_PATH, &[], br#"{"hang": true}"#);
        stream.write_all(&request).unwrap();
        read_response(&mut BufReader::new(stream)).expect("an answer")
    });
    // Once START is out, the invocation belongs to the process: kill it.
    serve.wait_line("START", |l| l.starts_with("START RequestId: "));
    let children = child_pids(serve.child.id());
    assert_eq!(children.len(), 1, "one function process: {children:?}");
    // SAFETY: kill(2) on a process this test's serve started.
    assert_eq!(unsafe { libc::kill(children[0], libc::SIGKILL) }, 0);

    let response = hung.join().unwrap();
    let body = assert_function_error(&response, "Runtime.ExitError");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Runtime exited"),
        "{body}"
    );
    let next = serve.invoke("{}");
    assert_eq!(assert_success(&next), json!("alive"));
    assert!(serve.report(&request_id(&next)).contains("Init Duration"));
}

/// The processes whose parent is `pid`.
fn child_pids(pid: u32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            // `pid (comm) state ppid …`; comm may hold spaces, so split after `)`.
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Killing serve (SIGKILL: no chance to clean up) takes its function's process
/// with it, as an environment goes with its sandbox.
#[test]
fn the_function_process_dies_with_serve() {
    let mut serve = Serve::start(
        scratch(
            "serve_killed",
            &[("app.lua", "function main() return 1 end")],
        ),
        "app.lua",
        &[],
    );
    assert_eq!(assert_success(&serve.invoke("{}")), json!(1));
    let children = child_pids(serve.child.id());
    assert_eq!(children.len(), 1, "one function process");
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    let end = Instant::now() + WAIT;
    while std::path::Path::new(&format!("/proc/{}/stat", children[0])).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", children[0])).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
    {
        assert!(
            Instant::now() < end,
            "the function's process outlived serve"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

const COUNTER_LUA: &str = r#"
local count = 0
function handler(event)
  count = count + 1
  print("serving", event.i, count)
  return {i = event.i, count = count}
end
return {handler = handler}
"#;

#[test]
fn concurrent_invocations_are_all_served_once_one_at_a_time() {
    const CLIENTS: usize = 20;
    let serve = Arc::new(Serve::start(
        scratch("serve_concurrent", &[("counter.lua", COUNTER_LUA)]),
        "counter.handler",
        &[],
    ));
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (serve, barrier) = (Arc::clone(&serve), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let request = request_bytes(
                    "POST",
                    INVOKE_PATH,
                    &[],
                    format!(r#"{{"i":{i}}}"#).as_bytes(),
                );
                let mut stream = serve.connect();
                barrier.wait();
                stream.write_all(&request).unwrap();
                read_response(&mut BufReader::new(stream)).expect("an answer")
            })
        })
        .collect();
    let mut counts = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let response = client.join().unwrap();
        let body = assert_success(&response);
        assert_eq!(body["i"], i, "{body}");
        counts.push(body["count"].as_u64().unwrap());
        // Serve writes an invocation's log before answering it, but the test reads
        // serve's stderr on its own thread: wait until it has the REPORT line.
        serve.report(&request_id(&response));
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=CLIENTS as u64).collect::<Vec<_>>());

    // serve's view: START, the log line, END, REPORT, one invocation after the other.
    let out = serve.output();
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("START ") || l.starts_with("END ") || l.contains("\tserving\t"))
        .collect();
    assert_eq!(lines.len(), 3 * CLIENTS, "{out}");
    for (n, triple) in lines.chunks(3).enumerate() {
        let id = triple[0]
            .strip_prefix("START RequestId: ")
            .and_then(|rest| rest.strip_suffix(" Version: $LATEST"))
            .unwrap_or_else(|| panic!("not a START line: {:?}\n{out}", triple[0]));
        assert!(triple[1].ends_with(&format!("\t{}", n + 1)), "{out}");
        assert_eq!(triple[2], format!("END RequestId: {id}"), "{out}");
    }
}

#[test]
fn pipelined_invocations_are_answered_in_arrival_order() {
    const REQUESTS: usize = 10;
    let serve = Serve::start(
        scratch("serve_pipelined", &[("counter.lua", COUNTER_LUA)]),
        "counter.handler",
        &[],
    );
    let mut stream = serve.connect();
    let all: Vec<u8> = (0..REQUESTS)
        .flat_map(|i| {
            request_bytes(
                "POST",
                INVOKE_PATH,
                &[],
                format!(r#"{{"i":{i}}}"#).as_bytes(),
            )
        })
        .collect();
    stream.write_all(&all).unwrap();
    let mut reader = BufReader::new(stream);
    for i in 0..REQUESTS {
        let body = assert_success(&read_response(&mut reader).expect("an answer"));
        assert_eq!(body, json!({"i": i, "count": i + 1}));
    }
}

#[test]
fn event_invocations_are_queued_and_dry_runs_do_not_run() {
    let serve = Serve::start(
        scratch("serve_event", &[("counter.lua", COUNTER_LUA)]),
        "counter.handler",
        &[],
    );
    let dry = serve.invoke_with(&[("X-Amz-Invocation-Type", "DryRun")], r#"{"i":"dry"}"#);
    assert_eq!(dry.status, 204);
    assert!(dry.body.is_empty());

    let event = serve.invoke_with(&[("X-Amz-Invocation-Type", "Event")], r#"{"i":"event"}"#);
    assert_eq!(event.status, 202);
    assert!(event.body.is_empty());
    let event_id = request_id(&event);

    // Queued behind the event: the counter shows the event ran first, the dry run never.
    let sync = serve.invoke_with(
        &[("X-Amz-Invocation-Type", "RequestResponse")],
        r#"{"i":"sync"}"#,
    );
    assert_eq!(assert_success(&sync), json!({"i": "sync", "count": 2}));
    serve.report(&event_id);
    assert!(!serve.output().contains("\tdry\t"));

    let bad = serve.invoke_with(&[("X-Amz-Invocation-Type", "Sometimes")], "{}");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.header("x-amzn-errortype"), Some("ValidationException"));
}

#[test]
fn log_tail_and_client_context() {
    let script = r#"
function main(event, context)
  print("hello from the handler")
  for i = 1, (event.lines or 0) do
    print(string.rep("x", 100))
  end
  return context.client_context
end
"#;
    let serve = Serve::start(
        scratch("serve_tail", &[("app.lua", script)]),
        "app.lua",
        &[],
    );

    let plain = serve.invoke("{}");
    assert_eq!(assert_success(&plain), Value::Null);
    assert_eq!(plain.header("x-amz-log-result"), None);

    let context = base64_encode(br#"{"custom": {"k": "v"}, "env": {"locale": "en"}}"#);
    let tailed = serve.invoke_with(
        &[
            ("X-Amz-Log-Type", "Tail"),
            ("X-Amz-Client-Context", &context),
        ],
        "{}",
    );
    assert_eq!(
        assert_success(&tailed),
        json!({"custom": {"k": "v"}, "env": {"locale": "en"}})
    );
    let id = request_id(&tailed);
    let tail = base64_decode(tailed.header("x-amz-log-result").expect("X-Amz-Log-Result"));
    let tail = String::from_utf8(tail).unwrap();
    assert!(
        tail.starts_with(&format!("START RequestId: {id} Version: $LATEST\n")),
        "{tail}"
    );
    assert!(
        tail.contains(&format!("\t{id}\tINFO\thello from the handler\n")),
        "{tail}"
    );
    assert!(
        tail.contains(&format!("\nEND RequestId: {id}\nREPORT RequestId: {id}\t")),
        "{tail}"
    );
    assert!(tail.ends_with(" MB\n"), "{tail}");

    // Only the last 4 KB, as Lambda sends.
    let long = serve.invoke_with(&[("X-Amz-Log-Type", "Tail")], r#"{"lines": 100}"#);
    let tail = base64_decode(long.header("x-amz-log-result").unwrap());
    assert_eq!(tail.len(), 4096);
    assert!(String::from_utf8_lossy(&tail).contains("\nREPORT RequestId: "));

    let bad = serve.invoke_with(&[("X-Amz-Client-Context", "not base64!")], "{}");
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.header("x-amzn-errortype"),
        Some("InvalidRequestContentException")
    );
}

const URL_LUA: &str = r#"
local M = {}
function M.handler(event, context)
  local mode = (event.queryStringParameters or {}).mode
  if mode == "plain" then return { path = event.rawPath, n = 1 } end
  if mode == "fail" then error("broken") end
  if mode == "stream" then
    local out = context:stream({
      status_code = 201,
      headers = { ["x-streamed"] = "yes" },
      cookies = { "s=1" },
      content_type = "text/plain",
    })
    out:write("part one, ")
    return "part two"
  end
  return {
    statusCode = 207,
    headers = { ["x-method"] = event.requestContext.http.method, ["content-type"] = "application/json" },
    cookies = { "a=1", "b=2; Path=/" },
    body = base64.encode(json.encode(event)),
    isBase64Encoded = true,
  }
end
return M
"#;

const URL_RHAI: &str = r#"
fn handler(event, context) {
    let mode = if event.queryStringParameters == () { () } else { event.queryStringParameters.mode };
    if mode == "plain" { return #{ path: event.rawPath, n: 1 }; }
    if mode == "fail" { throw "broken"; }
    if mode == "stream" {
        let out = context.stream(#{
            status_code: 201,
            headers: #{ "x-streamed": "yes" },
            cookies: ["s=1"],
            content_type: "text/plain",
        });
        out.write("part one, ");
        return "part two";
    }
    #{
        statusCode: 207,
        headers: #{ "x-method": event.requestContext.http.method, "content-type": "application/json" },
        cookies: ["a=1", "b=2; Path=/"],
        body: base64::encode(json::encode(event)),
        isBase64Encoded: true,
    }
}
"#;

/// Every header named `name` of `response`.
fn headers_named<'a>(response: &'a Response, name: &str) -> Vec<&'a str> {
    response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Function URL requests (SPEC 10): other paths become payload-2.0 events, and
/// the answers map back as Lambda maps them, a streamed one streamed.
fn check_function_urls(name: &str, file: &str, script: &str) {
    let serve = Serve::start(scratch(name, &[(file, script)]), "app.handler", &[]);
    // The event: path, query (repeated keys joined), headers, cookies, context.
    let response = serve.request(
        "GET",
        "/orders/7?a=1&a=2&b=x%20y",
        &[
            ("Cookie", "s=1; t=2"),
            ("X-Multi", "one"),
            ("X-Multi", "two"),
            ("User-Agent", "curl/8.5"),
        ],
        "",
    );
    assert_eq!(
        response.status,
        207,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("x-method"), Some("GET"));
    assert_eq!(
        headers_named(&response, "set-cookie"),
        ["a=1", "b=2; Path=/"]
    );
    let event = json_body(&response);
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/orders/7");
    assert_eq!(event["rawQueryString"], "a=1&a=2&b=x%20y");
    assert_eq!(
        event["queryStringParameters"],
        json!({ "a": "1,2", "b": "x y" })
    );
    assert_eq!(event["cookies"], json!(["s=1", "t=2"]));
    assert_eq!(event["headers"]["x-multi"], "one,two");
    assert_eq!(event["headers"]["host"], "localhost");
    assert!(event["headers"].get("cookie").is_none(), "{event}");
    assert_eq!(event["requestContext"]["http"]["userAgent"], "curl/8.5");
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(
        event["requestContext"]["requestId"],
        response.header("x-amzn-requestid").unwrap()
    );

    // Bodies: text as text, anything else base64.
    let bytes = [0u8, 1, 2, 255];
    let response = serve.request_raw(
        "POST",
        "/upload",
        &[("Content-Type", "application/octet-stream")],
        &bytes,
    );
    let event = json_body(&response);
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(base64_decode(event["body"].as_str().unwrap()), bytes);
    let response = serve.request(
        "PUT",
        "/items",
        &[("Content-Type", "application/json; charset=utf-8")],
        r#"{"n":1}"#,
    );
    let event = json_body(&response);
    assert_eq!(event["body"], r#"{"n":1}"#);
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["requestContext"]["http"]["method"], "PUT");

    // Any other result is JSON; a function error is Lambda's 502.
    let response = serve.request("GET", "/x?mode=plain", &[], "");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(json_body(&response), json!({ "path": "/x", "n": 1 }));
    let response = serve.request("GET", "/x?mode=fail", &[], "");
    assert_eq!(response.status, 502);
    assert_eq!(
        json_body(&response),
        json!({ "Message": "Internal Server Error" })
    );

    // A streaming handler: the prelude is the status and headers, then the body.
    let response = serve.request("GET", "/x?mode=stream", &[], "");
    assert_eq!(response.status, 201);
    assert_eq!(response.header("x-streamed"), Some("yes"));
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(headers_named(&response, "set-cookie"), ["s=1"]);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.body, b"part one, part two");
}

#[test]
fn function_url_requests_map_both_ways_lua() {
    check_function_urls("serve_url_lua", "app.lua", URL_LUA);
}

#[test]
fn function_url_requests_map_both_ways_rhai() {
    check_function_urls("serve_url_rhai", "app.rhai", URL_RHAI);
}

/// A web page cannot use serve: a foreign `Host` (DNS rebinding) is refused on
/// every path, an `Origin` on the Invoke APIs; curl and the SDKs are answered.
#[test]
fn foreign_hosts_and_web_origins_are_refused() {
    let serve = Serve::start(
        scratch(
            "serve_guards",
            &[("app.lua", "function main() return 1 end")],
        ),
        "app.lua",
        &[],
    );
    let stream_path = "/2021-11-15/functions/f/response-streaming-invocations";
    for (path, headers) in [
        (INVOKE_PATH, vec![("Origin", "https://evil.example")]),
        (stream_path, vec![("Origin", "null")]),
        (INVOKE_PATH, vec![("Host", "evil.example:9000")]),
        ("/any/url/path", vec![("Host", "rebound.example")]),
    ] {
        let response = serve.request("POST", path, &headers, "{}");
        assert_eq!(response.status, 403, "{path} {headers:?}");
        assert_eq!(
            response.header("x-amzn-errortype"),
            Some("AccessDeniedException")
        );
        assert!(json_body(&response)["message"].is_string());
    }
    assert!(
        !serve.output().contains("START RequestId"),
        "a refused request ran the function:\n{}",
        serve.output()
    );
    // Loopback names and addresses are this machine; any function name is this one.
    let port = serve.address.rsplit(':').next().unwrap().to_owned();
    for host in ["localhost", "127.0.0.1", "api.localhost", "[::1]"] {
        let host = format!("{host}:{port}");
        let response = serve.request(
            "POST",
            "/2015-03-31/functions/other-name/invocations",
            &[("Host", host.as_str())],
            "",
        );
        assert_eq!(assert_success(&response), json!(1), "{host}");
    }
}

const CONSOLE_LUA: &str = r#"local M = {}
function M.handler(event, context)
  return { greeting = "hello " .. (event.name or "world") }
end
return M
"#;

/// The console in Debian's Chromium, driven by Playwright (tests/console_browser.py):
/// open it, edit and save the script, save and pick a test event and a template,
/// invoke, see the response, the duration, the memory and the log from START to
/// REPORT; no errors in the browser's console.
#[test]
fn console_works_in_a_real_browser() {
    let serve = Serve::start(
        scratch("serve_console_browser", &[("app.lua", CONSOLE_LUA)]),
        "app.handler",
        &[],
    );
    let python = support::python::venv("playwright-venv", &["playwright==1.65.2"]);
    let chromium = std::env::var("LURE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let output = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console_browser.py"))
        .arg(format!("http://{}", serve.address))
        .arg(serve.task_root())
        .arg(&chromium)
        .output()
        .expect("run tests/console_browser.py");
    assert!(
        output.status.success(),
        "console_browser.py failed ({})\nstdout:\n{}\nstderr:\n{}\nserve's output:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        serve.output()
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("console checks passed"));
}

/// The console's guards (SPEC 10): a foreign `Host` (or another port) is refused
/// on every console request, a foreign `Origin` on every write and invoke, and
/// paths out of the task root or files of other types on every write; a refused
/// request changes nothing. The console's own origin is served.
#[test]
fn console_refuses_foreign_hosts_origins_and_paths() {
    let serve = Serve::start(
        scratch("serve_console_guards", &[("app.lua", CONSOLE_LUA)]),
        "app.handler",
        &[],
    );
    let port = serve.address.rsplit(':').next().unwrap().to_owned();
    let own_host = format!("localhost:{port}");
    let own_origin = format!("http://{own_host}");
    let root = serve.task_root();
    std::os::unix::fs::symlink(std::env::temp_dir(), root.join("out")).unwrap();

    let redirect = serve.request("GET", "/_lure", &[("Host", own_host.as_str())], "");
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location"), Some("/_lure/"));
    let page = serve.request("GET", "/_lure/", &[("Host", own_host.as_str())], "");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-security-policy")
            .is_some_and(|p| p.contains("default-src 'self'"))
    );

    for host in ["evil.example", "evil.example:1234", "localhost:1"] {
        let response = serve.request("GET", "/_lure/api/state", &[("Host", host)], "");
        assert_eq!(response.status, 403, "{host}");
    }
    let refused = [
        // (path, origin): another site's write, then paths the console never writes.
        ("/_lure/api/files/app.lua", "https://evil.example", 403),
        ("/_lure/api/files/app.lua", "null", 403),
        (
            "/_lure/api/files/..%2Fescaped.lua",
            own_origin.as_str(),
            400,
        ),
        (
            "/_lure/api/files/%2Ftmp%2Fabsolute.lua",
            own_origin.as_str(),
            400,
        ),
        ("/_lure/api/files/notes.txt", own_origin.as_str(), 400),
        (
            "/_lure/api/files/out%2Fthrough-link.lua",
            own_origin.as_str(),
            400,
        ),
        (
            "/_lure/api/files/.lure%2Fhidden.json",
            own_origin.as_str(),
            400,
        ),
        ("/_lure/api/events/..%2F..%2Fapp", own_origin.as_str(), 400),
    ];
    for (path, origin, status) in refused {
        let response = serve.request(
            "PUT",
            path,
            &[("Host", own_host.as_str()), ("Origin", origin)],
            "return 'pwned'",
        );
        assert_eq!(response.status, status, "PUT {path} from {origin}");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("app.lua")).unwrap(),
        CONSOLE_LUA
    );
    for gone in ["../escaped.lua", "notes.txt", "escaped.lua"] {
        assert!(!root.join(gone).exists(), "{gone} was written");
    }
    assert!(!std::env::temp_dir().join("through-link.lua").exists());
    assert!(!Path::new("/tmp/absolute.lua").exists());

    // An invoke from another site runs nothing.
    let response = serve.request(
        "POST",
        "/_lure/api/invoke",
        &[
            ("Host", own_host.as_str()),
            ("Origin", "https://evil.example"),
        ],
        "{}",
    );
    assert_eq!(response.status, 403);
    assert!(
        !serve.output().contains("START RequestId"),
        "{}",
        serve.output()
    );

    // The console's own origin (or none: curl) writes and invokes.
    let response = serve.request(
        "PUT",
        "/_lure/api/files/lib%2Futil.lua",
        &[("Host", own_host.as_str()), ("Origin", own_origin.as_str())],
        "return {}",
    );
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("lib/util.lua")).unwrap(),
        "return {}"
    );
    let response = serve.request(
        "POST",
        "/_lure/api/invoke",
        &[("Host", own_host.as_str())],
        r#"{"name": "Cy"}"#,
    );
    let result = json_body(&response);
    assert_eq!(result["failed"], false, "{result}");
    assert_eq!(
        json!(serde_json::from_str::<Value>(result["body"].as_str().unwrap()).unwrap()),
        json!({ "greeting": "hello Cy" })
    );
    assert!(
        result["log"].as_str().unwrap().contains("REPORT RequestId"),
        "{result}"
    );
}

/// Without `--concurrency` serve hands out one invocation at a time: a function
/// configured for Managed Instances (`AWS_LAMBDA_MAX_CONCURRENCY` in serve's
/// environment) runs with one worker under it, and serves invocation after
/// invocation.
#[test]
fn max_concurrency_in_serves_environment_runs_one_worker() {
    let serve = Serve::start_with_env(
        scratch("serve_workers", &[("app.lua", GREETER_LUA)]),
        "app.handler",
        &[],
        &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")],
    );
    for name in ["Ann", "Bob", "Cy"] {
        let response = serve.invoke(&format!(r#"{{"name": "{name}"}}"#));
        assert_eq!(
            assert_success(&response)["greeting"],
            format!("hello {name}")
        );
    }
}

/// `--concurrency 3`: three invocations at once, each in a worker of its own (all
/// three held at a gate until all are inside; no timing), then more, in turn.
#[test]
fn concurrency_runs_invocations_at_once_in_workers() {
    const SCRIPT: &str = r#"
local worker = uuid.v4() -- once per worker
local M = {}
function M.handler(event, context)
  if event.gate then http.get(event.gate) end
  return { worker = worker, id = context.aws_request_id }
end
return M
"#;
    let gate = support::web::WebServer::http();
    let serve = Serve::start(
        scratch("serve_concurrency", &[("app.lua", SCRIPT)]),
        "app.handler",
        &["--concurrency", "3"],
    );
    assert!(serve.output().contains("3 workers"), "{}", serve.output());
    let event = json!({ "gate": gate.url("/gate/1") }).to_string();
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| assert_success(&serve.invoke(&event))))
            .collect();
        let end = Instant::now() + WAIT;
        while gate.requests().len() < 3 {
            assert!(
                Instant::now() < end,
                "three invocations never were in flight at once"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        gate.release();
        callers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let workers: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|a| a["worker"].as_str().unwrap())
        .collect();
    assert_eq!(workers.len(), 3, "{answers:?}");
    for _ in 0..4 {
        let answer = assert_success(&serve.invoke("{}"));
        assert!(workers.contains(answer["worker"].as_str().unwrap()));
    }
}

/// boto3 against `lure serve`, run by tests/serve_sdk.py in a virtualenv this test
/// provisions (once) under the target directory.
#[test]
fn aws_python_sdk_drives_serve() {
    let script = r#"
local M = {}
function M.handler(event, context)
  if event.fail then
    error({errorType = "OrderNotFound", errorMessage = "order 42 not found"})
  end
  print("hello from boto3's invocation")
  local custom = context.client_context and context.client_context.custom
  return {greeting = "hello " .. (event.name or "world"), custom = custom}
end
return M
"#;
    let serve = Serve::start(
        scratch("serve_sdk", &[("app.lua", script)]),
        "app.handler",
        &[],
    );
    let out = run_sdk_script("serve_sdk.py", &[&serve]);
    assert!(out.contains("boto3 checks passed"), "{out}");
}

const STREAMER_LUA: &str = r#"
local M = {}
function M.handler(event, context)
  if event.op == "buffered" then return { ok = true } end
  if event.op == "fail-early" then
    error({ errorType = "NotReady", errorMessage = "before streaming" })
  end
  local out = context:stream({ content_type = "text/csv" })
  if event.op == "big" then -- past what Invoke returns
    local mib = string.rep("x", 1 << 20)
    for _ = 1, 7 do out:write(mib) end
    return nil
  end
  out:write("id,name\n")
  if event.gate then http.get(event.gate) end -- held until boto3 read the first row
  out:write("1,one\n")
  if event.op == "error" then
    error({ errorType = "Boom", errorMessage = "after streaming" })
  end
  print("streamed two rows")
  return "done\n"
end
return M
"#;

const STREAMER_RHAI: &str = r#"
fn handler(event, context) {
    if event.op == "buffered" { return #{ ok: true }; }
    if event.op == "fail-early" {
        throw #{ errorType: "NotReady", errorMessage: "before streaming" };
    }
    let out = context.stream(#{ content_type: "text/csv" });
    if event.op == "big" { // past what Invoke returns
        let mib = "x";
        for i in 0..20 { mib += mib; }
        for i in 0..7 { out.write(mib); }
        return ();
    }
    out.write("id,name\n");
    if event.gate != () { http::get(event.gate); } // held until boto3 read the first row
    out.write("1,one\n");
    if event.op == "error" {
        throw #{ errorType: "Boom", errorMessage: "after streaming" };
    }
    print("streamed two rows");
    "done\n"
}
"#;

/// boto3's `invoke_with_response_stream` against streaming handlers in both
/// languages (chunks as written, completion, error completions, the log tail, a
/// handler that does not stream, an init error, DryRun) and `invoke` of the same
/// handlers (the whole body, or Lambda's error past 6 MB), run by
/// tests/serve_stream_sdk.py.
#[test]
fn aws_python_sdk_reads_streamed_answers() {
    let serve = |name: &str, file: &str, script: &str| {
        Serve::start(scratch(name, &[(file, script)]), "app.handler", &[])
    };
    let broken = serve("serve_stream_broken", "app.lua", "local M = {\n");
    let lua = serve("serve_stream_lua", "app.lua", STREAMER_LUA);
    let rhai = serve("serve_stream_rhai", "app.rhai", STREAMER_RHAI);
    let out = run_sdk_script("serve_stream_sdk.py", &[&broken, &lua, &rhai]);
    assert!(out.contains("boto3 streaming checks passed"), "{out}");
}

/// Runs `tests/SCRIPT` with the python of a boto3 virtualenv (made once, under the
/// target directory) and the URLs of `serves`; its stdout, once it succeeded.
fn run_sdk_script(script: &str, serves: &[&Serve]) -> String {
    let python = support::python::venv("boto3-venv", &["boto3"]);
    let output = Command::new(&python)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .args(
            serves
                .iter()
                .map(|serve| format!("http://{}", serve.address)),
        )
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Nothing written into tests/ (the shared lambda_client.py's bytecode).
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("run tests/{script}: {e}"));
    let outputs: Vec<String> = serves.iter().map(|serve| serve.output()).collect();
    assert!(
        output.status.success(),
        "{script} failed ({})\nstdout:\n{}\nstderr:\n{}\nserve's output:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        outputs.join("\n----\n")
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (0..3).fold(0u32, |n, i| n << 8 | u32::from(*chunk.get(i).unwrap_or(&0)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = BASE64.iter().position(|&b| b == c).expect("base64") as u32;
        bits = bits << 6 | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// A Rhai environment that holds memory it cannot free ends itself after its
/// answer (issue 17): serve notices, and the next invocation gets a fresh one.
#[test]
fn an_environment_that_ends_itself_is_replaced_rhai() {
    let script = r#"
let count = 0;
fn main(event, context) {
    count += 1;
    // Closures that capture each other: 8 MB Rhai never frees.
    let s = "y";
    for i in 0..23 { s += s; }
    let a = #{ data: s + count };
    let f = || a.data.len();
    a.f = f;
    count
}
"#;
    let serve = Serve::start(
        scratch("serve_retire", &[("app.rhai", script)]),
        "app.rhai",
        &["--memory", "128"],
    );
    let mut replaced = false;
    for i in 1..=20 {
        let response = serve.invoke("{}");
        let count = assert_success(&response);
        if i > 1 && count == json!(1) {
            assert!(
                serve
                    .report(&request_id(&response))
                    .contains("Init Duration")
            );
            replaced = true;
            break;
        }
        assert_eq!(count, json!(i), "the same environment until it ends");
    }
    assert!(replaced, "{}", serve.output());
    let output = serve.output();
    assert!(
        output.contains("lure: ending this environment: the Rhai engine holds"),
        "{output}"
    );
}
