"""What a project's own tests look like: the official SDK against the fixture's host."""

import json

from huaweicloudsdkfunctiongraph.v2 import InvokeFunctionRequest


def test_greeter_greets(functiongraph):
    answer = functiongraph.invoke_function(InvokeFunctionRequest(
        function_urn="urn:fss:cn-north-4:default:function:default:greeter:latest",
        x_cff_request_version="v1", body={"name": "CI"}))
    assert json.loads(answer.result) == {"message": "Hello, CI!"}
