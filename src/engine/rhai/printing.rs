//! Rhai's text for arrays and maps (`print`, `debug`, `to_string`, `to_debug`,
//! and so string interpolation), built with a bound. Rhai's own versions build the
//! whole text in one native call, which the heap check between operations cannot
//! stop: a map of 300 references to one 16 MiB string asked for 5 GB. These
//! replacements, registered over the standard package's, write the same text and
//! stop at the bound: `print`/`debug` (log records) end with a cut marker at
//! CloudWatch's event size; `to_string`/`to_debug` (values the script keeps) are
//! refused past Rhai's string size limit, as Rhai's own check would have refused
//! the finished string.

use std::fmt::Write;

use rhai::{Array, Dynamic, EvalAltResult, ImmutableString, Map, NativeCallContext};

use crate::limits::MAX_RECORD_BYTES;
use crate::log::RecordText;

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

/// Text that stops growing once it is longer than `bound`.
struct Bounded {
    text: String,
    bound: usize,
}

impl Bounded {
    fn full(&self) -> bool {
        self.text.len() > self.bound
    }
}

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.full() {
            return Err(std::fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// Writes `value` as an element of an array or map, as Rhai does (its `to_debug`
/// text); stops (`Err`) once the text is past its bound.
fn element(ctx: &NativeCallContext, value: &Dynamic, out: &mut Bounded) -> std::fmt::Result {
    if let Some(array) = value.read_lock::<Array>() {
        return array_text(ctx, &array, out);
    }
    if let Some(map) = value.read_lock::<Map>() {
        return map_text(ctx, &map, out);
    }
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return write!(out, "{:?}", s.as_str());
    }
    let text = ctx
        .call_native_fn::<ImmutableString>("to_debug", (value.clone(),))
        .unwrap_or_else(|_| value.type_name().into());
    out.write_str(&text)
}

fn array_text(ctx: &NativeCallContext, array: &Array, out: &mut Bounded) -> std::fmt::Result {
    out.write_str("[")?;
    for (i, item) in array.iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        element(ctx, item, out)?;
    }
    out.write_str("]")
}

fn map_text(ctx: &NativeCallContext, map: &Map, out: &mut Bounded) -> std::fmt::Result {
    out.write_str("#{")?;
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        write!(out, "{:?}: ", key.as_str())?;
        element(ctx, value, out)?;
    }
    out.write_str("}")
}

/// The text `write` writes, for a log record: cut, with the record's marker,
/// at [`MAX_RECORD_BYTES`].
fn for_log(write: impl FnOnce(&mut Bounded) -> std::fmt::Result) -> ImmutableString {
    let mut out = Bounded {
        text: String::new(),
        bound: MAX_RECORD_BYTES,
    };
    let cut = write(&mut out).is_err() || out.full();
    let mut record = RecordText::default();
    record.push(&out.text);
    if cut {
        record.mark_cut();
    }
    record.finish().into()
}

/// The text `write` writes, as a string value: refused past Rhai's string size
/// limit.
fn as_string(
    ctx: &NativeCallContext,
    write: impl FnOnce(&mut Bounded) -> std::fmt::Result,
) -> Result<ImmutableString> {
    let max = ctx.engine().max_string_size();
    let mut out = Bounded {
        text: String::new(),
        bound: if max == 0 { usize::MAX } else { max },
    };
    if write(&mut out).is_err() || out.full() {
        return Err(Box::new(EvalAltResult::ErrorDataTooLarge(
            "Length of string".into(),
            ctx.call_position(),
        )));
    }
    Ok(out.text.into())
}

pub fn register(engine: &mut rhai::Engine) {
    for name in ["print", "debug"] {
        engine
            .register_fn(name, |ctx: NativeCallContext, a: &mut Array| {
                for_log(|out| array_text(&ctx, a, out))
            })
            .register_fn(name, |ctx: NativeCallContext, m: &mut Map| {
                for_log(|out| map_text(&ctx, m, out))
            });
    }
    for name in ["to_string", "to_debug"] {
        engine
            .register_fn(name, |ctx: NativeCallContext, a: &mut Array| {
                as_string(&ctx, |out| array_text(&ctx, a, out))
            })
            .register_fn(name, |ctx: NativeCallContext, m: &mut Map| {
                as_string(&ctx, |out| map_text(&ctx, m, out))
            });
    }
}
