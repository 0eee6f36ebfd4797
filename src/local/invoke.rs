//! `lure invoke`: init and one invocation in-process, through the same code as
//! the Lambda loop; stdout carries exactly the body that would be POSTed.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::context::{FunctionInfo, epoch_ms, header};
use crate::lambda::runtime::{self, handle};
use crate::lambda::runtime_api::{Invocation, check_response_size};
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
    let init_started = Instant::now();
    let mut engine = match runtime::init(options.handler, options.task_root) {
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
    let outcome = handle(engine.as_mut(), &info, &invocation)
        .and_then(|body| check_response_size(body.len()).map(|()| body));
    let duration = started.elapsed();
    log::write_raw(
        format!(
            "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tInit Duration: {:.2} ms\n",
            duration.as_secs_f64() * 1000.0,
            duration.as_micros().div_ceil(1000).max(1),
            info.memory_limit_in_mb,
            init_duration.as_secs_f64() * 1000.0,
        )
        .as_bytes(),
    );
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

/// A random UUID v4, as Lambda's request ids are.
fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
