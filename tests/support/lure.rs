//! The real `lure` binary as a child process, with a clean, explicit environment.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Environment Lambda always sets for a function; tests override entries as needed.
pub const FUNCTION_ENV: &[(&str, &str)] = &[
    ("AWS_LAMBDA_FUNCTION_NAME", "lure-test"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
    ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/lure-test"),
    (
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "2024/01/01/[$LATEST]0123456789abcdef",
    ),
];

/// A running `lure`; killed when dropped. Its stdout and stderr go to one log file.
pub struct Lure {
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Lure {
    /// Starts `lure` as Lambda would: `AWS_LAMBDA_RUNTIME_API`, `_HANDLER`,
    /// `LAMBDA_TASK_ROOT`, [`FUNCTION_ENV`], then `env` (which may override them),
    /// and nothing inherited from the test's own environment.
    pub fn spawn(
        api_address: &str,
        handler: &str,
        task_root: &Path,
        env: &[(&str, &str)],
        log: &Path,
    ) -> Self {
        let program = Path::new(env!("CARGO_BIN_EXE_lure"));
        Self::spawn_with(program, api_address, handler, task_root, env, log, |_| {})
    }

    /// As [`Lure::spawn`], running `program` (e.g. an unzipped layer's `bootstrap`)
    /// and letting `customize` adjust the command (descriptors, arguments) last.
    pub fn spawn_with(
        program: &Path,
        api_address: &str,
        handler: &str,
        task_root: &Path,
        env: &[(&str, &str)],
        log: &Path,
        customize: impl FnOnce(&mut Command),
    ) -> Self {
        let out = File::create(log).expect("create the lure log");
        let err = out.try_clone().expect("clone the lure log");
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api_address)
            .env("_HANDLER", handler)
            .env("LAMBDA_TASK_ROOT", task_root)
            .env("RUST_BACKTRACE", "1")
            .envs(FUNCTION_ENV.iter().copied())
            .envs(env.iter().copied())
            .current_dir(task_root)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        customize(&mut cmd);
        let child = cmd.spawn().expect("start the lure binary");
        Lure {
            child,
            log: log.to_owned(),
            status: None,
        }
    }

    /// The process id, e.g. to read `/proc/PID/status`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything lure wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status if lure has exited, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("poll the lure process");
        }
        self.status
    }

    /// Waits for lure to exit by itself; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Lure {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `lure invoke HANDLER --event - --task-root TASK_ROOT` with `event` on
/// stdin, to its end. With `env`, that is the whole environment (nothing of the
/// machine's, HOME included); without, lure inherits the test's.
pub fn invoke(
    task_root: &Path,
    handler: &str,
    event: &[u8],
    env: Option<&[(String, String)]>,
) -> std::process::Output {
    use std::io::Write;
    let mut command = Command::new(env!("CARGO_BIN_EXE_lure"));
    command
        .args(["invoke", handler, "--event", "-", "--task-root"])
        .arg(task_root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(env) = env {
        command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    command
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().expect("piped stdin").write_all(event)?;
            child.wait_with_output()
        })
        .unwrap_or_else(|e| panic!("lure invoke {handler}: {e}"))
}
