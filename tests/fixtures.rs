//! Fixture pairs run through the real binary, as a user runs them:
//! `lure invoke HANDLER --task-root tests/fixtures/<lang> [--event FILE|-]`.
//!
//! Each row of [`cases!`] is one test. It runs the Lua fixture and the Rhai fixture
//! of the same name, snapshots each (`tests/snapshots/fixtures__<lang>__<case>.snap`:
//! exit code and stdout, the body byte for byte as lure would POST it), checks the
//! outcome SPEC prescribes (exit code, errorType, a piece of the message), and then
//! checks that the two languages agree as far as the row says they must ([`Pair`]),
//! so a difference between the engines shows up as a failure, not as two snapshots
//! nobody compares.
//!
//! Paths are relative to the crate root (the child runs there), so snapshots do not
//! depend on where the repository is checked out. Volatile values (request ids,
//! deadlines, remaining time) are redacted, in the snapshots and before comparing.
//!
//! A row reads: test name, handler (`{ext}` becomes `lua` or `rhai`), event, what
//! SPEC says must happen, how far Lua and Rhai must agree. Review new or changed
//! snapshots against SPEC with `cargo insta review`: a snapshot records what lure
//! does, the `Expect` column what it must do.

use std::io::Write;
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::Value;

// ---------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------

/// One row: a test function that runs the case in both languages.
macro_rules! cases {
    ($($name:ident: $handler:literal, $event:expr, $expect:expr, $pair:expr;)*) => {
        $(
            #[test]
            fn $name() {
                run_case(stringify!($name), $handler, &$event, &$expect, &$pair);
            }
        )*
    };
}

cases! {
    // SPEC §2: handler forms.
    script_file_global_main:        "hello.{ext}", File("name.json"), Success, Identical;
    // Lua: `main` of the returned table; Rhai: no `fn main`, the script body is the result.
    script_file_without_global_main: "script_without_global_main.{ext}", File("name.json"), Success, Identical;
    script_file_in_subfolder:       "nested/deep/app.{ext}", Omitted, Success, Identical;
    method_in_returned_table:       "app.handler", File("name.json"), Success, Identical;
    method_as_global:               "globals.handler", Omitted, Success, Identical;
    method_table_before_global:     "precedence.handler", Omitted, Success,
        LuaOnly("a Lua chunk can both return a table and set globals; Rhai has one function namespace");
    arity_zero:                     "arity.zero", File("name.json"), Success, Identical;
    arity_one:                      "arity.one", File("name.json"), Success, Identical;
    arity_two:                      "arity.two", File("name.json"), Success, Identical;
    nested_path:                    "nested/deep/app.handler", Omitted, Success, Identical;
    file_name_with_extra_dot:       "app.v2.handler", Omitted, Success, Identical;
    require_under_task_root:        "uses_lib.handler", File("name.json"), Success, Identical;
    require_package_init:           "require_init.handler", Omitted, Success,
        LuaOnly("`?/init.lua` is a Lua search path entry; Rhai imports name files");
    require_missing_module:         "require_missing.handler", Omitted,
        InitError("Runtime.ImportModuleError", "lib"),
        SameErrorType("Lua's `require` and Rhai's module resolver word the failure differently");
    absolute_path:                  "/var/task/hello.{ext}", Omitted,
        InitError("Runtime.MalformedHandlerName", "absolute"), SameModuloFileNames;
    absolute_path_method:           "/var/task/app.handler", Omitted,
        InitError("Runtime.MalformedHandlerName", "absolute"), Identical;
    parent_dir:                     "../{ext}/hello.{ext}", Omitted,
        InitError("Runtime.MalformedHandlerName", ".."), SameModuloFileNames;
    parent_dir_method:              "../app.handler", Omitted,
        InitError("Runtime.MalformedHandlerName", ".."), Identical;
    missing_file:                   "missing.handler", Omitted,
        InitError("Runtime.ImportModuleError", "missing"), SameModuloFileNames;
    missing_script_file:            "missing.{ext}", Omitted,
        InitError("Runtime.ImportModuleError", "missing"), SameModuloFileNames;
    missing_method:                 "app.nope", Omitted,
        InitError("Runtime.HandlerNotFound", "nope"),
        SameErrorType("the hint says where each language looks for the function");
    method_not_a_function:          "app.not_a_function", Omitted,
        InitError("Runtime.HandlerNotFound", "not_a_function"),
        SameErrorType("a Lua table field vs a Rhai constant: the engines may say why differently");
    script_file_without_main:       "no_main.lua", Omitted,
        InitError("Runtime.HandlerNotFound", "main"),
        LuaOnly("a Rhai script without `fn main` is itself the handler");

    // SPEC §4: event → script value → body. `echo` returns the event unchanged.
    event_default_is_empty_object:  "echo.{ext}", Omitted, Success, Identical;
    event_object:                   "echo.{ext}", File("object.json"), Success, Identical;
    event_array:                    "echo.{ext}", File("array.json"), Success, Identical;
    event_nested:                   "echo.{ext}", File("nested.json"), Success, Identical;
    event_null:                     "echo.{ext}", File("null.json"), Success, Identical;
    event_string:                   "echo.{ext}", File("string.json"), Success, Identical;
    event_empty_array:              "echo.{ext}", File("empty_array.json"), Success, Identical;
    event_empty_object:             "echo.{ext}", File("empty_object.json"), Success, Identical;
    event_empty_containers:         "echo.{ext}", File("empty_containers.json"), Success, Identical;
    event_numbers:                  "echo.{ext}", File("numbers.json"), Success, Identical;
    event_unicode:                  "echo.{ext}", File("unicode.json"), Success, Identical;
    event_kinds:                    "kinds.{ext}", File("kinds.json"), Success, Identical;
    event_big:                      "echo.{ext}", Stdin("about 1 MB of records", big_event), Success, Identical;
    event_nested_1000_arrays:       "echo.{ext}", Stdin("arrays nested 1000 deep", || nested_arrays(1000)), Success, Identical;
    event_nested_1000_objects:      "echo.{ext}", Stdin("objects nested 1000 deep", || nested_objects(1000)), Success, Identical;
    event_nested_2000_arrays:       "echo.{ext}", Stdin("arrays nested 2000 deep", || nested_arrays(2000)),
        HandlerError("Runtime.UnmarshalError", ""), Identical;
    event_not_json:                 "echo.{ext}", File("not_json.json"),
        HandlerError("Runtime.UnmarshalError", ""), Identical;
    event_trailing_garbage:         "echo.{ext}", File("trailing_garbage.json"),
        HandlerError("Runtime.UnmarshalError", ""), Identical;
    event_single_quotes:            "echo.{ext}", File("single_quotes.json"),
        HandlerError("Runtime.UnmarshalError", ""), Identical;
    event_lone_surrogate:           "echo.{ext}", File("lone_surrogate.json"),
        HandlerError("Runtime.UnmarshalError", ""), Identical;
    event_empty_body:               "echo.{ext}", Stdin("empty", Vec::new),
        HandlerError("Runtime.UnmarshalError", ""), Identical;
    event_invalid_utf8:             "echo.{ext}", Stdin("a string holding the byte 0xFF", || b"{\"a\": [\"ok\", \"\xff\"]}".to_vec()),
        HandlerError("Runtime.UnmarshalError", ""), Identical;

    // SPEC §4: return value → body.
    return_string:                  "returns.text", Omitted, Success, Identical;
    return_nil:                     "returns.nothing", Omitted, Success, Identical;
    return_boolean:                 "returns.boolean", Omitted, Success, Identical;
    return_integer:                 "returns.integer", Omitted, Success, Identical;
    return_fraction:                "returns.fraction", Omitted, Success, Identical;
    return_whole_float:             "returns.whole_float", Omitted, Success, Identical;
    return_numbers:                 "returns.numbers", Omitted, Success, Identical;
    return_sequence:                "returns.sequence", Omitted, Success, Identical;
    return_empty_table:             "returns.empty_table", Omitted, Success, Identical;
    return_array_mt:                "returns.marked_array", Omitted, Success, Identical;
    return_empty_array:             "returns.empty_array", Omitted, Success, Identical;
    return_sparse:                  "returns.sparse", Omitted, Success, Identical;
    return_mixed:                   "returns.mixed", Omitted, Success, Identical;
    return_nested:                  "returns.nested", Omitted, Success, Identical;
    return_unicode:                 "returns.unicode", Omitted, Success, Identical;

    // SPEC §4: values JSON cannot hold → Runtime.MarshalError naming the JSON path.
    marshal_function_nested:        "bad_returns.function_nested", Omitted,
        HandlerError("Runtime.MarshalError", "$.items[2].f"),
        SameErrorType("a Lua function vs a Rhai function pointer: each message names its type");
    marshal_function_top:           "bad_returns.function_top", Omitted,
        HandlerError("Runtime.MarshalError", " $"),
        SameErrorType("a Lua function vs a Rhai function pointer: each message names its type");
    marshal_quoted_key:             "bad_returns.quoted_key", Omitted,
        HandlerError("Runtime.MarshalError", "$['content-type'][0]"),
        SameErrorType("a Lua function vs a Rhai function pointer: each message names its type");
    marshal_nan:                    "bad_returns.nan", Omitted,
        HandlerError("Runtime.MarshalError", "$.values[0]"), Identical;
    marshal_infinity:               "bad_returns.infinity", Omitted,
        HandlerError("Runtime.MarshalError", "$.ratio"), Identical;
    marshal_negative_infinity:      "bad_returns.negative_infinity", Omitted,
        HandlerError("Runtime.MarshalError", "$.ratio"), Identical;
    marshal_recursive_table:        "bad_returns.recursive", Omitted,
        HandlerError("Runtime.MarshalError", "$.data.self"),
        LuaOnly("Rhai values are trees: a map cannot contain itself");
    marshal_invalid_utf8:           "bad_returns.invalid_utf8", Omitted,
        HandlerError("Runtime.MarshalError", "$.name"),
        LuaOnly("Rhai strings are always UTF-8");
    marshal_coroutine:              "bad_returns.coroutine", Omitted,
        HandlerError("Runtime.MarshalError", "$.worker"), LuaOnly("Rhai has no coroutines");
    marshal_boolean_key:            "bad_returns.boolean_key", Omitted,
        HandlerError("Runtime.MarshalError", ""), LuaOnly("Rhai map keys are strings");

    // SPEC §4: context.
    context_fields:                 "context.{ext}", Omitted, Success, Identical;

    // SPEC §7: the json module inside scripts.
    json_encode:                    "json_module.encode", Omitted, Success, Identical;
    json_encode_pretty:             "json_module.encode_pretty", Omitted, Success, Identical;
    json_sentinels:                 "json_module.sentinels", Omitted, Success, Identical;
    json_decode:                    "json_module.decode", Omitted, Success, Identical;
    json_round_trip:                "json_module.round_trip", Omitted, Success, Identical;
    json_decode_error:              "json_module.decode_error", Omitted, Success,
        Differ("the message names the function as each language spells it: json.decode / json::decode");
    json_encode_error:              "json_module.encode_error", Omitted, Success,
        Differ("the message names the function as each language spells it: json.encode / json::encode");
    json_decode_error_uncaught:     "json_module.decode_error_uncaught", Omitted,
        HandlerError("Error", "decode"),
        SameErrorType("the message names the function as each language spells it");

    // SPEC §7.2: the utility modules. Error rows compare each message from
    // "argument" on: the function's name is spelled `m.f` in Lua, `m::f` in Rhai.
    stdlib_base64:                  "stdlib_base64.vectors", Omitted, Success, Identical;
    stdlib_base64_errors:           "stdlib_base64.errors", Omitted, Success, Identical;
    stdlib_base64_uncaught:         "stdlib_base64.uncaught", Omitted,
        HandlerError("Error", "decode: argument 1 is not valid base64 at byte 3 (' ')"),
        SameErrorType("the message names the function as each language spells it");
    stdlib_base64_not_text:         "stdlib_base64.not_text", Omitted, Success,
        RhaiOnly("Rhai strings are UTF-8: bytes that are not text need `decode_blob`; Lua strings hold any bytes");
    stdlib_hex:                     "stdlib_hex.round_trip", Omitted, Success, Identical;
    stdlib_hex_errors:              "stdlib_hex.errors", Omitted, Success, Identical;
    stdlib_crypto_digests:          "stdlib_crypto.digests", Omitted, Success, Identical;
    stdlib_crypto_random_and_equal: "stdlib_crypto.random_and_equal", Omitted, Success, Identical;
    stdlib_crypto_errors:           "stdlib_crypto.errors", Omitted, Success, Identical;
    stdlib_url_encoding:            "stdlib_url.encoding", Omitted, Success, Identical;
    stdlib_url_queries:             "stdlib_url.queries", Omitted, Success, Identical;
    stdlib_url_parse:               "stdlib_url.parse", Omitted, Success, Identical;
    stdlib_url_errors:              "stdlib_url.errors", Omitted, Success, Identical;
    stdlib_uuid:                    "stdlib_uuid.v4", Omitted, Success, Identical;
    stdlib_time_iso8601:            "stdlib_time.iso8601", Omitted, Success, Identical;
    stdlib_time_clocks:             "stdlib_time.clocks", Omitted, Success, Identical;
    stdlib_time_errors:             "stdlib_time.errors", Omitted, Success, Identical;
    stdlib_os_getenv:               "stdlib_os.{ext}", Omitted, Success, Identical;

    // SPEC §5: errors.
    error_string:                   "errors.plain", Omitted,
        HandlerError("Error", "errors.{ext}:6: order 42 not found"), SameErrorMessage;
    error_table:                    "errors.typed", Omitted,
        HandlerError("OrderNotFound", "order 42 not found"), SameErrorMessage;
    error_in_nested_call:           "errors.nested", File("order.json"),
        HandlerError("Error", "errors.{ext}:15: quantity is not a number: many"), SameErrorMessage;
    error_from_the_vm:              "errors.runtime_fault", Omitted,
        HandlerError("Error", "errors.{ext}:30:"),
        SameErrorType("indexing nil / (): each VM words it in its own way");
    error_in_top_level_code:        "init_error.handler", Omitted,
        InitError("Runtime.ImportModuleError", "init_error.{ext}:4: config missing: set TABLE_NAME"),
        SameErrorMessage;
    syntax_error:                   "syntax_error.handler", Omitted,
        InitError("Runtime.UserCodeSyntaxError", "syntax_error.{ext}"),
        SameErrorType("each language's parser words its syntax errors");
    os_exit_is_unavailable:         "os_exit.lua", Omitted, HandlerError("Error", "os.exit"),
        LuaOnly("`os.exit` is Lua's; Rhai has no way to end the process");
}

/// `app.lua` and `app.rhai` side by side, in a task root of their own: init error
/// naming both files (SPEC §2). One run: the handler names no language.
#[test]
fn ambiguous_handler_names_both_files() {
    let handler = "app.handler";
    let root = "tests/fixtures/ambiguous";
    let run = lure(handler, root, &Omitted);
    insta::with_settings!({ description => run.command.clone(), omit_expression => true }, {
        insta::assert_snapshot!("ambiguous", run.record(&Omitted));
    });
    run.check(
        &InitError("Runtime.ImportModuleError", "app.lua"),
        Lang::Lua,
    );
    run.check(
        &InitError("Runtime.ImportModuleError", "app.rhai"),
        Lang::Rhai,
    );
}

// ---------------------------------------------------------------------------
// Generated events: too big or too deep to commit
// ---------------------------------------------------------------------------

/// About 1 MB: 8,000 records. Compact with sorted keys, so an echo is byte-identical.
fn big_event() -> Vec<u8> {
    let mut out = String::from(r#"{"records":["#);
    for i in 0..8000 {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"id":{i},"name":"record {i} — ☃","payload":"{}","score":{}.5}}"#,
            "x".repeat(80),
            i % 100
        ));
    }
    out.push_str("]}");
    out.into_bytes()
}

/// `[[[...]]]`, `depth` arrays deep.
fn nested_arrays(depth: usize) -> Vec<u8> {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

/// `{"a":{"a":...{"a":1}}}`, `depth` objects deep.
fn nested_objects(depth: usize) -> Vec<u8> {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth)).into_bytes()
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Lua,
    Rhai,
}

impl Lang {
    fn name(self) -> &'static str {
        match self {
            Lang::Lua => "lua",
            Lang::Rhai => "rhai",
        }
    }
}

enum Event {
    /// No `--event`: lure's default, `{}`.
    Omitted,
    /// `--event tests/fixtures/events/NAME`.
    File(&'static str),
    /// Built by the harness (described, built) and sent on stdin (`--event -`).
    Stdin(&'static str, fn() -> Vec<u8>),
}
use Event::*;

/// What SPEC says the run must end with.
enum Expect {
    /// Exit 0.
    Success,
    /// Exit 1, an error body of this errorType whose message contains the text.
    HandlerError(&'static str, &'static str),
    /// Exit 2 (init failed), an error body of this errorType whose message contains the text.
    InitError(&'static str, &'static str),
}
use Expect::*;

/// How much of the Lua and the Rhai outcome must agree.
enum Pair {
    /// Same exit code, stdout byte for byte the same.
    Identical,
    /// Same once file names are normalised: messages name the script, which is
    /// `x.lua` in one language and `x.rhai` in the other, in `tests/fixtures/lua`
    /// or `tests/fixtures/rhai`. Both become `x.<ext>`, `tests/fixtures/<lang>`.
    SameModuloFileNames,
    /// Error bodies with the same errorType and errorMessage (file names
    /// normalised); the stackTrace differs by nature (Lua traceback lines vs Rhai
    /// `file:line:column` positions).
    SameErrorMessage,
    /// Error bodies with the same errorType; the message legitimately differs (why).
    SameErrorType(&'static str),
    /// Both succeed, but the bodies legitimately differ (why).
    Differ(&'static str),
    /// Only Lua has the feature (why): no Rhai fixture.
    LuaOnly(&'static str),
    /// Only Rhai has the feature (why): no Lua fixture.
    RhaiOnly(&'static str),
}
use Pair::*;

impl Pair {
    /// The agreement, in words, for the snapshot's header.
    fn describe(&self) -> String {
        match self {
            Identical => "Lua and Rhai: identical stdout".to_owned(),
            SameModuloFileNames => "Lua and Rhai: identical stdout once file names are normalised".to_owned(),
            SameErrorMessage => "Lua and Rhai: same errorType and errorMessage (file names normalised); stackTraces differ".to_owned(),
            SameErrorType(why) => format!("Lua and Rhai: same errorType only, because {why}"),
            Differ(why) => format!("Lua and Rhai: bodies differ, because {why}"),
            LuaOnly(why) => format!("Lua only, because {why}"),
            RhaiOnly(why) => format!("Rhai only, because {why}"),
        }
    }
}

fn run_case(name: &str, handler: &str, event: &Event, expect: &Expect, pair: &Pair) {
    let langs: &[Lang] = match pair {
        LuaOnly(_) => &[Lang::Lua],
        RhaiOnly(_) => &[Lang::Rhai],
        _ => &[Lang::Lua, Lang::Rhai],
    };
    let runs: Vec<Run> = langs
        .iter()
        .map(|&lang| {
            let handler = handler.replace("{ext}", lang.name());
            let root = format!("tests/fixtures/{}", lang.name());
            let run = lure(&handler, &root, event);
            let description = format!("{}\n{}", run.command, pair.describe());
            insta::with_settings!({ description => description, omit_expression => true }, {
                insta::assert_snapshot!(format!("{}__{name}", lang.name()), run.record(event));
            });
            run
        })
        .collect();
    for (run, &lang) in runs.iter().zip(langs) {
        run.check(expect, lang);
    }
    if let [lua, rhai] = runs.as_slice() {
        compare(pair, lua, rhai);
    }
}

/// One finished `lure invoke`.
struct Run {
    /// The command line, as a user would type it (the snapshot's description).
    command: String,
    exit: i32,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs the real binary from the crate root with a fixed function environment.
/// The environment is cleared first: nothing of the developer's shell (an
/// `AWS_LAMBDA_RUNTIME_API`, a `LAMBDA_TASK_ROOT`, a log level) may change the
/// outcome, and `--task-root` alone must be enough to resolve and `require`.
fn lure(handler: &str, task_root: &str, event: &Event) -> Run {
    let mut args = vec![
        "invoke".to_owned(),
        handler.to_owned(),
        "--task-root".to_owned(),
        task_root.to_owned(),
    ];
    let stdin = match event {
        Omitted => None,
        File(name) => {
            args.extend([
                "--event".to_owned(),
                format!("tests/fixtures/events/{name}"),
            ]);
            None
        }
        Stdin(_, make) => {
            args.extend(["--event".to_owned(), "-".to_owned()]);
            Some(make())
        }
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_lure"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs([
            ("AWS_LAMBDA_FUNCTION_NAME", "fixtures"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/fixtures"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2024/01/01/[$LATEST]fixtures"),
        ])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lure");
    // Feed stdin from a thread: lure may answer (and fill the stdout pipe) before
    // it has read a big event to the end.
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let output = child.wait_with_output().expect("wait for lure");
    if let Some(feeder) = feeder {
        feeder.join().expect("stdin feeder");
    }
    let shown_event = match event {
        Omitted => String::new(),
        File(name) => format!(" --event tests/fixtures/events/{name}"),
        Stdin(what, _) => format!(" --event - (generated: {what})"),
    };
    // lure runs the function in its task root, which it names as an absolute path
    // (as Lambda's `/var/task`): shown relative to this crate, as it was given.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
    let stdout = match String::from_utf8(output.stdout) {
        Ok(text) => text.replace(root, "").into_bytes(),
        Err(e) => e.into_bytes(),
    };
    Run {
        command: format!("lure invoke {handler} --task-root {task_root}{shown_event}"),
        // A signal (a crash) has no code: -1 never matches an expectation.
        exit: output.status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).replace(root, ""),
    }
}

/// Bodies bigger than this are summarised in snapshots rather than written out.
const SHOWN_BODY_LIMIT: usize = 16 * 1024;

impl Run {
    /// What the snapshot holds: the exit code and stdout (raw, and indented for
    /// reading when it is a JSON container), volatile values redacted.
    fn record(&self, event: &Event) -> String {
        let mut out = format!("exit: {}\n", self.exit);
        let generated = match event {
            Stdin(_, make) => Some(make()),
            _ => None,
        };
        if generated.as_deref() == Some(self.stdout.as_slice()) && !self.stdout.is_empty() {
            out.push_str(&format!(
                "stdout: the event, byte for byte ({} bytes)\n",
                self.stdout.len()
            ));
        } else if self.stdout.len() > SHOWN_BODY_LIMIT {
            let text = String::from_utf8_lossy(&self.stdout);
            let head: String = text.chars().take(200).collect();
            out.push_str(&format!(
                "stdout: {} bytes, starting:\n{head}\n",
                self.stdout.len()
            ));
        } else {
            let text = String::from_utf8_lossy(&self.stdout);
            out.push_str(&format!("stdout:\n{text}\n"));
            if let Some(pretty) = indent_json(&text) {
                out.push_str(&format!("stdout, indented:\n{pretty}\n"));
            }
        }
        redact(&out)
    }

    /// Fails the test unless the run ended as SPEC prescribes.
    fn check(&self, expect: &Expect, lang: Lang) {
        let (exit, wanted) = match expect {
            Success => (0, None),
            HandlerError(t, m) => (1, Some((*t, *m))),
            InitError(t, m) => (2, Some((*t, *m))),
        };
        let context = || {
            format!(
                "{} ({})\nstdout: {}\nstderr:\n{}",
                self.command,
                lang.name(),
                String::from_utf8_lossy(&self.stdout),
                self.stderr
            )
        };
        assert_eq!(self.exit, exit, "exit code of {}", context());
        let body = parse_json(&self.stdout);
        match wanted {
            None => assert!(body.is_some(), "a successful body is JSON: {}", context()),
            Some((error_type, message_part)) => {
                let body = body.unwrap_or_else(|| panic!("an error body is JSON: {}", context()));
                assert_eq!(body["errorType"], error_type, "errorType of {}", context());
                let message = body["errorMessage"].as_str().unwrap_or_default();
                let part = message_part.replace("{ext}", lang.name());
                assert!(
                    message.contains(&part),
                    "errorMessage should contain {part:?}: {}",
                    context()
                );
                assert!(
                    body["stackTrace"].is_array(),
                    "an error body has a stackTrace array: {}",
                    context()
                );
            }
        }
    }
}

/// Fails the test unless Lua and Rhai agree as far as `pair` says they must.
fn compare(pair: &Pair, lua: &Run, rhai: &Run) {
    let text = |run: &Run| redact(&String::from_utf8_lossy(&run.stdout));
    let error = |run: &Run| -> Value {
        serde_json::from_str(&normalise_file_names(&text(run)))
            .unwrap_or_else(|_| panic!("an error body is JSON: {}", run.command))
    };
    assert_eq!(lua.exit, rhai.exit, "Lua and Rhai exit codes differ");
    match pair {
        Identical => assert!(
            text(lua) == text(rhai),
            "Lua and Rhai bodies differ:\n  lua:  {}\n  rhai: {}",
            abbreviate(&text(lua)),
            abbreviate(&text(rhai))
        ),
        SameModuloFileNames => assert_eq!(
            normalise_file_names(&text(lua)),
            normalise_file_names(&text(rhai)),
            "Lua and Rhai bodies differ beyond file names"
        ),
        SameErrorMessage => {
            let (lua, rhai) = (error(lua), error(rhai));
            assert_eq!(lua["errorType"], rhai["errorType"], "errorType");
            assert_eq!(lua["errorMessage"], rhai["errorMessage"], "errorMessage");
        }
        SameErrorType(_) => assert_eq!(error(lua)["errorType"], error(rhai)["errorType"]),
        Differ(_) | LuaOnly(_) | RhaiOnly(_) => {}
    }
}

/// Parses a body of any depth (serde_json stops at 128 levels by default).
fn parse_json(bytes: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = Value::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// `x.lua` / `x.rhai` → `x.<ext>`, `fixtures/lua` / `fixtures/rhai` → `fixtures/<lang>`,
/// `../lua/` / `../rhai/` → `../<lang>/`.
fn normalise_file_names(text: &str) -> String {
    text.replace("fixtures/lua", "fixtures/<lang>")
        .replace("fixtures/rhai", "fixtures/<lang>")
        .replace("../lua/", "../<lang>/")
        .replace("../rhai/", "../<lang>/")
        .replace(".lua", ".<ext>")
        .replace(".rhai", ".<ext>")
}

fn abbreviate(text: &str) -> String {
    if text.len() <= 2000 {
        text.to_owned()
    } else {
        let head: String = text.chars().take(1000).collect();
        format!("{head}... ({} bytes)", text.len())
    }
}

/// Values that change from run to run: the JSON value after each of these keys.
const VOLATILE_KEYS: [&str; 3] = ["deadline_ms", "remaining_ms", "lambda-runtime-deadline-ms"];

/// Replaces request ids (UUIDs) with `[uuid]` and the value of each [`VOLATILE_KEYS`]
/// member with `[redacted]` (keeping the quotes of a string, so the type still shows).
fn redact(text: &str) -> String {
    let mut out = redact_uuids(text);
    for key in VOLATILE_KEYS {
        let needle = format!("\"{key}\":");
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find(&needle) {
            let (before, after) = rest.split_at(at + needle.len());
            result.push_str(before);
            let spaces = after.len() - after.trim_start_matches(' ').len();
            result.push_str(&after[..spaces]);
            let value = &after[spaces..];
            let end = if let Some(inner) = value.strip_prefix('"') {
                result.push_str("\"[redacted]\"");
                1 + inner.find('"').map_or(inner.len(), |i| i + 1)
            } else {
                result.push_str("[redacted]");
                value
                    .find(|c: char| !(c.is_ascii_digit() || "-+.eE".contains(c)))
                    .unwrap_or(value.len())
            };
            rest = &value[end..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

fn redact_uuids(text: &str) -> String {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    let is_uuid = |s: &[u8]| {
        let mut i = 0;
        for (n, len) in SHAPE.iter().enumerate() {
            if n > 0 {
                if s.get(i) != Some(&b'-') {
                    return false;
                }
                i += 1;
            }
            for _ in 0..*len {
                match s.get(i) {
                    Some(c) if c.is_ascii_hexdigit() => i += 1,
                    _ => return false,
                }
            }
        }
        true
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if is_uuid(&bytes[i..]) {
            out.push_str("[uuid]");
            i += 36;
        } else {
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..i + len]);
            i += len;
        }
    }
    out
}

/// Re-indents a JSON object or array by two spaces, keeping every token exactly as
/// lure wrote it (numbers are not re-formatted through a parser). `None` when the
/// text is not a non-empty JSON container.
fn indent_json(text: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    if !(text.starts_with('{') || text.starts_with('[')) || text.len() <= 2 {
        return None;
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut level = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(level));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    out.push(chars.next().expect("peeked"));
                } else {
                    level += 1;
                    newline(&mut out, level);
                }
            }
            '}' | ']' => {
                level -= 1;
                newline(&mut out, level);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, level);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}
