//! `lure test [DIR]` (SPEC 12): snapshot tests for a user's function, with no
//! Rust. Every `events/*.json` under DIR is a case, run as `lure invoke` runs it
//! (this executable again, so each case gets a fresh environment) with the
//! settings of the function in DIR's `template.yaml`; its readable snapshot is
//! `events/__snapshots__/NAME.snap`. Outcomes as Jest reports them: pass, fail
//! (with a unified diff), or new (written, except in CI).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;
use yaml_rust2::{Yaml, YamlLoader};

use crate::env_vars;

const SNAPSHOTS: &str = "__snapshots__";
/// What a snapshot says when a value was replaced (volatile, or `--redact`).
const REDACTED: &str = "<redacted>";

pub struct TestOptions {
    pub dir: PathBuf,
    pub handler: Option<String>,
    pub update: bool,
    /// `--ci` (or `CI` set): a new case fails and nothing is written.
    pub ci: bool,
    pub junit: Option<PathBuf>,
    /// JSONPaths of result values to replace.
    pub redact: Vec<String>,
}

/// The function's settings, from its SAM or CloudFormation template.
#[derive(Debug, Default, PartialEq)]
struct Function {
    name: String,
    handler: Option<String>,
    timeout: Option<f64>,
    memory_mb: Option<i64>,
    env: Vec<(String, String)>,
}

/// How one case ended.
enum Outcome {
    Passed,
    Failed {
        diff: String,
    },
    Written {
        updated: bool,
    },
    /// A new case under `--ci`: nothing written.
    Missing,
}

struct Case {
    /// `events/NAME.json`, relative to DIR.
    name: String,
    outcome: Outcome,
    time: Duration,
}

/// Runs every case; returns the exit code (0: nothing failed).
pub fn run(options: &TestOptions) -> Result<u8, String> {
    let dir = &options.dir;
    let function = function_settings(dir, options.handler.as_deref())?;
    let handler = options
        .handler
        .clone()
        .or_else(|| function.handler.clone())
        .ok_or_else(|| {
            format!(
                "no handler: pass --handler FILE.handler, or put the function in {}",
                dir.join("template.yaml").display()
            )
        })?;
    let events = dir.join("events");
    let cases = cases(dir)?;
    let mut redact = options.redact.clone();
    redact.extend(configured_redactions(&events.join(SNAPSHOTS))?);

    // Each case is a process of its own: run as many at once as there are CPUs,
    // and report them in order.
    let texts = run_all(dir, &handler, &function, &cases, &redact);
    let mut results = Vec::new();
    let mut out = String::new();
    for (path, (text, time)) in cases.iter().zip(texts) {
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        let name = format!("events/{stem}.json");
        let snapshot = events.join(SNAPSHOTS).join(format!("{stem}.snap"));
        let text = text?;
        let outcome = judge(&snapshot, &text, options)?;
        match &outcome {
            Outcome::Passed => writeln!(out, "PASS  {name}"),
            Outcome::Failed { diff } => writeln!(out, "FAIL  {name}\n{diff}"),
            Outcome::Written { updated: false } => writeln!(out, "NEW   {name} (snapshot written)"),
            Outcome::Written { updated: true } => writeln!(out, "UPDATED {name} (snapshot rewritten)"),
            Outcome::Missing => writeln!(
                out,
                "FAIL  {name}: no snapshot, and none is written in CI (run `lure test` and commit {})",
                snapshot.strip_prefix(dir).unwrap_or(&snapshot).display()
            ),
        }
        .expect("writing to a String");
        results.push(Case {
            name,
            outcome,
            time,
        });
    }
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|c| f(&c.outcome)).count();
    let passed = count(|o| matches!(o, Outcome::Passed));
    let failed = count(|o| matches!(o, Outcome::Failed { .. } | Outcome::Missing));
    let written = count(|o| matches!(o, Outcome::Written { .. }));
    print!("{out}");
    println!("{passed} passed, {failed} failed, {written} written");
    if let Some(path) = &options.junit {
        std::fs::write(path, junit(&results))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(u8::from(failed > 0))
}

/// Writes the snapshot of every case of `dir` (`lure init`'s, for a new
/// function whose `lure test` passes at once); returns the snapshots written.
pub fn record(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let function = function_settings(dir, None)?;
    let handler = function
        .handler
        .clone()
        .ok_or_else(|| "the template names no handler".to_owned())?;
    let events = dir.join("events");
    let cases = cases(dir)?;
    let mut written = Vec::new();
    for (case, (text, _)) in cases
        .iter()
        .zip(run_all(dir, &handler, &function, &cases, &[]))
    {
        let stem = case.file_stem().unwrap_or_default().to_string_lossy();
        let snapshot = events.join(SNAPSHOTS).join(format!("{stem}.snap"));
        let text = text?;
        std::fs::create_dir_all(events.join(SNAPSHOTS))
            .and_then(|()| std::fs::write(&snapshot, text))
            .map_err(|e| format!("cannot write {}: {e}", snapshot.display()))?;
        written.push(snapshot);
    }
    Ok(written)
}

/// `dir/events/*.json`, in order; an error when there are none.
fn cases(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let events = dir.join("events");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&events)
        .map_err(|e| format!("no events to test in {}: {e}", events.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    if cases.is_empty() {
        return Err(format!("no events/*.json in {}", dir.display()));
    }
    Ok(cases)
}

fn run_all(
    dir: &Path,
    handler: &str,
    function: &Function,
    cases: &[PathBuf],
    redact: &[String],
) -> Vec<(Result<String, String>, Duration)> {
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut results = Vec::with_capacity(cases.len());
    for batch in cases.chunks(parallel) {
        std::thread::scope(|scope| {
            let running: Vec<_> = batch
                .iter()
                .map(|case| {
                    scope.spawn(move || {
                        let started = Instant::now();
                        let text = run_case(dir, handler, function, case, redact);
                        (text, started.elapsed())
                    })
                })
                .collect();
            for case in running {
                results.push(case.join().unwrap_or_else(|_| {
                    (Err("the case's thread panicked".to_owned()), Duration::ZERO)
                }));
            }
        });
    }
    results
}

/// Runs one case as `lure invoke` and returns its snapshot text.
fn run_case(
    dir: &Path,
    handler: &str,
    function: &Function,
    case: &Path,
    redact: &[String],
) -> Result<String, String> {
    let stem = case
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let request_id = request_id_for(&stem);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find lure itself: {e}"))?;
    let mut command = Command::new(exe);
    command
        .arg("invoke")
        .arg(handler)
        .arg("--task-root")
        .arg(dir)
        .arg("--event")
        .arg(case)
        .args(["--request-id", &request_id])
        .arg("--timeout")
        .arg(function.timeout.unwrap_or(3.0).to_string())
        .env(env_vars::FUNCTION_NAME, &function.name)
        .env(env_vars::FUNCTION_VERSION, "$LATEST")
        .env(
            env_vars::FUNCTION_MEMORY_SIZE,
            function.memory_mb.unwrap_or(128).to_string(),
        )
        .env(
            env_vars::LOG_GROUP_NAME,
            format!("/aws/lambda/{}", function.name),
        )
        .env(env_vars::LOG_STREAM_NAME, "2024/01/01/[$LATEST]lure-test")
        .envs(function.env.iter().map(|(k, v)| (k, v)));
    let output = command
        .output()
        .map_err(|e| format!("cannot run {}: {e}", case.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut text = format!(
        "# lure test snapshot of events/{stem}.json with {handler}\n\
         # (`lure test` compares against it; `lure test --update` rewrites it)\n\n"
    );
    match output.status.code() {
        Some(0) => {
            text.push_str("result:\n");
            text.push_str(&shown_result(&stdout, redact));
        }
        code => {
            let error: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
            let field = |name: &str| error[name].as_str().unwrap_or("").to_owned();
            let what = if code == Some(2) {
                "init error"
            } else {
                "error"
            };
            let _ = write!(
                text,
                "{what}:\nerrorType: {}\nerrorMessage: {}\n",
                field("errorType"),
                stable(&field("errorMessage"))
            );
        }
    }
    text.push_str("\nlog:\n");
    for line in stderr.lines() {
        text.push_str(&stable_log_line(line));
        text.push('\n');
    }
    Ok(text)
}

/// A UUID-shaped request id made of the case's name: the same on every run.
fn request_id_for(case: &str) -> String {
    let hex = crate::stdlib::hex::encode(&sha2::Sha256::digest(case.as_bytes()));
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The result as pretty JSON (keys sorted), redacted; raw text if not JSON.
fn shown_result(stdout: &str, redact: &[String]) -> String {
    match serde_json::from_str::<Value>(stdout) {
        Ok(mut value) => {
            for path in redact {
                redact_path(&mut value, path);
            }
            serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
        }
        // A streamed or non-JSON body, as it came.
        Err(_) => format!("{stdout}\n"),
    }
}

/// Replaces the values at `path` (`$.a.b`, `$.items[0]`, `$.items[*].id`,
/// `$['a key']`) with [`REDACTED`].
fn redact_path(value: &mut Value, path: &str) {
    enum Step {
        Key(String),
        Index(usize),
        All,
    }
    let mut steps = Vec::new();
    let mut rest = path.strip_prefix('$').unwrap_or(path);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            steps.push(Step::Key(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else { return };
            let inner = &after[..end];
            steps.push(if inner == "*" {
                Step::All
            } else if let Ok(i) = inner.parse() {
                Step::Index(i)
            } else {
                Step::Key(inner.trim_matches(['\'', '"']).to_owned())
            });
            rest = &after[end + 1..];
        } else {
            return; // not a path this understands: nothing is replaced
        }
    }
    fn walk(value: &mut Value, steps: &[Step]) {
        let Some((step, rest)) = steps.split_first() else {
            *value = Value::from(REDACTED);
            return;
        };
        match (step, value) {
            (Step::Key(key), Value::Object(map)) => {
                if let Some(v) = map.get_mut(key) {
                    walk(v, rest);
                }
            }
            (Step::Index(i), Value::Array(items)) => {
                if let Some(v) = items.get_mut(*i) {
                    walk(v, rest);
                }
            }
            (Step::All, Value::Array(items)) => items.iter_mut().for_each(|v| walk(v, rest)),
            (Step::All, Value::Object(map)) => map.values_mut().for_each(|v| walk(v, rest)),
            _ => {}
        }
    }
    walk(value, &steps);
}

/// A log line with what changes from run to run replaced: timestamps, and the
/// REPORT line's durations and memory.
fn stable_log_line(line: &str) -> String {
    if line.starts_with("REPORT RequestId: ") {
        return line
            .split('\t')
            .map(|field| {
                for name in [
                    "Duration: ",
                    "Billed Duration: ",
                    "Init Duration: ",
                    "Max Memory Used: ",
                ] {
                    if field.starts_with(name) {
                        return format!("{name}{REDACTED}");
                    }
                }
                field.to_owned()
            })
            .collect::<Vec<_>>()
            .join("\t");
    }
    stable(line)
}

/// `text` with ISO 8601 timestamps (`2024-05-01T12:00:00.123Z`) and the time a
/// timed-out invocation ran (`Task timed out after 0.95 seconds`) replaced.
fn stable(text: &str) -> String {
    const TIMED_OUT: &str = "timed out after ";
    let text = match text.find(TIMED_OUT) {
        Some(at) => {
            let from = at + TIMED_OUT.len();
            let len = text[from..]
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(text.len() - from);
            format!("{}{REDACTED}{}", &text[..from], &text[from + len..])
        }
        None => text.to_owned(),
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(len) = timestamp_at(&bytes[i..]) {
            out.push_str("<timestamp>");
            i += len;
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The length of a `YYYY-MM-DDTHH:MM:SS[.fff]Z` at the start of `b`.
fn timestamp_at(b: &[u8]) -> Option<usize> {
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return None;
    }
    let mut len = 19;
    if at(len, b'.') {
        len += 1;
        while b.get(len).is_some_and(u8::is_ascii_digit) {
            len += 1;
        }
    }
    at(len, b'Z').then_some(len + 1)
}

/// Compares with the snapshot on disk, writing it when new (or with `--update`).
fn judge(snapshot: &Path, text: &str, options: &TestOptions) -> Result<Outcome, String> {
    let write = || {
        std::fs::create_dir_all(snapshot.parent().expect("under events/"))
            .and_then(|()| std::fs::write(snapshot, text))
            .map_err(|e| format!("cannot write {}: {e}", snapshot.display()))
    };
    match std::fs::read_to_string(snapshot) {
        Ok(old) if old == text => Ok(Outcome::Passed),
        Ok(_) if options.update && !options.ci => {
            write().map(|()| Outcome::Written { updated: true })
        }
        Ok(old) => Ok(Outcome::Failed {
            diff: similar::TextDiff::from_lines(old.as_str(), text)
                .unified_diff()
                .context_radius(3)
                .header("snapshot", "now")
                .to_string(),
        }),
        Err(_) if options.ci => Ok(Outcome::Missing),
        Err(_) => write().map(|()| Outcome::Written { updated: false }),
    }
}

/// `redact` of the snapshot folder's `lure-test.json`.
fn configured_redactions(snapshots: &Path) -> Result<Vec<String>, String> {
    let path = snapshots.join("lure-test.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let config: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    Ok(config["redact"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect())
}

/// The function of `dir/template.yaml` (SAM or CloudFormation): the one there is,
/// or the one whose handler is `handler`. No template: no settings.
fn function_settings(dir: &Path, handler: Option<&str>) -> Result<Function, String> {
    let path = dir.join("template.yaml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Function {
            name: "lure-test".into(),
            ..Function::default()
        });
    };
    let docs = YamlLoader::load_from_str(&text)
        .map_err(|e| format!("{}: not YAML: {e}", path.display()))?;
    let template = docs.first().cloned().unwrap_or(Yaml::Null);
    let globals = &template["Globals"]["Function"];
    let mut functions: Vec<Function> = template["Resources"]
        .as_hash()
        .into_iter()
        .flatten()
        .filter(|(_, r)| {
            matches!(
                r["Type"].as_str(),
                Some("AWS::Serverless::Function" | "AWS::Lambda::Function")
            )
        })
        .map(|(name, resource)| {
            let props = &resource["Properties"];
            let pick = |key: &str| {
                let own = &props[key];
                if own.is_badvalue() {
                    globals[key].clone()
                } else {
                    own.clone()
                }
            };
            let mut env: Vec<(String, String)> = Vec::new();
            for source in [
                &globals["Environment"]["Variables"],
                &props["Environment"]["Variables"],
            ] {
                for (k, v) in source.as_hash().into_iter().flatten() {
                    let (Some(k), Some(v)) = (k.as_str(), scalar(v)) else {
                        continue;
                    };
                    env.retain(|(name, _)| name != k);
                    env.push((k.to_owned(), v));
                }
            }
            Function {
                name: name.as_str().unwrap_or("function").to_owned(),
                handler: pick("Handler").as_str().map(str::to_owned),
                timeout: match pick("Timeout") {
                    Yaml::Integer(n) => Some(n as f64),
                    Yaml::Real(r) => r.parse().ok(),
                    _ => None,
                },
                memory_mb: pick("MemorySize").as_i64(),
                env,
            }
        })
        .collect();
    if let Some(handler) = handler {
        functions.retain(|f| f.handler.as_deref() == Some(handler));
    }
    match functions.len() {
        0 if handler.is_some() => Ok(Function {
            name: "lure-test".into(),
            ..Function::default()
        }),
        0 => Err(format!(
            "{} has no function: pass --handler",
            path.display()
        )),
        1 => Ok(functions.remove(0)),
        n => Err(format!(
            "{} has {n} functions: pass --handler to say which to test",
            path.display()
        )),
    }
}

/// A variable's value as text (CloudFormation functions such as `!Ref X` come
/// as their argument's text: there is no stack to resolve them against).
fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(n) => Some(n.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// JUnit XML: one `testcase` per case, a failure's diff as its text.
fn junit(cases: &[Case]) -> String {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed { .. } | Outcome::Missing))
        .count();
    let total: f64 = cases.iter().map(|c| c.time.as_secs_f64()).sum();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"lure test\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">\n  <testsuite name=\"lure test\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{total:.3}\">\n",
        cases.len(),
        cases.len()
    );
    for case in cases {
        let _ = write!(
            xml,
            "    <testcase classname=\"lure test\" name=\"{}\" time=\"{:.3}\"",
            escape(&case.name),
            case.time.as_secs_f64()
        );
        match &case.outcome {
            Outcome::Failed { diff } => {
                let _ = write!(
                    xml,
                    ">\n      <failure message=\"the result differs from its snapshot\">{}</failure>\n    </testcase>\n",
                    escape(diff)
                );
            }
            Outcome::Missing => {
                xml.push_str(">\n      <failure message=\"no snapshot (none is written in CI)\"/>\n    </testcase>\n");
            }
            _ => xml.push_str("/>\n"),
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no place for other control characters.
            c if c < ' ' && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volatile_parts_of_the_log_are_replaced() {
        let id = request_id_for("hello");
        assert_eq!(id, request_id_for("hello"));
        assert_eq!(id.len(), 36);
        assert_eq!(
            stable_log_line("2024-05-01T12:00:00.123Z\tid\tINFO\tat 2024-05-01T12:00:00Z"),
            "<timestamp>\tid\tINFO\tat <timestamp>"
        );
        assert_eq!(
            stable("{\"errorMessage\":\"Task timed out after 0.95 seconds\"}"),
            "{\"errorMessage\":\"Task timed out after <redacted> seconds\"}"
        );
        assert_eq!(
            stable_log_line(
                "REPORT RequestId: x\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB\tInit Duration: 3.10 ms"
            ),
            "REPORT RequestId: x\tDuration: <redacted>\tBilled Duration: <redacted>\tMemory Size: 128 MB\tMax Memory Used: <redacted>\tInit Duration: <redacted>"
        );
    }

    #[test]
    fn json_paths_redact_values() {
        let mut value = json!({ "a": { "b": 1 }, "items": [{ "id": 1 }, { "id": 2 }], "k y": 3 });
        for path in ["$.a.b", "$.items[*].id", "$['k y']", "$.missing.x"] {
            redact_path(&mut value, path);
        }
        assert_eq!(
            value,
            json!({ "a": { "b": REDACTED }, "items": [{ "id": REDACTED }, { "id": REDACTED }], "k y": REDACTED })
        );
    }

    #[test]
    fn settings_come_from_the_template_and_its_globals() {
        let dir = std::env::temp_dir().join(format!("lure-test-template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("template.yaml"),
            "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    Timeout: 7\n    Environment:\n      Variables:\n        A: global\n        B: global\nResources:\n  Api:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: app.handler\n      MemorySize: 256\n      Layers:\n        - !Ref LureLayerArn\n      Environment:\n        Variables:\n          B: own\n          TABLE: !Ref Table\n",
        )
        .unwrap();
        let function = function_settings(&dir, None).unwrap();
        assert_eq!(
            function,
            Function {
                name: "Api".into(),
                handler: Some("app.handler".into()),
                timeout: Some(7.0),
                memory_mb: Some(256),
                env: vec![
                    ("A".into(), "global".into()),
                    ("B".into(), "own".into()),
                    ("TABLE".into(), "Table".into()),
                ],
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn junit_names_each_case_and_its_failure() {
        let cases = [
            Case {
                name: "events/a.json".into(),
                outcome: Outcome::Passed,
                time: Duration::ZERO,
            },
            Case {
                name: "events/b.json".into(),
                outcome: Outcome::Failed {
                    diff: "-x <1>\n+y & z\n".into(),
                },
                time: Duration::ZERO,
            },
        ];
        let xml = junit(&cases);
        assert!(xml.contains("tests=\"2\" failures=\"1\""));
        assert!(xml.contains("-x &lt;1&gt;\n+y &amp; z"));
    }
}
