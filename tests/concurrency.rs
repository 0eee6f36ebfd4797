//! Lambda Managed Instances (SPEC 13): with `AWS_LAMBDA_MAX_CONCURRENCY` = N, lure
//! runs N workers, each with its own engine, connection and loop. Against the fake
//! Runtime API, which hands out an invocation to each waiting `/next`: N in flight
//! at once (held at a gate until all N are inside, no timing), each answered once
//! with its invocation id echoed, module state per worker, the tenant and trace ids
//! in the context and no `_X_AMZN_TRACE_ID`, log records with the request id of the
//! invocation that wrote them, one worker's error, timeout or memory blow-up not
//! touching the others, and an init error posted once. Both languages.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::web::WebServer;
use support::*;

const WORKER_LUA: &str = r#"
local worker = uuid.v4() -- top-level code runs once per worker
local count = 0

function main(event, context)
  count = count + 1
  log.info("handling " .. context.aws_request_id)
  if event.gate then http.get(event.gate) end -- held until every worker is inside
  if event.op == "error" then
    error({ errorType = "Boom", errorMessage = "one worker's error" })
  elseif event.op == "spin" then
    while true do end
  elseif event.op == "hog" then
    local hoard = {}
    while true do hoard[#hoard + 1] = string.rep("x", 1 << 16) .. #hoard end
  end
  return {
    worker = worker,
    count = count,
    id = context.aws_request_id,
    tenant = context.tenant_id,
    trace = context.xray_trace_id,
    trace_variable = os.getenv("_X_AMZN_TRACE_ID"),
  }
end
"#;

const WORKER_RHAI: &str = r#"
let worker = uuid::v4(); // top-level code runs once per worker
let count = 0;

fn main(event, context) {
    count += 1;
    log::info("handling " + context.aws_request_id);
    if event.gate != () { http::get(event.gate); } // held until every worker is inside
    if event.op == "error" {
        throw #{ errorType: "Boom", errorMessage: "one worker's error" };
    }
    if event.op == "spin" { loop {} }
    if event.op == "hog" {
        let hoard = [];
        loop {
            let piece = "x";
            piece.pad(65536, 'x');
            hoard.push(piece + hoard.len());
        }
    }
    #{
        worker: worker,
        count: count,
        id: context.aws_request_id,
        tenant: context.tenant_id,
        trace: context.xray_trace_id,
        trace_variable: os::getenv("_X_AMZN_TRACE_ID"),
    }
}
"#;

/// lure running the worker handler of `lang` with `workers` workers.
fn started(name: &str, lang: Lang, workers: usize) -> Scenario {
    let mut s = Scenario::new(&format!("{name}_{lang:?}").to_lowercase());
    let file = lang.file("worker");
    s.write(
        &file,
        match lang {
            Lang::Lua => WORKER_LUA,
            Lang::Rhai => WORKER_RHAI,
        },
    );
    let workers = workers.to_string();
    s.start_with_env(
        &file,
        &[
            ("AWS_LAMBDA_MAX_CONCURRENCY", workers.as_str()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ],
    );
    s
}

/// Waits (up to [`WAIT`]) until `done` holds; only a broken run waits that long.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The successful answer to `id`, as JSON.
fn success(s: &mut Scenario, id: &str) -> Value {
    let post = s.wait_answer(id);
    assert_eq!(post.kind, PostKind::Response, "{id}: {}", post.text());
    assert_eq!(s.api.log().accepted_answers(id), 1, "{id} answered once");
    post.json()
}

fn check_workers_at_once(lang: Lang) {
    const WORKERS: usize = 4;
    let gate = WebServer::http();
    let mut s = started("workers_at_once", lang, WORKERS);
    let event = json!({ "gate": gate.url("/gate/1") }).to_string();
    for i in 0..WORKERS {
        s.push(
            Invocation::new(&format!("at-once-{i}"), event.clone())
                .header("Lambda-Runtime-Invocation-Id", format!("inv-{i}"))
                .header("Lambda-Runtime-Aws-Tenant-Id", format!("tenant-{i}"))
                .trace_id(&format!("Root=1-00000000-00000000000000000000000{i}")),
        );
    }
    // Every worker holds an invocation at the gate: N in flight at once.
    wait_until("every worker at the gate", || {
        gate.requests().len() == WORKERS
    });
    assert!(
        s.api.posts().is_empty(),
        "{lang:?}: an answer before the gate opened"
    );
    gate.release();

    let mut workers = BTreeMap::new();
    for i in 0..WORKERS {
        let id = format!("at-once-{i}");
        let post = s.wait_answer(&id);
        assert_eq!(
            post.header("lambda-runtime-invocation-id"),
            Some(format!("inv-{i}").as_str()),
            "{lang:?}: the invocation id comes back with its own answer"
        );
        let answer = success(&mut s, &id);
        assert_eq!(answer["id"], id.as_str(), "{lang:?}");
        assert_eq!(answer["tenant"], format!("tenant-{i}"), "{lang:?}");
        assert_eq!(
            answer["trace"],
            format!("Root=1-00000000-00000000000000000000000{i}"),
            "{lang:?}"
        );
        assert!(
            answer["trace_variable"].is_null(),
            "{lang:?}: no _X_AMZN_TRACE_ID with workers: {answer}"
        );
        assert_eq!(answer["count"], 1, "{lang:?}: each worker's first");
        workers.insert(answer["worker"].as_str().unwrap().to_owned(), 1);
    }
    assert_eq!(
        workers.len(),
        WORKERS,
        "{lang:?}: one invocation per worker"
    );

    // More invocations: each worker counts its own, one after another.
    let ids: Vec<String> = (0..3 * WORKERS).map(|i| format!("more-{i}")).collect();
    for id in &ids {
        s.push(Invocation::new(id, "{}"));
    }
    let mut counts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for id in &ids {
        let answer = success(&mut s, id);
        let worker = answer["worker"].as_str().unwrap().to_owned();
        assert!(workers.contains_key(&worker), "{lang:?}: a fifth worker");
        counts
            .entry(worker)
            .or_default()
            .push(answer["count"].as_i64().unwrap());
    }
    for (worker, mut seen) in counts {
        seen.sort_unstable();
        let expected: Vec<i64> = (2..2 + seen.len() as i64).collect();
        assert_eq!(seen, expected, "{lang:?}: worker {worker}'s own count");
    }

    // Each record carries the request id of the invocation that logged it.
    let output = s.output();
    let mut records = 0;
    for line in output.lines().filter(|l| l.contains("\tINFO\thandling ")) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            fields[3].strip_prefix("handling "),
            Some(fields[1]),
            "{lang:?}: {line}"
        );
        records += 1;
    }
    assert_eq!(records, 4 * WORKERS, "{lang:?}:\n{output}");
}

#[test]
fn workers_run_invocations_at_once_each_answered_once_lua() {
    check_workers_at_once(Lang::Lua);
}

#[test]
fn workers_run_invocations_at_once_each_answered_once_rhai() {
    check_workers_at_once(Lang::Rhai);
}

fn check_faults_stay_in_their_worker(lang: Lang) {
    const WORKERS: usize = 4;
    let mut s = started("faults", lang, WORKERS);
    let gate = WebServer::http();
    // A timeout that comes while the other workers answer and serve on.
    s.push(
        Invocation::new("spin", json!({ "op": "spin" }).to_string())
            .deadline_in(Duration::from_secs(2)),
    );
    s.push(Invocation::new(
        "error",
        json!({ "op": "error" }).to_string(),
    ));
    s.push(Invocation::new("hog", json!({ "op": "hog" }).to_string()));
    let error = s.wait_answer("error");
    assert_eq!(error.kind, PostKind::Error);
    assert_eq!(error.json()["errorType"], "Boom", "{lang:?}");
    let hog = s.wait_answer("hog");
    assert_eq!(hog.json()["errorType"], "Runtime.OutOfMemory", "{lang:?}");
    if lang == Lang::Lua {
        // The scripts' memory of a 128 MB function, shared by four workers.
        let message = hog.json()["errorMessage"].as_str().unwrap().to_owned();
        assert!(message.contains("memory limit of 26 MB"), "{message}");
    }
    // The others serve while one still spins: the gate holds one of them.
    s.push(Invocation::new(
        "held",
        json!({ "gate": gate.url("/gate/1") }).to_string(),
    ));
    wait_until("a worker at the gate", || gate.requests().len() == 1);
    for id in ["while-spinning", "while-held"] {
        s.push(Invocation::new(id, "{}"));
        assert_eq!(success(&mut s, id)["id"], id, "{lang:?}");
    }
    gate.release();
    success(&mut s, "held");
    let spin = s.wait_answer("spin");
    assert_eq!(spin.json()["errorType"], "Runtime.Timeout", "{lang:?}");
    // Every worker serves on, the one that timed out included.
    let ids: Vec<String> = (0..2 * WORKERS).map(|i| format!("after-{i}")).collect();
    for id in &ids {
        s.push(Invocation::new(id, "{}"));
    }
    for id in &ids {
        success(&mut s, id);
    }
    for id in ["spin", "error", "hog", "held"] {
        assert_eq!(s.api.log().accepted_answers(id), 1, "{lang:?}: {id}");
    }
}

#[test]
fn one_workers_error_timeout_or_memory_leaves_the_others_alone_lua() {
    check_faults_stay_in_their_worker(Lang::Lua);
}

#[test]
fn one_workers_error_timeout_or_memory_leaves_the_others_alone_rhai() {
    check_faults_stay_in_their_worker(Lang::Rhai);
}

#[test]
fn an_init_error_with_workers_is_posted_once_before_any_next() {
    for (lang, script) in [
        (Lang::Lua, "error('top-level boom')\nfunction main() end\n"),
        (
            Lang::Rhai,
            "throw \"top-level boom\";\nfn main(event, context) { 1 }\n",
        ),
    ] {
        let mut s = Scenario::new(&format!("init_error_workers_{lang:?}").to_lowercase());
        let file = lang.file("broken");
        s.write(&file, script);
        s.start_with_env(&file, &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]);
        let status = s.wait_exit();
        assert!(!status.success(), "{lang:?}: {status}");
        let log = s.api.log();
        let init_errors: Vec<&Post> = log
            .posts
            .iter()
            .filter(|p| p.kind == PostKind::InitError)
            .collect();
        assert_eq!(init_errors.len(), 1, "{lang:?}: {:?}", log.posts);
        assert!(
            init_errors[0].text().contains("top-level boom"),
            "{lang:?}: {}",
            init_errors[0].text()
        );
        assert_eq!(log.posts.len(), 1, "{lang:?}");
        assert_eq!(log.next_requests, 0, "{lang:?}: no worker asked for work");
    }
}
