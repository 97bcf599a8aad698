"""The official Huawei Cloud Python SDK (huaweicloudsdkfunctiongraph), unmodified, against fgs."""

import base64
import json

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkfunctiongraph.v2 import (
    CreateFunctionRequest,
    CreateFunctionRequestBody,
    DeleteFunctionRequest,
    FuncCode,
    FunctionGraphClient,
    InvokeFunctionRequest,
    ListFunctionsRequest,
    ShowFunctionConfigRequest,
    UpdateFunctionCodeRequest,
    UpdateFunctionCodeRequestBody,
)

from conftest import AK, PROJECT, SK, make_zip, unique


def code(version):
    source = "def handler(event, context):\n    return {'version': %d, 'echo': event}\n" % version
    return base64.b64encode(make_zip({"index.py": source})).decode()


def sdk_client(host, ak, sk):
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    return (FunctionGraphClient.new_builder()
            .with_http_config(config)
            .with_credentials(BasicCredentials(ak, sk, PROJECT))
            .with_endpoints([host.url])
            .build())


@pytest.fixture(params=["auth-none", "auth-required"])
def client(request):
    """The SDK against a local-emulation host (any keys) and against one that verifies them."""
    if request.param == "auth-none":
        return sdk_client(request.getfixturevalue("fgs"), "fake-ak", "fake-sk")
    return sdk_client(request.getfixturevalue("auth_fgs"), AK, SK)


def test_sdk_with_a_wrong_secret_key_gets_the_gateways_401(auth_fgs):
    with pytest.raises(ClientRequestException) as refused:
        sdk_client(auth_fgs, AK, "not-the-secret").list_functions(ListFunctionsRequest(maxitems="10"))
    e = refused.value
    assert e.status_code == 401 and e.error_code == "APIGW.0301"
    assert e.error_msg.startswith("Incorrect IAM authentication information: verify aksk signature fail")
    assert len(e.request_id) == 32


def invoke(client, urn, event):
    return client.invoke_function(InvokeFunctionRequest(
        function_urn=urn, x_cff_request_version="v1", x_cff_log_type="tail", body=event))


def test_sdk_lifecycle(client):
    func_name = unique("sdk-compat")
    created = client.create_function(CreateFunctionRequest(body=CreateFunctionRequestBody(
        func_name=func_name, package="default", runtime="Python3.9", handler="index.handler",
        memory_size=256, timeout=30, code_type="zip", code_filename="index.zip",
        func_code=FuncCode(file=code(1)), description="created by the official SDK")))
    urn = created.func_urn
    assert urn.endswith(":function:default:%s:latest" % func_name)
    assert created.memory_size == 256 and created.runtime == "Python3.9"

    listed = client.list_functions(ListFunctionsRequest(maxitems="100", func_name=func_name))
    assert func_name in [f.func_name for f in listed.functions]
    assert listed.count >= 1

    config = client.show_function_config(ShowFunctionConfigRequest(function_urn=urn))
    assert config.func_name == func_name and config.timeout == 30
    assert config.description == "created by the official SDK"
    assert config.last_modified is not None

    first = invoke(client, urn, {"hello": "sdk"})
    assert first.status == 200
    assert json.loads(first.result) == {"version": 1, "echo": {"hello": "sdk"}}
    assert "Start invoke request" in first.log and first.request_id

    client.update_function_code(UpdateFunctionCodeRequest(function_urn=urn, body=UpdateFunctionCodeRequestBody(
        code_type="zip", code_filename="index.zip", func_code=FuncCode(file=code(2)))))
    second = invoke(client, urn, {"hello": "again"})
    assert json.loads(second.result) == {"version": 2, "echo": {"hello": "again"}}

    client.delete_function(DeleteFunctionRequest(function_urn=urn[: -len(":latest")]))
    with pytest.raises(ClientRequestException) as gone:
        invoke(client, urn, {})
    assert gone.value.status_code == 404 and gone.value.error_code == "FSS.1051"
