//! `lure serve`: a local Lambda. The Invoke API that curl, the AWS CLI and the
//! SDKs talk to on one side; on the other, this executable started again as a
//! child process in runtime mode, fed through a Runtime API of serve's own, so the
//! function runs the very loop it runs on Lambda.
//!
//! ```text
//! caller ──POST /2015-03-31/functions/{name}/invocations──────────▶ invoke_api (main thread)
//!        ──POST /2021-11-15/functions/{name}/response-streaming-invocations──┘
//!                                                                   │ Job, in arrival order
//!                                                                   ▼
//!   child `lure` ◀──GET /next, POST /response──▶ runtime_api ──▶ dispatcher (one thread)
//! ```

mod console;
mod dispatcher;
mod event_stream;
mod execution_env;
mod function_url;
mod invoke_api;
mod runtime_api;
mod task_root;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use tiny_http::Server;

use crate::env_vars;
use dispatcher::Dispatcher;
use execution_env::Function;

pub struct ServeOptions {
    pub handler: String,
    pub task_root: PathBuf,
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
    pub memory_mb: u64,
    /// Invocations at once (Managed Instances): the function's workers.
    pub concurrency: usize,
}

/// Runs until the process is stopped; returns only if it cannot start (exit code).
pub fn serve(options: ServeOptions) -> u8 {
    const START_FAILED: u8 = 2;
    let task_root = match std::path::absolute(&options.task_root) {
        Ok(root) if root.is_dir() => root,
        _ => {
            eprintln!(
                "lure serve: the task root {} is not a directory",
                options.task_root.display()
            );
            return START_FAILED;
        }
    };
    let invoke_api = match Server::http((options.host.as_str(), options.port)) {
        Ok(server) => server,
        Err(e) => {
            eprintln!(
                "lure serve: cannot listen on {}:{}: {e}",
                options.host, options.port
            );
            return START_FAILED;
        }
    };
    // Only the function's own process talks to this one.
    let runtime_api = match TcpListener::bind("127.0.0.1:0") {
        Ok(server) => server,
        Err(e) => {
            eprintln!("lure serve: cannot open the Runtime API: {e}");
            return START_FAILED;
        }
    };
    let (Some(invoke_addr), Ok(runtime_addr)) =
        (invoke_api.server_addr().to_ip(), runtime_api.local_addr())
    else {
        eprintln!("lure serve: the servers have no IP address");
        return START_FAILED;
    };

    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let function = Function {
        handler: options.handler,
        task_root,
        timeout: options.timeout,
        memory_mb: options.memory_mb,
        concurrency: options.concurrency,
        name: var(env_vars::FUNCTION_NAME).unwrap_or_else(|| "lure-local".to_owned()),
        region: var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned()),
        runtime_api: runtime_addr.to_string(),
    };
    let workers = match function.concurrency {
        1 => String::new(),
        n => format!(", {n} workers"),
    };
    eprintln!(
        "lure serve: {} from {} ({} MB, timeout {:.2} s{workers}) at http://{invoke_addr}/2015-03-31/functions/function/invocations",
        function.handler,
        function.task_root.display(),
        function.memory_mb,
        function.timeout.as_secs_f64(),
    );

    let (messages, inbox) = mpsc::channel();
    let to_dispatcher = messages.clone();
    std::thread::spawn(move || runtime_api::run(runtime_api, to_dispatcher));
    let site = invoke_api::Site {
        own_hosts: vec![options.host.clone(), invoke_addr.ip().to_string()],
        function_name: function.name.clone(),
        region: function.region.clone(),
        console: console::Console {
            task_root: function.task_root.clone(),
            handler: function.handler.clone(),
            port: invoke_addr.port(),
        },
    };
    std::thread::spawn(move || Dispatcher::new(function).run(inbox));
    invoke_api::run(&invoke_api, &messages, &site);
    0
}
