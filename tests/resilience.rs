//! Resilience (SPEC §3 and §6, issue 4): whatever a script does and whatever the
//! Runtime API does, every invocation is answered exactly once, and the warm process
//! goes on serving. Each case is followed by a normal invocation whose counter, kept
//! in script state, proves the same process (and its state) answered it.
//!
//! Oversize responses are covered in `runtime_api.rs`.

mod support;

use std::thread::sleep;
use std::time::Duration;

use serde_json::Value;
use support::*;

const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";

/// The handler every test uses: `event.mode` picks the misbehaviour; the default
/// answers `{count, kb}`, the number of calls so far and (Lua) the state's size.
const COUNTER_LUA: &str = r#"
count = 0

local function spin() while true do end end

function main(event, context)
  count = count + 1
  local mode = event.mode
  if mode == "loop" then
    spin()
  elseif mode == "pcall" then
    -- Tries hard to swallow the stop: catch it, and loop again.
    while true do
      pcall(spin)
      xpcall(spin, function(e) return e end)
    end
  elseif mode == "coroutine" then
    -- The loop runs inside coroutines; resume catches errors like pcall.
    while true do
      coroutine.resume(coroutine.create(spin))
      pcall(coroutine.wrap(function() while true do coroutine.yield() end end))
    end
  elseif mode == "bomb" then
    local t = {}
    for i = 1, math.huge do t[i] = string.rep("x", 1000) .. i end
  elseif mode == "bomb_in_pcall" then
    local ok, err = pcall(function()
      local t = {}
      for i = 1, math.huge do t[i] = string.rep("y", 1000) .. i end
    end)
    return { caught = tostring(err) }
  elseif mode == "garbage" then
    -- About 120 bytes of garbage per round; answers the state's size on entry.
    local on_entry = collectgarbage("count")
    for i = 1, event.rounds do
      local t = { i, tostring(i) }
    end
    return { count = count, kb = on_entry }
  elseif mode == "exit" then
    os.exit(3)
  -- Code Lua runs with hooks off unless lure sees to it (issue 17).
  elseif mode == "finalizer" then
    setmetatable({}, { __gc = function() spin() end })
    collectgarbage()
  elseif mode == "finalizer_after_answer" then
    -- Collected after the answer: the invocation leaves more garbage than the
    -- live set, so lure collects it once the answer is sent.
    setmetatable({}, { __gc = function() spin() end })
    local garbage = {}
    for i = 1, 2000 do garbage[i] = string.rep("g", 100) .. i end
  elseif mode == "xpcall_handler" then
    xpcall(spin, function(e) spin() end)
  elseif mode == "close_handler" then
    local guard <close> = setmetatable({}, { __close = function() spin() end })
    spin()
  elseif mode == "bytecode" then
    local chunk = string.dump(function() return 1 end)
    local f, err = load(chunk, "dumped", "b")
    local g, err2 = load(chunk)
    return { loaded = f ~= nil or g ~= nil, err = err, err2 = err2 }
  end
  return { count = count, kb = collectgarbage("count") }
end
"#;

const COUNTER_RHAI: &str = r#"
let count = 0;

fn main(event, context) {
    count += 1;
    switch event.mode {
        "loop" => { loop { } }
        // try/catch cannot catch the stop.
        "try" => { loop { try { loop { } } catch (e) { } } }
        "string" => { let s = "x"; loop { s += s; } }
        "array" => { let a = [0]; loop { a += a; } }
        // Rhai does not measure a map grown through `m[key] = value`; lure's
        // heap limit stops it.
        "map" => {
            let s = "";
            s.pad(100000, 'x');
            let m = #{};
            let i = 0;
            loop { m["k" + i] = s + i; i += 1; }
        }
        "map_n" => {
            let s = "";
            s.pad(100000, 'x');
            let m = #{};
            for i in 0..event.n { m["k" + i] = s + i; }
            return event.n;
        }
        "exit" => { exit(42); }
        // A module that imports itself (written by the test): Rhai would recurse
        // until the stack overflows.
        "import_cycle" => { import "lib/cycle" as cycle; cycle::f(); }
        _ => { }
    }
    #{ count: count }
}
"#;

/// The handler's file name, without its extension.
const STEM: &str = "counter";

/// The handler's file and text in `lang`.
fn handler(lang: Lang) -> (String, &'static str) {
    match lang {
        Lang::Lua => (lang.file(STEM), COUNTER_LUA),
        Lang::Rhai => (lang.file(STEM), COUNTER_RHAI),
    }
}

/// A scenario with the counter handler of `lang` written and lure started.
fn counter(name: &str, lang: Lang) -> Scenario {
    counter_with_env(name, lang, &[])
}

fn counter_with_env(name: &str, lang: Lang, env: &[(&str, &str)]) -> Scenario {
    let mut s = written(name, lang);
    s.start_with_env(&lang.file(STEM), env);
    s
}

fn written(name: &str, lang: Lang) -> Scenario {
    let s = Scenario::new(&format!("{name}_{lang:?}"));
    let (file, script) = handler(lang);
    s.write(&file, script);
    s
}

fn event(mode: &str) -> String {
    format!(r#"{{"mode":"{mode}"}}"#)
}

/// A normal invocation: it must be a response, the handler's `count` must be
/// `expected` (state survived), and the invocation answered exactly once.
fn check_normal(s: &mut Scenario, id: &str, expected: i64) -> Value {
    let post = s.answer(Invocation::new(id, event("ok")));
    if post.kind != PostKind::Response {
        s.fail(&format!("{id}: expected a response, got {}", post.text()));
    }
    let body = post.json();
    assert_eq!(body["count"], expected, "{id}: count in {body}");
    assert_eq!(s.api.log().accepted_answers(id), 1, "{id}");
    assert!(
        s.lure().try_status().is_none(),
        "lure is still the same running process"
    );
    body
}

/// An invocation the runtime answers with a `Runtime.*` / `Function.*` error:
/// posted to `/error` once, with the error-type header.
fn check_runtime_error(s: &mut Scenario, invocation: Invocation, error_type: &str) -> Value {
    let id = invocation.request_id.clone();
    let post = s.answer(invocation);
    if post.kind != PostKind::Error {
        s.fail(&format!("{id}: expected {error_type}, got {}", post.text()));
    }
    assert_eq!(post.header(ERROR_TYPE_HEADER), Some(error_type), "{id}");
    let body = post.json();
    assert_eq!(body["errorType"], error_type, "{id}: {body}");
    assert_eq!(s.api.log().accepted_answers(&id), 1, "{id}");
    body
}

// ---------------------------------------------------------------------------
// Deadlines: `Runtime.Timeout` reaches the API before the invocation's deadline.

/// How far ahead the timed-out invocations' deadline is: far enough that lure, which
/// is already waiting on `/next`, gets the invocation long before it.
const TIMEOUT_DISTANCE_MS: u64 = 2000;

fn check_timeout(s: &mut Scenario, id: &str, mode: &str) {
    let deadline = epoch_ms() + TIMEOUT_DISTANCE_MS;
    let invocation = Invocation::new(id, event(mode)).deadline_ms(deadline);
    let body = check_runtime_error(s, invocation, "Runtime.Timeout");
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(message.starts_with("Task timed out after"), "{body}");
    let post = s.wait_answer(id);
    // An upper bound: only a late stop fails it, never a slow machine that is on time.
    assert!(
        post.received_ms < deadline,
        "{id} ({mode}): Runtime.Timeout arrived at {} ms, after the deadline {deadline}",
        post.received_ms
    );
    // And the script did run until close to it: it was not refused at once.
    assert!(
        post.received_ms + TIMEOUT_DISTANCE_MS / 2 >= deadline,
        "{id} ({mode}): stopped {} ms before the deadline",
        deadline - post.received_ms
    );
}

#[test]
fn endless_loops_time_out_before_the_deadline_and_state_survives_lua() {
    let mut s = counter("timeout", Lang::Lua);
    check_normal(&mut s, "warm", 1);
    check_timeout(&mut s, "loop", "loop");
    check_normal(&mut s, "after-loop", 3);
    check_timeout(&mut s, "pcall", "pcall");
    check_normal(&mut s, "after-pcall", 5);
    check_timeout(&mut s, "coroutine", "coroutine");
    check_normal(&mut s, "after-coroutine", 7);
}

/// Script code Lua runs with hooks off unless lure sees to it: a finalizer, an
/// `xpcall` message handler once the stop is raised, a `<close>` handler while the
/// stop unwinds. Each is stopped at the deadline and the process serves on.
#[test]
fn code_lua_runs_without_hooks_is_stopped_at_the_deadline_too() {
    let mut s = counter("no_hooks", Lang::Lua);
    check_normal(&mut s, "warm", 1);
    check_timeout(&mut s, "finalizer", "finalizer");
    check_normal(&mut s, "after-finalizer", 3);
    check_timeout(&mut s, "xpcall", "xpcall_handler");
    check_normal(&mut s, "after-xpcall", 5);
    check_timeout(&mut s, "close", "close_handler");
    check_normal(&mut s, "after-close", 7);
}

/// A finalizer that never ends, run by the collection after the answer: the
/// invocation was answered; the collection is stopped at that invocation's
/// deadline, and the next invocation is served.
#[test]
fn a_finalizer_run_after_the_answer_is_stopped_at_the_deadline() {
    let mut s = counter("finalizer_after", Lang::Lua);
    check_normal(&mut s, "warm", 1);
    let deadline = epoch_ms() + TIMEOUT_DISTANCE_MS;
    let post = s.answer(
        Invocation::new("leaves-a-finalizer", event("finalizer_after_answer"))
            .deadline_ms(deadline),
    );
    assert_eq!(post.kind, PostKind::Response, "{}", post.text());
    // The warning is logged before lure asks for the next invocation.
    check_normal(&mut s, "after", 3);
    assert!(
        s.output()
            .contains("a finalizer was stopped at the deadline"),
        "{}",
        s.output()
    );
}

/// Precompiled chunks can crash the VM: `load` takes text only, whatever mode
/// the script asks for.
#[test]
fn bytecode_is_refused() {
    let mut s = counter("bytecode", Lang::Lua);
    let post = s.answer(Invocation::new("bytecode", event("bytecode")));
    assert_eq!(post.kind, PostKind::Response, "{}", post.text());
    let body = post.json();
    assert_eq!(body["loaded"], false, "{body}");
    assert!(
        body["err"]
            .as_str()
            .unwrap_or_default()
            .contains("attempt to load a binary chunk"),
        "{body}"
    );
    check_normal(&mut s, "after", 2);
}

/// Rhai recursion that does not count call levels: an `import` cycle is refused as
/// a script error at run time and at init; `eval` is disabled (its recursion is
/// not bounded either).
#[test]
fn import_cycles_and_eval_are_script_errors_rhai() {
    let mut s = written("import_cycle", Lang::Rhai);
    s.write(
        "lib/cycle.rhai",
        "import \"lib/cycle\" as again;\nfn f() { 1 }\n",
    );
    s.start(&Lang::Rhai.file(STEM));
    check_normal(&mut s, "warm", 1);
    let post = s.answer(Invocation::new("cycle", event("import_cycle")));
    assert_eq!(post.kind, PostKind::Error, "{}", post.text());
    let body = post.json();
    assert_eq!(body["errorType"], "Error", "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("import cycle: lib/cycle → lib/cycle"),
        "{body}"
    );
    check_normal(&mut s, "after-cycle", 3);

    for (name, script, error_type, says) in [
        (
            "init_cycle",
            "import \"lib/cycle\" as c;\nfn main() { 1 }",
            "Runtime.ImportModuleError",
            "import cycle",
        ),
        (
            "eval",
            "fn main() { let code = \"eval(code)\"; eval(code) }",
            "Runtime.UserCodeSyntaxError",
            "'eval' is disabled",
        ),
    ] {
        let mut s = Scenario::new(name);
        s.write(
            "lib/cycle.rhai",
            "import \"lib/cycle\" as again;\nfn f() { 1 }\n",
        );
        s.write("app.rhai", script);
        s.start("app.rhai");
        s.push(Invocation::new(name, "{}"));
        let status = s.wait_exit();
        assert!(!status.success(), "{name}: an init error ends the process");
        let posts = s.api.posts();
        let init = posts.iter().find(|p| p.kind == PostKind::InitError);
        let body = init
            .unwrap_or_else(|| s.fail(&format!("{name}: no init error")))
            .json();
        assert_eq!(body["errorType"], error_type, "{name}: {body}");
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{name}: {body}"
        );
    }
}

#[test]
fn endless_loops_time_out_before_the_deadline_and_state_survives_rhai() {
    let mut s = counter("timeout", Lang::Rhai);
    check_normal(&mut s, "warm", 1);
    check_timeout(&mut s, "loop", "loop");
    check_normal(&mut s, "after-loop", 3);
    check_timeout(&mut s, "try", "try");
    check_normal(&mut s, "after-try", 5);
}

// ---------------------------------------------------------------------------
// Memory: `Runtime.OutOfMemory`, then the memory is back.

#[test]
fn memory_bomb_is_out_of_memory_and_memory_comes_back_lua() {
    // 128 MB: the Lua state gets 128 - 24 = 104 MB.
    let mut s = counter_with_env(
        "bomb",
        Lang::Lua,
        &[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")],
    );
    let before = check_normal(&mut s, "warm", 1)["kb"].as_f64().unwrap();

    let body = check_runtime_error(
        &mut s,
        Invocation::new("bomb", event("bomb")),
        "Runtime.OutOfMemory",
    );
    assert!(
        body["errorMessage"].as_str().unwrap().contains("104 MB"),
        "names the limit: {body}"
    );
    let after = check_normal(&mut s, "after-bomb", 3)["kb"]
        .as_f64()
        .unwrap();
    assert!(
        after < before + 1024.0,
        "the bomb's garbage was collected: {before} KB before, {after} KB after"
    );

    // A script may catch the failed allocation itself: then it is its own error
    // to handle, and the memory still comes back.
    let post = s.answer(Invocation::new("caught", event("bomb_in_pcall")));
    assert_eq!(post.kind, PostKind::Response, "{}", post.text());
    assert!(post.text().contains("not enough memory"), "{}", post.text());
    let again = check_normal(&mut s, "after-caught", 5)["kb"]
        .as_f64()
        .unwrap();
    assert!(
        again < before + 1024.0,
        "{before} KB before, {again} KB after"
    );
}

#[test]
fn each_invocations_garbage_is_collected_before_the_next_lua() {
    let mut s = counter("garbage", Lang::Lua);
    let live = check_normal(&mut s, "warm", 1)["kb"].as_f64().unwrap();
    // A few megabytes each: less than the credit an invocation gets before the
    // incremental collector starts, so only the collection after each answer
    // gives the memory back.
    for n in 2..=6 {
        let id = format!("garbage-{n}");
        let post = s.answer(Invocation::new(
            &id,
            r#"{"mode":"garbage","rounds":20000}"#.to_owned(),
        ));
        assert_eq!(post.kind, PostKind::Response, "{}", post.text());
        let body = post.json();
        assert_eq!(body["count"], n, "{body}");
        let on_entry = body["kb"].as_f64().unwrap();
        assert!(
            on_entry < live + 512.0,
            "{id} started with {on_entry} KB in use, {live} KB after the first invocation"
        );
    }
    // Far more garbage than the memory limit in one invocation: the collector
    // runs during it as well.
    let post = s.answer(Invocation::new(
        "churn",
        r#"{"mode":"garbage","rounds":1500000}"#.to_owned(),
    ));
    assert_eq!(post.kind, PostKind::Response, "{}", post.text());
    check_normal(&mut s, "after-churn", 8);
}

#[test]
fn memory_bombs_are_out_of_memory_and_state_survives_rhai() {
    // 128 MB: scripts get 104 MB of heap.
    let mut s = counter_with_env(
        "bomb",
        Lang::Rhai,
        &[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")],
    );
    check_normal(&mut s, "warm", 1);
    let mut count = 1;
    for (mode, says) in [
        ("string", "string data is limited to"),
        ("array", "arrays are limited to"),
        ("map", "exceeded its memory limit of 104 MB"),
    ] {
        let body = check_runtime_error(
            &mut s,
            Invocation::new(mode, event(mode)),
            "Runtime.OutOfMemory",
        );
        assert!(
            body["errorMessage"].as_str().unwrap().contains(says),
            "{mode}: {body}"
        );
        count += 2;
        check_normal(&mut s, &format!("after-{mode}"), count);
    }
    // The map's memory is back: a third of the limit fits again.
    let n = 104 * 1024 * 1024 / 100_000 / 3;
    let post = s.answer(Invocation::new(
        "map-third",
        format!(r#"{{"mode":"map_n","n":{n}}}"#),
    ));
    assert_eq!(post.kind, PostKind::Response, "{}", post.text());
    assert_eq!(post.text(), n.to_string());
    check_normal(&mut s, "after-map-third", count + 2);
}

// ---------------------------------------------------------------------------
// Exiting: never ends the process.

#[test]
fn os_exit_is_an_ordinary_error_lua() {
    let mut s = counter("exit", Lang::Lua);
    check_normal(&mut s, "warm", 1);
    let post = s.answer(Invocation::new("exit", event("exit")));
    assert_eq!(post.kind, PostKind::Error, "{}", post.text());
    assert_eq!(post.header(ERROR_TYPE_HEADER), None, "a script error");
    let body = post.json();
    assert_eq!(body["errorType"], "Error", "{body}");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("os.exit: not available in lure") && message.contains("counter.lua:"),
        "raised at the caller's line: {body}"
    );
    check_normal(&mut s, "after-exit", 3);
}

#[test]
fn exit_returns_its_value_rhai() {
    let mut s = counter("exit", Lang::Rhai);
    check_normal(&mut s, "warm", 1);
    let post = s.answer(Invocation::new("exit", event("exit")));
    assert_eq!(post.kind, PostKind::Response, "{}", post.text());
    assert_eq!(post.text(), "42", "exit(v) ends the script with v");
    check_normal(&mut s, "after-exit", 3);
}

// ---------------------------------------------------------------------------
// Bad events: `Runtime.UnmarshalError`, the handler is not called.

fn check_bad_events(lang: Lang) {
    let mut s = counter("bad_events", lang);
    check_normal(&mut s, "warm", 1);

    let body = check_runtime_error(
        &mut s,
        Invocation::new("not-json", "this is {not JSON"),
        "Runtime.UnmarshalError",
    );
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Unable to unmarshal input"),
        "{body}"
    );
    check_normal(&mut s, "after-not-json", 2);

    for (id, deep) in [
        (
            "deep-array",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        ),
        (
            "deep-object",
            format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000)),
        ),
        // Deep, and never closed: the decoder must stop at the depth, not the end.
        ("deep-unclosed", "[".repeat(100_000)),
    ] {
        let body = check_runtime_error(&mut s, Invocation::new(id, deep), "Runtime.UnmarshalError");
        assert!(
            body["errorMessage"].as_str().unwrap().contains("1024"),
            "{id}: {body}"
        );
    }
    let body = check_runtime_error(
        &mut s,
        Invocation::new("not-utf8", b"\"\xff\xfe\"".to_vec()),
        "Runtime.UnmarshalError",
    );
    assert!(body["errorMessage"].is_string(), "{body}");
    check_runtime_error(
        &mut s,
        Invocation::new("empty", ""),
        "Runtime.UnmarshalError",
    );
    check_normal(&mut s, "after-deep", 3);
}

#[test]
fn bad_events_are_unmarshal_errors_lua() {
    check_bad_events(Lang::Lua);
}

#[test]
fn bad_events_are_unmarshal_errors_rhai() {
    check_bad_events(Lang::Rhai);
}

// ---------------------------------------------------------------------------
// Runtime API faults.

/// The connection drops after lure sent its answer, before the API recorded it:
/// lure sends it again, and it is accepted once.
fn check_dropped_before_accepted(lang: Lang) {
    let mut s = counter("post_dropped", lang);
    check_normal(&mut s, "warm", 1);
    s.api.script_post(Reply::Drop);
    let post = s.answer(Invocation::new("dropped", event("ok")));
    assert_eq!(post.json()["count"], 2);
    let tries: Vec<_> = s
        .api
        .posts()
        .into_iter()
        .filter(|p| p.request_id.as_deref() == Some("dropped"))
        .collect();
    let statuses: Vec<_> = tries.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [None, Some(202)], "sent again after the drop");
    assert_eq!(tries[0].body, tries[1].body, "the same answer");
    check_normal(&mut s, "after-drop", 3);
    s.wait_for("lure waiting on /next", |log| log.next_requests >= 4);
    assert_eq!(
        s.api.log().next_requests,
        4,
        "one /next per invocation, and the one waiting now"
    );
}

#[test]
fn post_dropped_before_accepted_is_sent_again_lua() {
    check_dropped_before_accepted(Lang::Lua);
}

#[test]
fn post_dropped_before_accepted_is_sent_again_rhai() {
    check_dropped_before_accepted(Lang::Rhai);
}

/// The API accepted the answer, but the connection dropped before its 202 reached
/// lure. lure cannot know, sends it again, and gets Lambda's 400 for an invocation
/// already answered: that means done, not an error, and there is one answer.
fn check_accepted_then_dropped(lang: Lang) {
    let mut s = counter("post_accepted_dropped", lang);
    check_normal(&mut s, "warm", 1);
    s.api.script_post(Reply::AcceptThenDrop);
    s.push(Invocation::new("lost-reply", event("ok")));
    s.wait_for("the retried answer", |log| {
        log.posts
            .iter()
            .filter(|p| p.request_id.as_deref() == Some("lost-reply"))
            .count()
            >= 2
    });
    let log = s.api.log();
    let statuses: Vec<_> = log
        .posts
        .iter()
        .filter(|p| p.request_id.as_deref() == Some("lost-reply"))
        .map(|p| p.status)
        .collect();
    assert_eq!(statuses, [Some(202), Some(400)], "retried once, refused");
    assert_eq!(log.accepted_answers("lost-reply"), 1);
    check_normal(&mut s, "after-lost-reply", 3);
    let log = s.api.log();
    assert!(
        log.posts
            .iter()
            .filter(|p| p.request_id.as_deref() == Some("lost-reply"))
            .count()
            == 2,
        "no further retries: {:?}",
        log.posts
    );
}

#[test]
fn post_accepted_then_dropped_is_answered_once_lua() {
    check_accepted_then_dropped(Lang::Lua);
}

#[test]
fn post_accepted_then_dropped_is_answered_once_rhai() {
    check_accepted_then_dropped(Lang::Rhai);
}

/// 5xx on POSTs, for a response and for an error: retried, answered once.
fn check_post_5xx(lang: Lang) {
    let mut s = counter("post_5xx", lang);
    check_normal(&mut s, "warm", 1);

    s.api.script_post(Reply::Status(500));
    s.api.script_post(Reply::Status(503));
    let post = s.answer(Invocation::new("response-5xx", event("ok")));
    assert_eq!(post.kind, PostKind::Response);
    assert_eq!(post.json()["count"], 2);

    // An error answer (Runtime.UnmarshalError) meets a 502, then goes through.
    s.api.script_post(Reply::Status(502));
    let post = s.answer(Invocation::new("error-5xx", "not json"));
    assert_eq!(post.kind, PostKind::Error);

    let log = s.api.log();
    let summary: Vec<_> = log
        .posts
        .iter()
        .filter(|p| p.request_id.as_deref() != Some("warm"))
        .map(|p| (p.request_id.as_deref().unwrap_or("?"), p.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("response-5xx", Some(500)),
            ("response-5xx", Some(503)),
            ("response-5xx", Some(202)),
            ("error-5xx", Some(502)),
            ("error-5xx", Some(202)),
        ]
    );
    check_normal(&mut s, "after-5xx", 3);
}

#[test]
fn post_5xx_is_retried_and_answered_once_lua() {
    check_post_5xx(Lang::Lua);
}

#[test]
fn post_5xx_is_retried_and_answered_once_rhai() {
    check_post_5xx(Lang::Rhai);
}

/// lure starts before the Runtime API listens (connection refused), and connects
/// once it does.
fn check_api_listening_late(lang: Lang) {
    let mut s = written("api_late", lang);
    s.start_before_api(&lang.file(STEM), Duration::from_secs(1));
    check_normal(&mut s, "first", 1);
    check_normal(&mut s, "second", 2);
    assert_eq!(s.api.connections(), 1, "one connection once the API is up");
}

#[test]
fn api_not_yet_listening_at_start_lua() {
    check_api_listening_late(Lang::Lua);
}

#[test]
fn api_not_yet_listening_at_start_rhai() {
    check_api_listening_late(Lang::Rhai);
}

/// `/next` is long-polled: nothing to do for a while is not a fault.
fn check_long_poll(lang: Lang) {
    let mut s = counter("long_poll", lang);
    check_normal(&mut s, "warm", 1);
    s.wait_for("lure waiting on /next", |log| log.next_requests >= 2);
    // A delay that sets the scenario up; nothing below depends on its length.
    sleep(Duration::from_secs(1));
    check_normal(&mut s, "late", 2);
    check_normal(&mut s, "after-late", 3);
    s.wait_for("lure waiting on /next", |log| log.next_requests >= 4);
    let log = s.api.log();
    assert_eq!(log.next_requests, 4, "the waiting /next got the invocation");
    assert_eq!(log.connections, 1, "on the same connection");
}

#[test]
fn long_polled_next_lua() {
    check_long_poll(Lang::Lua);
}

#[test]
fn long_polled_next_rhai() {
    check_long_poll(Lang::Rhai);
}

/// A dropped connection on `/next` is transient: lure asks again.
#[test]
fn next_dropped_is_asked_again() {
    let mut s = written("next_dropped", Lang::Lua);
    // lure's first /next meets the drop.
    s.api.script_next(Reply::Drop);
    s.start(&Lang::Lua.file(STEM));
    check_normal(&mut s, "after-next-drop", 1);
    check_normal(&mut s, "again", 2);
    assert!(s.api.log().next_requests >= 3, "asked again after the drop");
}

/// lure does not probe its pooled connection before each request: when the API has
/// closed it (here after every answer, `/next` and POST alike), the request fails
/// before reaching the API and goes again on a new connection, answered once.
#[test]
fn connections_closed_by_the_api_between_requests_are_replaced() {
    for lang in [Lang::Lua, Lang::Rhai] {
        let mut s = written("closed_idle", lang);
        s.api.close_after_each_answer();
        s.start(&lang.file(STEM));
        for i in 1..=5 {
            check_normal(&mut s, &format!("closed-{i}"), i);
        }
        let log = s.api.log();
        assert!(
            log.connections >= 10,
            "{lang:?}: a connection per request: {log:?}"
        );
        assert_eq!(
            log.posts.len(),
            5,
            "{lang:?}: each answer posted once: {log:?}"
        );
    }
}

/// SPEC §3: a 5xx on `/next` means the environment is broken: exit non-zero,
/// without posting anything.
#[test]
fn next_5xx_makes_lure_exit_non_zero() {
    for (lang, status) in [(Lang::Lua, 500), (Lang::Rhai, 503)] {
        let mut s = written("next_5xx", lang);
        s.api.script_next(Reply::Status(status));
        s.start(&lang.file(STEM));
        let exit = s.wait_exit();
        if exit.success() {
            s.fail(&format!(
                "{lang:?}: lure exited with success after a {status}"
            ));
        }
        assert!(
            s.output().contains(&status.to_string()),
            "says what happened: {}",
            s.output()
        );
        assert_eq!(s.api.posts().len(), 0, "{lang:?}: nothing to answer");
    }
}
