//! The Lua engine: Lua 5.4 (vendored) through mlua.

use std::cell::RefCell;
use std::ffi::{c_char, c_int};
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value, ffi};

use crate::context::Context;
use crate::deadline;
use crate::diagnostic::{Diagnostic, error_type};
use crate::engine::{Engine, ResponseBodies, Retire};
use crate::handler_spec::{Form, Handler};
use crate::json;
use crate::limits::Limits;
use crate::log;
use crate::stdlib;
use errors::{capture_traceback, error_to_diagnostic};

mod errors;
mod sandbox;

pub struct LuaEngine {
    lua: Lua,
    handler: Function,
    /// Lua's own `xpcall`, called from Rust so that no Lua code of ours runs
    /// between the handler and the error handler.
    xpcall: Function,
    /// Message handler: records the traceback where the error was raised.
    message_handler: Function,
    traceback: Rc<RefCell<Vec<String>>>,
    /// `context:get_remaining_time_in_millis()`, shared by every context table.
    remaining_time: Function,
    /// `context:stream(options)`, shared likewise.
    stream: Function,
    /// Bytes the Lua state may use.
    memory_limit: usize,
    responses: ResponseBodies,
    collector: Collector,
    /// The last invocation's stop: the collection after its answer runs
    /// finalizers, which it holds to the same deadline.
    last_stop: Option<Instant>,
}

/// When Lua's collector runs. An invocation's values (the decoded event above all)
/// are garbage once its answer is encoded, so the engine collects them after the
/// answer is sent, in one full cycle, once they weigh as much as the live set
/// (the rule of Lua's default pause, applied at a better time). An incremental
/// cycle that starts during an invocation marks the event it is still building,
/// and sweeps it later from a cold cache: after each full collection the state
/// gets [`Collector::HEADROOM_KB`] of credit on top of the default pause, so that
/// one invocation's allocations rarely start one. A script that allocates more
/// than that in one invocation gets the incremental collector as usual, and the
/// memory limit still holds (Lua collects in full before it reports running out
/// of memory).
struct Collector {
    /// Bytes in use after the last full collection.
    live: usize,
}

impl Collector {
    /// Kilobytes an invocation may allocate, on top of Lua's pause, before the
    /// incremental collector starts a cycle.
    const HEADROOM_KB: c_int = 4 * 1024;

    fn new(lua: &Lua) -> Self {
        grant_headroom(lua);
        Collector {
            live: lua.used_memory(),
        }
    }

    fn after_answer(&mut self, lua: &Lua) {
        if lua.used_memory() < self.live.saturating_mul(2) {
            return;
        }
        if lua.gc_collect().is_ok() {
            self.live = lua.used_memory();
            grant_headroom(lua);
        }
    }
}

/// Lets the state allocate [`Collector::HEADROOM_KB`] more before the incremental
/// collector's next step: `LUA_GCSTEP` adds its argument to the collector's debt,
/// and a negative one is credit (no step runs while the debt is negative).
fn grant_headroom(lua: &Lua) {
    // SAFETY: with the debt made smaller, `lua_gc` runs no collection step, so
    // it neither allocates nor raises; it touches no stack slot.
    let _ = unsafe {
        lua.exec_raw::<()>((), |state| {
            ffi::lua_gc(state, ffi::LUA_GCSTEP, -Collector::HEADROOM_KB);
        })
    };
}

impl LuaEngine {
    pub fn load(handler: &Handler, limits: &Limits) -> Result<Self, Diagnostic> {
        let source = std::fs::read(handler.script_path()).map_err(|e| {
            Diagnostic::runtime(
                error_type::IMPORT_MODULE_ERROR,
                format!("Cannot read {}: {e}", handler.script),
            )
        })?;
        let (lua, xpcall) = new_state(&handler.task_root).map_err(|e| internal_init_error(&e))?;
        let memory_limit = limits.script_memory;
        crate::limits::set_script_memory(memory_limit);
        lua.set_memory_limit(memory_limit)
            .map_err(|e| internal_init_error(&e))?;

        let traceback = Rc::new(RefCell::new(Vec::new()));
        let message_handler = {
            let traceback = Rc::clone(&traceback);
            lua.create_function(move |lua, error: Value| {
                *traceback.borrow_mut() = capture_traceback(lua);
                Ok(error)
            })
        }
        .map_err(|e| internal_init_error(&e))?;
        let methods = stdlib::context::lua_methods(&lua);
        let (remaining_time, stream) = (methods.get_remaining_time_in_millis, methods.stream);

        let chunk = lua
            .load(source)
            .set_name(format!("@{}", handler.script))
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => {
                    Diagnostic::runtime(error_type::USER_CODE_SYNTAX_ERROR, message)
                }
                other => internal_init_error(&other),
            })?;

        let mut engine = LuaEngine {
            lua,
            handler: chunk.clone(),
            xpcall,
            message_handler,
            traceback,
            remaining_time,
            stream,
            memory_limit,
            responses: ResponseBodies::new(limits.response_bytes),
            collector: Collector { live: 0 },
            last_stop: None,
        };
        // Top-level code runs once, here; its errors are import errors.
        let returned = engine
            .call_protected(&chunk, MultiValue::new())
            .map_err(|d| Diagnostic {
                error_type: error_type::IMPORT_MODULE_ERROR.to_owned(),
                from_runtime: true,
                ..d
            })?;
        let module = match returned.into_iter().next() {
            Some(Value::Table(t)) => Some(t),
            _ => None,
        };
        engine.handler = find_handler(&engine.lua, handler, module.as_ref())?;
        engine.collector = Collector::new(&engine.lua);
        Ok(engine)
    }

    /// Calls `f` under `xpcall`; an error becomes a [`Diagnostic`] with its traceback.
    fn call_protected(&self, f: &Function, args: MultiValue) -> Result<MultiValue, Diagnostic> {
        let mut call_args = MultiValue::with_capacity(args.len() + 2);
        call_args.push_back(Value::Function(f.clone()));
        call_args.push_back(Value::Function(self.message_handler.clone()));
        call_args.extend(args);
        let mut results = self
            .xpcall
            .call::<MultiValue>(call_args)
            .map_err(|e| error_to_diagnostic(&self.lua, Value::Error(Box::new(e)), Vec::new()))?;
        match results.pop_front() {
            Some(Value::Boolean(true)) => Ok(results),
            _ => {
                let error = results.pop_front().unwrap_or(Value::Nil);
                let stack = std::mem::take(&mut *self.traceback.borrow_mut());
                Err(error_to_diagnostic(&self.lua, error, stack))
            }
        }
    }

    /// An invocation's work: the event decoded, the handler called, its result
    /// encoded.
    fn run(&mut self, event: &[u8], context: &Context<'_>) -> Result<Vec<u8>, Diagnostic> {
        let event = json::lua::decode(&self.lua, event).map_err(|e| match e {
            json::lua::DecodeError::Lua(mlua::Error::MemoryError(_)) => {
                self.out_of_memory("while the event was decoded")
            }
            json::lua::DecodeError::Lua(e) => self.out_of_memory(&e.to_string()),
            json::lua::DecodeError::Json(e) => Diagnostic::unmarshal(e),
        })?;
        let context = self.context_table(context).map_err(|e| match e {
            mlua::Error::MemoryError(detail) => self.out_of_memory(&detail),
            other => Diagnostic::runtime(error_type::UNMARSHAL_ERROR, other.to_string()),
        })?;
        let mut args = MultiValue::with_capacity(2);
        args.push_back(event);
        args.push_back(Value::Table(context));
        let handler = self.handler.clone();
        let results = self
            .call_protected(&handler, args)
            .map_err(|d| self.with_memory_limit(d))?;
        let result = results.into_iter().next().unwrap_or(Value::Nil);
        if crate::stream::is_started() {
            // The stream's last chunk: a string as it is, nil nothing.
            match &result {
                Value::Nil => return Ok(Vec::new()),
                Value::String(text) => return Ok(text.as_bytes().to_vec()),
                _ => {}
            }
        }
        self.responses
            .body(|writer| json::lua::encode(&self.lua, &result, writer))
            .map_err(|d| self.with_memory_limit(d))
    }

    /// `Runtime.OutOfMemory` as [`Self::out_of_memory`] words it; other errors as
    /// they are.
    fn with_memory_limit(&self, diagnostic: Diagnostic) -> Diagnostic {
        if diagnostic.error_type == error_type::OUT_OF_MEMORY {
            self.out_of_memory(&diagnostic.error_message)
        } else {
            diagnostic
        }
    }

    /// The answer for a script that hit the memory limit; collects the garbage
    /// it left so the next invocation starts with the memory it had before.
    fn out_of_memory(&self, detail: &str) -> Diagnostic {
        let _ = self.lua.gc_collect();
        let _ = self.lua.gc_collect();
        Diagnostic::runtime(
            error_type::OUT_OF_MEMORY,
            format!(
                "The Lua state exceeded its memory limit of {} MB ({detail})",
                self.memory_limit >> 20
            ),
        )
    }

    /// Clears the deadline; true if it was reached. Threads that were escalated
    /// to a check per instruction go back to the cheap periodic check.
    fn disarm_deadline(&self) -> bool {
        let timed_out = deadline::disarm();
        if timed_out {
            let _ = sandbox::set_periodic_hook(&self.lua);
        }
        timed_out
    }

    /// The context table, built on the raw stack in one protected call (it is made
    /// for every invocation, so per-field calls through mlua would show).
    fn context_table(&self, context: &Context<'_>) -> mlua::Result<Table> {
        let identity = self.header_json(context.identity)?;
        let client_context = self.header_json(context.client_context)?;
        let args = (
            self.remaining_time.clone(),
            identity,
            client_context,
            self.stream.clone(),
        );
        // SAFETY: pushes within the protected call's stack, which has room
        // (`lua_checkstack`); nothing in this frame needs dropping, so an error
        // raised by Lua (out of memory) unwinds it safely to the protected call.
        unsafe {
            self.lua.exec_raw::<Table>(args, |state| {
                let push = |text: &str| {
                    ffi::lua_pushlstring(state, text.as_ptr().cast::<c_char>(), text.len());
                };
                ffi::lua_checkstack(state, 4);
                ffi::lua_createtable(state, 0, 16);
                let table = ffi::lua_gettop(state);
                let strings = [
                    (c"aws_request_id", context.aws_request_id),
                    (c"function_name", context.function_name),
                    (c"function_version", context.function_version),
                    (c"invoked_function_arn", context.invoked_function_arn),
                    (c"log_group_name", context.log_group_name),
                    (c"log_stream_name", context.log_stream_name),
                ];
                for (name, value) in strings {
                    push(value);
                    ffi::lua_setfield(state, table, name.as_ptr());
                }
                let optional = [
                    (c"tenant_id", context.tenant_id),
                    (c"xray_trace_id", context.xray_trace_id),
                ];
                for (name, value) in optional {
                    if let Some(value) = value {
                        push(value);
                        ffi::lua_setfield(state, table, name.as_ptr());
                    }
                }
                let integers = [
                    (c"memory_limit_in_mb", context.memory_limit_in_mb),
                    (c"deadline_ms", context.deadline_ms),
                ];
                for (name, value) in integers {
                    ffi::lua_pushinteger(state, value as i64);
                    ffi::lua_setfield(state, table, name.as_ptr());
                }
                ffi::lua_createtable(state, 0, context.headers.len() as c_int);
                for (name, value) in context.headers {
                    push(name);
                    push(value);
                    ffi::lua_rawset(state, -3);
                }
                ffi::lua_setfield(state, table, c"headers".as_ptr());
                let values = [
                    (c"get_remaining_time_in_millis", 1),
                    (c"identity", 2),
                    (c"client_context", 3),
                    (c"stream", 4),
                ];
                for (name, slot) in values {
                    ffi::lua_pushvalue(state, slot);
                    ffi::lua_setfield(state, table, name.as_ptr());
                }
                ffi::lua_replace(state, 1);
                ffi::lua_settop(state, 1);
            })
        }
    }

    /// Identity and client context headers hold JSON; anything else is kept as text.
    fn header_json(&self, raw: Option<&str>) -> mlua::Result<Value> {
        match raw {
            None => Ok(Value::Nil),
            Some(text) => match json::lua::decode(&self.lua, text.as_bytes()) {
                Ok(value) => Ok(value),
                Err(_) => self.lua.create_string(text).map(Value::String),
            },
        }
    }
}

impl Engine for LuaEngine {
    fn invoke(&mut self, event: &[u8], context: &Context<'_>) -> Result<Vec<u8>, Diagnostic> {
        let started = Instant::now();
        // The stop holds for all of the invocation's Lua work (finalizers run while
        // the event is decoded or the result encoded), and for the collection after
        // the answer, which is held to the invocation's deadline, known or not.
        deadline::arm(
            context
                .deadline_known
                .then(|| deadline::stop_time(context.deadline_ms)),
        );
        self.last_stop = Some(deadline::stop_time(context.deadline_ms));
        let outcome = self.run(event, context);
        if self.disarm_deadline() {
            // Whatever the script did with the stop (caught it, raised another
            // error), the invocation is over: the deadline is what happened.
            return Err(Diagnostic::timeout(started.elapsed()));
        }
        outcome
    }

    fn after_answer(&mut self) -> Result<(), Retire> {
        deadline::arm(self.last_stop);
        self.collector.after_answer(&self.lua);
        if self.disarm_deadline() {
            log::write(
                log::Level::Warn,
                "lure: a finalizer was stopped at the deadline, in the collection after the answer",
            );
        }
        Ok(())
    }
}

/// A Lua state with the safe standard libraries, the JSON codec, lure's stdlib,
/// `require` searching the task root then `/opt/lua`, and the sandbox (the
/// deadline hook and the guards of [`sandbox`]).
/// Also returns Lua's own `xpcall`, which the engine calls handlers with (scripts
/// get the sandbox's).
fn new_state(task_root: &Path) -> mlua::Result<(Lua, Function)> {
    let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default())?;
    let root = task_root.to_string_lossy();
    let package: Table = lua.globals().get("package")?;
    package.set(
        "path",
        format!("{root}/?.lua;{root}/?/init.lua;/opt/lua/?.lua;/opt/lua/?/init.lua"),
    )?;
    package.set("cpath", "")?;
    json::lua::Codec::install(&lua)?;
    stdlib::register_lua(&lua)?;
    let xpcall = lua.globals().get("xpcall")?;
    sandbox::install(&lua)?;
    Ok((lua, xpcall))
}

/// A Lua state as scripts get it (the sandbox included), for the fuzz targets:
/// `load` and friends there are what a hostile script would call.
pub fn sandboxed_state(task_root: &Path) -> mlua::Result<Lua> {
    new_state(task_root).map(|(lua, _)| lua)
}

/// SPEC §2: the script form looks for a global `main`, then the returned table's;
/// the method form looks in the returned table first, then in globals.
fn find_handler(
    lua: &Lua,
    handler: &Handler,
    module: Option<&Table>,
) -> Result<Function, Diagnostic> {
    let name = handler.function.as_str();
    let from_module = || module.map(|m| m.get::<Value>(name)).transpose();
    let from_globals = || lua.globals().get::<Value>(name).map(Some);
    let lookups = match handler.form {
        Form::ScriptFile => [from_globals(), from_module()],
        Form::FileMethod => [from_module(), from_globals()],
    };
    let mut found = Value::Nil;
    for lookup in lookups {
        match lookup {
            Ok(Some(Value::Nil)) | Ok(None) => continue,
            Ok(Some(value)) => {
                found = value;
                break;
            }
            Err(e) => return Err(internal_init_error(&e)),
        }
    }
    match found {
        Value::Function(f) => Ok(f),
        Value::Nil => Err(Diagnostic::runtime(
            error_type::HANDLER_NOT_FOUND,
            format!(
                "{}.{name} is undefined or not exported: define a global function {name} or return a table with {name} from {}",
                handler.script.trim_end_matches(".lua"),
                handler.script
            ),
        )),
        other => Err(Diagnostic::runtime(
            error_type::HANDLER_NOT_FOUND,
            format!(
                "{}.{name} is not a function (it is of type {})",
                handler.script.trim_end_matches(".lua"),
                other.type_name()
            ),
        )),
    }
}

fn internal_init_error(error: &mlua::Error) -> Diagnostic {
    Diagnostic::runtime(
        error_type::IMPORT_MODULE_ERROR,
        format!("Could not set up the Lua state: {error}"),
    )
}
