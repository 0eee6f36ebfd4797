//! A real, signature-checking AWS stand-in for the `aws` module's tests: moto's
//! server (`tests/moto_server.py`) with its IAM auth on, one per [`Moto::start`].
//!
//! Every request must be SigV4-signed with [`Moto::access_key_id`] and
//! [`Moto::secret_access_key`] (a user allowed `*` on `*`); a wrong secret gets a 403
//! `SignatureDoesNotMatch`, an unknown key a 403 `InvalidClientTokenId`. What moto
//! 5.2.5 does not check, or does differently from AWS:
//! - the 403s of JSON services (DynamoDB) have the query services' XML body
//!   (`<ErrorResponse><Errors><Error><Code>…`, `Content-Type: text/html`);
//! - a signed `x-amz-content-sha256` is taken as the payload's hash without
//!   comparing it with the body (without that header, the body's hash is signed);
//! - the `Host` header, the signing date and the region (any real one) are not
//!   checked beyond the signature itself; an unknown region gets a 500;
//! - a request without `Authorization` gets a 500, and so does a presigned S3 URL
//!   (moto reads the `Authorization` header, which it lacks).
//!
//! ```ignore
//! let moto = Moto::start();
//! let env = moto.env(); // for lure: AWS_ACCESS_KEY_ID, ..., AWS_ENDPOINT_URL
//! let out = moto.run_python("import boto3; print(boto3.client('s3').list_buckets())");
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use serde_json::Value;

use super::WAIT;

/// The packages of moto's venv; moto is pinned so its behaviours above stay put.
pub const PACKAGES: &[&str] = &["moto[server]==5.2.5", "boto3"];

/// A running moto server; killed when dropped.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    python: PathBuf,
    log: PathBuf,
    child: Child,
    // The server serves until this pipe closes: if the test process dies, so does it.
    _stdin: ChildStdin,
}

impl Moto {
    /// Starts a server of its own (on a free port, with a user and key of its own)
    /// and waits until it checks signatures.
    pub fn start() -> Moto {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let python = super::python::venv("moto-venv", PACKAGES);
        let dir = std::env::temp_dir().join("lure-tests");
        std::fs::create_dir_all(&dir).expect("create the moto log directory");
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let log = dir.join(format!("moto-{}-{n}.log", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto_server.py");
        let mut command = Command::new(&python);
        command.arg(&script);
        isolate(&mut command);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("create the moto log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let stdin = child.stdin.take().expect("moto's stdin");
        let stdout = child.stdout.take().expect("moto's stdout");

        // The first line says where and with which key; a reader thread keeps the
        // wait bounded, then drains whatever else moto might print.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        let line = rx.recv_timeout(WAIT).unwrap_or_default();
        let fields: Option<Value> = serde_json::from_str(&line).ok();
        let field = |name: &str| {
            fields.as_ref()?[name]
                .as_str()
                .map(str::to_owned)
                .filter(|s| !s.is_empty())
        };
        let (Some(endpoint), Some(access_key_id), Some(secret_access_key)) = (
            field("endpoint"),
            field("access_key_id"),
            field("secret_access_key"),
        ) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "moto did not start within {WAIT:?}; it printed {line:?}\nits log ({}):\n{}",
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Moto {
            endpoint,
            access_key_id,
            secret_access_key,
            python,
            log,
            child,
            _stdin: stdin,
        }
    }

    /// The venv's python, with boto3 (and moto) installed.
    pub fn python(&self) -> PathBuf {
        self.python.clone()
    }

    /// The environment a client of this server needs (lure, or boto3).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Runs `code` with the venv's python and [`Moto::env`] (and no AWS
    /// configuration of the machine's), so a bare `boto3.client("sts")` talks to
    /// this server as its user. Fails the test if the program cannot start.
    pub fn run_python(&self, code: &str) -> Output {
        let mut command = Command::new(&self.python);
        command.args(["-c", code]);
        isolate(&mut command);
        command
            .envs(self.env())
            // boto3 reads its region from here, not from AWS_REGION.
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.python.display()))
    }

    /// What the server wrote to stderr so far: tracebacks of its 500s.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keeps the machine's AWS configuration (profiles, credentials, moto's own
/// settings such as `INITIAL_NO_AUTH_ACTION_COUNT`) away from a python program.
fn isolate(command: &mut Command) {
    command
        .env_clear()
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}
