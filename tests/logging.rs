//! Logs look and filter like the official runtimes' (SPEC §7): every format × level ×
//! language through `lure invoke`, and the telemetry descriptor's framing through
//! the real runtime loop.

mod support;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use support::{Invocation, Scenario};

const LEVEL_SETTINGS: &[Option<&str>] = &[
    None,
    Some("TRACE"),
    Some("DEBUG"),
    Some("INFO"),
    Some("WARN"),
    Some("ERROR"),
    Some("FATAL"),
    Some("verbose"), // invalid: as if unset
];

fn task_root(language: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/logging/{language}"))
}

/// Runs `lure invoke HANDLER` and returns its stderr (the logs), checking that
/// JSON-format records are one JSON object per line.
fn invoke_logs(language: &str, handler: &str, env: &[(&str, &str)]) -> String {
    let logs = invoke_logs_raw(language, handler, env);
    if env.contains(&("AWS_LAMBDA_LOG_FORMAT", "JSON")) {
        for line in logs.lines().filter(|l| !l.starts_with("REPORT ")) {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line)
                .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        }
    }
    logs
}

fn invoke_logs_raw(language: &str, handler: &str, env: &[(&str, &str)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_lure"))
        .args(["invoke", handler, "--task-root"])
        .arg(task_root(language))
        .env_remove("AWS_LAMBDA_LOG_FORMAT")
        .env_remove("AWS_LAMBDA_LOG_LEVEL")
        .envs(env.iter().copied())
        .output()
        .expect("run lure invoke");
    String::from_utf8(output.stderr).expect("logs are UTF-8")
}

/// Replaces what changes from run to run, and the stack trace, whose frames
/// legitimately differ between the languages.
fn redact(logs: &str) -> String {
    let patterns = [
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "[TIMESTAMP]"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[REQUEST_ID]",
        ),
        (r"(?m)^REPORT .*$", "REPORT [..]"),
        (r#""stackTrace":\[[^\]]*\]"#, r#""stackTrace":[..]"#),
    ];
    // Text records carry a multi-line message's newlines as CR: show them.
    let mut text = logs.replace('\r', "\\r");
    for (pattern, replacement) in patterns {
        text = regex_replace(&text, pattern, replacement);
    }
    text
}

fn regex_replace(text: &str, pattern: &str, replacement: &str) -> String {
    let re = regex::Regex::new(pattern).expect("valid pattern");
    re.replace_all(text, replacement).into_owned()
}

/// Every level setting for one language and format, as one readable document.
fn log_matrix(language: &str, format: &str) -> String {
    let mut doc = String::new();
    for level in LEVEL_SETTINGS {
        let mut env = vec![("AWS_LAMBDA_LOG_FORMAT", format)];
        if let Some(level) = level {
            env.push(("AWS_LAMBDA_LOG_LEVEL", level));
        }
        doc.push_str(&format!(
            "== AWS_LAMBDA_LOG_LEVEL={}\n",
            level.unwrap_or("(unset)")
        ));
        doc.push_str(&redact(&invoke_logs(language, "logging.handler", &env)));
    }
    doc.push_str("== a handler error\n");
    doc.push_str(&redact(&invoke_logs(
        language,
        "logging.fail",
        &[("AWS_LAMBDA_LOG_FORMAT", format)],
    )));
    doc
}

#[test]
fn text_format_at_every_level() {
    let lua = log_matrix("lua", "Text");
    insta::assert_snapshot!("text", lua);
    assert_eq!(
        lua,
        log_matrix("rhai", "Text"),
        "Lua and Rhai log differently"
    );
}

#[test]
fn json_format_at_every_level() {
    let lua = log_matrix("lua", "JSON");
    insta::assert_snapshot!("json", lua);
    assert_eq!(
        lua,
        log_matrix("rhai", "JSON"),
        "Lua and Rhai log differently"
    );
}

/// One record read back from the telemetry descriptor.
#[derive(Debug)]
struct Frame {
    kind: u32,
    timestamp_us: u64,
    payload: String,
}

fn decode_frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 16, "truncated frame header: {bytes:?}");
        let kind = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
        let len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let timestamp_us = u64::from_be_bytes(bytes[8..16].try_into().unwrap());
        let payload = &bytes[16..16 + len];
        frames.push(Frame {
            kind,
            timestamp_us,
            payload: String::from_utf8(payload.to_vec()).expect("UTF-8 payload"),
        });
        bytes = &bytes[16 + len..];
    }
    frames
}

fn telemetry_frames(format: &str) -> (Vec<Frame>, String, (u64, u64)) {
    let mut s = Scenario::new(&format!("telemetry_{format}"));
    s.write(
        "app.lua",
        r#"
        local M = {}
        function M.handler(event, context)
          log.info("first line\nsecond line", { k = "v" })
          log.debug("debug")
          log.error("bad")
          return { fd = os.getenv("_LAMBDA_TELEMETRY_LOG_FD") or json.null }
        end
        return M
        "#,
    );
    let sink_path = s.scratch.path().join("telemetry.bin");
    let sink = File::create(&sink_path).expect("create the telemetry file");
    let fd = sink.as_raw_fd();
    let start = now_us();
    s.start_with(
        "app.handler",
        &[
            ("_LAMBDA_TELEMETRY_LOG_FD", "3"),
            ("AWS_LAMBDA_LOG_FORMAT", format),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        ],
        move |cmd| {
            // SAFETY: only async-signal-safe dup2 between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(fd, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
    );
    let post = s.answer(Invocation::new("req-1", "{}"));
    let end = now_us();
    let frames = decode_frames(&std::fs::read(&sink_path).expect("read the telemetry file"));
    (frames, post.text().to_owned(), (start, end))
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[test]
fn telemetry_descriptor_gets_framed_text_records() {
    let (frames, body, (start, end)) = telemetry_frames("Text");
    assert_eq!(
        body, r#"{"fd":null}"#,
        "the variable is hidden from scripts"
    );
    let kinds: Vec<u32> = frames.iter().map(|f| f.kind).collect();
    // Text type 0xA55A0003 OR'd with the level mask: INFO 0b01100, ERROR 0b10100.
    assert_eq!(kinds, [0xA55A_000F, 0xA55A_0017], "{frames:#?}");
    for frame in &frames {
        assert!(
            (start..=end).contains(&frame.timestamp_us),
            "timestamp {} outside the test's run {start}..{end}",
            frame.timestamp_us
        );
    }
    // The multi-line message stays one record, its newline intact.
    let first = &frames[0].payload;
    assert!(
        first.ends_with("\treq-1\tINFO\tfirst line\nsecond line\t{\"k\":\"v\"}"),
        "{first:?}"
    );
    assert!(frames[1].payload.ends_with("\treq-1\tERROR\tbad"));
}

#[test]
fn telemetry_descriptor_gets_framed_json_records() {
    let (frames, _, _) = telemetry_frames("JSON");
    let kinds: Vec<u32> = frames.iter().map(|f| f.kind).collect();
    // JSON type 0xA55A0002 OR'd with the level mask.
    assert_eq!(kinds, [0xA55A_000E, 0xA55A_0016], "{frames:#?}");
    let record: serde_json::Value = serde_json::from_str(&frames[0].payload).unwrap();
    assert_eq!(record["message"], "first line\nsecond line");
    assert_eq!(record["level"], "INFO");
    assert_eq!(record["requestId"], "req-1");
    assert_eq!(record["k"], "v");
}

/// `lure invoke` prints the response alone on stdout: what a script writes to
/// stdout itself (Lua's `io.write`, `io.stdout:write`) goes with the logs.
#[test]
fn invoke_keeps_stdout_for_the_response_lua() {
    let scratch = support::Scratch::new("invoke_stdout");
    scratch.write(
        "h.lua",
        "function main() io.write('written ') io.stdout:write('to stdout\\n') \
         io.stdout:flush() io.write('unflushed') return { ok = true } end",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_lure"))
        .args(["invoke", "h.main", "--task-root"])
        .arg(scratch.task_root())
        .output()
        .expect("run lure invoke");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "{\"ok\":true}");
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("written to stdout\n"), "{logs}");
    let unflushed = logs.find("unflushed").expect("written before the REPORT");
    assert!(unflushed < logs.find("REPORT").expect("REPORT"), "{logs}");
}
