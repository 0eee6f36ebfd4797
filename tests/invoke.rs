//! `lure invoke` behaves as Lambda (SPEC 1): the function runs in its task root,
//! an event over Lambda's 6 MB is refused, and an invocation blocked in C past its
//! deadline is timed out as Lambda times it out, not reported as a success.

mod support;

use std::process::Command;

use serde_json::Value;
use support::Scratch;

fn stdout_json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Relative paths mean the task root, whatever directory `lure invoke` is run in:
/// `io.open` and a `package.path` entry, as in `/var/task` on Lambda.
#[test]
fn the_function_runs_in_its_task_root() {
    let scratch = Scratch::new("invoke_cwd");
    scratch.write("data.txt", "read relative");
    scratch.write("lib/util.lua", "return { name = 'util from ./lib' }");
    scratch.write(
        "app.lua",
        r#"
package.path = "./lib/?.lua;" .. package.path
local util = require("util")
function main()
  local file = assert(io.open("data.txt"))
  local text = file:read("a")
  file:close()
  return { text = text, util = util.name }
end
"#,
    );
    let elsewhere = std::env::temp_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_lure"))
        .args(["invoke", "app.lua", "--task-root"])
        .arg(scratch.task_root())
        .current_dir(&elsewhere)
        .output()
        .expect("run lure invoke");
    assert!(output.status.success(), "{output:?}");
    let answer = stdout_json(&output);
    assert_eq!(answer["text"], "read relative");
    assert_eq!(answer["util"], "util from ./lib");
}

/// Lambda refuses a synchronous invocation over 6,291,456 bytes before the
/// function sees it; so do `lure invoke` and `lure serve`.
#[test]
fn an_event_over_6_mb_is_refused() {
    let scratch = Scratch::new("invoke_big_event");
    scratch.write("app.lua", "function main() print('ran') return 1 end");
    let event = format!(r#"{{"x":"{}"}}"#, "y".repeat(6_291_456));
    let output = support::lure::invoke(&scratch.task_root(), "app.lua", event.as_bytes(), None);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RequestTooLargeException"), "{stderr}");
    assert!(!stderr.contains("ran"), "the function ran: {stderr}");
    assert!(output.stdout.is_empty());
}

/// A call blocked in C outlives lure's own stop: the invocation is still timed
/// out (Lambda's `Sandbox.Timedout`, `Status: timeout`), with exit code 1.
#[test]
fn a_call_blocked_past_the_deadline_is_timed_out() {
    let scratch = Scratch::new("invoke_blocked");
    scratch.write(
        "app.lua",
        // `exec`, stderr elsewhere: the orphaned sleep must not hold the test's pipes.
        "function main() return io.popen('exec sleep 20 2>/dev/null'):read('a') end",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_lure"))
        .args(["invoke", "app.lua", "--timeout", "1", "--task-root"])
        .arg(scratch.task_root())
        .output()
        .expect("run lure invoke");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let error = stdout_json(&output);
    assert_eq!(error["errorType"], "Sandbox.Timedout");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Task timed out after 1.00 seconds"),
        "{error}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("REPORT RequestId: ") && l.ends_with("Status: timeout")),
        "{stderr}"
    );
}

/// `lure help` is `lure --help`, and the help names the environment lure reads.
#[test]
fn help_is_a_command_and_names_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_lure"))
        .arg("help")
        .output()
        .expect("run lure help");
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "USAGE:",
        "ENVIRONMENT",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_LOG_LEVEL",
        "LURE_EXTRA_CA_CERTS",
        "--concurrency",
    ] {
        assert!(help.contains(name), "{name} missing from:\n{help}");
    }
}
