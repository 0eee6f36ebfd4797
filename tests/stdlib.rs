//! The stdlib's contract (SPEC 7.1) as a warm Lambda process lives it, through the
//! real binary and a fake Runtime API: bad input to any module function is an
//! ordinary error raised at the caller's `file:line`, naming the function and the
//! argument; the invocation is answered once; the same process (its state intact)
//! serves the next one. And `time.sleep` never outlasts the deadline (SPEC 7.2).

mod support;

use serde_json::Value;
use support::*;

/// One bad call per module function: module, function, arguments (the same
/// literals in Lua and Rhai), and what the message says after the function's name.
const BAD_CALLS: &[(&str, &str, &str, &str)] = &[
    ("base64", "encode", "true", "argument 1 must be a string"),
    (
        "base64",
        "decode",
        r#""Zm9v!""#,
        "argument 1 is not valid base64 at byte 4 ('!')",
    ),
    ("base64", "url_encode", "()", "argument 1 must be a string"),
    (
        "base64",
        "url_decode",
        r#""+/""#,
        "argument 1 is not valid base64 at byte 0 ('+')",
    ),
    ("hex", "encode", "false", "argument 1 must be a string"),
    (
        "hex",
        "decode",
        r#""abc""#,
        "argument 1 is not valid hex: an odd number of digits (3)",
    ),
    ("crypto", "sha256", "true", "argument 1 must be a string"),
    ("crypto", "sha1", "true", "argument 1 must be a string"),
    ("crypto", "md5", "true", "argument 1 must be a string"),
    (
        "crypto",
        "hmac_sha256",
        r#""key", true"#,
        "argument 2 must be a string",
    ),
    (
        "crypto",
        "hmac_sha1",
        r#"true, "data""#,
        "argument 1 must be a string",
    ),
    (
        "crypto",
        "random_bytes",
        "-1",
        "argument 1 must be from 0 to 1048576, not -1",
    ),
    (
        "crypto",
        "equal",
        r#""a", true"#,
        "argument 2 must be a string",
    ),
    ("url", "encode", "true", "argument 1 must be a string"),
    ("url", "decode", "true", "argument 1 must be a string"),
    ("url", "parse_query", "true", "argument 1 must be a string"),
    ("url", "build_query", r#""a=1""#, "argument 1 must be a "),
    (
        "url",
        "parse",
        r#""http://h:port/""#,
        "argument 1 is not a URL: \"port\" is not a port",
    ),
    (
        "time",
        "iso8601",
        r#""now""#,
        "argument 1 must be an integer",
    ),
    (
        "time",
        "parse_iso8601",
        r#""2024-02-30""#,
        "argument 1 has no day 30 in 2024-02",
    ),
    ("time", "sleep", r#""1s""#, "argument 1 must be a number"),
    (
        "json",
        "decode",
        r#""[1,""#,
        "EOF while parsing a value at line 1 column 3",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lang {
    Lua,
    Rhai,
}

impl Lang {
    fn file(self) -> &'static str {
        match self {
            Lang::Lua => "app.lua",
            Lang::Rhai => "app.rhai",
        }
    }

    fn function(self, module: &str, function: &str) -> String {
        match self {
            Lang::Lua => format!("{module}.{function}"),
            Lang::Rhai => format!("{module}::{function}"),
        }
    }

    /// A handler that counts its calls (state that must survive), makes bad call
    /// number `event.bad` when given, or sleeps `event.sleep` ms inside a
    /// `pcall` / `try` (which must not swallow the deadline).
    fn script(self) -> String {
        let calls: Vec<String> = BAD_CALLS
            .iter()
            .enumerate()
            .map(|(i, (module, function, args, _))| {
                let name = self.function(module, function);
                // `()` is Rhai's nil: Lua spells it `nil`.
                let args = if self == Lang::Lua && *args == "()" {
                    "nil"
                } else {
                    args
                };
                match self {
                    Lang::Lua => format!("  [{}] = function() return {name}({args}) end,", i + 1),
                    Lang::Rhai => format!("    {} => {name}({args}),", i + 1),
                }
            })
            .collect();
        match self {
            Lang::Lua => format!(
                r#"count = 0
local calls = {{
{}
}}
function main(event)
  count = count + 1
  if event.bad then return calls[event.bad]() end
  if event.sleep then
    local ok, err = pcall(time.sleep, event.sleep)
    return {{ caught = err }}
  end
  return {{ count = count }}
end
"#,
                calls.join("\n")
            ),
            Lang::Rhai => format!(
                r#"let count = 0;
fn main(event, context) {{
  count += 1;
  if event.sleep != () {{
    try {{ time::sleep(event.sleep); }} catch (e) {{ return #{{ caught: e }}; }}
  }}
  switch event.bad {{
{}
    _ => #{{ count: count }},
  }}
}}
"#,
                calls.join("\n")
            ),
        }
    }
}

fn started(name: &str, lang: Lang) -> Scenario {
    let mut s = Scenario::new(&format!("{name}_{lang:?}"));
    s.write(lang.file(), &lang.script());
    s.start(lang.file());
    s
}

fn check_count(s: &mut Scenario, id: &str, expected: usize) {
    let post = s.answer(Invocation::new(id, "{}"));
    if post.kind != PostKind::Response {
        s.fail(&format!("{id}: expected a response, got {}", post.text()));
    }
    assert_eq!(
        post.json()["count"],
        expected,
        "{id}: the same process, state kept"
    );
}

fn bad_input_is_a_clear_error_and_the_process_serves_on(lang: Lang) {
    let mut s = started("bad_input", lang);
    for (i, (module, function, _, detail)) in BAD_CALLS.iter().enumerate() {
        let id = format!("bad-{module}-{function}");
        let post = s.answer(Invocation::new(&id, format!(r#"{{"bad":{}}}"#, i + 1)));
        if post.kind != PostKind::Error {
            s.fail(&format!("{id}: expected an error, got {}", post.text()));
        }
        let body: Value = post.json();
        assert_eq!(body["errorType"], "Error", "{id}: {body}");
        let message = body["errorMessage"].as_str().unwrap_or_default();
        let at_caller = format!("{}:", lang.file());
        assert!(
            message.starts_with(&at_caller),
            "{id}: not at the caller's line: {message}"
        );
        let expected = format!("{}: {detail}", lang.function(module, function));
        assert!(
            message.contains(&expected),
            "{id}: {message:?} lacks {expected:?}"
        );
        assert_eq!(s.api.log().accepted_answers(&id), 1, "{id}");
    }
    check_count(&mut s, "after", BAD_CALLS.len() + 1);
}

#[test]
fn bad_input_is_a_clear_error_and_the_process_serves_on_lua() {
    bad_input_is_a_clear_error_and_the_process_serves_on(Lang::Lua);
}

#[test]
fn bad_input_is_a_clear_error_and_the_process_serves_on_rhai() {
    bad_input_is_a_clear_error_and_the_process_serves_on(Lang::Rhai);
}

/// A sleep longer than the time left ends at the stop and the invocation is a
/// `Runtime.Timeout`, even though the script catches the sleep's error; before the
/// deadline, and the process serves on.
fn sleep_never_outlasts_the_deadline(lang: Lang) {
    let mut s = started("sleep", lang);
    check_count(&mut s, "first", 1);
    let deadline = epoch_ms() + 1500;
    let post = s.answer(Invocation::new("sleepy", r#"{"sleep":600000}"#).deadline_ms(deadline));
    if post.kind != PostKind::Error {
        s.fail(&format!("expected Runtime.Timeout, got {}", post.text()));
    }
    assert_eq!(
        post.json()["errorType"],
        "Runtime.Timeout",
        "{}",
        post.text()
    );
    assert!(
        post.received_ms < deadline,
        "the timeout arrived at {} ms, after the deadline {deadline}",
        post.received_ms
    );
    check_count(&mut s, "after", 3);
}

#[test]
fn sleep_never_outlasts_the_deadline_lua() {
    sleep_never_outlasts_the_deadline(Lang::Lua);
}

#[test]
fn sleep_never_outlasts_the_deadline_rhai() {
    sleep_never_outlasts_the_deadline(Lang::Rhai);
}
