//! The README's "Standard library" section, copied as a newcomer would copy it:
//! every Lua and Rhai example runs (`lure invoke`, the real binary), and a Lua
//! example followed by its Rhai version gives the same response.
//!
//! A Lua example is a handler's body (run inside `function main(event, context)`),
//! or a whole module when it starts with `local M = {}`; a Rhai example is a whole
//! script, which without `fn main` is its own handler.

mod support;

use std::path::Path;
use std::process::Command;

use support::Scratch;

const LURE: &str = env!("CARGO_BIN_EXE_lure");

/// The fenced code blocks of the README's standard library section, in order:
/// (language, code).
fn stdlib_examples() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let start = readme
        .find("\n## The standard library")
        .expect("the README has a standard library section");
    let section = &readme[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(language) = line.strip_prefix("```") {
            let code: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push((language.trim().to_owned(), code.join("\n")));
        }
    }
    blocks
}

/// What one example answered: exit code, stdout (the response), stderr.
fn run(scratch: &Scratch, language: &str, code: &str, n: usize) -> (Option<i32>, String, String) {
    let (file, script, handler) = match language {
        "lua" if code.starts_with("local M = {}") => {
            let file = format!("example{n}.lua");
            (file.clone(), code.to_owned(), format!("example{n}.handler"))
        }
        "lua" => {
            let file = format!("example{n}.lua");
            let script = format!("function main(event, context)\n{code}\nend\n");
            (file.clone(), script, file)
        }
        _ => {
            let file = format!("example{n}.rhai");
            (file.clone(), code.to_owned(), file)
        }
    };
    scratch.write(&file, &script);
    let output = Command::new(LURE)
        .args(["invoke", &handler, "--task-root"])
        .arg(scratch.task_root())
        .env_clear()
        .output()
        .expect("run lure invoke");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_stdlib_example_runs_and_each_pair_agrees() {
    let scratch = Scratch::new("readme");
    let examples = stdlib_examples();
    let mut ran = 0;
    let mut previous_lua: Option<(String, String)> = None;
    for (n, (language, code)) in examples.iter().enumerate() {
        if language != "lua" && language != "rhai" {
            previous_lua = None;
            continue;
        }
        let (exit, stdout, stderr) = run(&scratch, language, code, n);
        assert_eq!(
            exit,
            Some(0),
            "README example {n} ({language}) failed:\n{code}\nstdout: {stdout}\nstderr: {stderr}"
        );
        ran += 1;
        match (language.as_str(), previous_lua.take()) {
            ("lua", _) => previous_lua = Some((code.clone(), stdout)),
            ("rhai", Some((lua_code, lua_stdout))) => assert_eq!(
                stdout, lua_stdout,
                "the Lua example and its Rhai version answer differently:\n{lua_code}\n---\n{code}"
            ),
            _ => {}
        }
    }
    assert!(
        ran >= 20,
        "only {ran} examples in the standard library section"
    );
}
