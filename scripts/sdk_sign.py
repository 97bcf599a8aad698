"""Signs a request the way the official SDK does (huaweicloudsdkcore's SDK-HMAC-SHA256
signer), for the benchmark scripts: `sign(method, url, body, ak, sk)` answers the headers to
send. Needs huaweicloudsdkcore (scripts/test.sh installs it into .cache/venv)."""

import urllib.parse

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer


def sign(method, url, body, ak, sk, headers=None):
    u = urllib.parse.urlsplit(url)
    request = SdkRequest(method=method, schema=u.scheme, host=u.netloc, resource_path=u.path,
                         query_params=urllib.parse.parse_qsl(u.query),
                         header_params=dict({"Content-Type": "application/json"}, **(headers or {})),
                         body=body)
    Signer(BasicCredentials(ak, sk)).sign(request)
    return dict(request.header_params)
