"""Authentication (`--auth required`): AK/SK signatures exactly as the official SDK makes
them, IAM-style tokens, per-project and read-only credentials, and the API gateway's refusals."""

import datetime
import os
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import (AK, CREDENTIALS, FGS, OTHER_PROJECT, PROJECT, SK, Fgs, free_port, python_fn, signed,
                      unique, write_credentials)
from test_functions_api import HELLO

FUNCTIONS = "/v2/%s/fgs/functions" % PROJECT


def refused(r, status, code, message_part=""):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code, body
    assert message_part in body["error_msg"], body
    assert len(body["request_id"]) == 32 and r.headers["X-Request-Id"] == body["request_id"]
    return body


def sdk_date(delta_secs=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_secs)
    return t.strftime("%Y%m%dT%H%M%SZ")


def test_signed_requests_pass_and_the_function_api_works(auth_fgs):
    name = unique("authfn")
    r = signed(auth_fgs, "POST", FUNCTIONS, body=python_fn(name, HELLO))
    assert r.status_code == 200, r.text
    urn = r.json()["func_urn"]
    r = signed(auth_fgs, "GET", FUNCTIONS, query={"maxitems": "100", "marker": "0"})
    assert name in [f["func_name"] for f in r.json()["functions"]]
    r = signed(auth_fgs, "POST", FUNCTIONS + "/%s/invocations" % urn, body={"a": 1},
               headers={"X-Cff-Request-Version": "v1"})
    assert r.status_code == 200 and r.headers["X-Func-Err-Code"] == "0", r.text


def test_unauthenticated_and_badly_signed_requests_are_refused(auth_fgs):
    refused(requests.get(auth_fgs.url + FUNCTIONS), 401, "APIGW.0301",
            "Incorrect IAM authentication information: x-auth-token not found")
    body = refused(signed(auth_fgs, "GET", FUNCTIONS, sk="wrong-sk"), 401, "APIGW.0301",
                   "verify aksk signature fail, canonicalRequest:GET|/v2/%s/fgs/functions/|" % PROJECT)
    assert SK not in body["error_msg"]
    refused(signed(auth_fgs, "GET", FUNCTIONS, ak="nobody"), 401, "APIGW.0301", "ak nobody not exist")
    refused(signed(auth_fgs, "GET", FUNCTIONS, date=sdk_date(-16 * 60)), 401, "APIGW.0301", "signature expired")
    refused(signed(auth_fgs, "GET", FUNCTIONS, date=sdk_date(+16 * 60)), 401, "APIGW.0301", "signature expired")
    assert signed(auth_fgs, "GET", FUNCTIONS, date=sdk_date(-14 * 60)).status_code == 200
    refused(requests.get(auth_fgs.url + FUNCTIONS, headers={"Authorization": "Bearer x"}), 401, "APIGW.0301")


def test_a_signature_covers_the_body_query_and_headers(auth_fgs):
    good = signed(auth_fgs, "GET", FUNCTIONS, query={"maxitems": "5"})
    assert good.status_code == 200
    # Replay the signed headers with another query, another body, another signed header.
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    body = b'{"func_name": "x"}'
    request = SdkRequest(method="POST", schema="http", host="127.0.0.1:%d" % auth_fgs.port,
                         resource_path=FUNCTIONS, query_params=[],
                         header_params={"Content-Type": "application/json"}, body=body)
    Signer(BasicCredentials(AK, SK)).sign(request)
    url = auth_fgs.url + FUNCTIONS
    refused(requests.post(url, headers=request.header_params, data=b'{"func_name": "y"}'), 401, "APIGW.0301",
            "verify aksk signature fail")
    refused(requests.post(url + "?maxitems=1", headers=request.header_params, data=body), 401, "APIGW.0301")
    h = dict(request.header_params, **{"Content-Type": "text/plain"})
    refused(requests.post(url, headers=h, data=body), 401, "APIGW.0301")
    # The same, unaltered, is accepted (and fails validation, not authentication).
    assert requests.post(url, headers=request.header_params, data=body).status_code == 400


def test_projects_and_read_only_credentials(auth_fgs):
    refused(signed(auth_fgs, "GET", "/v2/%s/fgs/functions" % OTHER_PROJECT), 403, "APIGW.0302",
            "The IAM user is not authorized to access the API.")
    assert signed(auth_fgs, "GET", "/v2/%s/fgs/functions" % OTHER_PROJECT, ak="other-ak", sk="other-sk").status_code == 200
    assert signed(auth_fgs, "GET", FUNCTIONS, ak="reader-ak", sk="reader-sk").status_code == 200
    refused(signed(auth_fgs, "POST", FUNCTIONS, ak="reader-ak", sk="reader-sk", body=python_fn(unique("ro"), HELLO)),
            403, "APIGW.0302")
    # EventGrid's API is behind the same gate.
    refused(requests.get(auth_fgs.url + "/v1/%s/eventstreamings" % PROJECT), 401, "APIGW.0301")
    assert signed(auth_fgs, "GET", "/v1/%s/eventstreamings" % PROJECT).status_code == 200
    refused(signed(auth_fgs, "GET", "/v1/%s/eventstreamings" % OTHER_PROJECT), 403, "APIGW.0302")


def test_healthz_is_open_and_metrics_need_an_all_projects_credential(auth_fgs):
    health = requests.get(auth_fgs.url + "/healthz").json()
    assert health["auth"] == "required"
    refused(requests.get(auth_fgs.url + "/metrics"), 401, "APIGW.0301")
    refused(signed(auth_fgs, "GET", "/metrics"), 403, "APIGW.0302")
    r = signed(auth_fgs, "GET", "/metrics", ak="ops-ak", sk="ops-sk")
    assert r.status_code == 200 and "fgs_invocations_total" in r.text


def token_request(user="alice", password="alice-pw", project=PROJECT):
    return {"auth": {"identity": {"methods": ["password"],
                                  "password": {"user": {"name": user, "password": password,
                                                        "domain": {"name": "d"}}}},
                     "scope": {"project": {"id": project}}}}


def test_tokens(auth_fgs):
    r = requests.post(auth_fgs.url + "/v3/auth/tokens", json=token_request())
    assert r.status_code == 201, r.text
    token = r.headers["X-Subject-Token"]
    body = r.json()["token"]
    assert body["project"]["id"] == PROJECT and body["methods"] == ["password"]
    assert body["expires_at"] > body["issued_at"]
    r = requests.get(auth_fgs.url + FUNCTIONS, headers={"X-Auth-Token": token})
    assert r.status_code == 200, r.text
    # A token is scoped to its project.
    refused(requests.get(auth_fgs.url + "/v2/%s/fgs/functions" % OTHER_PROJECT, headers={"X-Auth-Token": token}),
            403, "APIGW.0302")
    refused(requests.get(auth_fgs.url + FUNCTIONS, headers={"X-Auth-Token": token[:-2] + "AA"}), 401,
            "APIGW.0301", "decrypt token fail")
    r = requests.post(auth_fgs.url + "/v3/auth/tokens", json=token_request(password="wrong"))
    assert r.status_code == 401 and r.json()["error"]["message"] == "The username or password is wrong."
    assert "X-Subject-Token" not in r.headers
    r = requests.post(auth_fgs.url + "/v3/auth/tokens", json=token_request(project=OTHER_PROJECT))
    assert r.status_code == 403


def test_tokens_expire(fresh_fgs):
    creds = write_credentials(tempfile.mkdtemp(dir=fresh_fgs.tmp))
    host = fresh_fgs("--auth", "required", "--credentials", creds, "--token-ttl", "1s")
    token = requests.post(host.url + "/v3/auth/tokens", json=token_request()).headers["X-Subject-Token"]
    assert requests.get(host.url + FUNCTIONS, headers={"X-Auth-Token": token}).status_code == 200
    time.sleep(1.5)
    refused(requests.get(host.url + FUNCTIONS, headers={"X-Auth-Token": token}), 401, "APIGW.0307",
            "The token must be updated.")


def test_auth_is_required_off_loopback_and_credentials_must_be_private(tmp_path):
    run = lambda *args: subprocess.run([FGS, "serve", "--data-dir", str(tmp_path / "d")] + list(args),
                                       capture_output=True, timeout=20)
    out = run("--listen", "0.0.0.0:%d" % free_port())
    assert out.returncode != 0 and b"needs --credentials" in out.stderr
    loose = write_credentials(str(tmp_path), mode=0o644)
    out = run("--listen", "127.0.0.1:%d" % free_port(), "--auth", "required", "--credentials", loose)
    assert out.returncode != 0 and b"readable by group or others" in out.stderr


def test_loopback_default_is_no_auth(fgs):
    assert requests.get(fgs.url + "/healthz").json()["auth"] == "none"
    assert requests.get(fgs.url + FUNCTIONS).status_code == 200


def test_an_access_key_and_a_user_are_locked_after_five_failures_in_a_row(fresh_fgs):
    """As the API gateway locks an AK/SK pair that fails more than five times in a row: the
    sixth call is refused even when right, other keys are untouched, and the lock lifts."""
    creds = write_credentials(tempfile.mkdtemp(dir=fresh_fgs.tmp))
    host = fresh_fgs("--auth", "required", "--credentials", creds, "--auth-lockout", "3s")
    locked = "AK access failed to reach the limit,forbidden"
    # A success starts the count again.
    for _ in range(4):
        refused(signed(host, "GET", FUNCTIONS, sk="wrong"), 401, "APIGW.0301", "verify aksk signature fail")
    assert signed(host, "GET", FUNCTIONS).status_code == 200
    for _ in range(5):
        refused(signed(host, "GET", FUNCTIONS, sk="wrong"), 401, "APIGW.0301", "verify aksk signature fail")
    refused(signed(host, "GET", FUNCTIONS), 401, "APIGW.0301", locked)
    assert signed(host, "GET", FUNCTIONS, ak="reader-ak", sk="reader-sk").status_code == 200
    # Unknown keys are refused as unknown, never tracked.
    for _ in range(6):
        refused(signed(host, "GET", FUNCTIONS, ak="guess"), 401, "APIGW.0301", "ak guess not exist")

    tokens = host.url + "/v3/auth/tokens"
    for _ in range(5):
        r = requests.post(tokens, json=token_request(password="wrong"))
        assert r.status_code == 401 and r.json()["error"]["message"] == "The username or password is wrong."
    r = requests.post(tokens, json=token_request())
    assert r.status_code == 401 and "locked" in r.json()["error"]["message"]
    assert "X-Subject-Token" not in r.headers

    time.sleep(3.2)
    assert signed(host, "GET", FUNCTIONS).status_code == 200
    assert requests.post(tokens, json=token_request()).status_code == 201
    # Refusals are counted by code, and not logged at info level (a flood of bad requests must
    # not become a flood of log lines).
    metrics = signed(host, "GET", "/metrics", ak="ops-ak", sk="ops-sk").text
    counts = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
              if line.startswith("fgs_auth_refusals_total{")}
    assert counts['fgs_auth_refusals_total{code="APIGW.0301"}'] >= 4 + 5 + 1 + 6, counts
    host.log.flush()
    assert b"request refused" not in open(host.log.name, "rb").read()


def test_bodies_held_for_their_signature_share_one_budget(fresh_fgs):
    """fgs reads a signed body to hash it before it knows the signature is right: the bytes
    held at once, over all requests, have a bound, and a request beyond it is refused at once
    with the gateway's throttling answer, before its body is read."""
    import socket
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
    from sdk_sign import sign

    creds = write_credentials(tempfile.mkdtemp(dir=fresh_fgs.tmp))
    host = fresh_fgs("--auth", "required", "--credentials", creds, "--signed-body-budget", str(4 << 20))
    big = b"[" + b"0," * (3 << 19) + b"0]"  # 3 MB of JSON
    url = host.url + FUNCTIONS
    headers = sign("POST", url, big, AK, SK, {"Content-Type": "application/json"})
    slow = socket.create_connection(("127.0.0.1", host.port))
    head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n%s\r\n" % (
        FUNCTIONS, host.port, len(big), "".join("%s: %s\r\n" % kv for kv in headers.items() if kv[0] != "Host"))
    slow.sendall(head.encode() + big[:1024])
    time.sleep(0.5)
    try:
        # 3 MB held by the slow upload; another 3 MB does not fit in 4 MB.
        refused(signed(host, "POST", FUNCTIONS, body=big), 429, "APIGW.0308", "throttling threshold")
        # Calls without a body pass.
        assert signed(host, "GET", FUNCTIONS).status_code == 200
        slow.sendall(big[1024:])
        answer = slow.recv(65536).decode()
        # Verified, then refused by the function API (the body is not a function): not 401/429.
        assert answer.startswith("HTTP/1.1 406") and '"FSS.0406"' in answer, answer[:300]
    finally:
        slow.close()
    # The slow upload's share came back.
    r = signed(host, "POST", FUNCTIONS, body=big)
    assert r.status_code == 406 and r.json()["error_code"] == "FSS.0406", r.text
