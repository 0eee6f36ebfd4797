//! The deployable layer: `layer/build.sh` writes `target/layer/lure-x86_64.zip`; these
//! tests unpack it as Lambda does (into an `/opt`-style directory), check what the
//! binary needs from the system, and start `opt/bootstrap` the way Lambda starts it:
//! no arguments, Lambda's environment, the working directory and `LAMBDA_TASK_ROOT`
//! a read-only copy of `scripts/` (the sample function's package in
//! `layer/template.yaml`), against the fake Runtime API.
//!
//! The build is a release build with LTO through Zig: minutes the first time, and
//! after a change to the sources; `cargo test --test fixtures` and the like skip it
//! while iterating, `cargo test` runs it as part of the whole suite.
//!
//! The release workflow smoke-runs the arm64 layer with the same tests:
//! `LURE_LAYER_ARCH=arm64` builds and unpacks `lure-arm64.zip`, and
//! `LURE_LAYER_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"` starts `bootstrap`
//! under QEMU (`cargo test --test layer bootstrap_answers`).

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use support::{FakeApi, Invocation, Log, Lure, Post, PostKind, WAIT};

/// Amazon Linux 2's glibc, the oldest the layer must run on.
const OLDEST_GLIBC: (u32, u32) = (2, 26);

/// What Lambda sets besides the function's own variables (`FUNCTION_ENV`, which `Lure`
/// sets) and the three each test passes: region, paths, locale.
const LAMBDA_ENV: &[(&str, &str)] = &[
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
    ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
    ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
    (
        "LD_LIBRARY_PATH",
        "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    ),
    ("LANG", "en_US.UTF-8"),
    ("TZ", ":UTC"),
];

/// The unpacked layer and the task root, made once per test run.
struct Unpacked {
    /// Where the layer was unpacked: Lambda's `/opt`.
    opt: PathBuf,
    /// A read-only copy of `scripts/`: Lambda's `/var/task`.
    task_root: PathBuf,
    /// Everything under the task root, to show that nothing wrote there.
    task_root_listing: BTreeMap<PathBuf, (u64, SystemTime)>,
    /// Entry names in the zip, in order.
    entries: Vec<String>,
}

/// Builds and unpacks the layer on first use. A failure is kept, so the other tests
/// fail with it at once instead of building again.
fn unpacked() -> &'static Unpacked {
    static UNPACKED: OnceLock<Result<Unpacked, String>> = OnceLock::new();
    let unpacked = UNPACKED.get_or_init(|| {
        std::panic::catch_unwind(unpack).map_err(|panic| {
            let text = panic.downcast_ref::<&str>().map(|s| s.to_string());
            text.or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        })
    });
    match unpacked {
        Ok(unpacked) => unpacked,
        Err(why) => panic!("the layer was not built and unpacked: {why}"),
    }
}

fn unpack() -> Unpacked {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let arch = std::env::var("LURE_LAYER_ARCH").unwrap_or_else(|_| "x86_64".into());
    let status = Command::new("bash")
        .arg(repo.join("layer/build.sh"))
        .args(["--arch", &arch])
        .current_dir(repo)
        .status()
        .expect("run layer/build.sh");
    assert!(status.success(), "layer/build.sh failed: {status}");
    let zip = repo.join(format!("target/layer/lure-{arch}.zip"));

    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("layer");
    if scratch.exists() {
        // A previous run left the task root read-only.
        make_writable(&scratch);
        std::fs::remove_dir_all(&scratch).expect("remove the previous scratch dir");
    }
    let opt = scratch.join("opt");
    let task_root = scratch.join("var/task");
    std::fs::create_dir_all(&opt).unwrap();
    std::fs::create_dir_all(&task_root).unwrap();

    let listing = output(Command::new("unzip").arg("-Z1").arg(&zip));
    let entries = listing.lines().map(str::to_owned).collect();
    output(
        Command::new("unzip")
            .arg("-q")
            .arg(&zip)
            .arg("-d")
            .arg(&opt),
    );

    copy_dir(&repo.join("scripts"), &task_root);
    make_read_only(&task_root);
    Unpacked {
        opt,
        task_root_listing: list_tree(&task_root),
        task_root,
        entries,
    }
}

fn bootstrap() -> PathBuf {
    unpacked().opt.join("bootstrap")
}

#[test]
fn the_zip_holds_one_executable_bootstrap() {
    let layer = unpacked();
    assert_eq!(layer.entries, ["bootstrap"], "entries of the layer zip");
    let mode = std::fs::metadata(bootstrap()).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o555,
        0o555,
        "bootstrap's mode is {mode:o}: not executable"
    );
}

#[test]
fn bootstrap_is_stripped() {
    let sections = output(Command::new("readelf").args(["-S", "-W"]).arg(bootstrap()));
    for unwanted in [".symtab", ".debug_info", ".debug_line"] {
        assert!(
            !sections.contains(unwanted),
            "bootstrap has a {unwanted} section:\n{sections}"
        );
    }
}

/// Amazon Linux 2 has glibc 2.26: a symbol versioned later would fail to load there.
#[test]
fn bootstrap_needs_nothing_newer_than_glibc_2_26() {
    let symbols = output(Command::new("objdump").arg("-T").arg(bootstrap()));
    let mut versions: Vec<((u32, u32), String)> = symbols
        .lines()
        .filter_map(|line| {
            // `GLIBC_2.18 __cxa_thread_atexit_impl`, or in parentheses when hidden.
            let version = line
                .split_whitespace()
                .map(|w| w.trim_matches(|c| c == '(' || c == ')'))
                .find(|w| w.starts_with("GLIBC_2."))?;
            let mut numbers = version["GLIBC_".len()..].split('.').map(|n| n.parse());
            let major = numbers.next()?.ok()?;
            let minor = numbers.next()?.ok()?;
            Some(((major, minor), line.trim().to_owned()))
        })
        .collect();
    versions.sort();
    let (newest, _) = versions.last().expect("objdump -T shows GLIBC_ symbols");
    eprintln!(
        "newest glibc symbol version needed: {}.{}",
        newest.0, newest.1
    );
    let too_new: Vec<&str> = versions
        .iter()
        .filter(|(v, _)| *v > OLDEST_GLIBC)
        .map(|(_, line)| line.as_str())
        .collect();
    assert!(
        too_new.is_empty(),
        "symbols newer than glibc 2.26:\n{}",
        too_new.join("\n")
    );

    // And no shared library beyond glibc's own, which every Lambda image has.
    let headers = output(Command::new("objdump").arg("-p").arg(bootstrap()));
    let needed: Vec<&str> = headers
        .lines()
        .filter_map(|line| line.trim().strip_prefix("NEEDED"))
        .map(str::trim)
        .collect();
    let glibc = [
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "ld-linux-x86-64.so.2",
    ];
    for library in &needed {
        assert!(
            glibc.contains(library),
            "bootstrap needs {library}: {needed:?}"
        );
    }
}

#[test]
fn bootstrap_answers_hello_handler_as_lambda_starts_it() {
    let mut run = Run::start("hello", "hello.handler");
    let post = run.answer(Invocation::new("req-1", r#"{"name": "Ada"}"#));
    assert_eq!(post.kind, PostKind::Response, "{}", run.output());
    assert_eq!(post.text(), r#"{"message":"Hello, Ada!"}"#);
    // Warm: the same process answers the next one.
    let post = run.answer(Invocation::new("req-2", "{}"));
    assert_eq!(post.text(), r#"{"message":"Hello, world!"}"#);
    assert_eq!(run.api.log().connections, 1, "one keep-alive connection");
    let output = run.output();
    assert!(
        output.contains("req-1\tINFO\tgreeting Ada"),
        "the handler's print is logged with its request id:\n{output}"
    );
    run.assert_task_root_untouched();
}

/// A script error raised through the Lua C code Zig compiled.
#[test]
fn bootstrap_reports_a_typed_lua_error() {
    let mut run = Run::start("custom_error", "custom_error.handler");
    let post = run.answer(Invocation::new("req-1", r#"{"orderId": "ord-2002"}"#));
    assert_eq!(post.kind, PostKind::Error, "{}", run.output());
    let body = post.json();
    assert_eq!(body["errorType"], "OrderNotFound", "{body}");
    assert_eq!(body["errorMessage"], "no order with id ord-2002", "{body}");
    let post = run.answer(Invocation::new("req-2", r#"{"orderId": "ord-1001"}"#));
    assert_eq!(post.text(), r#"{"item":"coffee","quantity":2}"#);
    run.assert_task_root_untouched();
}

#[test]
fn bootstrap_answers_a_rhai_handler() {
    let mut run = Run::start("rhai_hello", "rhai/hello.handler");
    let post = run.answer(Invocation::new("req-1", r#"{"name": "Ada"}"#));
    assert_eq!(post.kind, PostKind::Response, "{}", run.output());
    assert_eq!(post.text(), r#"{"message":"Hello, Ada!"}"#);
    run.assert_task_root_untouched();
}

/// `opt/bootstrap` started as Lambda starts it, against a fresh fake Runtime API.
struct Run {
    // Field order is drop order: kill bootstrap before the API goes away.
    bootstrap: Lure,
    api: FakeApi,
}

impl Run {
    fn start(name: &str, handler: &str) -> Self {
        let layer = unpacked();
        let api = FakeApi::start();
        let log = layer.opt.parent().unwrap().join(format!("{name}.log"));
        // Another architecture's bootstrap runs under an emulator (QEMU).
        let runner = std::env::var("LURE_LAYER_RUNNER").unwrap_or_default();
        let mut runner = runner.split_whitespace().map(PathBuf::from);
        let (program, mut args): (PathBuf, Vec<PathBuf>) = match runner.next() {
            Some(emulator) => (emulator, runner.chain([bootstrap()]).collect()),
            None => (bootstrap(), Vec::new()),
        };
        let bootstrap = Lure::spawn_with(
            &program,
            &api.address(),
            handler,
            &layer.task_root,
            LAMBDA_ENV,
            &log,
            // Exactly Lambda's environment: nothing of the test helpers' own.
            |cmd| {
                cmd.env_remove("RUST_BACKTRACE").args(args.drain(..));
            },
        );
        Run { bootstrap, api }
    }

    /// Queues an invocation and waits for the accepted POST answering it.
    fn answer(&mut self, invocation: Invocation) -> Post {
        let id = invocation.request_id.clone();
        let answered = move |log: &Log| {
            log.posts
                .iter()
                .find(|p| p.request_id.as_deref() == Some(&id) && p.accepted())
                .cloned()
        };
        self.api.push(invocation);
        let end = Instant::now() + WAIT;
        loop {
            if self
                .api
                .wait_until(Duration::from_millis(200), |log| answered(log).is_some())
            {
                return answered(&self.api.log()).expect("the answer just seen");
            }
            if let Some(status) = self.bootstrap.try_status() {
                panic!("bootstrap exited ({status}):\n{}", self.output());
            }
            assert!(
                Instant::now() < end,
                "no answer after {WAIT:?}; posts: {:?}\n{}",
                self.api.posts(),
                self.output()
            );
        }
    }

    fn output(&self) -> String {
        self.bootstrap.output()
    }

    /// On Lambda the task root is a read-only file system. Running as root here,
    /// permissions alone would not stop a write, so look for one.
    fn assert_task_root_untouched(&self) {
        let layer = unpacked();
        assert_eq!(
            list_tree(&layer.task_root),
            layer.task_root_listing,
            "bootstrap changed the task root"
        );
    }
}

/// Runs a command that must succeed; its stdout.
fn output(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file and directory under `root` with its size and modification time.
fn list_tree(root: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut listing = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            }
            listing.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    listing
}

/// Files 0444, directories 0555: what a user sees in Lambda's `/var/task`.
fn make_read_only(root: &Path) {
    set_modes(root, 0o444, 0o555);
}

fn make_writable(root: &Path) {
    set_modes(root, 0o644, 0o755);
}

fn set_modes(path: &Path, file: u32, dir: u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        // Writable first, so the entries can be changed; read-only last.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        for entry in std::fs::read_dir(path).unwrap() {
            set_modes(&entry.unwrap().path(), file, dir);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(dir)).unwrap();
    } else if meta.is_file() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(file)).unwrap();
    }
}
