//! S3's object operations over REST-XML (SPEC 7.4): `GetObject`, `PutObject`,
//! `HeadObject`, `DeleteObject`, `CopyObject`, `ListObjectsV2`, `DeleteObjects`,
//! with boto3's parameter and result names.
//!
//! Buckets are addressed by path with a custom endpoint or a name holding dots
//! (which a wildcard certificate cannot cover), else virtual-hosted.

use base64::Engine;
use md5::{Digest, Md5};

use super::client::{Client, Failure, Prepared, service_error};
use super::xml;
use crate::http;
use crate::stdlib::binding::Value;
use crate::stdlib::{time, url};

/// The operations `send` runs.
pub const OPERATIONS: [&str; 7] = [
    "GetObject",
    "PutObject",
    "HeadObject",
    "DeleteObject",
    "CopyObject",
    "ListObjectsV2",
    "DeleteObjects",
];

/// Parameters sent as headers: boto3's name, the header.
const HEADER_PARAMS: [(&str, &str); 27] = [
    ("ACL", "x-amz-acl"),
    ("CacheControl", "cache-control"),
    ("ChecksumAlgorithm", "x-amz-sdk-checksum-algorithm"),
    ("ContentDisposition", "content-disposition"),
    ("ContentEncoding", "content-encoding"),
    ("ContentLanguage", "content-language"),
    ("ContentMD5", "content-md5"),
    ("ContentType", "content-type"),
    ("CopySourceIfMatch", "x-amz-copy-source-if-match"),
    ("CopySourceIfNoneMatch", "x-amz-copy-source-if-none-match"),
    ("ExpectedBucketOwner", "x-amz-expected-bucket-owner"),
    ("Expires", "expires"),
    ("IfMatch", "if-match"),
    ("IfModifiedSince", "if-modified-since"),
    ("IfNoneMatch", "if-none-match"),
    ("IfUnmodifiedSince", "if-unmodified-since"),
    ("MetadataDirective", "x-amz-metadata-directive"),
    ("Range", "range"),
    ("RequestPayer", "x-amz-request-payer"),
    (
        "SSECustomerAlgorithm",
        "x-amz-server-side-encryption-customer-algorithm",
    ),
    ("SSEKMSKeyId", "x-amz-server-side-encryption-aws-kms-key-id"),
    ("ServerSideEncryption", "x-amz-server-side-encryption"),
    ("StorageClass", "x-amz-storage-class"),
    ("Tagging", "x-amz-tagging"),
    ("TaggingDirective", "x-amz-tagging-directive"),
    ("WebsiteRedirectLocation", "x-amz-website-redirect-location"),
    ("ObjectLockMode", "x-amz-object-lock-mode"),
];

/// Parameters sent in the query string: boto3's name, the query's.
const QUERY_PARAMS: [(&str, &str); 11] = [
    ("ContinuationToken", "continuation-token"),
    ("Delimiter", "delimiter"),
    ("EncodingType", "encoding-type"),
    ("FetchOwner", "fetch-owner"),
    ("MaxKeys", "max-keys"),
    ("PartNumber", "partNumber"),
    ("Prefix", "prefix"),
    ("ResponseCacheControl", "response-cache-control"),
    ("ResponseContentType", "response-content-type"),
    ("StartAfter", "start-after"),
    ("VersionId", "versionId"),
];

/// Response headers given back by name: the header, boto3's name.
const HEADER_RESULTS: [(&str, &str); 18] = [
    ("accept-ranges", "AcceptRanges"),
    ("cache-control", "CacheControl"),
    ("content-disposition", "ContentDisposition"),
    ("content-encoding", "ContentEncoding"),
    ("content-language", "ContentLanguage"),
    ("content-range", "ContentRange"),
    ("content-type", "ContentType"),
    ("etag", "ETag"),
    ("expires", "Expires"),
    ("x-amz-copy-source-version-id", "CopySourceVersionId"),
    ("x-amz-expiration", "Expiration"),
    ("x-amz-server-side-encryption", "ServerSideEncryption"),
    ("x-amz-server-side-encryption-aws-kms-key-id", "SSEKMSKeyId"),
    ("x-amz-storage-class", "StorageClass"),
    ("x-amz-tagging-count", "TagCount"),
    ("x-amz-version-id", "VersionId"),
    ("x-amz-website-redirect-location", "WebsiteRedirectLocation"),
    ("x-amz-request-charged", "RequestCharged"),
];

/// The parameters' map, looked up by name.
struct Params<'a> {
    operation: &'a str,
    entries: &'a [(String, Value)],
}

impl<'a> Params<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .filter(|v| !matches!(v, Value::Nil))
    }

    fn text(&self, name: &str) -> Result<Option<String>, Failure> {
        self.get(name)
            .map(|v| scalar_text(v, self.operation, name))
            .transpose()
    }

    fn required(&self, name: &str) -> Result<String, Failure> {
        self.text(name)?.ok_or_else(|| {
            Failure::Invalid(format!(
                "{}: the parameter {name} is required",
                self.operation
            ))
        })
    }
}

/// A parameter as text: strings, numbers, booleans.
fn scalar_text(value: &Value, operation: &str, name: &str) -> Result<String, Failure> {
    match value {
        Value::Text(s) => Ok(s.clone()),
        Value::Bytes(b) | Value::Decoded(b) => String::from_utf8(b.clone()).map_err(|_| {
            Failure::Invalid(format!(
                "{operation}: the parameter {name} is not UTF-8 text"
            ))
        }),
        Value::Int(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Failure::Invalid(format!(
            "{operation}: the parameter {name} must be a string"
        ))),
    }
}

/// Runs an object operation.
pub fn send(
    client: &Client,
    operation: &str,
    params: &Value,
    max_body_bytes: u64,
) -> Result<Value, Failure> {
    if !OPERATIONS.contains(&operation) {
        return Err(Failure::Invalid(format!(
            "S3 operation {operation:?} is not supported (supported: {})",
            OPERATIONS.join(", ")
        )));
    }
    let entries: &[(String, Value)] = match params {
        Value::Map(entries) => entries,
        Value::List(items) if items.is_empty() => &[],
        Value::Nil => &[],
        _ => {
            return Err(Failure::Invalid(format!(
                "{operation}: the parameters must be a table / map"
            )));
        }
    };
    let params = Params { operation, entries };
    let bucket = params.required("Bucket")?;
    let key = match operation {
        "ListObjectsV2" | "DeleteObjects" => None,
        _ => Some(params.required("Key")?),
    };
    check_names(&params)?;

    let mut query: Vec<(String, String)> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut body = Vec::new();
    let method = match operation {
        "GetObject" => "GET",
        "HeadObject" => "HEAD",
        "DeleteObject" => "DELETE",
        "PutObject" => {
            if let Some(data) = params.get("Body") {
                body = match data {
                    Value::Text(s) => s.as_bytes().to_vec(),
                    Value::Bytes(b) | Value::Decoded(b) | Value::Binary(b) => b.clone(),
                    _ => {
                        return Err(Failure::Invalid(
                            "PutObject: Body must be a string or a Blob".into(),
                        ));
                    }
                };
            }
            "PUT"
        }
        "CopyObject" => {
            headers.push(("x-amz-copy-source".into(), copy_source(&params)?));
            "PUT"
        }
        "ListObjectsV2" => {
            query.push(("list-type".into(), "2".into()));
            "GET"
        }
        _ => {
            // DeleteObjects
            query.push(("delete".into(), String::new()));
            body = delete_body(&params)?;
            let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
            headers.push(("content-md5".into(), md5));
            headers.push(("content-type".into(), "application/xml".into()));
            "POST"
        }
    };
    for (name, value) in entries {
        if let Some((_, header)) = HEADER_PARAMS.iter().find(|(p, _)| p == name) {
            headers.push((header.to_string(), scalar_text(value, operation, name)?));
        } else if let Some((_, q)) = QUERY_PARAMS.iter().find(|(p, _)| p == name) {
            query.push((q.to_string(), scalar_text(value, operation, name)?));
        } else if name == "Metadata" {
            for (meta, value) in map_entries(value, operation, name)? {
                headers.push((
                    format!("x-amz-meta-{}", meta.to_ascii_lowercase()),
                    scalar_text(value, operation, name)?,
                ));
            }
        }
    }

    let url = object_url(client, &bucket, key.as_deref(), &query);
    let prepared = Prepared {
        method,
        url,
        headers,
        body,
    };
    let response = client.call(&prepared, max_body_bytes)?;
    match operation {
        "ListObjectsV2" => list_result(&response),
        "DeleteObjects" => delete_result(&response),
        "CopyObject" => copy_result(&response),
        _ => Ok(Value::Map(header_result(
            &response,
            operation == "GetObject",
        ))),
    }
}

/// Every parameter name must be one the operation can send: a typo (`key`) is
/// an error, as boto3's validation makes it.
fn check_names(params: &Params) -> Result<(), Failure> {
    let own: &[&str] = match params.operation {
        "PutObject" => &["Bucket", "Key", "Body", "Metadata"],
        "CopyObject" => &["Bucket", "Key", "CopySource", "Metadata"],
        "DeleteObjects" => &["Bucket", "Delete"],
        _ => &["Bucket", "Key"],
    };
    for (name, _) in params.entries {
        let known = own.contains(&name.as_str())
            || HEADER_PARAMS.iter().any(|(p, _)| p == name)
            || QUERY_PARAMS.iter().any(|(p, _)| p == name);
        if !known {
            return Err(Failure::Invalid(format!(
                "{}: unknown parameter {name:?} (S3's names are PascalCase: Bucket, Key, ...)",
                params.operation
            )));
        }
    }
    Ok(())
}

fn map_entries<'a>(
    value: &'a Value,
    operation: &str,
    name: &str,
) -> Result<&'a [(String, Value)], Failure> {
    match value {
        Value::Map(entries) => Ok(entries),
        Value::List(items) if items.is_empty() => Ok(&[]),
        _ => Err(Failure::Invalid(format!(
            "{operation}: the parameter {name} must be a table / map"
        ))),
    }
}

/// `x-amz-copy-source`: `bucket/key` (encoded), given as that text or as
/// `{Bucket=, Key=, VersionId=}` as boto3 allows.
fn copy_source(params: &Params) -> Result<String, Failure> {
    let source = params.get("CopySource").ok_or_else(|| {
        Failure::Invalid("CopyObject: the parameter CopySource is required".into())
    })?;
    let (path, version) = match source {
        Value::Map(entries) => {
            let inner = Params {
                operation: "CopyObject",
                entries,
            };
            let bucket = inner.required("Bucket")?;
            let key = inner.required("Key")?;
            (format!("{bucket}/{key}"), inner.text("VersionId")?)
        }
        other => (scalar_text(other, "CopyObject", "CopySource")?, None),
    };
    let mut source = encode_path(path.trim_start_matches('/'));
    if let Some(version) = version {
        source.push_str("?versionId=");
        source.push_str(&url::encode(version.as_bytes()));
    }
    Ok(source)
}

/// `DeleteObjects`'s XML body from `Delete = {Objects = {{Key=, VersionId=}}, Quiet=}`.
fn delete_body(params: &Params) -> Result<Vec<u8>, Failure> {
    let invalid = |detail: &str| Failure::Invalid(format!("DeleteObjects: {detail}"));
    let delete = params
        .get("Delete")
        .ok_or_else(|| invalid("the parameter Delete is required"))?;
    let delete = Params {
        operation: "DeleteObjects",
        entries: map_entries(delete, "DeleteObjects", "Delete")?,
    };
    let objects = match delete.get("Objects") {
        Some(Value::List(items)) => items,
        _ => return Err(invalid("Delete.Objects must be a list of {Key = ...}")),
    };
    let mut xml = String::from(r#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#);
    for object in objects {
        let object = Params {
            operation: "DeleteObjects",
            entries: map_entries(object, "DeleteObjects", "Delete.Objects[]")?,
        };
        xml.push_str("<Object><Key>");
        xml.push_str(&escape(&object.required("Key")?));
        xml.push_str("</Key>");
        if let Some(version) = object.text("VersionId")? {
            xml.push_str("<VersionId>");
            xml.push_str(&escape(&version));
            xml.push_str("</VersionId>");
        }
        xml.push_str("</Object>");
    }
    if let Some(quiet) = delete.text("Quiet")? {
        xml.push_str("<Quiet>");
        xml.push_str(&escape(&quiet));
        xml.push_str("</Quiet>");
    }
    xml.push_str("</Delete>");
    Ok(xml.into_bytes())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Each segment of `path` percent-encoded, the `/`s kept.
fn encode_path(path: &str) -> String {
    let segments: Vec<String> = path.split('/').map(|s| url::encode(s.as_bytes())).collect();
    segments.join("/")
}

/// The object's (or the bucket's) URL, path-style or virtual-hosted.
fn object_url(
    client: &Client,
    bucket: &str,
    key: Option<&str>,
    query: &[(String, String)],
) -> String {
    let path_style = client.custom_endpoint || bucket.contains('.');
    let mut url = if path_style {
        format!("{}/{}/", client.endpoint, url::encode(bucket.as_bytes()))
    } else {
        let (scheme, host) = client
            .endpoint
            .split_once("://")
            .unwrap_or(("https", &client.endpoint));
        format!("{scheme}://{bucket}.{host}/")
    };
    if let Some(key) = key {
        url.push_str(&encode_path(key));
    }
    let pieces: Vec<String> = query
        .iter()
        .map(|(k, v)| match v.is_empty() && k == "delete" {
            true => k.clone(),
            false => format!(
                "{}={}",
                url::encode(k.as_bytes()),
                url::encode(v.as_bytes())
            ),
        })
        .collect();
    if !pieces.is_empty() {
        url.push('?');
        url.push_str(&pieces.join("&"));
    }
    url
}

fn header<'a>(response: &'a http::Response, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

/// GetObject, HeadObject, PutObject, DeleteObject: what the headers say, and
/// for GetObject the body.
fn header_result(response: &http::Response, with_body: bool) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    if with_body {
        out.push(("Body".into(), Value::Decoded(response.body.clone())));
    }
    for (header_name, name) in HEADER_RESULTS {
        if let Some(value) = header(response, header_name) {
            out.push((name.into(), Value::Text(value.to_owned())));
        }
    }
    if let Some(length) = header(response, "content-length").and_then(|l| l.parse::<i64>().ok())
        && (with_body || response.status != 204)
    {
        out.push(("ContentLength".into(), Value::Int(length)));
    }
    if let Some(modified) = header(response, "last-modified") {
        let text = http_date_to_iso(modified).unwrap_or_else(|| modified.to_owned());
        out.push(("LastModified".into(), Value::Text(text)));
    }
    if let Some(marker) = header(response, "x-amz-delete-marker") {
        out.push(("DeleteMarker".into(), Value::Bool(marker == "true")));
    }
    let metadata: Vec<(String, Value)> = response
        .headers
        .iter()
        .filter_map(|(name, values)| {
            let key = name.strip_prefix("x-amz-meta-")?;
            Some((key.to_owned(), Value::Text(values.join(","))))
        })
        .collect();
    if !metadata.is_empty() || with_body {
        out.push(("Metadata".into(), Value::Map(metadata)));
    }
    out
}

/// The XML answer's root, or the error S3 can send with a 200 (CopyObject).
fn xml_root(response: &http::Response) -> Result<Value, Failure> {
    let text = String::from_utf8_lossy(&response.body);
    let doc = roxmltree::Document::parse(&text)
        .map_err(|e| Failure::Invalid(format!("S3's answer is not XML ({e})")))?;
    if doc.root_element().tag_name().name() == "Error" {
        return Err(Failure::Service(service_error(response)));
    }
    Ok(xml::to_value(doc.root_element()))
}

fn entries_of(value: Value) -> Vec<(String, Value)> {
    match value {
        Value::Map(entries) => entries,
        _ => Vec::new(),
    }
}

/// A member that may come once or many times, as a list (empty when absent).
fn take_list(entries: &mut Vec<(String, Value)>, name: &str) -> Value {
    match entries.iter().position(|(k, _)| k == name) {
        Some(i) => match entries.remove(i).1 {
            Value::List(items) => Value::List(items),
            one => Value::List(vec![one]),
        },
        None => Value::List(Vec::new()),
    }
}

/// Text members that are numbers or booleans in boto3's answer, converted.
fn type_members(entries: &mut [(String, Value)], numbers: &[&str], booleans: &[&str]) {
    for (name, value) in entries.iter_mut() {
        let Value::Text(text) = value else { continue };
        if numbers.contains(&name.as_str())
            && let Ok(n) = text.parse::<i64>()
        {
            *value = Value::Int(n);
        } else if booleans.contains(&name.as_str()) {
            *value = Value::Bool(text == "true");
        }
    }
}

fn list_result(response: &http::Response) -> Result<Value, Failure> {
    let mut entries = entries_of(xml_root(response)?);
    let mut contents = take_list(&mut entries, "Contents");
    if let Value::List(items) = &mut contents {
        for item in items.iter_mut() {
            if let Value::Map(fields) = item {
                type_members(fields, &["Size"], &[]);
            }
        }
    }
    let prefixes = take_list(&mut entries, "CommonPrefixes");
    type_members(&mut entries, &["KeyCount", "MaxKeys"], &["IsTruncated"]);
    entries.push(("Contents".into(), contents));
    entries.push(("CommonPrefixes".into(), prefixes));
    Ok(Value::Map(entries))
}

fn delete_result(response: &http::Response) -> Result<Value, Failure> {
    let mut entries = entries_of(xml_root(response)?);
    let mut deleted = take_list(&mut entries, "Deleted");
    if let Value::List(items) = &mut deleted {
        for item in items.iter_mut() {
            if let Value::Map(fields) = item {
                type_members(fields, &[], &["DeleteMarker"]);
            }
        }
    }
    let errors = take_list(&mut entries, "Error");
    Ok(Value::Map(vec![
        ("Deleted".into(), deleted),
        ("Errors".into(), errors),
    ]))
}

fn copy_result(response: &http::Response) -> Result<Value, Failure> {
    let result = xml_root(response)?;
    let mut entries = header_result(response, false);
    entries.retain(|(k, _)| k != "ContentLength" && k != "ContentType");
    entries.push(("CopyObjectResult".into(), result));
    Ok(Value::Map(entries))
}

/// An HTTP date (`Wed, 12 Oct 2009 17:50:00 GMT`) as ISO 8601
/// (`2009-10-12T17:50:00.000Z`), as `time.iso8601` writes.
fn http_date_to_iso(text: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = text.split_whitespace().skip(1);
    let day: u32 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? + 1;
    let year: u32 = parts.next()?.parse().ok()?;
    let clock = parts.next()?;
    let ms = time::parse_iso8601(&format!("{year:04}-{month:02}-{day:02}T{clock}Z")).ok()?;
    time::iso8601(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::client::Config;

    fn client(endpoint: Option<&str>) -> Client {
        Client::new(
            "s3",
            Config {
                region: Some("eu-west-1".into()),
                endpoint: endpoint.map(str::to_owned),
                credentials: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn buckets_are_virtual_hosted_unless_the_endpoint_is_custom_or_the_name_has_dots() {
        let q = vec![("versionId".to_string(), "v 1".to_string())];
        assert_eq!(
            object_url(&client(None), "photos", Some("a b/c+d.jpg"), &q),
            "https://photos.s3.eu-west-1.amazonaws.com/a%20b/c%2Bd.jpg?versionId=v%201"
        );
        assert_eq!(
            object_url(&client(None), "my.site", Some("k"), &[]),
            "https://s3.eu-west-1.amazonaws.com/my.site/k"
        );
        assert_eq!(
            object_url(
                &client(Some("http://127.0.0.1:5000/")),
                "photos",
                None,
                &[("delete".into(), String::new())]
            ),
            "http://127.0.0.1:5000/photos/?delete"
        );
    }

    #[test]
    fn http_dates_become_iso_8601() {
        assert_eq!(
            http_date_to_iso("Wed, 12 Oct 2009 17:50:00 GMT").as_deref(),
            Some("2009-10-12T17:50:00.000Z")
        );
        assert_eq!(http_date_to_iso("yesterday"), None);
    }

    #[test]
    fn delete_bodies_escape_keys() {
        let params = Value::Map(vec![(
            "Delete".into(),
            Value::Map(vec![
                (
                    "Objects".into(),
                    Value::List(vec![Value::Map(vec![(
                        "Key".into(),
                        Value::Text("a&b<c".into()),
                    )])]),
                ),
                ("Quiet".into(), Value::Bool(true)),
            ]),
        )]);
        let Value::Map(entries) = &params else {
            unreachable!()
        };
        let body = delete_body(&Params {
            operation: "DeleteObjects",
            entries,
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a&amp;b&lt;c</Key></Object><Quiet>true</Quiet></Delete>"#
        );
    }

    #[test]
    fn list_results_type_their_numbers_and_always_give_arrays() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name><Prefix/><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>
  <Contents><Key>a.txt</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>"e"</ETag><Size>42</Size><StorageClass>STANDARD</StorageClass></Contents>
</ListBucketResult>"#;
        let response = http::Response {
            status: 200,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        let Value::Map(entries) = list_result(&response).unwrap() else {
            panic!()
        };
        let get = |name: &str| {
            entries
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("KeyCount"), Some(Value::Int(1)));
        assert_eq!(get("IsTruncated"), Some(Value::Bool(false)));
        assert_eq!(get("CommonPrefixes"), Some(Value::List(Vec::new())));
        let Some(Value::List(contents)) = get("Contents") else {
            panic!()
        };
        let Value::Map(first) = &contents[0] else {
            panic!()
        };
        assert!(first.contains(&("Size".into(), Value::Int(42))));
    }

    #[test]
    fn unknown_parameters_and_operations_are_named() {
        let c = client(Some("http://127.0.0.1:1"));
        let params = Value::Map(vec![
            ("Bucket".into(), Value::Text("b".into())),
            ("Key".into(), Value::Text("k".into())),
            ("key".into(), Value::Text("k".into())),
        ]);
        let Err(Failure::Invalid(message)) = send(&c, "GetObject", &params, 1000) else {
            panic!()
        };
        assert!(message.contains("\"key\""), "{message}");
        let Err(Failure::Invalid(message)) = send(&c, "CreateBucket", &params, 1000) else {
            panic!()
        };
        assert!(message.contains("not supported"), "{message}");
    }
}
