//! `lure types DIR` (SPEC 11): the editor definitions of the stdlib, written out
//! for a function's editor set-up. The Lua Language Server files are the ones in
//! the repository's `stdlib/lua/`, compiled in; the Rhai ones are written from the
//! registrations of a Rhai engine set up as lure sets up its own (the tests check
//! that `stdlib/rhai/` holds exactly those).

use std::io;
use std::path::{Path, PathBuf};

use crate::stdlib;
use crate::stdlib::binding::rhai::Definitions;

/// The Lua Language Server definitions (`---@meta` files), by file name.
const LUA: &[(&str, &str)] = &[
    ("aws.lua", include_str!("../../stdlib/lua/aws.lua")),
    ("base64.lua", include_str!("../../stdlib/lua/base64.lua")),
    ("crypto.lua", include_str!("../../stdlib/lua/crypto.lua")),
    ("hex.lua", include_str!("../../stdlib/lua/hex.lua")),
    ("http.lua", include_str!("../../stdlib/lua/http.lua")),
    ("json.lua", include_str!("../../stdlib/lua/json.lua")),
    ("lambda.lua", include_str!("../../stdlib/lua/lambda.lua")),
    ("log.lua", include_str!("../../stdlib/lua/log.lua")),
    ("time.lua", include_str!("../../stdlib/lua/time.lua")),
    ("url.lua", include_str!("../../stdlib/lua/url.lua")),
    ("uuid.lua", include_str!("../../stdlib/lua/uuid.lua")),
];

/// The Rhai definitions of everything lure registers in a Rhai engine.
fn rhai() -> Definitions {
    let mut engine = rhai::Engine::new_raw();
    let mut definitions = Definitions::default();
    stdlib::register_rhai(&mut engine, Some(&mut definitions));
    definitions
}

/// Writes `DIR/lua/*.lua` and `DIR/rhai/*.d.rhai`; returns the files written.
pub fn write(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let rhai = rhai();
    let files = LUA
        .iter()
        .map(|&(name, text)| (Path::new("lua").join(name), text))
        .chain(
            rhai.files()
                .map(|(name, text)| (Path::new("rhai").join(name), text)),
        );
    write_files(dir, files)
}

/// Writes each `(path under dir, text)`, making the folders it needs; returns the
/// files written.
pub fn write_files<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (PathBuf, &'a str)>,
) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (relative, text) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}
