"""Versions and aliases end to end: boto3 and the aws CLI against a real `kiln serve`.

Publishing (explicitly, and with `Publish=true` on create and code updates), invoking each
version in its own environments, listing and paginating versions and aliases, aliases with
weighted routing over many invocations, the alias rules' errors compared with the AWS
recordings (`recordings.py`), and persistence of both across `kill -9`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import make_lambda_client
from kiln_harness import ACCOUNT_ID, REGION, ROLE, KilnServer, make_zip
from recordings import assert_matches, error_response, recorded

API = "test_lambda_api.snapshot.json"
ARN_PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
FAST = {"Delay": 0.1, "MaxAttempts": 200}

SOURCE = """\
import os

STARTS = 0


def handler(event, context):
    global STARTS
    STARTS += 1
    return {
        "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        "context_version": context.function_version,
        "arn": context.invoked_function_arn,
        "mark": os.environ.get("MARK"),
        "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
        "starts": STARTS,
    }
"""
CODE = make_zip({"app.py": SOURCE})
OTHER_CODE = make_zip({"app.py": SOURCE + "\n# other code\n"})


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def create(client, name, code=CODE, **extra):
    response = client.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": code}, Timeout=10, **extra,
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)
    return response


def wait_updated(client, name):
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST)


def set_mark(client, name, mark):
    client.update_function_configuration(FunctionName=name, Environment={"Variables": {"MARK": mark}})
    wait_updated(client, name)


def invoke(client, name, qualifier=None, **extra):
    arguments = {"FunctionName": name, **extra}
    if qualifier is not None:
        arguments["Qualifier"] = qualifier
    response = client.invoke(**arguments)
    assert "FunctionError" not in response, response["Payload"].read()
    return response["ExecutedVersion"], json.loads(response["Payload"].read())


def error_of(excinfo) -> tuple[int, str, str]:
    response = excinfo.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def assert_error_like_aws(excinfo, test: str, key: str):
    """The error matches the recorded AWS error (code, message, status)."""
    expected = recorded(API, test, key)
    actual = error_response(excinfo.value)
    assert actual["ResponseMetadata"]["HTTPStatusCode"] == expected["ResponseMetadata"]["HTTPStatusCode"]
    assert_matches(actual, expected)


# ---------------------------------------------------------------------------------------------
# Versions


def test_publish_invoke_and_list_versions(lambda_client, function_name):
    client = lambda_client
    create(client, function_name, Environment={"Variables": {"MARK": "one"}})
    latest_revision = client.get_function(FunctionName=function_name)["Configuration"]["RevisionId"]

    v1 = client.publish_version(FunctionName=function_name, Description="first")
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert v1["Version"] == "1"
    assert v1["FunctionArn"] == f"{ARN_PREFIX}{function_name}:1"
    assert v1["Description"] == "first"
    assert v1["State"] == "Active" and v1["LastUpdateStatus"] == "Successful"
    latest = client.get_function(FunctionName=function_name)["Configuration"]
    assert latest["RevisionId"] != latest_revision, "publishing gives $LATEST a new revision"
    assert latest["Description"] == "", "the description override stays with the version"

    # Nothing changed: the same version comes back, as on AWS.
    again = client.publish_version(FunctionName=function_name)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert again["Version"] == "1" and again["RevisionId"] == v1["RevisionId"]

    set_mark(client, function_name, "two")
    v2 = client.publish_version(FunctionName=function_name)
    assert v2["Version"] == "2"
    assert v2["Environment"] == {"Variables": {"MARK": "two"}}

    # Each version runs its own snapshot in its own environments.
    executed, payload = invoke(client, function_name, "1")
    assert executed == "1"
    assert payload["version"] == "1" and payload["context_version"] == "1"
    assert payload["mark"] == "one"
    assert payload["arn"] == f"{ARN_PREFIX}{function_name}:1"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", payload["stream"]), payload["stream"]
    executed, payload = invoke(client, function_name, "2")
    assert (executed, payload["version"], payload["mark"]) == ("2", "2", "two")
    executed, payload = invoke(client, function_name)
    assert (executed, payload["version"], payload["mark"]) == ("$LATEST", "$LATEST", "two")
    executed, payload = invoke(client, f"{function_name}:1")
    assert executed == "1" and payload["starts"] == 2, "version 1's environment is reused"
    tail = base64.b64decode(
        client.invoke(FunctionName=function_name, Qualifier="2", LogType="Tail")["LogResult"]
    ).decode()
    assert re.match(r"START RequestId: \S+ Version: 2\n", tail), tail

    # Get* by qualifier.
    got = client.get_function(FunctionName=function_name, Qualifier="1")
    assert got["Configuration"]["Version"] == "1"
    assert got["Configuration"]["FunctionArn"] == f"{ARN_PREFIX}{function_name}:1"
    with urllib.request.urlopen(got["Code"]["Location"], timeout=10) as response:
        assert response.read() == CODE
    configuration = client.get_function_configuration(FunctionName=f"{function_name}:2")
    assert configuration["Environment"]["Variables"]["MARK"] == "two"
    latest = client.get_function_configuration(FunctionName=function_name, Qualifier="$LATEST")
    assert latest["FunctionArn"] == f"{ARN_PREFIX}{function_name}:$LATEST"

    # Listing, one page at a time; entries are shown without lifecycle fields, as on AWS.
    listed = client.list_versions_by_function(FunctionName=function_name)["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1", "2"]
    assert listed[0]["FunctionArn"] == f"{ARN_PREFIX}{function_name}:$LATEST"
    assert "State" not in listed[1]
    pages, marker = [], None
    while True:
        arguments = {"FunctionName": function_name, "MaxItems": 1}
        if marker:
            arguments["Marker"] = marker
        page = client.list_versions_by_function(**arguments)
        pages.append([v["Version"] for v in page["Versions"]])
        marker = page.get("NextMarker")
        if not marker:
            break
    assert pages == [["$LATEST"], ["1"], ["2"]]
    paginated = [
        v["Version"]
        for page in client.get_paginator("list_versions_by_function").paginate(
            FunctionName=function_name, PaginationConfig={"PageSize": 2}
        )
        for v in page["Versions"]
    ]
    assert paginated == ["$LATEST", "1", "2"]
    everything = [
        f["FunctionArn"]
        for page in client.get_paginator("list_functions").paginate(FunctionVersion="ALL")
        for f in page["Functions"]
        if f["FunctionName"] == function_name
    ]
    assert everything == [f"{ARN_PREFIX}{function_name}:{v}" for v in ("$LATEST", "1", "2")]

    # Numbers are never reused.
    client.delete_function(FunctionName=function_name, Qualifier="2")
    with pytest.raises(ClientError) as excinfo:
        client.get_function(FunctionName=function_name, Qualifier="2")
    assert error_of(excinfo)[:2] == (404, "ResourceNotFoundException")
    set_mark(client, function_name, "three")
    assert client.publish_version(FunctionName=function_name)["Version"] == "3"
    with pytest.raises(ClientError) as excinfo:
        invoke(client, function_name, "2")
    assert error_of(excinfo) == (
        404, "ResourceNotFoundException",
        f"Function not found: {ARN_PREFIX}{function_name}:2",
    )


def test_publish_preconditions(lambda_client, function_name):
    client = lambda_client
    create(client, function_name)
    with pytest.raises(ClientError) as excinfo:
        client.publish_version(FunctionName=function_name, CodeSha256="somenonexistentsha256")
    assert_error_like_aws(
        excinfo, "test_lambda_api.py::TestLambdaVersions::test_publish_with_wrong_sha256",
        "publish_wrong_sha256_exc",
    )
    with pytest.raises(ClientError) as excinfo:
        client.publish_version(FunctionName=function_name, RevisionId="wrong")
    assert error_of(excinfo) == (
        412, "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the "
        "GetFunction/GetAlias API to retrieve the latest Revision Id",
    )
    current = client.get_function(FunctionName=function_name)["Configuration"]
    published = client.publish_version(
        FunctionName=function_name, CodeSha256=current["CodeSha256"], RevisionId=current["RevisionId"]
    )
    assert published["Version"] == "1"
    with pytest.raises(ClientError) as excinfo:
        client.publish_version(FunctionName=f"{function_name}-missing")
    assert error_of(excinfo) == (
        404, "ResourceNotFoundException", f"Function not found: {ARN_PREFIX}{function_name}-missing"
    )
    # Versions are immutable: Update* take unqualified names only.
    with pytest.raises(ClientError) as excinfo:
        client.update_function_configuration(FunctionName=f"{function_name}:1", Timeout=9)
    assert error_of(excinfo)[1] == "InvalidParameterValueException"


def test_publish_on_create_and_on_code_update(lambda_client, function_name):
    client = lambda_client
    created = client.create_function(
        FunctionName=function_name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": CODE}, Publish=True,
    )
    assert created["Version"] == "1"
    assert created["FunctionArn"] == f"{ARN_PREFIX}{function_name}", "AWS answers unqualified"
    assert created["State"] == "Pending"
    on_create = "test_lambda_api.py::TestLambdaVersions::test_publish_version_on_create"
    # The recorded function's handler is `index.handler`; everything else is compared.
    assert_matches(created, recorded(API, on_create, "create_response"), ignore=("Handler",))
    client.get_waiter("function_active_v2").wait(FunctionName=function_name, WaiterConfig=FAST)
    client.get_waiter("function_active_v2").wait(
        FunctionName=function_name, Qualifier="1", WaiterConfig=FAST
    )
    got = client.get_function(FunctionName=function_name, Qualifier="1")["Configuration"]
    assert_matches(
        got, recorded(API, on_create, "get_function_version_result")["Configuration"], ignore=("Handler",)
    )
    listed = client.list_versions_by_function(FunctionName=function_name)
    for entry, expected in zip(listed["Versions"], recorded(API, on_create, "list_versions_result")["Versions"]):
        assert_matches(entry, expected, ignore=("Handler",))
    assert invoke(client, function_name, "1")[0] == "1"

    updated = client.update_function_code(FunctionName=function_name, ZipFile=OTHER_CODE, Publish=True)
    with_update = "test_lambda_api.py::TestLambdaVersions::test_publish_with_update"
    # The recorded function had no version before this one: its number is 1, here 2.
    assert_matches(
        updated, recorded(API, with_update, "update_function_code_result"),
        ignore=("Handler", "Version", "FunctionArn"),
    )
    assert updated["Version"] == "2"
    assert updated["FunctionArn"] == f"{ARN_PREFIX}{function_name}:2"
    assert updated["CodeSha256"] == sha256_b64(OTHER_CODE)
    wait_updated(client, function_name)
    client.get_waiter("function_active_v2").wait(
        FunctionName=function_name, Qualifier="2", WaiterConfig=FAST
    )
    v2 = client.get_function_configuration(FunctionName=function_name, Qualifier="2")
    assert v2["State"] == "Active" and v2["LastUpdateStatus"] == "Successful"
    assert invoke(client, function_name, "2")[0] == "2"
    v1 = client.get_function_configuration(FunctionName=function_name, Qualifier="1")
    assert v1["CodeSha256"] == sha256_b64(CODE), "version 1 keeps its code"


# ---------------------------------------------------------------------------------------------
# Aliases


def publish_two(client, name):
    create(client, name, Environment={"Variables": {"MARK": "one"}})
    client.publish_version(FunctionName=name)
    set_mark(client, name, "two")
    client.publish_version(FunctionName=name)


def test_alias_lifecycle(lambda_client, function_name):
    client = lambda_client
    publish_two(client, function_name)
    alias_arn = f"{ARN_PREFIX}{function_name}:live"

    created = client.create_alias(
        FunctionName=function_name, Name="live", FunctionVersion="1", Description="production"
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert_matches(
        created,
        recorded(API, "test_lambda_api.py::TestLambdaAlias::test_alias_lifecycle", "create_alias_2"),
        ignore=("AliasArn", "Name", "Description", "FunctionVersion"),
    )
    assert (created["AliasArn"], created["Name"], created["FunctionVersion"]) == (alias_arn, "live", "1")
    assert "RoutingConfig" not in created
    got_alias = client.get_alias(FunctionName=function_name, Name="live")
    assert {k: v for k, v in got_alias.items() if k != "ResponseMetadata"} == {
        k: v for k, v in created.items() if k != "ResponseMetadata"
    }

    executed, payload = invoke(client, function_name, "live")
    assert executed == "1" and payload["mark"] == "one"
    assert payload["arn"] == alias_arn
    executed, payload = invoke(client, alias_arn)
    assert executed == "1"

    # Get* through an alias: the version's configuration under the alias's ARN.
    got = client.get_function(FunctionName=function_name, Qualifier="live")["Configuration"]
    assert got["FunctionArn"] == alias_arn and got["Version"] == "1"

    with pytest.raises(ClientError) as excinfo:
        client.create_alias(FunctionName=function_name, Name="live", FunctionVersion="2")
    assert error_of(excinfo) == (409, "ResourceConflictException", f"Alias already exists: {alias_arn}")

    with pytest.raises(ClientError) as excinfo:
        client.update_alias(FunctionName=function_name, Name="live", FunctionVersion="2", RevisionId="stale")
    assert error_of(excinfo)[:2] == (412, "PreconditionFailedException")
    moved = client.update_alias(
        FunctionName=function_name, Name="live", FunctionVersion="2", RevisionId=created["RevisionId"]
    )
    assert moved["FunctionVersion"] == "2" and moved["RevisionId"] != created["RevisionId"]
    assert moved["Description"] == "production", "an update keeps what it does not change"
    executed, payload = invoke(client, function_name, "live")
    assert executed == "2" and payload["mark"] == "two"

    client.create_alias(FunctionName=function_name, Name="old", FunctionVersion="1")
    client.create_alias(FunctionName=function_name, Name="edge", FunctionVersion="$LATEST")
    names = [a["Name"] for a in client.list_aliases(FunctionName=function_name)["Aliases"]]
    assert names == ["edge", "live", "old"]
    only_v1 = client.list_aliases(FunctionName=function_name, FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in only_v1] == ["old"]
    paged = [
        a["Name"]
        for page in client.get_paginator("list_aliases").paginate(
            FunctionName=function_name, PaginationConfig={"PageSize": 1}
        )
        for a in page["Aliases"]
    ]
    assert paged == ["edge", "live", "old"]

    # A version an alias points to cannot be deleted.
    with pytest.raises(ClientError) as excinfo:
        client.delete_function(FunctionName=function_name, Qualifier="1")
    assert error_of(excinfo) == (
        409, "ResourceConflictException",
        "Unable to delete version because the following aliases reference it: [old]",
    )
    with pytest.raises(ClientError) as excinfo:
        client.delete_function(FunctionName=function_name, Qualifier="old")
    assert error_of(excinfo)[2] == "Deletion of aliases is not currently supported."

    deleted = client.delete_alias(FunctionName=function_name, Name="old")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    client.delete_function(FunctionName=function_name, Qualifier="1")
    with pytest.raises(ClientError) as excinfo:
        client.get_alias(FunctionName=function_name, Name="old")
    assert error_of(excinfo) == (
        404, "ResourceNotFoundException", f"Cannot find alias arn: {ARN_PREFIX}{function_name}:old"
    )
    with pytest.raises(ClientError) as excinfo:
        client.update_alias(FunctionName=function_name, Name="old", FunctionVersion="2")
    assert error_of(excinfo) == (
        404, "ResourceNotFoundException", f"Alias not found: {ARN_PREFIX}{function_name}:old"
    )
    with pytest.raises(ClientError) as excinfo:
        invoke(client, function_name, "old")
    assert error_of(excinfo) == (
        404, "ResourceNotFoundException", f"Function not found: {ARN_PREFIX}{function_name}:old"
    )
    with pytest.raises(ClientError) as excinfo:
        client.get_function(FunctionName=function_name, Qualifier="old")
    assert error_of(excinfo)[:2] == (404, "ResourceNotFoundException")

    # Deleting the function deletes its aliases.
    client.delete_function(FunctionName=function_name)
    create(client, function_name)
    assert client.list_aliases(FunctionName=function_name)["Aliases"] == []


def test_alias_rules_match_aws(lambda_client, kiln, function_name):
    client = lambda_client
    publish_two(client, function_name)
    # botocore checks a weight's minimum itself; AWS's answer is what is compared here.
    unchecked = boto3.client(
        "lambda", endpoint_url=kiln.url, region_name=REGION, aws_access_key_id="kiln-test",
        aws_secret_access_key="kiln-test", config=Config(parameter_validation=False),
    )

    def refused(**arguments) -> pytest.ExceptionInfo:
        with pytest.raises(ClientError) as excinfo:
            unchecked.create_alias(FunctionName=function_name, **arguments)
        return excinfo

    cases = [
        ({"Name": "2024", "FunctionVersion": "1"}, "create_alias_number_exception"),
        ({"Name": "custom", "FunctionVersion": "10"}, "target_version_doesnotexist"),
        (
            {"Name": "custom", "FunctionVersion": "$LATEST", "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}},
            "target_version_exc_version_latest",
        ),
        (
            {"Name": "custom", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}},
            "routing_config_exc_sameversion",
        ),
        (
            {"Name": "custom", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"10": 0.5}}},
            "routing_config_exc_version_doesnotexist",
        ),
        (
            {"Name": "custom", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5, "3": 0.1}}},
            "routing_config_exc_toomany",
        ),
        (
            {"Name": "custom", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 2.0}}},
            "routing_config_exc_toohigh",
        ),
        (
            {"Name": "custom", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": -1.0}}},
            "routing_config_exc_subzero",
        ),
        (
            {"Name": "custom", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"$LATEST": 0.5}}},
            "routing_config_exc_version_latest",
        ),
    ]
    for arguments, key in cases:
        expected = find_recording(key)
        excinfo = refused(**arguments)
        actual = error_response(excinfo.value)
        assert actual["ResponseMetadata"]["HTTPStatusCode"] == expected["ResponseMetadata"]["HTTPStatusCode"], key
        assert_matches(actual, expected)

    client.create_alias(FunctionName=function_name, Name="custom", FunctionVersion="1")
    excinfo = refused(Name="custom", FunctionVersion="1")
    assert_matches(error_response(excinfo.value), find_recording("routing_config_exc_already_exist"))
    with pytest.raises(ClientError) as excinfo:
        client.create_alias(FunctionName=f"{function_name}-unknown", Name="x", FunctionVersion="1")
    assert_matches(error_response(excinfo.value), find_recording("routing_config_exc_fn_doesnotexist"))
    with pytest.raises(ClientError) as excinfo:
        client.get_alias(FunctionName=function_name, Name="non-existent")
    assert_matches(error_response(excinfo.value), find_recording("alias_does_not_exist_esc"))
    with pytest.raises(ClientError) as excinfo:
        client.update_alias(FunctionName=function_name, Name="non-existent", FunctionVersion="1")
    assert_matches(error_response(excinfo.value), find_recording("update_alias_response"))

    # Versions with different execution roles cannot share an alias.
    client.update_function_configuration(
        FunctionName=function_name, Role=f"arn:aws:iam::{ACCOUNT_ID}:role/another-role"
    )
    wait_updated(client, function_name)
    assert client.publish_version(FunctionName=function_name)["Version"] == "3"
    excinfo = refused(
        Name="mixed", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"3": 0.5}}
    )
    assert error_of(excinfo) == (
        400, "InvalidParameterValueException",
        "Specified versions must be associated with the same execution role",
    )


def find_recording(key: str) -> dict:
    """The TestLambdaAlias error recording stored under `key` (its test does not matter)."""
    from recordings import _load, PREFIX  # noqa: PLC0415

    for test, entry in _load(API).items():
        if test.startswith(PREFIX + "test_lambda_api.py::TestLambdaAlias::"):
            content = entry["recorded-content"]
            if key in content and "Error" in content[key]:
                return content[key]
    raise KeyError(key)


def test_weighted_alias_routes_by_weight(lambda_client, kiln, function_name):
    client = lambda_client
    publish_two(client, function_name)
    created = client.create_alias(
        FunctionName=function_name, Name="canary", FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.3}}

    def one(_):
        local = make_lambda_client(kiln.url)
        response = local.invoke(FunctionName=function_name, Qualifier="canary")
        payload = json.loads(response["Payload"].read())
        assert payload["version"] == response["ExecutedVersion"], "the header names what ran"
        assert payload["arn"] == f"{ARN_PREFIX}{function_name}:canary"
        assert re.fullmatch(rf"\d{{4}}/\d\d/\d\d/\[{payload['version']}\][0-9a-f]{{32}}", payload["stream"])
        return response["ExecutedVersion"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = Counter(pool.map(one, range(1000)))
    assert set(counts) == {"1", "2"}, counts
    # Binomial(1000, 0.3): standard deviation 14.5, so +-60 is more than 4 of them.
    assert abs(counts["2"] - 300) <= 60, counts

    # Moving all traffic: weight 1.0 sends everything to the additional version; removing the
    # routing configuration sends everything to the alias's version.
    client.update_alias(
        FunctionName=function_name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}}
    )
    assert {invoke(client, function_name, "canary")[0] for _ in range(20)} == {"2"}
    updated = client.update_alias(
        FunctionName=function_name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert "RoutingConfig" not in updated
    assert {invoke(client, function_name, "canary")[0] for _ in range(20)} == {"1"}


def test_versions_and_aliases_with_the_aws_cli(aws, lambda_client, function_name, tmp_path):
    create(lambda_client, function_name)
    published = aws.json("lambda", "publish-version", "--function-name", function_name,
                         "--description", "from the cli")
    assert published["Version"] == "1"
    alias = aws.json("lambda", "create-alias", "--function-name", function_name, "--name", "prod",
                     "--function-version", "1")
    assert alias["AliasArn"] == f"{ARN_PREFIX}{function_name}:prod"
    listed = aws.json("lambda", "list-aliases", "--function-name", function_name)
    assert [a["Name"] for a in listed["Aliases"]] == ["prod"]
    versions = aws.json("lambda", "list-versions-by-function", "--function-name", function_name)
    assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1"]
    out = tmp_path / "out.json"
    result = aws.json("lambda", "invoke", "--function-name", function_name, "--qualifier", "prod",
                      str(out))
    assert result["ExecutedVersion"] == "1"
    assert json.loads(out.read_text())["version"] == "1"
    aws.run("lambda", "delete-alias", "--function-name", function_name, "--name", "prod")
    assert aws.json("lambda", "list-aliases", "--function-name", function_name)["Aliases"] == []


def test_versions_and_aliases_survive_kill9(tmp_path):
    server = KilnServer(tmp_path / "data").start()
    try:
        client = make_lambda_client(server.url)
        name = "survivor"
        publish_two(client, name)
        client.delete_function(FunctionName=name, Qualifier="2")
        client.create_alias(
            FunctionName=name, Name="live", FunctionVersion="1", Description="d",
        )
        before = client.get_alias(FunctionName=name, Name="live")
        server.kill9()
        server.restart()
        client = make_lambda_client(server.url)
        after = client.get_alias(FunctionName=name, Name="live")
        assert {k: v for k, v in after.items() if k != "ResponseMetadata"} == {
            k: v for k, v in before.items() if k != "ResponseMetadata"
        }
        assert [v["Version"] for v in client.list_versions_by_function(FunctionName=name)["Versions"]] == [
            "$LATEST", "1",
        ]
        executed, payload = invoke(client, name, "live")
        assert executed == "1" and payload["mark"] == "one"
        set_mark(client, name, "three")
        assert client.publish_version(FunctionName=name)["Version"] == "3", "2 stays used"
    finally:
        if server.process is not None:
            server.kill9()
