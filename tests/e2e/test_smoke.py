"""The harness itself: a server starts, answers health, and the recordings load."""

from kiln_harness import PYTHON_HANDLER_ZIP, ROLE
from recordings import assert_matches, recorded


def test_create_get_delete_matches_aws(lambda_client, function_name):
    created = lambda_client.create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": PYTHON_HANDLER_ZIP},
        MemorySize=256,
        Timeout=5,
        Environment={"Variables": {}},
    )
    expected = recorded(
        "test_lambda_api.snapshot.json",
        "test_lambda_api.py::TestLambdaFunction::test_function_lifecycle",
        "create_response",
    )["CreateFunctionResponse"]
    assert_matches(created, expected)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201

    lambda_client.get_waiter("function_active_v2").wait(FunctionName=function_name)
    got = lambda_client.get_function(FunctionName=function_name)
    assert_matches(
        got,
        recorded(
            "test_lambda_api.snapshot.json",
            "test_lambda_api.py::TestLambdaFunction::test_function_lifecycle",
            "get_function_response",
        ),
    )
    deleted = lambda_client.delete_function(FunctionName=function_name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
