//! The console page of `lure serve` (SPEC 10), at `/_lure/`: the task root's
//! scripts in an editor, saved to disk (the next invocation reloads them), named
//! test events saved under `.lure/events/`, event templates, and an Invoke button
//! that shows the answer, the duration, the memory and the log. Everything it
//! needs is served from here (no CDN): it works offline.
//!
//! Guards: every request whose `Host` is not a loopback name or serve's own
//! address and port is refused (no DNS rebinding); every write or invoke whose
//! `Origin` is present and not the console's own is refused (no cross-site
//! requests); files are written only inside the task root (no `..`, no absolute
//! paths, no symbolic link out), only `.lua`, `.rhai` and `.json`. A refused
//! request gets a 4xx and changes nothing.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::Sender;

use serde_json::{Value, json};
use tiny_http::{Method, Request, Response};

use super::dispatcher::{Caller, Job, Message};
use super::invoke_api::{Site, header_value, host_parts, http_header};
use crate::local::report::new_request_id;

pub const PREFIX: &str = "/_lure";
const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");
/// Where saved test events live, under the task root (hidden: a reload ignores it).
const EVENTS_DIR: &str = ".lure/events";
/// The largest file or event the console writes (Lambda's event limit).
const MAX_WRITE_BYTES: u64 = crate::limits::MAX_EVENT_BYTES as u64;

/// Event templates, as the Lambda console offers them.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "API Gateway HTTP API",
        include_str!("../../../scripts/events/api_gateway.json"),
    ),
    (
        "SQS",
        include_str!("../../../scripts/events/sqs_batch.json"),
    ),
    ("S3", include_str!("../../../scripts/events/s3_object.json")),
    (
        "EventBridge schedule",
        include_str!("../../../scripts/events/schedule.json"),
    ),
    (
        "DynamoDB Streams",
        include_str!("console/dynamodb_stream.json"),
    ),
];

/// What the console knows of the function.
pub struct Console {
    pub task_root: PathBuf,
    pub handler: String,
    /// The port serve listens on: a `Host` naming another is refused.
    pub port: u16,
}

/// Whether `path` (without its query) is the console's.
pub fn owns(path: &str) -> bool {
    path == PREFIX || path.starts_with("/_lure/")
}

/// Answers one console request.
pub fn handle(console: &Console, site: &Site, mut request: Request, dispatcher: &Sender<Message>) {
    let host = header_value(&request, "Host").map(str::to_owned);
    if !site.allows(host.as_deref()) || !port_is(host.as_deref(), console.port) {
        return refuse(
            request,
            403,
            "the console answers only localhost and serve's own address and port",
        );
    }
    let url = request.url().to_owned();
    let path = url.split('?').next().unwrap_or("");
    let method = request.method().clone();
    let writes = !matches!(method, Method::Get | Method::Head);
    if writes {
        let own = host.map(|h| format!("http://{h}"));
        if let Some(origin) = header_value(&request, "Origin")
            && Some(origin) != own.as_deref()
        {
            return refuse(
                request,
                403,
                "a write from another site (its Origin is not the console's)",
            );
        }
    }
    let route = path.strip_prefix(PREFIX).unwrap_or("");
    match (&method, route) {
        (Method::Get, "") => {
            let response = Response::empty(308).with_header(http_header("Location", "/_lure/"));
            let _ = request.respond(response);
        }
        (Method::Get, "/") => asset(request, PAGE, "text/html; charset=utf-8"),
        (Method::Get, "/console.js") => asset(request, SCRIPT, "text/javascript; charset=utf-8"),
        (Method::Get, "/console.css") => asset(request, STYLE, "text/css; charset=utf-8"),
        (Method::Get, "/api/state") => {
            let body = json!({
                "handler": console.handler,
                "task_root": console.task_root.display().to_string(),
                "files": list_files(&console.task_root),
                "events": list_events(&console.task_root),
                "templates": TEMPLATES.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            });
            json_response(request, 200, &body);
        }
        (Method::Get, route) if route.starts_with("/api/files/") => {
            let relative = decode(&route["/api/files/".len()..]);
            match checked_path(&console.task_root, &relative) {
                Ok(path) => match std::fs::read_to_string(&path) {
                    Ok(text) => text_response(request, text),
                    Err(e) => refuse(request, 404, &format!("cannot read {relative}: {e}")),
                },
                Err(why) => refuse(request, 400, &why),
            }
        }
        (Method::Put, route) if route.starts_with("/api/files/") => {
            let relative = decode(&route["/api/files/".len()..]);
            let path = match checked_path(&console.task_root, &relative) {
                Ok(path) => path,
                Err(why) => return refuse(request, 400, &why),
            };
            match read_body(&mut request) {
                Ok(body) => write(request, &path, &body),
                Err(why) => refuse(request, 413, &why),
            }
        }
        (Method::Get, route) if route.starts_with("/api/events/") => {
            let name = decode(&route["/api/events/".len()..]);
            match event_path(&console.task_root, &name) {
                Ok(path) => match std::fs::read_to_string(path) {
                    Ok(text) => text_response(request, text),
                    Err(_) => refuse(request, 404, &format!("no saved event {name:?}")),
                },
                Err(why) => refuse(request, 400, &why),
            }
        }
        (Method::Put, route) if route.starts_with("/api/events/") => {
            let name = decode(&route["/api/events/".len()..]);
            let path = match event_path(&console.task_root, &name) {
                Ok(path) => path,
                Err(why) => return refuse(request, 400, &why),
            };
            let body = match read_body(&mut request) {
                Ok(body) => body,
                Err(why) => return refuse(request, 413, &why),
            };
            if let Err(e) = serde_json::from_slice::<Value>(&body) {
                return refuse(request, 400, &format!("the event is not JSON: {e}"));
            }
            write(request, &path, &body);
        }
        (Method::Get, route) if route.starts_with("/api/templates/") => {
            let name = decode(&route["/api/templates/".len()..]);
            match TEMPLATES.iter().find(|(n, _)| *n == name) {
                Some((_, event)) => text_response(request, (*event).to_owned()),
                None => refuse(request, 404, &format!("no template {name:?}")),
            }
        }
        (Method::Post, "/api/invoke") => {
            let event = match read_body(&mut request) {
                Ok(body) if body.iter().all(u8::is_ascii_whitespace) => b"{}".to_vec(),
                Ok(body) => body,
                Err(why) => return refuse(request, 413, &why),
            };
            let job = Job {
                request_id: new_request_id(),
                invoked_as: "function".to_owned(),
                event,
                client_context: None,
                // The console's answer carries the whole log, not Invoke's tail.
                tail: false,
                caller: Caller::Console(request),
                arrived: std::time::Instant::now(),
            };
            // If serve is ending, dropping the request answers 500.
            let _ = dispatcher.send(Message::Invoke(job));
        }
        _ => refuse(request, 404, &format!("no console route {method} {path}")),
    }
}

/// Whether `host`'s port is `port` (a `Host` without a port names port 80).
fn port_is(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else {
        return true;
    };
    match host_parts(host).1 {
        Some(given) => given.parse() == Ok(port),
        None => port == 80,
    }
}

/// `path` under the task root, if it may be read or written there: relative,
/// without `..` or hidden folders, `.lua`/`.rhai`/`.json`, and not reaching out
/// of the task root through a symbolic link.
fn checked_path(task_root: &Path, relative: &str) -> Result<PathBuf, String> {
    let path = Path::new(relative);
    if relative.is_empty()
        || !path.components().all(|c| match c {
            Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
            _ => false,
        })
    {
        return Err(format!(
            "{relative:?} is not a path inside the task root (no `..`, no absolute paths, no hidden folders)"
        ));
    }
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !["lua", "rhai", "json"].contains(&extension) {
        return Err(format!(
            "{relative:?}: the console writes only .lua, .rhai and .json files"
        ));
    }
    inside(task_root, &task_root.join(path))
}

/// `.lure/events/NAME.json` for a saved event's name.
fn event_path(task_root: &Path, name: &str) -> Result<PathBuf, String> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' '));
    if !valid {
        return Err(format!(
            "{name:?} is not an event name (letters, digits, spaces, - and _)"
        ));
    }
    inside(
        task_root,
        &task_root.join(EVENTS_DIR).join(format!("{name}.json")),
    )
}

/// `path` itself, once neither it (a symbolic link) nor its nearest existing
/// folder leads out of the task root.
fn inside(task_root: &Path, path: &Path) -> Result<PathBuf, String> {
    let root = task_root
        .canonicalize()
        .map_err(|e| format!("the task root: {e}"))?;
    let mut existing = path;
    while !existing.exists() {
        existing = existing.parent().unwrap_or(task_root);
    }
    let resolved = existing
        .canonicalize()
        .map_err(|e| format!("{}: {e}", existing.display()))?;
    if !resolved.starts_with(&root) {
        return Err("the path leads out of the task root (a symbolic link)".to_owned());
    }
    Ok(path.to_owned())
}

fn write(request: Request, path: &Path, body: &[u8]) {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, body));
    match written {
        Ok(()) => json_response(request, 200, &json!({ "saved": body.len() })),
        Err(e) => refuse(
            request,
            500,
            &format!("cannot write {}: {e}", path.display()),
        ),
    }
}

/// The scripts and JSON files of the task root, outside hidden folders.
fn list_files(task_root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => walk(root, &path, files),
                Ok(_)
                    if ["lua", "rhai", "json"]
                        .iter()
                        .any(|ext| path.extension().is_some_and(|e| e == *ext)) =>
                {
                    if let Ok(relative) = path.strip_prefix(root) {
                        files.push(relative.to_string_lossy().into_owned());
                    }
                }
                _ => {}
            }
        }
    }
    let mut files = Vec::new();
    walk(task_root, task_root, &mut files);
    files.sort();
    files
}

/// The names of the saved test events.
fn list_events(task_root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(task_root.join(EVENTS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

fn read_body(request: &mut Request) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_WRITE_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if body.len() as u64 > MAX_WRITE_BYTES {
        return Err(format!("over {MAX_WRITE_BYTES} bytes"));
    }
    Ok(body)
}

/// Percent-decoding of a path segment the page encoded.
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn asset(request: Request, body: &str, content_type: &str) {
    let response = Response::from_string(body)
        .with_header(http_header("Content-Type", content_type))
        // Only its own files: no inline script, nothing from elsewhere.
        .with_header(http_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ))
        .with_header(http_header("X-Content-Type-Options", "nosniff"))
        .with_header(http_header("Cache-Control", "no-store"));
    let _ = request.respond(response);
}

fn text_response(request: Request, text: String) {
    let response = Response::from_string(text)
        .with_header(http_header("Content-Type", "text/plain; charset=utf-8"))
        .with_header(http_header("Cache-Control", "no-store"));
    let _ = request.respond(response);
}

pub fn json_response(request: Request, status: u16, body: &Value) {
    let response = Response::from_string(body.to_string())
        .with_status_code(status)
        .with_header(http_header("Content-Type", "application/json"))
        .with_header(http_header("Cache-Control", "no-store"));
    let _ = request.respond(response);
}

fn refuse(request: Request, status: u16, message: &str) {
    json_response(request, status, &json!({ "error": message }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_must_name_serves_port() {
        assert!(port_is(Some("localhost:9000"), 9000));
        assert!(port_is(Some("[::1]:9000"), 9000));
        assert!(!port_is(Some("localhost:9001"), 9000));
        assert!(!port_is(Some("localhost"), 9000));
        assert!(port_is(None, 9000));
    }

    #[test]
    fn paths_stay_inside_the_task_root() {
        let root = std::env::temp_dir().join(format!("lure-console-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("lib")).unwrap();
        assert!(checked_path(&root, "app.lua").is_ok());
        assert!(checked_path(&root, "lib/new/util.rhai").is_ok());
        for bad in [
            "../x.lua",
            "/etc/x.lua",
            "a/../../x.lua",
            ".lure/x.json",
            "x.txt",
            "x",
            "",
        ] {
            assert!(checked_path(&root, bad).is_err(), "{bad}");
        }
        std::os::unix::fs::symlink("/tmp", root.join("out")).unwrap();
        assert!(checked_path(&root, "out/x.lua").is_err());
        assert!(event_path(&root, "get order 1").is_ok());
        for bad in ["../x", "a/b", "", "x.json\u{0}"] {
            assert!(event_path(&root, bad).is_err(), "{bad}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
