//! The module contract (SPEC 7.1): a module's functions are written once, in
//! language-neutral Rust, and this layer binds them to both languages the same way.
//!
//! - A [`Function`] takes [`Args`] and returns a [`Value`]: the binding converts
//!   the script's arguments in, and the result out (binary data is a Lua string and
//!   a Rhai `Blob`; text is a string in both).
//! - A failure is an [`Error`]. The binding names the function as the script spells
//!   it (`base64.decode` / `base64::decode`) and raises the error at the caller's
//!   `file:line`: in Lua as a plain string (what `pcall` returns, as with Lua's own
//!   functions), in Rhai as a thrown string (what `catch` receives); a typed error
//!   is a table / map in the shape of SPEC 5, so `errorType` reaches Lambda.
//!
//! `lua` and `rhai` hold the two halves; each module file calls them from its
//! `register_lua` / `register_rhai`.

pub mod lua;
pub mod rhai;
#[cfg(test)]
mod tests;

use std::fmt;

use Lang::{Lua, Rhai};

/// A value crossing the binding, either way.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    /// JSON's `null` in a result (DynamoDB's `NULL`, a service's `null`): a
    /// member that is there with no value, `json.null` in Lua (where nil would
    /// drop the member), `()` in Rhai. Arguments never carry it (`json.null`
    /// passed in is `Nil`).
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Text: a string in both languages. Lua strings passed in arrive as `Bytes`.
    Text(String),
    /// Binary data: a Lua string, a Rhai `Blob`.
    Bytes(Vec<u8>),
    /// Bytes that are usually text (what `base64.decode` gives): a Lua string; in
    /// Rhai a string, and an error when they are not UTF-8 (SPEC 7.2).
    Decoded(Vec<u8>),
    /// Data a Lua script marked as binary (`aws.dynamodb.binary(s)`): Lua strings
    /// arrive as `Bytes` whatever they hold. Never made from Rhai (a Blob is `Bytes`).
    Binary(Vec<u8>),
    /// An array: a Lua table carrying `json.array_mt`, a Rhai array.
    List(Vec<Value>),
    /// An object: a Lua table, a Rhai map (keys in the order given).
    Map(Vec<(String, Value)>),
    /// An argument the binding cannot carry (a function, a coroutine, ...),
    /// by its name in the script's language.
    Other(&'static str),
}

/// A module function's failure, before the binding names the function.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Argument `index` (from 1) is wrong: `detail` says how ("is not valid base64
    /// at byte 7").
    Argument(usize, String),
    /// The call failed for another reason.
    Failed(String),
    /// The call would take more memory than the script has left (its arguments'
    /// copies, its result): raised as running out of memory, `detail` saying what.
    OutOfMemory(String),
    /// A typed error (SPEC 5): a table / map with `errorType` and `errorMessage`
    /// (and any further fields), raised as it is.
    #[allow(
        dead_code,
        reason = "raised by the http and aws modules (SPEC 7.3, 7.4); the binding's tests raise one meanwhile"
    )]
    Typed(TypedError),
}

/// An error scripts and Step Functions can tell apart by its `errorType`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedError {
    pub error_type: String,
    pub message: String,
    /// More members of the error object (`status`, `request_id`, ...).
    pub fields: Vec<(String, Value)>,
}

impl Error {
    pub fn argument(index: usize, detail: impl Into<String>) -> Self {
        Error::Argument(index, detail.into())
    }

    /// The message a script sees: `function: detail`, where `function` is the
    /// name as the script's language spells it. Typed errors keep their own.
    pub fn message(&self, function: Name) -> String {
        match self {
            Error::Argument(index, detail) => format!("{function}: argument {index} {detail}"),
            Error::Failed(message) => format!("{function}: {message}"),
            Error::OutOfMemory(detail) => format!("{function}: {detail}"),
            Error::Typed(typed) => typed.message.clone(),
        }
    }
}

/// A module function's name as a language spells it: `base64.decode`,
/// `base64::decode`. Made into text only for an error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name {
    pub module: &'static str,
    pub function: &'static str,
    pub lang: Lang,
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let separator = match self.lang {
            Lua => ".",
            Rhai => "::",
        };
        write!(f, "{}{separator}{}", self.module, self.function)
    }
}

/// Which language a call comes from: type names in messages are the script's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Lua,
    Rhai,
}

/// What a call may still allocate on the script's behalf, in bytes: the copies
/// of its arguments and its result count against the script's memory limit, as
/// the script's own values do (a 50 MB string hex-encoded is 150 MB more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget(usize);

impl Budget {
    /// The memory the script has left, with `used` bytes in use.
    pub fn left(used: usize) -> Self {
        Budget(crate::limits::script_memory().saturating_sub(used))
    }

    pub fn unlimited() -> Self {
        Budget(usize::MAX)
    }

    /// The bytes left.
    pub fn bytes(self) -> usize {
        self.0
    }

    /// Takes `bytes` from the budget; [`Error::OutOfMemory`] when there are not
    /// as many left.
    pub fn take(&mut self, bytes: usize, what: &str) -> Result<(), Error> {
        match self.0.checked_sub(bytes) {
            Some(left) => {
                self.0 = left;
                Ok(())
            }
            None => Err(Error::OutOfMemory(format!(
                "not enough memory for {what} ({bytes} bytes; the script's memory limit leaves {})",
                self.0
            ))),
        }
    }
}

/// A call's arguments, converted from the script's values.
pub struct Args {
    values: Vec<Value>,
    lang: Lang,
    budget: Budget,
}

impl Args {
    pub fn new(values: Vec<Value>, lang: Lang) -> Self {
        Args {
            values,
            lang,
            budget: Budget::unlimited(),
        }
    }

    /// What the call may still allocate: see [`Args::reserve`].
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Checks that a result of `bytes` fits what the script has left, before it
    /// is built: functions whose result can be much larger than their arguments
    /// (encoders) call it.
    pub fn reserve(&self, bytes: usize) -> Result<(), Error> {
        let mut budget = self.budget;
        budget.take(bytes, "the result")
    }

    fn get(&self, index: usize) -> &Value {
        self.values.get(index - 1).unwrap_or(&Value::Nil)
    }

    /// Argument `index` (from 1) as it came; nil when absent.
    pub fn value(&self, index: usize) -> &Value {
        self.get(index)
    }

    /// What the call may still allocate, in bytes (see [`Args::reserve`]).
    pub fn room(&self) -> usize {
        self.budget.0
    }

    /// The language of the call.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The script's name for the type of argument `index`.
    fn type_name(&self, index: usize) -> &'static str {
        type_name(self.get(index), self.lang)
    }

    fn wrong_type(&self, index: usize, expected: &str) -> Error {
        Error::argument(
            index,
            format!("must be {expected}, not {}", self.type_name(index)),
        )
    }

    /// Data (SPEC 7.1): a string (any bytes, in Lua), or a Rhai Blob.
    pub fn data(&self, index: usize) -> Result<&[u8], Error> {
        match self.get(index) {
            Value::Text(s) => Ok(s.as_bytes()),
            Value::Bytes(b) | Value::Decoded(b) | Value::Binary(b) => Ok(b),
            _ => Err(self.wrong_type(index, self.data_kind())),
        }
    }

    fn data_kind(&self) -> &'static str {
        match self.lang {
            Lua => "a string",
            Rhai => "a string or a Blob",
        }
    }

    /// Text: a string (in Lua, any string: Lua strings are bytes; `str` holds
    /// what is UTF-8, else the error names the argument).
    pub fn text(&self, index: usize) -> Result<&str, Error> {
        match self.get(index) {
            Value::Text(s) => Ok(s),
            Value::Bytes(b) if self.lang == Lua => std::str::from_utf8(b)
                .map_err(|e| Error::argument(index, format!("is not valid UTF-8 ({e})"))),
            _ => Err(self.wrong_type(index, "a string")),
        }
    }

    /// Text as bytes: a string, whatever it holds (Lua strings are bytes).
    pub fn text_bytes(&self, index: usize) -> Result<&[u8], Error> {
        match self.get(index) {
            Value::Text(s) => Ok(s.as_bytes()),
            Value::Bytes(b) if self.lang == Lua => Ok(b),
            _ => Err(self.wrong_type(index, "a string")),
        }
    }

    /// An integer; a float with an integer value counts (Lua's rule for
    /// `string.rep` and the like).
    pub fn int(&self, index: usize) -> Result<i64, Error> {
        match self.get(index) {
            Value::Int(i) => Ok(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
            Value::Float(_) => Err(Error::argument(index, "must be a whole number")),
            _ => Err(self.wrong_type(index, "an integer")),
        }
    }

    /// An integer, or `None` when the argument is absent (nil / `()`).
    pub fn optional_int(&self, index: usize) -> Result<Option<i64>, Error> {
        match self.get(index) {
            Value::Nil => Ok(None),
            _ => self.int(index).map(Some),
        }
    }

    /// A number, integer or float.
    pub fn number(&self, index: usize) -> Result<f64, Error> {
        match self.get(index) {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            _ => Err(self.wrong_type(index, "a number")),
        }
    }

    /// A table / map, its entries in a stable order (sorted by key).
    pub fn map(&self, index: usize) -> Result<&[(String, Value)], Error> {
        match self.get(index) {
            Value::Map(entries) => Ok(entries),
            // An empty Lua table reads as an empty list: it is an empty map too.
            Value::List(items) if items.is_empty() => Ok(&[]),
            _ => Err(self.wrong_type(
                index,
                match self.lang {
                    Lua => "a table",
                    Rhai => "a map",
                },
            )),
        }
    }
}

/// A string inside argument `index` (an option, a member of a table / map): its
/// text, or an error naming it (`option NAME must be a string`).
pub fn option_text(value: &Value, index: usize, name: &str) -> Result<String, Error> {
    match value {
        Value::Text(s) => Ok(s.clone()),
        Value::Bytes(b) => String::from_utf8(b.clone())
            .map_err(|_| Error::argument(index, format!("option {name} is not UTF-8 text"))),
        _ => Err(Error::argument(
            index,
            format!("option {name} must be a string"),
        )),
    }
}

/// The name of `value`'s type in `lang`, for error messages.
pub fn type_name(value: &Value, lang: Lang) -> &'static str {
    match (value, lang) {
        (Value::Other(name), _) => name,
        (Value::Nil, Lua) => "nil",
        (Value::Null, Lua) => "json.null",
        (Value::Nil | Value::Null, Rhai) => "()",
        (Value::Bool(_), _) => "boolean",
        (Value::Int(_) | Value::Float(_), Lua) => "number",
        (Value::Int(_), Rhai) => "integer",
        (Value::Float(_), Rhai) => "float",
        (Value::Text(_) | Value::Decoded(_), _) => "string",
        (Value::Bytes(_), Lua) => "string",
        (Value::Bytes(_) | Value::Binary(_), Rhai) => "Blob",
        (Value::Binary(_), Lua) => "binary",
        (Value::List(_), Lua) | (Value::Map(_), Lua) => "table",
        (Value::List(_), Rhai) => "array",
        (Value::Map(_), Rhai) => "map",
    }
}

/// What a parameter takes, or a function returns: for checking arity and for the
/// Rhai definitions (SPEC 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A string or a Blob (binary data, SPEC 7.1).
    Data,
    Text,
    Int,
    Number,
    Bool,
    Map,
    /// Binary data out: a Lua string, a Rhai Blob.
    Bytes,
    /// Anything (or: it depends).
    Any,
    /// No value.
    Nothing,
}

impl Type {
    /// The type as Rhai's definition files write it.
    pub fn rhai(self) -> &'static str {
        match self {
            Type::Data | Type::Any | Type::Number => "?",
            Type::Text => "String",
            Type::Int => "int",
            Type::Bool => "bool",
            Type::Map => "Map",
            Type::Bytes => "Blob",
            Type::Nothing => "()",
        }
    }
}

/// A parameter: its name and type; optional ones come last.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: Type,
    pub optional: bool,
}

impl Param {
    pub const fn new(name: &'static str, ty: Type) -> Self {
        Param {
            name,
            ty,
            optional: false,
        }
    }

    pub const fn optional(name: &'static str, ty: Type) -> Self {
        Param {
            name,
            ty,
            optional: true,
        }
    }
}

/// One function of a module, the same in both languages.
pub struct Function {
    pub name: &'static str,
    pub params: &'static [Param],
    pub returns: Type,
    /// One line for the definitions; the README and the Lua definitions say more.
    pub doc: &'static str,
    pub call: fn(&Args) -> Result<Value, Error>,
    /// For a function returning [`Value::Decoded`]: the name of its Rhai twin that
    /// returns the bytes as a `Blob` (`decode_blob`), registered in Rhai only.
    pub rhai_blob_twin: Option<&'static str>,
}

impl Function {
    /// The fewest arguments it takes (its parameters up to the first optional one).
    pub fn min_arity(&self) -> usize {
        self.params.iter().take_while(|p| !p.optional).count()
    }
}

/// A module: a name (the Lua global and `require` name, the Rhai static module
/// name) and its functions.
pub struct Module {
    pub name: &'static str,
    pub functions: &'static [Function],
}
