//! Response streaming (SPEC 9) through the real runtime loop and a fake Runtime
//! API that records each chunk as it arrives: chunks sent as written, the
//! HTTP-integration prelude, the result as the last chunk, errors after streaming
//! began as trailers (a script error, the deadline, the memory limit, Lambda's
//! 200 MiB cap), each invocation answered once and the next one served as before.
//! Both languages.

mod support;

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use support::web::WebServer;
use support::*;

const STREAMER_LUA: &str = r#"
function main(event, context)
  if event.op == "plain" then return { ok = true } end
  local out = context:stream(event.options)
  if event.op == "gated" then
    out:write("first")
    http.get(event.gate) -- held until the test has seen "first"
    out:write("")
    out:write("second")
    return nil
  elseif event.op == "result" then
    out:write("a")
    return event.result
  elseif event.op == "twice" then
    local ok, err = pcall(context.stream, context)
    return err
  elseif event.op == "error" then
    out:write("partial")
    error({ errorType = "Boom", errorMessage = "after streaming" })
  elseif event.op == "spin" then
    out:write("partial")
    while true do end
  elseif event.op == "memory" then
    out:write("partial")
    local hoard = {}
    while true do hoard[#hoard + 1] = string.rep("x", 1 << 20) .. #hoard end
  elseif event.op == "cap" then
    local mib = string.rep("x", 1 << 20)
    for _ = 1, 201 do out:write(mib) end
  end
end
"#;

const STREAMER_RHAI: &str = r#"
fn main(event, context) {
    if event.op == "plain" { return #{ ok: true }; }
    let out = if event.options == () { context.stream() } else { context.stream(event.options) };
    if event.op == "gated" {
        out.write("first");
        http::get(event.gate); // held until the test has seen "first"
        out.write("");
        out.write("second");
        return ();
    }
    if event.op == "result" {
        out.write("a");
        return event.result;
    }
    if event.op == "twice" {
        try { context.stream(); } catch (err) { return err; }
    }
    if event.op == "error" {
        out.write("partial");
        throw #{ errorType: "Boom", errorMessage: "after streaming" };
    }
    if event.op == "spin" {
        out.write("partial");
        loop {}
    }
    if event.op == "memory" {
        out.write("partial");
        let hoard = [];
        loop {
            let piece = "x";
            piece.pad(1 << 20, "x");
            hoard.push(piece + hoard.len());
        }
    }
    if event.op == "cap" {
        let mib = "";
        mib.pad(1 << 20, "x");
        for i in 0..201 { out.write(mib); }
    }
}
"#;

fn streamer(name: &str, lang: Lang) -> Scenario {
    let mut s = Scenario::new(&format!("{name}_{lang:?}"));
    let file = lang.file("streamer");
    s.write(
        &file,
        match lang {
            Lang::Lua => STREAMER_LUA,
            Lang::Rhai => STREAMER_RHAI,
        },
    );
    s.start(&file);
    s
}

/// Queues `invocation`; its streamed POST, once it ended.
fn streamed(s: &mut Scenario, invocation: Invocation) -> Post {
    let id = invocation.request_id.clone();
    s.push(invocation);
    streamed_answer(s, &id)
}

/// The streamed POST answering invocation `id`, once it ended.
fn streamed_answer(s: &mut Scenario, id: &str) -> Post {
    let post = s.wait_answer(id);
    assert_eq!(
        post.kind,
        PostKind::Response,
        "{id}: {}",
        String::from_utf8_lossy(&post.body)
    );
    assert_eq!(
        post.header("lambda-runtime-function-response-mode"),
        Some("streaming"),
        "{id}"
    );
    assert_eq!(post.header("transfer-encoding"), Some("chunked"), "{id}");
    assert_eq!(
        post.header("trailer"),
        Some("Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"),
        "{id}"
    );
    assert_eq!(s.api.log().accepted_answers(id), 1, "{id}: answered once");
    post
}

/// The error a streamed POST's trailers carry: its type, and its body decoded.
fn trailer_error(post: &Post) -> (String, Value) {
    let error_type = post
        .header("lambda-runtime-function-error-type")
        .expect("an error type trailer")
        .to_owned();
    let body = base64::engine::general_purpose::STANDARD
        .decode(
            post.header("lambda-runtime-function-error-body")
                .expect("an error body trailer"),
        )
        .expect("base64");
    (
        error_type,
        serde_json::from_slice(&body).expect("the error's JSON"),
    )
}

/// The next invocation of the same process is answered as before (buffered).
fn next_is_served(s: &mut Scenario, id: &str) {
    let post = s.answer(Invocation::new(id, json!({ "op": "plain" }).to_string()));
    assert_eq!(post.kind, PostKind::Response);
    assert_eq!(post.header("lambda-runtime-function-response-mode"), None);
    assert_eq!(post.json(), json!({ "ok": true }));
}

#[test]
fn chunks_arrive_as_they_are_written() {
    for lang in [Lang::Lua, Lang::Rhai] {
        let gate = WebServer::http();
        let mut s = streamer("stream_gated", lang);
        let event = json!({ "op": "gated", "gate": gate.url("/gate/1") });
        s.push(
            Invocation::new("g1", event.to_string())
                .header("Lambda-Runtime-Invocation-Id", "inv-g1"),
        );
        s.wait_for("the first chunk", |log| {
            log.chunks.iter().any(|c| c == b"first")
        });
        assert!(
            !s.api.log().chunks.iter().any(|c| c == b"second"),
            "{lang:?}: the second chunk before it was written"
        );
        assert!(s.api.posts().is_empty(), "{lang:?}: the POST ended early");
        gate.release();
        let post = streamed_answer(&mut s, "g1");
        assert_eq!(post.body, b"firstsecond", "{lang:?}");
        assert_eq!(
            post.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(post.header("lambda-runtime-function-error-type"), None);
        // The invocation id of `/next` comes back on the streamed POST too (SPEC 3).
        assert_eq!(post.header("lambda-runtime-invocation-id"), Some("inv-g1"));
        let chunks = s.api.log().chunks;
        assert_eq!(
            chunks,
            [b"first".to_vec(), b"second".to_vec()],
            "{lang:?}: an empty write sends nothing"
        );
        next_is_served(&mut s, "g2");
    }
}

#[test]
fn the_result_is_the_last_chunk_and_options_make_a_prelude() {
    for lang in [Lang::Lua, Lang::Rhai] {
        let mut s = streamer("stream_result", lang);
        // A string result as it is.
        let event =
            json!({ "op": "result", "result": "z", "options": { "content_type": "text/plain" } });
        let post = streamed(&mut s, Invocation::new("r1", event.to_string()));
        assert_eq!(post.body, b"az", "{lang:?}");
        assert_eq!(post.header("content-type"), Some("text/plain"));
        // Another value as JSON.
        let event = json!({ "op": "result", "result": { "n": 1 } });
        let post = streamed(&mut s, Invocation::new("r2", event.to_string()));
        assert_eq!(post.body, br#"a{"n":1}"#, "{lang:?}");
        // An HTTP integration: the prelude, then 8 zero bytes, then the body.
        let event = json!({
            "op": "result",
            "result": "!",
            "options": {
                "status_code": 201,
                "headers": { "x-kind": "demo" },
                "cookies": ["s=1; Secure"],
                "content_type": "text/html",
            },
        });
        let post = streamed(&mut s, Invocation::new("r3", event.to_string()));
        assert_eq!(
            post.header("content-type"),
            Some("application/vnd.awslambda.http-integration-response")
        );
        let split = post
            .body
            .windows(8)
            .position(|w| w == [0; 8])
            .expect("8 zero bytes");
        let prelude: Value = serde_json::from_slice(&post.body[..split]).expect("a JSON prelude");
        assert_eq!(
            prelude,
            json!({
                "statusCode": 201,
                "headers": { "x-kind": "demo", "content-type": "text/html" },
                "cookies": ["s=1; Secure"],
            }),
            "{lang:?}"
        );
        assert_eq!(&post.body[split + 8..], b"a!");
        // Once per invocation.
        let post = streamed(
            &mut s,
            Invocation::new("r4", json!({ "op": "twice" }).to_string()),
        );
        assert!(
            String::from_utf8_lossy(&post.body).contains("may be called once"),
            "{lang:?}: {}",
            String::from_utf8_lossy(&post.body)
        );
        next_is_served(&mut s, "r5");
    }
}

/// An error after streaming began ends the body in trailers: what was written
/// stays, the type and the error's JSON follow, and the process serves on.
#[test]
fn errors_after_streaming_began_are_trailers() {
    for lang in [Lang::Lua, Lang::Rhai] {
        let mut s = streamer("stream_errors", lang);
        let cases = [
            ("error", "Boom", Duration::from_secs(60)),
            ("spin", "Runtime.Timeout", Duration::from_millis(1500)),
            ("memory", "Runtime.OutOfMemory", Duration::from_secs(60)),
            (
                "cap",
                "Function.ResponseSizeTooLarge",
                Duration::from_secs(60),
            ),
        ];
        for (op, expected, deadline) in cases {
            let id = format!("e-{op}");
            let invocation =
                Invocation::new(&id, json!({ "op": op }).to_string()).deadline_in(deadline);
            let post = streamed(&mut s, invocation);
            let (error_type, error) = trailer_error(&post);
            assert_eq!(error_type, expected, "{lang:?} {op}");
            assert_eq!(error["errorType"], expected, "{lang:?} {op}");
            if op == "cap" {
                assert_eq!(
                    post.body.len(),
                    200 << 20,
                    "{lang:?}: the cap is never passed"
                );
            } else {
                assert_eq!(post.body, b"partial", "{lang:?} {op}");
            }
            next_is_served(&mut s, &format!("{id}-next"));
        }
    }
}

/// `lure invoke` writes a streamed body to stdout as it comes; an error after
/// streaming began exits 1 with the error's JSON as the last line of stderr.
#[test]
fn lure_invoke_prints_the_stream_and_its_error() {
    let scratch = Scratch::new("stream_invoke");
    scratch.write("streamer.lua", STREAMER_LUA);
    scratch.write("streamer.rhai", STREAMER_RHAI);
    for lang in [Lang::Lua, Lang::Rhai] {
        let run = |event: Value| {
            let output = support::lure::invoke(
                &scratch.task_root(),
                &lang.file("streamer"),
                event.to_string().as_bytes(),
                None,
            );
            (
                output.status.code(),
                output.stdout,
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        let (code, stdout, _) = run(json!({ "op": "result", "result": "z" }));
        assert_eq!((code, stdout.as_slice()), (Some(0), &b"az"[..]), "{lang:?}");
        let (code, stdout, stderr) = run(json!({ "op": "error" }));
        assert_eq!(
            (code, stdout.as_slice()),
            (Some(1), &b"partial"[..]),
            "{lang:?}"
        );
        let last: Value = serde_json::from_str(stderr.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{lang:?}: {e}: {stderr}"));
        assert_eq!(last["errorType"], "Boom", "{lang:?}");
    }
}
