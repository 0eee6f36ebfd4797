"""boto3's `invoke_with_response_stream` (and `invoke`) against `lure serve`: run by
tests/serve.rs (`aws_python_sdk_reads_streamed_answers`) as
`python serve_stream_sdk.py BROKEN_URL URL...`, where each URL serves the
streaming handler defined in that test (one per language) and BROKEN_URL a
function whose init fails. Exits non-zero on the first failed check.
"""

import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.exceptions import ClientError
from lambda_client import check, client

broken_endpoint, endpoints = sys.argv[1], sys.argv[2:]

# The gate the handler calls between its two rows: it answers only once this
# script has read the first row, so the second row cannot have been written
# before the first arrived (no timing involved).
released = threading.Semaphore(0)


class Gate(BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200 if released.acquire(timeout=60) else 504
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


gate_server = ThreadingHTTPServer(("127.0.0.1", 0), Gate)
threading.Thread(target=gate_server.serve_forever, daemon=True).start()
gate = f"http://127.0.0.1:{gate_server.server_port}/gate"


def chunk(payload):
    return {"PayloadChunk": {"Payload": payload}}


def streamed(lam, event, **kwargs):
    return lam.invoke_with_response_stream(
        FunctionName="my-function", Payload=json.dumps(event), **kwargs
    )


for endpoint in endpoints:
    lam = client(endpoint)
    where = f"({endpoint})"

    # Each chunk arrives as it is written: the first before the second is made.
    answer = streamed(lam, {"op": "rows", "gate": gate})
    check(f"status {where}", answer["StatusCode"], 200)
    check(f"content type {where}", answer["ResponseStreamContentType"], "text/csv")
    check(f"executed version {where}", answer["ExecutedVersion"], "$LATEST")
    events = iter(answer["EventStream"])
    check(f"first event {where}", next(events), chunk(b"id,name\n"))
    released.release()
    check(
        f"the other events {where}",
        list(events),
        [chunk(b"1,one\n"), chunk(b"done\n"), {"InvokeComplete": {}}],
    )

    # An error after streaming began: the chunks written, then an error completion.
    answer = streamed(lam, {"op": "error"})
    check(
        f"error events {where}",
        list(answer["EventStream"]),
        [
            chunk(b"id,name\n"),
            chunk(b"1,one\n"),
            {"InvokeComplete": {"ErrorCode": "Boom", "ErrorDetails": "after streaming"}},
        ],
    )

    # The log tail comes with the completion.
    answer = streamed(lam, {"op": "rows"}, LogType="Tail")
    *chunks, complete = list(answer["EventStream"])
    check(f"tailed chunks {where}", len(chunks), 3)
    request_id = answer["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(complete["InvokeComplete"]["LogResult"]).decode()
    for part in (
        f"START RequestId: {request_id} Version: $LATEST",
        "streamed two rows",
        f"END RequestId: {request_id}",
        f"REPORT RequestId: {request_id}\tDuration: ",
    ):
        if part not in log:
            sys.exit(f"{part!r} missing from the log tail {where}:\n{log}")

    # A handler that does not stream: its answer as one chunk.
    answer = streamed(lam, {"op": "buffered"})
    check(f"buffered content type {where}", answer["ResponseStreamContentType"], "application/json")
    events = list(answer["EventStream"])
    check(f"buffered event count {where}", len(events), 2)
    check(f"buffered body {where}", json.loads(events[0]["PayloadChunk"]["Payload"]), {"ok": True})
    check(f"buffered completion {where}", events[1], {"InvokeComplete": {}})

    # An error before any streaming: only the completion.
    answer = streamed(lam, {"op": "fail-early"})
    check(
        f"early error events {where}",
        list(answer["EventStream"]),
        [{"InvokeComplete": {"ErrorCode": "NotReady", "ErrorDetails": "before streaming"}}],
    )

    # A plain Invoke of the streaming handler gets the whole body, as Lambda gives it.
    whole = lam.invoke(FunctionName="my-function", Payload=json.dumps({"op": "rows"}))
    check(f"invoke FunctionError {where}", whole.get("FunctionError"), None)
    check(f"invoke body {where}", whole["Payload"].read(), b"id,name\n1,one\ndone\n")
    failed = lam.invoke(FunctionName="my-function", Payload=json.dumps({"op": "error"}))
    check(f"invoke error FunctionError {where}", failed.get("FunctionError"), "Unhandled")
    check(f"invoke error type {where}", json.loads(failed["Payload"].read())["errorType"], "Boom")

    # 7 MiB: all of it streamed; too much for Invoke's 6 MB.
    events = list(streamed(lam, {"op": "big"})["EventStream"])
    size = sum(len(event["PayloadChunk"]["Payload"]) for event in events[:-1])
    check(f"streamed size {where}", size, 7 << 20)
    check(f"big completion {where}", events[-1], {"InvokeComplete": {}})
    big = lam.invoke(FunctionName="my-function", Payload=json.dumps({"op": "big"}))
    check(f"big FunctionError {where}", big.get("FunctionError"), "Unhandled")
    check(
        f"big error type {where}",
        json.loads(big["Payload"].read())["errorType"],
        "Function.ResponseSizeTooLarge",
    )

    # DryRun does not run; Event is not an invocation type of this API.
    check(f"DryRun {where}", streamed(lam, {}, InvocationType="DryRun")["StatusCode"], 204)
    try:
        streamed(lam, {}, InvocationType="Event")
        sys.exit(f"an Event invocation was accepted {where}")
    except ClientError as e:
        check(f"Event error {where}", e.response["Error"]["Code"], "ValidationException")

# An init error is a completion with its error.
answer = streamed(client(broken_endpoint), {})
events = list(answer["EventStream"])
check("init error events", len(events), 1)
check("init error code", events[0]["InvokeComplete"]["ErrorCode"], "Runtime.UserCodeSyntaxError")
if "app.lua" not in events[0]["InvokeComplete"]["ErrorDetails"]:
    sys.exit(f"the init error does not name the file: {events[0]!r}")

print("boto3 streaming checks passed")
