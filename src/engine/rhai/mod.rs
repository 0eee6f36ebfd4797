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

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use rhai::{AST, CallFnOptions, Dynamic, FnAccess, INT, Map, Module, Scope};

use crate::context::Context;
use crate::deadline;
use crate::diagnostic::{Diagnostic, error_type};
use crate::engine::{Engine, ResponseBodies, Retire};
use crate::handler_spec::{Form, Handler};
use crate::json;
use crate::limits::Limits;
use crate::memory;
use crate::stdlib;
use errors::{MemoryLimitHit, init_error, location, script_error};

mod errors;
mod expanding;
mod imports;
mod printing;

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
/// A statement ending the top-level code of function handlers: see [`RhaiEngine::load`].
const CAPTURE_SCOPE: &str = "__lure_capture_scope";

pub struct RhaiEngine {
    engine: rhai::Engine,
    ast: AST,
    entry: Entry,
    responses: ResponseBodies,
    /// The scripts' memory limit (the thread's heap).
    memory_limit: usize,
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
    pub fn load(handler: &Handler, limits: &Limits) -> Result<Self, Diagnostic> {
        let mut engine = new_engine(handler);
        stop_at_deadline_or_memory_limit(&mut engine, limits.script_memory);
        crate::limits::set_script_memory(limits.script_memory);
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
                responses: ResponseBodies::new(limits.response_bytes),
                memory_limit: limits.script_memory,
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
            responses: ResponseBodies::new(limits.response_bytes),
            memory_limit: limits.script_memory,
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
        let event = json::rhai::decode(event).map_err(|e| match e {
            json::rhai::DecodeError::Json(e) => Diagnostic::unmarshal(e),
            json::rhai::DecodeError::OutOfMemory => Diagnostic::runtime(
                error_type::OUT_OF_MEMORY,
                format!(
                    "The script exceeded its memory limit of {} MB while the event was decoded",
                    self.memory_limit >> 20
                ),
            ),
        })?;
        let stop = context
            .deadline_known
            .then(|| deadline::stop_time(context.deadline_ms));
        let context = context_map(context);
        let started = Instant::now();
        deadline::arm(stop);
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
        if deadline::disarm() {
            return Err(Diagnostic::timeout(started.elapsed()));
        }
        let result = result?;
        if crate::stream::is_started() {
            // The stream's last chunk: text and Blobs as they are, () nothing.
            if result.is_unit() {
                return Ok(Vec::new());
            }
            if let Some(text) = result.read_lock::<rhai::ImmutableString>() {
                return Ok(text.as_bytes().to_vec());
            }
            if let Some(blob) = result.read_lock::<rhai::Blob>() {
                return Ok(blob.clone());
            }
        }
        self.responses
            .body(|writer| json::rhai::encode(&result, writer))
    }

    /// Rhai frees values by reference counting, so values that refer to each
    /// other (closures that capture each other) are never freed. When, with the
    /// invocation's values gone, the thread still holds more than three quarters
    /// of the scripts' memory, later invocations would run out of it: this
    /// environment ends, and the next invocation's (with its cold start) gets the
    /// memory back. State kept on purpose between invocations counts too.
    fn after_answer(&mut self) -> Result<(), Retire> {
        let held = memory::thread_heap();
        if held > self.memory_limit / 4 * 3 {
            return Err(Retire(format!(
                "the Rhai engine holds {} MB after the invocation, over three quarters of \
                 the scripts' {} MB (values Rhai cannot free, such as closures that capture \
                 each other, or state kept between invocations); the next invocation starts \
                 in a fresh environment",
                held >> 20,
                self.memory_limit >> 20
            )));
        }
        Ok(())
    }
}

/// How many Rhai operations run between two looks at the clock.
const OPERATIONS_PER_CHECK: u64 = 1024;

/// Terminates the script once the invocation's stop has passed, or when its
/// thread holds more heap than `memory_limit` (checked at every operation: a
/// counter read, and each operation can only add one value, itself bounded by
/// the size limits). Rhai's `try`/`catch` cannot catch a termination, so the stop
/// always reaches lure.
fn stop_at_deadline_or_memory_limit(engine: &mut rhai::Engine, memory_limit: usize) {
    engine.on_progress(move |operations| {
        if memory::thread_heap() > memory_limit {
            // The script's values are dropped as the termination unwinds it.
            return Some(Dynamic::from(MemoryLimitHit {
                limit_mb: memory_limit >> 20,
            }));
        }
        if operations % OPERATIONS_PER_CHECK == 0 && deadline::check() {
            return Some(Dynamic::from("Runtime.Timeout"));
        }
        None
    });
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

    engine.set_module_resolver(imports::Imports::new(&handler.task_root));
    // `eval` recurses without counting call levels, until the stack overflows:
    // scripts have no use for it on Lambda (`import` loads code).
    engine.disable_symbol("eval");

    stdlib::register_rhai(&mut engine, None);
    expanding::register(&mut engine);
    printing::register(&mut engine);
    engine
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
    let optional = |s: Option<&str>| s.map_or(Dynamic::UNIT, string);
    set("tenant_id", optional(context.tenant_id));
    set("xray_trace_id", optional(context.xray_trace_id));
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

#[cfg(test)]
mod tests;
