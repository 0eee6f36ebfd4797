//! A scratch directory per test: the task root holding the handler scripts, and
//! next to it (not inside) the lure log.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A fresh, empty directory unique to this test process and call.
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir()
            .join("lure-tests")
            .join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("task")).expect("create the scratch task root");
        Scratch { dir }
    }

    /// `LAMBDA_TASK_ROOT`.
    pub fn task_root(&self) -> PathBuf {
        self.dir.join("task")
    }

    /// Where lure's stdout and stderr go.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("lure.log")
    }

    /// Writes a file under the task root, creating parent directories.
    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.task_root().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the script's directory");
        }
        std::fs::write(&path, contents).expect("write the script");
        path
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Keep the evidence when the test failed.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
