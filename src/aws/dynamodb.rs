//! DynamoDB's typed values (SPEC 7.4, `aws.dynamodb.marshal` / `unmarshal`):
//! plain values ↔ AttributeValues in the JSON DynamoDB speaks, as the JS
//! DocumentClient's `marshall` / `unmarshall` make them, so what [`marshal`] gives
//! goes to `client:send` as it is and what a `GetItem` returns goes to
//! [`unmarshal`] as it is.
//!
//! - [`marshal`]: a table / map is an *item* (`{id = 1}` → `{id = {N = "1"}}`), as
//!   DocumentClient's `marshall(object)` returns; any other value is one
//!   AttributeValue (`"x"` → `{S = "x"}`), as boto3's `TypeSerializer` gives. An
//!   item is what `PutItem`'s `Item` and `GetItem`'s `Key` want, so a script never
//!   has to unwrap an `M`.
//! - [`unmarshal`]: the reverse. It takes an item or one AttributeValue, told apart
//!   by shape ([`is_attribute_value`] has the rule): `{S = "x"}` is the value
//!   `"x"`, `{S = {S = "x"}}` the item with an attribute named `S`.
//!
//! Errors are messages naming where the bad value is, as a path (`item.tags[2]`,
//! `item["first name"]`, `value[0]`); the binding names the function. `marshal`
//! counts list indexes as the script does (Lua from 1, Rhai from 0); `unmarshal`,
//! which has no language, from 0, as DynamoDB's document paths do.

use std::fmt;

use crate::stdlib::base64;
use crate::stdlib::binding::{Lang, Value};

/// AttributeValue's type tags, each the one member of an AttributeValue.
const TAGS: [&str; 10] = ["S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"];

/// A plain value as DynamoDB's JSON wants it: a map is an item (attribute name →
/// AttributeValue), anything else one AttributeValue (`{S = "x"}`).
///
/// Strings are `S`, except data marked binary (a Rhai Blob, a Lua string wrapped
/// by `aws.dynamodb.binary`): `B`, as padded base64 text, the wire's form. A Lua
/// string must be UTF-8 to be an `S`. Numbers are `N` as JavaScript prints them;
/// nil is `NULL`; arrays `L`; maps `M`. Sets are never made: DocumentClient makes
/// them only from JavaScript `Set`s, which scripts do not have.
pub fn marshal(value: &Value, lang: Lang) -> Result<Value, String> {
    match value {
        Value::Map(members) => marshal_members(members, lang, &Path::Root("item")).map(Value::Map),
        _ => attribute_value(value, lang, &Path::Root("value")),
    }
}

fn marshal_members(
    members: &[(String, Value)],
    lang: Lang,
    path: &Path,
) -> Result<Vec<(String, Value)>, String> {
    members
        .iter()
        .map(|(name, value)| {
            let value = attribute_value(value, lang, &Path::Key(path, name))?;
            Ok((name.clone(), value))
        })
        .collect()
}

/// One value as an AttributeValue: `{TAG = content}`.
fn attribute_value(value: &Value, lang: Lang, path: &Path) -> Result<Value, String> {
    let (tag, content) = match value {
        // `json.null` / `()`: Lua's nil cannot be in a table, so a null is meant.
        Value::Nil | Value::Null => ("NULL", Value::Bool(true)),
        Value::Bool(b) => ("BOOL", Value::Bool(*b)),
        Value::Int(i) => ("N", Value::Text(i.to_string())),
        Value::Float(f) => ("N", Value::Text(number_text(*f, path)?)),
        Value::Text(s) => ("S", Value::Text(s.clone())),
        // A Lua string is text unless the script marked it; a Rhai Blob is binary.
        Value::Bytes(b) | Value::Decoded(b) => match lang {
            Lang::Lua => ("S", Value::Text(lua_text(b, path)?)),
            Lang::Rhai => ("B", Value::Text(base64::encode(b))),
        },
        Value::Binary(b) => ("B", Value::Text(base64::encode(b))),
        Value::List(items) => {
            // Paths count as the script does: Lua from 1, Rhai from 0.
            let first = match lang {
                Lang::Lua => 1,
                Lang::Rhai => 0,
            };
            let items = items
                .iter()
                .enumerate()
                .map(|(i, item)| attribute_value(item, lang, &Path::Index(path, first + i)))
                .collect::<Result<_, _>>()?;
            ("L", Value::List(items))
        }
        Value::Map(members) => ("M", Value::Map(marshal_members(members, lang, path)?)),
        // What the binding makes of a Lua table nested past its depth limit.
        Value::Other("table") => {
            return Err(format!(
                "{path} is nested too deeply (DynamoDB allows 32 levels)"
            ));
        }
        Value::Other(name) => {
            return Err(format!(
                "{path} is of type {name}, which DynamoDB cannot store"
            ));
        }
    };
    Ok(Value::Map(vec![(tag.to_owned(), content)]))
}

/// A float as JavaScript prints it (what DocumentClient sends): the shortest
/// text that reads back the same, whole numbers without `.0`, -0 as `0`.
fn number_text(f: f64, path: &Path) -> Result<String, String> {
    if !f.is_finite() {
        return Err(format!(
            "{path} is {f}, which is not a number DynamoDB can store"
        ));
    }
    if f == 0.0 {
        return Ok("0".to_owned());
    }
    Ok(ryu_js::Buffer::new().format_finite(f).to_owned())
}

/// A Lua string as an `S`: Lua strings are bytes, and DynamoDB's strings are
/// UTF-8, so anything else is binary data the script has to mark as such.
fn lua_text(bytes: &[u8], path: &Path) -> Result<String, String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(e) => Err(format!(
            "{path} is not UTF-8 text (at byte {}), so it cannot be a string (S): \
             wrap binary data with aws.dynamodb.binary(s) to store it as binary (B)",
            e.valid_up_to()
        )),
    }
}

/// An item (attribute name → AttributeValue) or one AttributeValue as a plain
/// value: the reverse of [`marshal`].
///
/// `N` is an integer when its text has no `.` or exponent and fits 64 bits, else
/// a float; `B` (base64 text) is bytes; `NULL` nil; `SS` / `NS` / `BS` arrays.
/// Text may arrive as a Lua string (bytes holding UTF-8) or a Rhai string; `B`'s
/// base64 likewise. A Lua value wrapped by `aws.dynamodb.binary` in a `B` is taken
/// as the bytes themselves. A Rhai Blob in a `B` is read as base64 text, like the
/// Lua string it cannot be told from here.
pub fn unmarshal(item: &Value) -> Result<Value, String> {
    if is_attribute_value(item) {
        return plain_value(item, &Path::Root("value"));
    }
    match item {
        Value::Map(members) => unmarshal_members(members, &Path::Root("item")).map(Value::Map),
        // `{}` decoded by a codec that reads it as an empty array: an empty item.
        Value::List(items) if items.is_empty() => Ok(Value::Map(Vec::new())),
        other => Err(format!(
            "expects an item (attribute names → AttributeValues) or one AttributeValue \
             ({{\"S\": \"text\"}}), not {}",
            describe(other)
        )),
    }
}

/// Whether `value` reads as one AttributeValue rather than an item: a map with
/// exactly one member, named after a type tag, whose content is not itself an
/// AttributeValue:
///
/// - `{S = "x"}`: an AttributeValue. `{S = {S = "x"}}`: an item whose attribute
///   `S` holds `"x"` (no tag but `M` holds a map, and `L` and the sets only an
///   empty one: a Lua `{}`).
/// - `{M = content}`: an AttributeValue unless `content` is itself one, as in
///   `{M = {S = "x"}}` (the item whose attribute `M` is `"x"`), decided by the same
///   rule, one level down. `{M = {S = {S = "x"}}}` is then the map `{S = "x"}`.
///
/// The rule never misreads valid input: no value is both a valid AttributeValue
/// and a valid item (an item's one member holds an AttributeValue, a map; an
/// AttributeValue's holds a map only for `M`, and then an item; by induction on
/// depth, the two never meet). So an attribute named `S` or `M` is safe.
fn is_attribute_value(value: &Value) -> bool {
    let Value::Map(members) = value else {
        return false;
    };
    let [(tag, content)] = members.as_slice() else {
        return false;
    };
    if !TAGS.contains(&tag.as_str()) {
        return false;
    }
    match (tag.as_str(), content) {
        ("M", Value::Map(_)) => !is_attribute_value(content),
        (_, Value::Map(inner)) => inner.is_empty(),
        _ => true,
    }
}

fn unmarshal_members(
    members: &[(String, Value)],
    path: &Path,
) -> Result<Vec<(String, Value)>, String> {
    members
        .iter()
        .map(|(name, value)| Ok((name.clone(), plain_value(value, &Path::Key(path, name))?)))
        .collect()
}

/// One AttributeValue as a plain value.
fn plain_value(value: &Value, path: &Path) -> Result<Value, String> {
    let (tag, content) = tagged(value, path)?;
    Ok(match tag {
        "S" => Value::Text(text(content, path, "S")?.to_owned()),
        "N" => number(text(content, path, "N")?, path)?,
        "B" => Value::Bytes(binary(content, path, "B")?),
        "BOOL" => match content {
            Value::Bool(b) => Value::Bool(*b),
            other => return Err(wrong(path, "BOOL", "a boolean", other)),
        },
        // DynamoDB only ever sends `true`; `false` means nothing else either.
        "NULL" => match content {
            Value::Bool(_) => Value::Null,
            other => return Err(wrong(path, "NULL", "true", other)),
        },
        "L" => Value::List(each(content, path, "L", plain_value)?),
        "M" => Value::Map(unmarshal_members(members(content, path)?, path)?),
        "SS" => Value::List(each(content, path, "SS", |member, at| {
            Ok(Value::Text(text(member, at, "an SS member")?.to_owned()))
        })?),
        "NS" => Value::List(each(content, path, "NS", |member, at| {
            number(text(member, at, "an NS member")?, at)
        })?),
        "BS" => Value::List(each(content, path, "BS", |member, at| {
            binary(member, at, "a BS member").map(Value::Bytes)
        })?),
        other => {
            return Err(format!(
                "{path} has the unknown type {other:?} (DynamoDB's types are {})",
                TAGS.join(", ")
            ));
        }
    })
}

/// An AttributeValue's one member: its tag and content.
fn tagged<'v>(value: &'v Value, path: &Path) -> Result<(&'v str, &'v Value), String> {
    const SHAPE: &str = "a map with one member, its type: {\"S\": \"text\"}, {\"N\": \"1\"}, ...";
    match value {
        Value::Map(members) => match members.as_slice() {
            [(tag, content)] => Ok((tag, content)),
            [] => Err(format!("{path} is empty, not an AttributeValue ({SHAPE})")),
            _ => {
                let names: Vec<&str> = members.iter().map(|(name, _)| name.as_str()).collect();
                Err(format!(
                    "{path} has {} members ({}), not one: an AttributeValue is {SHAPE}",
                    members.len(),
                    names.join(", ")
                ))
            }
        },
        other => Err(format!(
            "{path} is {}, not an AttributeValue ({SHAPE})",
            describe(other)
        )),
    }
}

/// The content of `S`, `N` or a set member as text: a Rhai string, or a Lua
/// string (bytes) holding UTF-8.
fn text<'v>(content: &'v Value, path: &Path, what: &str) -> Result<&'v str, String> {
    match content {
        Value::Text(s) => Ok(s),
        Value::Bytes(b) | Value::Decoded(b) => std::str::from_utf8(b).map_err(|e| {
            format!(
                "{path}: {what} is not UTF-8 text (at byte {})",
                e.valid_up_to()
            )
        }),
        other => Err(wrong(path, what, "a string", other)),
    }
}

/// `N`'s text as a number: an integer when it is written as one and fits 64
/// bits, else a float (DynamoDB's 38 digits do not all fit either).
fn number(text: &str, path: &Path) -> Result<Value, String> {
    if !text.contains(['.', 'e', 'E'])
        && let Ok(i) = text.parse::<i64>()
    {
        return Ok(Value::Int(i));
    }
    match text.parse::<f64>() {
        // Rust also reads "inf" and "NaN", which DynamoDB never sends.
        Ok(f) if f.is_finite() => Ok(Value::Float(f)),
        _ => Err(format!("{path}: N {text:?} is not a number")),
    }
}

/// `B`'s content or a `BS` member as bytes: base64 text, as on the wire, or data
/// a Lua script marked binary (the bytes themselves).
fn binary(content: &Value, path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let encoded: &[u8] = match content {
        Value::Binary(b) => return Ok(b.clone()),
        Value::Text(s) => s.as_bytes(),
        Value::Bytes(b) | Value::Decoded(b) => b,
        other => return Err(wrong(path, what, "base64 text", other)),
    };
    base64::decode(encoded).map_err(|detail| format!("{path}: {what} {detail}"))
}

/// The content of `L` or a set, each member converted by `convert` at its
/// index (from 0, as DynamoDB's document paths count).
fn each(
    content: &Value,
    path: &Path,
    tag: &str,
    convert: impl Fn(&Value, &Path) -> Result<Value, String>,
) -> Result<Vec<Value>, String> {
    let items: &[Value] = match content {
        Value::List(items) => items,
        // A Lua `{}` without `json.array_mt` arrives as an empty map.
        Value::Map(members) if members.is_empty() => &[],
        other => return Err(wrong(path, tag, "an array", other)),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| convert(item, &Path::Index(path, i)))
        .collect()
}

/// The content of `M`: attribute name → AttributeValue.
fn members<'v>(content: &'v Value, path: &Path) -> Result<&'v [(String, Value)], String> {
    match content {
        Value::Map(members) => Ok(members),
        // `{}` read as an empty array (a Lua table carrying `json.array_mt`).
        Value::List(items) if items.is_empty() => Ok(&[]),
        other => Err(wrong(path, "M", "a table/map", other)),
    }
}

fn wrong(path: &Path, what: &str, expected: &str, got: &Value) -> String {
    format!("{path}: {what} must be {expected}, not {}", describe(got))
}

/// A value's kind in words both languages understand (unmarshal has no language).
fn describe(value: &Value) -> String {
    match value {
        Value::Nil | Value::Null => "nil".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Int(_) | Value::Float(_) => "a number".into(),
        Value::Text(_) | Value::Decoded(_) => "a string".into(),
        Value::Bytes(_) => "a string/Blob".into(),
        Value::Binary(_) => "binary data".into(),
        Value::List(_) => "an array".into(),
        Value::Map(_) => "a table/map".into(),
        Value::Other(name) => format!("a value of type {name}"),
    }
}

/// Where a value sits, as a document path (`item.tags[2].name`): built
/// on the stack as the walk descends, written out only for an error.
enum Path<'a> {
    /// `item` (a whole item) or `value` (one value).
    Root(&'static str),
    Key(&'a Path<'a>, &'a str),
    /// An index as the message shows it.
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Key(parent, key) if is_identifier(key) => write!(f, "{parent}.{key}"),
            Path::Key(parent, key) => write!(f, "{parent}[{key:?}]"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Whether `key` can follow a `.` in a path as it is.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{map, text};

    use Lang::{Lua, Rhai};

    type Result = std::result::Result<(), String>;

    fn bytes(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// `{tag = content}`.
    fn av(tag: &str, content: Value) -> Value {
        map(&[(tag, content)])
    }

    fn n(number: &str) -> Value {
        av("N", text(number))
    }

    fn s(string: &str) -> Value {
        av("S", text(string))
    }

    fn err<T: fmt::Debug>(result: std::result::Result<T, String>) -> String {
        result.expect_err("should fail")
    }

    // marshal

    #[test]
    fn a_map_is_marshalled_as_an_item() -> Result {
        let item = map(&[
            ("id", Value::Int(7)),
            ("name", bytes("Ada")),
            ("active", Value::Bool(true)),
        ]);
        let expected = map(&[
            ("id", n("7")),
            ("name", s("Ada")),
            ("active", av("BOOL", Value::Bool(true))),
        ]);
        assert_eq!(marshal(&item, Lua)?, expected);
        Ok(())
    }

    #[test]
    fn anything_else_is_marshalled_as_one_attribute_value() -> Result {
        assert_eq!(marshal(&text("x"), Rhai)?, s("x"));
        assert_eq!(marshal(&bytes("x"), Lua)?, s("x"));
        assert_eq!(marshal(&Value::Int(-3), Lua)?, n("-3"));
        assert_eq!(marshal(&Value::Nil, Rhai)?, av("NULL", Value::Bool(true)));
        assert_eq!(
            marshal(&Value::List(vec![Value::Int(1), text("a")]), Rhai)?,
            av("L", Value::List(vec![n("1"), s("a")]))
        );
        Ok(())
    }

    #[test]
    fn an_empty_map_is_an_empty_item_at_the_top_and_an_empty_m_inside() -> Result {
        assert_eq!(marshal(&map(&[]), Lua)?, map(&[]));
        assert_eq!(
            marshal(&map(&[("tags", map(&[]))]), Lua)?,
            map(&[("tags", av("M", map(&[])))])
        );
        assert_eq!(
            marshal(&map(&[("tags", Value::List(vec![]))]), Lua)?,
            map(&[("tags", av("L", Value::List(vec![])))])
        );
        Ok(())
    }

    #[test]
    fn nested_lists_and_maps_are_l_and_m() -> Result {
        let value = map(&[(
            "order",
            map(&[
                (
                    "lines",
                    Value::List(vec![map(&[("sku", text("A1")), ("qty", Value::Int(2))])]),
                ),
                ("note", Value::Nil),
            ]),
        )]);
        let expected = map(&[(
            "order",
            av(
                "M",
                map(&[
                    (
                        "lines",
                        av(
                            "L",
                            Value::List(vec![av("M", map(&[("sku", s("A1")), ("qty", n("2"))]))]),
                        ),
                    ),
                    ("note", av("NULL", Value::Bool(true))),
                ]),
            ),
        )]);
        assert_eq!(marshal(&value, Rhai)?, expected);
        Ok(())
    }

    #[test]
    fn lua_strings_are_text_and_rhai_blobs_binary() -> Result {
        assert_eq!(marshal(&bytes("hi"), Lua)?, s("hi"));
        assert_eq!(marshal(&bytes("hi"), Rhai)?, av("B", text("aGk=")));
        assert_eq!(marshal(&Value::Decoded(b"hi".to_vec()), Lua)?, s("hi"));
        assert_eq!(marshal(&text("héllo"), Rhai)?, s("héllo"));
        Ok(())
    }

    #[test]
    fn marked_binary_is_b_in_padded_base64() -> Result {
        assert_eq!(
            marshal(&Value::Binary(vec![0xff, 0x00, 0x10, 0x80]), Lua)?,
            av("B", text("/wAQgA=="))
        );
        assert_eq!(marshal(&Value::Binary(vec![]), Lua)?, av("B", text("")));
        Ok(())
    }

    #[test]
    fn a_lua_string_that_is_not_utf8_asks_to_be_marked_binary() {
        let item = map(&[("photo", Value::Bytes(vec![b'a', 0xff, 0xd8]))]);
        let message = err(marshal(&item, Lua));
        assert!(
            message.starts_with("item.photo is not UTF-8 text (at byte 1)"),
            "{message}"
        );
        assert!(message.contains("aws.dynamodb.binary(s)"), "{message}");
    }

    #[test]
    fn integers_are_written_in_decimal() -> Result {
        for (i, expected) in [
            (0, "0"),
            (42, "42"),
            (-17, "-17"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ] {
            assert_eq!(marshal(&Value::Int(i), Lua)?, n(expected));
        }
        Ok(())
    }

    #[test]
    fn floats_are_written_as_javascript_prints_them() -> Result {
        for (f, expected) in [
            (3.0, "3"),
            (-0.0, "0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-2.5e-7, "-2.5e-7"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (9007199254740993.0, "9007199254740992"),
        ] {
            assert_eq!(marshal(&Value::Float(f), Rhai)?, n(expected), "{f}");
        }
        Ok(())
    }

    #[test]
    fn nan_and_infinities_are_refused() {
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let message = err(marshal(&map(&[("score", Value::Float(f))]), Lua));
            assert!(message.starts_with("item.score is "), "{message}");
            assert!(
                message.ends_with("not a number DynamoDB can store"),
                "{message}"
            );
        }
    }

    #[test]
    fn booleans_are_bool_and_nil_is_null() -> Result {
        assert_eq!(
            marshal(&Value::Bool(false), Lua)?,
            av("BOOL", Value::Bool(false))
        );
        assert_eq!(
            marshal(&map(&[("gone", Value::Nil)]), Lua)?,
            map(&[("gone", av("NULL", Value::Bool(true)))])
        );
        Ok(())
    }

    #[test]
    fn an_unstorable_value_is_named_with_its_path_as_the_script_counts() {
        let item = map(&[(
            "tags",
            Value::List(vec![text("a"), Value::Other("function")]),
        )]);
        assert_eq!(
            err(marshal(&item, Lua)),
            "item.tags[2] is of type function, which DynamoDB cannot store"
        );
        let item = map(&[("tags", Value::List(vec![text("a"), Value::Other("Fn")]))]);
        assert_eq!(
            err(marshal(&item, Rhai)),
            "item.tags[1] is of type Fn, which DynamoDB cannot store"
        );
        assert_eq!(
            err(marshal(&Value::Other("thread"), Lua)),
            "value is of type thread, which DynamoDB cannot store"
        );
        let item = map(&[("first name", map(&[("x-y", Value::Other("userdata"))]))]);
        assert_eq!(
            err(marshal(&item, Lua)),
            "item[\"first name\"][\"x-y\"] is of type userdata, which DynamoDB cannot store"
        );
    }

    #[test]
    fn a_table_nested_too_deeply_says_so() {
        let item = map(&[("deep", Value::Other("table"))]);
        assert_eq!(
            err(marshal(&item, Lua)),
            "item.deep is nested too deeply (DynamoDB allows 32 levels)"
        );
    }

    // unmarshal

    #[test]
    fn an_item_is_unmarshalled_attribute_by_attribute() -> Result {
        let item = map(&[
            ("id", n("7")),
            ("name", s("Ada")),
            ("active", av("BOOL", Value::Bool(true))),
            ("gone", av("NULL", Value::Bool(true))),
        ]);
        let expected = map(&[
            ("id", Value::Int(7)),
            ("name", text("Ada")),
            ("active", Value::Bool(true)),
            ("gone", Value::Null),
        ]);
        assert_eq!(unmarshal(&item)?, expected);
        Ok(())
    }

    #[test]
    fn one_attribute_value_is_unmarshalled_to_its_value() -> Result {
        assert_eq!(unmarshal(&s("x"))?, text("x"));
        assert_eq!(unmarshal(&n("12"))?, Value::Int(12));
        assert_eq!(unmarshal(&av("NULL", Value::Bool(true)))?, Value::Null);
        assert_eq!(
            unmarshal(&av("BOOL", Value::Bool(false)))?,
            Value::Bool(false)
        );
        assert_eq!(
            unmarshal(&av("L", Value::List(vec![s("a"), n("1.5")])))?,
            Value::List(vec![text("a"), Value::Float(1.5)])
        );
        assert_eq!(
            unmarshal(&av("M", map(&[("a", n("1"))])))?,
            map(&[("a", Value::Int(1))])
        );
        Ok(())
    }

    #[test]
    fn an_empty_map_is_an_empty_item() -> Result {
        assert_eq!(unmarshal(&map(&[]))?, map(&[]));
        assert_eq!(unmarshal(&Value::List(vec![]))?, map(&[]));
        Ok(())
    }

    #[test]
    fn attributes_named_like_types_are_read_as_an_item() -> Result {
        // One attribute named `S`: its content is an AttributeValue, not text.
        assert_eq!(unmarshal(&av("S", s("x")))?, map(&[("S", text("x"))]));
        assert_eq!(
            unmarshal(&av("L", av("L", Value::List(vec![]))))?,
            map(&[("L", Value::List(vec![]))])
        );
        // `M` holding an AttributeValue: the attribute `M`.
        assert_eq!(unmarshal(&av("M", s("x")))?, map(&[("M", text("x"))]));
        assert_eq!(
            unmarshal(&av("M", av("M", map(&[]))))?,
            map(&[("M", map(&[]))])
        );
        // `M` holding an item: one map value, even when its attribute is named `S`.
        assert_eq!(
            unmarshal(&av("M", av("S", s("x"))))?,
            map(&[("S", text("x"))])
        );
        // ... and one level further down, the rule again.
        assert_eq!(
            unmarshal(&av("M", av("M", av("S", s("x")))))?,
            map(&[("M", map(&[("S", text("x"))]))])
        );
        assert_eq!(unmarshal(&av("M", map(&[])))?, map(&[]));
        Ok(())
    }

    #[test]
    fn an_item_with_several_attributes_is_an_item_even_if_one_is_named_like_a_type() -> Result {
        let item = map(&[("S", s("x")), ("N", n("1"))]);
        assert_eq!(
            unmarshal(&item)?,
            map(&[("S", text("x")), ("N", Value::Int(1))])
        );
        Ok(())
    }

    #[test]
    fn numbers_are_integers_unless_written_otherwise_or_too_big() -> Result {
        for (number, expected) in [
            ("0", Value::Int(0)),
            ("-42", Value::Int(-42)),
            ("9223372036854775807", Value::Int(i64::MAX)),
            ("-9223372036854775808", Value::Int(i64::MIN)),
            ("9223372036854775808", Value::Float(9223372036854775808.0)),
            ("1.0", Value::Float(1.0)),
            ("1e3", Value::Float(1000.0)),
            ("1E-2", Value::Float(0.01)),
            ("-0.5", Value::Float(-0.5)),
            (
                "12345678901234567890123456789012345678",
                Value::Float(1.2345678901234568e37),
            ),
        ] {
            assert_eq!(unmarshal(&n(number))?, expected, "{number}");
        }
        Ok(())
    }

    #[test]
    fn numbers_that_are_not_numbers_are_refused() {
        for number in ["", "abc", "1.2.3", "inf", "NaN", "1e999", "0x10"] {
            let message = err(unmarshal(&map(&[("n", n(number))])));
            assert_eq!(message, format!("item.n: N {number:?} is not a number"));
        }
        assert_eq!(
            err(unmarshal(&map(&[("n", av("N", Value::Int(5)))]))),
            "item.n: N must be a string, not a number"
        );
    }

    #[test]
    fn binary_is_decoded_from_base64() -> Result {
        assert_eq!(
            unmarshal(&av("B", text("/wAQgA==")))?,
            Value::Bytes(vec![0xff, 0x00, 0x10, 0x80])
        );
        // Lua strings arrive as bytes.
        assert_eq!(
            unmarshal(&av("B", bytes("aGk=")))?,
            Value::Bytes(b"hi".to_vec())
        );
        // Data a Lua script marked binary is the bytes themselves.
        assert_eq!(
            unmarshal(&av("B", Value::Binary(vec![1, 2])))?,
            Value::Bytes(vec![1, 2])
        );
        assert_eq!(unmarshal(&av("B", text("")))?, Value::Bytes(vec![]));
        Ok(())
    }

    #[test]
    fn bad_base64_is_refused_with_its_path() {
        let message = err(unmarshal(&map(&[("photo", av("B", text("ab!d")))])));
        assert_eq!(message, "item.photo: B is not valid base64 at byte 2 ('!')");
        let message = err(unmarshal(&map(&[("photo", av("B", Value::Bool(true)))])));
        assert_eq!(message, "item.photo: B must be base64 text, not a boolean");
    }

    #[test]
    fn sets_are_arrays() -> Result {
        assert_eq!(
            unmarshal(&av("SS", Value::List(vec![text("a"), bytes("b")])))?,
            Value::List(vec![text("a"), text("b")])
        );
        assert_eq!(
            unmarshal(&av("NS", Value::List(vec![text("1"), text("2.5")])))?,
            Value::List(vec![Value::Int(1), Value::Float(2.5)])
        );
        assert_eq!(
            unmarshal(&av("BS", Value::List(vec![text("aGk="), text("")])))?,
            Value::List(vec![Value::Bytes(b"hi".to_vec()), Value::Bytes(vec![])])
        );
        Ok(())
    }

    #[test]
    fn bad_set_members_are_named_by_index_from_0() {
        let item = map(&[(
            "tags",
            av("SS", Value::List(vec![text("a"), Value::Int(2)])),
        )]);
        assert_eq!(
            err(unmarshal(&item)),
            "item.tags[1]: an SS member must be a string, not a number"
        );
        let item = map(&[("ns", av("NS", Value::List(vec![text("x")])))]);
        assert_eq!(err(unmarshal(&item)), "item.ns[0]: N \"x\" is not a number");
        let item = map(&[("ss", av("SS", text("a")))]);
        assert_eq!(
            err(unmarshal(&item)),
            "item.ss: SS must be an array, not a string"
        );
    }

    #[test]
    fn lua_strings_are_read_as_text() -> Result {
        let item = map(&[("name", av("S", bytes("Zoë"))), ("n", av("N", bytes("3")))]);
        assert_eq!(
            unmarshal(&item)?,
            map(&[("name", text("Zoë")), ("n", Value::Int(3))])
        );
        let item = map(&[("name", av("S", Value::Bytes(vec![b'a', 0xff])))]);
        assert_eq!(
            err(unmarshal(&item)),
            "item.name: S is not UTF-8 text (at byte 1)"
        );
        Ok(())
    }

    #[test]
    fn empty_lua_tables_are_empty_lists_and_maps() -> Result {
        // A Lua `{}` arrives as an empty map, or as an empty list with `json.array_mt`.
        assert_eq!(unmarshal(&av("L", map(&[])))?, Value::List(vec![]));
        assert_eq!(unmarshal(&av("SS", map(&[])))?, Value::List(vec![]));
        assert_eq!(unmarshal(&av("M", Value::List(vec![])))?, map(&[]));
        assert_eq!(
            unmarshal(&map(&[
                ("tags", av("L", map(&[]))),
                ("attrs", av("M", Value::List(vec![])))
            ]))?,
            map(&[("tags", Value::List(vec![])), ("attrs", map(&[]))])
        );
        Ok(())
    }

    #[test]
    fn nested_values_are_unmarshalled() -> Result {
        let item = map(&[(
            "order",
            av(
                "M",
                map(&[
                    (
                        "lines",
                        av(
                            "L",
                            Value::List(vec![av("M", map(&[("sku", s("A1")), ("qty", n("2"))]))]),
                        ),
                    ),
                    ("note", av("NULL", Value::Bool(true))),
                ]),
            ),
        )]);
        let expected = map(&[(
            "order",
            map(&[
                (
                    "lines",
                    Value::List(vec![map(&[("sku", text("A1")), ("qty", Value::Int(2))])]),
                ),
                ("note", Value::Null),
            ]),
        )]);
        assert_eq!(unmarshal(&item)?, expected);
        Ok(())
    }

    #[test]
    fn an_unknown_type_is_refused_with_its_path() {
        let item = map(&[(
            "tags",
            av("L", Value::List(vec![s("a"), av("X", text("?"))])),
        )]);
        assert_eq!(
            err(unmarshal(&item)),
            "item.tags[1] has the unknown type \"X\" (DynamoDB's types are S, N, B, BOOL, NULL, L, M, SS, NS, BS)"
        );
    }

    #[test]
    fn malformed_attribute_values_are_refused_with_their_path() {
        let message = err(unmarshal(&map(&[("a", map(&[]))])));
        assert!(
            message.starts_with("item.a is empty, not an AttributeValue"),
            "{message}"
        );
        let message = err(unmarshal(&map(&[(
            "a",
            map(&[("S", text("x")), ("N", text("1"))]),
        )])));
        assert!(
            message.starts_with("item.a has 2 members (S, N), not one"),
            "{message}"
        );
        let message = err(unmarshal(&map(&[("a b", text("x"))])));
        assert!(
            message.starts_with("item[\"a b\"] is a string, not an AttributeValue"),
            "{message}"
        );
        assert_eq!(
            err(unmarshal(&map(&[("ok", av("BOOL", text("yes")))]))),
            "item.ok: BOOL must be a boolean, not a string"
        );
        assert_eq!(
            err(unmarshal(&av("NULL", Value::Int(1)))),
            "value: NULL must be true, not a number"
        );
        assert_eq!(
            err(unmarshal(&av("M", text("x")))),
            "value: M must be a table/map, not a string"
        );
    }

    #[test]
    fn something_neither_item_nor_attribute_value_is_refused() {
        let message = err(unmarshal(&Value::Int(3)));
        assert!(message.starts_with("expects an item"), "{message}");
        assert!(message.ends_with("not a number"), "{message}");
        let message = err(unmarshal(&Value::List(vec![s("a")])));
        assert!(message.ends_with("not an array"), "{message}");
    }

    #[test]
    fn rhai_values_round_trip() -> Result {
        let value = map(&[
            ("id", Value::Int(-9)),
            ("price", Value::Float(19.99)),
            ("name", text("Ada")),
            ("blob", Value::Bytes(vec![0, 1, 254, 255])),
            (
                "tags",
                Value::List(vec![text("x"), Value::Bool(true), Value::Null]),
            ),
            ("attrs", map(&[("S", text("s")), ("M", map(&[]))])),
            ("empty", Value::List(vec![])),
        ]);
        assert_eq!(unmarshal(&marshal(&value, Rhai)?)?, value);
        for single in [
            text("x"),
            Value::Int(1),
            Value::Null,
            map(&[("M", map(&[("S", text("x"))]))]),
        ] {
            assert_eq!(unmarshal(&marshal(&single, Rhai)?)?, single);
        }
        // A single map marshals as an item; wrapped in an array it is an `M`.
        let nested = Value::List(vec![map(&[("S", text("x"))])]);
        assert_eq!(unmarshal(&marshal(&nested, Rhai)?)?, nested);
        Ok(())
    }

    #[test]
    fn lua_values_round_trip_with_strings_as_text() -> Result {
        let value = map(&[
            ("name", bytes("Ada")),
            ("photo", Value::Binary(vec![0xff, 0xd8])),
            ("n", Value::Float(3.0)),
        ]);
        let expected = map(&[
            ("name", text("Ada")),
            ("photo", Value::Bytes(vec![0xff, 0xd8])),
            ("n", Value::Int(3)),
        ]);
        assert_eq!(unmarshal(&marshal(&value, Lua)?)?, expected);
        Ok(())
    }
}
