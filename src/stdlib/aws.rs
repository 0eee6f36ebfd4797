//! `aws` (SPEC 7.4): service clients with the function's credentials, SigV4
//! signing and presigning, and DynamoDB's marshalling, bound to both languages.
//! The work is in `crate::aws`; this file converts values and errors.
//!
//! - Lua: `aws.client(service [, options])` is a userdata whose `send(op, params)`
//!   runs any operation, and whose other fields are the operations themselves, by
//!   their PascalCase or snake_case names: `ddb:GetItem{...}`, `ddb:get_item{...}`.
//! - Rhai: `aws::client(service [, options])` is an `AwsClient` whose method
//!   `send(op, params)` runs any operation (Rhai keeps `.call` for function pointers).

use std::sync::Arc;

use mlua::{Lua, MultiValue, Table, UserData, UserDataMethods, Value as LuaValue};
use rhai::{Dynamic, NativeCallContext};

use super::binding::{
    self, Args, Budget, Error, Function, Lang, Module, Name, Param, Type, TypedError, Value,
};
use crate::aws::client::{Client, Config, Failure};
use crate::aws::credentials;
use crate::aws::dynamodb;
use crate::aws::sigv4::{self, Credentials, Options, Scope, Time};

// ---------------------------------------------------------------------------
// Language-neutral

/// `aws.client`'s options.
fn config(args: &Args, index: usize) -> Result<Config, Error> {
    let mut config = Config::default();
    if matches!(args.value(index), Value::Nil) {
        return Ok(config);
    }
    // An option given as nil / () is not given.
    for (name, value) in args.map(index)?.iter().filter(|(_, v)| *v != Value::Nil) {
        let text = || binding::option_text(value, index, name);
        match name.as_str() {
            "region" => config.region = Some(text()?),
            "endpoint" => config.endpoint = Some(text()?),
            "credentials" => config.credentials = Some(credentials_option(value, index)?),
            other => {
                return Err(Error::argument(
                    index,
                    format!("has an unknown option {other:?} (region, endpoint, credentials)"),
                ));
            }
        }
    }
    Ok(config)
}

/// `{access_key_id=, secret_access_key=, session_token=}`.
fn credentials_option(value: &Value, index: usize) -> Result<Credentials, Error> {
    let Value::Map(entries) = value else {
        return Err(Error::argument(
            index,
            "option credentials must be a table / map {access_key_id, secret_access_key, session_token}",
        ));
    };
    let mut access_key_id = None;
    let mut secret_access_key = None;
    let mut session_token = None;
    for (name, value) in entries {
        let text = Some(binding::option_text(
            value,
            index,
            &format!("credentials.{name}"),
        )?);
        match name.as_str() {
            "access_key_id" => access_key_id = text,
            "secret_access_key" => secret_access_key = text,
            "session_token" => session_token = text,
            other => {
                return Err(Error::argument(
                    index,
                    format!(
                        "option credentials has an unknown key {other:?} (access_key_id, secret_access_key, session_token)"
                    ),
                ));
            }
        }
    }
    match (access_key_id, secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token,
        }),
        _ => Err(Error::argument(
            index,
            "option credentials needs access_key_id and secret_access_key",
        )),
    }
}

/// A client's failure as the script's error: AWS's code as `errorType`, with
/// `status` and `request_id`; a transport failure as the `Http.*` error.
fn failure(failure: Failure, operation: &str) -> Error {
    match failure {
        Failure::Service(e) => Error::Typed(TypedError {
            error_type: e.code,
            message: e.message,
            fields: vec![
                ("status".into(), Value::Int(i64::from(e.status))),
                ("request_id".into(), Value::Text(e.request_id)),
            ],
        }),
        Failure::Http(kind, message) => Error::Typed(TypedError {
            error_type: kind.error_type().to_owned(),
            message,
            fields: Vec::new(),
        }),
        // The engine answers Runtime.Timeout: the stop counts as reached.
        Failure::Deadline => {
            Error::Failed(format!("{operation}: the invocation's deadline came first"))
        }
        Failure::Invalid(message) => Error::Failed(message),
    }
}

/// `send`'s operation: PascalCase as the API reference writes it, or boto3's
/// snake_case (`get_item` → `GetItem`, `list_objects_v2` → `ListObjectsV2`).
fn operation_name(name: &str) -> String {
    if !name.contains('_') && name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return name.to_owned();
    }
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn send(client: &Client, operation: &str, params: &Value, budget: Budget) -> Result<Value, Error> {
    client
        .send(&operation_name(operation), params, budget.bytes() as u64)
        .map_err(|f| failure(f, operation))
}

/// `aws.sign` / `aws.presign`'s request table.
struct SignRequest {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    service: String,
    region: Option<String>,
    credentials: Option<Credentials>,
    time: Option<Time>,
    options: Options,
    expires: u64,
}

/// The fields `aws.sign` takes; `aws.presign` takes `expires` as well.
const SIGN_FIELDS: [&str; 13] = [
    "method",
    "url",
    "headers",
    "body",
    "service",
    "region",
    "credentials",
    "time",
    "normalize_path",
    "double_encode",
    "sign_body",
    "unsigned_payload",
    "sign_session_token",
];

fn sign_request(args: &Args, presign: bool) -> Result<SignRequest, Error> {
    let entries = args.map(1)?;
    for (name, _) in entries {
        let known = SIGN_FIELDS.contains(&name.as_str()) || (presign && name == "expires");
        if !known {
            return Err(Error::argument(1, format!("has an unknown field {name:?}")));
        }
    }
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .filter(|v| !matches!(v, Value::Nil))
    };
    let text = |name: &str| {
        get(name)
            .map(|v| binding::option_text(v, 1, name))
            .transpose()
    };
    let service = text("service")?.ok_or_else(|| {
        Error::argument(1, "needs the field service (\"s3\", \"execute-api\", ...)")
    })?;
    let url = text("url")?.ok_or_else(|| Error::argument(1, "needs the field url"))?;

    let mut options = Options::for_service(&service);
    for (name, option) in [
        ("normalize_path", &mut options.normalize_path),
        ("double_encode", &mut options.double_encode),
        ("sign_body", &mut options.sign_body),
        ("unsigned_payload", &mut options.unsigned_payload),
        ("sign_session_token", &mut options.sign_session_token),
    ] {
        match get(name) {
            None => {}
            Some(Value::Bool(b)) => *option = *b,
            Some(_) => {
                return Err(Error::argument(
                    1,
                    format!("field {name} must be a boolean"),
                ));
            }
        }
    }

    let mut headers = Vec::new();
    match get("headers") {
        None => {}
        Some(Value::List(empty)) if empty.is_empty() => {}
        Some(Value::Map(given)) => {
            for (name, value) in given {
                // A header given as a list is one header, its values joined by `,`.
                let value = match value {
                    Value::List(values) => values
                        .iter()
                        .map(|v| binding::option_text(v, 1, name))
                        .collect::<Result<Vec<_>, _>>()?
                        .join(","),
                    Value::Int(i) => i.to_string(),
                    other => binding::option_text(other, 1, name)?,
                };
                headers.push((name.clone(), value));
            }
        }
        Some(_) => return Err(Error::argument(1, "field headers must be a table / map")),
    }
    let body = match get("body") {
        None => Vec::new(),
        Some(Value::Text(s)) => s.as_bytes().to_vec(),
        Some(Value::Bytes(b) | Value::Decoded(b) | Value::Binary(b)) => b.clone(),
        Some(_) => return Err(Error::argument(1, "field body must be a string or a Blob")),
    };
    let time = text("time")?
        .map(|t| Time::parse(&t).map_err(|e| Error::argument(1, format!("field time: {e}"))))
        .transpose()?;
    let credentials = get("credentials")
        .map(|v| credentials_option(v, 1))
        .transpose()?;
    let expires = match get("expires") {
        None => 900,
        Some(Value::Int(i)) if *i > 0 => *i as u64,
        Some(Value::Float(f)) if f.fract() == 0.0 && *f > 0.0 => *f as u64,
        Some(_) => {
            return Err(Error::argument(
                1,
                "field expires must be a positive whole number of seconds",
            ));
        }
    };
    Ok(SignRequest {
        method: text("method")?
            .unwrap_or_else(|| "GET".into())
            .to_ascii_uppercase(),
        url,
        headers,
        body,
        service,
        region: text("region")?,
        credentials,
        time,
        options,
        expires,
    })
}

/// Runs `sign` (SigV4's `sign` or `presign`) on the request `aws.sign` /
/// `aws.presign` was given, with the region and the credentials (the function's
/// unless given) and the time (now unless given).
fn signing<T>(
    args: &Args,
    presign: bool,
    sign: impl FnOnce(&sigv4::Request, &Credentials, &Scope, &SignRequest) -> Result<T, String>,
) -> Result<T, Error> {
    let request = sign_request(args, presign)?;
    let region = crate::aws::region(request.region.clone()).map_err(Error::Failed)?;
    let credentials = match &request.credentials {
        Some(given) => given.clone(),
        None => credentials::current().map_err(Error::Failed)?,
    };
    let scope = Scope {
        service: &request.service,
        region: &region,
        time: request.time.unwrap_or_else(Time::now),
    };
    let target = sigv4::Request {
        method: &request.method,
        url: &request.url,
        headers: &request.headers,
        body: &request.body,
    };
    sign(&target, &credentials, &scope, &request).map_err(|e| Error::argument(1, e))
}

fn sign_fn(args: &Args) -> Result<Value, Error> {
    let signed = signing(args, false, |target, credentials, scope, request| {
        sigv4::sign(target, credentials, scope, &request.options)
    })?;
    Ok(Value::Map(
        signed
            .headers
            .into_iter()
            .map(|(k, v)| (k, Value::Text(v)))
            .collect(),
    ))
}

fn presign_fn(args: &Args) -> Result<Value, Error> {
    let presigned = signing(args, true, |target, credentials, scope, request| {
        sigv4::presign(
            target,
            credentials,
            scope,
            &request.options,
            request.expires,
        )
    })?;
    Ok(Value::Text(presigned.url))
}

fn marshal_fn(args: &Args) -> Result<Value, Error> {
    dynamodb::marshal(args.value(1), args.lang()).map_err(|e| Error::argument(1, e))
}

fn unmarshal_fn(args: &Args) -> Result<Value, Error> {
    dynamodb::unmarshal(args.value(1)).map_err(|e| Error::argument(1, e))
}

static AWS: Module = Module {
    name: "aws",
    functions: &[
        Function {
            name: "sign",
            params: &[Param::new("request", Type::Map)],
            returns: Type::Map,
            doc: "The headers SigV4 adds to a request (`authorization`, `x-amz-date`, and `x-amz-security-token`, `x-amz-content-sha256` when they apply): fields `url` and `service` (required), `method` (GET), `headers`, `body`, `region` and `credentials` (the function's), `time` (`20150830T123600Z`; now), `normalize_path`, `double_encode`, `sign_body`, `unsigned_payload`, `sign_session_token`.",
            call: sign_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "presign",
            params: &[Param::new("request", Type::Map)],
            returns: Type::Text,
            doc: "The URL with a SigV4 signature in its query, valid `expires` seconds (default 900, at most 604800); the fields of `sign`.",
            call: presign_fn,
            rhai_blob_twin: None,
        },
    ],
};

static DYNAMODB: Module = Module {
    name: "dynamodb",
    functions: &[
        Function {
            name: "marshal",
            params: &[Param::new("value", Type::Any)],
            returns: Type::Any,
            doc: "A plain value as DynamoDB's AttributeValues, as DocumentClient's marshall: a map is an item (`#{id: #{N: \"1\"}}`), another value one AttributeValue (strings `S`, Blobs `B`, numbers `N`, `()` `NULL`, arrays `L`, maps `M`).",
            call: marshal_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "unmarshal",
            params: &[Param::new("item", Type::Any)],
            returns: Type::Any,
            doc: "An item (or one AttributeValue) as plain values: `N` an integer or a float, `B` a Blob, `NULL` `()`, sets arrays.",
            call: unmarshal_fn,
            rhai_blob_twin: None,
        },
    ],
};

// ---------------------------------------------------------------------------
// Lua

/// A client in Lua: `client:send(op, params)`, `client:GetItem(params)`.
struct LuaClient(Arc<Client>);

impl UserData for LuaClient {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_function(
            mlua::MetaMethod::Index,
            |lua, (_, key): (LuaValue, String)| {
                let operation = (key != "send").then(|| operation_name(&key));
                lua_operation(lua, operation)
            },
        );
        methods.add_meta_method(mlua::MetaMethod::ToString, |_, client, ()| {
            Ok(format!(
                "aws client ({}, {})",
                client.0.service.name, client.0.region
            ))
        });
    }
}

/// The function `client.send` (`operation` None: it takes the operation first)
/// or `client.GetItem`.
fn lua_operation(lua: &Lua, operation: Option<String>) -> mlua::Result<mlua::Function> {
    // Errors name `aws.send` whichever way the operation was called.
    let name = "send";
    binding::lua::function(lua, "aws", name, move |lua, args| {
        let mut args = args.into_iter();
        let client = match args.next() {
            Some(LuaValue::UserData(ud)) => match ud.borrow::<LuaClient>() {
                Ok(c) => c.0.clone(),
                Err(_) => {
                    return Ok(Err(Error::Failed(
                        "call it as client:send(op, params)".into(),
                    )));
                }
            },
            _ => {
                return Ok(Err(Error::Failed(
                    "call it with a colon: client:send(op, params), client:GetItem(params)".into(),
                )));
            }
        };
        let mut budget = Budget::left(lua.used_memory());
        let operation = match &operation {
            Some(op) => op.clone(),
            None => match args.next() {
                Some(LuaValue::String(s)) => s.to_string_lossy(),
                _ => {
                    return Ok(Err(Error::argument(
                        1,
                        "must be the operation's name (a string)",
                    )));
                }
            },
        };
        let params = match args.next() {
            Some(value) => match binding::lua::from_lua(lua, &value, &mut budget) {
                Ok(v) => v,
                Err(e @ Error::OutOfMemory(_)) => {
                    return Err(mlua::Error::MemoryError(e.message(lua_name(name))));
                }
                Err(e) => return Ok(Err(e)),
            },
            None => Value::Nil,
        };
        match send(&client, &operation, &params, budget) {
            Ok(value) => binding::lua::to_lua(lua, &value).map(Ok),
            Err(e) => Ok(Err(e)),
        }
    })
}

fn lua_name(function: &'static str) -> Name {
    Name {
        module: "aws",
        function,
        lang: Lang::Lua,
    }
}

/// Installs the `aws` global (also `require("aws")`), built on first use.
pub fn register_lua(lua: &Lua) -> mlua::Result<()> {
    binding::lua::install_lazy(lua, "aws", build_lua)
}

fn build_lua(lua: &Lua, module: &Table) -> mlua::Result<()> {
    binding::lua::build_described(lua, module, &AWS)?;
    let client = binding::lua::function(lua, "aws", "client", |lua, args: MultiValue| {
        let mut budget = Budget::left(lua.used_memory());
        let values = args
            .iter()
            .map(|a| binding::lua::from_lua(lua, a, &mut budget))
            .collect::<Result<Vec<_>, _>>();
        let made = values.and_then(|values| {
            let args = Args::new(values, Lang::Lua);
            let service = args.text(1)?.to_owned();
            Client::new(&service, config(&args, 2)?).map_err(Error::Failed)
        });
        match made {
            Ok(client) => Ok(Ok(LuaValue::UserData(
                lua.create_userdata(LuaClient(Arc::new(client)))?,
            ))),
            Err(e) => Ok(Err(e)),
        }
    })?;
    module.raw_set("client", client)?;
    let dynamodb = lua.create_table()?;
    binding::lua::build_described(lua, &dynamodb, &DYNAMODB)?;
    let binary = binding::lua::function(lua, "aws.dynamodb", "binary", |lua, args| {
        match args.front() {
            Some(LuaValue::String(s)) => {
                binding::lua::binary(lua, &s.as_bytes()).map(|t| Ok(LuaValue::Table(t)))
            }
            other => Ok(Err(Error::argument(
                1,
                format!(
                    "must be a string, not {}",
                    other.map_or("no value", LuaValue::type_name)
                ),
            ))),
        }
    })?;
    dynamodb.raw_set("binary", binary)?;
    module.raw_set("dynamodb", dynamodb)
}

// ---------------------------------------------------------------------------
// Rhai

/// A client in Rhai: `client.send(op, params)`.
#[derive(Clone)]
pub struct RhaiClient(Arc<Client>);

/// Installs the static module `aws` (with `aws::dynamodb`) and `AwsClient`'s `send`.
pub fn register_rhai(
    engine: &mut rhai::Engine,
    mut definitions: Option<&mut binding::rhai::Definitions>,
) {
    let mut module = binding::rhai::ModuleBuilder::new("aws");
    module.functions(AWS.functions);
    module.custom(
        &[
            "client(service: String) -> AwsClient",
            "client(service: String, options: Map) -> AwsClient",
        ],
        "A client for the service boto3 calls `service` (`dynamodb`, `s3`, `sqs`, `sns`, `secretsmanager`, `ssm`, `kms`, `events`, `kinesis`, `stepfunctions`, `logs`, `firehose`, `sts`, `ses`); options `region`, `endpoint`, `credentials` (`#{access_key_id, secret_access_key, session_token}`). `client.send(operation, params)` runs an operation.",
        |m| {
            let make = |ctx: &NativeCallContext, args: &[Dynamic]| {
                let mut budget = Budget::left(crate::memory::thread_heap());
                args.iter()
                    .map(|a| binding::rhai::from_rhai(a, &mut budget))
                    .collect::<Result<Vec<_>, _>>()
                    .and_then(|values| {
                        let args = Args::new(values, Lang::Rhai);
                        let service = args.text(1)?.to_owned();
                        Client::new(&service, config(&args, 2)?).map_err(Error::Failed)
                    })
                    .map(|client| Dynamic::from(RhaiClient(Arc::new(client))))
                    .map_err(|e| binding::rhai::throw(ctx, &e, rhai_name("client")))
            };
            m.set_native_fn("client", move |ctx: NativeCallContext, service: Dynamic| {
                make(&ctx, &[service])
            });
            m.set_native_fn(
                "client",
                move |ctx: NativeCallContext, service: Dynamic, options: Dynamic| {
                    make(&ctx, &[service, options])
                },
            );
        },
    );
    let mut dynamodb = binding::rhai::ModuleBuilder::new("dynamodb");
    dynamodb.functions(DYNAMODB.functions);
    module.sub_module(dynamodb, definitions.as_deref_mut());
    module.register(engine, definitions.as_deref_mut());
    engine.register_type_with_name::<RhaiClient>("AwsClient");
    engine.register_fn(
        "send",
        |ctx: NativeCallContext, client: &mut RhaiClient, operation: &str, params: Dynamic| {
            let mut budget = Budget::left(crate::memory::thread_heap());
            binding::rhai::from_rhai(&params, &mut budget)
                .and_then(|params| send(&client.0, operation, &params, budget))
                .map(binding::rhai::plain_to_rhai)
                .map_err(|e| binding::rhai::throw(&ctx, &e, rhai_name("send")))
        },
    );
    if let Some(definitions) = definitions {
        definitions.add_static(&[(
            "send(client: AwsClient, operation: String, params: ?) -> ?",
            "Runs `operation` (PascalCase, as in the API reference) with `params` (the service's own names): `client.send(\"GetItem\", #{ TableName: \"t\", Key: ... })`. A service error throws `#{errorType: AWS's code, errorMessage, status, request_id}`.",
        )]);
    }
}

fn rhai_name(function: &'static str) -> Name {
    Name {
        module: "aws",
        function,
        lang: Lang::Rhai,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_pascal_case_or_boto3s_snake_case() {
        assert_eq!(operation_name("GetItem"), "GetItem");
        assert_eq!(operation_name("get_item"), "GetItem");
        assert_eq!(operation_name("list_objects_v2"), "ListObjectsV2");
        assert_eq!(operation_name("send_message_batch"), "SendMessageBatch");
    }
}
