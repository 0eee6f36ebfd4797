//! Command line: parse arguments, call into the library, exit with a clear code.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::env_vars;
use crate::lambda::runtime::{self, Exit};
use crate::lambda::runtime_api::RuntimeApi;
use crate::local::init::{self, InitOptions};
use crate::local::invoke::{self, InvokeOptions, exit_code};
use crate::local::serve::{self, ServeOptions};
use crate::local::test::{self as snapshot_test, TestOptions};
use crate::local::types;
use crate::log;

const HELP: &str = "\
lure — AWS Lambda runtime for Lua and Rhai handlers

USAGE:
    lure                          run the Lambda runtime loop (needs AWS_LAMBDA_RUNTIME_API)
    lure invoke HANDLER [OPTIONS] run one invocation locally
    lure serve HANDLER [OPTIONS]  a local Lambda: the Invoke API on http://127.0.0.1:9000
    lure types DIR                write the stdlib's editor definitions (Lua, Rhai) into DIR
    lure init [DIR] [OPTIONS]     start a function in DIR (default: .)
    lure test [DIR] [OPTIONS]     snapshot-test the function in DIR on each events/*.json
    lure help                     print this help

HANDLER:
    hello.lua, jobs/nightly.rhai  a script; its `main` is the handler
    app.handler, src/app.handler  function `handler` of app.lua or app.rhai

INVOKE OPTIONS:
    --event FILE|-       the event JSON (default: {}); - reads stdin
    --task-root DIR      where handlers are resolved (default: .)
    --timeout SECONDS    the function timeout (default: 3, as Lambda's)
    --request-id ID      the invocation's request id (default: a random UUID)

SERVE OPTIONS:
    --task-root DIR      where handlers are resolved (default: .)
    --host ADDRESS       the address to listen on (default: 127.0.0.1)
    --port PORT          the port to listen on (default: 9000; 0 picks a free one)
    --timeout SECONDS    the function timeout (default: 3)
    --memory MB          the function's memory size, 128 to 10240 (default: 128)
    --concurrency N      invocations at once, as on Lambda Managed Instances: the
                         function runs N workers (default: 1)

TEST OPTIONS:
    --handler FILE.handler   the handler (default: the one of DIR/template.yaml)
    --update             rewrite the snapshots that differ
    --ci                 write nothing: a case without a snapshot fails (also when CI is set)
    --junit FILE         write the results as JUnit XML
    --redact JSONPATH    replace a value of each result (e.g. $.id); repeatable

INIT OPTIONS:
    --lang lua|rhai      the handler's language (default: lua)
    --template NAME      hello, api, sqs, s3, schedule or stream (default: hello)
    --force              write into a folder that is not empty

    -h, --help           print this help
    -V, --version        print the version

`lure invoke` prints the response body on stdout, logs and a REPORT line on
stderr, and exits 0 on success, 1 on a handler error, 2 on an init or usage error.

`lure serve` answers POST /2015-03-31/functions/{name}/invocations (curl, the AWS
CLI and SDKs with --endpoint-url) by running the handler in a child `lure`, as on
Lambda; it prints the function's logs with START, END and REPORT lines on stderr and
starts a fresh environment when a file under the task root changes.

ENVIRONMENT (as Lambda sets it; locally, set what your function needs):
    AWS_LAMBDA_RUNTIME_API        the Runtime API (host:port); set, `lure` runs the loop
    _HANDLER, LAMBDA_TASK_ROOT    the handler and the folder of the function's code
    AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE
                                  the memory size in MB; scripts get it less 24 MB
    AWS_LAMBDA_MAX_CONCURRENCY    Managed Instances: run that many workers
    AWS_LAMBDA_LOG_FORMAT         Text (default) or JSON log records
    AWS_LAMBDA_LOG_LEVEL          the least level logged (TRACE ... FATAL)
    AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
    AWS_PROFILE, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>
                                  the `aws` module's region, credentials and endpoints
    HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY
                                  the `http` module's proxies (never the Runtime API's)
    LURE_EXTRA_CA_CERTS           a PEM file of CAs `http` trusts besides the web PKI's
";

enum Command {
    Runtime,
    Invoke {
        handler: String,
        task_root: PathBuf,
        event: Option<OsString>,
        timeout: Duration,
        request_id: Option<String>,
    },
    Serve(ServeOptions),
    Types(PathBuf),
    Init(InitOptions),
    Test(TestOptions),
    Help,
    Version,
}

pub fn main() -> ExitCode {
    let runs_as_bootstrap = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n == "bootstrap"))
        .unwrap_or(false);
    let command = if runs_as_bootstrap {
        Ok(Command::Runtime)
    } else {
        parse(std::env::args_os().skip(1))
    };
    match command {
        Ok(Command::Help) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("lure {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Command::Runtime) => run_runtime(),
        Ok(Command::Invoke {
            handler,
            task_root,
            event,
            timeout,
            request_id,
        }) => {
            let event = match read_event(event.as_deref()) {
                Ok(event) => event,
                Err(message) => return usage_error(&message),
            };
            ExitCode::from(invoke::invoke(InvokeOptions {
                handler: &handler,
                task_root: &task_root,
                event,
                timeout,
                request_id,
            }))
        }
        Ok(Command::Serve(options)) => ExitCode::from(serve::serve(options)),
        Ok(Command::Test(options)) => match snapshot_test::run(&options) {
            Ok(code) => ExitCode::from(code),
            Err(message) => {
                eprintln!("lure test: {message}");
                ExitCode::from(exit_code::INIT_ERROR_OR_USAGE)
            }
        },
        Ok(Command::Init(options)) => match init::init(&options) {
            Ok(made) => {
                println!(
                    "A lure function ({} template) in {}:",
                    options.template.name,
                    options.dir.display()
                );
                for file in made
                    .files
                    .iter()
                    .filter(|f| !f.starts_with(options.dir.join(".lure")))
                {
                    println!("    {}", file.display());
                }
                println!(
                    "    {} (editor definitions)",
                    options.dir.join(".lure/types").display()
                );
                println!("\nhandler: {}", made.handler);
                println!(
                    "run it:  lure invoke {} --task-root {} --event {}",
                    made.handler,
                    options.dir.display(),
                    made.event.display()
                );
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("lure init: {message}");
                ExitCode::from(exit_code::INIT_ERROR_OR_USAGE)
            }
        },
        Ok(Command::Types(dir)) => match types::write(&dir) {
            Ok(files) => {
                for file in files {
                    println!("{}", file.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "lure: cannot write the definitions into {}: {e}",
                    dir.display()
                );
                ExitCode::FAILURE
            }
        },
        Err(message) => usage_error(&message),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("lure: {message}\n\nRun `lure --help` for usage.");
    ExitCode::from(exit_code::INIT_ERROR_OR_USAGE)
}

fn parse(args: impl Iterator<Item = OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let Some(first) = parser.next().map_err(|e| e.to_string())? else {
        return if std::env::var_os(env_vars::RUNTIME_API).is_some() {
            Ok(Command::Runtime)
        } else {
            Err(format!(
                "{} is not set: not running on Lambda. To run a handler locally use `lure invoke HANDLER` or `lure serve HANDLER`.",
                env_vars::RUNTIME_API
            ))
        };
    };
    match first {
        Short('h') | Long("help") => Ok(Command::Help),
        Value(cmd) if cmd == "help" => Ok(Command::Help),
        Short('V') | Long("version") => Ok(Command::Version),
        Value(cmd) if cmd == "invoke" => {
            let mut handler = None;
            let mut task_root = PathBuf::from(".");
            let mut event = None;
            let mut timeout = Duration::from_secs(3);
            let mut request_id = None;
            while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
                match arg {
                    Long("event") => event = Some(parser.value().map_err(|e| e.to_string())?),
                    Long("request-id") => request_id = Some(value(&mut parser)?),
                    Long("task-root") => task_root = value(&mut parser)?.into(),
                    Long("timeout") => timeout = seconds(&value(&mut parser)?)?,
                    Short('h') | Long("help") => return Ok(Command::Help),
                    Value(v) if handler.is_none() => handler = Some(handler_name(v)?),
                    other => return Err(other.unexpected().to_string()),
                }
            }
            let handler = handler.ok_or("invoke needs a HANDLER (e.g. hello.lua)")?;
            Ok(Command::Invoke {
                handler,
                task_root,
                event,
                timeout,
                request_id,
            })
        }
        Value(cmd) if cmd == "serve" => {
            let mut handler = None;
            let mut options = ServeOptions {
                handler: String::new(),
                task_root: PathBuf::from("."),
                host: "127.0.0.1".to_owned(),
                port: 9000,
                timeout: Duration::from_secs(3),
                memory_mb: 128,
                concurrency: 1,
            };
            while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
                match arg {
                    Long("task-root") => options.task_root = value(&mut parser)?.into(),
                    Long("host") => options.host = value(&mut parser)?,
                    Long("port") => {
                        let port = value(&mut parser)?;
                        options.port = port
                            .parse()
                            .map_err(|_| format!("--port takes a port number, not {port:?}"))?;
                    }
                    Long("timeout") => options.timeout = seconds(&value(&mut parser)?)?,
                    Long("memory") => {
                        let mb = value(&mut parser)?;
                        options.memory_mb = mb
                            .parse()
                            .ok()
                            .filter(|mb| (128..=10_240).contains(mb))
                            .ok_or_else(|| {
                                format!("--memory takes a size in MB from 128 to 10240, not {mb:?}")
                            })?;
                    }
                    Long("concurrency") => {
                        let n = value(&mut parser)?;
                        options.concurrency = n
                            .parse()
                            .ok()
                            .filter(|n| (1..=64).contains(n))
                            .ok_or_else(|| {
                                format!("--concurrency takes a number from 1 to 64, not {n:?}")
                            })?;
                    }
                    Short('h') | Long("help") => return Ok(Command::Help),
                    Value(v) if handler.is_none() => handler = Some(handler_name(v)?),
                    other => return Err(other.unexpected().to_string()),
                }
            }
            options.handler = handler.ok_or("serve needs a HANDLER (e.g. hello.lua)")?;
            Ok(Command::Serve(options))
        }
        Value(cmd) if cmd == "test" => {
            let ci = std::env::var("CI")
                .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
            let mut options = TestOptions {
                dir: PathBuf::from("."),
                handler: None,
                update: false,
                ci,
                junit: None,
                redact: Vec::new(),
            };
            let mut dir = None;
            while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
                match arg {
                    Long("handler") => {
                        options.handler =
                            Some(handler_name(parser.value().map_err(|e| e.to_string())?)?)
                    }
                    Long("update") => options.update = true,
                    Long("ci") => options.ci = true,
                    Long("junit") => options.junit = Some(value(&mut parser)?.into()),
                    Long("redact") => options.redact.push(value(&mut parser)?),
                    Short('h') | Long("help") => return Ok(Command::Help),
                    Value(v) if dir.is_none() => dir = Some(PathBuf::from(v)),
                    other => return Err(other.unexpected().to_string()),
                }
            }
            options.dir = dir.unwrap_or(options.dir);
            Ok(Command::Test(options))
        }
        Value(cmd) if cmd == "init" => {
            let mut options = InitOptions {
                dir: PathBuf::from("."),
                lang: init::Lang::Lua,
                template: init::find("hello").expect("the hello template"),
                force: false,
            };
            let mut dir = None;
            while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
                match arg {
                    Long("lang") => {
                        let lang = value(&mut parser)?;
                        options.lang = init::Lang::parse(&lang)
                            .ok_or_else(|| format!("--lang is lua or rhai, not {lang:?}"))?;
                    }
                    Long("template") => {
                        let name = value(&mut parser)?;
                        options.template = init::find(&name).ok_or_else(|| {
                            let names: Vec<&str> = init::TEMPLATES.iter().map(|t| t.name).collect();
                            format!("--template is one of {}, not {name:?}", names.join(", "))
                        })?;
                    }
                    Long("force") => options.force = true,
                    Short('h') | Long("help") => return Ok(Command::Help),
                    Value(v) if dir.is_none() => dir = Some(PathBuf::from(v)),
                    other => return Err(other.unexpected().to_string()),
                }
            }
            options.dir = dir.unwrap_or(options.dir);
            Ok(Command::Init(options))
        }
        Value(cmd) if cmd == "types" => {
            let mut dir = None;
            while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
                match arg {
                    Short('h') | Long("help") => return Ok(Command::Help),
                    Value(v) if dir.is_none() => dir = Some(PathBuf::from(v)),
                    other => return Err(other.unexpected().to_string()),
                }
            }
            Ok(Command::Types(dir.ok_or(
                "types needs a DIR to write into (e.g. .lure/types)",
            )?))
        }
        other => Err(other.unexpected().to_string()),
    }
}

/// An option's value as text.
fn value(parser: &mut lexopt::Parser) -> Result<String, String> {
    parser
        .value()
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|v| format!("{v:?} is not valid UTF-8"))
}

/// `--timeout`: a positive number of seconds.
fn seconds(value: &str) -> Result<Duration, String> {
    value
        .parse()
        .ok()
        .filter(|s: &f64| *s > 0.0 && s.is_finite())
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("--timeout takes a number of seconds, not {value:?}"))
}

fn handler_name(value: OsString) -> Result<String, String> {
    value
        .into_string()
        .map_err(|v| format!("the handler {v:?} is not valid UTF-8"))
}

/// The event bytes: a file, stdin (`-`), or `{}` when none is given.
fn read_event(source: Option<&std::ffi::OsStr>) -> Result<Vec<u8>, String> {
    match source {
        None => Ok(b"{}".to_vec()),
        Some(s) if s == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| format!("cannot read the event from stdin: {e}"))?;
            Ok(buf)
        }
        Some(path) => std::fs::read(path)
            .map_err(|e| format!("cannot read the event file {}: {e}", path.to_string_lossy())),
    }
}

fn run_runtime() -> ExitCode {
    log::init(log::Sink::Stdout);
    let address = std::env::var(env_vars::RUNTIME_API).unwrap_or_default();
    let api = match RuntimeApi::new(&address) {
        Ok(api) => api,
        Err(e) => {
            eprintln!("lure: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handler = std::env::var(env_vars::HANDLER).unwrap_or_default();
    let task_root = std::env::var_os(env_vars::TASK_ROOT)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let workers = std::env::var(env_vars::MAX_CONCURRENCY)
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(1);
    let exit: Exit = if workers > 1 {
        runtime::run_workers(&api, workers, &handler, &task_root)
    } else {
        runtime::run(&api, &handler, &task_root)
    };
    eprintln!("lure: {exit}");
    ExitCode::FAILURE
}
