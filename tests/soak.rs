//! Soak (issue 4): thousands of mixed invocations — responses, script errors,
//! timeouts (also inside `pcall` / `try`), unparsable events, allocation-heavy
//! handlers — through one warm process per language. Every invocation must be
//! answered exactly once, with what its mode calls for, and the process's resident
//! memory must stay flat after warm-up.
//!
//! Not run by default (about a minute on two cores). Run it with:
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! `SOAK_INVOCATIONS` (default 3000, per language) changes the length.

mod support;

use std::time::{Duration, Instant};

use support::*;

const SOAK_LUA: &str = r#"
calls = 0

local function spin() while true do end end

function main(event, context)
  calls = calls + 1
  local mode = event.mode
  if mode == "loop" then
    spin()
  elseif mode == "catch" then
    while true do pcall(spin) end
  elseif mode == "error" then
    error("failed " .. event.i)
  elseif mode == "typed" then
    error({ errorType = "Typed", errorMessage = "typed " .. event.i })
  elseif mode == "alloc" then
    local t = {}
    for k = 1, 2000 do t[k] = { k = k, s = "item " .. k } end
    return { i = event.i, n = #t }
  end
  return { i = event.i, calls = calls }
end
"#;

const SOAK_RHAI: &str = r#"
let calls = 0;

fn main(event, context) {
    calls += 1;
    switch event.mode {
        "loop" => { loop { } }
        "catch" => { loop { try { loop { } } catch { } } }
        "error" => { throw "failed " + event.i; }
        "typed" => { throw #{ errorType: "Typed", errorMessage: "typed " + event.i }; }
        "alloc" => {
            // Fewer than in Lua: Rhai re-measures the array after each push.
            let a = [];
            for k in 0..500 { a.push(#{ k: k, s: "item " + k }); }
            return #{ i: event.i, n: a.len() };
        }
        _ => { }
    }
    #{ i: event.i, calls: calls }
}
"#;

/// Invocations answered between two memory samples.
const BATCH: usize = 100;
/// Samples taken before the reference one: the Lua heap, Rhai's caches and the
/// allocator's arenas grow to their working size first.
const WARM_UP_BATCHES: usize = 5;
/// How far resident memory may grow after warm-up. A leak of even 1 KB per
/// invocation would be 2.5 MB over 2500 invocations, on top of noise from the
/// allocator (arenas trimmed or not).
const RSS_GROWTH_LIMIT_KB: u64 = 4 * 1024;
/// Deadline of the invocations meant to time out.
const SHORT_DEADLINE: Duration = Duration::from_millis(150);

/// What invocation `i` does, and the error type it must be answered with
/// (`None`: a response).
fn mode(i: usize) -> (&'static str, Option<&'static str>) {
    match i % 20 {
        0 | 10 => ("loop", Some("Runtime.Timeout")),
        15 => ("catch", Some("Runtime.Timeout")),
        1 | 7 | 13 => ("error", Some("Error")),
        4 => ("typed", Some("Typed")),
        9 => ("not json", Some("Runtime.UnmarshalError")),
        2 | 12 | 17 => ("alloc", None),
        _ => ("ok", None),
    }
}

fn invocation(i: usize) -> Invocation {
    let id = format!("soak-{i}");
    match mode(i) {
        ("not json", _) => Invocation::new(&id, format!("{{not json {i}")),
        (mode, Some("Runtime.Timeout")) => {
            Invocation::new(&id, format!(r#"{{"mode":"{mode}","i":{i}}}"#))
                .deadline_in(SHORT_DEADLINE)
        }
        (mode, _) => Invocation::new(&id, format!(r#"{{"mode":"{mode}","i":{i}}}"#)),
    }
}

/// Resident memory of a process, in KB, from `/proc/PID/status`.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

fn soak(file: &str, script: &str) {
    let total: usize = std::env::var("SOAK_INVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let batches = total.div_ceil(BATCH);
    assert!(batches > WARM_UP_BATCHES + 1, "SOAK_INVOCATIONS too small");

    let mut s = Scenario::new(&format!("soak_{file}"));
    s.write(file, script);
    s.start(file);
    let pid = s.lure().pid();
    s.wait_for("lure asking for work", |log| log.next_requests >= 1);
    let started = Instant::now();
    let mut samples: Vec<(usize, u64)> = vec![(0, rss_kb(pid))];
    for batch in 0..batches {
        let end = ((batch + 1) * BATCH).min(total);
        for i in batch * BATCH..end {
            s.push(invocation(i));
        }
        s.wait_for(&format!("{end} answers"), |log| {
            log.posts.iter().filter(|p| p.accepted()).count() >= end
        });
        samples.push((end, rss_kb(pid)));
    }
    let elapsed = started.elapsed();

    // Every invocation answered exactly once, as its mode calls for.
    let log = s.api.log();
    assert_eq!(log.posts.len(), total, "no retries, no extra answers");
    assert!(log.unexpected.is_empty(), "{:?}", log.unexpected);
    for (i, post) in log.posts.iter().enumerate() {
        let id = format!("soak-{i}");
        assert_eq!(post.request_id.as_deref(), Some(id.as_str()), "in order");
        assert!(post.accepted(), "{id}: {post:?}");
        match mode(i) {
            (_, None) => {
                assert_eq!(post.kind, PostKind::Response, "{id}: {}", post.text());
                assert_eq!(post.json()["i"], i, "{id}: {}", post.text());
            }
            (mode, Some(error_type)) => {
                assert_eq!(post.kind, PostKind::Error, "{id} ({mode}): {}", post.text());
                assert_eq!(
                    post.json()["errorType"],
                    error_type,
                    "{id} ({mode}): {}",
                    post.text()
                );
            }
        }
    }
    // The handler ran for all but the unparsable events, in one process.
    let last_ok = (0..total).rev().find(|&i| mode(i).0 == "ok").unwrap();
    let calls = log.posts[last_ok].json()["calls"].as_u64().unwrap() as usize;
    let unparsable_before = (0..last_ok).filter(|&i| mode(i).0 == "not json").count();
    assert_eq!(
        calls,
        last_ok + 1 - unparsable_before,
        "state kept throughout"
    );
    assert!(s.lure().try_status().is_none(), "still running");

    let reference = samples[WARM_UP_BATCHES + 1];
    let last = *samples.last().unwrap();
    println!(
        "{file}: {total} invocations in {:.1} s; VmRSS (KB) after N invocations:",
        elapsed.as_secs_f64()
    );
    for (n, kb) in &samples {
        println!("  {n:>6} {kb:>8}");
    }
    println!(
        "{file}: reference (after {}) {} KB, last {} KB, growth {} KB (limit {RSS_GROWTH_LIMIT_KB} KB)",
        reference.0,
        reference.1,
        last.1,
        last.1 as i64 - reference.1 as i64
    );
    assert!(
        last.1 <= reference.1 + RSS_GROWTH_LIMIT_KB,
        "{file}: resident memory grew from {} KB to {} KB",
        reference.1,
        last.1
    );
}

#[test]
#[ignore = "long: cargo test --release --test soak -- --ignored --nocapture"]
fn soak_lua() {
    soak("soak.lua", SOAK_LUA);
}

#[test]
#[ignore = "long: cargo test --release --test soak -- --ignored --nocapture"]
fn soak_rhai() {
    soak("soak.rhai", SOAK_RHAI);
}
