//! One execution environment: this executable started again as a child process in
//! runtime mode, exactly as Lambda starts `bootstrap`, so the loop it runs is the
//! one that runs on Lambda and its crash never takes the server down.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::env_vars;
use crate::local::report::{max_memory_used_mb, random_hex};
use crate::log::rfc3339_millis;

use super::runtime_api::Reply;
use super::task_root::Snapshot;

/// What every environment of the served function is started with.
#[derive(Debug, Clone)]
pub struct Function {
    pub handler: String,
    /// Absolute.
    pub task_root: PathBuf,
    pub timeout: Duration,
    pub memory_mb: u64,
    /// Invocations at once: `AWS_LAMBDA_MAX_CONCURRENCY` when above 1.
    pub concurrency: usize,
    pub name: String,
    pub region: String,
    /// `host:port` of serve's own Runtime API.
    pub runtime_api: String,
}

pub struct ExecutionEnv {
    process: Child,
    pub spawned: Instant,
    /// The task root when the process started; a difference means "redeploy".
    pub snapshot: Snapshot,
    /// Where the process's stdout and stderr go (a file, not a pipe: everything the
    /// process wrote before it answered is there when the answer arrives), read
    /// from `log_offset` on.
    log: File,
    /// Time from start to the first `/next`: the init phase, once it is over.
    pub init_duration: Option<Duration>,
    /// Whether a REPORT line has shown `init_duration` yet.
    pub init_reported: bool,
    /// The body of a `POST /runtime/init/error`: the process is about to exit.
    pub init_error: Option<Vec<u8>>,
    /// The process's long-polled `GET /next`s (one per worker), answered with
    /// the next invocations.
    pub next: VecDeque<Reply>,
}

impl ExecutionEnv {
    pub fn start(function: &Function) -> io::Result<ExecutionEnv> {
        let snapshot = Snapshot::take(&function.task_root);
        let (writer, log) = log_file()?;
        let today = rfc3339_millis(SystemTime::now())[..10].replace('-', "/");
        let log_stream = format!("{today}/[$LATEST]{}", random_hex(16));
        // The rest of serve's environment is inherited, as `lure invoke` sees it:
        // that is how a developer sets the function's own configuration variables.
        let mut command = Command::new(std::env::current_exe()?);
        command
            .env(env_vars::RUNTIME_API, &function.runtime_api)
            .env(env_vars::HANDLER, &function.handler)
            .env(env_vars::TASK_ROOT, &function.task_root)
            .env(env_vars::FUNCTION_NAME, &function.name)
            .env(env_vars::FUNCTION_VERSION, "$LATEST")
            .env(
                env_vars::FUNCTION_MEMORY_SIZE,
                function.memory_mb.to_string(),
            )
            .env(
                env_vars::LOG_GROUP_NAME,
                format!("/aws/lambda/{}", function.name),
            )
            .env(env_vars::LOG_STREAM_NAME, log_stream)
            .env("AWS_REGION", &function.region)
            .env("AWS_DEFAULT_REGION", &function.region)
            .env_remove(env_vars::TELEMETRY_LOG_FD)
            .env_remove(env_vars::TRACE_ID)
            .env_remove(env_vars::MAX_CONCURRENCY)
            .current_dir(&function.task_root)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer);
        if function.concurrency > 1 {
            // As Lambda sets it on Managed Instances (serve's own setting only).
            command.env(env_vars::MAX_CONCURRENCY, function.concurrency.to_string());
        }
        // The function dies with serve (killed, Ctrl-C), as an environment does
        // with its sandbox, instead of polling a Runtime API that is gone.
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: `prctl` is async-signal-safe; nothing else runs between fork
            // and exec. Serve's dispatcher thread, which spawns the process, lives
            // as long as serve.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let process = command.spawn()?;
        Ok(ExecutionEnv {
            process,
            spawned: Instant::now(),
            snapshot,
            log,
            init_duration: None,
            init_reported: false,
            init_error: None,
            next: VecDeque::new(),
        })
    }

    /// Everything the process wrote since the last call.
    pub fn read_log(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let _ = self.log.read_to_end(&mut bytes);
        bytes
    }

    /// The init duration, the first time it is asked for after init.
    pub fn unreported_init(&mut self) -> Option<Duration> {
        let init = self.init_duration.filter(|_| !self.init_reported);
        self.init_reported |= init.is_some();
        init
    }

    pub fn max_memory_used_mb(&self) -> Option<u64> {
        max_memory_used_mb(&self.process.id().to_string())
    }

    /// The exit status, once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.process.try_wait().ok().flatten()
    }
}

impl Drop for ExecutionEnv {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A fresh log file: a handle the process writes to and one to read it from.
/// The file is unlinked at once, so nothing is left behind however serve ends.
fn log_file() -> io::Result<(File, File)> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "lure-serve-{}-{}.log",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let writer = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let reader = File::open(&path);
    let _ = std::fs::remove_file(&path);
    Ok((writer, reader?))
}
