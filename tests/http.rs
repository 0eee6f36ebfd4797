//! `http` (SPEC 7.3) against real servers the tests start: HTTPS with
//! certificates minted by the test (trusted through `LURE_EXTRA_CA_CERTS`), plain
//! HTTP, a CONNECT proxy. Every case runs in both languages through the real
//! runtime loop; the two must answer alike.

mod support;

use serde_json::{Value, json};
use support::web::{Ca, ConnectProxy, WebServer};
use support::*;

/// Sends `event.op(event.url [, event.body], event.options)`; answers the
/// response (`json` decoded when `event.decode`), or `{error, message}`.
const CALLER_LUA: &str = r#"
function main(event)
  local f = http[event.op]
  local ok, res
  if event.body ~= nil then
    ok, res = pcall(f, event.url, event.body, event.options)
  else
    ok, res = pcall(f, event.url, event.options)
  end
  if not ok then
    if type(res) == "table" then
      return { error = res.errorType, message = res.errorMessage }
    end
    return { error = "script", message = tostring(res) }
  end
  local out = { status = res.status, headers = res.headers, body = res.body }
  if event.decode then
    local decoded, value = pcall(res.json, res)
    out.json = decoded and value or { failed = tostring(value) }
  end
  return out
end
"#;

const CALLER_RHAI: &str = r#"
fn send(event) {
    let options = if event.options == () { #{} } else { event.options };
    switch event.op {
        "get" => http::get(event.url, options),
        "delete" => http::delete(event.url, options),
        "request" => http::request(event.url, options),
        "post" => http::post(event.url, event.body, options),
        "put" => http::put(event.url, event.body, options),
        "patch" => http::patch(event.url, event.body, options),
    }
}

fn main(event, context) {
    try {
        let res = send(event);
        let out = #{ status: res.status, headers: res.headers, body: res.body };
        if event.decode == true {
            try { out.json = res.json(); } catch (e) { out.json = #{ failed: `${e}` }; }
        }
        return out;
    } catch (e) {
        if type_of(e) == "map" {
            return #{ error: e.errorType, message: e.errorMessage };
        }
        return #{ error: "script", message: `${e}` };
    }
}
"#;

/// lure running the caller in `lang`, trusting `ca`, with `env` on top.
fn caller(name: &str, lang: Lang, ca: &Ca, env: &[(&str, &str)]) -> Scenario {
    let mut s = Scenario::new(&format!("{name}_{lang:?}"));
    let (file, script) = match lang {
        Lang::Lua => (lang.file("caller"), CALLER_LUA),
        Lang::Rhai => (lang.file("caller"), CALLER_RHAI),
    };
    s.write(&file, script);
    let ca_path = s.scratch.write("ca.pem", &ca.pem());
    let ca_path = ca_path.to_string_lossy().into_owned();
    let mut all = vec![("LURE_EXTRA_CA_CERTS", ca_path.as_str())];
    all.extend_from_slice(env);
    s.start_with_env(&file, &all);
    s
}

/// One invocation with `event`: its response body as JSON.
fn call(s: &mut Scenario, id: &str, event: Value) -> Value {
    let post = s.answer(Invocation::new(id, event.to_string()));
    if post.kind != PostKind::Response {
        s.fail(&format!("{id}: expected a response, got {}", post.text()));
    }
    post.json()
}

/// Runs `check` for each language; both must see the same answers.
fn both(check: impl Fn(Lang) -> Vec<Value>) {
    let lua = check(Lang::Lua);
    let rhai = check(Lang::Rhai);
    assert_eq!(lua, rhai, "Lua and Rhai answer alike");
}

fn echo(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().expect("a body")).expect("echo JSON")
}

#[test]
fn requests_carry_methods_queries_headers_and_bodies() {
    let ca = Ca::new("lure test CA");
    let server = WebServer::https(ca.server_config());
    both(|lang| {
        let mut s = caller("requests", lang, &ca, &[]);
        let get = call(
            &mut s,
            "get",
            json!({
                "op": "get",
                "url": server.url("/echo?x=0"),
                "options": {"query": {"b": "x y", "a": [1, 2]}, "headers": {"X-Test": "yes"}},
            }),
        );
        assert_eq!(get["status"], 200, "{get}");
        assert_eq!(get["headers"]["content-type"], "application/json");
        let seen = echo(&get);
        assert_eq!(seen["method"], "GET");
        assert_eq!(seen["path"], "/echo?x=0&a=1&a=2&b=x%20y");
        assert_eq!(seen["headers"]["x-test"], "yes");
        assert_eq!(seen["headers"]["user-agent"], "lure/0.1.0");

        let post = call(
            &mut s,
            "post-json",
            json!({"op": "request", "url": server.url("/echo"),
                   "options": {"method": "post", "json": {"n": 1, "list": [true]}}}),
        );
        let seen = echo(&post);
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["body"], r#"{"list":[true],"n":1}"#);
        assert_eq!(seen["headers"]["content-type"], "application/json");

        let put = call(
            &mut s,
            "put",
            json!({"op": "put", "url": server.url("/echo"), "body": "raw text",
                   "options": {"headers": {"content-type": "text/plain"}}}),
        );
        let seen = echo(&put);
        assert_eq!(seen["method"], "PUT");
        assert_eq!(seen["body"], "raw text");
        assert_eq!(seen["headers"]["content-type"], "text/plain");

        let json_body = call(
            &mut s,
            "json",
            json!({"op": "get", "url": server.url("/json"), "decode": true}),
        );
        assert_eq!(json_body["json"], json!({"ok": true, "items": [1, 2]}));
        let bad = call(
            &mut s,
            "bad-json",
            json!({"op": "get", "url": server.url("/bad-json"), "decode": true}),
        );
        assert!(
            bad["json"]["failed"]
                .as_str()
                .unwrap()
                .contains("key must be a string"),
            "{bad}"
        );

        let cookies = call(
            &mut s,
            "cookies",
            json!({"op": "get", "url": server.url("/cookies")}),
        );
        assert_eq!(
            cookies["headers"]["set-cookie"],
            json!(["a=1; Path=/", "b=2"])
        );
        assert_eq!(cookies["headers"]["x-multi"], "one, two");
        let deleted = call(
            &mut s,
            "delete",
            json!({"op": "delete", "url": server.url("/echo")}),
        );
        assert_eq!(echo(&deleted)["method"], "DELETE");
        vec![
            echo(&get),
            echo(&post),
            json_body["json"].clone(),
            cookies["headers"]["set-cookie"].clone(),
        ]
    });
}

#[test]
fn statuses_are_responses_and_redirects_follow_fetchs_rules() {
    let ca = Ca::new("lure test CA");
    let server = WebServer::https(ca.server_config());
    both(|lang| {
        let mut s = caller("redirects", lang, &ca, &[]);
        let mut answers = Vec::new();
        for code in [404, 500, 503] {
            let answer = call(
                &mut s,
                &format!("status-{code}"),
                json!({"op": "get", "url": server.url(&format!("/status/{code}"))}),
            );
            assert_eq!(answer["status"], code, "{answer}");
            assert_eq!(answer["body"], "status body");
            answers.push(answer["status"].clone());
        }

        let hops = call(
            &mut s,
            "hops",
            json!({"op": "get", "url": server.url("/redirect/3")}),
        );
        assert_eq!(hops["status"], 200);
        assert_eq!(echo(&hops)["path"], "/echo");

        // 303 (and 301/302 after a POST) continue as a GET; 307/308 keep both.
        for (code, method, body) in [
            (303, "GET", ""),
            (302, "GET", ""),
            (307, "POST", "payload"),
            (308, "POST", "payload"),
        ] {
            let answer = call(
                &mut s,
                &format!("code-{code}"),
                json!({"op": "post", "url": server.url(&format!("/redirect-code/{code}")), "body": "payload"}),
            );
            let seen = echo(&answer);
            assert_eq!(
                (seen["method"].as_str(), seen["body"].as_str()),
                (Some(method), Some(body)),
                "{code}"
            );
        }

        let stay = call(
            &mut s,
            "no-follow",
            json!({"op": "get", "url": server.url("/redirect/1"), "options": {"follow_redirects": false}}),
        );
        assert_eq!(stay["status"], 302);
        assert_eq!(stay["headers"]["location"], "/echo");

        let too_many = call(
            &mut s,
            "too-many",
            json!({"op": "get", "url": server.url("/redirect/11")}),
        );
        assert_eq!(too_many["error"], "Http.TooManyRedirects", "{too_many}");
        assert!(
            too_many["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("GET {}/redirect/11", server.base))
        );
        answers.push(too_many);
        answers
    });
}

#[test]
fn failures_are_typed_errors_a_script_can_catch() {
    let ca = Ca::new("lure test CA");
    let other = Ca::new("a CA nobody trusts");
    let trusted = WebServer::https(ca.server_config());
    let untrusted = WebServer::https(other.server_config());
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    both(|lang| {
        let mut s = caller("failures", lang, &ca, &[]);
        let mut answers = Vec::new();
        let cases = [
            (
                "untrusted",
                json!({"op": "get", "url": untrusted.url("/echo")}),
                "Http.TlsError",
            ),
            (
                "closed",
                json!({"op": "get", "url": format!("http://{closed}/")}),
                "Http.ConnectError",
            ),
            (
                "dns",
                json!({"op": "get", "url": "http://no-such-host.invalid/"}),
                "Http.DnsError",
            ),
            (
                "scheme",
                json!({"op": "get", "url": "ftp://example.com/"}),
                "Http.InvalidUrl",
            ),
            (
                "garbage",
                json!({"op": "get", "url": "http://exa mple/"}),
                "Http.InvalidUrl",
            ),
            (
                "slow",
                json!({"op": "get", "url": trusted.url("/slow/5000"), "options": {"timeout": 0.3}}),
                "Http.Timeout",
            ),
            (
                "big",
                json!({"op": "get", "url": trusted.url("/big/100000"), "options": {"max_body_bytes": 1000}}),
                "Http.BodyTooLarge",
            ),
        ];
        for (id, event, error_type) in cases {
            let answer = call(&mut s, id, event);
            assert_eq!(answer["error"], error_type, "{id}: {answer}");
            answers.push(answer["error"].clone());
        }
        // The same host answers after all that: the process and its pool are fine.
        let fine = call(
            &mut s,
            "fine",
            json!({"op": "get", "url": trusted.url("/json")}),
        );
        assert_eq!(fine["status"], 200);
        answers
    });
}

#[test]
fn a_call_blocked_at_the_deadline_is_runtime_timeout_and_the_next_is_served() {
    let ca = Ca::new("lure test CA");
    let server = WebServer::https(ca.server_config());
    both(|lang| {
        let mut s = caller("deadline", lang, &ca, &[]);
        let deadline = epoch_ms() + 2000;
        let hang = Invocation::new(
            "hang",
            json!({"op": "get", "url": server.url("/hang")}).to_string(),
        )
        .deadline_ms(deadline);
        let post = s.answer(hang);
        assert_eq!(post.kind, PostKind::Error, "{}", post.text());
        assert_eq!(post.json()["errorType"], "Runtime.Timeout");
        // An upper bound: only a late stop fails it, never a slow machine on time.
        assert!(post.received_ms < deadline, "answered after the deadline");
        let next = call(
            &mut s,
            "next",
            json!({"op": "get", "url": server.url("/json")}),
        );
        assert_eq!(next["status"], 200);
        vec![post.json()["errorType"].clone()]
    });
}

#[test]
fn connections_are_reused_across_calls_and_invocations() {
    let ca = Ca::new("lure test CA");
    both(|lang| {
        let server = WebServer::https(ca.server_config());
        let mut s = caller("reuse", lang, &ca, &[]);
        for id in ["first", "second", "third"] {
            let answer = call(&mut s, id, json!({"op": "get", "url": server.url("/json")}));
            assert_eq!(answer["status"], 200);
        }
        assert_eq!(server.requests().len(), 3);
        assert_eq!(
            server.connections(),
            1,
            "one TLS connection for three invocations"
        );
        vec![json!(server.connections())]
    });
}

#[test]
fn proxy_variables_route_scripts_calls_as_curl_reads_them() {
    let ca = Ca::new("lure test CA");
    let server = WebServer::https(ca.server_config());
    let plain = WebServer::http();
    let proxy = ConnectProxy::start();
    both(|lang| {
        let before = proxy.targets().len();
        let mut s = caller(
            "proxy",
            lang,
            &ca,
            &[
                ("HTTPS_PROXY", proxy.url.as_str()),
                ("NO_PROXY", "localhost"),
            ],
        );
        let through = call(
            &mut s,
            "https",
            json!({"op": "get", "url": server.url("/json")}),
        );
        assert_eq!(through["status"], 200, "{through}");
        // HTTP_PROXY is not set: plain HTTP goes direct; NO_PROXY names localhost.
        let direct = call(
            &mut s,
            "http",
            json!({"op": "get", "url": plain.url("/json")}),
        );
        assert_eq!(direct["status"], 200, "{direct}");
        let port = server.base.rsplit(':').next().unwrap();
        let exempt = call(
            &mut s,
            "exempt",
            json!({"op": "get", "url": format!("https://localhost:{port}/json")}),
        );
        assert_eq!(exempt["status"], 200, "{exempt}");
        let targets = proxy.targets()[before..].to_vec();
        assert_eq!(
            targets,
            vec![server.base.trim_start_matches("https://").to_owned()]
        );
        targets.into_iter().map(Value::from).collect()
    });
}

#[test]
fn bad_arguments_name_the_function_and_the_option() {
    let ca = Ca::new("lure test CA");
    let server = WebServer::http();
    let mut answers = Vec::new();
    for lang in [Lang::Lua, Lang::Rhai] {
        let mut s = caller("arguments", lang, &ca, &[]);
        let answer = call(
            &mut s,
            "typo",
            json!({"op": "get", "url": server.url("/json"), "options": {"header": {}}}),
        );
        assert_eq!(answer["error"], "script", "{lang:?}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains("argument 2 has an unknown option \"header\""),
            "{message}"
        );
        let separator = if lang == Lang::Lua { "." } else { "::" };
        assert!(
            message.contains(&format!("http{separator}get")),
            "{message}"
        );
        answers.push(message.to_owned());
    }
}
