//! `base64` (SPEC 7.2): RFC 4648 base64 and base64url. Encoders pad (`encode`) or
//! not (`url_encode`, as JWTs and most URL uses want); every decoder accepts
//! padded and unpadded text.

use base64::Engine;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{
    STANDARD, STANDARD_PAD_INDIFFERENT, URL_SAFE_NO_PAD, URL_SAFE_PAD_INDIFFERENT,
};

use super::binding::{self, Args, Error, Function, Module, Param, Type, Value};

/// Standard base64, padded.
pub fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Standard base64, padded or not; the error says what is wrong and where.
pub fn decode(text: &[u8]) -> Result<Vec<u8>, String> {
    decode_with(&STANDARD_PAD_INDIFFERENT, text)
}

fn decode_with(engine: &GeneralPurpose, text: &[u8]) -> Result<Vec<u8>, String> {
    use base64::DecodeError::*;
    engine.decode(text).map_err(|e| match e {
        InvalidByte(at, byte) => {
            format!("is not valid base64 at byte {at} ({})", describe_byte(byte))
        }
        InvalidLength(symbols) => {
            format!("is not valid base64: {symbols} symbols is not a possible length")
        }
        InvalidLastSymbol { offset, .. } => {
            format!("is not valid base64 at byte {offset} (the last symbol has bits left over)")
        }
        InvalidPadding => "is not valid base64 (bad padding)".to_owned(),
    })
}

fn describe_byte(byte: u8) -> String {
    if byte == b' ' || byte.is_ascii_graphic() {
        format!("'{}'", byte as char)
    } else {
        format!("byte 0x{byte:02x}")
    }
}

/// The length of `len` bytes in base64, padded: 4 characters per 3 bytes.
fn encoded_len(len: usize) -> usize {
    len.div_ceil(3).saturating_mul(4)
}

fn encode_fn(args: &Args) -> Result<Value, Error> {
    let data = args.data(1)?;
    args.reserve(encoded_len(data.len()))?;
    Ok(Value::Text(encode(data)))
}

fn decode_fn(args: &Args) -> Result<Value, Error> {
    decode(args.text_bytes(1)?)
        .map(Value::Decoded)
        .map_err(|detail| Error::argument(1, detail))
}

fn url_encode_fn(args: &Args) -> Result<Value, Error> {
    let data = args.data(1)?;
    args.reserve(encoded_len(data.len()))?;
    Ok(Value::Text(URL_SAFE_NO_PAD.encode(data)))
}

fn url_decode_fn(args: &Args) -> Result<Value, Error> {
    decode_with(&URL_SAFE_PAD_INDIFFERENT, args.text_bytes(1)?)
        .map(Value::Decoded)
        .map_err(|detail| Error::argument(1, detail))
}

static BASE64: Module = Module {
    name: "base64",
    functions: &[
        Function {
            name: "encode",
            params: &[Param::new("data", Type::Data)],
            returns: Type::Text,
            doc: "`data` in base64 (RFC 4648), padded with `=`.",
            call: encode_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "decode",
            params: &[Param::new("text", Type::Text)],
            returns: Type::Text,
            doc: "The bytes `text` encodes in base64 (padded or not), as a string.",
            call: decode_fn,
            rhai_blob_twin: Some("decode_blob"),
        },
        Function {
            name: "url_encode",
            params: &[Param::new("data", Type::Data)],
            returns: Type::Text,
            doc: "`data` in base64url (RFC 4648 §5: `-` and `_`), without padding.",
            call: url_encode_fn,
            rhai_blob_twin: None,
        },
        Function {
            name: "url_decode",
            params: &[Param::new("text", Type::Text)],
            returns: Type::Text,
            doc: "The bytes `text` encodes in base64url (padded or not), as a string.",
            call: url_decode_fn,
            rhai_blob_twin: Some("url_decode_blob"),
        },
    ],
};

pub fn register_lua(lua: &mlua::Lua) -> mlua::Result<()> {
    binding::lua::register(lua, &BASE64)
}

pub fn register_rhai(
    engine: &mut rhai::Engine,
    definitions: Option<&mut binding::rhai::Definitions>,
) {
    binding::rhai::register(engine, &BASE64, definitions);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10.
    const VECTORS: [(&str, &str); 7] = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn rfc4648_test_vectors_round_trip_padded_or_not() {
        for (plain, coded) in VECTORS {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded.as_bytes()).unwrap(), plain.as_bytes());
            let unpadded = coded.trim_end_matches('=');
            assert_eq!(decode(unpadded.as_bytes()).unwrap(), plain.as_bytes());
            assert_eq!(URL_SAFE_NO_PAD.encode(plain), unpadded);
        }
    }

    #[test]
    fn the_url_alphabet_differs_in_two_symbols() {
        let bytes = [0xfb, 0xff, 0xbf];
        assert_eq!(encode(&bytes), "+/+/");
        assert_eq!(URL_SAFE_NO_PAD.encode(bytes), "-_-_");
        assert_eq!(
            decode_with(&URL_SAFE_PAD_INDIFFERENT, b"-_-_").unwrap(),
            bytes
        );
        assert!(decode(b"-_-_").is_err());
    }

    #[test]
    fn bad_text_is_named_with_its_position() {
        assert_eq!(
            decode(b"Zm9v!mFy").unwrap_err(),
            "is not valid base64 at byte 4 ('!')"
        );
        assert_eq!(
            decode(b"Zm9vY").unwrap_err(),
            "is not valid base64: 5 symbols is not a possible length"
        );
        assert!(decode(b"Zh==").unwrap_err().contains("bits left over"));
    }
}
