//! `lure init` (SPEC 10): every template in both languages makes a folder whose
//! handler runs with `lure invoke` on its own sample event, exactly as the command
//! printed says, and whose SAM template is clean under cfn-lint; a folder that
//! holds anything is refused unless `--force`.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::Scratch;

const TEMPLATES: [&str; 6] = ["hello", "api", "sqs", "s3", "schedule", "stream"];

fn lure(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lure"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run lure")
}

/// The `lure invoke ...` line `lure init` printed, as arguments.
fn run_line(stdout: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run it:  lure "))
        .unwrap_or_else(|| panic!("no `run it` line in:\n{stdout}"));
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn every_template_runs_and_its_sam_template_is_clean() {
    let scratch = Scratch::new("init_templates");
    let root = scratch.task_root();
    let mut sam_templates = Vec::new();
    for template in TEMPLATES {
        for lang in ["lua", "rhai"] {
            let dir = format!("{template}-{lang}");
            let made = lure(
                &["init", &dir, "--template", template, "--lang", lang],
                &root,
            );
            let stdout = String::from_utf8_lossy(&made.stdout).into_owned();
            assert!(made.status.success(), "{template} {lang}: {made:?}");
            assert!(stdout.contains("handler: "), "{stdout}");
            let folder = root.join(&dir);
            for file in [
                "template.yaml",
                ".lure/types/lua/lambda.lua",
                ".lure/types/rhai/__static__.d.rhai",
            ] {
                assert!(folder.join(file).is_file(), "{dir}: no {file}");
            }
            assert_eq!(folder.join(".luarc.json").is_file(), lang == "lua", "{dir}");

            // The printed command runs the handler on its event.
            let args = run_line(&stdout);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let ran = lure(&args, &root);
            assert!(
                ran.status.success(),
                "{dir}: lure {}: {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&ran.stdout),
                String::from_utf8_lossy(&ran.stderr)
            );
            assert!(!ran.stdout.is_empty(), "{dir}: no answer");
            sam_templates.push(folder.join("template.yaml"));
        }
    }
    let python = support::python::venv("cfn-lint-venv", &["cfn-lint==1.58.0"]);
    // Its entry point, not the `cfn-lint` script (whose `#!` names the folder the
    // venv was made in before it was moved into place).
    let linted = Command::new(python)
        .args([
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
        ])
        .args(&sam_templates)
        .output()
        .expect("run cfn-lint");
    assert!(
        linted.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&linted.stdout),
        String::from_utf8_lossy(&linted.stderr)
    );
    // The stream template's URL streams (SPEC 10).
    let stream = std::fs::read_to_string(root.join("stream-lua/template.yaml")).unwrap();
    assert!(stream.contains("InvokeMode: RESPONSE_STREAM"), "{stream}");
}

#[test]
fn defaults_and_a_folder_that_is_not_empty() {
    let scratch = Scratch::new("init_defaults");
    let root = scratch.task_root();
    // Defaults: the current folder, Lua, hello.
    let made = lure(&["init"], &root);
    assert!(made.status.success(), "{made:?}");
    assert!(root.join("hello.lua").is_file());
    assert!(root.join("events/hello.json").is_file());
    assert!(String::from_utf8_lossy(&made.stdout).contains("handler: hello.handler"));

    // Not empty now: refused, and nothing changes.
    std::fs::write(root.join("hello.lua"), "-- mine").unwrap();
    let refused = lure(&["init", ".", "--template", "api"], &root);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert!(!root.join("api_gateway.lua").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("hello.lua")).unwrap(),
        "-- mine"
    );

    let forced = lure(&["init", ".", "--template", "api", "--force"], &root);
    assert!(forced.status.success(), "{forced:?}");
    assert!(root.join("api_gateway.lua").is_file());

    let unknown = lure(&["init", "x", "--template", "nope"], &root);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("hello, api, sqs, s3, schedule, stream")
    );
}
