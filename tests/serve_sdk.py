"""boto3's Lambda client against `lure serve`: run by tests/serve.rs
(`aws_python_sdk_drives_serve`) as `python serve_sdk.py http://127.0.0.1:PORT`,
with the handler defined in that test. Exits non-zero on the first failed check.
"""

import base64
import json
import sys

from lambda_client import check, client as lambda_client

endpoint = sys.argv[1]
client = lambda_client(endpoint)


# Success, with a client context passed through to the handler.
context = base64.b64encode(json.dumps({"custom": {"tenant": "acme"}}).encode()).decode()
ok = client.invoke(
    FunctionName="my-function",
    Payload=json.dumps({"name": "boto3"}),
    ClientContext=context,
)
check("success status", ok["StatusCode"], 200)
check("success FunctionError", ok.get("FunctionError"), None)
check("success ExecutedVersion", ok["ExecutedVersion"], "$LATEST")
check(
    "success payload",
    json.loads(ok["Payload"].read()),
    {"greeting": "hello boto3", "custom": {"tenant": "acme"}},
)

# A function error: still HTTP 200, flagged by FunctionError.
failed = client.invoke(FunctionName="my-function", Payload=json.dumps({"fail": True}))
check("error status", failed["StatusCode"], 200)
check("error FunctionError", failed.get("FunctionError"), "Unhandled")
error = json.loads(failed["Payload"].read())
check("errorType", error["errorType"], "OrderNotFound")
check("errorMessage", error["errorMessage"], "order 42 not found")

# The log tail.
tailed = client.invoke(FunctionName="my-function", Payload=b"{}", LogType="Tail")
request_id = tailed["ResponseMetadata"]["RequestId"]
log = base64.b64decode(tailed["LogResult"]).decode()
for part in (
    f"START RequestId: {request_id} Version: $LATEST",
    "hello from boto3's invocation",
    f"END RequestId: {request_id}",
    f"REPORT RequestId: {request_id}\tDuration: ",
):
    if part not in log:
        sys.exit(f"{part!r} missing from the log tail:\n{log}")
check("tail payload", json.loads(tailed["Payload"].read())["greeting"], "hello world")

# Asynchronous and dry-run invocations.
check("Event status", client.invoke(FunctionName="f", InvocationType="Event")["StatusCode"], 202)
check("DryRun status", client.invoke(FunctionName="f", InvocationType="DryRun")["StatusCode"], 204)

print("boto3 checks passed")
