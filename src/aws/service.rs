//! The services `aws.client` knows, by the name boto3 gives them, with what
//! calling each needs: its protocol, its endpoint prefix and signing name, and
//! its id for `AWS_ENDPOINT_URL_<SERVICE>` (from botocore's service models).

/// How a service takes its requests and gives its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `POST /` with `x-amz-target: {target_prefix}.{Operation}` and a JSON body
    /// (`application/x-amz-json-{version}`).
    Json {
        version: &'static str,
        target_prefix: &'static str,
    },
    /// `POST /` with a form body (`Action`, `Version`, the flattened parameters),
    /// answered in XML.
    Query { api_version: &'static str },
    /// S3's REST-XML: the object operations of `aws::s3`.
    RestXml,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Service {
    /// boto3's name: `dynamodb`, `secretsmanager`.
    pub name: &'static str,
    /// botocore's `serviceId`, whose upper-case form with `_` for spaces names
    /// the endpoint variable: `Secrets Manager` → `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
    pub id: &'static str,
    /// The public endpoint's first label: `https://{prefix}.{region}.amazonaws.com`.
    pub endpoint_prefix: &'static str,
    /// The service in the credential scope.
    pub signing_name: &'static str,
    pub protocol: Protocol,
}

const fn json(version: &'static str, target_prefix: &'static str) -> Protocol {
    Protocol::Json {
        version,
        target_prefix,
    }
}

const fn service(
    name: &'static str,
    id: &'static str,
    endpoint_prefix: &'static str,
    signing_name: &'static str,
    protocol: Protocol,
) -> Service {
    Service {
        name,
        id,
        endpoint_prefix,
        signing_name,
        protocol,
    }
}

/// Every service of SPEC 7.4.
pub static SERVICES: [Service; 14] = [
    service(
        "dynamodb",
        "DynamoDB",
        "dynamodb",
        "dynamodb",
        json("1.0", "DynamoDB_20120810"),
    ),
    service("s3", "S3", "s3", "s3", Protocol::RestXml),
    service("sqs", "SQS", "sqs", "sqs", json("1.0", "AmazonSQS")),
    service(
        "sns",
        "SNS",
        "sns",
        "sns",
        Protocol::Query {
            api_version: "2010-03-31",
        },
    ),
    service(
        "secretsmanager",
        "Secrets Manager",
        "secretsmanager",
        "secretsmanager",
        json("1.1", "secretsmanager"),
    ),
    service("ssm", "SSM", "ssm", "ssm", json("1.1", "AmazonSSM")),
    service("kms", "KMS", "kms", "kms", json("1.1", "TrentService")),
    service(
        "events",
        "EventBridge",
        "events",
        "events",
        json("1.1", "AWSEvents"),
    ),
    service(
        "kinesis",
        "Kinesis",
        "kinesis",
        "kinesis",
        json("1.1", "Kinesis_20131202"),
    ),
    service(
        "stepfunctions",
        "SFN",
        "states",
        "states",
        json("1.0", "AWSStepFunctions"),
    ),
    service(
        "logs",
        "CloudWatch Logs",
        "logs",
        "logs",
        json("1.1", "Logs_20140328"),
    ),
    service(
        "firehose",
        "Firehose",
        "firehose",
        "firehose",
        json("1.1", "Firehose_20150804"),
    ),
    service(
        "sts",
        "STS",
        "sts",
        "sts",
        Protocol::Query {
            api_version: "2011-06-15",
        },
    ),
    service(
        "ses",
        "SES",
        "email",
        "ses",
        Protocol::Query {
            api_version: "2010-12-01",
        },
    ),
];

/// The service boto3 calls `name`.
pub fn lookup(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

/// The names `aws.client` takes, for an error message.
pub fn names() -> String {
    let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
    names.join(", ")
}

impl Service {
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` for `Secrets Manager`.
    pub fn endpoint_variable(&self) -> String {
        format!(
            "AWS_ENDPOINT_URL_{}",
            self.id.to_ascii_uppercase().replace(' ', "_")
        )
    }

    /// The public endpoint in `region` (`https://dynamodb.us-east-1.amazonaws.com`;
    /// China's regions end in `.amazonaws.com.cn`).
    pub fn public_endpoint(&self, region: &str) -> String {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://{}.{region}.{suffix}", self.endpoint_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_variables_follow_the_service_id() {
        let var = |name| lookup(name).unwrap().endpoint_variable();
        assert_eq!(var("dynamodb"), "AWS_ENDPOINT_URL_DYNAMODB");
        assert_eq!(var("secretsmanager"), "AWS_ENDPOINT_URL_SECRETS_MANAGER");
        assert_eq!(var("logs"), "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS");
        assert_eq!(var("stepfunctions"), "AWS_ENDPOINT_URL_SFN");
        assert_eq!(var("events"), "AWS_ENDPOINT_URL_EVENTBRIDGE");
    }

    #[test]
    fn public_endpoints_use_the_endpoint_prefix() {
        let endpoint = |name, region| lookup(name).unwrap().public_endpoint(region);
        assert_eq!(
            endpoint("ses", "eu-west-1"),
            "https://email.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint("stepfunctions", "us-east-1"),
            "https://states.us-east-1.amazonaws.com"
        );
        assert_eq!(
            endpoint("dynamodb", "cn-north-1"),
            "https://dynamodb.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn unknown_services_are_not_found() {
        assert!(lookup("DynamoDB").is_none());
        assert!(names().contains("secretsmanager"));
    }
}
