//! Python virtual environments for tests that drive lure with a real AWS SDK (boto3)
//! or need a real AWS stand-in (moto): made once, kept under `target/tmp`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The python of `target/tmp/<name>`, a venv holding `packages` (pip requirements:
/// `boto3`, `moto[server]==5.2.5`), made with `python3 -m venv` and pip the first
/// time. It is built under a name of its own and renamed into place, so test
/// processes provisioning at once never see half of one. A venv whose packages do
/// not import, or whose `==` pins do not hold, is made again.
pub fn venv(name: &str, packages: &[&str]) -> PathBuf {
    // Threads of one test process build one at a time (the second finds it made).
    static BUILDING: Mutex<()> = Mutex::new(());
    let _building = BUILDING.lock().unwrap_or_else(|e| e.into_inner());

    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin/python");
    if has(&python, packages) {
        return python;
    }
    let staging = venv.with_file_name(format!("{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    run(Command::new("python3").args(["-m", "venv"]).arg(&staging));
    run(Command::new(staging.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(packages));
    if !has(&python, packages) {
        // A broken or outdated one (or a leftover of an interrupted run) goes.
        let _ = std::fs::remove_dir_all(&venv);
    }
    if std::fs::rename(&staging, &venv).is_err() {
        // Another test process got there first; use its venv.
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        has(&python, packages),
        "{} lacks some of {packages:?}",
        venv.display()
    );
    python
}

/// Whether every requirement imports (as its name with `-` read as `_`, or the
/// module a package names otherwise: `cfn-lint` is `cfnlint`) and has
/// the version it pins, if any.
fn has(python: &Path, packages: &[&str]) -> bool {
    const CHECK: &str = r#"
import importlib, importlib.metadata, re, sys
for requirement in sys.argv[1:]:
    name, pin = re.fullmatch(r"([\w.-]+)(?:\[[^\]]*\])?(?:==(\S+))?", requirement).groups()
    importlib.import_module({"cfn-lint": "cfnlint"}.get(name, name.replace("-", "_")))
    if pin is not None and importlib.metadata.version(name) != pin:
        sys.exit(f"{name} is not {pin}")
"#;
    Command::new(python)
        .args(["-c", CHECK])
        .args(packages)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
