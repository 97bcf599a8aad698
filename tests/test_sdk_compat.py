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

from conftest import PROJECT, make_zip


def code(version):
    source = "def handler(event, context):\n    return {'version': %d, 'echo': event}\n" % version
    return base64.b64encode(make_zip({"index.py": source})).decode()


@pytest.fixture
def client(fgs):
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    credentials = BasicCredentials("fake-ak", "fake-sk", PROJECT)
    return (FunctionGraphClient.new_builder()
            .with_http_config(config)
            .with_credentials(credentials)
            .with_endpoints([fgs.url])
            .build())


def invoke(client, urn, event):
    return client.invoke_function(InvokeFunctionRequest(
        function_urn=urn, x_cff_request_version="v1", x_cff_log_type="tail", body=event))


def test_sdk_lifecycle(client):
    created = client.create_function(CreateFunctionRequest(body=CreateFunctionRequestBody(
        func_name="sdk-compat", package="default", runtime="Python3.9", handler="index.handler",
        memory_size=256, timeout=30, code_type="zip", code_filename="index.zip",
        func_code=FuncCode(file=code(1)), description="created by the official SDK")))
    urn = created.func_urn
    assert urn.endswith(":function:default:sdk-compat:latest")
    assert created.memory_size == 256 and created.runtime == "Python3.9"

    listed = client.list_functions(ListFunctionsRequest(maxitems="100"))
    assert "sdk-compat" in [f.func_name for f in listed.functions]
    assert listed.count >= 1

    config = client.show_function_config(ShowFunctionConfigRequest(function_urn=urn))
    assert config.func_name == "sdk-compat" and config.timeout == 30
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
