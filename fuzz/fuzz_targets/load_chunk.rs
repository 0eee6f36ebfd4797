//! The bytecode path: chunks given to the sandbox's `load`, whatever mode a script
//! asks for, by string or by reader function, must never load as bytecode (Lua
//! does not verify precompiled chunks: a corrupt one crashes the VM).
//!
//! The input's first byte picks the chunk: a `string.dump` of a real function with
//! bytes changed where the rest of the input says (position, value pairs), or the
//! input itself. Properties: no crash; a chunk that starts with Lua's signature
//! (`ESC`) never loads, by any mode; text chunks load or fail as Lua's parser says
//! (never run: a text chunk may loop forever).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlua::{Function, Lua, Value};

const DUMPED: &str = "return string.dump(function(a, b) \
     local t = { a, b, 'k', 1.5, 2 ^ 40 } \
     for i = 1, #t do t[i] = tostring(t[i]) .. i end \
     return table.concat(t), function() return t end end)";

fn chunk(lua: &Lua, data: &[u8]) -> Vec<u8> {
    let Some((&pick, rest)) = data.split_first() else {
        return Vec::new();
    };
    if pick % 4 == 0 {
        return rest.to_vec();
    }
    let dumped: mlua::LuaString = lua.load(DUMPED).eval().expect("string.dump works");
    let mut bytes = dumped.as_bytes().to_vec();
    for change in rest.chunks(3) {
        if let [hi, lo, value] = *change {
            let at = usize::from(u16::from_be_bytes([hi, lo])) % bytes.len();
            bytes[at] = value;
        }
    }
    if pick % 4 == 1 {
        // A changed signature is text to the parser: keep Lua's.
        bytes[0] = 0x1b;
    }
    bytes
}

fuzz_target!(|data: &[u8]| {
    lure_fuzz::with_sandbox(|lua| {
        let bytes = chunk(lua, data);
        let is_binary = bytes.first() == Some(&0x1b);
        let load: Function = lua.globals().get("load").expect("load");
        let text = lua.create_string(&bytes).expect("a string");
        for mode in [None, Some("b"), Some("t"), Some("bt")] {
            let (f, _err): (Value, Value) = load
                .call((text.clone(), "=fuzz", mode))
                .expect("load reports errors as values");
            assert!(
                !(is_binary && f.is_function()),
                "bytecode loaded, mode {mode:?}"
            );
        }
        // A reader function handing the chunk over in pieces.
        let pieces: Vec<Vec<u8>> = bytes.chunks(7).map(<[u8]>::to_vec).collect();
        let next = std::cell::Cell::new(0);
        let reader = lua
            .create_function(move |lua, ()| {
                let i = next.get();
                next.set(i + 1);
                match pieces.get(i) {
                    Some(piece) => Ok(Value::String(lua.create_string(piece)?)),
                    None => Ok(Value::Nil),
                }
            })
            .expect("a function");
        let (f, _err): (Value, Value) = load
            .call((reader, "=fuzz", "b"))
            .expect("load reports errors as values");
        assert!(
            !(is_binary && f.is_function()),
            "bytecode loaded from a reader"
        );
    });
});
