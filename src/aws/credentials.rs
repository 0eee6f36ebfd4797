//! The function's credentials (SPEC 7.4), first found wins: the environment
//! (what Lambda sets), the container credentials endpoint, the shared
//! credentials file. Never the EC2 instance metadata service. Read on first use
//! and kept until they expire.

use std::sync::Mutex;
use std::time::Duration;

use super::sigv4::Credentials;
use super::var;
use crate::http;
use crate::stdlib::time;

/// Credentials are fetched again this long before they expire (botocore's
/// mandatory refresh is 10 minutes; the endpoint hands out hours).
const REFRESH_BEFORE_MS: i64 = 5 * 60 * 1000;

/// The ECS task and EKS Pod Identity agents' addresses, which the SDKs allow
/// over plain HTTP besides loopback.
const CONTAINER_HOSTS: [&str; 3] = ["169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"];

/// Credentials and when they stop working (ms since the epoch; `None`: never).
#[derive(Clone)]
struct Cached {
    credentials: Credentials,
    expires_ms: Option<i64>,
}

static CACHE: Mutex<Option<Cached>> = Mutex::new(None);

/// The function's credentials, from the cache while they last. The error says
/// where lure looked.
pub fn current() -> Result<Credentials, String> {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let now = time::now_ms();
    if let Some(cached) = cache.as_ref()
        && cached
            .expires_ms
            .is_none_or(|t| t - REFRESH_BEFORE_MS > now)
    {
        return Ok(cached.credentials.clone());
    }
    let found = resolve()?;
    let credentials = found.credentials.clone();
    *cache = Some(found);
    Ok(credentials)
}

fn resolve() -> Result<Cached, String> {
    if let Some(credentials) = from_environment() {
        return Ok(Cached {
            credentials,
            expires_ms: None,
        });
    }
    if let Some(url) = container_url()? {
        return from_container(&url);
    }
    if let Some(credentials) = from_shared_file()? {
        return Ok(Cached {
            credentials,
            expires_ms: None,
        });
    }
    Err(
        "no AWS credentials: none in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, no \
         container endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI), no profile in the \
         shared credentials file"
            .into(),
    )
}

fn from_environment() -> Option<Credentials> {
    Some(Credentials {
        access_key_id: var("AWS_ACCESS_KEY_ID")?,
        secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
        session_token: var("AWS_SESSION_TOKEN"),
    })
}

/// The container endpoint's URL, when one is set: `..._FULL_URI` (HTTPS, or
/// HTTP to loopback or the container agents' addresses), or ECS's `..._RELATIVE_URI`.
fn container_url() -> Result<Option<String>, String> {
    if let Some(relative) = var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        return Ok(Some(format!("http://169.254.170.2{relative}")));
    }
    let Some(full) = var("AWS_CONTAINER_CREDENTIALS_FULL_URI") else {
        return Ok(None);
    };
    let parts = crate::stdlib::url::parse(&full)
        .map_err(|e| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI {e}"))?;
    let host = parts.host.unwrap_or("");
    let allowed = match parts.scheme.as_deref() {
        Some("https") => true,
        Some("http") => {
            host == "localhost"
                || host.starts_with("127.")
                || host == "::1"
                || CONTAINER_HOSTS.contains(&host)
                || CONTAINER_HOSTS.contains(&format!("[{host}]").as_str())
        }
        _ => false,
    };
    if !allowed {
        return Err(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI={full} must be https, or http to a loopback address"
        ));
    }
    Ok(Some(full))
}

fn from_container(url: &str) -> Result<Cached, String> {
    let token = match var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .map_err(|e| format!("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={path}: {e}"))?
                .trim()
                .to_owned(),
        ),
        None => var("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
    if let Some(token) = token {
        headers.push(("authorization".to_owned(), token));
    }
    let request = http::Request {
        method: "GET".into(),
        url: url.to_owned(),
        headers,
        body: None,
        timeout: Duration::from_secs(5),
        follow_redirects: false,
        max_body_bytes: 64 * 1024,
    };
    let fail = |detail: String| format!("the container credentials endpoint {url}: {detail}");
    let response = http::send(&request).map_err(|failure| match failure {
        http::Failure::Http(_, message) => fail(message),
        http::Failure::Deadline => fail("the invocation's deadline came first".into()),
    })?;
    if response.status != 200 {
        return Err(fail(format!("answered {}", response.status)));
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body)
        .map_err(|e| fail(format!("answered something other than JSON ({e})")))?;
    let field = |name: &str| body[name].as_str().map(str::to_owned);
    let (Some(access_key_id), Some(secret_access_key)) =
        (field("AccessKeyId"), field("SecretAccessKey"))
    else {
        return Err(fail(
            "no AccessKeyId and SecretAccessKey in its answer".into(),
        ));
    };
    let expires_ms = match field("Expiration") {
        Some(text) => Some(
            time::parse_iso8601(&text).map_err(|e| fail(format!("Expiration {text:?}: {e}")))?,
        ),
        None => None,
    };
    Ok(Cached {
        credentials: Credentials {
            access_key_id,
            secret_access_key,
            session_token: field("Token"),
        },
        expires_ms,
    })
}

/// The profile `AWS_PROFILE` (or `default`) of the shared credentials file
/// (`AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials`), when it has keys.
fn from_shared_file() -> Result<Option<Credentials>, String> {
    let path = match var("AWS_SHARED_CREDENTIALS_FILE") {
        Some(path) => path,
        None => match var("HOME") {
            Some(home) => format!("{home}/.aws/credentials"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("the shared credentials file {path}: {e}")),
    };
    let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let keys = profile_keys(&text, &profile);
    let get = |name: &str| {
        keys.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: get("aws_session_token"),
        })),
        _ => Ok(None),
    }
}

/// The `key = value` lines of `[profile]` in an INI text (comments `#` and `;`).
fn profile_keys(text: &str, profile: &str) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == profile;
        } else if inside && let Some((key, value)) = line.split_once('=') {
            keys.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_from_their_own_section() {
        let text = "\
# a comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key=secret1

[work]
; another
aws_access_key_id = AKIDWORK
aws_secret_access_key = secret2
aws_session_token = token2
";
        let work = profile_keys(text, "work");
        assert_eq!(
            work,
            vec![
                ("aws_access_key_id".into(), "AKIDWORK".into()),
                ("aws_secret_access_key".into(), "secret2".into()),
                ("aws_session_token".into(), "token2".into()),
            ]
        );
        assert_eq!(profile_keys(text, "default").len(), 2);
        assert!(profile_keys(text, "missing").is_empty());
    }
}
