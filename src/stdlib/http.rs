//! `http` (SPEC 7.3): the script's HTTP(S) client. The core reads a call's
//! arguments (URL, body, options) into a [`http::Request`], sends it with the
//! client in `crate::http`, and gives back the response or a typed error; the two
//! halves convert values, encode the `json` option with the language's own codec
//! (so a Lua table encodes as `json.encode` would), and shape the response:
//! `{status, headers, body}` with `res:json()` in Lua, `res.json()` in Rhai.

use std::time::Duration;

use mlua::{Lua, MultiValue, Table, Value as LuaValue};
use rhai::{Blob, Dynamic, EvalAltResult, Map, NativeCallContext};

use super::binding::{self, Args, Budget, Error, Lang, Name, TypedError, Value};
use crate::http::{self, Failure, Request, Response};
use crate::json::{self, Writer};
use crate::limits;

/// The default `timeout`, in seconds (SPEC 7.3).
const DEFAULT_TIMEOUT_S: f64 = 30.0;
/// The default `max_body_bytes`: Lambda's response limit, so a body fetched can be
/// passed on whole.
const DEFAULT_MAX_BODY_BYTES: u64 = 6 * 1024 * 1024;
/// The options a call takes, for the error that names an unknown one.
const OPTIONS: &[&str] = &[
    "method",
    "headers",
    "body",
    "json",
    "query",
    "timeout",
    "follow_redirects",
    "max_body_bytes",
];

/// How a function takes its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `request(url [, options])`: the method is an option (default GET).
    Request,
    /// `get(url [, options])`, `delete(url [, options])`.
    NoBody(&'static str),
    /// `post(url, body [, options])` and `put`, `patch`.
    WithBody(&'static str),
}

impl Form {
    /// Arguments before the options.
    fn positional(self) -> usize {
        match self {
            Form::WithBody(_) => 2,
            _ => 1,
        }
    }
}

const FUNCTIONS: &[(&str, Form)] = &[
    ("request", Form::Request),
    ("get", Form::NoBody("GET")),
    ("delete", Form::NoBody("DELETE")),
    ("post", Form::WithBody("POST")),
    ("put", Form::WithBody("PUT")),
    ("patch", Form::WithBody("PATCH")),
];

/// The request a call describes: `args` holds the positional arguments and, last,
/// the options map (without `json`, which comes encoded as `json`).
fn request(args: &Args, form: Form, json: Option<Vec<u8>>) -> Result<Request, Error> {
    let options_at = form.positional() + 1;
    let url = args.text(1)?.trim().to_owned();
    let options = match args.map(options_at) {
        Ok(options) => options,
        Err(_) if matches!(args.value(options_at), Value::Nil) => &[],
        Err(e) => return Err(e),
    };
    let option = |name: &str| {
        options
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
            .filter(|value| !matches!(value, Value::Nil))
    };
    if let Some((unknown, _)) = options
        .iter()
        .find(|(key, _)| !OPTIONS.contains(&key.as_str()))
    {
        return Err(Error::argument(
            options_at,
            format!(
                "has an unknown option {unknown:?} (the options are {})",
                OPTIONS.join(", ")
            ),
        ));
    }
    let wrong = |name: &str, expected: &str, got: &Value| {
        Error::argument(
            options_at,
            format!(
                "option {name} must be {expected}, not {}",
                binding::type_name(got, args.lang())
            ),
        )
    };

    let method = match (form, option("method")) {
        (Form::Request, None) => "GET".to_owned(),
        (Form::Request, Some(Value::Text(m))) => m.to_ascii_uppercase(),
        (Form::Request, Some(Value::Bytes(m))) => String::from_utf8_lossy(m).to_ascii_uppercase(),
        (Form::Request, Some(other)) => return Err(wrong("method", "a string", other)),
        (Form::NoBody(m) | Form::WithBody(m), _) => m.to_owned(),
    };
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(Error::argument(
            options_at,
            format!("option method {method:?} is not an HTTP method"),
        ));
    }

    let mut headers: Vec<(String, String)> = Vec::new();
    match option("headers") {
        None => {}
        Some(Value::Map(entries)) => {
            for (name, value) in entries {
                let value = match value {
                    Value::Text(s) => s.clone(),
                    Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    Value::Int(i) => i.to_string(),
                    Value::Float(f) => f.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Nil => continue,
                    other => return Err(wrong(&format!("headers.{name}"), "a string", other)),
                };
                if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err()
                    || ureq::http::HeaderValue::from_str(&value).is_err()
                {
                    return Err(Error::argument(
                        options_at,
                        format!("option headers holds a header HTTP does not allow: {name:?}"),
                    ));
                }
                headers.push((name.clone(), value));
            }
        }
        Some(Value::List(items)) if items.is_empty() => {}
        Some(other) => return Err(wrong("headers", "a table of names and values", other)),
    }
    let has_header = |headers: &[(String, String)], name: &str| {
        headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };

    let mut body = match form {
        Form::WithBody(_) => match args.value(2) {
            Value::Nil => None,
            _ => Some(args.data(2)?.to_vec()),
        },
        _ => None,
    };
    if let Some(value) = option("body") {
        if body.is_some() {
            return Err(Error::argument(
                options_at,
                "option body repeats the body argument",
            ));
        }
        body = Some(match value {
            Value::Text(s) => s.clone().into_bytes(),
            Value::Bytes(b) | Value::Decoded(b) => b.clone(),
            other => return Err(wrong("body", "a string", other)),
        });
    }
    if let Some(json) = json {
        if body.is_some() {
            return Err(Error::argument(
                options_at,
                "options json and body are both given",
            ));
        }
        if !has_header(&headers, "content-type") {
            headers.push(("content-type".into(), "application/json".into()));
        }
        body = Some(json);
    }

    let mut url = url;
    if let Some(query) = option("query") {
        let entries = match query {
            Value::Map(entries) => entries.clone(),
            Value::List(items) if items.is_empty() => Vec::new(),
            other => return Err(wrong("query", "a table of names and values", other)),
        };
        let query =
            super::url::build_query(&entries, args.lang(), |_| Ok(())).map_err(|e| match e {
                super::url::QueryError::Value(detail) => {
                    Error::argument(options_at, format!("option query {detail}"))
                }
                super::url::QueryError::Memory(e) => e,
            })?;
        if !query.is_empty() {
            let (before, fragment) = match url.split_once('#') {
                Some((before, fragment)) => (before.to_owned(), Some(fragment.to_owned())),
                None => (url.clone(), None),
            };
            let separator = if !before.contains('?') {
                "?"
            } else if before.ends_with('?') || before.ends_with('&') {
                ""
            } else {
                "&"
            };
            url = format!("{before}{separator}{query}");
            if let Some(fragment) = fragment {
                url = format!("{url}#{fragment}");
            }
        }
    }

    let timeout = match option("timeout") {
        None => DEFAULT_TIMEOUT_S,
        Some(Value::Int(i)) => *i as f64,
        Some(Value::Float(f)) => *f,
        Some(other) => return Err(wrong("timeout", "a number of seconds", other)),
    };
    let timeout = Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            Error::argument(
                options_at,
                format!("option timeout must be a number of seconds above 0, not {timeout}"),
            )
        })?;
    let follow_redirects = match option("follow_redirects") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(wrong("follow_redirects", "a boolean", other)),
    };
    let memory = limits::script_memory() as u64;
    let max_body_bytes = match option("max_body_bytes") {
        None => DEFAULT_MAX_BODY_BYTES.min(memory),
        Some(Value::Int(i)) if *i >= 0 && (*i as u64) <= memory => *i as u64,
        Some(Value::Int(i)) => {
            return Err(Error::argument(
                options_at,
                format!(
                    "option max_body_bytes must be from 0 to the script's memory ({memory}), not {i}"
                ),
            ));
        }
        Some(other) => return Err(wrong("max_body_bytes", "an integer", other)),
    };

    Ok(Request {
        method,
        url,
        headers,
        body,
        timeout,
        follow_redirects,
        max_body_bytes,
    })
}

/// Sends the request; a failure is the script's typed error, or the deadline's.
fn send(request: &Request, args: &Args) -> Result<Response, Error> {
    // The body is the script's to hold: never read past what its memory leaves.
    let room = args.room() as u64;
    let memory_bound = room < request.max_body_bytes;
    let outcome = if memory_bound {
        http::send(&Request {
            max_body_bytes: room,
            ..request.clone()
        })
    } else {
        http::send(request)
    };
    match outcome {
        Ok(response) => Ok(response),
        Err(Failure::Http(http::ErrorKind::BodyTooLarge, message)) if memory_bound => Err(
            Error::OutOfMemory(format!("the response body does not fit ({message})")),
        ),
        Err(Failure::Http(kind, message)) => Err(Error::Typed(TypedError {
            error_type: kind.error_type().to_owned(),
            message,
            fields: Vec::new(),
        })),
        // The engine answers Runtime.Timeout: the stop counts as reached.
        Err(Failure::Deadline) => Err(Error::Failed(format!(
            "{} {}: the invocation's deadline came first",
            request.method, request.url
        ))),
    }
}

/// The response's headers: a repeated one's values joined with `, `, except
/// `set-cookie`, which is always a list.
fn header_values(response: &Response) -> Vec<(String, Value)> {
    response
        .headers
        .iter()
        .map(|(name, values)| {
            let value = if name == "set-cookie" {
                Value::List(values.iter().cloned().map(Value::Text).collect())
            } else {
                Value::Text(values.join(", "))
            };
            (name.clone(), value)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Lua

/// Installs the `http` global (also `require("http")`), built on first use.
pub fn register_lua(lua: &Lua) -> mlua::Result<()> {
    binding::lua::install_lazy(lua, "http", build_lua)
}

fn build_lua(lua: &Lua, module: &Table) -> mlua::Result<()> {
    // `res:json()`: the body decoded, as `json.decode` does it.
    let methods = lua.create_table()?;
    let decode = binding::lua::function(lua, "http", "json", |lua, args| {
        let body = match args.front() {
            Some(LuaValue::Table(response)) => response.raw_get::<LuaValue>("body")?,
            _ => return Ok(Err(Error::Failed("call it as res:json()".into()))),
        };
        let LuaValue::String(body) = body else {
            return Ok(Err(Error::Failed("the response has no body string".into())));
        };
        match json::lua::decode(lua, &body.as_bytes()) {
            Ok(value) => Ok(Ok(value)),
            Err(json::lua::DecodeError::Lua(memory)) => Err(memory),
            Err(json::lua::DecodeError::Json(e)) => Ok(Err(Error::Failed(e.to_string()))),
        }
    })?;
    methods.raw_set("json", decode)?;
    let response_mt = lua.create_table()?;
    response_mt.raw_set("__index", methods)?;

    for &(name, form) in FUNCTIONS {
        let response_mt = response_mt.clone();
        let f = binding::lua::function(lua, "http", name, move |lua, args| {
            let result = lua_args(lua, &args, form).and_then(|(args, json)| {
                let request = request(&args, form, json)?;
                send(&request, &args)
            });
            match result {
                Ok(response) => lua_response(lua, &response, &response_mt).map(Ok),
                Err(error @ Error::OutOfMemory(_)) => {
                    Err(mlua::Error::MemoryError(error.message(Name {
                        module: "http",
                        function: name,
                        lang: Lang::Lua,
                    })))
                }
                Err(error) => Ok(Err(error)),
            }
        })?;
        module.raw_set(name, f)?;
    }
    Ok(())
}

/// The call's arguments: the positional ones and the options converted (their
/// copies counted against the script's memory), `json` encoded by Lua's codec.
fn lua_args(lua: &Lua, args: &MultiValue, form: Form) -> Result<(Args, Option<Vec<u8>>), Error> {
    let mut budget = Budget::left(lua.used_memory());
    let positional = form.positional();
    let mut values = Vec::with_capacity(positional + 1);
    for i in 0..positional {
        let value = args.get(i).unwrap_or(&LuaValue::Nil);
        values.push(binding::lua::from_lua(lua, value, &mut budget)?);
    }
    let mut json = None;
    match args.get(positional).unwrap_or(&LuaValue::Nil) {
        LuaValue::Nil => values.push(Value::Nil),
        LuaValue::Table(options) => {
            let mut entries = Vec::new();
            for pair in options.pairs::<LuaValue, LuaValue>() {
                let (key, value) = pair.map_err(|e| Error::Failed(e.to_string()))?;
                let LuaValue::String(key) = key else {
                    return Err(Error::argument(
                        positional + 1,
                        format!("must have string keys, not {}", key.type_name()),
                    ));
                };
                let key = key.to_string_lossy();
                if key == "json" {
                    let room = limits::script_memory().saturating_sub(lua.used_memory());
                    let mut writer = Writer::with_limit(false, room);
                    json::lua::encode(lua, &value, &mut writer).map_err(|e| {
                        if e.is_too_large() || e.is_out_of_memory() {
                            Error::OutOfMemory(format!("option json: {e}"))
                        } else {
                            Error::argument(
                                positional + 1,
                                format!("option json cannot be JSON: {e}"),
                            )
                        }
                    })?;
                    json = Some(writer.into_bytes());
                } else {
                    entries.push((key, binding::lua::from_lua(lua, &value, &mut budget)?));
                }
            }
            values.push(Value::Map(entries));
        }
        other => {
            return Err(Error::argument(
                positional + 1,
                format!("must be a table of options, not {}", other.type_name()),
            ));
        }
    }
    Ok((Args::new(values, Lang::Lua).with_budget(budget), json))
}

fn lua_response(lua: &Lua, response: &Response, metatable: &Table) -> mlua::Result<LuaValue> {
    let table = lua.create_table_with_capacity(0, 3)?;
    table.raw_set("status", response.status)?;
    let headers = lua.create_table_with_capacity(0, response.headers.len())?;
    for (name, value) in header_values(response) {
        headers.raw_set(name, binding::lua::to_lua(lua, &value)?)?;
    }
    table.raw_set("headers", headers)?;
    table.raw_set("body", lua.create_string(&response.body)?)?;
    table.set_metatable(Some(metatable.clone()))?;
    Ok(LuaValue::Table(table))
}

// ---------------------------------------------------------------------------
// Rhai

/// Installs the static module `http` and the `json()` method of its responses.
pub fn register_rhai(
    engine: &mut rhai::Engine,
    mut definitions: Option<&mut binding::rhai::Definitions>,
) {
    let mut module = binding::rhai::ModuleBuilder::new("http");
    for &(name, form) in FUNCTIONS {
        let (signatures, doc): (&'static [&'static str], &'static str) = match form {
            Form::Request => (
                &[
                    "request(url: String) -> Map",
                    "request(url: String, options: Map) -> Map",
                ],
                "Sends a request and returns `#{status, headers, body}`: header names lower-case (a repeated one joined with `, `, `set-cookie` always an array), `body` a string, or a Blob when it is not UTF-8; `res.json()` decodes it. Options: `method` (default GET), `headers` (map), `body` (string or Blob), `json` (a value sent as JSON), `query` (map appended to the URL), `timeout` (seconds, default 30), `follow_redirects` (default true, at most 10), `max_body_bytes` (default 6 MB). Statuses are never errors; a call that gets no response throws `#{errorType, errorMessage}` with `Http.Timeout`, `Http.ConnectError`, `Http.DnsError`, `Http.TlsError`, `Http.BodyTooLarge`, `Http.InvalidUrl` or `Http.TooManyRedirects`.",
            ),
            Form::NoBody("GET") => (
                &[
                    "get(url: String) -> Map",
                    "get(url: String, options: Map) -> Map",
                ],
                "A GET request: see `request`.",
            ),
            Form::NoBody(_) => (
                &[
                    "delete(url: String) -> Map",
                    "delete(url: String, options: Map) -> Map",
                ],
                "A DELETE request: see `request`.",
            ),
            Form::WithBody("POST") => (
                &[
                    "post(url: String, body: ?) -> Map",
                    "post(url: String, body: ?, options: Map) -> Map",
                ],
                "A POST request with `body` (a string or a Blob): see `request`.",
            ),
            Form::WithBody("PUT") => (
                &[
                    "put(url: String, body: ?) -> Map",
                    "put(url: String, body: ?, options: Map) -> Map",
                ],
                "A PUT request with `body` (a string or a Blob): see `request`.",
            ),
            Form::WithBody(_) => (
                &[
                    "patch(url: String, body: ?) -> Map",
                    "patch(url: String, body: ?, options: Map) -> Map",
                ],
                "A PATCH request with `body` (a string or a Blob): see `request`.",
            ),
        };
        module.custom(signatures, doc, |m| {
            let call = move |ctx: &NativeCallContext, args: Vec<Dynamic>| {
                let name = Name {
                    module: "http",
                    function: name,
                    lang: Lang::Rhai,
                };
                rhai_call(&args, form)
                    .map(rhai_response)
                    .map_err(|e| binding::rhai::throw(ctx, &e, name))
            };
            match form.positional() {
                1 => {
                    m.set_native_fn(name, move |ctx: NativeCallContext, url: Dynamic| {
                        call(&ctx, vec![url, Dynamic::UNIT])
                    });
                    m.set_native_fn(
                        name,
                        move |ctx: NativeCallContext, url: Dynamic, options: Dynamic| {
                            call(&ctx, vec![url, options])
                        },
                    );
                }
                _ => {
                    m.set_native_fn(
                        name,
                        move |ctx: NativeCallContext, url: Dynamic, body: Dynamic| {
                            call(&ctx, vec![url, body, Dynamic::UNIT])
                        },
                    );
                    m.set_native_fn(
                        name,
                        move |ctx: NativeCallContext,
                              url: Dynamic,
                              body: Dynamic,
                              options: Dynamic| {
                            call(&ctx, vec![url, body, options])
                        },
                    );
                }
            }
        });
    }
    module.register(engine, definitions.as_deref_mut());
    if let Some(definitions) = definitions {
        definitions.add_static(&[(
            "json(response: Map) -> ?",
            "The body of an `http` response decoded as JSON: `res.json()` (invalid JSON throws what `json::decode` throws).",
        )]);
    }
    // `res.json()`: Rhai calls a method on a map as a function of the map.
    engine.register_fn("json", |ctx: NativeCallContext, response: Map| {
        let name = Name {
            module: "http",
            function: "json",
            lang: Lang::Rhai,
        };
        let body = response.get("body").cloned().unwrap_or(Dynamic::UNIT);
        let text: Vec<u8> = if let Some(s) = body.read_lock::<rhai::ImmutableString>() {
            s.as_bytes().to_vec()
        } else if let Some(b) = body.read_lock::<Blob>() {
            b.clone()
        } else {
            return Err(binding::rhai::throw(
                &ctx,
                &Error::Failed("the response has no body".into()),
                name,
            ));
        };
        json::rhai::decode(&text).map_err(|e| match e {
            json::rhai::DecodeError::Json(e) => {
                binding::rhai::throw(&ctx, &Error::Failed(e.to_string()), name)
            }
            json::rhai::DecodeError::OutOfMemory => Box::new(EvalAltResult::ErrorDataTooLarge(
                json::rhai::DOCUMENT_TOO_LARGE.into(),
                ctx.call_position(),
            )),
        })
    });
}

fn rhai_call(args: &[Dynamic], form: Form) -> Result<Response, Error> {
    let mut budget = Budget::left(crate::memory::thread_heap());
    let positional = form.positional();
    let mut values = Vec::with_capacity(positional + 1);
    for arg in &args[..positional] {
        values.push(binding::rhai::from_rhai(arg, &mut budget)?);
    }
    let options = &args[positional];
    let mut json = None;
    if options.is_unit() {
        values.push(Value::Nil);
    } else if let Some(map) = options.read_lock::<Map>() {
        let mut entries = Vec::new();
        for (key, value) in map.iter() {
            if key.as_str() == "json" {
                let room = limits::script_memory().saturating_sub(crate::memory::thread_heap());
                let mut writer = Writer::with_limit(false, room);
                json::rhai::encode(value, &mut writer).map_err(|e| {
                    if e.is_too_large() {
                        Error::OutOfMemory(format!("option json: {e}"))
                    } else {
                        Error::argument(positional + 1, format!("option json cannot be JSON: {e}"))
                    }
                })?;
                json = Some(writer.into_bytes());
            } else {
                entries.push((
                    key.to_string(),
                    binding::rhai::from_rhai(value, &mut budget)?,
                ));
            }
        }
        values.push(Value::Map(entries));
    } else {
        return Err(Error::argument(
            positional + 1,
            format!("must be a map of options, not {}", options.type_name()),
        ));
    }
    let args = Args::new(values, Lang::Rhai).with_budget(budget);
    let request = request(&args, form, json)?;
    send(&request, &args)
}

fn rhai_response(response: Response) -> Dynamic {
    let mut map = Map::new();
    map.insert(
        "status".into(),
        Dynamic::from_int(i64::from(response.status)),
    );
    let mut headers = Map::new();
    for (name, value) in header_values(&response) {
        headers.insert(name.into(), binding::rhai::plain_to_rhai(value));
    }
    map.insert("headers".into(), Dynamic::from_map(headers));
    let body = match String::from_utf8(response.body) {
        Ok(text) => Dynamic::from(text),
        Err(e) => Dynamic::from_blob(e.into_bytes()),
    };
    map.insert("body".into(), body);
    Dynamic::from_map(map)
}
