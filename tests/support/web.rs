//! Real HTTP and HTTPS servers for the `http` module's tests, and a CONNECT proxy:
//! certificates are minted by the test (rcgen, a CA of its own), TLS is rustls.
//! Each server counts the connections it accepted and records every request.
//!
//! Routes: `/echo` (the request as JSON: method, path, headers, body),
//! `/status/CODE`, `/redirect/N` (N hops, then `/echo`), `/redirect-code/CODE`
//! (one hop to `/echo` with that status), `/slow/MS`, `/hang` (never answers),
//! `/big/BYTES`, `/json`, `/bad-json`, `/cookies`, `/binary`, and
//! `/repos/rust-lang/rust` as the GitHub API answers it (404 for other repos).
//! `/gate/N` answers once [`WebServer::release`] was called N times (a handler
//! held between two steps until the test has seen the first). For `aws`:
//! `/flaky/N/...` (an AWS JSON service that answers its first N requests 503,
//! then `{"TableNames": ["t"]}`) and `/credentials/KEY/SECRET`
//! (a container credentials endpoint handing out that key; both in hex, as a
//! secret key holds `/` and `+`).

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::http::{self, Request};

/// A certificate authority of the test's own.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA's certificate in PEM, for `LURE_EXTRA_CA_CERTS`.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server configuration with a certificate for 127.0.0.1 and localhost.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
        Arc::new(config)
    }
}

/// What a server shares with its connection threads.
#[derive(Default)]
struct State {
    connections: AtomicUsize,
    requests: Mutex<Vec<Request>>,
    stopped: AtomicBool,
    /// How many times [`WebServer::release`] was called.
    released: AtomicUsize,
}

/// A server on 127.0.0.1; stops (and lets hanging requests go) when dropped.
pub struct WebServer {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<State>,
}

impl WebServer {
    pub fn http() -> WebServer {
        Self::start(None)
    }

    pub fn https(config: Arc<rustls::ServerConfig>) -> WebServer {
        Self::start(Some(config))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> WebServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a web server");
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if shared.stopped.load(Ordering::SeqCst) {
                    return;
                }
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let state = Arc::clone(&shared);
                let tls = tls.clone();
                thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    match tls {
                        None => serve(stream, &state),
                        Some(config) => {
                            let Ok(connection) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(connection, stream), &state);
                        }
                    }
                });
            }
        });
        WebServer {
            base: format!("{scheme}://{addr}"),
            state,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Lets the requests to `/gate/N` with `N` up to the number of calls so far go.
    pub fn release(&self) {
        self.state.released.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.base.rsplit('/').next().unwrap_or(""));
    }
}

/// Serves requests on one connection until the client closes it.
fn serve(stream: impl Read + Write, state: &State) {
    let mut reader = BufReader::new(stream);
    while let Ok(Some(request)) = http::read_request(&mut reader) {
        state.requests.lock().unwrap().push(request.clone());
        let path = request.path.split('?').next().unwrap_or("").to_owned();
        let (status, headers, body) = match route(&request, &path, state) {
            Some(answer) => answer,
            None => return,
        };
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        if http::write_response(reader.get_mut(), status, &headers, &body).is_err() {
            return;
        }
    }
}

type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// The answer for `request`; `None` to hang up without one.
fn route(request: &Request, path: &str, state: &State) -> Option<Answer> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let number = |i: usize| segments.get(i).and_then(|s| s.parse::<u64>().ok());
    let json = vec![("Content-Type", "application/json".to_owned())];
    Some(match segments.first().copied().unwrap_or("") {
        "echo" => {
            let headers: serde_json::Map<String, serde_json::Value> = request
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let body = serde_json::json!({
                "method": request.method,
                "path": request.path,
                "headers": headers,
                "body": String::from_utf8_lossy(&request.body),
            });
            (200, json, body.to_string().into_bytes())
        }
        "status" => (
            number(1).unwrap_or(200) as u16,
            Vec::new(),
            b"status body".to_vec(),
        ),
        "redirect" => {
            let left = number(1).unwrap_or(0);
            let to = if left <= 1 {
                "/echo".to_owned()
            } else {
                format!("/redirect/{}", left - 1)
            };
            (302, vec![("Location", to)], Vec::new())
        }
        "redirect-code" => (
            number(1).unwrap_or(302) as u16,
            vec![("Location", "../echo".to_owned())],
            b"moved".to_vec(),
        ),
        "slow" => {
            wait(Duration::from_millis(number(1).unwrap_or(1000)), state);
            (200, Vec::new(), b"slow".to_vec())
        }
        "gate" => {
            // Held until the test has released this gate (or the server stops).
            let gate = number(1).unwrap_or(1) as usize;
            while state.released.load(Ordering::SeqCst) < gate
                && !state.stopped.load(Ordering::SeqCst)
            {
                thread::sleep(Duration::from_millis(5));
            }
            (200, Vec::new(), b"open".to_vec())
        }
        "hang" => {
            wait(Duration::from_secs(120), state);
            return None;
        }
        "big" => (200, Vec::new(), vec![b'b'; number(1).unwrap_or(0) as usize]),
        "json" => (200, json, br#"{"ok":true,"items":[1,2]}"#.to_vec()),
        "bad-json" => (200, json, b"{not json".to_vec()),
        "cookies" => (
            200,
            vec![
                ("Set-Cookie", "a=1; Path=/".to_owned()),
                ("Set-Cookie", "b=2".to_owned()),
                ("X-Multi", "one".to_owned()),
                ("X-Multi", "two".to_owned()),
            ],
            b"cookies".to_vec(),
        ),
        "binary" => (200, Vec::new(), vec![0xff, 0xfe, 0x00, 0x41]),
        // A stand-in for the GitHub REST API's repository (scripts/github_repo).
        "repos" if path == "/repos/rust-lang/rust" => (
            200,
            json,
            serde_json::json!({
                "id": 724712,
                "full_name": "rust-lang/rust",
                "description": "Empowering everyone to build reliable and efficient software.",
                "stargazers_count": 104000,
                "forks_count": 13500,
                "language": "Rust",
                "html_url": "https://github.com/rust-lang/rust",
                "private": false,
            })
            .to_string()
            .into_bytes(),
        ),
        "repos" => (404, json, br#"{"message":"Not Found"}"#.to_vec()),
        "flaky" => {
            let failures = number(1).unwrap_or(0) as usize;
            let seen = state
                .requests
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.path.starts_with("/flaky/"))
                .count();
            if seen <= failures {
                (
                    503,
                    json,
                    br#"{"__type":"ServiceUnavailable","message":"try again"}"#.to_vec(),
                )
            } else {
                (200, json, br#"{"TableNames":["t"]}"#.to_vec())
            }
        }
        "credentials" => {
            let unhex = |i: usize| {
                let bytes = hex::decode(segments.get(i).copied().unwrap_or("")).unwrap_or_default();
                String::from_utf8(bytes).unwrap_or_default()
            };
            (
                200,
                json,
                serde_json::json!({
                    "AccessKeyId": unhex(1),
                    "SecretAccessKey": unhex(2),
                    "Expiration": "2099-01-01T00:00:00Z",
                })
                .to_string()
                .into_bytes(),
            )
        }
        _ => (404, Vec::new(), b"no such route".to_vec()),
    })
}

/// Sleeps `total`, or until the server stops.
fn wait(total: Duration, state: &State) {
    let end = Instant::now() + total;
    while Instant::now() < end && !state.stopped.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(20));
    }
}

/// A forward proxy that tunnels `CONNECT host:port` (what ureq sends for both
/// schemes), counting the tunnels it opened and to where.
pub struct ConnectProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    targets: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&targets);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(client) = stream else { continue };
                let seen = Arc::clone(&seen);
                thread::spawn(move || tunnel(client, &seen));
            }
        });
        ConnectProxy {
            url: format!("http://{addr}"),
            targets,
        }
    }

    /// The `host:port` of every tunnel asked for.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client);
    let Ok(Some(request)) = http::read_request(&mut reader) else {
        return;
    };
    let client = reader.into_inner();
    let mut client_w = client.try_clone().expect("clone the client stream");
    if request.method != "CONNECT" {
        let _ = http::write_response(&mut client_w, 405, &[], b"CONNECT only");
        return;
    }
    seen.lock().unwrap().push(request.path.clone());
    let Ok(target) = TcpStream::connect(&request.path) else {
        let _ = http::write_response(&mut client_w, 502, &[], b"");
        return;
    };
    let _ = client_w.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n");
    let mut target_w = target.try_clone().expect("clone the target stream");
    let mut client_r = client;
    let mut target_r = target;
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut target_w);
        let _ = target_w.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut target_r, &mut client_w);
    let _ = client_w.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}
