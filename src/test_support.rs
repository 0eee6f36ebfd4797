//! Helpers shared by the unit tests.

/// Runs `f` on a thread with the 8 MB stack of the runtime's main thread (as on
/// Lambda); test threads get 2 MB, too little for the deepest JSON in a debug build.
pub fn on_main_sized_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

use crate::stdlib::binding::Value;

/// A binding value of text.
pub fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// A binding map of `entries`, in their order.
pub fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}
