//! AWS's signing test suite (`tests/data/aws-signing-test-suite/v4`: every case
//! with a signature file, both with headers and presigned) and S3's documented
//! examples.

use std::path::{Path, PathBuf};

use super::*;

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-signing-test-suite/v4")
}

/// A case's `request.txt`: method, URL, headers and body.
struct CaseRequest {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parse_request(text: &str) -> CaseRequest {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let first = lines.next().expect("a request line");
    let (method, rest) = first.split_once(' ').expect("a method");
    let target = rest.strip_suffix(" HTTP/1.1").expect("HTTP/1.1");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // A folded header line continues the previous value.
            let last = headers.last_mut().expect("a header before a continuation");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    let host = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .expect("a Host header");
    CaseRequest {
        method: method.to_owned(),
        url: format!("https://{host}{target}"),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// A case's `context.json`, as the suite's keys say.
struct Context {
    credentials: Credentials,
    region: String,
    service: String,
    time: Time,
    expires: u64,
    options: Options,
}

fn parse_context(text: &str) -> Context {
    let v: serde_json::Value = serde_json::from_str(text).expect("context.json");
    let c = &v["credentials"];
    let s = |v: &serde_json::Value| v.as_str().expect("a string").to_owned();
    let timestamp = s(&v["timestamp"]).replace(['-', ':'], "");
    Context {
        credentials: Credentials {
            access_key_id: s(&c["access_key_id"]),
            secret_access_key: s(&c["secret_access_key"]),
            session_token: c["token"].as_str().map(str::to_owned),
        },
        region: s(&v["region"]),
        service: s(&v["service"]),
        time: Time::parse(&timestamp).expect("the suite's timestamp"),
        expires: v["expiration_in_seconds"].as_u64().expect("expiration"),
        options: Options {
            normalize_path: v["normalize"].as_bool().expect("normalize"),
            double_encode: true,
            sign_body: v["sign_body"].as_bool().expect("sign_body"),
            unsigned_payload: false,
            sign_session_token: !v["omit_session_token"].as_bool().unwrap_or(false),
        },
    }
}

fn read(case: &Path, file: &str) -> String {
    std::fs::read_to_string(case.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", case.join(file).display()))
}

#[test]
fn every_v4_case_of_the_signing_test_suite_signs_as_aws_does() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(suite())
        .expect("the suite")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.join("header-signature.txt").exists())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 38, "the suite's v4 cases with a signature");
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy();
        let request = parse_request(&read(case, "request.txt"));
        let mut context = parse_context(&read(case, "context.json"));
        if name == "get-space-normalized" {
            // Its path is already encoded and its answer encodes it once: the
            // case needs double encoding off, which context.json cannot say
            // (the aws-sigv4 crate skips it "until we add control over
            // double_uri_encode in context.json").
            context.options.double_encode = false;
        }
        let req = Request {
            method: &request.method,
            url: &request.url,
            headers: &request.headers,
            body: &request.body,
        };
        let scope = Scope {
            service: &context.service,
            region: &context.region,
            time: context.time,
        };
        let signed = sign(&req, &context.credentials, &scope, &context.options)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            signed.canonical_request,
            read(case, "header-canonical-request.txt"),
            "{name}: canonical request"
        );
        assert_eq!(
            signed.string_to_sign,
            read(case, "header-string-to-sign.txt"),
            "{name}: string to sign"
        );
        assert_eq!(
            signed.signature,
            read(case, "header-signature.txt"),
            "{name}: signature"
        );
        let authorization = &signed.headers[0].1;
        assert!(
            read(case, "header-signed-request.txt")
                .contains(&format!("Authorization:{authorization}")),
            "{name}: the Authorization header"
        );

        let presigned = presign(
            &req,
            &context.credentials,
            &scope,
            &context.options,
            context.expires,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            presigned.canonical_request,
            read(case, "query-canonical-request.txt"),
            "{name}: presigned canonical request"
        );
        assert_eq!(
            presigned.string_to_sign,
            read(case, "query-string-to-sign.txt"),
            "{name}: presigned string to sign"
        );
        assert_eq!(
            presigned.signature,
            read(case, "query-signature.txt"),
            "{name}: presigned signature"
        );
    }
}

/// One of the two old-format cases (no context, no signature file; the other's
/// date disagrees with its request): a Lambda ARN in the path, encoded twice.
#[test]
fn the_old_double_url_encode_case_signs_as_its_files_say() {
    let case = suite().join("double-url-encode");
    let request = parse_request(&read(&case, "request.txt"));
    let req = Request {
        method: &request.method,
        url: &request.url,
        headers: &request.headers,
        body: &request.body,
    };
    let scope = Scope {
        service: "lambda",
        region: "us-east-2",
        time: Time::parse("20210511T154045Z").unwrap(),
    };
    let credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    };
    let signed = sign(&req, &credentials, &scope, &Options::for_service("lambda")).unwrap();
    assert_eq!(
        signed.canonical_request,
        read(&case, "header-canonical-request.txt")
    );
    // This old file ends with a newline, unlike the suite's.
    assert_eq!(
        signed.string_to_sign,
        read(&case, "header-string-to-sign.txt").trim_end()
    );
    assert!(read(&case, "header-signed-request.txt").contains(&signed.headers[0].1));
}

/// The example key of AWS's documentation.
fn example_credentials() -> Credentials {
    Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

fn s3_scope() -> Scope<'static> {
    Scope {
        service: "s3",
        region: "us-east-1",
        time: Time::parse("20130524T000000Z").unwrap(),
    }
}

/// S3's "Signature Calculations for the Authorization Header: Transferring
/// Payload in a Single Chunk" — the GET Object example.
#[test]
fn s3_get_object_example_signs_as_documented() {
    let headers = vec![("Range".to_owned(), "bytes=0-9".to_owned())];
    let req = Request {
        method: "GET",
        url: "https://examplebucket.s3.amazonaws.com/test.txt",
        headers: &headers,
        body: b"",
    };
    let signed = sign(
        &req,
        &example_credentials(),
        &s3_scope(),
        &Options::for_service("s3"),
    )
    .unwrap();
    assert_eq!(
        signed.signature,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    assert_eq!(
        signed.headers[0].1,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

/// The same page's PUT Object example: a signed body, a header with a `$`.
#[test]
fn s3_put_object_example_signs_as_documented() {
    let headers = vec![
        (
            "Date".to_owned(),
            "Fri, 24 May 2013 00:00:00 GMT".to_owned(),
        ),
        (
            "x-amz-storage-class".to_owned(),
            "REDUCED_REDUNDANCY".to_owned(),
        ),
    ];
    let req = Request {
        method: "PUT",
        url: "https://examplebucket.s3.amazonaws.com/test$file.text",
        headers: &headers,
        body: b"Welcome to Amazon S3.",
    };
    let signed = sign(
        &req,
        &example_credentials(),
        &s3_scope(),
        &Options::for_service("s3"),
    )
    .unwrap();
    assert_eq!(
        signed.signature,
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
}

/// The same page's GET Bucket Lifecycle and List Objects examples: query strings.
#[test]
fn s3_query_examples_sign_as_documented() {
    let cases = [
        (
            "https://examplebucket.s3.amazonaws.com/?lifecycle",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ];
    for (url, expected) in cases {
        let req = Request {
            method: "GET",
            url,
            headers: &[],
            body: b"",
        };
        let signed = sign(
            &req,
            &example_credentials(),
            &s3_scope(),
            &Options::for_service("s3"),
        )
        .unwrap();
        assert_eq!(signed.signature, expected, "{url}");
    }
}

/// S3's "Authenticating Requests: Using Query Parameters" example: a presigned
/// GET valid 86400 seconds.
#[test]
fn s3_presigned_url_example_matches_the_documentation() {
    let req = Request {
        method: "GET",
        url: "https://examplebucket.s3.amazonaws.com/test.txt",
        headers: &[],
        body: b"",
    };
    let presigned = presign(
        &req,
        &example_credentials(),
        &s3_scope(),
        &Options::for_service("s3"),
        86400,
    )
    .unwrap();
    assert_eq!(
        presigned.signature,
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
    assert_eq!(
        presigned.url,
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
         &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
}

#[test]
fn presigning_refuses_more_than_seven_days() {
    let req = Request {
        method: "GET",
        url: "https://examplebucket.s3.amazonaws.com/test.txt",
        headers: &[],
        body: b"",
    };
    let options = Options::for_service("s3");
    let err = presign(
        &req,
        &example_credentials(),
        &s3_scope(),
        &options,
        MAX_EXPIRES + 1,
    )
    .unwrap_err();
    assert!(err.contains("604800"), "{err}");
    assert!(
        presign(
            &req,
            &example_credentials(),
            &s3_scope(),
            &options,
            MAX_EXPIRES
        )
        .is_ok()
    );
}

#[test]
fn s3_paths_are_not_normalized_nor_encoded_twice() {
    let options = Options::for_service("s3");
    assert_eq!(
        canonical_path("/a//b/../c%20d e", &options),
        "/a//b/../c%20d%20e"
    );
    let default = Options::for_service("dynamodb");
    assert_eq!(canonical_path("/a//b/../c%20d", &default), "/a/c%2520d");
    assert_eq!(canonical_path("", &default), "/");
}

#[test]
fn the_host_carries_a_port_only_when_it_is_not_the_default() {
    let host = |url| Target::parse(url).map(|t| t.host);
    assert_eq!(host("https://Example.com:443/x").unwrap(), "example.com");
    assert_eq!(host("http://127.0.0.1:5000/").unwrap(), "127.0.0.1:5000");
    assert_eq!(host("http://[::1]:8080/").unwrap(), "[::1]:8080");
    assert_eq!(host("http://[::1]/").unwrap(), "[::1]");
    assert!(
        host("ftp://example.com/")
            .unwrap_err()
            .contains("not http or https")
    );
    assert!(host("example.com/x").is_err());
}

#[test]
fn credentials_never_show_their_secret_in_debug_output() {
    let mut credentials = example_credentials();
    credentials.session_token = Some("TOKEN-VALUE".into());
    let shown = format!("{credentials:?}");
    assert!(shown.contains("AKIAIOSFODNN7EXAMPLE"));
    assert!(
        !shown.contains("EXAMPLEKEY") && !shown.contains("TOKEN-VALUE"),
        "{shown}"
    );
}

#[test]
fn times_read_and_write_sigv4s_form() {
    let t = Time::parse("20150830T123600Z").unwrap();
    assert_eq!(t.amz_date(), "20150830T123600Z");
    assert_eq!(t.date(), "20150830");
    for bad in [
        "2015-08-30T12:36:00Z",
        "20150830T123600",
        "20151330T123600Z",
    ] {
        assert!(Time::parse(bad).is_err(), "{bad}");
    }
}

/// The kept signing key is only reused for the same secret and scope: signing
/// with two keys in turn gives each its own documented signature.
#[test]
fn the_kept_signing_key_belongs_to_one_secret_and_scope() {
    let headers = vec![("Range".to_owned(), "bytes=0-9".to_owned())];
    let s3 = Request {
        method: "GET",
        url: "https://examplebucket.s3.amazonaws.com/test.txt",
        headers: &headers,
        body: b"",
    };
    let vanilla = Request {
        method: "GET",
        url: "https://example.amazonaws.com/",
        headers: &[],
        body: b"",
    };
    let suite_credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    };
    let suite_scope = Scope {
        service: "service",
        region: "us-east-1",
        time: Time::parse("20150830T123600Z").unwrap(),
    };
    for _ in 0..2 {
        let s3_signed = sign(
            &s3,
            &example_credentials(),
            &s3_scope(),
            &Options::for_service("s3"),
        )
        .unwrap();
        assert_eq!(
            s3_signed.signature,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let options = Options {
            sign_body: false,
            ..Options::for_service("service")
        };
        let signed = sign(&vanilla, &suite_credentials, &suite_scope, &options).unwrap();
        assert_eq!(
            signed.signature,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }
}
