//! `url` (SPEC 7.2): percent-encoding (RFC 3986), query strings, and a URL's
//! parts. Encoding leaves RFC 3986's unreserved characters as they are and writes
//! every other byte as `%XX` (upper case); decoding also reads `+` as a space, as
//! query strings from forms write it.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};

use super::binding::{self, Args, Error, Function, Lang, Module, Param, Type, Value};
use crate::json::Writer;

/// Every byte but RFC 3986's unreserved ones: `A-Z a-z 0-9 - . _ ~`.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `bytes` percent-encoded: unreserved characters as they are, the rest `%XX`.
pub fn encode(bytes: &[u8]) -> String {
    percent_encode(bytes, NOT_UNRESERVED).to_string()
}

/// `text` percent-decoded, `+` read as a space. A `%` not followed by two hex
/// digits stays as it is (as Python's `unquote_plus` does).
pub fn decode(text: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = text
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).collect()
}

/// A query string's parameters, in order (`a=1&b&a=2` → `a`: `1`, `b`: ``, `a`: `2`).
/// A leading `?` is skipped, and so are empty pieces (`a=1&&b=2`).
/// Made one at a time, so a caller can stop.
pub fn parse_query(query: &[u8]) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> {
    let query = query.strip_prefix(b"?").unwrap_or(query);
    query
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (decode(&piece[..eq]), decode(&piece[eq + 1..])),
            None => (decode(piece), Vec::new()),
        })
}

/// The parts of a URL or relative reference, split as RFC 3986 (appendix B) does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parts<'a> {
    pub scheme: Option<String>,
    /// Without the brackets of an IPv6 address.
    pub host: Option<&'a str>,
    pub port: Option<u16>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub fragment: Option<&'a str>,
}

/// Splits `url` into its parts; the error says what is wrong with it.
pub fn parse(url: &str) -> Result<Parts<'_>, String> {
    if let Some(at) = url.bytes().position(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "is not a URL: byte {at} is a space or a control character"
        ));
    }
    let (rest, fragment) = split(url, '#');
    let (rest, query) = split(rest, '?');
    let (scheme, rest) = match rest.find(':') {
        Some(colon) if !rest[..colon].contains('/') => {
            let scheme = &rest[..colon];
            let mut chars = scheme.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if !valid {
                return Err(format!("is not a URL: {scheme:?} is not a scheme"));
            }
            (Some(scheme.to_ascii_lowercase()), &rest[colon + 1..])
        }
        _ => (None, rest),
    };
    let mut parts = Parts {
        scheme,
        path: rest,
        query,
        fragment,
        ..Parts::default()
    };
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        let authority = &after[..end];
        parts.path = &after[end..];
        // Userinfo (`user:password@`) is not one of the parts: skip it.
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or("is not a URL: an IPv6 host without its closing ']'")?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| format!("is not a URL: {after:?} follows the IPv6 host"))?,
                ),
            };
            (host, port)
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        parts.host = Some(host);
        parts.port = match port {
            None | Some("") => None,
            Some(digits) => Some(
                digits
                    .parse::<u16>()
                    .ok()
                    .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| format!("is not a URL: {digits:?} is not a port"))?,
            ),
        };
    }
    Ok(parts)
}

fn split(text: &str, at: char) -> (&str, Option<&str>) {
    match text.split_once(at) {
        Some((before, after)) => (before, Some(after)),
        None => (text, None),
    }
}

fn encode_fn(args: &Args) -> Result<Value, Error> {
    let text = args.text_bytes(1)?;
    // Each byte is at most three characters (`%XX`).
    args.reserve(text.len().saturating_mul(3))?;
    Ok(Value::Text(encode(text)))
}

fn decode_fn(args: &Args) -> Result<Value, Error> {
    Ok(Value::Decoded(decode(args.text_bytes(1)?)))
}

fn parse_query_fn(args: &Args) -> Result<Value, Error> {
    let mut params: BTreeMap<String, Value> = BTreeMap::new();
    let mut size = 0usize;
    for (key, value) in parse_query(args.text_bytes(1)?) {
        // A short query can hold many parameters: each costs more than its text.
        size = size.saturating_add(key.len() + value.len() + 96);
        args.reserve(size)?;
        let key = String::from_utf8_lossy(&key).into_owned();
        let value = Value::Decoded(value);
        match params.entry(key) {
            Entry::Vacant(entry) => {
                entry.insert(value);
            }
            // A repeated key: its values, in order.
            Entry::Occupied(mut entry) => match entry.get_mut() {
                Value::List(values) => values.push(value),
                single => {
                    let first = std::mem::replace(single, Value::Nil);
                    *single = Value::List(vec![first, value]);
                }
            },
        }
    }
    Ok(Value::Map(params.into_iter().collect()))
}

fn build_query_fn(args: &Args) -> Result<Value, Error> {
    let mut size = 0usize;
    build_query(args.map(1)?, args.lang(), |added| {
        size = size.saturating_add(added);
        args.reserve(size)
    })
    .map(Value::Text)
    .map_err(|e| match e {
        QueryError::Value(detail) => Error::argument(1, detail),
        QueryError::Memory(e) => e,
    })
}

/// Why a query could not be built.
pub enum QueryError {
    /// A value that has no place in a query: what to say of the argument.
    Value(String),
    /// The text would not fit in the script's memory.
    Memory(Error),
}

/// `entries` as a query string: keys in order, spaces as `%20`, a list value
/// the key repeated, numbers and booleans as text. `grow` is told how many
/// bytes each parameter adds, and may refuse them.
pub fn build_query(
    entries: &[(String, Value)],
    lang: Lang,
    mut grow: impl FnMut(usize) -> Result<(), Error>,
) -> Result<String, QueryError> {
    let mut query = String::new();
    let mut add = |key: &str, value: &Value| -> Result<(), QueryError> {
        let text = match value {
            Value::Text(s) => encode(s.as_bytes()),
            Value::Bytes(b) | Value::Decoded(b) => encode(b),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => {
                let mut writer = Writer::new(false);
                writer.float(*f).map_err(|e| {
                    QueryError::Value(format!(
                        "holds {} under {key:?}",
                        e.to_string().trim_end_matches(" at $")
                    ))
                })?;
                String::from_utf8(writer.into_bytes()).expect("numbers are ASCII")
            }
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(QueryError::Value(format!(
                    "holds a {} under {key:?}: values are strings, numbers, booleans or arrays of them",
                    binding::type_name(other, lang)
                )));
            }
        };
        let key = encode(key.as_bytes());
        grow(key.len() + text.len() + 2).map_err(QueryError::Memory)?;
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&key);
        query.push('=');
        query.push_str(&text);
        Ok(())
    };
    for (key, value) in entries {
        match value {
            Value::Nil => {}
            Value::List(values) => {
                for value in values {
                    add(key, value)?;
                }
            }
            value => add(key, value)?,
        }
    }
    Ok(query)
}

fn parse_fn(args: &Args) -> Result<Value, Error> {
    let parts = parse(args.text(1)?).map_err(|detail| Error::argument(1, detail))?;
    let text = |s: &str| Value::Text(s.to_owned());
    let mut map = Vec::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            map.push((key.to_owned(), value));
        }
    };
    put("fragment", parts.fragment.map(text));
    put("host", parts.host.map(text));
    put("path", Some(text(parts.path)));
    put("port", parts.port.map(|p| Value::Int(i64::from(p))));
    put("query", parts.query.map(text));
    put("scheme", parts.scheme.map(Value::Text));
    Ok(Value::Map(map))
}

static URL: Module = Module {
    name: "url",
    functions: &[
        Function {
            name: "encode",
            params: &[Param::new("text", Type::Text)],
            returns: Type::Text,
            doc: "`text` percent-encoded (RFC 3986): `A-Z a-z 0-9 - . _ ~` as they are, every other byte `%XX`.",
            call: encode_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "decode",
            params: &[Param::new("text", Type::Text)],
            returns: Type::Text,
            doc: "`text` percent-decoded, with `+` read as a space.",
            call: decode_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "parse_query",
            params: &[Param::new("query", Type::Text)],
            returns: Type::Map,
            doc: "A query string's parameters: a repeated key gives an array of its values, a key without `=` gives \"\".",
            call: parse_query_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "build_query",
            params: &[Param::new("params", Type::Map)],
            returns: Type::Text,
            doc: "A query string from a map: keys sorted, values percent-encoded (spaces as %20), an array repeats its key.",
            call: build_query_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "parse",
            params: &[Param::new("url", Type::Text)],
            returns: Type::Map,
            doc: "A URL's parts: `scheme`, `host` (an IPv6 one without brackets), `port` (an integer), `path`, `query`, `fragment`; absent ones are `()`.",
            call: parse_fn,
            rhai_blob_twin: None,
        },
    ],
};

pub fn register_lua(lua: &mlua::Lua) -> mlua::Result<()> {
    binding::lua::register(lua, &URL)
}

pub fn register_rhai(
    engine: &mut rhai::Engine,
    definitions: Option<&mut binding::rhai::Definitions>,
) {
    binding::rhai::register(engine, &URL, definitions);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3986 §2.3 (unreserved) and §2.1 (upper-case hex digits).
    #[test]
    fn encoding_keeps_exactly_the_unreserved_set() {
        let unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
        assert_eq!(encode(unreserved.as_bytes()), unreserved);
        assert_eq!(encode(b"a b/c?d=e&f+g"), "a%20b%2Fc%3Fd%3De%26f%2Bg");
        assert_eq!(encode("é☃".as_bytes()), "%C3%A9%E2%98%83");
        assert_eq!(encode(b"\x00\xff!*'()"), "%00%FF%21%2A%27%28%29");
        for byte in 0..=255u8 {
            assert_eq!(decode(encode(&[byte]).as_bytes()), [byte]);
        }
    }

    #[test]
    fn decoding_reads_plus_as_space_and_leaves_broken_escapes() {
        assert_eq!(decode(b"a+b%20c%2B"), b"a b c+");
        assert_eq!(decode(b"%e2%98%83"), "☃".as_bytes());
        assert_eq!(decode(b"100%"), b"100%");
        assert_eq!(decode(b"%zz%4"), b"%zz%4");
    }

    #[test]
    fn query_strings_keep_order_and_repeats() {
        let pairs = |q: &str| -> Vec<(String, String)> {
            parse_query(q.as_bytes())
                .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
                .collect()
        };
        assert_eq!(
            pairs("?a=1&b&a=2&&c=x+y%21&=e"),
            [("a", "1"), ("b", ""), ("a", "2"), ("c", "x y!"), ("", "e")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(pairs("").is_empty());
    }

    #[test]
    fn urls_split_into_their_parts() {
        let parts = parse("HTTPS://user:pw@Example.com:8443/a/b%20c?x=1&y#top").unwrap();
        assert_eq!(
            parts,
            Parts {
                scheme: Some("https".into()),
                host: Some("Example.com"),
                port: Some(8443),
                path: "/a/b%20c",
                query: Some("x=1&y"),
                fragment: Some("top"),
            }
        );
        let v6 = parse("http://[::1]:9000").unwrap();
        assert_eq!((v6.host, v6.port, v6.path), (Some("::1"), Some(9000), ""));
        let relative = parse("/path?q").unwrap();
        assert_eq!((relative.scheme, relative.host), (None, None));
        assert_eq!((relative.path, relative.query), ("/path", Some("q")));
        let urn = parse("mailto:ann@example.com").unwrap();
        assert_eq!(
            (urn.scheme.as_deref(), urn.host, urn.path),
            (Some("mailto"), None, "ann@example.com")
        );
        assert_eq!(parse("s3://bucket").unwrap().host, Some("bucket"));
        assert_eq!(parse("http://h:/x").unwrap().port, None);
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert_eq!(
            parse("http://h:99999/").unwrap_err(),
            "is not a URL: \"99999\" is not a port"
        );
        assert_eq!(
            parse("http://[::1/").unwrap_err(),
            "is not a URL: an IPv6 host without its closing ']'"
        );
        assert_eq!(
            parse("http://a b").unwrap_err(),
            "is not a URL: byte 8 is a space or a control character"
        );
        assert_eq!(
            parse("1http://x").unwrap_err(),
            "is not a URL: \"1http\" is not a scheme"
        );
    }
}
