//! The release workflow delivers what the README promises: every file of the
//! README's "Install" table is an artifact of `.github/workflows/release.yml`'s
//! matrices (or the release job's checksums), and every artifact is in the table.
//! (The workflow itself runs on GitHub's runners, not here; `.ci/run` lints it.)

use std::collections::BTreeSet;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `artifact` of every matrix entry of every job.
fn matrix_artifacts(workflow: &Yaml) -> BTreeSet<String> {
    let mut artifacts = BTreeSet::new();
    for (_, job) in workflow["jobs"].as_hash().expect("jobs").iter() {
        for entry in job["strategy"]["matrix"]["include"]
            .as_vec()
            .into_iter()
            .flatten()
        {
            if let Some(artifact) = entry["artifact"].as_str() {
                artifacts.insert(artifact.to_owned());
            }
        }
    }
    artifacts
}

/// The backticked file names of the README's "Install" table.
fn promised() -> BTreeSet<String> {
    let readme = read("README.md");
    let start = readme.find("\n## Install\n").expect("an Install section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_release_matrix_builds_every_promised_file() {
    let workflow = YamlLoader::load_from_str(&read(".github/workflows/release.yml"))
        .expect("release.yml is YAML")
        .remove(0);
    let mut built = matrix_artifacts(&workflow);
    let release_job = format!("{:?}", workflow["jobs"]["release"]);
    if release_job.contains("SHA256SUMS") {
        built.insert("SHA256SUMS".to_owned());
    }
    let promised = promised();
    assert!(promised.len() >= 7, "the Install table: {promised:?}");
    assert_eq!(
        promised, built,
        "the README's Install table and release.yml's artifacts differ"
    );
    // The layer zips are published for the architectures they are built for.
    let publish = format!("{:?}", workflow["jobs"]["publish"]);
    for zip in ["lure-layer-x86_64.zip", "lure-layer-arm64.zip"] {
        assert!(publish.contains(zip), "publish does not publish {zip}");
    }
}
