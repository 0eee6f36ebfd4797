//! `uuid` (SPEC 7.2): random (version 4) UUIDs, as Lambda's request ids are.

use super::binding::{self, Args, Error, Function, Module, Type, Value};

/// A random UUID, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx` in lower case.
pub fn v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn v4_fn(_: &Args) -> Result<Value, Error> {
    Ok(Value::Text(v4()))
}

static UUID: Module = Module {
    name: "uuid",
    functions: &[Function {
        name: "v4",
        params: &[],
        returns: Type::Text,
        doc: "A random (version 4) UUID, in lower case.",
        call: v4_fn,
        rhai_blob_twin: None,
    }],
};

pub fn register_lua(lua: &mlua::Lua) -> mlua::Result<()> {
    binding::lua::register(lua, &UUID)
}

pub fn register_rhai(
    engine: &mut rhai::Engine,
    definitions: Option<&mut binding::rhai::Definitions>,
) {
    binding::rhai::register(engine, &UUID, definitions);
}

#[cfg(test)]
mod tests {
    #[test]
    fn v4_has_the_version_and_variant_bits() {
        let id = super::v4();
        assert_eq!(id.len(), 36);
        let bytes = id.as_bytes();
        assert_eq!([bytes[8], bytes[13], bytes[18], bytes[23]], [b'-'; 4]);
        assert_eq!(bytes[14], b'4');
        assert!(matches!(bytes[19], b'8' | b'9' | b'a' | b'b'), "{id}");
        assert!(
            id.bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(id, super::v4());
    }
}
