//! The Lua return-value encoder fed with Lua values built from the fuzz input.
//!
//! The input is a tiny stack program: each byte picks an operation (push a scalar,
//! a string that may be invalid UTF-8, `json.null`, `json.empty_array`, a function;
//! make a table, with or without `json.array_mt`; store the top value into the table
//! below it under an appended, integer, float, string or table key; make a table
//! refer to itself or to another one). The last value on the stack is encoded.
//!
//! Properties: no panic; an error names a JSONPath; a success is valid JSON that
//! decodes and encodes to the same text; the writers' size bounds hold
//! (`lure_fuzz::assert_size_bounds`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use lure::json::{self, Writer};
use mlua::{LightUserData, Lua, Table, Value};

const MAX_STACK: usize = 64;

struct Program<'a> {
    bytes: &'a [u8],
}

impl Program<'_> {
    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((b, rest)) => {
                self.bytes = rest;
                *b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.bytes.len());
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        head
    }

    fn u64(&mut self) -> u64 {
        let mut buf = [0u8; 8];
        let src = self.take(8);
        buf[..src.len()].copy_from_slice(src);
        u64::from_le_bytes(buf)
    }
}

fn table_below(stack: &[Value]) -> Option<Table> {
    stack.iter().rev().skip(1).find_map(|v| match v {
        Value::Table(t) => Some(t.clone()),
        _ => None,
    })
}

fn build(lua: &Lua, bytes: &[u8]) -> mlua::Result<Value> {
    let array_mt = json::lua::Codec::array_mt(lua);
    let mut p = Program { bytes };
    let mut stack: Vec<Value> = Vec::new();
    while !p.bytes.is_empty() {
        let op = p.byte();
        match op % 20 {
            0 => stack.push(Value::Integer(p.u64() as i64)),
            1 => stack.push(Value::Number(f64::from_bits(p.u64()))),
            2 => stack.push(Value::Integer(i64::from(p.byte() as i8))),
            3 => stack.push(Value::Number(f64::from(p.byte() as i8) / 4.0)),
            4 => {
                let len = usize::from(p.byte() % 16);
                let s = lua.create_string(p.take(len))?;
                stack.push(Value::String(s));
            }
            5 => stack.push(Value::Boolean(op & 0x80 != 0)),
            6 => stack.push(Value::Nil),
            7 => stack.push(json::lua::null()),
            8 => stack.push(json::lua::empty_array()),
            9 => stack.push(Value::Table(lua.create_table()?)),
            10 => {
                let t = lua.create_table()?;
                t.set_metatable(Some(array_mt.clone()))?;
                stack.push(Value::Table(t));
            }
            // Store the top value into the nearest table below it.
            11..=15 => {
                let (Some(value), Some(table)) = (stack.last().cloned(), table_below(&stack))
                else {
                    continue;
                };
                stack.pop();
                let key = match op % 20 {
                    11 => Value::Integer(table.raw_len() as i64 + 1),
                    12 => Value::Integer(i64::from(p.byte() as i8)),
                    13 => Value::Number(f64::from(p.byte() as i8) / 2.0),
                    14 => {
                        let len = usize::from(p.byte() % 8);
                        Value::String(lua.create_string(p.take(len))?)
                    }
                    _ => Value::Table(lua.create_table()?),
                };
                // Nil and NaN keys are Lua errors, not encoder cases.
                let _ = table.raw_set(key, value);
            }
            // A table holding a table from elsewhere on the stack: shared (fine) or
            // a cycle (a MarshalError).
            16 => {
                let tables: Vec<Table> = stack
                    .iter()
                    .filter_map(|v| match v {
                        Value::Table(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                if tables.is_empty() {
                    continue;
                }
                let from = &tables[usize::from(p.byte()) % tables.len()];
                let to = &tables[usize::from(p.byte()) % tables.len()];
                let _ = from.raw_set(from.raw_len() as i64 + 1, to.clone());
            }
            17 => stack.push(Value::Function(lua.create_function(|_, ()| Ok(()))?)),
            18 => stack.push(Value::LightUserData(LightUserData(
                usize::from(p.byte()).max(1) as *mut _,
            ))),
            _ => {
                stack.pop();
            }
        }
        if stack.len() > MAX_STACK {
            stack.remove(0);
        }
    }
    Ok(stack.pop().unwrap_or(Value::Nil))
}

fuzz_target!(|data: &[u8]| {
    lure_fuzz::with_lua(|lua| {
        let Ok(value) = build(lua, data) else {
            return;
        };
        let mut writer = Writer::new(false);
        let encoded = match json::lua::encode(lua, &value, &mut writer) {
            Ok(()) => writer.into_bytes(),
            Err(e) => {
                assert!(e.path().starts_with('$'), "no JSONPath in {e}");
                return;
            }
        };
        assert!(
            lure_fuzz::parse(&encoded).is_some(),
            "lure wrote invalid JSON: {:?}",
            String::from_utf8_lossy(&encoded)
        );
        let decoded = json::lua::decode(lua, &encoded)
            .unwrap_or_else(|e| panic!("lure's own output does not decode: {e}"));
        let mut writer = Writer::new(false);
        json::lua::encode(lua, &decoded, &mut writer).expect("a decoded value encodes");
        assert_eq!(
            String::from_utf8_lossy(&encoded),
            String::from_utf8_lossy(&writer.into_bytes()),
            "encode → decode → encode changed the text"
        );

        // The writers' bounds: a response's, a log record's, `json.encode`'s.
        lure_fuzz::assert_size_bounds(&encoded, data.len(), |writer| {
            json::lua::encode(lua, &value, writer)
        });
    });
});
