//! The Rhai engine (SPEC §2, §4–§6).
//!
//! One `rhai::Engine` and one compiled `AST` per process. A function handler
//! (`app.handler`, or `fn main` in `app.rhai`): the script's top-level code runs once,
//! at init, and the handler is called with a copy of the top-level scope that lives
//! as long as the engine, so it reads and updates top-level `let` variables directly
//! and their values survive warm invocations, as module scope does on Node.js. Other
//! functions see their arguments, imports and `global::NAME` constants, as usual in
//! Rhai. A script without `fn main` named as `app.rhai` is itself the handler: its
//! body runs per invocation with `event` and `context` in scope.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use rhai::module_resolvers::{FileModuleResolver, ModuleResolversCollection};
use rhai::{
    AST, CallFnOptions, Dynamic, EvalAltResult, FnAccess, INT, Map, Module, Position, Scope,
};

use crate::context::{self, Context};
use crate::diagnostic::{Diagnostic, error_type};
use crate::engine::{Engine, ResponseBodies, memory, script_memory_limit, stop_time};
use crate::handler_spec::{Form, Handler};
use crate::json;
use crate::log::{self, Level};

/// Nested script function calls. Each level costs tens of KB of stack in a debug
/// build; 64 levels of functions whose bodies use the full expression depth below
/// were measured to fit in the 8 MB main-thread stack of a debug build (80 did not),
/// and release builds use a fraction of that. Rhai's own release default is 64.
const MAX_CALL_LEVELS: usize = 64;
/// Expression nesting at top level and inside functions. Each nested literal costs
/// about four levels (`#{ a: [ #{ ... } ] }`), so Rhai's release defaults (64/32)
/// would reject ordinary nested response literals; top-level code runs at call
/// level 0 only, so it can afford more than function bodies.
const MAX_EXPR_DEPTH: usize = 128;
const MAX_FUNCTION_EXPR_DEPTH: usize = 64;
/// Size limits stop a runaway script before it takes the process down; Rhai counts
/// them over a whole value, nested arrays and maps included. A 6 MB event or
/// response fits easily: 16 MiB of string data, and a million array elements or map
/// properties (a 6 MB JSON document cannot hold more map properties than that, and
/// only arrays of one-digit numbers hold more elements). At the limit an array is
/// 16 MB of `Dynamic`s and a map about 60 MB, within the smallest (128 MB) function.
const MAX_STRING_SIZE: usize = 16 << 20;
const MAX_ARRAY_SIZE: usize = 1_000_000;
const MAX_MAP_SIZE: usize = 1_000_000;
/// Where `import` looks after the task root: a layer's shared modules.
const LAYER_MODULE_DIR: &str = "/opt/rhai";
/// A statement ending the top-level code of function handlers: see [`RhaiEngine::load`].
const CAPTURE_SCOPE: &str = "__lure_capture_scope";

pub struct RhaiEngine {
    engine: rhai::Engine,
    ast: AST,
    entry: Entry,
    /// When the current invocation must stop; read by the progress callback.
    deadline: Rc<Cell<Option<Instant>>>,
    /// Set by the progress callback when it stopped the script.
    timed_out: Rc<Cell<bool>>,
    responses: ResponseBodies,
}

enum Entry {
    /// The script body is the handler.
    Body,
    /// A script function is the handler.
    Function {
        name: String,
        arity: usize,
        /// The top-level variables, kept between invocations.
        scope: Scope<'static>,
    },
}

impl RhaiEngine {
    pub fn load(handler: &Handler) -> Result<Self, Diagnostic> {
        let mut engine = new_engine(handler);
        let deadline = Rc::new(Cell::new(None));
        let timed_out = Rc::new(Cell::new(false));
        let memory_limit = script_memory_limit();
        stop_at_deadline_or_memory_limit(&mut engine, &deadline, &timed_out, memory_limit);
        let top_level = Rc::new(RefCell::new(None));
        let capture = top_level.clone();
        engine
            .register_custom_syntax([CAPTURE_SCOPE], false, move |context, _| {
                let imports: Vec<(String, Module)> = context
                    .iter_imports()
                    .map(|(alias, module)| (alias.to_owned(), module.clone()))
                    .collect();
                *capture.borrow_mut() = Some((copy_scope(context.scope()), imports));
                Ok(Dynamic::UNIT)
            })
            .expect("valid custom syntax");
        let mut ast = compile(&engine, handler)?;

        let defines_main = ast.iter_functions().any(|f| f.name == "main");
        if handler.form == Form::ScriptFile && !defines_main {
            ast.set_source(handler.script.as_str());
            return Ok(RhaiEngine {
                engine,
                ast,
                entry: Entry::Body,
                deadline,
                timed_out,
                responses: ResponseBodies::default(),
            });
        }
        let arity = handler_arity(&ast, handler)?;

        // Top-level code runs once, here, as a module: that way each function keeps
        // the imports and constants of the run (`util::f()`, `global::NAME`), which
        // otherwise end with it. Its last statement copies the top-level variables
        // and constants into the scope the handler is called with, and the imports:
        // Rhai calls the handler itself without the module's environment, so they
        // become static modules, found by the same names.
        ast.combine(
            engine
                .compile(CAPTURE_SCOPE)
                .expect("custom syntax compiles"),
        );
        ast.set_source(handler.script.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, &engine)
            .map_err(|err| init_error(*err, &handler.script))?;
        let mut functions = AST::new_from_module(module);
        functions.set_source(handler.script.as_str());
        let (scope, imports) = top_level.take().unwrap_or_default();
        // Innermost first: register the oldest first so that a later `import ... as x`
        // wins, as it does in the script.
        for (alias, module) in imports.into_iter().rev() {
            engine.register_static_module(alias, module.into());
        }

        Ok(RhaiEngine {
            engine,
            ast: functions,
            entry: Entry::Function {
                name: handler.function.clone(),
                arity,
                scope,
            },
            deadline,
            timed_out,
            responses: ResponseBodies::default(),
        })
    }
}

/// A copy of the top-level variables and constants, in order.
fn copy_scope(scope: &Scope) -> Scope<'static> {
    let mut copy = Scope::new();
    for (name, is_constant, value) in scope.iter_raw() {
        if is_constant {
            copy.push_constant_dynamic(name, value.clone());
        } else {
            copy.push_dynamic(name, value.clone());
        }
    }
    copy
}

impl Engine for RhaiEngine {
    fn invoke(&mut self, event: &[u8], context: &Context<'_>) -> Result<Vec<u8>, Diagnostic> {
        let event = json::rhai::decode(event).map_err(Diagnostic::unmarshal)?;
        let stop = context
            .deadline_known
            .then(|| stop_time(context.deadline_ms));
        let context = context_map(context);
        let started = Instant::now();
        self.deadline.set(stop);
        self.timed_out.set(false);
        let result = match &mut self.entry {
            Entry::Body => {
                let mut scope = Scope::new();
                scope.push("event", event);
                scope.push("context", context);
                self.engine
                    .eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast)
                    .map_err(|err| script_error(*err, self.ast.source().unwrap_or(""), None))
            }
            Entry::Function { name, arity, scope } => {
                let args: Vec<Dynamic> = [event, context].into_iter().take(*arity).collect();
                let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
                let top_level = scope.len();
                let result = self
                    .engine
                    .call_fn_with_options::<Dynamic>(options, scope, &self.ast, &*name, args)
                    .map_err(|err| script_error(*err, self.ast.source().unwrap_or(""), Some(name)));
                scope.rewind(top_level);
                result
            }
        };
        self.deadline.set(None);
        if self.timed_out.replace(false) {
            return Err(Diagnostic::timeout(started.elapsed()));
        }
        let result = result?;

        self.responses
            .body(|writer| json::rhai::encode(&result, writer))
    }
}

/// How many Rhai operations run between two looks at the clock.
const OPERATIONS_PER_CHECK: u64 = 1024;

/// Terminates the script once the invocation's stop time has passed, or when its
/// thread holds more heap than `memory_limit` (checked at every operation: a
/// counter read, and each operation can only add one value, itself bounded by
/// the size limits). Rhai's `try`/`catch` cannot catch a termination, so the stop
/// always reaches lure.
fn stop_at_deadline_or_memory_limit(
    engine: &mut rhai::Engine,
    deadline: &Rc<Cell<Option<Instant>>>,
    timed_out: &Rc<Cell<bool>>,
    memory_limit: usize,
) {
    let (deadline, timed_out) = (deadline.clone(), timed_out.clone());
    engine.on_progress(move |operations| {
        if memory::thread_heap() > memory_limit {
            // The script's values are dropped as the termination unwinds it.
            return Some(Dynamic::from(MemoryLimitHit {
                limit_mb: memory_limit >> 20,
            }));
        }
        if operations % OPERATIONS_PER_CHECK != 0 {
            return None;
        }
        match deadline.get() {
            Some(stop) if Instant::now() >= stop => {
                timed_out.set(true);
                Some(Dynamic::from("Runtime.Timeout"))
            }
            _ => None,
        }
    });
}

/// The termination value of a script stopped at the memory limit.
#[derive(Debug, Clone, Copy)]
struct MemoryLimitHit {
    limit_mb: usize,
}

fn new_engine(handler: &Handler) -> rhai::Engine {
    let mut engine = rhai::Engine::new();
    engine
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FUNCTION_EXPR_DEPTH)
        // Unlimited: the invocation deadline will stop runaway loops instead.
        .set_max_operations(0)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE);
    engine.on_print(|text| log::write(Level::Info, text));
    engine.on_debug(|text, _source, _position| log::write(Level::Info, text));

    let mut resolvers = ModuleResolversCollection::new();
    resolvers.push(FileModuleResolver::new_with_path(&handler.task_root));
    resolvers.push(FileModuleResolver::new_with_path(LAYER_MODULE_DIR));
    engine.set_module_resolver(resolvers);

    crate::stdlib::register_rhai(&mut engine);
    engine.register_fn("get_remaining_time_in_millis", remaining_time_in_millis);
    engine
}

/// `context.get_remaining_time_in_millis()`.
fn remaining_time_in_millis(context: &mut Map) -> INT {
    let deadline_ms = context
        .get("deadline_ms")
        .and_then(|v| v.as_int().ok())
        .unwrap_or(0);
    let remaining = context::remaining_time_ms(u64::try_from(deadline_ms).unwrap_or(0));
    INT::try_from(remaining).unwrap_or(INT::MAX)
}

fn compile(engine: &rhai::Engine, handler: &Handler) -> Result<AST, Diagnostic> {
    let mut text = std::fs::read_to_string(handler.script_path()).map_err(|e| {
        Diagnostic::runtime(
            error_type::IMPORT_MODULE_ERROR,
            format!("Cannot load '{}': {e}", handler.script),
        )
    })?;
    if text.starts_with("#!") {
        // A shebang line: blank it, keeping line numbers.
        let end = text.find('\n').unwrap_or(text.len());
        text.replace_range(..end, "");
    }
    let ast = engine.compile(&text).map_err(|err| {
        Diagnostic::runtime(
            error_type::USER_CODE_SYNTAX_ERROR,
            format!(
                "{}: {}",
                location(&handler.script, err.position(), true),
                err.err_type()
            ),
        )
    })?;
    Ok(ast)
}

/// The handler function's parameter count: `(event, context)` preferred, then
/// `(event)`, then `()`.
fn handler_arity(ast: &AST, handler: &Handler) -> Result<usize, Diagnostic> {
    let name = &handler.function;
    let script = &handler.script;
    let defined: Vec<_> = ast
        .iter_functions()
        .filter(|f| f.name == name.as_str())
        .collect();
    // Init keeps public functions only (a module's exports).
    if !defined.is_empty() && defined.iter().all(|f| f.access == FnAccess::Private) {
        return Err(Diagnostic::runtime(
            error_type::HANDLER_NOT_FOUND,
            format!("fn {name} in {script} is private; remove `private` to use it as the handler"),
        ));
    }
    let arities: Vec<usize> = defined
        .iter()
        .filter(|f| f.access != FnAccess::Private)
        .map(|f| f.params.len())
        .collect();
    if let Some(arity) = [2, 1, 0].into_iter().find(|a| arities.contains(a)) {
        return Ok(arity);
    }
    Err(Diagnostic::runtime(
        error_type::HANDLER_NOT_FOUND,
        if arities.is_empty() {
            format!("{script} does not define fn {name}")
        } else {
            format!(
                "fn {name} in {script} takes {} parameters; a handler takes (event, context), (event) or ()",
                arities[0]
            )
        },
    ))
}

/// The `context` map (SPEC §4).
fn context_map(context: &Context<'_>) -> Dynamic {
    let mut map = Map::new();
    let mut set = |key: &str, value: Dynamic| {
        map.insert(key.into(), value);
    };
    let string = |s: &str| Dynamic::from(s.to_owned());
    let int = |n: u64| Dynamic::from_int(INT::try_from(n).unwrap_or(INT::MAX));
    set("aws_request_id", string(context.aws_request_id));
    set("function_name", string(context.function_name));
    set("function_version", string(context.function_version));
    set("invoked_function_arn", string(context.invoked_function_arn));
    set("memory_limit_in_mb", int(context.memory_limit_in_mb));
    set("log_group_name", string(context.log_group_name));
    set("log_stream_name", string(context.log_stream_name));
    set("deadline_ms", int(context.deadline_ms));
    set("identity", json_header(context.identity));
    set("client_context", json_header(context.client_context));
    let headers: Map = context
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().into(), string(v)))
        .collect();
    set("headers", Dynamic::from_map(headers));
    Dynamic::from_map(map)
}

/// A header carrying JSON: decoded if it is valid JSON, the raw text if not.
fn json_header(raw: Option<&str>) -> Dynamic {
    match raw {
        None => Dynamic::UNIT,
        Some(text) => {
            json::rhai::decode(text.as_bytes()).unwrap_or_else(|_| Dynamic::from(text.to_owned()))
        }
    }
}

/// An error from top-level code at init: an import error keeping the original message.
fn init_error(err: EvalAltResult, script: &str) -> Diagnostic {
    let diagnostic = script_error(err, script, None);
    if diagnostic.from_runtime {
        return diagnostic;
    }
    let message = if diagnostic.error_type == error_type::SCRIPT_ERROR {
        diagnostic.error_message
    } else {
        format!("{}: {}", diagnostic.error_type, diagnostic.error_message)
    };
    Diagnostic {
        stack_trace: diagnostic.stack_trace,
        ..Diagnostic::runtime(error_type::IMPORT_MODULE_ERROR, message)
    }
}

/// Turns a Rhai error into the answer for the invocation (SPEC §5). `script` is the
/// source the error unwinds to; `function` the script function called from Rust, if
/// any (Rhai strips its `ErrorInFunctionCall` layer).
fn script_error(err: EvalAltResult, script: &str, function: Option<&str>) -> Diagnostic {
    // Unwrap call layers, outermost first: each names the function it entered and
    // where, in the function being left, the call was made.
    let mut stack = Vec::new();
    let mut source = script.to_owned();
    let mut function = function.map(str::to_owned);
    let mut err = err;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(callee, callee_source, inner, call) => {
                stack.push(frame(&source, call, function.as_deref()));
                if !callee_source.is_empty() {
                    source = module_file(&callee_source);
                }
                function = Some(callee);
                err = *inner;
            }
            EvalAltResult::ErrorInModule(module, inner, import) => {
                stack.push(frame(&source, import, function.as_deref()));
                source = module_file(&module);
                function = None;
                err = *inner;
            }
            _ => break,
        }
    }
    let position = err.position();
    stack.push(frame(&source, position, function.as_deref()));
    stack.reverse();

    let message = match err {
        EvalAltResult::ErrorRuntime(value, _) => return thrown(value, &source, position, stack),
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            return Diagnostic::runtime(
                error_type::OUT_OF_MEMORY,
                format!(
                    "{}: {}",
                    location(&source, position, true),
                    size_limit_message(&what)
                ),
            );
        }
        EvalAltResult::ErrorTerminated(token, _) if token.is::<MemoryLimitHit>() => {
            let limit_mb = token.cast::<MemoryLimitHit>().limit_mb;
            return Diagnostic::runtime(
                error_type::OUT_OF_MEMORY,
                format!(
                    "{}: the script exceeded its memory limit of {limit_mb} MB",
                    location(&source, position, true)
                ),
            );
        }
        EvalAltResult::ErrorTooManyOperations(_) => {
            return Diagnostic::runtime(
                error_type::OUT_OF_MEMORY,
                format!("{}: too many operations", location(&source, position, true)),
            );
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            format!("stack overflow (more than {MAX_CALL_LEVELS} nested function calls)")
        }
        mut other => {
            other.clear_position();
            other.to_string()
        }
    };
    Diagnostic::script(
        error_type::SCRIPT_ERROR,
        format!("{}: {message}", location(&source, position, true)),
        stack,
    )
}

/// `throw value`: a map with `errorType` sets the type (SPEC §5); anything else is an
/// `Error` whose message reads like Lua's `error("msg")`: `file:line: msg`.
fn thrown(value: Dynamic, source: &str, position: Position, stack: Vec<String>) -> Diagnostic {
    let typed = value.read_lock::<Map>().and_then(|map| {
        let kind = map.get("errorType").filter(|t| t.is_string())?.to_string();
        let message = map.get("errorMessage").map(|m| m.to_string());
        Some((kind, message.unwrap_or_default()))
    });
    if let Some((kind, message)) = typed {
        return Diagnostic::script(kind, message, stack);
    }
    Diagnostic::script(
        error_type::SCRIPT_ERROR,
        format!("{}: {value}", location(source, position, false)),
        stack,
    )
}

fn size_limit_message(what: &str) -> String {
    let limit = match what {
        "Length of string" => format!("string data is limited to {MAX_STRING_SIZE} bytes"),
        "Size of object map" => format!("object maps are limited to {MAX_MAP_SIZE} properties"),
        _ => format!("arrays are limited to {MAX_ARRAY_SIZE} elements"),
    };
    format!("{what} too large: {limit} in one value, nested values included")
}

/// `file:line:column` of a frame, then ` in fn name` inside a function.
fn frame(source: &str, position: Position, function: Option<&str>) -> String {
    let place = location(source, position, true);
    match function {
        Some(name) if name.starts_with("anon$") => format!("{place} in closure"),
        Some(name) => format!("{place} in fn {name}"),
        None => place,
    }
}

/// `file:line:column` (or `file:line`); just `file` where Rhai knows no position.
fn location(source: &str, position: Position, with_column: bool) -> String {
    match (position.line(), position.position()) {
        (Some(line), Some(column)) if with_column => format!("{source}:{line}:{column}"),
        (Some(line), _) => format!("{source}:{line}"),
        _ => source.to_owned(),
    }
}

/// Rhai names a module by its import path (`lib/util`); show the file.
fn module_file(path: &str) -> String {
    if path.ends_with(".rhai") {
        path.to_owned()
    } else {
        format!("{path}.rhai")
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::context::{FunctionInfo, header};
    use crate::handler_spec;
    use crate::test_support::on_main_sized_stack;

    type Result<T = ()> = std::result::Result<T, Diagnostic>;

    /// A fresh task root holding `files`.
    fn task_root(test: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lure-rhai-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn load(test: &str, handler: &str, files: &[(&str, &str)]) -> Result<RhaiEngine> {
        let root = task_root(test, files);
        RhaiEngine::load(&handler_spec::resolve(handler, &root)?)
    }

    /// Invokes with a context made of `headers` and a fixed function's facts.
    fn invoke_with(
        engine: &mut RhaiEngine,
        event: &str,
        headers: &[(&str, &str)],
    ) -> std::result::Result<Vec<u8>, Diagnostic> {
        let info = FunctionInfo {
            function_name: "orders".into(),
            function_version: "$LATEST".into(),
            memory_limit_in_mb: 256,
            log_group_name: "/aws/lambda/orders".into(),
            log_stream_name: "2024/05/01/[$LATEST]abc".into(),
        };
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        engine.invoke(
            event.as_bytes(),
            &Context::new(&info, &headers, SystemTime::now()),
        )
    }

    fn invoke(engine: &mut RhaiEngine, event: &str) -> Result<String> {
        let body = invoke_with(engine, event, &[(header::REQUEST_ID, "req-1")])?;
        Ok(String::from_utf8(body).expect("JSON is UTF-8"))
    }

    fn invoke_err(engine: &mut RhaiEngine, event: &str) -> Diagnostic {
        invoke(engine, event).expect_err("the invocation fails")
    }

    #[test]
    fn script_body_is_the_handler_without_main() -> Result {
        let mut engine = load(
            "body",
            "hello.rhai",
            &[(
                "hello.rhai",
                "let n = event.name;\n#{ greeting: `hello ${n}`, id: context.aws_request_id }",
            )],
        )?;
        assert_eq!(
            invoke(&mut engine, r#"{"name":"Ann"}"#)?,
            r#"{"greeting":"hello Ann","id":"req-1"}"#
        );
        assert_eq!(
            invoke(&mut engine, r#"{"name":"Bo"}"#)?,
            r#"{"greeting":"hello Bo","id":"req-1"}"#
        );
        Ok(())
    }

    #[test]
    fn script_file_calls_main_when_defined() -> Result {
        let script =
            "let calls = 0;\nfn main(event, context) { calls += 1; #{ calls: calls, x: event.x } }";
        let mut engine = load(
            "main",
            "jobs/nightly.rhai",
            &[("jobs/nightly.rhai", script)],
        )?;
        assert_eq!(invoke(&mut engine, r#"{"x":1}"#)?, r#"{"calls":1,"x":1}"#);
        assert_eq!(invoke(&mut engine, r#"{"x":2}"#)?, r#"{"calls":2,"x":2}"#);
        Ok(())
    }

    #[test]
    fn named_function_with_each_arity() -> Result {
        let script = "fn none() { 0 }\nfn one(event) { event }\nfn two(event, context) { [event, context.function_name] }";
        let files = [("app.rhai", script)];
        assert_eq!(invoke(&mut load("arity0", "app.none", &files)?, "1")?, "0");
        assert_eq!(
            invoke(&mut load("arity1", "app.one", &files)?, "[1.5]")?,
            "[1.5]"
        );
        assert_eq!(
            invoke(&mut load("arity2", "app.two", &files)?, "true")?,
            r#"[true,"orders"]"#
        );
        let overloaded = [("app.rhai", "fn h() { 0 }\nfn h(e) { 1 }\nfn h(e, c) { 2 }")];
        assert_eq!(
            invoke(&mut load("overloaded", "app.h", &overloaded)?, "{}")?,
            "2"
        );
        Ok(())
    }

    #[test]
    fn missing_or_unusable_handler_function() {
        let files = [("app.rhai", "fn three(a, b, c) { 0 }")];
        let err = load("nofn", "app.handler", &files).err().unwrap();
        assert_eq!(err.error_type, error_type::HANDLER_NOT_FOUND);
        assert_eq!(err.error_message, "app.rhai does not define fn handler");
        let err = load(
            "private",
            "app.hidden",
            &[("app.rhai", "private fn hidden() { 0 }")],
        )
        .err()
        .unwrap();
        assert_eq!(err.error_type, error_type::HANDLER_NOT_FOUND);
        assert!(
            err.error_message.contains("is private"),
            "{}",
            err.error_message
        );
        let err = load("arity3", "app.three", &files).err().unwrap();
        assert_eq!(err.error_type, error_type::HANDLER_NOT_FOUND);
        assert!(
            err.error_message.contains("takes 3 parameters"),
            "{}",
            err.error_message
        );
    }

    #[test]
    fn top_level_state_survives_warm_invocations() -> Result {
        let script = r#"
            print("init");            // runs once
            let seen = [];
            let cache = #{};
            const GREETING = "hi";
            fn greet(name) { global::GREETING + " " + name }
            fn handler(event) {
                seen.push(event.id);
                cache[event.id] = greet(event.id);
                let local = 1;        // gone after the call
                #{ seen: seen, cache: cache }
            }
        "#;
        let mut engine = load("state", "app.handler", &[("app.rhai", script)])?;
        assert_eq!(
            invoke(&mut engine, r#"{"id":"a"}"#)?,
            r#"{"cache":{"a":"hi a"},"seen":["a"]}"#
        );
        assert_eq!(
            invoke(&mut engine, r#"{"id":"b"}"#)?,
            r#"{"cache":{"a":"hi a","b":"hi b"},"seen":["a","b"]}"#
        );
        Ok(())
    }

    #[test]
    fn context_fields_and_remaining_time() -> Result {
        let script = r#"
            fn handler(event, context) {
                let c = context;
                let left = c.get_remaining_time_in_millis();
                c.remove("deadline_ms");
                c.ok = left > 0 && left <= 10000;
                c
            }
        "#;
        let mut engine = load("context", "app.handler", &[("app.rhai", script)])?;
        let deadline = context::epoch_ms(SystemTime::now() + Duration::from_secs(10)).to_string();
        let headers = [
            (header::REQUEST_ID, "req-9"),
            (header::DEADLINE_MS, &deadline),
            (
                header::INVOKED_FUNCTION_ARN,
                "arn:aws:lambda:eu-west-1:1:function:orders",
            ),
            (header::COGNITO_IDENTITY, r#"{"cognitoIdentityId":"id-1"}"#),
            (header::CLIENT_CONTEXT, "not json"),
        ];
        let body = String::from_utf8(invoke_with(&mut engine, "{}", &headers)?).unwrap();
        assert_eq!(
            body,
            concat!(
                r#"{"aws_request_id":"req-9","client_context":"not json","function_name":"orders","#,
                r#""function_version":"$LATEST","headers":{"lambda-runtime-aws-request-id":"req-9","#,
                r#""lambda-runtime-client-context":"not json","#,
                r#""lambda-runtime-cognito-identity":"{\"cognitoIdentityId\":\"id-1\"}","#,
                r#""lambda-runtime-deadline-ms":"DEADLINE","#,
                r#""lambda-runtime-invoked-function-arn":"arn:aws:lambda:eu-west-1:1:function:orders"},"#,
                r#""identity":{"cognitoIdentityId":"id-1"},"#,
                r#""invoked_function_arn":"arn:aws:lambda:eu-west-1:1:function:orders","#,
                r#""log_group_name":"/aws/lambda/orders","log_stream_name":"2024/05/01/[$LATEST]abc","#,
                r#""memory_limit_in_mb":256,"ok":true}"#
            )
            .replace("DEADLINE", &deadline)
        );

        // No plausible deadline: the clock counts down from Lambda's longest timeout.
        let script = "context.get_remaining_time_in_millis()";
        let mut engine = load("no-deadline", "left.rhai", &[("left.rhai", script)])?;
        let left: u64 = invoke(&mut engine, "{}")?.parse().unwrap();
        assert!((899_000..=900_000).contains(&left), "{left}");
        let body = invoke_with(&mut engine, "{}", &[(header::DEADLINE_MS, "600000")])?;
        let left: u64 = String::from_utf8(body).unwrap().parse().unwrap();
        assert!((899_000..=900_000).contains(&left), "{left}");
        Ok(())
    }

    #[test]
    fn absent_identity_is_unit() -> Result {
        let script = "[context.identity, context.client_context]";
        let mut engine = load("identity", "ctx.rhai", &[("ctx.rhai", script)])?;
        assert_eq!(invoke(&mut engine, "{}")?, "[null,null]");
        Ok(())
    }

    #[test]
    fn thrown_string_reads_like_lua_error() {
        let script = "fn handler(event) {\n    let x = 1;\n    throw \"order missing\";\n}";
        let mut engine = load("throw", "error.handler", &[("error.rhai", script)]).unwrap();
        let err = invoke_err(&mut engine, "{}");
        assert_eq!(err.error_type, "Error");
        assert_eq!(err.error_message, "error.rhai:3: order missing");
        assert_eq!(err.stack_trace, ["error.rhai:3:5 in fn handler"]);
        assert!(!err.from_runtime);
    }

    #[test]
    fn thrown_map_sets_the_error_type() {
        let script =
            r#"throw #{ errorType: "OrderNotFound", errorMessage: `no order ${event.id}` };"#;
        let mut engine = load("typed", "typed.rhai", &[("typed.rhai", script)]).unwrap();
        let err = invoke_err(&mut engine, r#"{"id":7}"#);
        assert_eq!(err.error_type, "OrderNotFound");
        assert_eq!(err.error_message, "no order 7");
        assert_eq!(err.stack_trace, ["typed.rhai:1:1"]);
        assert!(!err.from_runtime);
    }

    #[test]
    fn runtime_errors_name_file_line_and_column_with_callers() {
        let script = "fn validate(order) {\n    if order.qty > 0 { return order; }\n    order.missing_fn()\n}\n\nfn handler(event) {\n    let order = event;\n    validate(order)\n}";
        let mut engine = load("trace", "app.handler", &[("app.rhai", script)]).unwrap();
        let err = invoke_err(&mut engine, r#"{"qty":0}"#);
        assert_eq!(err.error_type, "Error");
        assert_eq!(
            err.error_message,
            "app.rhai:3:11: Function not found: missing_fn (map)"
        );
        assert_eq!(
            err.stack_trace,
            ["app.rhai:3:11 in fn validate", "app.rhai:8:5 in fn handler"]
        );

        let mut engine = load("notfound", "v.rhai", &[("v.rhai", "\n  nope + 1")]).unwrap();
        let err = invoke_err(&mut engine, "{}");
        assert_eq!(err.error_message, "v.rhai:2:3: Variable not found: nope");
        assert_eq!(err.stack_trace, ["v.rhai:2:3"]);
    }

    #[test]
    fn syntax_error_at_init() {
        let err = load(
            "syntax",
            "bad.rhai",
            &[("bad.rhai", "let x = 1;\nlet = 2;")],
        )
        .err()
        .unwrap();
        assert_eq!(err.error_type, error_type::USER_CODE_SYNTAX_ERROR);
        assert!(
            err.error_message.starts_with("bad.rhai:2:5: "),
            "{}",
            err.error_message
        );
        assert!(err.from_runtime);
    }

    #[test]
    fn missing_file_at_init() {
        let root = task_root("missing", &[("gone.rhai", "1")]);
        let handler = handler_spec::resolve("gone.rhai", &root).unwrap();
        std::fs::remove_file(root.join("gone.rhai")).unwrap();
        let err = RhaiEngine::load(&handler).err().unwrap();
        assert_eq!(err.error_type, error_type::IMPORT_MODULE_ERROR);
        assert!(
            err.error_message.starts_with("Cannot load 'gone.rhai': "),
            "{}",
            err.error_message
        );
    }

    #[test]
    fn top_level_error_is_an_import_error_keeping_the_message() {
        let script = "let config = #{};\nlet port = config.port + 1;\nfn handler() { port }";
        let err = load("toplevel", "app.handler", &[("app.rhai", script)])
            .err()
            .unwrap();
        assert_eq!(err.error_type, error_type::IMPORT_MODULE_ERROR);
        assert_eq!(
            err.error_message,
            "app.rhai:2:24: Function not found: + ((), i64)"
        );
        let script = "throw \"no config\";\nfn handler() { 1 }";
        let err = load("toplevel-throw", "app.handler", &[("app.rhai", script)])
            .err()
            .unwrap();
        assert_eq!(err.error_type, error_type::IMPORT_MODULE_ERROR);
        assert_eq!(err.error_message, "app.rhai:1: no config");
    }

    #[test]
    fn bad_event_is_an_unmarshal_error() -> Result {
        let mut engine = load("unmarshal", "e.rhai", &[("e.rhai", "event")])?;
        let err = invoke_err(&mut engine, "{\"a\":");
        assert_eq!(err.error_type, error_type::UNMARSHAL_ERROR);
        assert_eq!(
            err.error_message,
            "Unable to unmarshal input: EOF while parsing a value at line 1 column 5"
        );
        assert!(err.from_runtime);
        Ok(())
    }

    #[test]
    fn unencodable_result_is_a_marshal_error_naming_the_path() -> Result {
        let script = "#{ items: [1, 2, #{ f: |x| x }] }";
        let mut engine = load("marshal", "m.rhai", &[("m.rhai", script)])?;
        let err = invoke_err(&mut engine, "{}");
        assert_eq!(err.error_type, error_type::MARSHAL_ERROR, "{err:?}");
        assert_eq!(
            err.error_message,
            "Unable to marshal response: a Fn cannot be encoded as JSON at $.items[2].f"
        );
        Ok(())
    }

    #[test]
    fn values_round_trip_through_a_handler() -> Result {
        let mut engine = load("echo", "echo.rhai", &[("echo.rhai", "event")])?;
        let event = r#"{"a":[1,2.5,"é☃",true,null,{}],"b":[],"n":-3}"#;
        assert_eq!(invoke(&mut engine, event)?, event);
        let mut engine = load("types", "t.rhai", &[("t.rhai", "[2.0, 'c', (), \"s\"]")])?;
        assert_eq!(invoke(&mut engine, "{}")?, r#"[2,"c",null,"s"]"#);
        Ok(())
    }

    #[test]
    fn deep_events_decode_and_encode() {
        on_main_sized_stack(|| {
            let mut engine = load("deep", "echo.rhai", &[("echo.rhai", "event")]).unwrap();
            let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
            assert_eq!(
                invoke(&mut engine, &deep(json::MAX_DEPTH)).unwrap(),
                deep(json::MAX_DEPTH)
            );
            let err = invoke_err(&mut engine, &deep(100_000));
            assert_eq!(err.error_type, error_type::UNMARSHAL_ERROR);
            assert!(
                err.error_message.contains("nested deeper than 1024"),
                "{}",
                err.error_message
            );
        });
    }

    #[test]
    fn size_limits_are_out_of_memory() -> Result {
        let cases = [
            (
                "let s = \"x\";\nloop { s += s; }",
                "string data is limited to 16777216 bytes",
            ),
            (
                "let a = [0];\nloop { a += a; }",
                "arrays are limited to 1000000 elements",
            ),
            (
                "let a = [#{ a: 0, b: 1, c: 2, d: 3, e: 4, f: 5, g: 6, h: 7, i: 8, j: 9, k: 10, l: 11, m: 12, n: 13, o: 14, p: 15 }];\nloop { a += a; }",
                // Doubling a million properties' worth of maps holds two copies at
                // once: the heap limit (104 MB, for 128 MB) stops it first.
                "exceeded its memory limit of 104 MB",
            ),
        ];
        for (i, (script, limit)) in cases.into_iter().enumerate() {
            let mut engine = load(&format!("oom{i}"), "oom.rhai", &[("oom.rhai", script)])?;
            let err = invoke_err(&mut engine, "{}");
            assert_eq!(err.error_type, error_type::OUT_OF_MEMORY, "{script}");
            assert!(
                err.error_message.starts_with("oom.rhai:2:"),
                "{}",
                err.error_message
            );
            assert!(err.error_message.contains(limit), "{}", err.error_message);
            // The process and the engine carry on.
            assert_eq!(
                invoke_err(&mut engine, "{}").error_type,
                error_type::OUT_OF_MEMORY
            );
        }
        Ok(())
    }

    /// A map grown through `m[key] = value` escapes Rhai's size limits (Rhai checks
    /// the value assigned, not the map): the heap limit stops it, the values are
    /// freed, and the next invocation may use the memory again.
    #[test]
    fn heap_limit_stops_what_size_limits_miss() -> Result {
        let script = r#"
            fn main(event, context) {
                let s = "";
                s.pad(100000, 'x');
                let m = #{};
                let n = 0;
                for i in 0..event.n { m["k" + i] = s + i; n += 1; }
                n
            }
        "#;
        let mut engine = load("heap", "app.rhai", &[("app.rhai", script)])?;
        let limit = script_memory_limit();
        let entries_over = limit / 100_000 + 100;
        let err = invoke_err(&mut engine, &format!(r#"{{"n":{entries_over}}}"#));
        assert_eq!(err.error_type, error_type::OUT_OF_MEMORY, "{err:?}");
        assert!(
            err.error_message.contains(&format!("{} MB", limit >> 20)),
            "{}",
            err.error_message
        );
        // A third: `s + i` may reserve more than it uses. Had the first run's
        // values not been freed, the heap would already be over the limit.
        let most = limit / 100_000 / 3;
        assert_eq!(
            invoke(&mut engine, &format!(r#"{{"n":{most}}}"#))?,
            most.to_string(),
            "the memory is back"
        );
        Ok(())
    }

    #[test]
    fn runaway_recursion_is_a_clean_error() {
        on_main_sized_stack(|| {
            // Each level also nests expressions as deep as a function body may.
            let nested = (0..15).fold("down(n + 1)".to_owned(), |e, _| format!("[{e}]"));
            let script =
                format!("fn down(n) {{ if n >= 0 {{ {nested} }} }}\nfn handler() {{ down(0) }}");
            let mut engine = load("recursion", "app.handler", &[("app.rhai", &script)]).unwrap();
            let err = invoke_err(&mut engine, "{}");
            assert_eq!(err.error_type, "Error");
            // Rhai passes this error straight up, without the callers' positions.
            assert_eq!(
                err.error_message,
                "app.rhai: stack overflow (more than 64 nested function calls)"
            );
            assert_eq!(err.stack_trace, ["app.rhai in fn handler"]);
        });
    }

    #[test]
    fn imports_resolve_under_the_task_root() -> Result {
        let files = [
            (
                "lib/util.rhai",
                "export const PREFIX = \"hi \";\nfn greet(name) { global::PREFIX + name }\nfn fail() { throw \"util failed\"; }",
            ),
            (
                "app.rhai",
                "import \"lib/util\" as util;\nfn handler(event) { util::greet(event.name) }\nfn inner() { import \"lib/util\" as u; u::PREFIX }\nfn broken() { util::fail() }",
            ),
        ];
        let mut engine = load("import", "app.handler", &files)?;
        assert_eq!(invoke(&mut engine, r#"{"name":"Ann"}"#)?, r#""hi Ann""#);
        assert_eq!(invoke(&mut engine, r#"{"name":"Bo"}"#)?, r#""hi Bo""#);
        let root = std::env::temp_dir().join(format!("lure-rhai-{}-import", std::process::id()));
        let mut engine = RhaiEngine::load(&handler_spec::resolve("app.inner", &root)?)?;
        assert_eq!(invoke(&mut engine, "{}")?, r#""hi ""#);
        let mut engine = RhaiEngine::load(&handler_spec::resolve("app.broken", &root)?)?;
        let err = invoke_err(&mut engine, "{}");
        assert_eq!(err.error_message, "lib/util.rhai:3: util failed");
        assert_eq!(
            err.stack_trace,
            [
                "lib/util.rhai:3:13 in fn fail",
                "app.rhai:4:21 in fn broken"
            ]
        );

        let files = [("app.rhai", "import \"nowhere\" as n;\nfn handler() { 1 }")];
        let err = load("import-missing", "app.handler", &files).err().unwrap();
        assert_eq!(err.error_type, error_type::IMPORT_MODULE_ERROR);
        assert_eq!(err.error_message, "app.rhai:1:8: Module not found: nowhere");
        Ok(())
    }
}
