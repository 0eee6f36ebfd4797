//! The scripts' HTTP(S) client (SPEC 7.3), language-neutral: `stdlib::http` turns
//! script values into a [`Request`] and a [`Response`] or [`Failure`] back.
//!
//! One ureq agent for the life of the environment, made on the first request (so
//! TLS, its roots and the proxy settings cost nothing to a function that never
//! calls `http`), pools connections across calls and invocations. Redirects are
//! followed here, not by ureq, so that each hop gets its own proxy (by scheme), the
//! method and body rules of fetch, and what is left of the call's time.

mod location;
mod proxy;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ureq::http::{self, Uri};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::deadline;
pub use proxy::Proxies;

/// Redirects followed at most (fetch and curl allow more; SPEC 7.3 says 10).
pub const MAX_REDIRECTS: usize = 10;

/// The variable naming a PEM file of extra root certificates (as Node's
/// `NODE_EXTRA_CA_CERTS`).
pub const EXTRA_CA_CERTS: &str = "LURE_EXTRA_CA_CERTS";

/// A redirect's body is read (so the connection can be reused) up to this size;
/// a larger one is dropped with its connection.
const REDIRECT_BODY_BYTES: u64 = 64 * 1024;

/// One request, as a script asked for it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Absolute, with any query already applied.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Bounds the whole call, redirects included.
    pub timeout: Duration,
    pub follow_redirects: bool,
    pub max_body_bytes: u64,
}

/// What came back: headers by lower-case name in the order they first came, each
/// with its values in order (a repeated header has several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<String>)>,
    pub body: Vec<u8>,
}

/// Why no response came back: the `errorType`s of SPEC 7.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Timeout,
    ConnectError,
    DnsError,
    TlsError,
    BodyTooLarge,
    InvalidUrl,
    TooManyRedirects,
}

impl ErrorKind {
    pub fn error_type(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "Http.Timeout",
            ErrorKind::ConnectError => "Http.ConnectError",
            ErrorKind::DnsError => "Http.DnsError",
            ErrorKind::TlsError => "Http.TlsError",
            ErrorKind::BodyTooLarge => "Http.BodyTooLarge",
            ErrorKind::InvalidUrl => "Http.InvalidUrl",
            ErrorKind::TooManyRedirects => "Http.TooManyRedirects",
        }
    }
}

/// A call that got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A typed error for the script; the message names the method and the URL.
    Http(ErrorKind, String),
    /// The invocation's stop came first: the invocation ends as `Runtime.Timeout`.
    Deadline,
}

/// The agent and what was read from the environment, made on first use.
struct Client {
    agent: ureq::Agent,
    proxies: Proxies,
    /// Why HTTPS cannot be used: `LURE_EXTRA_CA_CERTS` names a file that cannot
    /// be read or holds no certificate.
    tls_problem: Option<String>,
}

fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let (roots, tls_problem) = match std::env::var_os(EXTRA_CA_CERTS) {
            None => (RootCerts::WebPki, None),
            Some(path) => match extra_roots(std::path::Path::new(&path)) {
                Ok(roots) => (roots, None),
                Err(problem) => (RootCerts::WebPki, Some(problem)),
            },
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            // Chosen per request (by scheme, with NO_PROXY), not ureq's one for all.
            .proxy(None)
            .user_agent(concat!("lure/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Client {
            agent: ureq::Agent::with_parts(
                config,
                DefaultConnector::default(),
                NamingResolver::default(),
            ),
            proxies: Proxies::from_env(),
            tls_problem,
        }
    })
}

/// ureq's resolver, with two changes. Its failures are named as such (std
/// reports a name that does not resolve as an `io::Error` like any other, which
/// would read as a connect error). And ureq resolves before it looks in its pool,
/// on a thread of its own when the call has a timeout (every call here): an IP
/// address is taken as it is, and a name's addresses are kept for
/// [`NamingResolver::KEEP`], so a call on a pooled connection costs no lookup.
#[derive(Debug, Default)]
struct NamingResolver {
    inner: DefaultResolver,
    recent: std::sync::Mutex<Vec<(String, Instant, ResolvedSocketAddrs)>>,
}

impl NamingResolver {
    /// How long a name's addresses are used again (a new connection after that
    /// looks the name up again).
    const KEEP: Duration = Duration::from_secs(5);
}

impl Resolver for NamingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or("");
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let ip = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = ip.parse::<std::net::IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(std::net::SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = format!("{host}:{port}");
        let now = Instant::now();
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.retain(|(_, at, _)| now.duration_since(*at) < Self::KEEP);
            if let Some((_, _, addrs)) = recent.iter().find(|(k, _, _)| *k == key) {
                return Ok(addrs.clone());
            }
        }
        let addrs = self
            .inner
            .resolve(uri, config, timeout)
            .map_err(|e| match e {
                ureq::Error::Io(_) => ureq::Error::HostNotFound,
                other => other,
            })?;
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.push((key, now, addrs.clone()));
        Ok(addrs)
    }
}

/// The web PKI roots and the certificates of the PEM file at `path`.
fn extra_roots(path: &std::path::Path) -> Result<RootCerts, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("{EXTRA_CA_CERTS}={shown}: {e}"))?;
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(format!("{EXTRA_CA_CERTS}={shown}: {e}")),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "{EXTRA_CA_CERTS}={shown}: no PEM certificate in the file"
        ));
    }
    certs.extend(
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned()),
    );
    Ok(RootCerts::Specific(Arc::new(certs)))
}

/// Sends `request`, following redirects; reads the body up to its limit.
pub fn send(request: &Request) -> Result<Response, Failure> {
    let started = Instant::now();
    let named = format!("{} {}", request.method, request.url);
    let fail = |kind: ErrorKind, detail: String| Failure::Http(kind, format!("{named}: {detail}"));
    let client = client();

    let mut method = request.method.clone();
    let mut url = request.url.clone();
    let mut body = request.body.clone();
    let mut headers = request.headers.clone();
    let mut redirects = 0;
    loop {
        let uri: Uri = url
            .parse()
            .map_err(|e| fail(ErrorKind::InvalidUrl, format!("not a valid URL ({e})")))?;
        let scheme = uri.scheme_str().unwrap_or("");
        if scheme != "http" && scheme != "https" {
            return Err(fail(
                ErrorKind::InvalidUrl,
                format!("the scheme must be http or https, not {scheme:?}"),
            ));
        }
        let Some(host) = uri.host().map(str::to_owned) else {
            return Err(fail(ErrorKind::InvalidUrl, "the URL has no host".into()));
        };
        if scheme == "https"
            && let Some(problem) = &client.tls_problem
        {
            return Err(fail(ErrorKind::TlsError, problem.clone()));
        }

        // What is left of the call's time, and of the invocation's.
        let call_left = request.timeout.saturating_sub(started.elapsed());
        let (limit, by_deadline) = match deadline::time_left() {
            Some(left) if left <= call_left => (left, true),
            _ => (call_left, false),
        };
        let timed_out = || {
            if by_deadline {
                deadline::expire();
                Failure::Deadline
            } else {
                fail(
                    ErrorKind::Timeout,
                    format!("no response within {} s", seconds(request.timeout)),
                )
            }
        };
        if limit.is_zero() {
            return Err(timed_out());
        }

        let proxy = match client.proxies.for_target(scheme, &host) {
            Some(proxy) => Some(ureq::Proxy::new(proxy).map_err(|e| {
                fail(
                    ErrorKind::InvalidUrl,
                    format!("the proxy {proxy:?} is not usable ({e})"),
                )
            })?),
            None => None,
        };
        let mut builder = http::Request::builder().method(method.as_str()).uri(uri);
        for (name, value) in &headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let call = builder
            .body(body.clone().unwrap_or_default())
            .map_err(|e| fail(ErrorKind::InvalidUrl, format!("not a valid request ({e})")))?;
        let call = client
            .agent
            .configure_request(call)
            .timeout_global(Some(limit))
            .proxy(proxy)
            .build();

        let mut response = client
            .agent
            .run(call)
            .map_err(|e| classify(e, &fail, &timed_out))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        if let (true, true, Some(location)) = (
            request.follow_redirects,
            matches!(status, 301 | 302 | 303 | 307 | 308),
            location,
        ) {
            if redirects == MAX_REDIRECTS {
                return Err(fail(
                    ErrorKind::TooManyRedirects,
                    format!("more than {MAX_REDIRECTS} redirects"),
                ));
            }
            redirects += 1;
            // Read so the connection goes back to the pool (a large one is dropped).
            let _ = response
                .body_mut()
                .with_config()
                .limit(REDIRECT_BODY_BYTES)
                .read_to_vec();
            let next = location::resolve(&url, &location);
            if !same_origin(&url, &next) {
                // As fetch and curl: credentials are for the origin they were given to.
                headers.retain(|(name, _)| {
                    !["authorization", "cookie", "proxy-authorization"]
                        .contains(&name.to_ascii_lowercase().as_str())
                });
            }
            // 303, and 301/302 after a POST, continue as a GET without the body.
            if status == 303 && method != "HEAD" || matches!(status, 301 | 302) && method == "POST"
            {
                method = "GET".into();
                body = None;
                headers.retain(|(name, _)| {
                    !["content-type", "content-length", "transfer-encoding"]
                        .contains(&name.to_ascii_lowercase().as_str())
                });
            }
            url = next;
            continue;
        }

        let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match grouped.iter_mut().find(|(n, _)| n == name.as_str()) {
                Some((_, values)) => values.push(value),
                None => grouped.push((name.as_str().to_owned(), vec![value])),
            }
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(request.max_body_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(limit) => fail(
                    ErrorKind::BodyTooLarge,
                    format!("the response body is over max_body_bytes ({limit})"),
                ),
                other => classify(other, &fail, &timed_out),
            })?;
        return Ok(Response {
            status,
            headers: grouped,
            body,
        });
    }
}

/// A ureq error as the script's error type.
fn classify(
    error: ureq::Error,
    fail: &impl Fn(ErrorKind, String) -> Failure,
    timed_out: &impl Fn() -> Failure,
) -> Failure {
    use std::io::ErrorKind as Io;
    match error {
        ureq::Error::Timeout(_) => timed_out(),
        ureq::Error::HostNotFound => {
            fail(ErrorKind::DnsError, "the host name does not resolve".into())
        }
        ureq::Error::Io(e) if matches!(e.kind(), Io::TimedOut | Io::WouldBlock) => timed_out(),
        ureq::Error::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
            fail(ErrorKind::TlsError, format!("TLS failed: {e}"))
        }
        ureq::Error::Tls(e) => fail(ErrorKind::TlsError, format!("TLS failed: {e}")),
        ureq::Error::Rustls(e) => fail(ErrorKind::TlsError, format!("TLS failed: {e}")),
        ureq::Error::Pem(e) => fail(ErrorKind::TlsError, format!("TLS failed: {e}")),
        ureq::Error::BadUri(e) => fail(ErrorKind::InvalidUrl, format!("not a valid URL ({e})")),
        ureq::Error::Http(e) => fail(ErrorKind::InvalidUrl, format!("not a valid request ({e})")),
        ureq::Error::InvalidProxyUrl => {
            fail(ErrorKind::InvalidUrl, "the proxy URL is not valid".into())
        }
        ureq::Error::Io(e) => fail(
            ErrorKind::ConnectError,
            format!("the connection failed ({e})"),
        ),
        other => fail(
            ErrorKind::ConnectError,
            format!("the connection failed ({other})"),
        ),
    }
}

/// Whether two absolute URLs have the same scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    let origin = |url: &str| {
        url.parse::<Uri>().ok().map(|uri| {
            let scheme = uri.scheme_str().unwrap_or("").to_owned();
            let port = uri
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 });
            (scheme, uri.host().unwrap_or("").to_ascii_lowercase(), port)
        })
    };
    origin(a).is_some() && origin(a) == origin(b)
}

/// `d` in seconds, as a person writes them: `2`, `0.5`.
fn seconds(d: Duration) -> String {
    let text = format!("{:.3}", d.as_secs_f64());
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
