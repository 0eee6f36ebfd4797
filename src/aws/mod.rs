//! AWS services with the function's credentials (SPEC 7.4), in language-neutral
//! Rust: `stdlib::aws` binds it to the scripts.
//!
//! - [`client`]: a service client, its endpoint and region, signed and retried calls.
//! - [`credentials`]: the function's credentials, from the environment, the
//!   container endpoint or the shared file.
//! - [`service`]: the services by boto3's names, and their protocols.
//! - [`sigv4`]: Signature Version 4, S3's variant included, and presigned URLs.
//! - [`query`]: the query protocol's parameters (SNS, STS, SES), flattened.
//! - [`xml`]: XML answers (query protocol, S3) as binding values, and their errors.
//! - [`s3`]: S3's object operations.
//! - [`dynamodb`]: plain values ↔ DynamoDB AttributeValues.

pub mod client;
pub mod credentials;
pub mod dynamodb;
pub mod query;
pub mod s3;
pub mod service;
pub mod sigv4;
pub mod xml;

/// An environment variable that is set and not empty (the SDKs ignore empty ones).
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The region: `given`, else `AWS_REGION` (what Lambda sets), else
/// `AWS_DEFAULT_REGION`; the error says so.
pub fn region(given: Option<String>) -> Result<String, String> {
    given
        .or_else(|| var("AWS_REGION"))
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .ok_or_else(|| "no region: set AWS_REGION (Lambda does) or give region".into())
}
