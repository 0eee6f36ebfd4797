//! The native floor: the least any runtime on lure's transport does per invocation.
//! Blocking `ureq` on one keep-alive connection (as lure), the event parsed into a
//! `serde_json::Value`, the handler's work done in Rust, the result serialized, no
//! async runtime. The bench runs its own executable with [`MARKER`] set (to the
//! handler's name) to get this loop as a separate process, so lure's ratios to it
//! isolate the cost of the scripting side.

use std::process::ExitCode;

use base64::Engine;
use hmac::{KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Set in the environment of the bench executable to make it the native runtime;
/// its value names the handler (`echo`, `stdlib`).
pub const MARKER: &str = "LURE_BENCH_NATIVE_FLOOR";

/// The variable giving the `http` workloads the upstream's URL.
pub const UPSTREAM_URL: &str = "BENCH_UPSTREAM_URL";

/// What the native runtime does with each event.
type Handler = fn(Value) -> Value;

pub fn main() -> ExitCode {
    let handler: Handler = match std::env::var(MARKER).as_deref() {
        Ok("stdlib") => stdlib,
        Ok("http") => http_get,
        Ok("aws") => dynamodb_get_item,
        Ok("cpu") => sha256_chain,
        _ => |event| event,
    };
    match serve_forever(handler) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("native floor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What `benches/handlers/*/stdlib.*` answer, computed with the crates lure uses.
pub fn stdlib(event: Value) -> Value {
    const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let body = text(&event["body"]);
    let mut mac =
        <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(b"bench-secret").expect("any key");
    mac.update(body.as_bytes());
    let query: Vec<String> = event["queryStringParameters"]
        .as_object()
        .map(|params| {
            params
                .iter()
                .map(|(k, v)| {
                    let (k, v) = (
                        utf8_percent_encode(k, NOT_UNRESERVED),
                        utf8_percent_encode(v.as_str().unwrap_or_default(), NOT_UNRESERVED),
                    );
                    format!("{k}={v}")
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "signature": hex::encode(mac.finalize().into_bytes()),
        "digest": base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes())),
        "query": query.join("&"),
        "path": utf8_percent_encode(&text(&event["rawPath"]), NOT_UNRESERVED).to_string(),
        "request_id": event["requestContext"]["requestId"],
    })
}

/// What `benches/handlers/*/cpu.*` answer: a chain of 1,000 SHA-256 digests over the
/// request body, each over the digest before it and the body.
pub fn sha256_chain(event: Value) -> Value {
    const ROUNDS: usize = 1000;
    let body = event["body"].as_str().unwrap_or_default().as_bytes();
    let mut digest = Vec::new();
    for _ in 0..ROUNDS {
        digest = Sha256::new()
            .chain_update(&digest)
            .chain_update(body)
            .finalize()
            .to_vec();
    }
    json!({ "digest": hex::encode(digest) })
}

/// What `benches/handlers/*/http.*` answer: the upstream's status and body size.
pub fn http_answer() -> Value {
    json!({ "status": 200, "length": crate::upstream::BODY.len() })
}

/// One GET to the upstream, with an agent kept for the process (as lure's), its
/// roots the web PKI's and `LURE_EXTRA_CA_CERTS`'s (as lure's when that is set).
fn http_get(_event: Value) -> Value {
    static AGENT: std::sync::OnceLock<(ureq::Agent, String)> = std::sync::OnceLock::new();
    let (agent, url) = AGENT.get_or_init(|| {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Ok(path) = std::env::var("LURE_EXTRA_CA_CERTS") {
            let pem = std::fs::read(path).expect("the CA file");
            let mut certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                    _ => None,
                })
                .collect();
            certs.extend(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned()),
            );
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)));
        }
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .tls_config(tls.build())
                .build(),
        );
        (
            agent,
            std::env::var(UPSTREAM_URL).expect("the upstream's URL"),
        )
    });
    let mut response = agent
        .get(url.as_str())
        .call()
        .expect("the upstream answers");
    let body = response.body_mut().read_to_vec().expect("its body");
    json!({ "status": response.status().as_u16(), "length": body.len() })
}

/// What `benches/handlers/*/aws.*` answer: the item's name.
pub fn aws_answer() -> Value {
    json!({ "name": "coffee" })
}

/// One signed DynamoDB GetItem to the stand-in, as `aws.client("dynamodb")`
/// makes it: the same JSON body and headers, lure's SigV4 (the function's
/// credentials from the environment), an agent kept for the process; the
/// answer's item read from its JSON.
fn dynamodb_get_item(_event: Value) -> Value {
    use lure::sigv4::Credentials;
    static CLIENT: std::sync::OnceLock<(ureq::Agent, String, Credentials)> =
        std::sync::OnceLock::new();
    let (agent, url, credentials) = CLIENT.get_or_init(|| {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .build(),
        );
        let credentials = Credentials {
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: None,
        };
        (agent, format!("{}/", var("AWS_ENDPOINT_URL")), credentials)
    });
    let (body, headers) = signed_get_item(url, credentials);
    let mut request = agent.post(url.as_str());
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let mut response = request.send(&body[..]).expect("the stand-in answers");
    let answer: Value =
        serde_json::from_slice(&response.body_mut().read_to_vec().expect("a body")).expect("JSON");
    json!({ "name": answer["Item"]["name"]["S"] })
}

/// A GetItem's body and its headers, signed now.
fn signed_get_item(
    url: &str,
    credentials: &lure::sigv4::Credentials,
) -> (Vec<u8>, Vec<(String, String)>) {
    use lure::sigv4::{self, Options, Scope, Time};
    let body = serde_json::to_vec(&json!({ "TableName": "bench", "Key": { "id": { "S": "42" } } }))
        .expect("JSON");
    let mut headers = vec![
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.0".to_owned(),
        ),
        (
            "x-amz-target".to_owned(),
            "DynamoDB_20120810.GetItem".to_owned(),
        ),
    ];
    let signed = sigv4::sign(
        &sigv4::Request {
            method: "POST",
            url,
            headers: &headers,
            body: &body,
        },
        credentials,
        &Scope {
            service: "dynamodb",
            region: "us-east-1",
            time: Time::now(),
        },
        &Options::for_service("dynamodb"),
    )
    .expect("a signature");
    headers.extend(signed.headers);
    (body, headers)
}

/// What encoding and signing one GetItem costs, on average over `count`.
pub fn aws_request_cost(count: u32) -> std::time::Duration {
    let credentials = lure::sigv4::Credentials {
        access_key_id: "AKIDBENCH".into(),
        secret_access_key: "bench-secret".into(),
        session_token: None,
    };
    let started = std::time::Instant::now();
    for _ in 0..count {
        std::hint::black_box(signed_get_item("http://127.0.0.1:9000/", &credentials));
    }
    started.elapsed() / count
}

fn serve_forever(handler: Handler) -> Result<std::convert::Infallible, Box<dyn std::error::Error>> {
    // Managed Instances: N loops on threads of their own, as lure's workers.
    let workers: usize = std::env::var("AWS_LAMBDA_MAX_CONCURRENCY")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    for _ in 1..workers {
        std::thread::spawn(move || {
            let Err(e) = serve_loop(handler);
            eprintln!("native floor worker: {e}");
            std::process::exit(1);
        });
    }
    serve_loop(handler)
}

fn serve_loop(handler: Handler) -> Result<std::convert::Infallible, Box<dyn std::error::Error>> {
    let address = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    let base = format!("http://{address}/2018-06-01/runtime/invocation");
    let next = format!("{base}/next");
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build(),
    );
    loop {
        let mut invocation = agent.get(&next).call()?;
        let request_id = invocation
            .headers()
            .get("lambda-runtime-aws-request-id")
            .ok_or("no request id")?
            .to_str()?
            .to_owned();
        let body = invocation
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()?;
        let event: Value = serde_json::from_slice(&body)?;
        let response = serde_json::to_vec(&handler(event))?;
        let mut answer = agent
            .post(format!("{base}/{request_id}/response"))
            .header("Content-Type", "application/json")
            .send(&response[..])?;
        // Read the whole reply: only then does ureq reuse the connection.
        answer.body_mut().read_to_vec()?;
    }
}
