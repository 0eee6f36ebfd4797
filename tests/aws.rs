//! The `aws` module (SPEC 7.4) against a real, signature-checking AWS stand-in:
//! moto's server with its IAM auth on ([`support::moto`]).

mod support;

use serde_json::{Value, json};
use support::moto::Moto;
use support::web::WebServer;
use support::{Invocation, Lang, Scenario, Scratch};

/// Runs `lure invoke` on `file` in `scratch` with `event`, in `env` only (no
/// machine configuration: HOME is unset, so no `~/.aws`). The response, and
/// whether the handler succeeded.
fn invoke(scratch: &Scratch, file: &str, event: &Value, env: &[(String, String)]) -> (Value, bool) {
    let output = support::lure::invoke(
        &scratch.task_root(),
        file,
        event.to_string().as_bytes(),
        Some(env),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let response = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{file}: {e}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (response, output.status.success())
}

/// Writes `lua` and `rhai` as `story.lua` / `story.rhai` (each a `main`
/// handler), runs each with the event `event(lang)` and `env`, and checks each
/// succeeds with `expected`.
fn both(
    name: &str,
    lua: &str,
    rhai: &str,
    env: &[(String, String)],
    event: impl Fn(Lang) -> Value,
    expected: &Value,
) {
    let scratch = Scratch::new(name);
    scratch.write("story.lua", lua);
    scratch.write("story.rhai", rhai);
    for lang in [Lang::Lua, Lang::Rhai] {
        let (response, ok) = invoke(&scratch, &lang.file("story"), &event(lang), env);
        assert!(ok, "{name} ({lang:?}) failed: {response}");
        assert_eq!(&response, expected, "{name} ({lang:?})");
    }
}

/// A name per language, so both runs can share one stand-in.
fn named(prefix: &str, lang: Lang) -> String {
    format!("{prefix}-{}", format!("{lang:?}").to_lowercase())
}

const DYNAMODB_LUA: &str = r#"
function main(event)
  local ddb = aws.client("dynamodb")
  local t = event.table
  ddb:CreateTable({
    TableName = t,
    KeySchema = { { AttributeName = "pk", KeyType = "HASH" }, { AttributeName = "sk", KeyType = "RANGE" } },
    AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" }, { AttributeName = "sk", AttributeType = "N" } },
    BillingMode = "PAY_PER_REQUEST",
  })
  for i = 1, 3 do
    ddb:put_item({ TableName = t, Item = aws.dynamodb.marshal({ pk = "user#1", sk = i, name = "item " .. i, tags = { "a", "b" }, price = i * 1.5 }) })
  end
  local got = ddb:GetItem({ TableName = t, Key = aws.dynamodb.marshal({ pk = "user#1", sk = 2 }) })
  local query = ddb:send("Query", {
    TableName = t,
    KeyConditionExpression = "pk = :pk AND sk >= :min",
    ExpressionAttributeValues = aws.dynamodb.marshal({ [":pk"] = "user#1", [":min"] = 2 }),
  })
  local sks = setmetatable({}, json.array_mt)
  for i, item in ipairs(query.Items) do sks[i] = aws.dynamodb.unmarshal(item).sk end
  local ok, err = pcall(ddb.PutItem, ddb, {
    TableName = t,
    Item = aws.dynamodb.marshal({ pk = "user#1", sk = 1 }),
    ConditionExpression = "attribute_not_exists(pk)",
  })
  local missing_ok, missing = pcall(ddb.GetItem, ddb, { TableName = "no-such-table", Key = aws.dynamodb.marshal({ pk = "x" }) })
  return {
    item = aws.dynamodb.unmarshal(got.Item),
    count = query.Count,
    sks = sks,
    condition = { caught = not ok, type = err.errorType, status = err.status, request_id = #err.request_id > 0 },
    missing = { caught = not missing_ok, type = missing.errorType, status = missing.status },
  }
end
"#;

const DYNAMODB_RHAI: &str = r#"
fn main(event, context) {
    let ddb = aws::client("dynamodb");
    let t = event.table;
    ddb.send("CreateTable", #{
        TableName: t,
        KeySchema: [#{ AttributeName: "pk", KeyType: "HASH" }, #{ AttributeName: "sk", KeyType: "RANGE" }],
        AttributeDefinitions: [#{ AttributeName: "pk", AttributeType: "S" }, #{ AttributeName: "sk", AttributeType: "N" }],
        BillingMode: "PAY_PER_REQUEST",
    });
    for i in 1..=3 {
        ddb.send("PutItem", #{ TableName: t, Item: aws::dynamodb::marshal(#{ pk: "user#1", sk: i, name: `item ${i}`, tags: ["a", "b"], price: i * 1.5 }) });
    }
    let got = ddb.send("GetItem", #{ TableName: t, Key: aws::dynamodb::marshal(#{ pk: "user#1", sk: 2 }) });
    let query = ddb.send("Query", #{
        TableName: t,
        KeyConditionExpression: "pk = :pk AND sk >= :min",
        ExpressionAttributeValues: aws::dynamodb::marshal(#{ ":pk": "user#1", ":min": 2 }),
    });
    let sks = query.Items.map(|item| aws::dynamodb::unmarshal(item).sk);
    let condition = #{};
    try {
        ddb.send("PutItem", #{ TableName: t, Item: aws::dynamodb::marshal(#{ pk: "user#1", sk: 1 }), ConditionExpression: "attribute_not_exists(pk)" });
    } catch (err) {
        condition = #{ caught: true, type: err.errorType, status: err.status, request_id: err.request_id.len() > 0 };
    }
    let missing = #{};
    try {
        ddb.send("GetItem", #{ TableName: "no-such-table", Key: aws::dynamodb::marshal(#{ pk: "x" }) });
    } catch (err) {
        missing = #{ caught: true, type: err.errorType, status: err.status };
    }
    #{ item: aws::dynamodb::unmarshal(got.Item), count: query.Count, sks: sks, condition: condition, missing: missing }
}
"#;

/// DynamoDB: a table made, items put and got, a query, a failed condition and a
/// missing table as AWS's error codes.
#[test]
fn dynamodb_items_queries_and_failed_conditions() {
    let moto = Moto::start();
    both(
        "aws_dynamodb",
        DYNAMODB_LUA,
        DYNAMODB_RHAI,
        &moto.env(),
        |lang| json!({ "table": named("orders", lang) }),
        &json!({
            "item": { "pk": "user#1", "sk": 2, "name": "item 2", "tags": ["a", "b"], "price": 3 },
            "count": 2,
            "sks": [2, 3],
            "condition": { "caught": true, "type": "ConditionalCheckFailedException", "status": 400, "request_id": true },
            "missing": { "caught": true, "type": "ResourceNotFoundException", "status": 400 },
        }),
    );
}

/// The stand-in is worth testing against: boto3 signing with the server's key gets
/// answers, and with a wrong secret a 403 `SignatureDoesNotMatch` (which moto
/// sends DynamoDB's clients in XML, where AWS would send JSON).
#[test]
fn the_stand_in_checks_signatures() {
    let moto = Moto::start();
    let output = moto.run_python(
        r#"
import os, re, boto3, botocore

def outcome(service, call, secret=None):
    client = boto3.client(
        service,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or os.environ["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        getattr(client, call)()
        return "ok"
    except botocore.exceptions.ClientError as e:
        error = e.response["Error"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        # moto answers DynamoDB's 403 in XML, which boto3 cannot read as JSON.
        xml = re.search(r"<Code>(\w+)</Code>", error["Message"])
        return f"{status} {error['Code']}" if xml is None else f"{status} {xml[1]} in XML"

print("sts", outcome("sts", "get_caller_identity"))
print("sts wrong", outcome("sts", "get_caller_identity", "wrong"))
print("dynamodb", outcome("dynamodb", "list_tables"))
print("dynamodb wrong", outcome("dynamodb", "list_tables", "wrong"))
print("user", boto3.client("sts").get_caller_identity()["Arn"])
"#,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the boto3 checks failed ({})\nstdout:\n{stdout}\nstderr:\n{}\nmoto's log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        moto.log()
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let [sts, sts_wrong, dynamodb, dynamodb_wrong, user] = lines[..] else {
        panic!("unexpected output:\n{stdout}");
    };
    assert_eq!(sts, "sts ok");
    assert_eq!(sts_wrong, "sts wrong 403 SignatureDoesNotMatch");
    assert_eq!(dynamodb, "dynamodb ok");
    assert_eq!(
        dynamodb_wrong,
        "dynamodb wrong 403 SignatureDoesNotMatch in XML"
    );
    assert_eq!(user, "user arn:aws:iam::123456789012:user/lure-test");
}

const S3_LUA: &str = r#"
function main(event)
  local s3 = aws.client("s3")
  local b = event.bucket
  local data = "\0\1\2\255 binary"
  s3:PutObject({ Bucket = b, Key = "dir/a b.bin", Body = data, ContentType = "application/octet-stream", Metadata = { owner = "lure" } })
  local got = s3:GetObject({ Bucket = b, Key = "dir/a b.bin" })
  local head = s3:HeadObject({ Bucket = b, Key = "dir/a b.bin" })
  local copied = s3:CopyObject({ Bucket = b, Key = "copy.bin", CopySource = b .. "/dir/a b.bin" })
  local list = s3:ListObjectsV2({ Bucket = b })
  s3:DeleteObject({ Bucket = b, Key = "copy.bin" })
  local after = s3:list_objects_v2({ Bucket = b, Prefix = "dir/" })
  local ok, missing = pcall(s3.GetObject, s3, { Bucket = b, Key = "nope" })
  local head_ok, head_missing = pcall(s3.HeadObject, s3, { Bucket = b, Key = "nope" })
  local deleted = s3:DeleteObjects({ Bucket = b, Delete = { Objects = { { Key = "dir/a b.bin" }, { Key = "nope" } } } })
  local empty = s3:ListObjectsV2({ Bucket = b })
  -- Put back, for the presigned URL the test fetches.
  s3:PutObject({ Bucket = b, Key = "dir/a b.bin", Body = data })
  return {
    same = got.Body == data,
    length = got.ContentLength,
    content_type = got.ContentType,
    metadata = got.Metadata,
    etag_quoted = got.ETag:sub(1, 1) == '"' and got.ETag == head.ETag,
    last_modified = got.LastModified:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$") ~= nil,
    head_length = head.ContentLength,
    copy_etag = copied.CopyObjectResult.ETag == got.ETag,
    keys = { list.Contents[1].Key, list.Contents[2].Key },
    size = list.Contents[2].Size,
    count = list.KeyCount,
    truncated = list.IsTruncated,
    after = { count = after.KeyCount, contents = #after.Contents, key = after.Contents[1].Key },
    missing = { caught = not ok, type = missing.errorType, status = missing.status },
    head_missing = { caught = not head_ok, type = head_missing.errorType, status = head_missing.status },
    deleted = #deleted.Deleted,
    empty = { count = empty.KeyCount, contents = empty.Contents },
    url = aws.presign({ url = event.object_url, service = "s3", expires = 300, time = event.time }),
  }
end
"#;

const S3_RHAI: &str = r#"
fn main(event, context) {
    let s3 = aws::client("s3");
    let b = event.bucket;
    let data = blob();
    for byte in [0, 1, 2, 255, 32, 98, 105, 110, 97, 114, 121] { data.push(byte); }
    s3.send("PutObject", #{ Bucket: b, Key: "dir/a b.bin", Body: data, ContentType: "application/octet-stream", Metadata: #{ owner: "lure" } });
    let got = s3.send("GetObject", #{ Bucket: b, Key: "dir/a b.bin" });
    let head = s3.send("HeadObject", #{ Bucket: b, Key: "dir/a b.bin" });
    let copied = s3.send("CopyObject", #{ Bucket: b, Key: "copy.bin", CopySource: `${b}/dir/a b.bin` });
    let list = s3.send("ListObjectsV2", #{ Bucket: b });
    s3.send("DeleteObject", #{ Bucket: b, Key: "copy.bin" });
    let after = s3.send("ListObjectsV2", #{ Bucket: b, Prefix: "dir/" });
    let missing = #{};
    try { s3.send("GetObject", #{ Bucket: b, Key: "nope" }); } catch (err) {
        missing = #{ caught: true, type: err.errorType, status: err.status };
    }
    let head_missing = #{};
    try { s3.send("HeadObject", #{ Bucket: b, Key: "nope" }); } catch (err) {
        head_missing = #{ caught: true, type: err.errorType, status: err.status };
    }
    let deleted = s3.send("DeleteObjects", #{ Bucket: b, Delete: #{ Objects: [#{ Key: "dir/a b.bin" }, #{ Key: "nope" }] } });
    let empty = s3.send("ListObjectsV2", #{ Bucket: b });
    // Put back, for the presigned URL the test fetches.
    s3.send("PutObject", #{ Bucket: b, Key: "dir/a b.bin", Body: data });
    let modified = got.LastModified;
    #{
        same: got.Body == data,
        length: got.ContentLength,
        content_type: got.ContentType,
        metadata: got.Metadata,
        etag_quoted: got.ETag.starts_with("\"") && got.ETag == head.ETag,
        last_modified: modified.len() == 24 && modified.ends_with("Z") && modified.sub_string(10, 1) == "T",
        head_length: head.ContentLength,
        copy_etag: copied.CopyObjectResult.ETag == got.ETag,
        keys: [list.Contents[0].Key, list.Contents[1].Key],
        size: list.Contents[1].Size,
        count: list.KeyCount,
        truncated: list.IsTruncated,
        after: #{ count: after.KeyCount, contents: after.Contents.len(), key: after.Contents[0].Key },
        missing: missing,
        head_missing: head_missing,
        deleted: deleted.Deleted.len(),
        empty: #{ count: empty.KeyCount, contents: empty.Contents },
        url: aws::presign(#{ url: event.object_url, service: "s3", expires: 300, time: event.time }),
    }
}
"#;

/// S3: binary data put and got, head, copy, list, delete (one and several; an
/// empty listing's `Contents` is still an array), S3's errors, and a
/// presigned GET that a plain client fetches and botocore's signer agrees with.
#[test]
fn s3_objects_and_a_presigned_url() {
    let moto = Moto::start();
    let time = "20261130T120000Z";
    let scratch = Scratch::new("aws_s3");
    scratch.write("story.lua", S3_LUA);
    scratch.write("story.rhai", S3_RHAI);
    for lang in [Lang::Lua, Lang::Rhai] {
        let bucket = named("bucket", lang);
        let made = moto.run_python(&format!(
            "import boto3; boto3.client('s3').create_bucket(Bucket='{bucket}')"
        ));
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let object_url = format!("{}/{bucket}/dir/a%20b.bin", moto.endpoint);
        let event = json!({ "bucket": bucket, "object_url": object_url, "time": time });
        let (mut response, ok) = invoke(&scratch, &lang.file("story"), &event, &moto.env());
        assert!(ok, "{lang:?}: {response}");
        let url = response["url"].take();
        assert_eq!(
            response,
            json!({
                "same": true,
                "length": 11,
                "content_type": "application/octet-stream",
                "metadata": { "owner": "lure" },
                "etag_quoted": true,
                "last_modified": true,
                "head_length": 11,
                "copy_etag": true,
                "keys": ["copy.bin", "dir/a b.bin"],
                "size": 11,
                "count": 2,
                "truncated": false,
                "after": { "count": 1, "contents": 1, "key": "dir/a b.bin" },
                "missing": { "caught": true, "type": "NoSuchKey", "status": 404 },
                "head_missing": { "caught": true, "type": "NotFound", "status": 404 },
                "deleted": 2,
                "empty": { "count": 0, "contents": [] },
                "url": null,
            }),
            "{lang:?}"
        );
        check_presigned(&moto, url.as_str().expect("a URL"), &object_url, time);
    }
}

/// `url` is what botocore's S3 query signer makes for `object_url` at `time`
/// with the stand-in's key, and a client without credentials fetches the
/// object with it. moto 5.2.5 answers presigned URLs with 500 while its auth is
/// on (it looks for an Authorization header), so the fetch runs with auth off.
fn check_presigned(moto: &Moto, url: &str, object_url: &str, time: &str) {
    let output = moto.run_python(&format!(
        r#"
import datetime, os, urllib.parse, urllib.request
frozen = datetime.datetime.strptime("{time}", "%Y%m%dT%H%M%SZ")
class Frozen(datetime.datetime):
    @classmethod
    def utcnow(cls): return frozen
    @classmethod
    def now(cls, tz=None): return frozen.replace(tzinfo=tz) if tz else frozen
datetime.datetime = Frozen
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
credentials = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
request = AWSRequest(method="GET", url="{object_url}")
S3SigV4QueryAuth(credentials, "s3", "us-east-1", expires=300).add_auth(request)
theirs = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
ours = urllib.parse.parse_qs(urllib.parse.urlsplit("{url}").query)
assert ours == theirs, (ours, theirs)
off = urllib.request.Request("{endpoint}/moto-api/reset-auth", data=b"inf", method="POST", headers={{"Content-Type": "text/plain"}})
urllib.request.urlopen(off).read()
with urllib.request.urlopen("{url}") as response:
    body = response.read()
assert body == b"\x00\x01\x02\xff binary", body
on = urllib.request.Request("{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={{"Content-Type": "text/plain"}})
urllib.request.urlopen(on).read()
print("presigned ok")
"#,
        endpoint = moto.endpoint
    ));
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("presigned ok"),
        "the presigned URL check failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

const SERVICES_LUA: &str = r#"
function main(event)
  local p = event.prefix
  local sqs = aws.client("sqs")
  local queue = sqs:CreateQueue({ QueueName = p .. "-jobs" })
  sqs:SendMessage({
    QueueUrl = queue.QueueUrl,
    MessageBody = "hello",
    MessageAttributes = { kind = { DataType = "String", StringValue = "greeting" } },
  })
  local received = sqs:ReceiveMessage({ QueueUrl = queue.QueueUrl, MaxNumberOfMessages = 1, MessageAttributeNames = { "All" } })
  local sns = aws.client("sns")
  local topic = sns:CreateTopic({ Name = p .. "-events" })
  local published = sns:Publish({
    TopicArn = topic.TopicArn,
    Message = "hi",
    MessageAttributes = { entry = { { Name = "kind", Value = { DataType = "String", StringValue = "greeting" } } } },
  })
  local topics = sns:ListTopics()
  local secrets = aws.client("secretsmanager")
  secrets:CreateSecret({ Name = p .. "/db", SecretString = json.encode({ password = "pw" }) })
  local secret = json.decode(secrets:GetSecretValue({ SecretId = p .. "/db" }).SecretString)
  local ssm = aws.client("ssm")
  ssm:PutParameter({ Name = "/" .. p .. "/flag", Value = "on", Type = "String" })
  local me = aws.client("sts"):GetCallerIdentity()
  return {
    message = received.Messages[1].Body,
    attribute = received.Messages[1].MessageAttributes.kind.StringValue,
    published = #published.MessageId > 0,
    topics = #topics.Topics,
    topic_arn = topics.Topics[1].TopicArn == topic.TopicArn,
    password = secret.password,
    parameter = ssm:GetParameter({ Name = "/" .. p .. "/flag" }).Parameter.Value,
    account = me.Account,
    arn = me.Arn,
  }
end
"#;

const SERVICES_RHAI: &str = r#"
fn main(event, context) {
    let p = event.prefix;
    let sqs = aws::client("sqs");
    let queue = sqs.send("CreateQueue", #{ QueueName: `${p}-jobs` });
    sqs.send("SendMessage", #{
        QueueUrl: queue.QueueUrl,
        MessageBody: "hello",
        MessageAttributes: #{ kind: #{ DataType: "String", StringValue: "greeting" } },
    });
    let received = sqs.send("ReceiveMessage", #{ QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 1, MessageAttributeNames: ["All"] });
    let sns = aws::client("sns");
    let topic = sns.send("CreateTopic", #{ Name: `${p}-events` });
    let published = sns.send("Publish", #{
        TopicArn: topic.TopicArn,
        Message: "hi",
        MessageAttributes: #{ entry: [#{ Name: "kind", Value: #{ DataType: "String", StringValue: "greeting" } }] },
    });
    let topics = sns.send("ListTopics", ());
    let secrets = aws::client("secretsmanager");
    secrets.send("CreateSecret", #{ Name: `${p}/db`, SecretString: json::encode(#{ password: "pw" }) });
    let secret = json::decode(secrets.send("GetSecretValue", #{ SecretId: `${p}/db` }).SecretString);
    let ssm = aws::client("ssm");
    ssm.send("PutParameter", #{ Name: `/${p}/flag`, Value: "on", Type: "String" });
    let me = aws::client("sts").send("GetCallerIdentity", ());
    #{
        message: received.Messages[0].Body,
        attribute: received.Messages[0].MessageAttributes.kind.StringValue,
        published: published.MessageId.len() > 0,
        topics: topics.Topics.len(),
        topic_arn: topics.Topics[0].TopicArn == topic.TopicArn,
        password: secret.password,
        parameter: ssm.send("GetParameter", #{ Name: `/${p}/flag` }).Parameter.Value,
        account: me.Account,
        arn: me.Arn,
    }
}
"#;

/// SQS (JSON), SNS and STS (query: flattened parameters, `<member>` arrays,
/// text values), Secrets Manager and SSM, each against the stand-in, each on
/// its own server so the languages' topics do not mix.
#[test]
fn sqs_sns_secrets_manager_ssm_and_sts() {
    for lang in [Lang::Lua, Lang::Rhai] {
        let moto = Moto::start();
        let scratch = Scratch::new(&named("aws_services", lang));
        scratch.write("story.lua", SERVICES_LUA);
        scratch.write("story.rhai", SERVICES_RHAI);
        let event = json!({ "prefix": named("app", lang) });
        let (response, ok) = invoke(&scratch, &lang.file("story"), &event, &moto.env());
        assert!(ok, "{lang:?}: {response}");
        assert_eq!(
            response,
            json!({
                "message": "hello",
                "attribute": "greeting",
                "published": true,
                "topics": 1,
                "topic_arn": true,
                "password": "pw",
                "parameter": "on",
                "account": "123456789012",
                "arn": "arn:aws:iam::123456789012:user/lure-test",
            }),
            "{lang:?}"
        );
    }
}

const WHO_LUA: &str = r#"
function main(event)
  local options = event.secret and {
    credentials = { access_key_id = event.key, secret_access_key = event.secret },
  } or nil
  local ok, answer = pcall(function()
    return aws.client("sts", options):GetCallerIdentity()
  end)
  if ok then return { arn = answer.Arn } end
  return { type = answer.errorType, status = answer.status }
end
"#;

const WHO_RHAI: &str = r#"
fn main(event, context) {
    let options = if event.secret != () {
        #{ credentials: #{ access_key_id: event.key, secret_access_key: event.secret } }
    } else {
        #{}
    };
    // try/catch is a statement in Rhai: each branch returns.
    try {
        return #{ arn: aws::client("sts", options).send("GetCallerIdentity", ()).Arn };
    } catch (err) {
        return #{ type: err.errorType, status: err.status };
    }
}
"#;

/// Who the stand-in says the caller is, in both languages, with `env`.
fn who(name: &str, env: &[(String, String)], event: Value) -> [Value; 2] {
    let scratch = Scratch::new(name);
    scratch.write("story.lua", WHO_LUA);
    scratch.write("story.rhai", WHO_RHAI);
    [Lang::Lua, Lang::Rhai].map(|lang| {
        let (response, ok) = invoke(&scratch, &lang.file("story"), &event, env);
        assert!(ok, "{name} ({lang:?}): {response}");
        response
    })
}

const USER_ARN: &str = "arn:aws:iam::123456789012:user/lure-test";

/// A wrong secret key is AWS's 403 `SignatureDoesNotMatch`, not a transport error.
#[test]
fn a_wrong_secret_key_is_signature_does_not_match() {
    let moto = Moto::start();
    let event = json!({ "key": moto.access_key_id, "secret": "not-the-secret" });
    for answer in who("aws_wrong_secret", &moto.env(), event) {
        assert_eq!(
            answer,
            json!({ "type": "SignatureDoesNotMatch", "status": 403 })
        );
    }
}

/// Without the key in the environment, credentials come from the shared
/// credentials file's profile, or from the container credentials endpoint
/// (with its authorization token).
#[test]
fn credentials_come_from_the_shared_file_or_the_container_endpoint() {
    let moto = Moto::start();
    let without_keys: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET"))
        .collect();

    let scratch = Scratch::new("aws_credentials_file");
    let file = scratch.write(
        "credentials",
        &format!(
            "[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = wrong\n\n\
             [lure]\n# the stand-in's user\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            moto.access_key_id, moto.secret_access_key
        ),
    );
    let mut env = without_keys.clone();
    env.push((
        "AWS_SHARED_CREDENTIALS_FILE".into(),
        file.to_string_lossy().into_owned(),
    ));
    env.push(("AWS_PROFILE".into(), "lure".into()));
    for answer in who("aws_shared_file", &env, json!({})) {
        assert_eq!(answer, json!({ "arn": USER_ARN }));
    }

    let endpoint = WebServer::http();
    let mut env = without_keys;
    env.push((
        "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
        endpoint.url(&format!(
            "/credentials/{}/{}",
            hex::encode(&moto.access_key_id),
            hex::encode(&moto.secret_access_key)
        )),
    ));
    env.push((
        "AWS_CONTAINER_AUTHORIZATION_TOKEN".into(),
        "container-token".into(),
    ));
    for answer in who("aws_container", &env, json!({})) {
        assert_eq!(answer, json!({ "arn": USER_ARN }));
    }
    let asked = endpoint.requests();
    assert_eq!(asked.len(), 2, "once per process (one per language)");
    assert!(
        asked
            .iter()
            .all(|r| r.header("authorization") == Some("container-token"))
    );
}

const LIST_LUA: &str = r#"
function main(event)
  local ddb = aws.client("dynamodb", { endpoint = event.endpoint })
  local ok, answer = pcall(ddb.ListTables, ddb, {})
  if ok then return { tables = answer.TableNames } end
  return { type = answer.errorType, status = answer.status, message = answer.errorMessage }
end
"#;

const LIST_RHAI: &str = r#"
fn main(event, context) {
    let ddb = aws::client("dynamodb", #{ endpoint: event.endpoint });
    try {
        return #{ tables: ddb.send("ListTables", #{}).TableNames };
    } catch (err) {
        return #{ type: err.errorType, status: err.status, message: err.errorMessage };
    }
}
"#;

/// On Lambda, calls carry the invocation's trace header as `X-Amzn-Trace-Id`, as
/// the AWS SDKs' recursion detection sends it; an invocation without one sends none.
#[test]
fn calls_carry_the_invocations_trace_header() {
    const TRACE: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    for (lang, script) in [(Lang::Lua, LIST_LUA), (Lang::Rhai, LIST_RHAI)] {
        let service = WebServer::http();
        let mut s = Scenario::new(&named("aws_trace", lang));
        let file = lang.file("story");
        s.write(&file, script);
        s.start_with_env(
            &file,
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
                ("AWS_REGION", "eu-west-1"),
            ],
        );
        let event = json!({ "endpoint": service.url("/flaky/0") }).to_string();
        for invocation in [
            Invocation::new("traced", event.clone()).trace_id(TRACE),
            Invocation::new("untraced", event.clone()),
        ] {
            let post = s.answer(invocation);
            assert_eq!(post.json(), json!({ "tables": ["t"] }), "{lang:?}");
        }
        let requests = service.requests();
        assert_eq!(requests.len(), 2, "{lang:?}");
        assert_eq!(
            requests[0].header("x-amzn-trace-id"),
            Some(TRACE),
            "{lang:?}"
        );
        assert_eq!(requests[1].header("x-amzn-trace-id"), None, "{lang:?}");
    }
}

/// Standard-mode retries: a service that fails twice then answers is answered
/// on the third attempt; one that keeps failing gives its error after three.
/// The attempts share `http`'s pooled connection. The first service is found
/// through `AWS_ENDPOINT_URL_DYNAMODB` (over
/// `AWS_ENDPOINT_URL`, a closed port), the second through the `endpoint` option.
#[test]
fn retries_outlast_two_failures_and_stop_at_three_attempts() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let closed_url = format!("http://{}", closed.local_addr().expect("its address"));
    drop(closed);
    for (failures, expected) in [
        (2, json!({ "tables": ["t"] })),
        (
            5,
            json!({ "type": "ServiceUnavailable", "status": 503, "message": "try again" }),
        ),
    ] {
        for lang in [Lang::Lua, Lang::Rhai] {
            let service = WebServer::http();
            let scratch = Scratch::new(&named(&format!("aws_retries_{failures}"), lang));
            scratch.write("story.lua", LIST_LUA);
            scratch.write("story.rhai", LIST_RHAI);
            let endpoint = service.url(&format!("/flaky/{failures}"));
            let mut env: Vec<(String, String)> = [
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL", closed_url.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            let event = if failures == 2 {
                env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), endpoint));
                json!({})
            } else {
                json!({ "endpoint": endpoint })
            };
            let (response, ok) = invoke(&scratch, &lang.file("story"), &event, &env);
            assert!(ok, "{lang:?}: {response}");
            assert_eq!(response, expected, "{lang:?}, {failures} failures");
            let requests = service.requests();
            assert_eq!(requests.len(), 3, "{lang:?}: three attempts");
            assert_eq!(
                service.connections(),
                1,
                "{lang:?}: over one pooled connection"
            );
            for request in &requests {
                assert_eq!(
                    request.header("x-amz-target"),
                    Some("DynamoDB_20120810.ListTables")
                );
                assert!(
                    request
                        .header("authorization")
                        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"))
                );
            }
        }
    }
}

/// `aws.sign` gives the headers of S3's documented GET Object example, and
/// `aws.presign` its documented presigned URL, in both languages.
#[test]
fn sign_and_presign_match_s3s_documented_examples() {
    let lua = r#"
function main(event)
  local request = {
    url = "https://examplebucket.s3.amazonaws.com/test.txt",
    service = "s3",
    region = "us-east-1",
    time = "20130524T000000Z",
    credentials = event.credentials,
  }
  local presigned = aws.presign({
    url = request.url, service = "s3", region = "us-east-1", time = request.time,
    credentials = event.credentials, expires = 86400,
  })
  request.headers = { Range = "bytes=0-9" }
  return { headers = aws.sign(request), url = presigned }
end
"#;
    let rhai = r#"
fn main(event, context) {
    let url = "https://examplebucket.s3.amazonaws.com/test.txt";
    let headers = aws::sign(#{
        url: url, service: "s3", region: "us-east-1", time: "20130524T000000Z",
        credentials: event.credentials, headers: #{ Range: "bytes=0-9" },
    });
    let presigned = aws::presign(#{
        url: url, service: "s3", region: "us-east-1", time: "20130524T000000Z",
        credentials: event.credentials, expires: 86400,
    });
    #{ headers: headers, url: presigned }
}
"#;
    let credentials = json!({
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    });
    both(
        "aws_sign",
        lua,
        rhai,
        &[],
        |_| json!({ "credentials": credentials }),
        &json!({
            "headers": {
                "authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "x-amz-date": "20130524T000000Z",
            },
            "url": "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        }),
    );
}
