//! Signature Version 4, as AWS specifies it ("Create a signed AWS API request"),
//! S3's variant included: signed headers ([`sign`]) and presigned URLs
//! ([`presign`]). Checked against AWS's own signing test suite
//! (`tests/data/aws-signing-test-suite`, every v4 case) and S3's documented examples.
//!
//! Written on the SHA-256 and HMAC code lure already links rather than on the
//! `aws-sigv4` crate: that crate declares Rust 1.94.1 (lure: 1.88), brings 39
//! more crates (tokio and tracing among them) and 145 KB more executable, for the
//! same signatures (README, "Calling AWS").

use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::stdlib::{crypto, time, url};

/// The algorithm's name, in every signature.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The payload hash of a body that is not signed (S3).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The longest a presigned URL may last: 7 days.
pub const MAX_EXPIRES: u64 = 604_800;

/// Headers never signed: proxies and clients change them (as the SDKs leave them out).
const UNSIGNED_HEADERS: [&str; 3] = ["user-agent", "expect", "x-amzn-trace-id"];

/// An access key, with its session token when it is temporary.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    /// Never the secret or the token (credentials are never logged).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What is signed. `url` is taken as given, already percent-encoded; `headers`
/// are the ones the request will carry (any case; a name given twice is one
/// header with the values joined by `,`).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// When a signature is made, to the second: SigV4's `20150830T123600Z`, made
/// once (a signature writes it three times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// `20150830T123600Z`, ASCII.
    text: [u8; 16],
}

impl Time {
    pub fn now() -> Self {
        Self::at(time::now_ms())
    }

    /// The second holding `ms` since the epoch.
    fn at(ms: i64) -> Self {
        // `2015-08-30T12:36:00.000Z`; years 0-9999 (now is among them).
        let iso = time::iso8601(ms).unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into());
        let b = iso.as_bytes();
        let mut text = *b"00000000T000000Z";
        for (to, from) in [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 5),
            (5, 6),
            (6, 8),
            (7, 9),
        ]
        .into_iter()
        .chain([(9, 11), (10, 12), (11, 14), (12, 15), (13, 17), (14, 18)])
        {
            text[to] = b[from];
        }
        Time { text }
    }

    /// SigV4's form, `20150830T123600Z`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let b = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !digits(0..8) || !digits(9..15) {
            return Err(format!(
                "{text:?} is not a time in SigV4's form (20150830T123600Z)"
            ));
        }
        let iso = format!(
            "{}-{}-{}T{}:{}:{}Z",
            &text[0..4],
            &text[4..6],
            &text[6..8],
            &text[9..11],
            &text[11..13],
            &text[13..15]
        );
        let ms = time::parse_iso8601(&iso).map_err(|e| format!("{text:?}: {e}"))?;
        Ok(Self::at(ms))
    }

    /// `20150830T123600Z`.
    pub fn amz_date(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// `20150830`: the credential scope's date.
    fn date(&self) -> &str {
        &self.amz_date()[..8]
    }
}

/// Who signs, for what, and when: the credential scope.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub service: &'a str,
    pub region: &'a str,
    pub time: Time,
}

impl Scope<'_> {
    /// `20150830/us-east-1/service/aws4_request`.
    fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.time.date(),
            self.region,
            self.service
        )
    }
}

/// The choices SigV4 leaves to each service; [`Options::for_service`] gives the
/// defaults (S3's differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Remove `.` and `..` segments and empty ones from the path before signing.
    pub normalize_path: bool,
    /// Percent-encode the (already encoded) path once more.
    pub double_encode: bool,
    /// Add and sign `x-amz-content-sha256` (signed headers only).
    pub sign_body: bool,
    /// With `sign_body`: the payload hash is `UNSIGNED-PAYLOAD`.
    pub unsigned_payload: bool,
    /// Sign `x-amz-security-token`; when false it is added after signing.
    pub sign_session_token: bool,
}

impl Options {
    pub fn for_service(service: &str) -> Self {
        let s3 = service == "s3";
        Options {
            normalize_path: !s3,
            double_encode: !s3,
            sign_body: s3,
            unsigned_payload: false,
            sign_session_token: true,
        }
    }
}

/// A signature and the steps that made it (the test suite checks each step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The headers SigV4 adds, names in lower case: `authorization`,
    /// `x-amz-date`, `x-amz-security-token` when there is a token,
    /// `x-amz-content-sha256` when the body is signed.
    pub headers: Vec<(String, String)>,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
}

/// A presigned URL and the steps that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub url: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
}

/// Signs `request` with headers (`Authorization`).
pub fn sign(
    request: &Request,
    credentials: &Credentials,
    scope: &Scope,
    options: &Options,
) -> Result<Signed, String> {
    let target = Target::parse(request.url)?;
    let amz_date = scope.time.amz_date();
    let payload_hash = if options.sign_body && options.unsigned_payload {
        UNSIGNED_PAYLOAD.to_owned()
    } else {
        hex::encode(Sha256::digest(request.body))
    };
    let mut added = vec![("x-amz-date".to_owned(), amz_date.to_owned())];
    if options.sign_body {
        added.push(("x-amz-content-sha256".to_owned(), payload_hash.clone()));
    }
    let token = credentials.session_token.as_ref();
    if let Some(token) = token.filter(|_| options.sign_session_token) {
        added.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    let headers = canonical_headers(request.headers, &target, &added);
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_path(target.path, options),
        canonical_query(target.query, &[]),
        headers.canonical,
        headers.signed,
        payload_hash
    );
    let string_to_sign = string_to_sign(&canonical_request, scope, amz_date);
    let signature = signature(&credentials.secret_access_key, scope, &string_to_sign);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
        credentials.access_key_id,
        scope.credential_scope(),
        headers.signed
    );
    let mut out = vec![("authorization".to_owned(), authorization)];
    out.extend(added);
    if let Some(token) = token.filter(|_| !options.sign_session_token) {
        out.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    Ok(Signed {
        headers: out,
        canonical_request,
        string_to_sign,
        signature,
    })
}

/// A URL carrying its signature in its query, valid `expires` seconds (at most
/// [`MAX_EXPIRES`]). The payload hash is `UNSIGNED-PAYLOAD` for S3 and the body's
/// SHA-256 otherwise; only `normalize_path`, `double_encode` and
/// `sign_session_token` of `options` apply.
pub fn presign(
    request: &Request,
    credentials: &Credentials,
    scope: &Scope,
    options: &Options,
    expires: u64,
) -> Result<Presigned, String> {
    if expires == 0 || expires > MAX_EXPIRES {
        return Err(format!(
            "expires must be from 1 to {MAX_EXPIRES} seconds (7 days), not {expires}"
        ));
    }
    let target = Target::parse(request.url)?;
    let amz_date = scope.time.amz_date();
    let headers = canonical_headers(request.headers, &target, &[]);
    let mut auth = vec![
        ("X-Amz-Algorithm", ALGORITHM.to_owned()),
        (
            "X-Amz-Credential",
            format!("{}/{}", credentials.access_key_id, scope.credential_scope()),
        ),
        ("X-Amz-Date", amz_date.to_owned()),
        ("X-Amz-Expires", expires.to_string()),
        ("X-Amz-SignedHeaders", headers.signed.clone()),
    ];
    let token = credentials.session_token.as_ref();
    if let Some(token) = token.filter(|_| options.sign_session_token) {
        auth.push(("X-Amz-Security-Token", token.clone()));
    }
    let payload_hash = if scope.service == "s3" {
        UNSIGNED_PAYLOAD.to_owned()
    } else {
        hex::encode(Sha256::digest(request.body))
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_path(target.path, options),
        canonical_query(target.query, &auth),
        headers.canonical,
        headers.signed,
        payload_hash
    );
    let string_to_sign = string_to_sign(&canonical_request, scope, amz_date);
    let signature = signature(&credentials.secret_access_key, scope, &string_to_sign);
    if let Some(token) = token.filter(|_| !options.sign_session_token) {
        auth.push(("X-Amz-Security-Token", token.clone()));
    }
    auth.push(("X-Amz-Signature", signature.clone()));
    let mut url = request.url[..target.end].to_owned();
    url.push(if target.query.is_some() { '&' } else { '?' });
    let params: Vec<String> = auth
        .iter()
        .map(|(k, v)| format!("{k}={}", url::encode(v.as_bytes())))
        .collect();
    url.push_str(&params.join("&"));
    Ok(Presigned {
        url,
        canonical_request,
        string_to_sign,
        signature,
    })
}

/// The parts of the URL a signature covers.
struct Target<'a> {
    /// `host` or `host:port` (a port only when it is not the scheme's default).
    host: String,
    path: &'a str,
    query: Option<&'a str>,
    /// Where the URL ends, without its fragment.
    end: usize,
}

impl<'a> Target<'a> {
    /// Splits `url` (`scheme://host[:port]/path?query#fragment`). Characters a
    /// URL should have encoded (a space) are taken as they are and encoded in
    /// the canonical request, as the test suite's requests want.
    fn parse(url: &'a str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} is not an absolute http(s) URL"))?;
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "https" => 443,
            "http" => 80,
            other => return Err(format!("{url:?}: {other:?} is not http or https")),
        };
        let end = url.find('#').unwrap_or(url.len());
        let rest = &rest[..end - (scheme.len() + 3)];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_query) = rest.split_at(authority_end);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        let (host, port) = match host_port.rsplit_once(':') {
            // `[::1]` is a host without a port.
            Some((host, port)) if !host_port.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("{url:?}: {port:?} is not a port"))?;
                (host, Some(port))
            }
            _ => (host_port, None),
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let host = match port {
            Some(port) if port != default_port => format!("{}:{port}", host.to_ascii_lowercase()),
            _ => host.to_ascii_lowercase(),
        };
        let (path, query) = match path_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_query, None),
        };
        Ok(Target {
            host,
            path,
            query,
            end,
        })
    }
}

/// The canonical URI: the path, normalized unless S3, encoded again unless S3
/// (with `double_encode` off, only what is not already encoded is encoded).
fn canonical_path(path: &str, options: &Options) -> String {
    let normalized;
    let path = if options.normalize_path {
        normalized = normalize(path);
        normalized.as_str()
    } else if path.is_empty() {
        "/"
    } else {
        path
    };
    let mut out = String::with_capacity(path.len());
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let escape_kept = !options.double_encode
            && b == b'%'
            && bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if b == b'/' || escape_kept || is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path` without `.` and `..` segments and empty ones (`//a/./b/../c/` → `/a/c/`).
fn normalize(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let ends_in_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    let mut out = format!("/{}", segments.join("/"));
    if ends_in_slash && !segments.is_empty() {
        out.push('/');
    }
    out
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The canonical query string: every parameter of `query` and `extra`, each name
/// and value decoded and encoded again as SigV4 encodes (spaces `%20`), sorted.
fn canonical_query(query: Option<&str>, extra: &[(&str, String)]) -> String {
    let strict = |text: &[u8]| {
        let decoded: Vec<u8> = percent_encoding::percent_decode(text).collect();
        url::encode(&decoded)
    };
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (strict(name.as_bytes()), strict(value.as_bytes()))
        })
        .chain(
            extra
                .iter()
                .map(|(name, value)| (url::encode(name.as_bytes()), url::encode(value.as_bytes()))),
        )
        .collect();
    pairs.sort();
    let pieces: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pieces.join("&")
}

/// The canonical headers block and the signed headers list.
struct Headers {
    canonical: String,
    signed: String,
}

/// `given` (less the ones never signed) with `host` from the URL unless given,
/// and `added`: names in lower case, values trimmed with inner runs of white
/// space made one space, a name given twice as one header with the values
/// joined by `,`, sorted by name.
fn canonical_headers(
    given: &[(String, String)],
    target: &Target,
    added: &[(String, String)],
) -> Headers {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(given.len() + added.len() + 1);
    let mut push = |name: String, value: &str| {
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            None => headers.push((name, value)),
        }
    };
    for (name, value) in given {
        let name = name.to_ascii_lowercase();
        // What SigV4 sets itself replaces what was given.
        let replaced = name == "authorization" || added.iter().any(|(n, _)| *n == name);
        if !replaced && !UNSIGNED_HEADERS.contains(&name.as_str()) {
            push(name, value);
        }
    }
    if !given.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        push("host".to_owned(), &target.host);
    }
    for (name, value) in added {
        push(name.clone(), value);
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut canonical = String::new();
    for (name, value) in &headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
    }
    let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    Headers {
        canonical,
        signed: signed.join(";"),
    }
}

fn string_to_sign(canonical_request: &str, scope: &Scope, amz_date: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.credential_scope(),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The signature: the string to sign's HMAC under the key derived from the
/// secret, the date, the region and the service.
fn signature(secret: &str, scope: &Scope, string_to_sign: &str) -> String {
    let key = signing_key(secret, scope);
    hex::encode(crypto::hmac::<Sha256>(&key, string_to_sign.as_bytes()))
}

/// The key derived from the secret for the scope's day, region and service
/// (four HMACs), kept for the next signature of the same scope, as the Java and
/// .NET SDKs keep it: a client signs every call of a day with one key.
fn signing_key(secret: &str, scope: &Scope) -> Vec<u8> {
    /// The last key made, and what it was made from (`secret`, then the scope).
    static LAST: Mutex<Option<(String, Vec<u8>)>> = Mutex::new(None);
    let made_from = format!("{secret}\n{}", scope.credential_scope());
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((from, key)) = last.as_ref()
        && *from == made_from
    {
        return key.clone();
    }
    let key = [
        scope.time.date(),
        scope.region,
        scope.service,
        "aws4_request",
    ]
    .iter()
    .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
        crypto::hmac::<Sha256>(&key, part.as_bytes())
    });
    *last = Some((made_from, key.clone()));
    key
}

#[cfg(test)]
mod tests;
