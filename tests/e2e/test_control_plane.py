"""The Lambda control plane end to end through boto3: every implemented operation, the
waiters, pagination, RevisionId preconditions, each error class and the shapes AWS returns.

All tests share the session server (`kiln`) and use names no other test uses.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import io
import re
import urllib.error
import urllib.request
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

from conftest import make_lambda_client
from kiln_harness import ACCOUNT_ID, PYTHON_HANDLER_ZIP, REGION, ROLE, make_zip

ARN_PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
LAST_MODIFIED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PRECONDITION_MESSAGE = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)
# Poll quickly: Kiln deploys in milliseconds, the default 1 s delay only slows the suite.
FAST = {"Delay": 0.05, "MaxAttempts": 200}
PAGE_FUNCTIONS = 120


def code_sha256(zip_bytes: bytes) -> str:
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def unique_zip(tag: str = "") -> bytes:
    """A small valid package whose digest no other test shares."""
    return make_zip(
        {
            "handler.py": "def handler(event, context):\n    return event\n",
            "marker.txt": f"{tag}-{uuid.uuid4()}",
        }
    )


def create(client, name: str, zip_bytes: bytes = PYTHON_HANDLER_ZIP, **overrides):
    params = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "handler.handler",
        "Code": {"ZipFile": zip_bytes},
    }
    params.update(overrides)
    return client.create_function(**params)


def create_active(client, name: str, zip_bytes: bytes = PYTHON_HANDLER_ZIP, **overrides):
    create(client, name, zip_bytes, **overrides)
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)
    return client.get_function_configuration(FunctionName=name)


def wait_updated(client, name: str):
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST)
    return client.get_function_configuration(FunctionName=name)


def client_error(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    return raised.value


def assert_error(error: ClientError, code: str, status: int, message: str | None = None):
    response = error.response
    assert response["Error"]["Code"] == code, response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-amzn-errortype") == code
    assert headers.get("x-amzn-requestid"), headers
    if message is not None:
        assert response["Error"]["Message"] == message, response


def strip_metadata(response: dict) -> dict:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def download(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, reply.headers.get("Content-Type"), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read()


# --- lifecycle -------------------------------------------------------------------------------


def test_create_starts_pending_with_lambda_defaults(lambda_client, function_name):
    zip_bytes = unique_zip("defaults")
    created = create(lambda_client, function_name, zip_bytes)

    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionName"] == function_name
    assert created["FunctionArn"] == ARN_PREFIX + function_name
    assert created["State"] == "Pending"
    assert created["StateReason"] == "The function is being created."
    assert created["StateReasonCode"] == "Creating"
    assert "LastUpdateStatus" not in created
    assert created["CodeSha256"] == code_sha256(zip_bytes)
    assert created["CodeSize"] == len(zip_bytes)
    assert created["Version"] == "$LATEST"
    assert created["Runtime"] == "python3.12"
    assert created["Role"] == ROLE
    assert created["Handler"] == "handler.handler"
    assert created["Description"] == ""
    assert created["MemorySize"] == 128
    assert created["Timeout"] == 3
    assert created["EphemeralStorage"] == {"Size": 512}
    assert created["Architectures"] == ["x86_64"]
    assert created["PackageType"] == "Zip"
    assert created["TracingConfig"] == {"Mode": "PassThrough"}
    assert created["LoggingConfig"] == {
        "LogFormat": "Text",
        "LogGroup": f"/aws/lambda/{function_name}",
    }
    assert created["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert "Environment" not in created
    assert LAST_MODIFIED.match(created["LastModified"]), created["LastModified"]
    assert UUID.match(created["RevisionId"]), created["RevisionId"]


def test_function_active_v2_waiter_sees_active(lambda_client, function_name):
    create(lambda_client, function_name)
    lambda_client.get_waiter("function_active_v2").wait(
        FunctionName=function_name, WaiterConfig=FAST
    )
    got = lambda_client.get_function(FunctionName=function_name)
    config = got["Configuration"]
    assert config["State"] == "Active"
    assert "StateReason" not in config
    assert "StateReasonCode" not in config
    assert config["LastUpdateStatus"] == "Successful"
    # The plain (V1) waiter agrees.
    lambda_client.get_waiter("function_active").wait(
        FunctionName=function_name, WaiterConfig=FAST
    )
    lambda_client.get_waiter("function_exists").wait(
        FunctionName=function_name, WaiterConfig=FAST
    )


def test_get_function_configuration_matches_get_function(lambda_client, function_name):
    create_active(lambda_client, function_name, unique_zip("get"))
    config = strip_metadata(lambda_client.get_function_configuration(FunctionName=function_name))
    got = lambda_client.get_function(FunctionName=function_name)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Configuration"] == config
    assert config["RuntimeVersionConfig"]["RuntimeVersionArn"].startswith(
        f"arn:aws:lambda:{REGION}::runtime:"
    )


@pytest.mark.parametrize(
    "form",
    ["name", "arn", "partial-arn", "region-partial-arn", "latest-suffix", "latest-query"],
)
def test_every_name_form_reaches_the_function(lambda_client, function_name, form):
    create_active(lambda_client, function_name)
    extra = {}
    reference = {
        "name": function_name,
        "arn": ARN_PREFIX + function_name,
        "partial-arn": f"{ACCOUNT_ID}:function:{function_name}",
        "region-partial-arn": f"{REGION}:{ACCOUNT_ID}:function:{function_name}",
        "latest-suffix": f"{function_name}:$LATEST",
        "latest-query": function_name,
    }[form]
    if form == "latest-query":
        extra["Qualifier"] = "$LATEST"
    config = lambda_client.get_function_configuration(FunctionName=reference, **extra)
    assert config["FunctionName"] == function_name
    if form.startswith("latest"):
        assert config["FunctionArn"] == f"{ARN_PREFIX}{function_name}:$LATEST"
    else:
        assert config["FunctionArn"] == ARN_PREFIX + function_name


def test_code_location_downloads_exactly_the_uploaded_zip(kiln, lambda_client, function_name):
    zip_bytes = unique_zip("location")
    create_active(lambda_client, function_name, zip_bytes)
    code = lambda_client.get_function(FunctionName=function_name)["Code"]
    assert code["RepositoryType"] == "S3"
    digest = hashlib.sha256(zip_bytes).hexdigest()
    assert code["Location"] == f"{kiln.url}/_kiln/code/{digest}.zip"
    status, content_type, body = download(code["Location"])
    assert status == 200
    assert content_type == "application/zip"
    assert body == zip_bytes


def test_update_function_code_and_function_updated_v2_waiter(kiln, lambda_client, function_name):
    first = unique_zip("first")
    second = unique_zip("second")
    before = create_active(lambda_client, function_name, first)

    updated = lambda_client.update_function_code(FunctionName=function_name, ZipFile=second)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["State"] == "Active"
    assert updated["CodeSha256"] == code_sha256(second)
    assert updated["CodeSize"] == len(second)
    assert updated["RevisionId"] != before["RevisionId"]

    after = wait_updated(lambda_client, function_name)
    assert after["LastUpdateStatus"] == "Successful"
    assert after["CodeSha256"] == code_sha256(second)
    # Configuration untouched by a code update.
    for key in ("Handler", "Runtime", "MemorySize", "Timeout", "Role", "Architectures"):
        assert after[key] == before[key]
    location = lambda_client.get_function(FunctionName=function_name)["Code"]["Location"]
    assert location.endswith(f"/{hashlib.sha256(second).hexdigest()}.zip")
    assert download(location)[2] == second


def test_update_function_code_can_switch_architecture(lambda_client, function_name):
    create_active(lambda_client, function_name)
    updated = lambda_client.update_function_code(
        FunctionName=function_name, ZipFile=unique_zip("arch"), Architectures=["arm64"]
    )
    assert updated["Architectures"] == ["arm64"]
    assert wait_updated(lambda_client, function_name)["Architectures"] == ["arm64"]


def test_update_function_configuration_round_trips(lambda_client, function_name):
    before = create_active(lambda_client, function_name)
    updated = lambda_client.update_function_configuration(
        FunctionName=function_name, Description="changed", Timeout=42
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["Description"] == "changed"
    assert updated["Timeout"] == 42
    assert updated["RevisionId"] != before["RevisionId"]
    after = wait_updated(lambda_client, function_name)
    assert after["LastUpdateStatus"] == "Successful"
    assert after["Description"] == "changed"
    assert after["Timeout"] == 42
    assert after["MemorySize"] == before["MemorySize"]
    assert after["CodeSha256"] == before["CodeSha256"]


def test_configuration_fields_round_trip(lambda_client, function_name):
    variables = {"GREETING": "hello", "EMPTY": "", "UNICODE_VALUE": "grüße ✓", "a_b": "x=y;z"}
    logging_config = {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "DEBUG",
        "SystemLogLevel": "WARN",
        "LogGroup": "/custom/kiln-group",
    }
    expected = {
        "Runtime": "python3.13",
        "Handler": "app.main",
        "Description": "round trip: ünïcode ✓",
        "MemorySize": 1024,
        "Timeout": 60,
        "EphemeralStorage": {"Size": 2048},
        "Environment": {"Variables": variables},
        "LoggingConfig": logging_config,
        "TracingConfig": {"Mode": "Active"},
        "Architectures": ["arm64"],
    }
    created = create(
        lambda_client,
        function_name,
        Runtime="python3.13",
        Handler="app.main",
        Description=expected["Description"],
        MemorySize=1024,
        Timeout=60,
        EphemeralStorage={"Size": 2048},
        Environment={"Variables": variables},
        LoggingConfig=logging_config,
        TracingConfig={"Mode": "Active"},
        Architectures=["arm64"],
    )
    lambda_client.get_waiter("function_active_v2").wait(
        FunctionName=function_name, WaiterConfig=FAST
    )
    got = lambda_client.get_function_configuration(FunctionName=function_name)
    listed = [
        entry
        for page in lambda_client.get_paginator("list_functions").paginate()
        for entry in page["Functions"]
        if entry["FunctionName"] == function_name
    ]
    assert len(listed) == 1
    for view in (created, got, listed[0]):
        for key, value in expected.items():
            assert view[key] == value, (key, view)

    # Update every field; fields not named keep their value.
    updated = lambda_client.update_function_configuration(
        FunctionName=function_name,
        Runtime="python3.12",
        Handler="handler.handler",
        Description="",
        MemorySize=256,
        Timeout=5,
        EphemeralStorage={"Size": 512},
        Environment={"Variables": {"ONLY": "1"}},
        LoggingConfig={"LogFormat": "Text"},
        TracingConfig={"Mode": "PassThrough"},
    )
    expected_after = {
        "Runtime": "python3.12",
        "Handler": "handler.handler",
        "Description": "",
        "MemorySize": 256,
        "Timeout": 5,
        "EphemeralStorage": {"Size": 512},
        "Environment": {"Variables": {"ONLY": "1"}},
        # Text logs carry no levels; the log group stays.
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/custom/kiln-group"},
        "TracingConfig": {"Mode": "PassThrough"},
        "Architectures": ["arm64"],
    }
    after = wait_updated(lambda_client, function_name)
    for view in (updated, after):
        for key, value in expected_after.items():
            assert view[key] == value, (key, view)

    # Clearing the variables leaves an empty map.
    lambda_client.update_function_configuration(
        FunctionName=function_name, Environment={"Variables": {}}
    )
    assert wait_updated(lambda_client, function_name)["Environment"] == {"Variables": {}}


def test_delete_function(lambda_client, function_name):
    create_active(lambda_client, function_name)
    deleted = lambda_client.delete_function(FunctionName=function_name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    missing = f"Function not found: {ARN_PREFIX}{function_name}"
    assert_error(
        client_error(lambda_client.get_function, FunctionName=function_name),
        "ResourceNotFoundException",
        404,
        missing,
    )
    assert_error(
        client_error(lambda_client.delete_function, FunctionName=function_name),
        "ResourceNotFoundException",
        404,
        missing,
    )
    names = [
        entry["FunctionName"]
        for page in lambda_client.get_paginator("list_functions").paginate()
        for entry in page["Functions"]
    ]
    assert function_name not in names
    # The name is free again.
    created = create(lambda_client, function_name)
    assert created["State"] == "Pending"


def test_delete_by_arn(lambda_client, function_name):
    create_active(lambda_client, function_name)
    lambda_client.delete_function(FunctionName=ARN_PREFIX + function_name)
    assert_error(
        client_error(lambda_client.get_function_configuration, FunctionName=function_name),
        "ResourceNotFoundException",
        404,
    )


# --- RevisionId preconditions -----------------------------------------------------------------


def test_revision_id_guards_update_function_configuration(lambda_client, function_name):
    settled = create_active(lambda_client, function_name)
    revision = settled["RevisionId"]

    error = client_error(
        lambda_client.update_function_configuration,
        FunctionName=function_name,
        Description="must not apply",
        RevisionId=str(uuid.uuid4()),
    )
    assert_error(error, "PreconditionFailedException", 412, PRECONDITION_MESSAGE)
    unchanged = lambda_client.get_function_configuration(FunctionName=function_name)
    assert unchanged["Description"] == ""
    assert unchanged["RevisionId"] == revision

    updated = lambda_client.update_function_configuration(
        FunctionName=function_name, Description="applied", RevisionId=revision
    )
    assert updated["Description"] == "applied"
    assert updated["RevisionId"] != revision
    wait_updated(lambda_client, function_name)

    # The old revision is stale now.
    error = client_error(
        lambda_client.update_function_configuration,
        FunctionName=function_name,
        Description="stale",
        RevisionId=revision,
    )
    assert_error(error, "PreconditionFailedException", 412, PRECONDITION_MESSAGE)
    assert lambda_client.get_function_configuration(FunctionName=function_name)[
        "Description"
    ] == "applied"


def test_revision_id_guards_update_function_code(lambda_client, function_name):
    original = unique_zip("original")
    settled = create_active(lambda_client, function_name, original)
    revision = settled["RevisionId"]

    error = client_error(
        lambda_client.update_function_code,
        FunctionName=function_name,
        ZipFile=unique_zip("refused"),
        RevisionId=str(uuid.uuid4()),
    )
    assert_error(error, "PreconditionFailedException", 412, PRECONDITION_MESSAGE)
    unchanged = lambda_client.get_function_configuration(FunctionName=function_name)
    assert unchanged["CodeSha256"] == code_sha256(original)
    assert unchanged["RevisionId"] == revision

    replacement = unique_zip("accepted")
    updated = lambda_client.update_function_code(
        FunctionName=function_name, ZipFile=replacement, RevisionId=revision
    )
    assert updated["CodeSha256"] == code_sha256(replacement)
    assert updated["RevisionId"] != revision
    wait_updated(lambda_client, function_name)

    error = client_error(
        lambda_client.update_function_code,
        FunctionName=function_name,
        ZipFile=original,
        RevisionId=revision,
    )
    assert_error(error, "PreconditionFailedException", 412, PRECONDITION_MESSAGE)
    assert lambda_client.get_function_configuration(FunctionName=function_name)[
        "CodeSha256"
    ] == code_sha256(replacement)


def test_revision_id_changes_on_every_mutation(lambda_client, function_name):
    seen = [create(lambda_client, function_name)["RevisionId"]]
    lambda_client.get_waiter("function_active_v2").wait(
        FunctionName=function_name, WaiterConfig=FAST
    )
    seen.append(lambda_client.get_function_configuration(FunctionName=function_name)["RevisionId"])
    seen.append(
        lambda_client.update_function_configuration(FunctionName=function_name, Timeout=9)[
            "RevisionId"
        ]
    )
    seen.append(wait_updated(lambda_client, function_name)["RevisionId"])
    seen.append(
        lambda_client.update_function_code(FunctionName=function_name, ZipFile=unique_zip())[
            "RevisionId"
        ]
    )
    seen.append(wait_updated(lambda_client, function_name)["RevisionId"])
    # A read does not change it.
    assert lambda_client.get_function(FunctionName=function_name)["Configuration"][
        "RevisionId"
    ] == seen[-1]
    for revision in seen:
        assert UUID.match(revision), revision
    # Create->Active and update->Successful may or may not mint one, but no two mutations
    # share a revision.
    mutations = [seen[0], seen[2], seen[4]]
    assert len(set(mutations)) == 3


# --- error classes ----------------------------------------------------------------------------


def test_missing_function_is_resource_not_found(lambda_client, function_name):
    message = f"Function not found: {ARN_PREFIX}{function_name}"
    calls = [
        (lambda_client.get_function, {"FunctionName": function_name}),
        (lambda_client.get_function_configuration, {"FunctionName": function_name}),
        (lambda_client.delete_function, {"FunctionName": function_name}),
        (
            lambda_client.update_function_configuration,
            {"FunctionName": function_name, "Timeout": 5},
        ),
        (
            lambda_client.update_function_code,
            {"FunctionName": function_name, "ZipFile": PYTHON_HANDLER_ZIP},
        ),
        (lambda_client.list_tags, {"Resource": ARN_PREFIX + function_name}),
        (
            lambda_client.tag_resource,
            {"Resource": ARN_PREFIX + function_name, "Tags": {"a": "b"}},
        ),
        (
            lambda_client.untag_resource,
            {"Resource": ARN_PREFIX + function_name, "TagKeys": ["a"]},
        ),
    ]
    for call, kwargs in calls:
        assert_error(client_error(call, **kwargs), "ResourceNotFoundException", 404, message)


def test_unknown_version_is_resource_not_found(lambda_client, function_name):
    create_active(lambda_client, function_name)
    assert_error(
        client_error(
            lambda_client.get_function_configuration, FunctionName=function_name, Qualifier="7"
        ),
        "ResourceNotFoundException",
        404,
        f"Function not found: {ARN_PREFIX}{function_name}:7",
    )


def test_other_region_is_resource_not_found(lambda_client, function_name):
    create_active(lambda_client, function_name)
    error = client_error(
        lambda_client.get_function,
        FunctionName=f"arn:aws:lambda:ap-southeast-1:{ACCOUNT_ID}:function:{function_name}",
    )
    assert_error(
        error,
        "ResourceNotFoundException",
        404,
        "Functions from 'ap-southeast-1' are not reachable in this region ('us-east-1')",
    )


def test_duplicate_create_is_resource_conflict(lambda_client, function_name):
    first = create_active(lambda_client, function_name)
    error = client_error(create, lambda_client, function_name, unique_zip("dup"))
    assert_error(
        error, "ResourceConflictException", 409, f"Function already exist: {function_name}"
    )
    # The original is untouched.
    after = lambda_client.get_function_configuration(FunctionName=function_name)
    assert after["CodeSha256"] == first["CodeSha256"]
    assert after["RevisionId"] == first["RevisionId"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"Code": {"S3Bucket": "my-bucket", "S3Key": "code.zip"}},
            None,
        ),
        (
            {"Environment": {"Variables": {"AWS_REGION": "eu-west-1", "OK": "1"}}},
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not supported "
            "for modification. Reserved keys used in this request: AWS_REGION",
        ),
        ({"Runtime": "non-existent-runtime"}, None),
        ({"Code": {"ZipFile": b"this is not a zip archive"}}, (
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        )),
        ({"Environment": {"Variables": {"BIG": "x" * 5000}}}, None),
    ],
    ids=["s3-code", "reserved-env", "runtime", "not-a-zip", "env-over-4kb"],
)
def test_invalid_parameter_value(lambda_client, function_name, overrides, message):
    error = client_error(create, lambda_client, function_name, **overrides)
    assert_error(error, "InvalidParameterValueException", 400, message)
    assert error.response["Error"]["Message"], error.response
    assert_error(
        client_error(lambda_client.get_function, FunctionName=function_name),
        "ResourceNotFoundException",
        404,
    )


def test_s3_code_source_explains_itself(lambda_client, function_name):
    error = client_error(
        create, lambda_client, function_name, Code={"S3Bucket": "bucket", "S3Key": "key.zip"}
    )
    assert_error(error, "InvalidParameterValueException", 400)
    message = error.response["Error"]["Message"]
    assert "S3" in message and "ZipFile" in message, message


def test_runtime_error_lists_the_accepted_runtimes(lambda_client, function_name):
    error = client_error(create, lambda_client, function_name, Runtime="PYTHON3.9")
    assert_error(error, "InvalidParameterValueException", 400)
    message = error.response["Error"]["Message"]
    assert message.startswith(
        "Value PYTHON3.9 at 'runtime' failed to satisfy constraint: Member must satisfy enum "
        "value set: ["
    ), message
    assert message.endswith("] or be a valid ARN"), message
    assert "python3.12" in message


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"Timeout": 3000},
            "1 validation error detected: Value '3000' at 'timeout' failed to satisfy "
            "constraint: Member must have value less than or equal to 900",
        ),
        (
            {"MemorySize": 20000},
            "1 validation error detected: Value '20000' at 'memorySize' failed to satisfy "
            "constraint: Member must have value less than or equal to 10240",
        ),
        (
            {"Role": "r1"},
            "1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: "
            "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        ),
        (
            {"Architectures": ["x86_64", "arm64"]},
            "1 validation error detected: Value '[x86_64, arm64]' at 'architectures' failed to "
            "satisfy constraint: Member must have length less than or equal to 1",
        ),
        (
            {"TracingConfig": {"Mode": "Sometimes"}},
            "1 validation error detected: Value 'Sometimes' at 'tracingConfig.mode' failed to "
            "satisfy constraint: Member must satisfy enum value set: [Active, PassThrough]",
        ),
        (
            {"EphemeralStorage": {"Size": 100000}},
            "1 validation error detected: Value '100000' at 'ephemeralStorage.size' failed to "
            "satisfy constraint: Member must have value less than or equal to 10240",
        ),
        ({"Description": "d" * 257}, None),
    ],
    ids=["timeout", "memory", "role", "architectures", "tracing", "ephemeral", "description"],
)
def test_validation_exception(lambda_client, function_name, overrides, message):
    error = client_error(create, lambda_client, function_name, **overrides)
    assert_error(error, "ValidationException", 400, message)
    assert_error(
        client_error(lambda_client.get_function, FunctionName=function_name),
        "ResourceNotFoundException",
        404,
    )


def test_validation_exception_lists_every_violation(lambda_client, function_name):
    error = client_error(create, lambda_client, function_name, Timeout=1000, MemorySize=20000)
    assert_error(error, "ValidationException", 400)
    message = error.response["Error"]["Message"]
    assert message.startswith("2 validation errors detected: "), message
    violations = message.removeprefix("2 validation errors detected: ").split("; ")
    assert sorted(violations) == [
        "Value '1000' at 'timeout' failed to satisfy constraint: Member must have value less "
        "than or equal to 900",
        "Value '20000' at 'memorySize' failed to satisfy constraint: Member must have value "
        "less than or equal to 10240",
    ]


def test_invalid_function_name_is_validation_exception(lambda_client):
    error = client_error(lambda_client.get_function, FunctionName="invalid:function:name")
    assert_error(error, "ValidationException", 400)
    assert error.response["Error"]["Message"].startswith(
        "1 validation error detected: Value 'invalid:function:name' at 'functionName' failed "
        "to satisfy constraint: Member must satisfy regular expression pattern: "
    )


def test_update_configuration_validation_leaves_function_alone(lambda_client, function_name):
    before = create_active(lambda_client, function_name)
    error = client_error(
        lambda_client.update_function_configuration, FunctionName=function_name, Timeout=901
    )
    assert_error(
        error,
        "ValidationException",
        400,
        "1 validation error detected: Value '901' at 'timeout' failed to satisfy constraint: "
        "Member must have value less than or equal to 900",
    )
    after = lambda_client.get_function_configuration(FunctionName=function_name)
    assert after["Timeout"] == before["Timeout"]
    assert after["RevisionId"] == before["RevisionId"]


def test_other_account_arn_is_access_denied(lambda_client, function_name):
    create_active(lambda_client, function_name)
    foreign = f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"
    for call, kwargs in [
        (lambda_client.get_function, {"FunctionName": foreign}),
        (lambda_client.get_function_configuration, {"FunctionName": foreign}),
        (lambda_client.update_function_configuration, {"FunctionName": foreign, "Timeout": 4}),
        (lambda_client.delete_function, {"FunctionName": foreign}),
        (lambda_client.list_tags, {"Resource": foreign}),
        (lambda_client.tag_resource, {"Resource": foreign, "Tags": {"k": "v"}}),
    ]:
        assert_error(client_error(call, **kwargs), "AccessDeniedException", 403)
    # Nothing happened to the function of this account.
    lambda_client.get_function_configuration(FunctionName=function_name)


def stored_zip_of_size(size: int) -> bytes:
    """A valid zip (stored, not deflated) of at least `size` bytes, built cheaply."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("padding.bin", bytes(size))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def oversized_zip() -> bytes:
    zip_bytes = stored_zip_of_size(52_428_800)
    assert 52_428_800 < len(zip_bytes) < 52_500_000
    return zip_bytes


def test_zip_over_50_mb_is_request_entity_too_large(lambda_client, function_name, oversized_zip):
    error = client_error(create, lambda_client, function_name, oversized_zip)
    assert_error(
        error,
        "RequestEntityTooLargeException",
        413,
        "Zipped size must be smaller than 52428800 bytes",
    )
    assert_error(
        client_error(lambda_client.get_function, FunctionName=function_name),
        "ResourceNotFoundException",
        404,
    )
    # UpdateFunctionCode enforces the same limit and keeps the old code.
    before = create_active(lambda_client, function_name)
    error = client_error(
        lambda_client.update_function_code, FunctionName=function_name, ZipFile=oversized_zip
    )
    assert_error(
        error,
        "RequestEntityTooLargeException",
        413,
        "Zipped size must be smaller than 52428800 bytes",
    )
    after = lambda_client.get_function_configuration(FunctionName=function_name)
    assert after["CodeSha256"] == before["CodeSha256"]
    assert after["RevisionId"] == before["RevisionId"]


def test_unimplemented_operation_is_not_implemented(lambda_client, function_name):
    create_active(lambda_client, function_name)
    error = client_error(lambda_client.get_policy, FunctionName=function_name)
    assert_error(error, "NotImplementedException", 501)
    assert "GetPolicy" in error.response["Error"]["Message"]


# --- account settings -------------------------------------------------------------------------


def test_account_settings_limits(lambda_client):
    settings = lambda_client.get_account_settings()
    assert settings["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert settings["AccountLimit"] == {
        "TotalCodeSize": 80_530_636_800,
        "CodeSizeUnzipped": 262_144_000,
        "CodeSizeZipped": 52_428_800,
        "ConcurrentExecutions": 1000,
        "UnreservedConcurrentExecutions": 1000,
    }
    assert set(settings["AccountUsage"]) == {"TotalCodeSize", "FunctionCount"}


def test_account_usage_follows_creates_and_deletes(lambda_client, function_name):
    def usage():
        return lambda_client.get_account_settings()["AccountUsage"]

    first_zip = unique_zip("usage-1")
    second_zip = make_zip({"handler.py": "x = 1\n" * 50, "marker.txt": str(uuid.uuid4())})
    before = usage()
    create(lambda_client, f"{function_name}-a", first_zip)
    create(lambda_client, f"{function_name}-b", second_zip)
    after_create = usage()
    assert after_create["FunctionCount"] == before["FunctionCount"] + 2
    assert after_create["TotalCodeSize"] == before["TotalCodeSize"] + len(first_zip) + len(
        second_zip
    )
    lambda_client.delete_function(FunctionName=f"{function_name}-a")
    after_delete = usage()
    assert after_delete["FunctionCount"] == before["FunctionCount"] + 1
    assert after_delete["TotalCodeSize"] == before["TotalCodeSize"] + len(second_zip)
    lambda_client.delete_function(FunctionName=f"{function_name}-b")
    assert usage() == before


# --- tags -------------------------------------------------------------------------------------


def test_tags_lifecycle(lambda_client, function_name):
    arn = ARN_PREFIX + function_name
    create(lambda_client, function_name, Tags={"team": "kiln", "env": "test"})
    lambda_client.get_waiter("function_active_v2").wait(
        FunctionName=function_name, WaiterConfig=FAST
    )
    assert lambda_client.get_function(FunctionName=function_name)["Tags"] == {
        "team": "kiln",
        "env": "test",
    }
    listed = lambda_client.list_tags(Resource=arn)
    assert listed["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert listed["Tags"] == {"team": "kiln", "env": "test"}

    tagged = lambda_client.tag_resource(Resource=arn, Tags={"env": "prod", "cost-center": "42"})
    assert tagged["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {
        "team": "kiln",
        "env": "prod",
        "cost-center": "42",
    }

    untagged = lambda_client.untag_resource(Resource=arn, TagKeys=["team", "not-there"])
    assert untagged["ResponseMetadata"]["HTTPStatusCode"] == 204
    expected = {"env": "prod", "cost-center": "42"}
    assert lambda_client.list_tags(Resource=arn)["Tags"] == expected
    assert lambda_client.get_function(FunctionName=function_name)["Tags"] == expected

    lambda_client.untag_resource(Resource=arn, TagKeys=["env", "cost-center"])
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {}
    assert lambda_client.get_function(FunctionName=function_name).get("Tags", {}) == {}


def test_tags_with_unusual_characters(lambda_client, function_name):
    tags = {"aws-ok:key/with=chars+@": "value with spaces ü", "empty-value": ""}
    create(lambda_client, function_name, Tags=tags)
    assert lambda_client.list_tags(Resource=ARN_PREFIX + function_name)["Tags"] == tags


def test_tag_errors(lambda_client, function_name):
    create_active(lambda_client, function_name)
    arn = ARN_PREFIX + function_name
    error = client_error(lambda_client.tag_resource, Resource=arn, Tags={"bad;key": "v"})
    assert_error(error, "ValidationException", 400)
    error = client_error(lambda_client.list_tags, Resource=f"{arn}:$LATEST")
    assert_error(error, "InvalidParameterValueException", 400)
    error = client_error(lambda_client.list_tags, Resource="not-an-arn")
    assert_error(error, "ValidationException", 400)
    too_many = {f"k{i}": "v" for i in range(51)}
    error = client_error(lambda_client.tag_resource, Resource=arn, Tags=too_many)
    assert_error(error, "InvalidParameterValueException", 400)
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {}


# --- pagination -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paged_functions(kiln):
    """120 functions with a common prefix, created once for the pagination tests."""
    client = make_lambda_client(kiln.url)
    prefix = f"page-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{index:03d}" for index in range(PAGE_FUNCTIONS)]
    for name in names:
        create(client, name)
    yield names
    for name in names:
        try:
            client.delete_function(FunctionName=name)
        except ClientError:
            pass


def test_list_functions_pages_by_max_items(lambda_client, paged_functions):
    page_size = 7
    seen = []
    pages = 0
    marker = None
    while True:
        kwargs = {"MaxItems": page_size}
        if marker:
            kwargs["Marker"] = marker
        page = lambda_client.list_functions(**kwargs)
        pages += 1
        assert len(page["Functions"]) <= page_size
        seen.extend(entry["FunctionName"] for entry in page["Functions"])
        marker = page.get("NextMarker")
        if marker is None:
            break
        assert len(page["Functions"]) == page_size, "only the last page may be short"
        assert pages < 1000, "pagination does not terminate"
    counts = collections.Counter(seen)
    assert [name for name, count in counts.items() if count > 1] == []
    assert set(paged_functions) <= set(seen)
    assert pages >= PAGE_FUNCTIONS // page_size


def test_list_functions_caps_pages_at_50(lambda_client, paged_functions):
    default = lambda_client.list_functions()
    assert len(default["Functions"]) == 50
    assert "NextMarker" in default
    huge = lambda_client.list_functions(MaxItems=10_000)
    assert len(huge["Functions"]) == 50
    assert "NextMarker" in huge
    # Listing entries omit the lifecycle fields, as Lambda's do.
    entry = default["Functions"][0]
    assert "State" not in entry and "LastUpdateStatus" not in entry
    assert entry["Version"] == "$LATEST"


def test_paginator_yields_every_function_exactly_once(lambda_client, paged_functions):
    for config in ({}, {"PageSize": 13}):
        names = [
            entry["FunctionName"]
            for page in lambda_client.get_paginator("list_functions").paginate(
                PaginationConfig=config
            )
            for entry in page["Functions"]
        ]
        counts = collections.Counter(names)
        assert [name for name, count in counts.items() if count > 1] == []
        assert set(paged_functions) <= set(names)
        ours = [name for name in names if name in set(paged_functions)]
        assert len(ours) == PAGE_FUNCTIONS


def test_paginator_last_page_has_no_next_marker(lambda_client, paged_functions):
    pages = list(
        lambda_client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 50})
    )
    assert len(pages) >= 3
    for page in pages[:-1]:
        assert page.get("NextMarker")
    assert "NextMarker" not in pages[-1]


def test_list_functions_all_versions(lambda_client, paged_functions):
    entries = [
        entry
        for page in lambda_client.get_paginator("list_functions").paginate(
            FunctionVersion="ALL", PaginationConfig={"PageSize": 40}
        )
        for entry in page["Functions"]
    ]
    ours = [entry for entry in entries if entry["FunctionName"] in set(paged_functions)]
    assert sorted(entry["FunctionName"] for entry in ours) == sorted(paged_functions)
    for entry in ours:
        assert entry["Version"] == "$LATEST"
        assert entry["FunctionArn"] == f"{ARN_PREFIX}{entry['FunctionName']}:$LATEST"
    keys = [(entry["FunctionName"], entry["Version"]) for entry in entries]
    assert len(keys) == len(set(keys))


def test_marker_survives_deleting_the_function_it_points_at(lambda_client):
    # Names that sort before everything other tests create, so they lead the listing.
    prefix = f"0000-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{index}" for index in range(4)]
    for name in names:
        create(lambda_client, name)
    try:
        seen = []
        marker = None
        while True:
            kwargs = {"MaxItems": 1}
            if marker:
                kwargs["Marker"] = marker
            page = lambda_client.list_functions(**kwargs)
            assert len(page["Functions"]) == 1
            current = page["Functions"][0]["FunctionName"]
            seen.append(current)
            marker = page["NextMarker"]
            if current == names[1]:
                lambda_client.delete_function(FunctionName=names[1])
                break
            assert len(seen) < 2000
        following = lambda_client.list_functions(MaxItems=2, Marker=marker)["Functions"]
        assert [entry["FunctionName"] for entry in following] == names[2:4]
    finally:
        for name in names:
            try:
                lambda_client.delete_function(FunctionName=name)
            except ClientError:
                pass


def test_invalid_marker_is_refused(lambda_client):
    error = client_error(lambda_client.list_functions, Marker="not a marker!")
    assert_error(error, "InvalidParameterValueException", 400)
