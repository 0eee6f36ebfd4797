//! JSON ↔ Rhai `Dynamic` (SPEC §4). (Being written.)

use rhai::Dynamic;

use super::{EncodeError, Writer};

/// Decodes JSON text into a Rhai value.
pub fn decode(bytes: &[u8]) -> Result<Dynamic, serde_json::Error> {
    let _ = bytes;
    todo!()
}

/// Encodes a Rhai value as JSON.
pub fn encode(value: &Dynamic, writer: &mut Writer) -> Result<(), EncodeError> {
    let _ = (value, writer);
    todo!()
}
