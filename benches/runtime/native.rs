//! The native floor: the least any runtime on lure's transport does per invocation.
//! Blocking `ureq` on one keep-alive connection (as lure), the event parsed into a
//! `serde_json::Value` and serialized back, no async runtime. The bench runs its own
//! executable with [`MARKER`] set to get this loop as a separate process, so lure's
//! ratios to it isolate the cost of the scripting side.

use std::process::ExitCode;

/// Set in the environment of the bench executable to make it the native runtime.
pub const MARKER: &str = "LURE_BENCH_NATIVE_FLOOR";

pub fn main() -> ExitCode {
    match echo_forever() {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("native floor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn echo_forever() -> Result<std::convert::Infallible, Box<dyn std::error::Error>> {
    let address = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    let base = format!("http://{address}/2018-06-01/runtime/invocation");
    let next = format!("{base}/next");
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build(),
    );
    loop {
        let mut invocation = agent.get(&next).call()?;
        let request_id = invocation
            .headers()
            .get("lambda-runtime-aws-request-id")
            .ok_or("no request id")?
            .to_str()?
            .to_owned();
        let body = invocation
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()?;
        let event: serde_json::Value = serde_json::from_slice(&body)?;
        let response = serde_json::to_vec(&event)?;
        let mut answer = agent
            .post(format!("{base}/{request_id}/response"))
            .header("Content-Type", "application/json")
            .send(&response[..])?;
        // Read the whole reply: only then does ureq reuse the connection.
        answer.body_mut().read_to_vec()?;
    }
}
