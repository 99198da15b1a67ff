"""Invoke through boto3 on each runtime family: results, function errors, the log tail."""

import base64
import json

from kiln_harness import ROLE, make_zip

PYTHON = make_zip(
    {
        "app.py": (
            "count = 0\n"
            "def handler(event, context):\n"
            "    global count\n"
            "    count += 1\n"
            "    print('seen', event)\n"
            "    return {'event': event, 'count': count, 'name': context.function_name}\n"
            "def fail(event, context):\n"
            "    raise ValueError('broken')\n"
        )
    }
)
NODE = make_zip({"index.js": "exports.handler = async (event) => ({ node: true, event });\n"})
SHELL_BOOTSTRAP = make_zip(
    {
        "bootstrap": (
            "#!/bin/sh\n"
            "API=http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime\n"
            "while true; do\n"
            "  H=$(mktemp)\n"
            "  EVENT=$(curl -sS -D $H $API/invocation/next)\n"
            "  ID=$(grep -i lambda-runtime-aws-request-id $H | tr -d '\\r' | cut -d' ' -f2)\n"
            "  curl -sS -X POST $API/invocation/$ID/response -d \"{\\\"shell\\\":$EVENT}\" >/dev/null\n"
            "done\n"
        )
    },
    modes={"bootstrap": 0o755},
)


def create(client, name, runtime, handler, code):
    client.create_function(
        FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": code}
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


def test_python_result_warm_state_and_tail(lambda_client, function_name):
    create(lambda_client, function_name, "python3.12", "app.handler", PYTHON)
    first = lambda_client.invoke(FunctionName=function_name, Payload=b'{"a": 1}', LogType="Tail")
    assert first["StatusCode"] == 200
    assert first["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in first
    assert json.loads(first["Payload"].read()) == {
        "event": {"a": 1},
        "count": 1,
        "name": function_name,
    }
    tail = base64.b64decode(first["LogResult"]).decode()
    lines = tail.splitlines()
    assert lines[0].startswith("START RequestId: ") and lines[0].endswith(" Version: $LATEST")
    assert "seen {'a': 1}" in lines
    assert lines[-2].startswith("END RequestId: ")
    assert lines[-1].startswith("REPORT RequestId: ") and "Init Duration: " in lines[-1]
    second = lambda_client.invoke(FunctionName=function_name, Payload=b"{}")
    assert json.loads(second["Payload"].read())["count"] == 2, "the environment is reused"


def test_python_function_error(lambda_client, function_name):
    create(lambda_client, function_name, "python3.12", "app.fail", PYTHON)
    result = lambda_client.invoke(FunctionName=function_name)
    assert result["StatusCode"] == 200
    assert result["FunctionError"] == "Unhandled"
    error = json.loads(result["Payload"].read())
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "broken"
    assert any("raise ValueError('broken')" in frame for frame in error["stackTrace"])


def test_node_result(lambda_client, function_name):
    create(lambda_client, function_name, "nodejs20.x", "index.handler", NODE)
    result = lambda_client.invoke(FunctionName=function_name, Payload=b'{"b": 2}')
    assert json.loads(result["Payload"].read()) == {"node": True, "event": {"b": 2}}


def test_custom_runtime_bootstrap(lambda_client, function_name):
    create(lambda_client, function_name, "provided.al2023", "unused", SHELL_BOOTSTRAP)
    result = lambda_client.invoke(FunctionName=function_name, Payload=b'{"c": 3}')
    assert json.loads(result["Payload"].read()) == {"shell": {"c": 3}}
