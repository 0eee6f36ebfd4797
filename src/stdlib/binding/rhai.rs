//! The Rhai half of the module contract: static modules (`base64::encode(x)`),
//! values converted both ways, errors thrown at the call's position, and each
//! module's definitions (SPEC 11), written from the very registrations the engine
//! gets, in the form of Rhai's `Engine::definitions()`.
//!
//! Rhai adds no position to an error raised by a native function: the binding
//! throws it at the call's (`ErrorRuntime` with the call position), so the engine
//! reports `app.rhai:7: base64::decode: ...` as it does for a script's `throw`.

use std::collections::BTreeMap;

use rhai::{
    Array, Blob, Dynamic, EvalAltResult, FLOAT, INT, ImmutableString, Map, NativeCallContext,
};

use super::{Args, Budget, Error, Function, Lang, Module, Name, TypedError, Value};

/// A static module being built, with what its definitions file will say.
pub struct ModuleBuilder {
    name: &'static str,
    module: rhai::Module,
    entries: Vec<Entry>,
}

/// One entry of a definitions file, rendered only when definitions are asked for.
enum Entry {
    Const {
        name: &'static str,
        ty: &'static str,
        doc: &'static str,
    },
    /// A described function at one of its arities (`blob`: its Blob twin).
    Function {
        function: &'static Function,
        arity: usize,
        blob: bool,
    },
    /// A function of the module's own: its signature as written (`encode(value: ?) -> String`).
    Custom {
        signature: &'static str,
        doc: &'static str,
    },
}

impl Entry {
    /// The name and arity entries are sorted by, as Rhai's writer sorts them.
    fn sort_key(&self) -> (u8, String, usize) {
        match self {
            Entry::Const { name, .. } => (0, (*name).to_owned(), 0),
            Entry::Function {
                function,
                arity,
                blob,
            } => (1, rhai_name(function, *blob).to_owned(), *arity),
            Entry::Custom { signature, .. } => {
                let name = signature.split('(').next().unwrap_or_default();
                let arity = signature
                    .split_once('(')
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .map_or(0, |(params, _)| {
                        params.split(',').filter(|p| !p.trim().is_empty()).count()
                    });
                (1, name.to_owned(), arity)
            }
        }
    }

    fn render(&self) -> String {
        match self {
            Entry::Const { name, ty, doc } => format!("/// {doc}\nconst {name}: {ty};"),
            Entry::Function {
                function,
                arity,
                blob,
            } => {
                let params: Vec<String> = function.params[..*arity]
                    .iter()
                    .map(|p| format!("{}: {}", p.name, p.ty.rhai()))
                    .collect();
                let returns = if *blob {
                    "Blob"
                } else {
                    function.returns.rhai()
                };
                let doc = if *blob {
                    format!(
                        "Like `{}`, but the bytes come as a Blob: for data that is not UTF-8 text.",
                        function.name
                    )
                } else {
                    function.doc.to_owned()
                };
                format!(
                    "/// {doc}\nfn {}({}) -> {returns};",
                    rhai_name(function, *blob),
                    params.join(", ")
                )
            }
            Entry::Custom { signature, doc } => format!("/// {doc}\nfn {signature};"),
        }
    }
}

fn rhai_name(function: &Function, blob: bool) -> &'static str {
    match (blob, function.rhai_blob_twin) {
        (true, Some(twin)) => twin,
        _ => function.name,
    }
}

impl ModuleBuilder {
    pub fn new(name: &'static str) -> Self {
        ModuleBuilder {
            name,
            module: rhai::Module::new(),
            entries: Vec::new(),
        }
    }

    /// Adds described functions, at each arity they take, and their Blob twins.
    pub fn functions(&mut self, functions: &'static [Function]) -> &mut Self {
        for function in functions {
            for arity in function.min_arity()..=function.params.len() {
                self.set(function, arity, false);
                if function.rhai_blob_twin.is_some() {
                    self.set(function, arity, true);
                }
            }
        }
        self
    }

    fn set(&mut self, function: &'static Function, arity: usize, blob: bool) {
        let name = rhai_name(function, blob);
        let module = self.name;
        let qualified = |function| Name {
            module,
            function,
            lang: Lang::Rhai,
        };
        let call = move |ctx: &NativeCallContext, args: &[Dynamic]| {
            let mut budget = Budget::left(crate::memory::thread_heap());
            let twin = function.rhai_blob_twin.map(qualified);
            args.iter()
                .map(|a| from_rhai(a, &mut budget))
                .collect::<Result<Vec<_>, _>>()
                .and_then(|values| {
                    (function.call)(&Args::new(values, Lang::Rhai).with_budget(budget))
                })
                .and_then(|value| to_rhai(value, blob, twin))
                .map_err(|e| throw(ctx, &e, qualified(name)))
        };
        match arity {
            0 => self
                .module
                .set_native_fn(name, move |ctx: NativeCallContext| call(&ctx, &[])),
            1 => self
                .module
                .set_native_fn(name, move |ctx: NativeCallContext, a: Dynamic| {
                    call(&ctx, &[a])
                }),
            2 => self.module.set_native_fn(
                name,
                move |ctx: NativeCallContext, a: Dynamic, b: Dynamic| call(&ctx, &[a, b]),
            ),
            3 => self.module.set_native_fn(
                name,
                move |ctx: NativeCallContext, a: Dynamic, b: Dynamic, c: Dynamic| {
                    call(&ctx, &[a, b, c])
                },
            ),
            _ => unreachable!("{name}: module functions take at most three arguments"),
        };
        self.entries.push(Entry::Function {
            function,
            arity,
            blob,
        });
    }

    /// Adds a constant (`json::empty_array`).
    pub fn constant(
        &mut self,
        name: &'static str,
        value: Dynamic,
        ty: &'static str,
        doc: &'static str,
    ) -> &mut Self {
        self.module.set_var(name, value);
        self.entries.push(Entry::Const { name, ty, doc });
        self
    }

    /// Adds functions a module registers itself (`set` puts them into the Rhai
    /// module), with one definition line per overload (`signatures`).
    pub fn custom(
        &mut self,
        signatures: &[&'static str],
        doc: &'static str,
        set: impl FnOnce(&mut rhai::Module),
    ) -> &mut Self {
        set(&mut self.module);
        self.entries.extend(
            signatures
                .iter()
                .map(|&signature| Entry::Custom { signature, doc }),
        );
        self
    }

    /// Adds `sub` as the sub-module `aws::dynamodb` of this one; its definitions
    /// go to a file of their own (`aws.dynamodb.d.rhai`).
    pub fn sub_module(
        &mut self,
        sub: ModuleBuilder,
        definitions: Option<&mut Definitions>,
    ) -> &mut Self {
        if let Some(definitions) = definitions {
            definitions.write(
                format!("{}.{}.d.rhai", self.name, sub.name),
                &format!("{}::{}", self.name, sub.name),
                &sub.entries,
            );
        }
        self.module.set_sub_module(sub.name, sub.module);
        self
    }

    /// Registers the module in `engine`; its definitions go to `definitions`
    /// when given (`lure types`), and are never rendered otherwise.
    pub fn register(self, engine: &mut rhai::Engine, definitions: Option<&mut Definitions>) {
        if let Some(definitions) = definitions {
            definitions.add(self.name, &self.entries);
        }
        engine.register_static_module(self.name, self.module.into());
    }
}

/// Builds and registers the module `module` describes.
pub fn register(
    engine: &mut rhai::Engine,
    module: &'static Module,
    definitions: Option<&mut Definitions>,
) {
    let mut builder = ModuleBuilder::new(module.name);
    builder.functions(module.functions);
    builder.register(engine, definitions);
}

/// The definition files of the registered modules (SPEC 11), by file name:
/// `NAME.d.rhai` per static module, `__static__.d.rhai` for global functions.
#[derive(Debug, Default)]
pub struct Definitions {
    files: BTreeMap<String, String>,
    /// The global functions added so far: one file holds them all.
    statics: Vec<(&'static str, &'static str)>,
}

impl Definitions {
    fn add(&mut self, module: &str, entries: &[Entry]) {
        self.write(format!("{module}.d.rhai"), module, entries);
    }

    /// Global functions (registered on the engine, not in a module), as
    /// `signature` lines with their docs.
    pub fn add_static(&mut self, functions: &[(&'static str, &'static str)]) {
        self.statics.extend_from_slice(functions);
        let entries: Vec<Entry> = self
            .statics
            .iter()
            .map(|&(signature, doc)| Entry::Custom { signature, doc })
            .collect();
        self.write("__static__.d.rhai".to_owned(), "static", &entries);
    }

    fn write(&mut self, file: String, module: &str, entries: &[Entry]) {
        let mut entries: Vec<&Entry> = entries.iter().collect();
        entries.sort_by_key(|e| e.sort_key());
        let body: Vec<String> = entries.iter().map(|e| e.render()).collect();
        self.files
            .insert(file, format!("module {module};\n\n{}\n", body.join("\n\n")));
    }

    /// Each file's name and text, by name.
    pub fn files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|(n, t)| (n.as_str(), t.as_str()))
    }
}

/// The error a native function throws: at the call's position, a string naming
/// the function (or a typed error's map), as a script's `throw` would.
pub fn throw(ctx: &NativeCallContext, error: &Error, function: Name) -> Box<EvalAltResult> {
    let value = match error {
        // As Rhai's own size limits: `Runtime.OutOfMemory` unless caught.
        Error::OutOfMemory(_) => {
            return Box::new(EvalAltResult::ErrorDataTooLarge(
                TOO_LARGE_FOR_MEMORY.into(),
                ctx.call_position(),
            ));
        }
        Error::Typed(TypedError {
            error_type,
            message,
            fields,
        }) => {
            let mut map = Map::new();
            map.insert("errorType".into(), error_type.clone().into());
            map.insert("errorMessage".into(), message.clone().into());
            for (name, value) in fields {
                map.insert(name.as_str().into(), plain_to_rhai(value.clone()));
            }
            Dynamic::from_map(map)
        }
        other => other.message(function).into(),
    };
    Box::new(EvalAltResult::ErrorRuntime(value, ctx.call_position()))
}

/// Arrays and maps deeper than this are not converted (an argument, not a document).
const MAX_DEPTH: usize = 32;

/// What Rhai's size-limit error names when a stdlib call's arguments or result
/// would not fit in the script's memory.
pub const TOO_LARGE_FOR_MEMORY: &str = "Size of a stdlib call's data";

/// A Rhai value as the binding carries it; the copies count against `budget`.
pub fn from_rhai(value: &Dynamic, budget: &mut Budget) -> Result<Value, Error> {
    from_rhai_at(value, 0, budget)
}

/// What the binding counts for each value it converts, besides its bytes.
const VALUE_BYTES: usize = 48;

fn from_rhai_at(value: &Dynamic, depth: usize, budget: &mut Budget) -> Result<Value, Error> {
    budget.take(VALUE_BYTES, "the arguments")?;
    Ok(if value.is_unit() {
        Value::Nil
    } else if let Ok(b) = value.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = value.as_int() {
        Value::Int(i)
    } else if let Ok(f) = value.as_float() {
        Value::Float(f)
    } else if let Some(s) = value.read_lock::<ImmutableString>() {
        budget.take(s.len(), "the arguments")?;
        Value::Text(s.to_string())
    } else if value.is_char() {
        Value::Text(value.to_string())
    } else if let Some(blob) = value.read_lock::<Blob>() {
        budget.take(blob.len(), "the arguments")?;
        Value::Bytes(blob.clone())
    } else if value.is_array() && depth < MAX_DEPTH {
        let mut items = Vec::new();
        if let Some(array) = value.read_lock::<Array>() {
            for item in array.iter() {
                items.push(from_rhai_at(item, depth + 1, budget)?);
            }
        }
        Value::List(items)
    } else if value.is_map() && depth < MAX_DEPTH {
        let mut entries = Vec::new();
        if let Some(map) = value.read_lock::<Map>() {
            for (key, item) in map.iter() {
                budget.take(key.len(), "the arguments")?;
                entries.push((key.to_string(), from_rhai_at(item, depth + 1, budget)?));
            }
        }
        Value::Map(entries)
    } else {
        Value::Other(value.type_name())
    })
}

/// A binding value in Rhai. [`Value::Decoded`] is a Blob for a Blob twin
/// (`blob`), else a string, or an error naming the twin when it is not UTF-8.
fn to_rhai(value: Value, blob: bool, twin: Option<Name>) -> Result<Dynamic, Error> {
    match value {
        Value::Decoded(bytes) if blob => Ok(Dynamic::from_blob(bytes)),
        Value::Decoded(bytes) => String::from_utf8(bytes).map(Dynamic::from).map_err(|e| {
            let hint =
                twin.map_or_else(String::new, |twin| format!(": use {twin} for binary data"));
            Error::Failed(format!(
                "the result is not UTF-8 text (invalid byte at {}){hint}",
                e.utf8_error().valid_up_to()
            ))
        }),
        other => Ok(plain_to_rhai(other)),
    }
}

pub fn plain_to_rhai(value: Value) -> Dynamic {
    match value {
        Value::Nil | Value::Null | Value::Other(_) => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(b),
        Value::Int(i) => Dynamic::from_int(i as INT),
        Value::Float(f) => Dynamic::from_float(f as FLOAT),
        Value::Text(s) => s.into(),
        Value::Bytes(b) | Value::Binary(b) => Dynamic::from_blob(b),
        Value::Decoded(b) => String::from_utf8(b)
            .map(Dynamic::from)
            .unwrap_or_else(|e| Dynamic::from_blob(e.into_bytes())),
        Value::List(items) => Dynamic::from_array(items.into_iter().map(plain_to_rhai).collect()),
        Value::Map(entries) => Dynamic::from_map(
            entries
                .into_iter()
                .map(|(k, v)| (k.into(), plain_to_rhai(v)))
                .collect(),
        ),
    }
}
