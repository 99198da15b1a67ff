"""The real aws CLI (awscli from PyPI) against the session server: the commands and waiters a
Lambda user types, automatic pagination, and errors surfacing as a non-zero exit."""

from __future__ import annotations

import base64
import hashlib
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import make_lambda_client
from kiln_harness import ACCOUNT_ID, PYTHON_HANDLER_ZIP, REGION, ROLE, make_zip

ARN_PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
LISTED_FUNCTIONS = 57


def code_sha256(zip_bytes: bytes) -> str:
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def write_zip(directory, name: str, zip_bytes: bytes) -> str:
    path = directory / name
    path.write_bytes(zip_bytes)
    return f"fileb://{path}"


def assert_cli_error(result, code: str, message: str | None = None):
    assert result.returncode != 0, result
    assert result.stdout.strip() == "", result.stdout
    assert f"An error occurred ({code})" in result.stderr, result.stderr
    if message is not None:
        assert message in result.stderr, result.stderr


def test_cli_function_lifecycle(aws, tmp_path, function_name):
    first = make_zip({"handler.py": "def handler(event, context):\n    return 1\n"})
    second = make_zip({"handler.py": "def handler(event, context):\n    return 2\n"})

    created = aws.json(
        "lambda", "create-function",
        "--function-name", function_name,
        "--runtime", "python3.12",
        "--role", ROLE,
        "--handler", "handler.handler",
        "--zip-file", write_zip(tmp_path, "first.zip", first),
        "--environment", "Variables={GREETING=hello,TARGET=world}",
        "--memory-size", "256",
    )
    assert created["FunctionName"] == function_name
    assert created["FunctionArn"] == ARN_PREFIX + function_name
    assert created["State"] == "Pending"
    assert created["CodeSha256"] == code_sha256(first)
    assert created["CodeSize"] == len(first)
    assert created["MemorySize"] == 256
    assert created["Environment"] == {"Variables": {"GREETING": "hello", "TARGET": "world"}}

    waited = aws.run("lambda", "wait", "function-active-v2", "--function-name", function_name)
    assert waited.returncode == 0

    got = aws.json("lambda", "get-function", "--function-name", function_name)
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    assert got["Code"]["RepositoryType"] == "S3"
    with urllib.request.urlopen(got["Code"]["Location"], timeout=30) as reply:
        assert reply.read() == first

    configuration = aws.json(
        "lambda", "get-function-configuration", "--function-name", function_name
    )
    assert configuration == got["Configuration"]

    updated = aws.json(
        "lambda", "update-function-configuration",
        "--function-name", function_name,
        "--description", "updated by the aws CLI",
        "--timeout", "30",
        "--environment", "Variables={ONLY=one}",
        "--revision-id", configuration["RevisionId"],
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["Description"] == "updated by the aws CLI"
    assert updated["Timeout"] == 30
    assert updated["Environment"] == {"Variables": {"ONLY": "one"}}
    assert updated["RevisionId"] != configuration["RevisionId"]
    aws.run("lambda", "wait", "function-updated-v2", "--function-name", function_name)

    replaced = aws.json(
        "lambda", "update-function-code",
        "--function-name", function_name,
        "--zip-file", write_zip(tmp_path, "second.zip", second),
    )
    assert replaced["CodeSha256"] == code_sha256(second)
    assert replaced["LastUpdateStatus"] == "InProgress"
    aws.run("lambda", "wait", "function-updated-v2", "--function-name", function_name)

    final = aws.json("lambda", "get-function-configuration", "--function-name", function_name)
    assert final["LastUpdateStatus"] == "Successful"
    assert final["CodeSha256"] == code_sha256(second)
    assert final["Description"] == "updated by the aws CLI"
    assert final["MemorySize"] == 256

    deleted = aws.json("lambda", "delete-function", "--function-name", function_name)
    # awscli shows the HTTP status the model maps into DeleteFunction's output.
    assert deleted == {"StatusCode": 204}
    missing = aws.run("lambda", "get-function", "--function-name", function_name, check=False)
    assert_cli_error(
        missing,
        "ResourceNotFoundException",
        f"Function not found: {ARN_PREFIX}{function_name}",
    )


def test_cli_tags(aws, lambda_client, function_name):
    arn = ARN_PREFIX + function_name
    lambda_client.create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": PYTHON_HANDLER_ZIP},
        Tags={"origin": "boto3"},
    )
    assert aws.run(
        "lambda", "tag-resource", "--resource", arn, "--tags", "team=kiln,env=dev"
    ).stdout.strip() == ""
    assert aws.json("lambda", "list-tags", "--resource", arn) == {
        "Tags": {"origin": "boto3", "team": "kiln", "env": "dev"}
    }
    aws.run("lambda", "untag-resource", "--resource", arn, "--tag-keys", "env", "origin")
    assert aws.json("lambda", "list-tags", "--resource", arn) == {"Tags": {"team": "kiln"}}
    got = aws.json("lambda", "get-function", "--function-name", function_name)
    assert got["Tags"] == {"team": "kiln"}


def test_cli_get_account_settings(aws, lambda_client, function_name):
    before = aws.json("lambda", "get-account-settings")
    assert before["AccountLimit"]["CodeSizeZipped"] == 52_428_800
    assert before["AccountLimit"]["CodeSizeUnzipped"] == 262_144_000
    assert before["AccountLimit"]["ConcurrentExecutions"] == 1000
    zip_bytes = make_zip({"handler.py": f"# {uuid.uuid4()}\n"})
    lambda_client.create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": zip_bytes},
    )
    after = aws.json("lambda", "get-account-settings")
    assert after["AccountUsage"]["FunctionCount"] == before["AccountUsage"]["FunctionCount"] + 1
    assert after["AccountUsage"]["TotalCodeSize"] == (
        before["AccountUsage"]["TotalCodeSize"] + len(zip_bytes)
    )


@pytest.fixture(scope="module")
def listed_functions(kiln):
    client = make_lambda_client(kiln.url)
    prefix = f"cli-list-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{index:02d}" for index in range(LISTED_FUNCTIONS)]
    for name in names:
        client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": PYTHON_HANDLER_ZIP},
        )
    yield prefix, names
    for name in names:
        try:
            client.delete_function(FunctionName=name)
        except ClientError:
            pass


def listed_names(output: dict, prefix: str) -> list[str]:
    return [
        entry["FunctionName"]
        for entry in output["Functions"]
        if entry["FunctionName"].startswith(prefix)
    ]


def test_cli_list_functions_follows_every_page(aws, listed_functions):
    prefix, names = listed_functions
    output = aws.json("lambda", "list-functions")
    # The CLI merged every page (> 50 functions exist, Lambda pages hold 50 at most).
    assert len(output["Functions"]) > 50
    assert "NextMarker" not in output
    assert sorted(listed_names(output, prefix)) == names
    all_names = [entry["FunctionName"] for entry in output["Functions"]]
    assert len(all_names) == len(set(all_names))


def test_cli_list_functions_with_small_pages(aws, listed_functions):
    prefix, names = listed_functions
    output = aws.json("lambda", "list-functions", "--page-size", "9")
    assert sorted(listed_names(output, prefix)) == names
    all_names = [entry["FunctionName"] for entry in output["Functions"]]
    assert len(all_names) == len(set(all_names))


def test_cli_list_functions_max_items_and_resume(aws, listed_functions):
    prefix, names = listed_functions
    first = aws.json("lambda", "list-functions", "--max-items", "30")
    assert len(first["Functions"]) == 30
    assert first.get("NextToken")
    rest = aws.json("lambda", "list-functions", "--starting-token", first["NextToken"])
    assert "NextToken" not in rest
    combined = [entry["FunctionName"] for entry in first["Functions"] + rest["Functions"]]
    assert len(combined) == len(set(combined))
    assert sorted(name for name in combined if name.startswith(prefix)) == names


def test_cli_list_functions_no_paginate_returns_one_page(aws, listed_functions):
    output = aws.json("lambda", "list-functions", "--no-paginate")
    assert len(output["Functions"]) == 50
    assert output.get("NextMarker")


def test_cli_errors_exit_non_zero_with_the_error_code(aws, lambda_client, function_name, tmp_path):
    missing = aws.run("lambda", "get-function", "--function-name", function_name, check=False)
    assert_cli_error(
        missing,
        "ResourceNotFoundException",
        f"when calling the GetFunction operation: Function not found: {ARN_PREFIX}{function_name}",
    )

    lambda_client.create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": PYTHON_HANDLER_ZIP},
    )
    duplicate = aws.run(
        "lambda", "create-function",
        "--function-name", function_name,
        "--runtime", "python3.12",
        "--role", ROLE,
        "--handler", "handler.handler",
        "--zip-file", write_zip(tmp_path, "code.zip", PYTHON_HANDLER_ZIP),
        check=False,
    )
    assert_cli_error(
        duplicate, "ResourceConflictException", f"Function already exist: {function_name}"
    )

    invalid = aws.run(
        "lambda", "update-function-configuration",
        "--function-name", function_name,
        "--timeout", "3000",
        check=False,
    )
    assert_cli_error(
        invalid,
        "ValidationException",
        "Value '3000' at 'timeout' failed to satisfy constraint: Member must have value less "
        "than or equal to 900",
    )

    stale = aws.run(
        "lambda", "update-function-configuration",
        "--function-name", function_name,
        "--description", "x",
        "--revision-id", str(uuid.uuid4()),
        check=False,
    )
    assert_cli_error(stale, "PreconditionFailedException")
