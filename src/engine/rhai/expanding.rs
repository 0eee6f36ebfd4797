//! Rhai functions that build a large value out of one string in a single call:
//! Rhai measures the result only once the call returns, so `split("")` on a 16 MiB
//! string allocated hundreds of MB first, and `replace("", s)` on a 1 MB string
//! with a 1 KB `s` took 2 GB (the heap check runs between operations, not inside
//! one). These replacements, registered over the standard package's, count the
//! pieces or measure the result first and refuse past the array or string size
//! limit, as Rhai's own check would have, before allocating any.

use rhai::{Array, Dynamic, EvalAltResult, INT, ImmutableString, NativeCallContext};

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

/// The array of `pieces`, if their count (`count`) fits Rhai's array limit.
fn checked<'a>(
    ctx: &NativeCallContext,
    count: usize,
    pieces: impl Iterator<Item = &'a str>,
) -> Result<Array> {
    let max = ctx.engine().max_array_size();
    if max > 0 && count > max {
        return Err(Box::new(EvalAltResult::ErrorDataTooLarge(
            "Size of array/BLOB".into(),
            ctx.call_position(),
        )));
    }
    Ok(pieces
        .map(|piece| Dynamic::from(piece.to_owned()))
        .collect())
}

fn segments(n: INT) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Whether Rhai returns the string itself, whole, as the only piece.
fn whole(string: &str, delimiter: &str) -> bool {
    string.is_empty() || (!delimiter.is_empty() && !string.contains(delimiter))
}

fn one(string: &ImmutableString) -> Array {
    vec![string.clone().into()]
}

/// `string` with every `find` replaced by `substitute`, if the result fits Rhai's
/// string size limit (measured before it is built).
fn replaced(
    ctx: &NativeCallContext,
    string: &mut ImmutableString,
    find: &str,
    substitute: &str,
) -> Result<()> {
    if string.is_empty() {
        return Ok(());
    }
    let max = ctx.engine().max_string_size();
    if max > 0 && substitute.len() > find.len() {
        let matches = string.matches(find).count();
        let grows_by = (substitute.len() - find.len()).saturating_mul(matches);
        if string.len().saturating_add(grows_by) > max {
            return Err(Box::new(EvalAltResult::ErrorDataTooLarge(
                "Length of string".into(),
                ctx.call_position(),
            )));
        }
    }
    *string = string.replace(find, substitute).into();
    Ok(())
}

/// Registers `name` for a string or character delimiter, with and without a
/// count of segments: `split`/`splitn` or `rsplit`/`rsplitn` on `str`.
macro_rules! register_splits {
    ($engine:expr, $name:literal, $split:ident, $splitn:ident) => {
        $engine
            .register_fn(
                $name,
                |ctx: NativeCallContext, s: &mut ImmutableString, d: &str| -> Result<Array> {
                    if whole(s, d) {
                        return Ok(one(s));
                    }
                    checked(&ctx, s.$split(d).count(), s.$split(d))
                },
            )
            .register_fn(
                $name,
                |ctx: NativeCallContext,
                 s: &mut ImmutableString,
                 d: &str,
                 n: INT|
                 -> Result<Array> {
                    if n <= 1 || whole(s, d) {
                        return Ok(one(s));
                    }
                    let n = segments(n);
                    checked(&ctx, s.$splitn(n, d).count(), s.$splitn(n, d))
                },
            )
            .register_fn(
                $name,
                |ctx: NativeCallContext, s: &mut ImmutableString, d: char| -> Result<Array> {
                    if s.is_empty() || !s.contains(d) {
                        return Ok(one(s));
                    }
                    checked(&ctx, s.$split(d).count(), s.$split(d))
                },
            )
            .register_fn(
                $name,
                |ctx: NativeCallContext,
                 s: &mut ImmutableString,
                 d: char,
                 n: INT|
                 -> Result<Array> {
                    if n <= 1 || s.is_empty() || !s.contains(d) {
                        return Ok(one(s));
                    }
                    let n = segments(n);
                    checked(&ctx, s.$splitn(n, d).count(), s.$splitn(n, d))
                },
            );
    };
}

pub fn register(engine: &mut rhai::Engine) {
    engine
        .register_fn(
            "replace",
            |ctx: NativeCallContext, s: &mut ImmutableString, find: &str, by: &str| {
                replaced(&ctx, s, find, by)
            },
        )
        .register_fn(
            "replace",
            |ctx: NativeCallContext, s: &mut ImmutableString, find: &str, by: char| {
                replaced(&ctx, s, find, by.encode_utf8(&mut [0; 4]))
            },
        )
        .register_fn(
            "replace",
            |ctx: NativeCallContext, s: &mut ImmutableString, find: char, by: &str| {
                replaced(&ctx, s, find.encode_utf8(&mut [0; 4]), by)
            },
        )
        .register_fn(
            "replace",
            |ctx: NativeCallContext, s: &mut ImmutableString, find: char, by: char| {
                replaced(
                    &ctx,
                    s,
                    find.encode_utf8(&mut [0; 4]),
                    by.encode_utf8(&mut [0; 4]),
                )
            },
        );
    register_splits!(engine, "split", split, splitn);
    register_splits!(engine, "split_rev", rsplit, rsplitn);
    engine
        .register_fn(
            "split",
            |ctx: NativeCallContext, s: &mut ImmutableString| -> Result<Array> {
                if s.is_empty() {
                    return Ok(one(s));
                }
                checked(&ctx, s.split_whitespace().count(), s.split_whitespace())
            },
        )
        .register_fn(
            "to_chars",
            |ctx: NativeCallContext, s: &str| -> Result<Array> {
                let max = ctx.engine().max_array_size();
                if max > 0 && s.chars().count() > max {
                    return Err(Box::new(EvalAltResult::ErrorDataTooLarge(
                        "Size of array/BLOB".into(),
                        ctx.call_position(),
                    )));
                }
                Ok(s.chars().map(Dynamic::from).collect())
            },
        );
}
