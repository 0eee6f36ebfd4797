//! `hex` (SPEC 7.2): bytes as lower-case hexadecimal, and back (either case).

use super::binding::{self, Args, Error, Function, Module, Param, Type, Value};

/// Lower-case hex.
pub fn encode(data: &[u8]) -> String {
    hex::encode(data)
}

/// The bytes `text` spells in hex (upper or lower case).
pub fn decode(text: &[u8]) -> Result<Vec<u8>, String> {
    hex::decode(text).map_err(|e| match e {
        hex::FromHexError::InvalidHexCharacter { c, index } => {
            format!("is not valid hex at byte {index} ({c:?})")
        }
        hex::FromHexError::OddLength => {
            format!("is not valid hex: an odd number of digits ({})", text.len())
        }
        other => format!("is not valid hex ({other})"),
    })
}

fn encode_fn(args: &Args) -> Result<Value, Error> {
    let data = args.data(1)?;
    args.reserve(data.len().saturating_mul(2))?;
    Ok(Value::Text(encode(data)))
}

fn decode_fn(args: &Args) -> Result<Value, Error> {
    decode(args.text_bytes(1)?)
        .map(Value::Bytes)
        .map_err(|detail| Error::argument(1, detail))
}

static HEX: Module = Module {
    name: "hex",
    functions: &[
        Function {
            name: "encode",
            params: &[Param::new("data", Type::Data)],
            returns: Type::Text,
            doc: "`data` as lower-case hexadecimal.",
            call: encode_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "decode",
            params: &[Param::new("text", Type::Text)],
            returns: Type::Bytes,
            doc: "The bytes `text` spells in hexadecimal (either case).",
            call: decode_fn,
            rhai_blob_twin: None,
        },
    ],
};

pub fn register_lua(lua: &mlua::Lua) -> mlua::Result<()> {
    binding::lua::register(lua, &HEX)
}

pub fn register_rhai(
    engine: &mut rhai::Engine,
    definitions: Option<&mut binding::rhai::Definitions>,
) {
    binding::rhai::register(engine, &HEX, definitions);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_lower_case_and_reads_either_case() {
        assert_eq!(encode(b"\x00\x7f\xff lure"), "007fff206c757265");
        assert_eq!(decode(b"007FFF206c757265").unwrap(), b"\x00\x7f\xff lure");
        assert_eq!(decode(b"").unwrap(), b"");
    }

    #[test]
    fn bad_text_is_named_with_its_position() {
        assert_eq!(
            decode(b"0g").unwrap_err(),
            "is not valid hex at byte 1 ('g')"
        );
        assert_eq!(
            decode(b"abc").unwrap_err(),
            "is not valid hex: an odd number of digits (3)"
        );
    }
}
