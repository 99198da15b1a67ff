"""Lambda layers end to end: the layer operations with boto3 and the aws CLI, `Layers` on
functions, what layers bring into `/opt` at run time (Python packages, Node modules, a custom
runtime's bootstrap, order of overriding), persistence across restarts, and the error cases,
compared with AWS's responses in the recordings (`recordings.py`) where they exist.

The recorded scenarios are LocalStack's AWS-validated `TestLambdaLayer` tests
(`tests/aws/services/lambda_/test_lambda_api.py`); the requests here mirror theirs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import make_lambda_client
from kiln_harness import ACCOUNT_ID, REGION, ROLE, KilnServer, make_zip, unique
from recordings import assert_matches, error_response, recorded

API = "test_lambda_api.snapshot.json"
LAYER_ARN_PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:"
FAST = {"Delay": 0.1, "MaxAttempts": 200}

ECHO_ZIP = make_zip({"handler.py": "def handler(event, context):\n    return event\n"})
LAYER_ZIP = make_zip({"python/mylib.py": "VALUE = 'from the layer'\n"})

PYTHON_USES_LAYER = make_zip(
    {
        "app.py": (
            "import mylib\n"
            "import os\n\n"
            "def handler(event, context):\n"
            "    shared = open('/opt/shared.txt').read().strip() "
            "if os.path.exists('/opt/shared.txt') else None\n"
            "    return {'value': mylib.VALUE, 'file': mylib.__file__, 'shared': shared}\n"
        )
    }
)

NODE_USES_LAYER = make_zip(
    {
        "index.js": (
            "const mymod = require('mymod');\n"
            "exports.handler = async () => ({ value: mymod.value, path: require.resolve('mymod') });\n"
        )
    }
)

SHELL_BOOTSTRAP = r"""#!/bin/sh
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  curl -sS -D /tmp/headers -o /tmp/event "$API/invocation/next"
  ID=$(grep -i '^lambda-runtime-aws-request-id:' /tmp/headers | tr -d '\r' | cut -d' ' -f2)
  BODY="{\"bootstrap\":\"$0\",\"tool\":\"$(layer-tool 2>&1)\",\"path\":\"$PATH\",\"ld\":\"$LD_LIBRARY_PATH\"}"
  printf '%s' "$BODY" | curl -sS -X POST --data-binary @- "$API/invocation/$ID/response" >/dev/null
done
"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def layer_arn(name: str, version: int | None = None) -> str:
    arn = f"{LAYER_ARN_PREFIX}{name}"
    return arn if version is None else f"{arn}:{version}"


def error_of(call, /, *args, **kwargs) -> dict:
    try:
        call(*args, **kwargs)
    except ClientError as error:
        return error_response(error)
    pytest.fail(f"AWS refuses this request, Kiln accepted it: {call.__name__}")


def match(test: str, key: str, actual, ignore: tuple[str, ...] = ()) -> None:
    expected = recorded(API, f"test_lambda_api.py::TestLambdaLayer::{test}", key)
    assert_matches(actual, expected, ignore)
    want = expected.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if want is not None:
        got = actual.get("ResponseMetadata", {}).get("HTTPStatusCode")
        assert got == want, f"{key}: AWS answered HTTP {want}, Kiln HTTP {got}"


def create_function(client, name, **extra):
    extra.setdefault("Runtime", "python3.12")
    extra.setdefault("Handler", "handler.handler")
    extra.setdefault("Code", {"ZipFile": ECHO_ZIP})
    extra.setdefault("Timeout", 30)
    client.create_function(FunctionName=name, Role=ROLE, **extra)
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)


def invoke(client, name, payload=None) -> dict:
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload or {}))
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


@pytest.fixture
def layer_name(request):
    return unique(request.node.name.replace("_", "-")[:40])


# ---------------------------------------------------------------------------------------------
# Control plane, against the recordings.


def test_layer_lifecycle_as_recorded(lambda_client, layer_name, function_name):
    """test_layer_lifecycle: publish twice, attach, get, list, delete, publish again."""
    test = "test_layer_lifecycle"
    create_function(lambda_client, function_name, Environment={"Variables": {}})
    match(test, "get_fn_result", lambda_client.get_function(FunctionName=function_name))

    publish = {
        "LayerName": layer_name,
        "CompatibleRuntimes": ["python3.12"],
        "Content": {"ZipFile": LAYER_ZIP},
        "CompatibleArchitectures": ["x86_64"],
        "Description": "a layer",
        "LicenseInfo": "MIT",
    }
    first = lambda_client.publish_layer_version(**publish)
    match(test, "publish_result", first)
    assert first["Version"] == 1
    assert first["LayerArn"] == layer_arn(layer_name)
    assert first["Content"]["CodeSha256"] == b64(hashlib.sha256(LAYER_ZIP).digest())
    assert first["Content"]["CodeSize"] == len(LAYER_ZIP)
    with urllib.request.urlopen(first["Content"]["Location"]) as download:
        assert download.read() == LAYER_ZIP, "Content.Location serves the zip"
    second = lambda_client.publish_layer_version(**publish)
    match(test, "publish_result_2", second)
    assert second["Version"] == 2

    updated = lambda_client.update_function_configuration(
        FunctionName=function_name, Layers=[first["LayerVersionArn"]]
    )
    match(test, "update_fn_config", updated)
    assert updated["Layers"] == [{"Arn": first["LayerVersionArn"], "CodeSize": len(LAYER_ZIP)}]
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=FAST)
    match(test, "get_fn_config", lambda_client.get_function_configuration(FunctionName=function_name))

    got = lambda_client.get_layer_version(LayerName=layer_name, VersionNumber=1)
    match(test, "get_layer_ver_result", got)
    by_arn = lambda_client.get_layer_version_by_arn(Arn=first["LayerVersionArn"])
    match(test, "get_layer_by_arn_version", by_arn)
    assert by_arn["CreatedDate"] == first["CreatedDate"]

    listed = lambda_client.list_layer_versions(LayerName=layer_name)
    match(test, "list_layer_versions_predelete", listed)
    assert [v["Version"] for v in listed["LayerVersions"]] == [2, 1]

    match(test, "delete_layer_1", lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=1))
    after_delete = lambda_client.get_function_configuration(FunctionName=function_name)
    match(test, "get_fn_config_postdelete", after_delete)
    assert after_delete["Layers"][0]["Arn"] == first["LayerVersionArn"], "the function keeps it"
    match(test, "delete_layer_2", lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=2))
    match(
        test,
        "list_layer_versions_postdelete",
        lambda_client.list_layer_versions(LayerName=layer_name),
    )
    third = lambda_client.publish_layer_version(**publish)
    match(test, "publish_result_3", third)
    assert third["Version"] == 3, "version numbers are never reused"
    lambda_client.delete_function(FunctionName=function_name)


def test_layer_exceptions_as_recorded(lambda_client, layer_name):
    """test_layer_exceptions: list filters, missing versions, deletes, publish validation."""
    test = "test_layer_exceptions"
    published = lambda_client.publish_layer_version(
        LayerName=layer_name,
        CompatibleRuntimes=["python3.12"],
        Content={"ZipFile": LAYER_ZIP},
        CompatibleArchitectures=["x86_64"],
    )
    match(test, "publish_result", published)
    match(
        test,
        "list_layers_exc_compatibleruntime_invalid",
        error_of(lambda_client.list_layers, CompatibleRuntime="runtimedoesnotexist"),
    )
    match(
        test,
        "list_layers_exc_compatiblearchitecture_invalid",
        error_of(lambda_client.list_layers, CompatibleArchitecture="archdoesnotexist"),
    )
    match(
        test,
        "list_nonexistent_layer",
        lambda_client.list_layer_versions(LayerName=f"{layer_name}-doesnotexist"),
    )
    match(
        test,
        "get_layer_version_exc_layer_doesnotexist",
        error_of(lambda_client.get_layer_version, LayerName=f"{layer_name}-doesnotexist", VersionNumber=1),
    )
    match(
        test,
        "get_layer_version_exc_layer_version_doesnotexist_negative",
        error_of(lambda_client.get_layer_version, LayerName=layer_name, VersionNumber=-1),
    )
    match(
        test,
        "get_layer_version_exc_layer_version_doesnotexist_zero",
        error_of(lambda_client.get_layer_version, LayerName=layer_name, VersionNumber=0),
    )
    match(
        test,
        "get_layer_version_exc_layer_version_doesnotexist_2",
        error_of(lambda_client.get_layer_version, LayerName=layer_name, VersionNumber=2),
    )
    match(
        test,
        "get_layer_version_by_arn_exc_invalidarn",
        error_of(lambda_client.get_layer_version_by_arn, Arn=published["LayerArn"]),
    )
    match(
        test,
        "get_layer_version_by_arn_exc_nonexistentversion",
        error_of(lambda_client.get_layer_version_by_arn, Arn=f"{published['LayerArn']}:2"),
    )
    match(
        test,
        "delete_nonexistent_response",
        lambda_client.delete_layer_version(LayerName=f"{layer_name}-doesnotexist", VersionNumber=1),
    )
    match(
        test,
        "delete_nonexistent_version_response",
        lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=2),
    )
    match(test, "delete_layer_response", lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=1))
    match(
        test,
        "delete_layer_again_response",
        lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=1),
    )
    match(
        test,
        "delete_layer_version_exc_layerversion_invalid_version",
        error_of(lambda_client.delete_layer_version, LayerName=layer_name, VersionNumber=-1),
    )
    empty = lambda_client.publish_layer_version(
        LayerName=f"{layer_name}-empty",
        Content={"ZipFile": LAYER_ZIP},
        CompatibleRuntimes=[],
        CompatibleArchitectures=[],
    )
    match(test, "publish_empty_result", empty)
    match(
        test,
        "publish_layer_version_exc_invalid_runtime_arch",
        error_of(
            lambda_client.publish_layer_version,
            LayerName=layer_name,
            Content={"ZipFile": LAYER_ZIP},
            CompatibleRuntimes=["invalidruntime"],
            CompatibleArchitectures=["invalidarch"],
        ),
    )
    match(
        test,
        "publish_layer_version_exc_partially_invalid_values",
        error_of(
            lambda_client.publish_layer_version,
            LayerName=layer_name,
            Content={"ZipFile": LAYER_ZIP},
            CompatibleRuntimes=["invalidruntime", "invalidruntime2", "nodejs20.x"],
            CompatibleArchitectures=["invalidarch", "x86_64"],
        ),
    )


def test_layer_function_exceptions_as_recorded(lambda_client, layer_name, function_name):
    """test_layer_function_exceptions: AWS's checks on a function's `Layers`."""
    test = "test_layer_function_exceptions"
    arns = []
    for key in ("publish_result", "publish_result_2", "publish_result_3"):
        published = lambda_client.publish_layer_version(
            LayerName=layer_name,
            CompatibleRuntimes=[],
            Content={"ZipFile": LAYER_ZIP},
            CompatibleArchitectures=["x86_64"],
        )
        match(test, key, published)
        arns.append(published["LayerVersionArn"])
    create_function(lambda_client, function_name, Environment={"Variables": {}})
    match(test, "get_fn_result", lambda_client.get_function(FunctionName=function_name))

    def refused(layers):
        return error_of(
            lambda_client.update_function_configuration, FunctionName=function_name, Layers=layers
        )

    match(test, "two_layer_versions_single_function_exc", refused(arns[:2]))
    match(test, "three_layer_versions_single_function_exc", refused(arns))
    match(test, "two_identical_layer_versions_single_function_exc", refused([arns[0], arns[0]]))
    match(test, "add_nonexistent_layer_exc", refused([layer_arn("doesnotexist", 1)]))
    match(test, "add_nonexistent_layer_version_exc", refused([layer_arn(layer_name, 9)]))
    match(test, "add_layer_arn_without_version_exc", refused([layer_arn(layer_name)]))
    other_region = arns[0].replace(f":{REGION}:", ":eu-central-1:")
    match(
        test,
        "create_function_with_layer_in_different_region",
        error_of(
            lambda_client.create_function,
            FunctionName=f"{function_name}-2",
            Role=ROLE,
            Runtime="python3.12",
            Handler="handler.handler",
            Code={"ZipFile": ECHO_ZIP},
            Layers=[other_region],
        ),
    )
    lambda_client.delete_function(FunctionName=function_name)


def test_layer_function_quota_as_recorded(lambda_client, layer_name, function_name):
    """test_layer_function_quota_exception: at most five layers."""
    arns = []
    for index in range(6):
        published = lambda_client.publish_layer_version(
            LayerName=f"{layer_name}-{index}", Content={"ZipFile": LAYER_ZIP}
        )
        arns.append(published["LayerVersionArn"])
    response = error_of(
        lambda_client.create_function,
        FunctionName=function_name,
        Role=ROLE,
        Runtime="python3.12",
        Handler="handler.handler",
        Code={"ZipFile": ECHO_ZIP},
        Layers=arns,
    )
    match("test_layer_function_quota_exception", "create_function_with_six_layers", response)


def test_layer_policy_as_recorded(lambda_client, layer_name):
    """test_layer_policy_lifecycle and test_layer_policy_exceptions."""
    test = "test_layer_policy_exceptions"
    published = lambda_client.publish_layer_version(
        LayerName=layer_name,
        CompatibleRuntimes=["python3.12"],
        Content={"ZipFile": LAYER_ZIP},
        CompatibleArchitectures=["x86_64"],
    )
    match(test, "publish_result", published)
    match(
        test,
        "layer_permission_nopolicy_get",
        error_of(lambda_client.get_layer_version_policy, LayerName=layer_name, VersionNumber=1),
    )
    add = {
        "LayerName": layer_name,
        "VersionNumber": 1,
        "Action": "lambda:GetLayerVersion",
        "Principal": "*",
    }
    added = lambda_client.add_layer_version_permission(StatementId="s1", **add)
    added["Statement"] = json.loads(added["Statement"])
    match(test, "add_layer_permission_result", added)
    match(
        test,
        "layer_permission_action_invalid",
        error_of(lambda_client.add_layer_version_permission, StatementId="s2", **{**add, "Action": "*"}),
    )
    match(
        test,
        "layer_permission_duplicate_statement",
        error_of(lambda_client.add_layer_version_permission, StatementId="s1", **add),
    )
    match(
        test,
        "layer_permission_wrong_revision",
        error_of(lambda_client.add_layer_version_permission, StatementId="s2", RevisionId="wrong", **add),
    )
    missing_layer = {**add, "LayerName": f"{layer_name}-doesnotexist"}
    match(
        test,
        "layer_permission_layername_doesnotexist_add",
        error_of(lambda_client.add_layer_version_permission, StatementId="s2", **missing_layer),
    )
    match(
        test,
        "layer_permission_layername_doesnotexist_get",
        error_of(lambda_client.get_layer_version_policy, LayerName=f"{layer_name}-doesnotexist", VersionNumber=1),
    )
    match(
        test,
        "layer_permission_layername_doesnotexist_remove",
        error_of(
            lambda_client.remove_layer_version_permission,
            LayerName=f"{layer_name}-doesnotexist",
            VersionNumber=1,
            StatementId="s1",
        ),
    )
    match(
        test,
        "layer_permission_layerversion_doesnotexist_add",
        error_of(lambda_client.add_layer_version_permission, StatementId="s2", **{**add, "VersionNumber": 2}),
    )
    match(
        test,
        "layer_permission_layerversion_doesnotexist_get",
        error_of(lambda_client.get_layer_version_policy, LayerName=layer_name, VersionNumber=2),
    )
    match(
        test,
        "layer_permission_layerversion_doesnotexist_remove",
        error_of(
            lambda_client.remove_layer_version_permission,
            LayerName=layer_name,
            VersionNumber=2,
            StatementId="s1",
        ),
    )
    match(
        test,
        "layer_permission_statementid_doesnotexist_remove",
        error_of(
            lambda_client.remove_layer_version_permission,
            LayerName=layer_name,
            VersionNumber=1,
            StatementId="doesnotexist",
        ),
    )
    match(
        test,
        "layer_permission_wrong_revision_remove",
        error_of(
            lambda_client.remove_layer_version_permission,
            LayerName=layer_name,
            VersionNumber=1,
            StatementId="s1",
            RevisionId="wrong",
        ),
    )

    test = "test_layer_policy_lifecycle"
    policy = lambda_client.get_layer_version_policy(LayerName=layer_name, VersionNumber=1)
    policy["Policy"] = json.loads(policy["Policy"])
    match(test, "get_layer_version_policy", policy)
    assert policy["RevisionId"] == added["RevisionId"]
    second = lambda_client.add_layer_version_permission(
        StatementId="s2", RevisionId=policy["RevisionId"], **add
    )
    second["Statement"] = json.loads(second["Statement"])
    match(test, "add_policy_s2", second)
    both = lambda_client.get_layer_version_policy(LayerName=layer_name, VersionNumber=1)
    both["Policy"] = json.loads(both["Policy"])
    match(test, "get_layer_version_policy_postadd2", both)
    match(
        test,
        "remove_s2",
        lambda_client.remove_layer_version_permission(
            LayerName=layer_name, VersionNumber=1, StatementId="s2", RevisionId=both["RevisionId"]
        ),
    )
    after = lambda_client.get_layer_version_policy(LayerName=layer_name, VersionNumber=1)
    after["Policy"] = json.loads(after["Policy"])
    match(test, "get_layer_version_policy_postdeletes2", after)
    assert after["RevisionId"] not in (added["RevisionId"], second["RevisionId"])


def test_account_principals_and_organizations(lambda_client, layer_name):
    lambda_client.publish_layer_version(LayerName=layer_name, Content={"ZipFile": LAYER_ZIP})
    added = lambda_client.add_layer_version_permission(
        LayerName=layer_name,
        VersionNumber=1,
        StatementId="org",
        Action="lambda:GetLayerVersion",
        Principal="*",
        OrganizationId="o-abcdefghij",
    )
    assert json.loads(added["Statement"])["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}
    }
    added = lambda_client.add_layer_version_permission(
        LayerName=layer_name,
        VersionNumber=1,
        StatementId="acct",
        Action="lambda:GetLayerVersion",
        Principal="123456789012",
    )
    assert json.loads(added["Statement"])["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    # Removing every statement removes the policy.
    for sid in ("org", "acct"):
        lambda_client.remove_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId=sid)
    with pytest.raises(ClientError) as raised:
        lambda_client.get_layer_version_policy(LayerName=layer_name, VersionNumber=1)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_list_layers_filters_and_pages(lambda_client, layer_name):
    names = [f"{layer_name}-{index}" for index in range(3)]
    for name in names:
        lambda_client.publish_layer_version(
            LayerName=name,
            Content={"ZipFile": LAYER_ZIP},
            CompatibleRuntimes=["python3.12"],
            CompatibleArchitectures=["x86_64"],
        )
        lambda_client.publish_layer_version(
            LayerName=name,
            Content={"ZipFile": LAYER_ZIP},
            CompatibleRuntimes=["nodejs20.x"],
            CompatibleArchitectures=["arm64"],
        )
    everything = [
        layer
        for page in lambda_client.get_paginator("list_layers").paginate(PaginationConfig={"PageSize": 2})
        for layer in page["Layers"]
    ]
    mine = [layer for layer in everything if layer["LayerName"] in names]
    assert [layer["LayerName"] for layer in mine] == names
    assert all(layer["LatestMatchingVersion"]["Version"] == 2 for layer in mine)
    assert mine[0]["LayerArn"] == layer_arn(names[0])
    assert set(mine[0]["LatestMatchingVersion"]) == {
        "LayerVersionArn",
        "Version",
        "Description",
        "CreatedDate",
        "CompatibleRuntimes",
        "CompatibleArchitectures",
    }
    python_only = lambda_client.list_layers(CompatibleRuntime="python3.12")["Layers"]
    assert {
        layer["LayerName"]: layer["LatestMatchingVersion"]["Version"]
        for layer in python_only
        if layer["LayerName"] in names
    } == {name: 1 for name in names}
    arm = lambda_client.list_layers(CompatibleArchitecture="arm64", CompatibleRuntime="python3.12")
    assert not [layer for layer in arm["Layers"] if layer["LayerName"] in names]

    page = lambda_client.list_layer_versions(LayerName=names[0], MaxItems=1)
    assert [v["Version"] for v in page["LayerVersions"]] == [2]
    rest = lambda_client.list_layer_versions(LayerName=names[0], Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["LayerVersions"]] == [1]
    assert "NextMarker" not in rest
    filtered = lambda_client.list_layer_versions(LayerName=names[0], CompatibleRuntime="nodejs20.x")
    assert [v["Version"] for v in filtered["LayerVersions"]] == [2]


def test_layer_operations_with_the_aws_cli(aws, tmp_path, layer_name, function_name):
    zip_path = tmp_path / "layer.zip"
    zip_path.write_bytes(LAYER_ZIP)
    published = aws.json(
        "lambda",
        "publish-layer-version",
        "--layer-name",
        layer_name,
        "--zip-file",
        f"fileb://{zip_path}",
        "--compatible-runtimes",
        "python3.12",
        "python3.13",
        "--description",
        "from the cli",
    )
    assert published["LayerVersionArn"] == layer_arn(layer_name, 1)
    assert published["CompatibleRuntimes"] == ["python3.12", "python3.13"]
    got = aws.json("lambda", "get-layer-version-by-arn", "--arn", published["LayerVersionArn"])
    assert got["Description"] == "from the cli"
    listed = aws.json("lambda", "list-layer-versions", "--layer-name", layer_name)
    assert [v["Version"] for v in listed["LayerVersions"]] == [1]
    assert layer_name in [
        layer["LayerName"] for layer in aws.json("lambda", "list-layers")["Layers"]
    ]
    code_path = tmp_path / "code.zip"
    code_path.write_bytes(PYTHON_USES_LAYER)
    created = aws.json(
        "lambda",
        "create-function",
        "--function-name",
        function_name,
        "--runtime",
        "python3.12",
        "--handler",
        "app.handler",
        "--role",
        ROLE,
        "--zip-file",
        f"fileb://{code_path}",
        "--layers",
        published["LayerVersionArn"],
    )
    assert created["Layers"] == [{"Arn": published["LayerVersionArn"], "CodeSize": len(LAYER_ZIP)}]
    aws.run("lambda", "wait", "function-active-v2", "--function-name", function_name)
    out = tmp_path / "out.json"
    aws.run("lambda", "invoke", "--function-name", function_name, str(out))
    assert json.loads(out.read_text())["value"] == "from the layer"
    aws.run(
        "lambda",
        "add-layer-version-permission",
        "--layer-name",
        layer_name,
        "--version-number",
        "1",
        "--statement-id",
        "everyone",
        "--action",
        "lambda:GetLayerVersion",
        "--principal",
        "*",
    )
    policy = aws.json("lambda", "get-layer-version-policy", "--layer-name", layer_name, "--version-number", "1")
    assert json.loads(policy["Policy"])["Statement"][0]["Sid"] == "everyone"
    aws.run("lambda", "delete-layer-version", "--layer-name", layer_name, "--version-number", "1")
    failed = aws.run("lambda", "get-layer-version", "--layer-name", layer_name, "--version-number", "1", check=False)
    assert failed.returncode != 0 and "ResourceNotFoundException" in failed.stderr
    aws.run("lambda", "delete-function", "--function-name", function_name)


def test_s3_content_is_refused_clearly(lambda_client, layer_name):
    response = error_of(
        lambda_client.publish_layer_version,
        LayerName=layer_name,
        Content={"S3Bucket": "bucket", "S3Key": "layer.zip"},
    )
    assert response["Error"]["Code"] == "InvalidParameterValueException"
    assert "Content.ZipFile" in response["Error"]["Message"]


def test_hostile_layer_archives_are_refused(lambda_client, layer_name):
    response = error_of(
        lambda_client.publish_layer_version,
        LayerName=layer_name,
        Content={"ZipFile": make_zip({"../escape.py": "x"})},
    )
    assert response["Error"]["Code"] == "InvalidParameterValueException"
    assert response["Error"]["Message"].startswith("Could not unzip uploaded file.")
    assert lambda_client.list_layer_versions(LayerName=layer_name)["LayerVersions"] == []


# ---------------------------------------------------------------------------------------------
# Execution: what layers bring into /opt.


def test_python_imports_a_package_from_a_layer(lambda_client, layer_name, function_name):
    layer = lambda_client.publish_layer_version(LayerName=layer_name, Content={"ZipFile": LAYER_ZIP})
    create_function(
        lambda_client,
        function_name,
        Handler="app.handler",
        Code={"ZipFile": PYTHON_USES_LAYER},
        Layers=[layer["LayerVersionArn"]],
    )
    result = invoke(lambda_client, function_name)
    assert result["value"] == "from the layer"
    assert result["file"] == "/opt/python/mylib.py"


def test_python_site_packages_of_a_layer(lambda_client, layer_name, function_name):
    """pip installs into python/lib/pythonX.Y/site-packages: Lambda puts that on sys.path."""
    probe = make_zip(
        {
            "app.py": (
                "import sys\n\n"
                "def handler(event, context):\n"
                "    version = 'python%d.%d' % sys.version_info[:2]\n"
                "    return {'version': version, 'path': sys.path}\n"
            )
        }
    )
    create_function(lambda_client, function_name, Handler="app.handler", Code={"ZipFile": probe})
    version = invoke(lambda_client, function_name)["version"]
    site = make_zip({f"python/lib/{version}/site-packages/sitemod.py": "VALUE = 'site'\n"})
    layer = lambda_client.publish_layer_version(LayerName=layer_name, Content={"ZipFile": site})
    uses = make_zip(
        {"app.py": "import sitemod, sys\n\ndef handler(event, context):\n    return {'value': sitemod.VALUE, 'path': sys.path}\n"}
    )
    lambda_client.update_function_code(FunctionName=function_name, ZipFile=uses)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=FAST)
    lambda_client.update_function_configuration(FunctionName=function_name, Layers=[layer["LayerVersionArn"]])
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=FAST)
    result = invoke(lambda_client, function_name)
    assert result["value"] == "site"
    path = result["path"]
    # Lambda's order: the function's code, then the layers, then the runtime.
    assert path.index("/var/task") < path.index(f"/opt/python/lib/{version}/site-packages")
    assert path.index(f"/opt/python/lib/{version}/site-packages") < path.index("/opt/python")


def test_node_requires_a_module_from_a_layer(lambda_client, layer_name, function_name):
    module = make_zip({"nodejs/node_modules/mymod/index.js": "exports.value = 'node layer';\n"})
    layer = lambda_client.publish_layer_version(LayerName=layer_name, Content={"ZipFile": module})
    create_function(
        lambda_client,
        function_name,
        Runtime="nodejs20.x",
        Handler="index.handler",
        Code={"ZipFile": NODE_USES_LAYER},
        Layers=[layer["LayerVersionArn"]],
    )
    result = invoke(lambda_client, function_name)
    assert result == {"value": "node layer", "path": "/opt/nodejs/node_modules/mymod/index.js"}


def test_later_layers_override_earlier_ones(lambda_client, layer_name, function_name):
    first = lambda_client.publish_layer_version(
        LayerName=f"{layer_name}-a",
        Content={"ZipFile": make_zip({"python/mylib.py": "VALUE = 'first'\n", "shared.txt": "first\n"})},
    )
    second = lambda_client.publish_layer_version(
        LayerName=f"{layer_name}-b",
        Content={"ZipFile": make_zip({"shared.txt": "second\n", "python/other.py": ""})},
    )
    create_function(
        lambda_client,
        function_name,
        Handler="app.handler",
        Code={"ZipFile": PYTHON_USES_LAYER},
        Layers=[first["LayerVersionArn"], second["LayerVersionArn"]],
    )
    result = invoke(lambda_client, function_name)
    assert result["shared"] == "second", "the later layer wins"
    assert result["value"] == "first", "files only the earlier layer has stay"
    # Reversed order, reversed winner.
    lambda_client.update_function_configuration(
        FunctionName=function_name, Layers=[second["LayerVersionArn"], first["LayerVersionArn"]]
    )
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=FAST)
    assert invoke(lambda_client, function_name)["shared"] == "first"
    # No layers: an empty /opt again.
    updated = lambda_client.update_function_configuration(FunctionName=function_name, Layers=[])
    assert "Layers" not in updated
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=FAST)
    response = lambda_client.invoke(FunctionName=function_name, Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Runtime.ImportModuleError"


def test_custom_runtime_bootstrap_from_a_layer(lambda_client, layer_name, function_name):
    runtime_layer = lambda_client.publish_layer_version(
        LayerName=f"{layer_name}-runtime",
        Content={"ZipFile": make_zip({"bootstrap": SHELL_BOOTSTRAP}, modes={"bootstrap": 0o755})},
        CompatibleRuntimes=["provided.al2023"],
    )
    tools_layer = lambda_client.publish_layer_version(
        LayerName=f"{layer_name}-tools",
        Content={
            "ZipFile": make_zip(
                {"bin/layer-tool": "#!/bin/sh\necho tool-ran\n"}, modes={"bin/layer-tool": 0o755}
            )
        },
    )
    create_function(
        lambda_client,
        function_name,
        Runtime="provided.al2023",
        Handler="anything",
        Code={"ZipFile": make_zip({"README": "code without a bootstrap\n"})},
        Layers=[runtime_layer["LayerVersionArn"], tools_layer["LayerVersionArn"]],
    )
    result = invoke(lambda_client, function_name)
    assert result["bootstrap"] == "/opt/bootstrap"
    assert result["tool"] == "tool-ran", "/opt/bin is on PATH"
    assert result["path"].endswith(":/opt/bin")
    assert result["ld"].endswith(":/opt/lib")


def test_deleted_layer_version_keeps_working_for_its_functions(kiln, lambda_client, layer_name, function_name):
    layer = lambda_client.publish_layer_version(LayerName=layer_name, Content={"ZipFile": LAYER_ZIP})
    create_function(
        lambda_client,
        function_name,
        Handler="app.handler",
        Code={"ZipFile": PYTHON_USES_LAYER},
        Layers=[layer["LayerVersionArn"]],
    )
    lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=1)
    assert invoke(lambda_client, function_name)["value"] == "from the layer"
    # A cold start after the deletion too: a change to the configuration retires the warm one.
    lambda_client.update_function_configuration(FunctionName=function_name, MemorySize=256)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=FAST)
    assert invoke(lambda_client, function_name)["value"] == "from the layer"
    # The package is still served by the function's layer entry, and attaching the deleted
    # version anew is refused, as on AWS.
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    assert config["Layers"] == [{"Arn": layer["LayerVersionArn"], "CodeSize": len(LAYER_ZIP)}]
    refused = error_of(
        lambda_client.update_function_configuration,
        FunctionName=function_name,
        Layers=[layer["LayerVersionArn"]],
    )
    assert refused["Error"]["Message"] == f"Layer version {layer['LayerVersionArn']} does not exist."


def test_code_and_layers_share_the_unzipped_limit(tmp_path):
    """The 250 MB limit counts code plus layers; checked with a small limit-sized server via
    real sizes would need 250 MB, so this uses AWS's numbers on a layer just under the limit
    and code that tips it over."""
    big = make_zip({"python/big.bin": b"\0" * 200_000_000})
    code = make_zip({"handler.py": "def handler(e, c):\n    return 1\n", "data.bin": b"\0" * 62_144_001})
    server = KilnServer(tmp_path / "data").start()
    try:
        client = make_lambda_client(server.url)
        layer = client.publish_layer_version(LayerName="big", Content={"ZipFile": big})
        response = error_of(
            client.create_function,
            FunctionName="too-big",
            Role=ROLE,
            Runtime="python3.12",
            Handler="handler.handler",
            Code={"ZipFile": code},
            Layers=[layer["LayerVersionArn"]],
        )
        assert response["Error"]["Code"] == "InvalidParameterValueException"
        total = 200_000_000 + 62_144_001 + len("def handler(e, c):\n    return 1\n")
        assert response["Error"]["Message"] == (
            "Function code combined with layers exceeds the maximum allowed size of 262144000 "
            f"bytes. The actual size is {total} bytes."
        )
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# Persistence.


def test_layers_survive_restart_and_kill9(tmp_path):
    server = KilnServer(tmp_path / "data").start()
    try:
        client = make_lambda_client(server.url)
        first = client.publish_layer_version(LayerName="kept", Content={"ZipFile": LAYER_ZIP})
        client.publish_layer_version(LayerName="kept", Content={"ZipFile": LAYER_ZIP})
        create_function(
            client,
            "uses-kept",
            Handler="app.handler",
            Code={"ZipFile": PYTHON_USES_LAYER},
            Layers=[first["LayerVersionArn"]],
        )
        client.add_layer_version_permission(
            LayerName="kept", VersionNumber=1, StatementId="s1",
            Action="lambda:GetLayerVersion", Principal="*",
        )
        client.delete_layer_version(LayerName="kept", VersionNumber=2)
        server.kill9()
        server.restart()
        client = make_lambda_client(server.url)
        got = client.get_layer_version(LayerName="kept", VersionNumber=1)
        assert got["CreatedDate"] == first["CreatedDate"]
        assert got["Content"]["CodeSha256"] == first["Content"]["CodeSha256"]
        policy = json.loads(client.get_layer_version_policy(LayerName="kept", VersionNumber=1)["Policy"])
        assert [s["Sid"] for s in policy["Statement"]] == ["s1"]
        assert invoke(client, "uses-kept")["value"] == "from the layer"
        third = client.publish_layer_version(LayerName="kept", Content={"ZipFile": LAYER_ZIP})
        assert third["Version"] == 3, "numbering survives a restart"
        # Delete the layer version, then restart: the start-up sweep must keep the package the
        # function still uses.
        client.delete_layer_version(LayerName="kept", VersionNumber=1)
        server.stop()
        server.restart()
        client = make_lambda_client(server.url)
        assert invoke(client, "uses-kept")["value"] == "from the layer"
        # Once nothing uses the package, it is collected.
        client.delete_function(FunctionName="uses-kept")
        client.delete_layer_version(LayerName="kept", VersionNumber=3)
        digest = base64.b64decode(first["Content"]["CodeSha256"]).hex()
        server.stop()
        server.restart()
        assert not (server.data_dir / "blobs" / "sha256" / f"{digest}.zip").exists()
        assert not any((server.data_dir / "layers-merged").iterdir()), "merged trees collected"
    finally:
        server.stop()


def test_layer_versions_count_in_total_code_size(lambda_client, layer_name):
    """AWS counts layer versions in `TotalCodeSize` (TestLambdaAccountSettings'
    total_code_size_diff_publish_layer)."""
    content = make_zip({"python/sized.py": "X = 1\n" * 100})
    before = lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"]
    lambda_client.publish_layer_version(LayerName=layer_name, Content={"ZipFile": content})
    after = lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"]
    assert after - before == len(content)
    lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=1)
    assert lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"] == before


def test_published_versions_keep_their_layers(lambda_client, layer_name, function_name):
    """A version is a snapshot of its layers too: changing `$LATEST`'s layers (even deleting
    the layer version) leaves an older version importing what its layers brought."""
    first = lambda_client.publish_layer_version(
        LayerName=layer_name,
        Content={"ZipFile": make_zip({"python/mylib.py": "VALUE = 'version one'\n"})},
    )
    create_function(
        lambda_client,
        function_name,
        Handler="app.handler",
        Code={"ZipFile": PYTHON_USES_LAYER},
        Layers=[first["LayerVersionArn"]],
        Publish=True,
    )
    lambda_client.get_waiter("function_active_v2").wait(
        FunctionName=function_name, Qualifier="1", WaiterConfig=FAST
    )
    second = lambda_client.publish_layer_version(
        LayerName=layer_name,
        Content={"ZipFile": make_zip({"python/mylib.py": "VALUE = 'version two'\n"})},
    )
    lambda_client.update_function_configuration(
        FunctionName=function_name, Layers=[second["LayerVersionArn"]]
    )
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=FAST)
    v2 = lambda_client.publish_version(FunctionName=function_name)
    assert v2["Version"] == "2"
    assert [layer["Arn"] for layer in v2["Layers"]] == [second["LayerVersionArn"]]
    lambda_client.delete_layer_version(LayerName=layer_name, VersionNumber=first["Version"])
    lambda_client.create_alias(
        FunctionName=function_name, Name="canary", FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    seen = set()
    for _ in range(40):
        response = lambda_client.invoke(FunctionName=function_name, Qualifier="canary", Payload=b"{}")
        value = json.loads(response["Payload"].read())["value"]
        seen.add((response["ExecutedVersion"], value))
    assert seen == {("1", "version one"), ("2", "version two")}, seen
    configuration = lambda_client.get_function_configuration(FunctionName=function_name, Qualifier="1")
    assert [layer["Arn"] for layer in configuration["Layers"]] == [first["LayerVersionArn"]]
