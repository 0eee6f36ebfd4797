//! What the task root held when an environment started, to tell whether a file
//! changed since: the "deploy" that makes `lure serve` start a fresh environment.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Every file under the task root with what identifies its version. `ctime` is
/// there because tools that copy files often keep their `mtime` (`cp -p`, rsync).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(Vec<(PathBuf, Stamp)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    inode: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Snapshot {
    /// Walks `root`, skipping hidden directories (`.git`): what they hold is not
    /// part of a deployment package. Symbolic links are followed for files only.
    pub fn take(root: &Path) -> Snapshot {
        let mut files = Vec::new();
        walk(root, &mut files);
        Snapshot(files)
    }
}

fn walk(dir: &Path, files: &mut Vec<(PathBuf, Stamp)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !entry.file_name().to_string_lossy().starts_with('.') {
                walk(&path, files);
            }
        } else if let Ok(meta) = fs::metadata(&path)
            // A link to a folder is not a file of the function (and a folder's
            // times change with whatever else writes in it).
            && meta.is_file()
        {
            let stamp = Stamp {
                len: meta.len(),
                inode: meta.ino(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            };
            files.push((path, stamp));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_edits_new_and_removed_files_but_not_hidden_dirs() {
        let root = std::env::temp_dir().join(format!("lure-snapshot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("lib")).unwrap();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::write(root.join("app.lua"), "return 1").unwrap();
        let first = Snapshot::take(&root);
        assert_eq!(first, Snapshot::take(&root));

        fs::write(root.join(".git/HEAD"), "x").unwrap();
        assert_eq!(first, Snapshot::take(&root));

        fs::write(root.join("lib/util.lua"), "").unwrap();
        let second = Snapshot::take(&root);
        assert_ne!(first, second);

        fs::write(root.join("app.lua"), "return 22").unwrap();
        assert_ne!(second, Snapshot::take(&root));

        fs::remove_file(root.join("lib/util.lua")).unwrap();
        assert_ne!(first, Snapshot::take(&root));

        // A link to a folder outside (whose times change) is not a file.
        let outside = root.with_extension("outside");
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let linked = Snapshot::take(&root);
        fs::write(outside.join("noise"), "x").unwrap();
        assert_eq!(linked, Snapshot::take(&root));
        fs::remove_dir_all(&outside).unwrap();
        fs::remove_dir_all(&root).unwrap();
    }
}
