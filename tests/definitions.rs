//! The editor definitions in `stdlib/` (SPEC 11) against what the engines really
//! register, through the real binary:
//!
//! - Lua: the functions `stdlib/lua/*.lua` declares are exactly the functions a
//!   handler finds in lure's module tables and on its context.
//! - Rhai: `lure types` writes the definitions from the registrations of a Rhai
//!   engine set up as lure's; `stdlib/rhai/` must hold exactly those, and every
//!   function they declare must be callable from a script.
//!
//! Adding a function without its definition, or the reverse, fails here.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::Scratch;

const LURE: &str = env!("CARGO_BIN_EXE_lure");
const STDLIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib");

/// Runs `lure invoke HANDLER` in `scratch`'s task root; the response body.
fn invoke(scratch: &Scratch, handler: &str) -> Value {
    invoke_with_env(scratch, handler, &[])
}

/// [`invoke`] with `env` set for lure.
fn invoke_with_env(scratch: &Scratch, handler: &str, env: &[(&str, &str)]) -> Value {
    let output = Command::new(LURE)
        .args(["invoke", handler, "--task-root"])
        .arg(scratch.task_root())
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run lure invoke");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "lure invoke {handler} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The files of a directory, by name.
fn files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("a text file");
            (name, text)
        })
        .collect()
}

#[test]
fn lure_types_writes_the_committed_definitions() {
    let scratch = Scratch::new("types");
    let out = scratch.path().join("types");
    let status = Command::new(LURE)
        .arg("types")
        .arg(&out)
        .output()
        .expect("run lure types");
    assert!(status.status.success(), "{status:?}");
    for language in ["lua", "rhai"] {
        let written = files(&out.join(language));
        let committed = files(&Path::new(STDLIB).join(language));
        assert_eq!(
            written.keys().collect::<Vec<_>>(),
            committed.keys().collect::<Vec<_>>(),
            "{language}: the files `lure types` writes and those in stdlib/{language}"
        );
        for (name, text) in &written {
            assert!(
                committed[name] == *text,
                "stdlib/{language}/{name} is not what the engine registers: \
                 refresh it with `cargo run -- types stdlib` and review the diff"
            );
        }
    }
}

/// `function module.name(` and `function Class:name(` lines, by table.
fn lua_declarations() -> BTreeMap<String, BTreeSet<String>> {
    let mut declared: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for text in files(&Path::new(STDLIB).join("lua")).values() {
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("function ") else {
                continue;
            };
            let signature = rest.split('(').next().unwrap_or_default();
            let (table, name) = signature
                .split_once(['.', ':'])
                .unwrap_or_else(|| panic!("not a module function: {line}"));
            let fresh = declared
                .entry(table.to_owned())
                .or_default()
                .insert(name.to_owned());
            assert!(fresh, "declared twice: {line}");
        }
    }
    declared
}

/// Lists, from inside a handler, every function of the module tables lure adds to
/// Lua's globals, and of the context.
const LIST_LUA_FUNCTIONS: &str = r#"
local standard = {
  _G = true, coroutine = true, io = true, math = true, os = true, package = true,
  string = true, table = true, utf8 = true,
}
local function functions(t)
  local names = setmetatable({}, json.array_mt)
  for k, v in pairs(t) do
    if type(v) == "function" then names[#names + 1] = k end
    -- A sub-module (`aws.dynamodb`): its functions as `dynamodb.marshal`.
    if type(v) == "table" and getmetatable(v) == nil then
      for _, f in ipairs(functions(v)) do names[#names + 1] = k .. "." .. f end
    end
  end
  table.sort(names)
  return names
end
function main(event, context)
  local modules = {}
  for name, value in pairs(_G) do
    if type(value) == "table" and not standard[name] then
      modules[name] = functions(value)
      assert(require(name) == value, name .. " is not require-able")
    end
  end
  modules.LambdaContext = functions(context)
  -- The methods of an `http` response, from a real one.
  modules.Response = functions(getmetatable(http.get(os.getenv("WEB"))).__index)
  -- An `aws` client answers any operation as a method; `send` is the declared one.
  local client = aws.client("sqs", { region = "us-east-1" })
  modules.Client = setmetatable({}, json.array_mt)
  if type(client.send) == "function" then modules.Client[1] = "send" end
  -- A response stream's methods, from a real one: the answer is then streamed,
  -- this table (as JSON) its only chunk.
  modules.ResponseStream = functions(getmetatable(context:stream()).__index)
  return modules
end
"#;

#[test]
fn lua_definitions_declare_exactly_the_functions_scripts_get() {
    let scratch = Scratch::new("lua_definitions");
    scratch.write("list.lua", LIST_LUA_FUNCTIONS);
    let web = support::web::WebServer::http();
    let live = invoke_with_env(&scratch, "list.lua", &[("WEB", &web.url("/json"))]);
    let live: BTreeMap<String, BTreeSet<String>> = live
        .as_object()
        .expect("an object of modules")
        .iter()
        .map(|(module, names)| {
            let names = names
                .as_array()
                .expect("an array of names")
                .iter()
                .map(|n| n.as_str().expect("a name").to_owned())
                .collect();
            (module.clone(), names)
        })
        .collect();
    assert_eq!(
        live,
        lua_declarations(),
        "left: what Lua scripts get; right: what stdlib/lua declares"
    );
}

/// `fn name(params) -> type;` lines of a Rhai definitions file: name and types.
fn rhai_functions(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("fn "))
        .map(|rest| {
            let (name, rest) = rest.split_once('(').expect("fn name(");
            let (params, _) = rest.split_once(')').expect("params)");
            let types = params
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| p.split_once(':').map_or("?", |(_, t)| t).trim().to_owned())
                .collect();
            (name.to_owned(), types)
        })
        .collect()
}

/// A value of a definition's parameter type, for a call that must find the function.
fn rhai_value(ty: &str) -> &'static str {
    match ty {
        "String" => "\"\"",
        "int" => "0",
        "bool" => "false",
        "Map" => "#{}",
        "Array" => "[]",
        "Blob" => "blob()",
        "AwsClient" => "aws::client(\"sqs\", #{ region: \"us-east-1\" })",
        // Made once by the script (a stream may be started once): see below.
        "ResponseStream" => "response_stream",
        _ => "()",
    }
}

#[test]
fn every_rhai_definition_is_callable() {
    let mut calls = Vec::new();
    for (file, text) in files(&Path::new(STDLIB).join("rhai")) {
        let module = file.trim_end_matches(".d.rhai");
        for (name, types) in rhai_functions(&text) {
            let qualified = match module {
                "__static__" => name.clone(),
                // `aws.dynamodb.d.rhai`: the sub-module `aws::dynamodb`.
                module => format!("{}::{name}", module.replace('.', "::")),
            };
            let args: Vec<&str> = types.iter().map(|t| rhai_value(t)).collect();
            calls.push(format!("{qualified}({})", args.join(", ")));
        }
    }
    assert!(
        calls.len() > 50,
        "the definitions declare {} functions",
        calls.len()
    );
    // Bad arguments are fine (an error from the function); not finding it is not.
    let script: String = calls
        .iter()
        .map(|call| {
            format!(
                "try {{ {call}; }} catch (e) {{ if `${{e}}`.contains(\"Function not found\") {{ missing.push(\"{}\"); }} }}\n",
                call.replace('"', "\\\"")
            )
        })
        .collect();
    let scratch = Scratch::new("rhai_definitions");
    // The answer is then streamed: `missing`, as JSON, is its only chunk.
    scratch.write(
        "calls.rhai",
        &format!("let missing = [];\nlet response_stream = context.stream();\n{script}missing"),
    );
    let missing = invoke(&scratch, "calls.rhai");
    assert_eq!(missing, serde_json::json!([]), "defined but not registered");
}
