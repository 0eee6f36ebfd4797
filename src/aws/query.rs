//! The query protocol's request body (SPEC 7.4), as SNS, STS and SES take it:
//! `Action=Publish&Version=2010-03-31&TopicArn=...`, form-encoded.
//!
//! Scripts give the parameters as the API reference shows them on the wire, so no
//! service model is needed: nested keys are joined with `.`, list elements are
//! numbered from 1 (`{Attributes = {member = {"a", "b"}}}` →
//! `Attributes.member.1=a&Attributes.member.2=b`), and a key given already
//! flattened (`["Attributes.entry.1.key"] = "x"`) passes through.
//!
//! Scalars are written as botocore's `QuerySerializer` and Smithy's awsQuery
//! protocol tests write them, with two choices of our own:
//! - floats as JavaScript prints them (`1800`, not Python's `1800.0`), so a number a
//!   script computed still fits an integer parameter; `NaN`, `Infinity` and
//!   `-Infinity` as Smithy spells them;
//! - every byte but RFC 3986's unreserved ones is `%XX`, a space `%20` (botocore's
//!   `urlencode` writes `+`; form decoding reads both the same).

use crate::stdlib::binding::Value;
use crate::stdlib::{base64, url};

/// The form-encoded body of the query-protocol call `action` of API `version`,
/// with `params` (a map, or nil for none) flattened into its pairs, in the order
/// given. The error names the parameter that cannot be sent.
///
/// - Text, and strings that are UTF-8, as they are; other bytes and binary data
///   in base64 (query blobs are base64 on the wire).
/// - Integers in decimal, floats as JavaScript prints them, booleans
///   `true` / `false`.
/// - Nil: the key is left out. An empty map: nothing.
/// - An empty list: `Name=`, as botocore sends it (naming the list, not its
///   `member`s: `{Tags = {member = []}}` → `Tags=`); an empty list of map
///   entries (`Name.entry`) is an empty map: nothing.
pub fn body(action: &str, version: &str, params: &Value) -> Result<String, String> {
    let mut out = String::new();
    pair(&mut out, "Action", action.as_bytes());
    pair(&mut out, "Version", version.as_bytes());
    match params {
        Value::Nil => {}
        // An empty Lua table may come as an empty list: it is no parameters too.
        Value::List(items) if items.is_empty() => {}
        Value::Map(entries) => {
            for (key, value) in entries {
                flatten(&mut out, key, value)?;
            }
        }
        _ => return Err("the parameters must be a map of names to values".to_owned()),
    }
    Ok(out)
}

/// Writes `value`'s pairs under the key `path`.
fn flatten(out: &mut String, path: &str, value: &Value) -> Result<(), String> {
    match value {
        Value::Nil | Value::Null => {}
        Value::Bool(b) => pair(out, path, if *b { b"true" } else { b"false" }),
        Value::Int(i) => pair(out, path, i.to_string().as_bytes()),
        Value::Float(f) => pair(out, path, float(*f).as_bytes()),
        Value::Text(s) => pair(out, path, s.as_bytes()),
        Value::Bytes(b) | Value::Decoded(b) => match std::str::from_utf8(b) {
            Ok(text) => pair(out, path, text.as_bytes()),
            Err(_) => pair(out, path, base64::encode(b).as_bytes()),
        },
        Value::Binary(b) => pair(out, path, base64::encode(b).as_bytes()),
        Value::List(items) if items.is_empty() => match path.rsplit_once('.') {
            Some((_, "entry")) => {}
            Some((list, "member")) => pair(out, list, b""),
            _ => pair(out, path, b""),
        },
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(out, &format!("{path}.{}", i + 1), item)?;
            }
        }
        Value::Map(entries) => {
            for (key, item) in entries {
                flatten(out, &format!("{path}.{key}"), item)?;
            }
        }
        Value::Other(name) => {
            return Err(format!(
                "parameter {path} is a {name}, which cannot be sent"
            ));
        }
    }
    Ok(())
}

/// A float as JavaScript prints it (whole numbers without `.0`, `-0` as `0`),
/// non-finite ones as Smithy's awsQuery tests spell them.
fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else if f == 0.0 {
        "0".to_owned()
    } else {
        ryu_js::Buffer::new().format_finite(f).to_owned()
    }
}

/// Appends `key=value`, both percent-encoded, after a `&` unless it is the first.
fn pair(out: &mut String, key: &str, value: &[u8]) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(&url::encode(key.as_bytes()));
    out.push('=');
    out.push_str(&url::encode(value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{map, text};

    /// The body of `Action=A&Version=V` and `params`, without that prefix.
    fn params(params: Value) -> String {
        let body = body("A", "V", &params).unwrap();
        body.strip_prefix("Action=A&Version=V")
            .unwrap()
            .trim_start_matches('&')
            .to_owned()
    }

    #[test]
    fn action_and_version_come_first() {
        let body = body(
            "Publish",
            "2010-03-31",
            &map(&[
                ("TopicArn", text("arn:aws:sns:us-east-1:123456789012:t")),
                ("Message", text("hi")),
            ]),
        );
        assert_eq!(
            body.unwrap(),
            "Action=Publish&Version=2010-03-31\
             &TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Message=hi"
        );
    }

    #[test]
    fn no_parameters() {
        assert_eq!(
            body("GetCallerIdentity", "2011-06-15", &Value::Nil).unwrap(),
            "Action=GetCallerIdentity&Version=2011-06-15"
        );
        assert_eq!(
            body("GetCallerIdentity", "2011-06-15", &Value::Map(vec![])).unwrap(),
            "Action=GetCallerIdentity&Version=2011-06-15"
        );
        assert_eq!(
            body("GetCallerIdentity", "2011-06-15", &Value::List(vec![])).unwrap(),
            "Action=GetCallerIdentity&Version=2011-06-15"
        );
    }

    #[test]
    fn parameters_that_are_not_a_map_are_an_error() {
        let err = body("A", "V", &text("x")).unwrap_err();
        assert_eq!(err, "the parameters must be a map of names to values");
        assert!(body("A", "V", &Value::List(vec![text("x")])).is_err());
    }

    #[test]
    fn lists_are_numbered_from_one() {
        let attributes = map(&[("member", Value::List(vec![text("a"), text("b")]))]);
        assert_eq!(
            params(map(&[("Attributes", attributes)])),
            "Attributes.member.1=a&Attributes.member.2=b"
        );
    }

    #[test]
    fn nested_maps_join_their_keys_with_dots() {
        // SNS Publish's MessageAttributes, as the API reference shows them.
        let entry = map(&[
            ("Name", text("k")),
            (
                "Value",
                map(&[("DataType", text("String")), ("StringValue", text("v"))]),
            ),
        ]);
        let attributes = map(&[("entry", Value::List(vec![entry]))]);
        assert_eq!(
            params(map(&[("MessageAttributes", attributes)])),
            "MessageAttributes.entry.1.Name=k\
             &MessageAttributes.entry.1.Value.DataType=String\
             &MessageAttributes.entry.1.Value.StringValue=v"
        );
    }

    #[test]
    fn lists_of_maps_and_lists_of_lists() {
        // STS AssumeRole's Tags.
        let tags = Value::List(vec![
            map(&[("Key", text("team")), ("Value", text("a"))]),
            map(&[("Key", text("env")), ("Value", text("prod"))]),
        ]);
        assert_eq!(
            params(map(&[("Tags", map(&[("member", tags)]))])),
            "Tags.member.1.Key=team&Tags.member.1.Value=a\
             &Tags.member.2.Key=env&Tags.member.2.Value=prod"
        );
        let nested = Value::List(vec![Value::List(vec![text("a")]), Value::List(vec![])]);
        assert_eq!(params(map(&[("L", nested)])), "L.1.1=a&L.2=");
    }

    #[test]
    fn keys_already_flattened_pass_through() {
        assert_eq!(
            params(map(&[
                ("Attributes.entry.1.key", text("DisplayName")),
                ("Attributes.entry.1.value", text("x y")),
            ])),
            "Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=x%20y"
        );
        let partly = map(&[("entry.1.key", text("k"))]);
        assert_eq!(
            params(map(&[("Attributes", partly)])),
            "Attributes.entry.1.key=k"
        );
    }

    #[test]
    fn pairs_keep_the_order_given() {
        assert_eq!(
            params(map(&[("b", Value::Int(1)), ("a", Value::Int(2))])),
            "b=1&a=2"
        );
    }

    #[test]
    fn everything_but_unreserved_characters_is_percent_encoded() {
        assert_eq!(
            params(map(&[("Message", text("a b+c&d=e/f~g_h.i-j%ü"))])),
            "Message=a%20b%2Bc%26d%3De%2Ff~g_h.i-j%25%C3%BC"
        );
        assert_eq!(params(map(&[("k y", text("v"))])), "k%20y=v");
    }

    #[test]
    fn strings_are_text_when_utf8_else_base64() {
        assert_eq!(
            params(map(&[("S", Value::Bytes("héllo".as_bytes().to_vec()))])),
            "S=h%C3%A9llo"
        );
        assert_eq!(
            params(map(&[("S", Value::Decoded(b"plain".to_vec()))])),
            "S=plain"
        );
        assert_eq!(
            params(map(&[("Qux", Value::Bytes(vec![0xff, 0xfe, 0x00]))])),
            "Qux=%2F%2F4A"
        );
        assert_eq!(
            params(map(&[("Qux", Value::Decoded(vec![0x80]))])),
            "Qux=gA%3D%3D"
        );
    }

    #[test]
    fn binary_data_is_always_base64() {
        // Smithy's QuerySimpleInputParamsBlob: "value" → dmFsdWU=.
        assert_eq!(
            params(map(&[("Qux", Value::Binary(b"value".to_vec()))])),
            "Qux=dmFsdWU%3D"
        );
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(
            params(map(&[
                ("Bam", Value::Int(10)),
                ("Neg", Value::Int(i64::MIN)),
                ("Baz", Value::Bool(true)),
                ("Off", Value::Bool(false)),
            ])),
            "Bam=10&Neg=-9223372036854775808&Baz=true&Off=false"
        );
    }

    #[test]
    fn floats_print_as_javascript_does() {
        let cases = [
            (10.8, "10.8"),
            (3600.0, "3600"),
            (-0.0, "0"),
            (0.0, "0"),
            (-2.5, "-2.5"),
            (1e21, "1e%2B21"),
            (1e-7, "1e-7"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, expected) in cases {
            assert_eq!(
                params(map(&[("F", Value::Float(f))])),
                format!("F={expected}")
            );
        }
    }

    #[test]
    fn nil_leaves_the_key_out() {
        assert_eq!(params(map(&[("A", Value::Nil), ("B", text("b"))])), "B=b");
        let list = Value::List(vec![text("a"), Value::Nil, text("c")]);
        assert_eq!(params(map(&[("L", list)])), "L.1=a&L.3=c");
    }

    #[test]
    fn an_empty_list_names_the_list_as_botocore_does() {
        let empty = || Value::List(vec![]);
        assert_eq!(
            params(map(&[("Tags", map(&[("member", empty())]))])),
            "Tags="
        );
        // A flattened list (no `member` level).
        assert_eq!(params(map(&[("AttributeName", empty())])), "AttributeName=");
        assert_eq!(params(map(&[("A.B.member", empty())])), "A.B=");
    }

    #[test]
    fn an_empty_map_sends_nothing() {
        assert_eq!(
            params(map(&[
                ("Attributes", map(&[("entry", Value::List(vec![]))])),
                ("Other", Value::Map(vec![])),
                ("Deep", map(&[("In", Value::Map(vec![]))])),
                ("Last", text("x")),
            ])),
            "Last=x"
        );
    }

    #[test]
    fn a_value_that_cannot_be_sent_names_its_key() {
        let entry = map(&[("Name", text("k")), ("Value", Value::Other("function"))]);
        let attributes = map(&[("entry", Value::List(vec![entry]))]);
        let err = body(
            "Publish",
            "2010-03-31",
            &map(&[("MessageAttributes", attributes)]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "parameter MessageAttributes.entry.1.Value is a function, which cannot be sent"
        );
    }
}
