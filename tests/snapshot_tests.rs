//! `lure test` (SPEC 12) on a user's function, both languages: the first run
//! writes the snapshots, the second passes and leaves them byte-identical; a
//! changed handler fails with a diff naming the changed value (exit 1) and
//! `--update` accepts it; a new event in CI fails without writing; an error and a
//! timeout are snapshotted as errors; the request id, the log and `--redact`ed
//! values are stable; the template's timeout and variables are used; the JUnit
//! file is XML with one testcase per case and the right failure.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{Lang, Scratch};

const LUA: &str = r#"local M = {}
function M.handler(event, context)
  log.info("case", event.name)
  if event.fail then error({ errorType = "Refused", errorMessage = "refused " .. event.name }) end
  if event.spin then while true do end end
  return {
    name = event.name,
    id = context.aws_request_id,
    greeting = os.getenv("GREETING"),
    now = time.now(),
  }
end
return M
"#;

const RHAI: &str = r#"fn handler(event, context) {
    log::info("case", event.name);
    if event.fail == true { throw #{ errorType: "Refused", errorMessage: "refused " + event.name }; }
    if event.spin == true { loop {} }
    #{
        name: event.name,
        id: context.aws_request_id,
        greeting: os::getenv("GREETING"),
        now: time::now(),
    }
}
"#;

const TEMPLATE: &str = "AWSTemplateFormatVersion: \"2010-09-09\"
Transform: AWS::Serverless-2016-10-31
Resources:
  Greeter:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: provided.al2023
      Timeout: 1
      Environment:
        Variables:
          GREETING: hi
";

fn lure_test(dir: &Path, args: &[&str], ci: bool) -> (Output, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lure"));
    command.arg("test").arg(dir).args(args).env_remove("CI");
    if ci {
        command.env("CI", "true");
    }
    let output = command.output().expect("run lure test");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

fn snapshot(dir: &Path, case: &str) -> String {
    std::fs::read_to_string(dir.join(format!("events/__snapshots__/{case}.snap")))
        .unwrap_or_else(|e| panic!("{case}.snap: {e}"))
}

fn check(lang: Lang) {
    let scratch = Scratch::new(&format!("lure_test_{lang:?}").to_lowercase());
    let (file, script) = match lang {
        Lang::Lua => ("app.lua", LUA),
        Lang::Rhai => ("app.rhai", RHAI),
    };
    scratch.write(file, script);
    scratch.write("template.yaml", TEMPLATE);
    scratch.write("events/ok.json", r#"{"name": "ok"}"#);
    scratch.write("events/error.json", r#"{"name": "error", "fail": true}"#);
    scratch.write(
        "events/timeout.json",
        r#"{"name": "timeout", "spin": true}"#,
    );
    // The clock's value is volatile: redacted by the snapshot folder's settings.
    scratch.write(
        "events/__snapshots__/lure-test.json",
        r#"{"redact": ["$.now"]}"#,
    );
    let dir = scratch.task_root();

    // First run: written.
    let (output, stdout) = lure_test(&dir, &[], false);
    assert!(output.status.success(), "{lang:?}: {output:?}");
    assert!(stdout.contains("0 passed, 0 failed, 3 written"), "{stdout}");
    let ok = snapshot(&dir, "ok");
    for part in [
        "\"greeting\": \"hi\"",
        "\"now\": \"<redacted>\"",
        "\"name\": \"ok\"",
        "INFO\tcase\tok",
        "REPORT RequestId: ",
        "Duration: <redacted>",
    ] {
        assert!(ok.contains(part), "{lang:?}: {part} missing from:\n{ok}");
    }
    assert!(
        !ok.contains("T1") && !ok.contains("T2"),
        "a timestamp: {ok}"
    );
    let error = snapshot(&dir, "error");
    assert!(
        error.contains("error:\nerrorType: Refused\nerrorMessage: refused error"),
        "{error}"
    );
    let timeout = snapshot(&dir, "timeout");
    assert!(timeout.contains("errorType: Runtime.Timeout"), "{timeout}");

    // Second run: passes, the snapshots byte for byte as they were.
    let (output, stdout) = lure_test(&dir, &[], false);
    assert!(output.status.success(), "{lang:?}: {stdout}");
    assert!(stdout.contains("3 passed, 0 failed, 0 written"), "{stdout}");
    assert_eq!(snapshot(&dir, "ok"), ok);
    assert_eq!(snapshot(&dir, "timeout"), timeout);

    // A changed handler: a diff that names the value, exit 1, and the JUnit file.
    let changed = match lang {
        Lang::Lua => script.replace("GREETING\")", "GREETING\") .. \"!\""),
        Lang::Rhai => script.replace("GREETING\")", "GREETING\") + \"!\""),
    };
    scratch.write(file, &changed);
    let junit = dir.join("junit.xml");
    let junit_arg = junit.to_string_lossy().into_owned();
    let (output, stdout) = lure_test(&dir, &["--junit", &junit_arg], false);
    assert_eq!(output.status.code(), Some(1), "{lang:?}: {stdout}");
    assert!(stdout.contains("FAIL  events/ok.json"), "{stdout}");
    assert!(stdout.contains("-  \"greeting\": \"hi\","), "{stdout}");
    assert!(stdout.contains("+  \"greeting\": \"hi!\","), "{stdout}");
    assert!(stdout.contains("2 passed, 1 failed, 0 written"), "{stdout}");
    assert_eq!(snapshot(&dir, "ok"), ok, "a failure writes nothing");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("JUnit XML parses");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3);
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    assert_eq!(failed, ["events/ok.json"]);

    // --update accepts it.
    let (output, stdout) = lure_test(&dir, &["--update"], false);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("2 passed, 0 failed, 1 written"), "{stdout}");
    assert!(snapshot(&dir, "ok").contains("\"greeting\": \"hi!\""));
    assert!(lure_test(&dir, &[], false).0.status.success());

    // A new event in CI: fails, nothing written.
    scratch.write("events/new.json", r#"{"name": "new"}"#);
    let (output, stdout) = lure_test(&dir, &[], true);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("3 passed, 1 failed, 0 written"), "{stdout}");
    assert!(!dir.join("events/__snapshots__/new.snap").exists());

    // --redact on the command line: the request id (stable anyway) replaced.
    let (output, stdout) = lure_test(&dir, &["--redact", "$.id", "--update"], false);
    assert!(output.status.success(), "{stdout}");
    assert!(snapshot(&dir, "ok").contains("\"id\": \"<redacted>\""));
}

#[test]
fn snapshot_tests_of_a_function_lua() {
    check(Lang::Lua);
}

#[test]
fn snapshot_tests_of_a_function_rhai() {
    check(Lang::Rhai);
}

/// As a new user would: `lure init`, then `lure test` passes at once; an edit
/// fails with a diff; `--update` accepts it.
#[test]
fn a_new_function_made_by_lure_init_passes_at_once() {
    let scratch = Scratch::new("lure_test_init");
    let dir = scratch.task_root().join("greeter");
    let made = Command::new(env!("CARGO_BIN_EXE_lure"))
        .arg("init")
        .arg(&dir)
        .output()
        .expect("lure init");
    assert!(made.status.success(), "{made:?}");
    let (output, stdout) = lure_test(&dir, &[], true);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("1 passed, 0 failed, 0 written"), "{stdout}");
    let script = std::fs::read_to_string(dir.join("hello.lua")).unwrap();
    std::fs::write(dir.join("hello.lua"), script.replace("Hello, ", "Hi, ")).unwrap();
    let (output, stdout) = lure_test(&dir, &[], false);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("+  \"message\": \"Hi, Ada!\""), "{stdout}");
    assert!(lure_test(&dir, &["--update"], false).0.status.success());
    assert!(lure_test(&dir, &[], true).0.status.success());
}
