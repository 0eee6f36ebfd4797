//! `lure invoke`: init and one invocation in-process, through the same code as
//! the Lambda loop; stdout carries exactly the body that would be POSTed.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::context::{FunctionInfo, epoch_ms, header};
use crate::lambda::runtime::{self, handle};
use crate::lambda::runtime_api::Invocation;
use crate::limits::Limits;
use crate::local::report::{Report, max_memory_used_mb, new_request_id};
use crate::log;

/// Process exit codes of `lure invoke`.
pub mod exit_code {
    pub const SUCCESS: u8 = 0;
    pub const HANDLER_ERROR: u8 = 1;
    pub const INIT_ERROR_OR_USAGE: u8 = 2;
}

pub struct InvokeOptions<'a> {
    pub handler: &'a str,
    pub task_root: &'a Path,
    pub event: Vec<u8>,
    pub timeout: Duration,
}

pub fn invoke(options: InvokeOptions<'_>) -> u8 {
    log::init(log::Sink::Stderr);
    let info = FunctionInfo::from_env();
    let limits = Limits::for_function(&info);
    let init_started = Instant::now();
    let mut engine = match runtime::init(options.handler, options.task_root, &limits) {
        Ok(engine) => engine,
        Err(diagnostic) => {
            eprintln!("lure: init failed: {diagnostic}");
            print_body(&diagnostic.to_json());
            return exit_code::INIT_ERROR_OR_USAGE;
        }
    };
    let init_duration = init_started.elapsed();

    let request_id = new_request_id();
    let deadline = epoch_ms(SystemTime::now()) + options.timeout.as_millis() as u64;
    let invocation = Invocation {
        request_id: request_id.clone(),
        headers: vec![
            (header::REQUEST_ID.into(), request_id.clone()),
            (header::DEADLINE_MS.into(), deadline.to_string()),
            (
                header::INVOKED_FUNCTION_ARN.into(),
                format!(
                    "arn:aws:lambda:us-east-1:000000000000:function:{}",
                    info.function_name
                ),
            ),
        ],
        body: options.event,
    };
    let started = Instant::now();
    let outcome = handle(engine.as_mut(), &info, &limits, &invocation);
    let duration = started.elapsed();
    let report = Report {
        request_id: &request_id,
        duration,
        memory_size_mb: info.memory_limit_in_mb,
        max_memory_used_mb: max_memory_used_mb("self"),
        init_duration: Some(init_duration),
        status: None,
    };
    log::write_raw(format!("{report}\n").as_bytes());
    match outcome {
        Ok(body) => {
            print_body(&body);
            exit_code::SUCCESS
        }
        Err(diagnostic) => {
            print_body(&diagnostic.to_json());
            exit_code::HANDLER_ERROR
        }
    }
}

fn print_body(body: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(body).and_then(|()| out.flush());
}
