//! The binding layer on its own: a described module in both languages, its
//! errors (plain and typed), its lazy Lua table.

use mlua::Lua;

use super::{Args, Error, Function, Module, Param, Type, TypedError, Value};

/// `test.twice(text)` doubles a string; `test.fail(kind)` fails as `kind` says.
fn twice(args: &Args) -> Result<Value, Error> {
    let text = args.text(1)?;
    Ok(Value::Text(format!("{text}{text}")))
}

fn fail(args: &Args) -> Result<Value, Error> {
    Err(match args.text(1)? {
        "typed" => Error::Typed(TypedError {
            error_type: "Test.Failure".into(),
            message: "it failed on purpose".into(),
            fields: vec![("status".into(), Value::Int(503))],
        }),
        other => Error::Failed(format!("asked to fail: {other}")),
    })
}

static TEST: Module = Module {
    name: "test",
    functions: &[
        Function {
            name: "twice",
            params: &[Param::new("text", Type::Text)],
            returns: Type::Text,
            doc: "Doubles `text`.",
            call: twice,
            rhai_blob_twin: None,
        },
        Function {
            name: "fail",
            params: &[Param::new("kind", Type::Text)],
            returns: Type::Nothing,
            doc: "Fails.",
            call: fail,
            rhai_blob_twin: None,
        },
    ],
};

fn lua() -> Lua {
    let lua = Lua::new();
    crate::json::lua::Codec::install(&lua).unwrap();
    super::lua::register(&lua, &TEST).unwrap();
    lua
}

#[test]
fn lua_errors_are_strings_at_the_callers_line_or_typed_tables() -> mlua::Result<()> {
    let lua = lua();
    let results: Vec<String> = lua
        .load(
            r#"
            local _, plain = pcall(function() local x = test.twice(true) end)
            local _, tail = pcall(function() return test.fail("plain") end)
            local _, typed = pcall(test.fail, "typed")
            return plain, tail, typed.errorType, typed.errorMessage, tostring(typed.status),
              tostring(typed), test.twice("ab")
            "#,
        )
        .set_name("@chunk.lua")
        .eval::<mlua::Variadic<String>>()?
        .to_vec();
    assert_eq!(
        results,
        [
            "chunk.lua:2: test.twice: argument 1 must be a string, not boolean",
            "chunk.lua:3: test.fail: asked to fail: plain",
            "Test.Failure",
            "it failed on purpose",
            "503",
            "Test.Failure: it failed on purpose",
            "abab",
        ]
    );
    Ok(())
}

#[test]
fn a_lua_module_is_built_on_first_use_and_require_gives_the_same_table() -> mlua::Result<()> {
    let lua = lua();
    let (before, names, same): (usize, String, bool) = lua
        .load(
            r#"
            local before = rawget(test, "twice") == nil and 0 or 1
            local names = {}
            for name in pairs(test) do names[#names + 1] = name end
            table.sort(names)
            return before, table.concat(names, ","), require("test") == test
            "#,
        )
        .eval()?;
    assert_eq!((before, names.as_str(), same), (0, "fail,twice", true));
    assert!(lua.load("getmetatable(test) == nil").eval::<bool>()?);
    Ok(())
}

#[test]
fn rhai_errors_are_thrown_at_the_call_or_as_typed_maps() {
    let mut engine = rhai::Engine::new();
    super::rhai::register(&mut engine, &TEST, None);
    let result: rhai::Map = engine
        .eval(
            r#"
            let out = #{ doubled: test::twice("ab") };
            try { test::twice(1); } catch (e) { out.plain = e; }
            try { test::fail("typed"); } catch (e) { out.typed = e; }
            out
            "#,
        )
        .unwrap();
    assert_eq!(result["doubled"].to_string(), "abab");
    assert_eq!(
        result["plain"].to_string(),
        "test::twice: argument 1 must be a string, not integer"
    );
    let typed = result["typed"].read_lock::<rhai::Map>().unwrap();
    assert_eq!(typed["errorType"].to_string(), "Test.Failure");
    assert_eq!(typed["errorMessage"].to_string(), "it failed on purpose");
    assert_eq!(typed["status"].as_int(), Ok(503));

    // Uncaught, the error carries the call's position, as a script's `throw` does.
    let err = engine.eval::<()>("\n  test::fail(\"plain\")").unwrap_err();
    assert_eq!(err.position().line(), Some(2));
}

#[test]
fn rhai_definitions_are_written_from_the_registrations() {
    let mut engine = rhai::Engine::new_raw();
    let mut definitions = super::rhai::Definitions::default();
    super::rhai::register(&mut engine, &TEST, Some(&mut definitions));
    let files: Vec<(&str, &str)> = definitions.files().collect();
    assert_eq!(
        files,
        [(
            "test.d.rhai",
            "module test;\n\n/// Fails.\nfn fail(kind: String) -> ();\n\n/// Doubles `text`.\nfn twice(text: String) -> String;\n"
        )]
    );
}
