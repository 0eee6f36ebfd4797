//! `_HANDLER` parsing (`handler_spec::resolve`) against a fixed task root: never a
//! panic, and never a handler outside the task root (absolute, or climbing with `..`).

#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lure::handler_spec;

/// A task root with scripts in both languages, nested ones, an ambiguous pair,
/// names with several dots, and a script just outside it (`../outside.lua`).
fn task_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("lure-fuzz-handler-{}", std::process::id()));
        let root = base.join("task");
        for file in [
            "app.lua",
            "hello.rhai",
            "both.lua",
            "both.rhai",
            "src/app.lua",
            "src/v1.2/job.rhai",
            "a.b.c.lua",
            ".hidden.lua",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        std::fs::write(base.join("outside.lua"), "").unwrap();
        std::fs::write(base.join("outside.rhai"), "").unwrap();
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(handler) = std::str::from_utf8(data) else {
        return;
    };
    let root = task_root();
    let Ok(resolved) = handler_spec::resolve(handler, root) else {
        return;
    };
    let script = Path::new(&resolved.script);
    assert!(
        !script.is_absolute(),
        "{handler:?} resolved to an absolute path {script:?}"
    );
    assert!(
        script
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
        "{handler:?} resolved outside the task root: {script:?}"
    );
    assert!(
        !Path::new(handler)
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::RootDir)),
        "{handler:?} was accepted"
    );
    assert!(
        resolved.script_path().starts_with(root),
        "{handler:?} resolved to {:?}",
        resolved.script_path()
    );
    assert!(
        resolved.script_path().is_file(),
        "{handler:?} resolved to a missing file"
    );
    assert!(
        !resolved.function.is_empty(),
        "{handler:?} resolved to no function"
    );
});
