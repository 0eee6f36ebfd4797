//! Resolving `_HANDLER` against the task root (SPEC §2).

use std::path::{Component, Path, PathBuf};

use crate::diagnostic::{Diagnostic, error_type};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Lua,
    Rhai,
}

impl Language {
    pub fn extension(self) -> &'static str {
        match self {
            Language::Lua => "lua",
            Language::Rhai => "rhai",
        }
    }
}

/// How the handler was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `hello.lua`: the script's `main` (Rhai: or the script body itself).
    ScriptFile,
    /// `src/app.handler`: a named function of `src/app.lua` or `src/app.rhai`.
    FileMethod,
}

/// A handler resolved to a script that exists under the task root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    pub task_root: PathBuf,
    /// Relative to the task root, `/`-separated: also the script's name in messages.
    pub script: String,
    pub language: Language,
    /// The function to call: `main` for [`Form::ScriptFile`].
    pub function: String,
    pub form: Form,
}

impl Handler {
    pub fn script_path(&self) -> PathBuf {
        self.task_root.join(&self.script)
    }
}

/// Resolves a handler string the way Lambda does for the official runtimes.
pub fn resolve(handler: &str, task_root: &Path) -> Result<Handler, Diagnostic> {
    let malformed = |why: &str| {
        Diagnostic::runtime(
            error_type::MALFORMED_HANDLER_NAME,
            format!("Bad handler '{handler}': {why}"),
        )
    };
    if handler.is_empty() {
        return Err(malformed("it is empty"));
    }
    check_stays_inside(handler).map_err(malformed)?;

    for language in [Language::Lua, Language::Rhai] {
        let suffix = format!(".{}", language.extension());
        if handler.ends_with(&suffix) && task_root.join(handler).is_file() {
            return Ok(Handler {
                task_root: task_root.to_owned(),
                script: handler.to_owned(),
                language,
                function: "main".to_owned(),
                form: Form::ScriptFile,
            });
        }
    }

    let Some((file, method)) = handler.rsplit_once('.') else {
        return Err(malformed(
            "expected <file>.<method> (e.g. app.handler) or a .lua/.rhai script name",
        ));
    };
    if file.is_empty() || file.ends_with('/') {
        return Err(malformed("the file part is empty"));
    }
    if !is_identifier(method) {
        return Err(malformed(&format!(
            "'{method}' is not a function name (letters, digits and _, not starting with a digit)"
        )));
    }

    let candidates: Vec<(Language, String)> = [Language::Lua, Language::Rhai]
        .into_iter()
        .map(|l| (l, format!("{file}.{}", l.extension())))
        .filter(|(_, script)| task_root.join(script).is_file())
        .collect();
    match candidates.as_slice() {
        [(language, script)] => Ok(Handler {
            task_root: task_root.to_owned(),
            script: script.clone(),
            language: *language,
            function: method.to_owned(),
            form: Form::FileMethod,
        }),
        [] => Err(Diagnostic::runtime(
            error_type::IMPORT_MODULE_ERROR,
            format!(
                "Cannot find module '{file}': neither {file}.lua nor {file}.rhai exists in {}",
                task_root.display()
            ),
        )),
        _ => Err(Diagnostic::runtime(
            error_type::IMPORT_MODULE_ERROR,
            format!(
                "Handler '{handler}' is ambiguous: both {file}.lua and {file}.rhai exist in {}; remove one",
                task_root.display()
            ),
        )),
    }
}

fn check_stays_inside(handler: &str) -> Result<(), &'static str> {
    let path = Path::new(handler);
    if path.is_absolute() || handler.starts_with('\\') {
        return Err("absolute paths are not allowed; name the file relative to the task root");
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("'..' would leave the task root");
    }
    Ok(())
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(files: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lure-handler-spec-{}-{}",
            std::process::id(),
            files.join("+").replace('/', "_")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for f in files {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn error_type_of(r: Result<Handler, Diagnostic>) -> String {
        r.unwrap_err().error_type
    }

    #[test]
    fn script_file_form_calls_main() {
        let dir = root(&["hello.lua", "jobs/nightly.rhai"]);
        let h = resolve("hello.lua", &dir).unwrap();
        assert_eq!(
            (h.language, h.function.as_str(), h.form),
            (Language::Lua, "main", Form::ScriptFile)
        );
        let h = resolve("jobs/nightly.rhai", &dir).unwrap();
        assert_eq!(
            (h.language, h.script.as_str()),
            (Language::Rhai, "jobs/nightly.rhai")
        );
    }

    #[test]
    fn method_form_splits_at_the_last_dot() {
        let dir = root(&["src/app.v2.rhai"]);
        let h = resolve("src/app.v2.handler", &dir).unwrap();
        assert_eq!(h.script, "src/app.v2.rhai");
        assert_eq!(h.function, "handler");
        assert_eq!(h.form, Form::FileMethod);
    }

    #[test]
    fn both_languages_present_is_an_import_error() {
        let dir = root(&["app.lua", "app.rhai"]);
        let err = resolve("app.handler", &dir).unwrap_err();
        assert_eq!(err.error_type, error_type::IMPORT_MODULE_ERROR);
        assert!(err.error_message.contains("app.lua") && err.error_message.contains("app.rhai"));
    }

    #[test]
    fn missing_file_is_an_import_error() {
        let dir = root(&["other.lua"]);
        assert_eq!(
            error_type_of(resolve("app.handler", &dir)),
            error_type::IMPORT_MODULE_ERROR
        );
    }

    #[test]
    fn malformed_names_are_rejected() {
        let dir = root(&["app.lua"]);
        for bad in [
            "",
            "app",
            "/var/task/app.handler",
            "../app.handler",
            "a/../../app.handler",
            "app.",
            ".handler",
            "app.1x",
            "app.my-fn",
        ] {
            assert_eq!(
                error_type_of(resolve(bad, &dir)),
                error_type::MALFORMED_HANDLER_NAME,
                "{bad:?}"
            );
        }
    }
}
