"""What the boto3 scripts of tests/serve.rs share (serve_sdk.py,
serve_stream_sdk.py): a Lambda client of `lure serve`, and a check that ends the
script on the first wrong value.
"""

import sys

import boto3
from botocore.config import Config


def client(endpoint):
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # One attempt: a retried invocation would hide a wrong first answer.
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60),
    )


def check(what, got, want):
    if got != want:
        sys.exit(f"{what}: got {got!r}, want {want!r}")
