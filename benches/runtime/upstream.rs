//! The service the `http` and `aws` workloads call: loopback HTTP or HTTPS (a
//! certificate from a CA the bench mints), HTTP/1.1 keep-alive, every request
//! answered at once with the same small JSON body (for `aws`, DynamoDB's answer to
//! a GetItem; no signature is checked). std and rustls only: a thread per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The body every request gets.
pub const BODY: &[u8] = br#"{"ok":true,"items":[1,2,3],"name":"upstream"}"#;

/// The body a DynamoDB stand-in answers every request with: a GetItem's item.
pub const ITEM: &[u8] = br#"{"Item":{"id":{"S":"42"},"name":{"S":"coffee"},"price":{"N":"3.5"}}}"#;

/// A running upstream; its threads live as long as the bench.
pub struct Upstream {
    /// `http://127.0.0.1:PORT/item` or `https://...`.
    pub url: String,
    /// For HTTPS: the CA's certificate (PEM), to trust through `LURE_EXTRA_CA_CERTS`.
    pub ca_pem: Option<String>,
}

impl Upstream {
    pub fn http() -> Upstream {
        Self::start(None, BODY)
    }

    /// A DynamoDB stand-in on loopback HTTP (its URL is the endpoint).
    pub fn dynamodb() -> Upstream {
        let mut upstream = Self::start(None, ITEM);
        upstream.url.truncate(upstream.url.len() - "/item".len());
        upstream
    }

    pub fn https() -> Upstream {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("server params")
            .signed_by(&key, &ca)
            .expect("server certificate");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
        let mut upstream = Self::start(Some(Arc::new(config)), BODY);
        upstream.ca_pem = Some(ca.pem());
        upstream
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>, body: &'static [u8]) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        let addr = listener.local_addr().expect("its address");
        let scheme = if tls.is_some() { "https" } else { "http" };
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let tls = tls.clone();
                thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    match tls {
                        None => serve(stream, body),
                        Some(config) => {
                            if let Ok(connection) = rustls::ServerConnection::new(config) {
                                serve(rustls::StreamOwned::new(connection, stream), body);
                            }
                        }
                    }
                });
            }
        });
        Upstream {
            url: format!("{scheme}://{addr}/item"),
            ca_pem: None,
        }
    }
}

/// Answers requests with `body` until the client closes the connection.
fn serve(stream: impl Read + Write, body: &[u8]) {
    let mut reader = BufReader::new(stream);
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(body);
    let mut line = String::new();
    loop {
        // The request head, up to its empty line, then its body (a POST's).
        let mut length = 0;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" || line == "\n" => break,
                Ok(_) => {
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
        }
        if std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink()).is_err() {
            return;
        }
        if reader.get_mut().write_all(&reply).is_err() || reader.get_mut().flush().is_err() {
            return;
        }
    }
}
