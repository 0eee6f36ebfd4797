"""A signature-checking AWS stand-in for the `aws` module's tests (tests/support/moto.rs).

Starts moto's server on 127.0.0.1 (a free port), creates an IAM user allowed `*` on
`*` and an access key for it, then turns on moto's IAM auth so that from then on
every request must be signed with that key (SigV4, checked as AWS would) and allowed
by the user's policy. Prints one JSON line on stdout:

    {"endpoint": "http://127.0.0.1:PORT", "access_key_id": "AKIA...", "secret_access_key": "..."}

and serves until its stdin closes, so it dies with the test process that started it.

How auth is switched: moto counts requests while `settings.INITIAL_NO_AUTH_ACTION_COUNT`
(default: infinity, auth off) is above the count; `POST /moto-api/reset-auth` with a
number as its body sets that setting and zeroes the count, so the body `0` checks
every request after it. Both are process-wide, hence one server per process.
"""

import json
import logging
import sys
import urllib.request

import boto3
from moto.server import ThreadedMotoServer

# Werkzeug logs every request to stderr; only trouble is worth keeping.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
endpoint = f"http://{host}:{port}"

# Auth is still off: any credentials will do to set up the user.
iam = boto3.client(
    "iam",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="setup",
    aws_secret_access_key="setup",
)
iam.create_user(UserName="lure-test")
iam.put_user_policy(
    UserName="lure-test",
    PolicyName="everything",
    PolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    ),
)
key = iam.create_access_key(UserName="lure-test")["AccessKey"]

# Not form-encoded (urllib's default), or Flask would parse the body away.
request = urllib.request.Request(
    f"{endpoint}/moto-api/reset-auth",
    data=b"0",
    headers={"Content-Type": "text/plain"},
    method="POST",
)
with urllib.request.urlopen(request) as response:
    assert response.status == 200, response.read()

print(
    json.dumps(
        {
            "endpoint": endpoint,
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
        }
    ),
    flush=True,
)

sys.stdin.read()
