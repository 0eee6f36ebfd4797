use mlua::{Lua, Table, Value};

use super::{decode, encode};
use crate::json::{EncodeError, MAX_DEPTH, Writer};
use crate::test_support::on_main_sized_stack;

fn lua() -> mlua::Result<Lua> {
    let lua = Lua::new();
    super::Codec::install(&lua)?;
    crate::stdlib::json::register_lua(&lua)?;
    Ok(lua)
}

/// Evaluates a Lua expression and encodes it.
fn encode_expr(lua: &Lua, expr: &str) -> Result<String, EncodeError> {
    let value: Value = lua
        .load(format!("return {expr}"))
        .eval()
        .expect("valid Lua");
    let mut writer = Writer::new(false);
    encode(lua, &value, &mut writer)?;
    Ok(String::from_utf8(writer.into_bytes()).unwrap())
}

#[test]
fn tables_become_arrays_or_objects_by_their_keys() -> mlua::Result<()> {
    let lua = lua()?;
    let cases = [
        ("{1, 2, 3}", "[1,2,3]"),
        ("{}", "{}"),
        ("setmetatable({}, json.array_mt)", "[]"),
        ("json.empty_array", "[]"),
        ("{b = 1, a = {c = json.null}}", r#"{"a":{"c":null},"b":1}"#),
        ("{[1] = 'a', [3] = 'c'}", r#"{"1":"a","3":"c"}"#),
        ("{1, 2, x = 3}", r#"{"1":1,"2":2,"x":3}"#),
        ("{[1.5] = true}", r#"{"1.5":true}"#),
        ("3.0", "3"),
        ("-0.0", "0"),
        ("2^53", "9007199254740992"),
        ("'é\\n'", "\"é\\n\""),
        ("nil", "null"),
    ];
    for (expr, json) in cases {
        assert_eq!(encode_expr(&lua, expr).unwrap(), json, "{expr}");
    }
    Ok(())
}

#[test]
fn unencodable_values_name_their_path() -> mlua::Result<()> {
    let lua = lua()?;
    let cases = [
        (
            "{items = {1, 2, {f = print}}}",
            "a function cannot be encoded as JSON at $.items[2].f",
        ),
        ("{x = 0/0}", "NaN is not a JSON number at $.x"),
        (
            "{['a b'] = {math.huge}}",
            "Infinity is not a JSON number at $['a b'][0]",
        ),
        ("{s = '\\xff'}", "string is not valid UTF-8 at $.s"),
        (
            "{a = {ok = 1}, b = {ok = 2, ['\\xff'] = 3}}",
            "table key is not valid UTF-8 at $.b",
        ),
        (
            "{[true] = 1}",
            "a table key of type boolean cannot be a JSON object key at $",
        ),
        (
            "{co = coroutine.create(print)}",
            "a thread cannot be encoded as JSON at $.co",
        ),
        // Found by the `encode_lua` fuzz target: these became duplicate keys.
        (
            "{a = {[2] = 'x', ['2'] = 'y', [3] = 'z'}}",
            "table has the number key 2 and the string key \"2\", the same JSON object key at $.a",
        ),
        (
            "{[0.5] = 1, ['0.5'] = 2}",
            "table has the number key 0.5 and the string key \"0.5\", the same JSON object key at $",
        ),
    ];
    for (expr, message) in cases {
        assert_eq!(
            encode_expr(&lua, expr).unwrap_err().to_string(),
            message,
            "{expr}"
        );
    }
    let err = encode_expr(
        &lua,
        "(function() local t = {}; t.self = {t}; return t end)()",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table contains itself (recursive table) at $.self[0]"
    );
    Ok(())
}

#[test]
fn decoded_values_round_trip() -> mlua::Result<()> {
    let lua = lua()?;
    let text = r#"{"a":[],"b":{},"c":[1,1.5,null,"x"],"d":18446744073709551615,"e":-7}"#;
    let value = decode(&lua, text.as_bytes()).unwrap();
    let table = value.as_table().unwrap();
    assert_eq!(table.get::<Value>("e")?, Value::Integer(-7));
    assert!(matches!(table.get::<Value>("d")?, Value::Number(_)));
    let mut writer = Writer::new(false);
    encode(&lua, &value, &mut writer).unwrap();
    assert_eq!(
        String::from_utf8(writer.into_bytes()).unwrap(),
        r#"{"a":[],"b":{},"c":[1,1.5,null,"x"],"d":18446744073709552000,"e":-7}"#
    );
    Ok(())
}

/// Keys repeated across records come from the encoder's cache of key literals;
/// enough distinct long keys to make it start over; escapes in keys.
#[test]
fn repeated_and_distinct_keys_encode_exactly() -> mlua::Result<()> {
    let lua = lua()?;
    let value: Value = lua
        .load(
            r#"
            local rows = setmetatable({}, json.array_mt)
            for i = 1, 300 do rows[i] = { id = i, ["say \"hi\"\n"] = "v" .. i } end
            local wide = {}
            for i = 1, 2000 do wide[string.rep("k", 40) .. i] = i end
            return { rows = rows, wide = wide }
            "#,
        )
        .eval()?;
    let mut writer = Writer::new(false);
    encode(&lua, &value, &mut writer).unwrap();
    let rows: Vec<serde_json::Value> = (1..=300)
        .map(|i| serde_json::json!({"id": i, "say \"hi\"\n": format!("v{i}")}))
        .collect();
    let wide: serde_json::Map<String, serde_json::Value> = (1..=2000)
        .map(|i| (format!("{}{i}", "k".repeat(40)), i.into()))
        .collect();
    let expected = serde_json::json!({"rows": rows, "wide": wide});
    let written: serde_json::Value = serde_json::from_slice(&writer.into_bytes()).unwrap();
    assert_eq!(written, expected);
    Ok(())
}

/// The decoder's key cache outlives a document: documents with colliding keys,
/// in turn, and finalizers decoding and encoding while the collector runs in the
/// middle of a decode (a nested decode goes without the cache).
#[test]
fn keys_decode_exactly_across_documents_and_nested_decodes() -> mlua::Result<()> {
    let lua = lua()?;
    let nested: mlua::Function = lua
        .load(
            r#"
            return function(n)
              for i = 1, n do
                setmetatable({}, { __gc = function()
                  nested_ok = json.encode(json.decode('{"inner":[1,{"deep":true}]}'))
                end })
              end
            end
            "#,
        )
        .eval()?;
    let documents: Vec<String> = (0..4)
        .map(|d| {
            let members: Vec<String> = (0..500)
                .map(|i| format!("\"key{}\":{{\"v\":{i},\"doc\":{d}}}", i * 7 + d))
                .collect();
            format!("{{{}}}", members.join(","))
        })
        .collect();
    for round in 0..3 {
        for text in &documents {
            nested.call::<()>(200)?;
            let value = decode(&lua, text.as_bytes()).unwrap();
            let mut writer = Writer::new(false);
            encode(&lua, &value, &mut writer).unwrap();
            let written: serde_json::Value = serde_json::from_slice(&writer.into_bytes()).unwrap();
            let expected: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(written, expected, "round {round}");
        }
    }
    lua.gc_collect()?;
    let inner: String = lua.globals().get("nested_ok")?;
    assert_eq!(inner, r#"{"inner":[1,{"deep":true}]}"#);
    Ok(())
}

#[test]
fn big_containers_and_repeated_keys_decode_exactly() -> mlua::Result<()> {
    let lua = lua()?;
    // Far past any size hint (and past the hint's cap).
    let items: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
    let text = format!("[{}]", items.join(","));
    let value = decode(&lua, text.as_bytes()).unwrap();
    let mut writer = Writer::new(false);
    encode(&lua, &value, &mut writer).unwrap();
    assert_eq!(writer.into_bytes(), text.into_bytes());
    // A repeated key keeps its last value, as in JavaScript.
    let members: Vec<String> = (0..2000).map(|i| format!("\"k{i}\":{i}")).collect();
    let text = format!("{{{},\"k7\":\"last\"}}", members.join(","));
    let value = decode(&lua, text.as_bytes()).unwrap();
    let table = value.as_table().unwrap();
    assert_eq!(table.get::<String>("k7")?, "last");
    assert_eq!(table.get::<i64>("k1999")?, 1999);
    Ok(())
}

#[test]
fn keys_differing_in_any_one_byte_stay_distinct() -> mlua::Result<()> {
    let lua = lua()?;
    // The key cache tells keys apart by their length and ends (and middle,
    // past 16 bytes): keys one byte apart, at every length and position.
    for len in 0..=24 {
        let base = "k".repeat(len);
        let mut keys = vec![base.clone()];
        for at in 0..len {
            let mut key = base.clone().into_bytes();
            key[at] = b'x';
            keys.push(String::from_utf8(key).unwrap());
        }
        let members: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("\"{k}\":{i}"))
            .collect();
        let text = format!("{{{}}}", members.join(","));
        for _ in 0..2 {
            let value = decode(&lua, text.as_bytes()).unwrap();
            let table = value.as_table().unwrap();
            for (i, key) in keys.iter().enumerate() {
                assert_eq!(table.raw_get::<usize>(key.as_str())?, i, "{key:?}");
            }
            assert_eq!(table.pairs::<Value, Value>().count(), keys.len());
        }
    }
    Ok(())
}

#[test]
fn containers_decode_exactly_whatever_their_size_hint() -> mlua::Result<()> {
    let lua = lua()?;
    // Containers in the same place take the size of the ones before as a hint:
    // growing, shrinking and empty ones must all come out whole.
    for n in [0, 3, 1, 2000, 5, 0, 64, 2, 1500, 1] {
        let items: Vec<String> = (0..n).map(|i| format!("[{i},{{\"k{i}\":{i}}}]")).collect();
        let members: Vec<String> = (0..n).map(|i| format!("\"m{i}\":{i}")).collect();
        let text = format!(
            "{{\"list\":[{}],\"map\":{{{}}}}}",
            items.join(","),
            members.join(",")
        );
        let value = decode(&lua, text.as_bytes()).unwrap();
        let table = value.as_table().unwrap();
        assert_eq!(table.get::<Table>("list")?.raw_len(), n, "{n} elements");
        assert_eq!(
            table.get::<Table>("map")?.pairs::<Value, Value>().count(),
            n
        );
        let mut writer = Writer::new(false);
        encode(&lua, &value, &mut writer).unwrap();
        let written: serde_json::Value = serde_json::from_slice(&writer.into_bytes()).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written, expected, "{n} items");
    }
    Ok(())
}

#[test]
fn nesting_is_bounded_on_both_sides() {
    on_main_sized_stack(|| nesting_at_the_limit().unwrap());
}

fn nesting_at_the_limit() -> mlua::Result<()> {
    let lua = lua()?;
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let value = decode(&lua, deep(MAX_DEPTH).as_bytes()).unwrap();
    let mut writer = Writer::new(false);
    encode(&lua, &value, &mut writer).unwrap();
    assert_eq!(writer.into_bytes(), deep(MAX_DEPTH).into_bytes());
    let err = decode(&lua, deep(100_000).as_bytes()).unwrap_err();
    assert!(err.to_string().contains("nested deeper than 1024"), "{err}");
    Ok(())
}

/// A capped writer never yields a cut document as a whole one: going past the cap
/// in the closing brackets, after the encoder's last look, is still too large.
#[test]
fn a_capped_writer_never_passes_off_a_cut_document() -> mlua::Result<()> {
    let lua = lua()?;
    let value: Value = lua.load("return {{1, {2}}}").eval()?;
    for cap in 0..9 {
        let mut writer = Writer::with_limit(false, cap);
        let result = encode(&lua, &value, &mut writer);
        assert!(
            result.as_ref().is_err_and(EncodeError::is_too_large),
            "cap {cap}: {result:?}"
        );
    }
    let mut writer = Writer::with_limit(false, 9);
    encode(&lua, &value, &mut writer).expect("fits");
    assert_eq!(writer.into_bytes(), b"[[1,[2]]]");
    Ok(())
}

/// Sequences of any length, and objects larger than the Lua stack, encode; an
/// object's entries count against the memory limit.
#[test]
fn tables_larger_than_the_stack_encode_within_the_memory_limit() -> mlua::Result<()> {
    let lua = lua()?;
    let build = "local t = {} for i = 1, 1200000 do t[i] = i % 10 end return t";
    let value: Value = lua.load(build).eval()?;
    let mut writer = Writer::new(false);
    encode(&lua, &value, &mut writer).expect("a long sequence");
    assert_eq!(writer.into_bytes().len(), 2 * 1_200_000 + 1);

    let build = "local t = {} for i = 1, 1200000 do t['k' .. i] = i end return t";
    let value: Value = lua.load(build).eval()?;
    let mut writer = Writer::new(false);
    encode(&lua, &value, &mut writer).expect("a large object");
    let text = writer.into_bytes();
    assert!(text.starts_with(br#"{"k1":1,"k10":10,"k100":100,"#));

    lua.set_memory_limit(lua.used_memory() + (4 << 20))?;
    let mut writer = Writer::new(false);
    let error = encode(&lua, &value, &mut writer).expect_err("no memory for its keys");
    assert!(error.is_out_of_memory(), "{error}");
    lua.set_memory_limit(0)?;
    Ok(())
}
