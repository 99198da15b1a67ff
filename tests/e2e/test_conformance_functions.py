"""Replays Lambda function scenarios recorded from real AWS and compares Kiln field by field.

Every test replays one recorded scenario of LocalStack's AWS-validated test suite (the
recordings live in `../shared/conformance/aws-recordings`, see `recordings.py`). The requests
mirror the ones LocalStack's tests send (`tests/aws/services/lambda_/test_lambda_api.py` and
`test_lambda.py`, with the defaults of its `create_lambda_function` fixtures: Runtime
python3.12, Handler `handler.handler`, Timeout 30, `Environment={"Variables": {}}`, `Tags={}`,
then a wait until the function is no longer Pending). Where a scenario's source is newer than
the public reference copy, the request is reconstructed from the values AWS echoes back; the
test's docstring says so.

Besides comparing each response with `assert_matches`, every replay also checks:
  * the HTTP status code the recording holds, and
  * the identity of indexed placeholders across the scenario: two responses that AWS gave the
    same `<uuid:3>` must carry the same value in Kiln, and a new index (`<uuid:4>`) must be a
    new value. That is how the recordings encode, e.g., that the RevisionId changes when an
    update completes. (For `<code-sha256:N>` only the first half: whether two uploads differ
    is the test's choice.)

Parts of scenarios that need what Kiln does not have yet (asynchronous invoke, event source
mappings, S3 code, EC2, and for versions and aliases: permissions, event invoke configs,
function URLs, layers) are left out; the docstrings name them. TestLambdaConcurrency's
test_lambda_provisioned_concurrency_moves_with_alias is not replayed: it was recorded in 2023 on
python3.8, which AWS (and Kiln) no longer accept for new functions;
tests/e2e/test_concurrency.py checks that an alias's provisioned concurrency moves with it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import time
import urllib.request
import uuid
import zipfile

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from conftest import make_lambda_client
from kiln_harness import ACCOUNT_ID, REGION, ROLE, KilnServer, make_zip, unique
from recordings import assert_matches, error_response, recorded

API = "test_lambda_api.snapshot.json"
BEHAVIOUR = "test_lambda.snapshot.json"

ECHO_SOURCE = (
    "import json\n\n\n"
    "def handler(event, context):\n"
    "    print(json.dumps(event))\n"
    "    return event\n"
)
VERSION_SOURCE = (
    "import os\n\n\n"
    "def handler(event, context):\n"
    "    return {'version': os.environ.get('AWS_LAMBDA_FUNCTION_VERSION')}\n"
)
NODE_SOURCE = (
    "exports.handler = async function (event, context) {\n"
    "    console.log('event', JSON.stringify(event));\n"
    "    console.log('context', JSON.stringify(context));\n"
    "    return { statusCode: 200, body: JSON.stringify(event) };\n"
    "};\n"
)
ECHO_ZIP = make_zip({"handler.py": ECHO_SOURCE})
VERSION_ZIP = make_zip({"handler.py": VERSION_SOURCE})
NODE_ZIP = make_zip({"handler.js": NODE_SOURCE})

# AWS quotas the size-limit scenarios probe.
CODE_SIZE_ZIPPED = 52_428_800
CODE_SIZE_UNZIPPED = 262_144_000
CREATE_FUNCTION_REQUEST_SIZE = 70_167_211

FUNCTION_ARN_PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"


# ------------------------------------------------------------------------------------------
# Replay helpers
# ------------------------------------------------------------------------------------------

_INDEXED_PLACEHOLDER = re.compile(r"<(uuid|code-sha256|function-name):(\d+)>")


class Replay:
    """One recorded scenario: compares Kiln's responses with it, key by key."""

    def __init__(self, test: str, file: str = API):
        module = "test_lambda_api.py" if file == API else "test_lambda.py"
        self.test_id = f"{module}::{test}"
        self.file = file
        self.bound: dict[str, tuple[str, str]] = {}  # placeholder -> (value, where)

    def expected(self, key: str):
        expected = recorded(self.file, self.test_id, key)
        if self.file == BEHAVIOUR:
            # test_lambda.py's snapshots replace CodeSha256 with the bare word `code-sha256`
            # (a transformer without reference replacement), not with a `<...>` placeholder.
            expected = _bare_code_sha256_to_placeholder(expected)
        return expected

    def match(self, key: str, actual, ignore: tuple[str, ...] = ()) -> None:
        expected = self.expected(key)
        assert_matches(actual, expected, ignore)
        _assert_status(actual, expected, key)
        self._bind(actual, expected, key, "$")

    def match_error(self, key: str, call, /, *args, **kwargs) -> dict:
        response = error_of(call, *args, **kwargs)
        self.match(key, response)
        return response

    def _bind(self, actual, expected, key: str, path: str) -> None:
        if isinstance(expected, dict) and isinstance(actual, dict):
            for name, value in expected.items():
                if name in actual and name != "ResponseMetadata":
                    self._bind(actual[name], value, key, f"{path}.{name}")
        elif isinstance(expected, list) and isinstance(actual, list):
            for index, (a, e) in enumerate(zip(actual, expected)):
                self._bind(a, e, key, f"{path}[{index}]")
        elif isinstance(expected, str) and _INDEXED_PLACEHOLDER.fullmatch(expected):
            kind = _INDEXED_PLACEHOLDER.fullmatch(expected)[1]
            where = f"{key} {path}"
            if expected in self.bound:
                value, first = self.bound[expected]
                assert actual == value, (
                    f"{where}: AWS repeats {expected} from {first} here, "
                    f"but Kiln changed it from {value!r} to {actual!r}"
                )
                return
            if kind == "code-sha256":
                # Which zips differ is up to the test, not the server: LocalStack's archives
                # carry fresh timestamps, so AWS saw new hashes even for the same code.
                self.bound[expected] = (actual, where)
                return
            for other, (value, first) in self.bound.items():
                if other.startswith(f"<{kind}:") and value == actual:
                    raise AssertionError(
                        f"{where}: AWS gives a new value here ({expected}), "
                        f"but Kiln repeats {actual!r}, its {other} from {first}"
                    )
            self.bound[expected] = (actual, where)


def _bare_code_sha256_to_placeholder(value):
    if isinstance(value, dict):
        return {
            k: "<code-sha256>" if k == "CodeSha256" and v == "code-sha256" else
            _bare_code_sha256_to_placeholder(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_bare_code_sha256_to_placeholder(v) for v in value]
    return value


def _recorded_status(value):
    if isinstance(value, dict):
        return value.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


def _assert_status(actual, expected, key: str) -> None:
    """The recordings keep the HTTP status; `assert_matches` strips ResponseMetadata."""
    pairs = [(actual, expected)]
    if isinstance(expected, dict) and isinstance(expected.get("CreateFunctionResponse"), dict):
        pairs.append((actual.get("CreateFunctionResponse"), expected["CreateFunctionResponse"]))
    for a, e in pairs:
        want = _recorded_status(e)
        if want is not None:
            got = _recorded_status(a)
            assert got == want, f"{key}: AWS answered HTTP {want}, Kiln HTTP {got}"


def error_of(call, /, *args, **kwargs) -> dict:
    """The parsed error response of a call that AWS refused."""
    try:
        response = call(*args, **kwargs)
    except ClientError as error:
        return error_response(error)
    if getattr(call, "__name__", "") == "create_function":
        # Don't leave an unexpected function behind for the other scenarios.
        try:
            call.__self__.delete_function(FunctionName=response["FunctionArn"])
        except ClientError:
            pass
    pytest.fail(f"AWS refused this request, Kiln accepted it: {call.__name__}{_brief(kwargs)}")


def _brief(value) -> str:
    """A request's repr with its zips shortened to their size."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_brief(item)}" for key, item in value.items()) + "}"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return repr(value)


def validation_summary(response: dict) -> dict:
    """The shape test_function_name_and_qualifier_validation records errors in."""
    code = response["Error"]["Code"]
    message = response["Error"]["Message"]
    found = re.fullmatch(r"(\d+) validation errors? detected: (.*)", message, re.DOTALL)
    if found:
        return {"Code": code, "Count": int(found[1]), "Errors": found[2].split("; ")}
    return {"Code": code, "Message": message}


def wait_until(condition, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def wait_active(client, name: str) -> None:
    """What LocalStack's fixtures wait for after a create: the function leaves Pending."""
    wait_until(
        lambda: client.get_function_configuration(FunctionName=name)["State"] != "Pending",
        f"{name} is no longer Pending",
    )


def wait_updated(client, name: str) -> None:
    """The `function_updated_v2` waiter, polled quickly."""
    wait_until(
        lambda: client.get_function_configuration(FunctionName=name).get("LastUpdateStatus")
        != "InProgress",
        f"the update of {name} finished",
    )


class Functions:
    """Creates functions the way LocalStack's fixtures do and deletes them afterwards."""

    def __init__(self, client):
        self.client = client
        self.names: list[str] = []

    def create(
        self,
        name: str,
        *,
        zip_file: bytes = ECHO_ZIP,
        runtime: str = "python3.12",
        handler: str = "handler.handler",
        timeout: int = 30,
        envvars: dict | None = None,
        tags: dict | None = None,
        **extra,
    ) -> dict:
        """Like LocalStack's `create_lambda_function` fixture (testutil.create_lambda_function)."""
        response = self.client.create_function(
            FunctionName=name,
            Runtime=runtime,
            Handler=handler,
            Role=ROLE,
            Code={"ZipFile": zip_file},
            Timeout=timeout,
            Environment={"Variables": envvars if envvars is not None else {}},
            Tags=tags if tags is not None else {},
            **extra,
        )
        self.names.append(response["FunctionArn"])
        wait_active(self.client, response["FunctionArn"])
        return {"CreateFunctionResponse": response, "CreateEventSourceMappingResponse": None}

    def create_plain(self, **kwargs) -> dict:
        """Like LocalStack's `create_lambda_function_aws` fixture: the request as given."""
        response = self.client.create_function(**kwargs)
        self.names.append(response["FunctionArn"])
        wait_active(self.client, response["FunctionArn"])
        return response

    def delete_all(self) -> None:
        for name in self.names:
            try:
                self.client.delete_function(FunctionName=name)
            except ClientError:
                pass


@pytest.fixture
def functions(lambda_client):
    made = Functions(lambda_client)
    yield made
    made.delete_all()


@pytest.fixture(scope="module")
def aws_timed_kiln(tmp_path_factory):
    """A Kiln whose creates and updates stay Pending/InProgress for a second, as AWS's take
    seconds: scenarios that observe an update in progress need it (Kiln's default finishes
    them in milliseconds, before a client's next request)."""
    server = KilnServer(
        tmp_path_factory.mktemp("aws-timed") / "data", "--deployment-delay", "1s"
    ).start()
    yield server
    server.stop()


@pytest.fixture
def timed_client(aws_timed_kiln):
    return make_lambda_client(aws_timed_kiln.url)


@pytest.fixture
def timed_functions(timed_client):
    made = Functions(timed_client)
    yield made
    made.delete_all()


def padded_code_zip(size: int, compression: int) -> bytes:
    """A zip holding one `handler.py` of exactly `size` bytes: a handler, then `#` padding.

    Like LocalStack's `_generate_sized_python_str`; deflated it stays tiny however large the
    file, stored it is as large as the file.
    """
    head = ECHO_SOURCE.encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        info = zipfile.ZipInfo("handler.py", date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = compression
        info.external_attr = 0o100644 << 16
        info.file_size = size
        with archive.open(info, "w") as out:
            out.write(head)
            left = size - len(head)
            chunk = b"#" * (1 << 20)
            while left > 0:
                out.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def big_zips():
    """Built once per module and on first use: the size-limit scenarios' archives."""
    cache: dict[str, bytes] = {}

    def get(kind: str) -> bytes:
        if kind not in cache:
            cache[kind] = {
                "zipped_at_limit": lambda: padded_code_zip(CODE_SIZE_ZIPPED, zipfile.ZIP_STORED),
                "zipped_below_limit": lambda: padded_code_zip(
                    CODE_SIZE_ZIPPED - 1024, zipfile.ZIP_STORED
                ),
                "unzipped_at_limit": lambda: padded_code_zip(
                    CODE_SIZE_UNZIPPED, zipfile.ZIP_DEFLATED
                ),
                "unzipped_below_limit": lambda: padded_code_zip(
                    CODE_SIZE_UNZIPPED - 1000, zipfile.ZIP_DEFLATED
                ),
            }[kind]()
        return cache[kind]

    return get


# ------------------------------------------------------------------------------------------
# TestLambdaFunction
# ------------------------------------------------------------------------------------------


def test_function_lifecycle(lambda_client, functions, function_name):
    """Replays TestLambdaFunction::test_function_lifecycle (every key)."""
    replay = Replay("TestLambdaFunction::test_function_lifecycle")
    replay.match(
        "create_response",
        functions.create(function_name, MemorySize=256, timeout=5),
    )
    replay.match("get_function_response", lambda_client.get_function(FunctionName=function_name))

    replay.match(
        "update_func_conf_response",
        lambda_client.update_function_configuration(
            FunctionName=function_name,
            Runtime="python3.11",
            Description="Changed-Description",
            MemorySize=512,
            Timeout=10,
            Environment={"Variables": {"ENV_A": "a"}},
        ),
    )
    wait_updated(lambda_client, function_name)
    replay.match(
        "get_function_response_postupdate", lambda_client.get_function(FunctionName=function_name)
    )

    replay.match(
        "update_code_response",
        lambda_client.update_function_code(FunctionName=function_name, ZipFile=VERSION_ZIP),
    )
    wait_updated(lambda_client, function_name)
    replay.match(
        "get_function_response_postcodeupdate",
        lambda_client.get_function(FunctionName=function_name),
    )

    replay.match("delete_response", lambda_client.delete_function(FunctionName=function_name))
    replay.match_error(
        "delete_postdelete", lambda_client.delete_function, FunctionName=function_name
    )


def test_redundant_updates(lambda_client, functions, function_name):
    """Replays TestLambdaFunction::test_redundant_updates."""
    replay = Replay("TestLambdaFunction::test_redundant_updates")
    replay.match(
        "create_response", functions.create(function_name, Description="Initial description")
    )
    replay.match(
        "first_update_result",
        lambda_client.update_function_configuration(
            FunctionName=function_name, Description="1st update description"
        ),
    )
    wait_updated(lambda_client, function_name)
    replay.match(
        "get_fn_config_result",
        lambda_client.get_function_configuration(FunctionName=function_name),
    )
    replay.match("get_fn_result", lambda_client.get_function(FunctionName=function_name))
    replay.match(
        "redundant_update_result",
        lambda_client.update_function_configuration(
            FunctionName=function_name, Description="1st update description"
        ),
    )
    wait_updated(lambda_client, function_name)
    replay.match(
        "get_fn_result_after_redundant_update",
        lambda_client.get_function(FunctionName=function_name),
    )


@pytest.mark.parametrize(
    "operation", ["delete_function", "get_function", "get_function_configuration"]
)
def test_ops_with_arn_qualifier_mismatch(lambda_client, operation):
    """Replays TestLambdaFunction::test_ops_with_arn_qualifier_mismatch[<operation>]."""
    replay = Replay(f"TestLambdaFunction::test_ops_with_arn_qualifier_mismatch[{operation}]")
    call = getattr(lambda_client, operation)
    replay.match_error(
        "not_match_exception",
        call,
        FunctionName=f"{FUNCTION_ARN_PREFIX}some-function:1",
        Qualifier="$LATEST",
    )
    replay.match_error(
        "match_exception",
        call,
        FunctionName=f"{FUNCTION_ARN_PREFIX}some-function:$LATEST",
        Qualifier="$LATEST",
    )


@pytest.mark.parametrize("operation", ["get_function", "get_function_configuration"])
def test_ops_on_nonexisting_version(lambda_client, functions, operation):
    """Replays TestLambdaFunction::test_ops_on_nonexisting_version[<operation>].

    Not replayed: [get_function_event_invoke_config] (not a function-lifecycle operation).
    """
    replay = Replay(f"TestLambdaFunction::test_ops_on_nonexisting_version[{operation}]")
    name = unique("i-exist")
    functions.create(name, Description="Initial description")
    replay.match_error(
        "version_not_found_exception",
        getattr(lambda_client, operation),
        FunctionName=name,
        Qualifier="1221",
    )


def test_delete_on_nonexisting_version(lambda_client, functions):
    """Replays TestLambdaFunction::test_delete_on_nonexisting_version."""
    replay = Replay("TestLambdaFunction::test_delete_on_nonexisting_version")
    name = unique("i-exist")
    functions.create(name, Description="Initial description")
    # AWS: deleting a version that does not exist succeeds, and does so repeatedly.
    lambda_client.delete_function(FunctionName=name, Qualifier="1233")
    lambda_client.delete_function(FunctionName=name, Qualifier="1233")
    lambda_client.delete_function(FunctionName=name)
    replay.match_error(
        "delete_function_response_non_existent", lambda_client.delete_function, FunctionName=name
    )
    replay.match_error(
        "delete_function_response_non_existent_with_qualifier",
        lambda_client.delete_function,
        FunctionName=name,
        Qualifier="1233",
    )


@pytest.mark.parametrize(
    "operation",
    ["delete_function", "get_function", "get_function_configuration", "get_function_concurrency"],
)
def test_ops_on_nonexisting_fn(lambda_client, operation):
    """Replays TestLambdaFunction::test_ops_on_nonexisting_fn[<operation>]."""
    replay = Replay(f"TestLambdaFunction::test_ops_on_nonexisting_fn[{operation}]")
    replay.match_error(
        "not_found_exception",
        getattr(lambda_client, operation),
        FunctionName=unique("i-dont-exist"),
    )


@pytest.mark.parametrize(
    "operation",
    ["get_function", "get_function_configuration", "delete_function", "get_function_concurrency"],
)
def test_get_function_wrong_region(lambda_client, functions, operation):
    """Replays TestLambdaFunction::test_get_function_wrong_region[<operation>].

    Not replayed: [invoke] (needs invocation) and the url/code-signing/event-invoke variants
    (not function-lifecycle operations).
    """
    replay = Replay(f"TestLambdaFunction::test_get_function_wrong_region[{operation}]")
    name = unique("i-exist")
    functions.create(name, Description="Initial description")
    wrong_region = "eu-central-1"  # the client's region is us-east-1
    replay.match_error(
        "wrong_region_exception",
        getattr(lambda_client, operation),
        FunctionName=f"arn:aws:lambda:{wrong_region}:{ACCOUNT_ID}:function:{name}",
    )


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_lambda_code_location_zipfile(timed_client, timed_functions, function_name):
    """Replays TestLambdaFunction::test_lambda_code_location_zipfile, with its own asserts:
    Code.Location serves the uploaded zip; CodeSha256/CodeSize describe it.

    `get-function-response-updated` is a GetFunction sent right after UpdateFunctionCode:
    AWS still reports that update InProgress (same RevisionId as the update's response).
    """
    replay = Replay("TestLambdaFunction::test_lambda_code_location_zipfile")
    replay.match(
        "create-response-zip-file",
        timed_functions.create_plain(
            FunctionName=function_name,
            Handler="index.handler",
            Code={"ZipFile": ECHO_ZIP},
            PackageType="Zip",
            Role=ROLE,
            Runtime="python3.12",
        ),
    )
    got = timed_client.get_function(FunctionName=function_name)
    replay.match("get-function-response", got)
    assert _download(got["Code"]["Location"]) == ECHO_ZIP
    assert got["Configuration"]["CodeSha256"] == _sha256_b64(ECHO_ZIP)
    assert got["Configuration"]["CodeSize"] == len(ECHO_ZIP)

    replay.match(
        "update-function-response",
        timed_client.update_function_code(FunctionName=function_name, ZipFile=VERSION_ZIP),
    )
    updated = timed_client.get_function(FunctionName=function_name)
    replay.match("get-function-response-updated", updated)
    assert _download(updated["Code"]["Location"]) == VERSION_ZIP
    assert updated["Configuration"]["CodeSha256"] == _sha256_b64(VERSION_ZIP)
    assert updated["Configuration"]["CodeSize"] == len(VERSION_ZIP)


def test_function_arns(lambda_client, functions):
    """Replays TestLambdaFunction::test_function_arns."""
    replay = Replay("TestLambdaFunction::test_function_arns")
    replay.match(
        "create-function-arn-response",
        functions.create(f"{FUNCTION_ARN_PREFIX}{unique('test-function-arn')}"),
    )
    replay.match(
        "create-function-partial-arn-response",
        functions.create(f"{ACCOUNT_ID}:function:{unique('test-partial-arn')}"),
    )

    def create(name):
        return dict(
            FunctionName=name,
            Handler="index.handler",
            Code={"ZipFile": ECHO_ZIP},
            PackageType="Zip",
            Role=ROLE,
            Runtime="python3.12",
        )

    replay.match_error(
        "invalid_function_name_exc",
        lambda_client.create_function,
        **create("invalid:function:name"),
    )
    replay.match_error("long_function_name_exc", lambda_client.create_function, **create("a" * 65))
    long_name = "a" * (140 - len(FUNCTION_ARN_PREFIX) + 1)
    replay.match_error(
        "long_function_arn_exc",
        lambda_client.create_function,
        **create(FUNCTION_ARN_PREFIX + long_name),
    )
    replay.match_error(
        "function_arn_other_region_exc",
        lambda_client.create_function,
        **create(f"arn:aws:lambda:ap-southeast-1:{ACCOUNT_ID}:function:{unique('test-fn-arn')}"),
    )
    replay.match_error(
        "function_arn_other_account_exc",
        lambda_client.create_function,
        **create(f"arn:aws:lambda:{REGION}:123456789012:function:{unique('test-fn-arn')}"),
    )


def test_create_lambda_exceptions(lambda_client):
    """Replays TestLambdaFunction::test_create_lambda_exceptions."""
    replay = Replay("TestLambdaFunction::test_create_lambda_exceptions")
    name = unique("invalid-function")

    def create(**overrides):
        request = dict(
            FunctionName=name,
            Handler="index.handler",
            Code={"ZipFile": ECHO_ZIP},
            PackageType="Zip",
            Role=ROLE,
            Runtime="python3.12",
        )
        request.update(overrides)
        return error_of(lambda_client.create_function, **request)

    replay.match("invalid_role_arn_exc", create(Role="r1"))
    replay.match("invalid_runtime_exc", create(Runtime="non-existent-runtime"))
    replay.match("uppercase_runtime_exc", create(Runtime="PYTHON3.9"))
    # botocore refuses an empty list before sending anything.
    with pytest.raises(ParamValidationError) as refused:
        lambda_client.create_function(
            FunctionName=name,
            Handler="index.handler",
            Code={"ZipFile": ECHO_ZIP},
            PackageType="Zip",
            Role=ROLE,
            Runtime="python3.12",
            Architectures=[],
        )
    assert str(refused.value) == replay.expected("empty_architectures")
    replay.match("multiple_architectures", create(Architectures=["x86_64", "arm64"]))
    replay.match("uppercase_architecture", create(Architectures=["X86_64"]))
    replay.match(
        "invalid_zip_exc",
        create(Code={"ZipFile": b"this is not a zipfile, just a random string"}),
    )


def test_update_lambda_exceptions(lambda_client, functions, function_name):
    """Replays TestLambdaFunction::test_update_lambda_exceptions."""
    replay = Replay("TestLambdaFunction::test_update_lambda_exceptions")
    functions.create_plain(
        FunctionName=function_name,
        Handler="index.handler",
        Code={"ZipFile": ECHO_ZIP},
        PackageType="Zip",
        Role=ROLE,
        Runtime="python3.12",
    )
    update = lambda_client.update_function_configuration
    replay.match_error("invalid_role_arn_exc", update, FunctionName=function_name, Role="r1")
    replay.match_error(
        "invalid_runtime_exc", update, FunctionName=function_name, Runtime="non-existent-runtime"
    )
    replay.match_error(
        "uppercase_runtime_exc", update, FunctionName=function_name, Runtime="PYTHON3.9"
    )


def test_list_functions(lambda_client, functions):
    """Replays TestLambdaFunction::test_list_functions (every key)."""
    replay = Replay("TestLambdaFunction::test_list_functions")
    run = uuid.uuid4().hex[:8]
    first, second = f"list-fn-1-{run}", f"list-fn-2-{run}"
    replay.match("create_response_1", functions.create(first, Publish=True))
    replay.match("create_response_2", functions.create(second))
    replay.match_error(
        "list_functions_invalid_functionversion",
        lambda_client.list_functions,
        FunctionVersion="invalid",
    )
    paginator = lambda_client.get_paginator("list_functions")
    list_all = paginator.paginate(
        FunctionVersion="ALL", PaginationConfig={"PageSize": 1}
    ).build_full_result()
    list_default = paginator.paginate(PaginationConfig={"PageSize": 1}).build_full_result()
    for listed in (list_all, list_default):
        # LocalStack keeps the scenario's functions only, sorted by FunctionArn.
        listed["Functions"] = sorted(
            (f for f in listed["Functions"] if f["FunctionName"] in (first, second)),
            key=lambda f: f["FunctionArn"],
        )
    replay.match("list_all", list_all)
    replay.match("list_default", list_default)


def test_function_revisions_basic(lambda_client, functions, function_name):
    """Replays TestLambdaRevisions::test_function_revisions_basic."""
    replay = Replay("TestLambdaRevisions::test_function_revisions_basic")
    created = functions.create(function_name, handler="index.handler")
    replay.match("create_function_response_rev1", created)
    rev2 = lambda_client.get_function(FunctionName=function_name)
    replay.match("get_function_response_rev2", rev2)

    replay.match_error(
        "update_function_revision_exception",
        lambda_client.update_function_code,
        FunctionName=function_name,
        ZipFile=ECHO_ZIP,
        RevisionId="wrong",
    )
    rev3 = lambda_client.update_function_code(
        FunctionName=function_name,
        ZipFile=ECHO_ZIP,
        RevisionId=rev2["Configuration"]["RevisionId"],
    )
    replay.match("update_function_code_response_rev3", rev3)
    wait_updated(lambda_client, function_name)
    rev4 = lambda_client.get_function(FunctionName=function_name)
    replay.match("get_function_response_rev4", rev4)

    replay.match_error(
        "update_function_configuration_revision_exception",
        lambda_client.update_function_configuration,
        FunctionName=function_name,
        Runtime="python3.8",
        RevisionId="wrong",
    )
    replay.match(
        "update_function_configuration_response_rev5",
        lambda_client.update_function_configuration(
            FunctionName=function_name,
            Runtime="python3.8",
            RevisionId=rev4["Configuration"]["RevisionId"],
        ),
    )
    wait_updated(lambda_client, function_name)
    replay.match(
        "get_function_response_rev6", lambda_client.get_function(FunctionName=function_name)
    )


def test_lambda_concurrent_code_updates(timed_client, timed_functions, function_name):
    """Replays TestLambdaFunction::test_lambda_concurrent_code_updates.

    Request reconstructed (the test postdates the reference copy): a second UpdateFunctionCode
    sent while the first update is still InProgress.
    """
    replay = Replay("TestLambdaFunction::test_lambda_concurrent_code_updates")
    replay.match(
        "create-function-response",
        timed_functions.create_plain(
            FunctionName=function_name,
            Runtime="python3.12",
            Handler="handler.handler",
            Role=ROLE,
            Code={"ZipFile": ECHO_ZIP},
        ),
    )
    timed_client.update_function_code(FunctionName=function_name, ZipFile=VERSION_ZIP)
    replay.match_error(
        "update-during-in-progress-update-exc",
        timed_client.update_function_code,
        FunctionName=function_name,
        ZipFile=ECHO_ZIP,
    )


def test_lambda_concurrent_config_updates(timed_client, timed_functions, function_name):
    """Replays TestLambdaFunction::test_lambda_concurrent_config_updates.

    Request reconstructed (the test postdates the reference copy): a second
    UpdateFunctionConfiguration sent while the first update is still InProgress.
    """
    replay = Replay("TestLambdaFunction::test_lambda_concurrent_config_updates")
    replay.match("create-function-response", timed_functions.create(function_name))
    timed_client.update_function_configuration(FunctionName=function_name, Description="one")
    replay.match_error(
        "update-during-in-progress-update-exc",
        timed_client.update_function_configuration,
        FunctionName=function_name,
        Description="two",
    )


@pytest.mark.parametrize("field", ["subnet", "security_group"])
def test_invalid_vpc_config(lambda_client, field):
    """Replays TestLambdaFunction::test_invalid_vpc_config_subnet and
    ::test_invalid_vpc_config_security_group, the malformed-ID keys only.

    Not replayed: `create-response-non-existent-*` (AWS asks EC2 whether the IDs exist).
    Request reconstructed: the recording hides the malformed ID behind a placeholder.
    """
    if field == "subnet":
        replay = Replay("TestLambdaFunction::test_invalid_vpc_config_subnet")
        key = "create-response-invalid-format-subnet-id"
        vpc = {"SubnetIds": ["invalid-subnet-id"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}
    else:
        replay = Replay("TestLambdaFunction::test_invalid_vpc_config_security_group")
        key = "create-response-invalid-format-security-group"
        vpc = {"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["invalid-sg-id"]}
    replay.match_error(
        key,
        lambda_client.create_function,
        FunctionName=unique("vpc-fn"),
        Runtime="python3.12",
        Handler="handler.handler",
        Role=ROLE,
        Code={"ZipFile": ECHO_ZIP},
        VpcConfig=vpc,
    )


# test_function_name_and_qualifier_validation: the recording keeps only a summary of each
# error ({Code, Count, Errors} for validation errors, else {Code, Message}). Its requests are
# reconstructed from the values AWS echoes; create_function has no Qualifier, so it gets
# `name:qualifier` as its FunctionName.
_NAME_CASES: dict[str, tuple[str, str | None]] = {
    "function_name_is_single_invalid": ("*", None),
    "invalid_characters_in_function_name": ("my-function!", None),
    "invalid_characters_in_qualifier": ("my-function", "invalid!"),
    "qualifier_too_long": ("my-function", "a" * 129),
    "qualifier_too_long0": ("my-function", "a" * 129),
    "qualifier_too_long1": ("my-function", "a" * 65),
    "function_name_and_qualifier_too_long": ("my-function:" + "a" * 65, None),
    "invalid_account_id_in_partial_arn": ("invalid-account:function:my-function", None),
    "invalid_region_in_arn": (
        f"arn:aws:lambda:invalid-region:{ACCOUNT_ID}:function:my-function",
        None,
    ),
    "non_lambda_arn": (f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:instance:i-1234567890abcdef0", None),
    "function_name_too_long": ("a" * 65, None),
    "function_name_too_long_and_invalid_region": (
        f"arn:aws:lambda:invalid-region:{ACCOUNT_ID}:function:my-function" + "a" * 170,
        None,
    ),
    "full_arn_and_qualifier_too_long_and_invalid_region": (
        f"arn:aws:lambda:invalid-region:{ACCOUNT_ID}:function:my-function-" + "a" * 170,
        "a" * 129,
    ),
    "full_arn_with_multiple_qualifiers": (f"{FUNCTION_ARN_PREFIX}my-function:1:2", None),
    "incomplete_arn": (f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function", None),
    "partial_arn_with_extra_qualifier": ("function:my-function:$LATEST:extra", None),
    "latest_version_with_additional_qualifier": (f"{FUNCTION_ARN_PREFIX}my-function:$LATEST", "1"),
    "lowercase_latest_qualifier": (f"{FUNCTION_ARN_PREFIX}my-function", "$latest"),
    "missing_region_in_arn": (f"arn:aws:lambda::{ACCOUNT_ID}:function:my-function", None),
    "missing_account_id_in_arn": (f"arn:aws:lambda:{REGION}::function:my-function", None),
    "misspelled_latest_in_arn": (f"{FUNCTION_ARN_PREFIX}my-function:$LATES", None),
}


def _name_validation_params():
    params = []
    for case in _NAME_CASES:
        for operation in ("get_function", "delete_function", "create_function"):
            test = (
                "test_lambda_api.py::TestLambdaFunction::"
                f"test_function_name_and_qualifier_validation[{case}-{operation}]"
            )
            try:
                recorded(API, test, f"{operation}_exception")
            except KeyError:
                continue  # AWS recorded nothing for this combination
            params.append(pytest.param(case, operation, id=f"{case}-{operation}"))
    return params


@pytest.mark.parametrize("case,operation", _name_validation_params())
def test_function_name_and_qualifier_validation(lambda_client, case, operation):
    """Replays TestLambdaFunction::test_function_name_and_qualifier_validation[<case>-<op>].

    Not replayed: the `-invoke` variants (need invocation). Requests reconstructed from the
    echoed values (the test postdates the reference copy).
    """
    replay = Replay(
        f"TestLambdaFunction::test_function_name_and_qualifier_validation[{case}-{operation}]"
    )
    name, qualifier = _NAME_CASES[case]
    if operation == "create_function":
        response = error_of(
            lambda_client.create_function,
            FunctionName=name if qualifier is None else f"{name}:{qualifier}",
            Runtime="python3.12",
            Handler="handler.handler",
            Role=ROLE,
            Code={"ZipFile": ECHO_ZIP},
        )
    else:
        kwargs = {"FunctionName": name}
        if qualifier is not None:
            kwargs["Qualifier"] = qualifier
        response = error_of(getattr(lambda_client, operation), **kwargs)
    replay.match(f"{operation}_exception", validation_summary(response))


# ------------------------------------------------------------------------------------------
# Versions and aliases
# ------------------------------------------------------------------------------------------


def _create_aws(functions, name: str, runtime: str = "python3.12", **extra) -> dict:
    """LocalStack's `create_lambda_function_aws` as TestLambdaVersions/TestLambdaAlias call it:
    the echo handler as `index.handler`, no Timeout (AWS's default 3 s)."""
    return functions.create_plain(
        FunctionName=name,
        Handler="index.handler",
        Code={"ZipFile": ECHO_ZIP},
        PackageType="Zip",
        Role=ROLE,
        Runtime=runtime,
        **extra,
    )


def _wait_version_active(client, name: str, version: str) -> None:
    """The `published_version_active` waiter, polled quickly."""
    wait_until(
        lambda: client.get_function_configuration(FunctionName=name, Qualifier=version)["State"]
        == "Active",
        f"version {version} of {name} is Active",
    )


# Fields AWS added to FunctionConfiguration after 2022: a recording made before lacks them.
_FIELDS_AFTER_2022 = ("LoggingConfig", "RuntimeVersionConfig", "SnapStart")


def _without_fields_after_2022(response: dict) -> dict:
    configuration = response["Configuration"]
    return {
        **response,
        "Configuration": {
            k: v for k, v in configuration.items() if k not in _FIELDS_AFTER_2022
        },
    }


def test_publish_version_on_create(lambda_client, functions, function_name):
    """Replays TestLambdaVersions::test_publish_version_on_create (every key)."""
    replay = Replay("TestLambdaVersions::test_publish_version_on_create")
    replay.match("create_response", _create_aws(functions, function_name, Publish=True))
    replay.match("get_function_result", lambda_client.get_function(FunctionName=function_name))
    replay.match(
        "get_function_version_result",
        lambda_client.get_function(FunctionName=function_name, Qualifier="1"),
    )
    replay.match(
        "get_function_latest_result",
        lambda_client.get_function(FunctionName=function_name, Qualifier="$LATEST"),
    )
    replay.match(
        "list_versions_result", lambda_client.list_versions_by_function(FunctionName=function_name)
    )
    # Nothing changed since version 1: no new version, whatever the Description.
    replay.match(
        "repeated_publish_response",
        lambda_client.publish_version(
            FunctionName=function_name, Description="Repeated version description :)"
        ),
    )
    replay.match(
        "list_versions_result_after_publish",
        lambda_client.list_versions_by_function(FunctionName=function_name),
    )


def test_version_lifecycle(lambda_client, functions, function_name):
    """Replays TestLambdaVersions::test_version_lifecycle (every key).

    The last two keys postdate the reference copy: reconstructed as a listing after the third
    publish, then DeleteFunction(Qualifier="1") and a listing again.
    """
    replay = Replay("TestLambdaVersions::test_version_lifecycle")
    replay.match(
        "create_response", _create_aws(functions, function_name, Description="No version :(")
    )
    replay.match("get_function_result", lambda_client.get_function(FunctionName=function_name))
    replay.match(
        "list_versions_result", lambda_client.list_versions_by_function(FunctionName=function_name)
    )

    replay.match(
        "first_update_response",
        lambda_client.update_function_configuration(
            FunctionName=function_name, Description="First version :)"
        ),
    )
    wait_updated(lambda_client, function_name)
    replay.match(
        "first_update_get_function", lambda_client.get_function(FunctionName=function_name)
    )
    first = lambda_client.publish_version(
        FunctionName=function_name, Description="First version description :)"
    )
    replay.match("first_publish_response", first)
    replay.match(
        "first_publish_get_function",
        lambda_client.get_function(FunctionName=function_name, Qualifier=first["Version"]),
    )
    replay.match(
        "first_publish_get_function_config",
        lambda_client.get_function_configuration(
            FunctionName=function_name, Qualifier=first["Version"]
        ),
    )

    # Only $LATEST's Description changes: that is a change, the next publish makes version 2.
    replay.match(
        "second_update_response",
        lambda_client.update_function_configuration(
            FunctionName=function_name, Description="Second version :))"
        ),
    )
    wait_updated(lambda_client, function_name)
    replay.match(
        "first_publish_get_function_after_update",
        lambda_client.get_function(FunctionName=function_name, Qualifier=first["Version"]),
    )
    replay.match(
        "second_publish_response", lambda_client.publish_version(FunctionName=function_name)
    )
    # Unchanged since version 2: PublishVersion returns it (and ignores the Description).
    replay.match(
        "third_publish_response",
        lambda_client.publish_version(
            FunctionName=function_name, Description="Third version description :)))"
        ),
    )
    replay.match(
        "list_versions_result_after_third_publish",
        lambda_client.list_versions_by_function(FunctionName=function_name),
    )
    lambda_client.delete_function(FunctionName=function_name, Qualifier=first["Version"])
    replay.match(
        "list_versions_result_after_deletion_of_first_version",
        lambda_client.list_versions_by_function(FunctionName=function_name),
    )


def test_publish_with_wrong_revisionid(lambda_client, functions, function_name):
    """Replays TestLambdaVersions::test_publish_with_wrong_revisionid.

    Recorded in 2022 with python3.9, before AWS added LoggingConfig, RuntimeVersionConfig and
    SnapStart to every configuration: those fields are left out of the comparison. Requests
    reconstructed (the test left the reference copy): PublishVersion with RevisionId "wrong",
    then with the RevisionId GetFunction returned.
    """
    replay = Replay("TestLambdaVersions::test_publish_with_wrong_revisionid")
    replay.match(
        "create_response",
        _create_aws(functions, function_name, runtime="python3.9"),
        ignore=_FIELDS_AFTER_2022,
    )
    got = lambda_client.get_function(FunctionName=function_name)
    replay.match("get_fn_response", _without_fields_after_2022(got))
    replay.match_error(
        "publish_wrong_revisionid_exc",
        lambda_client.publish_version,
        FunctionName=function_name,
        RevisionId="wrong",
    )
    replay.match(
        "publish_result",
        lambda_client.publish_version(
            FunctionName=function_name, RevisionId=got["Configuration"]["RevisionId"]
        ),
        ignore=_FIELDS_AFTER_2022,
    )


def test_publish_with_wrong_sha256(lambda_client, functions, function_name):
    """Replays TestLambdaVersions::test_publish_with_wrong_sha256 (every key)."""
    replay = Replay("TestLambdaVersions::test_publish_with_wrong_sha256")
    replay.match("create_response", _create_aws(functions, function_name))
    got = lambda_client.get_function(FunctionName=function_name)
    replay.match("get_fn_response", got)
    replay.match_error(
        "publish_wrong_sha256_exc",
        lambda_client.publish_version,
        FunctionName=function_name,
        CodeSha256="somenonexistentsha256",
    )
    replay.match(
        "publish_result",
        lambda_client.publish_version(
            FunctionName=function_name, CodeSha256=got["Configuration"]["CodeSha256"]
        ),
    )


def test_publish_with_update(timed_client, timed_functions, function_name):
    """Replays TestLambdaVersions::test_publish_with_update (every key).

    AWS answered both GetFunction calls while the update (and the version it published) was
    still deploying: the Kiln here takes a second to deploy, as AWS takes seconds.
    """
    replay = Replay("TestLambdaVersions::test_publish_with_update")
    replay.match("create_response", _create_aws(timed_functions, function_name))
    replay.match("get_function_result", timed_client.get_function(FunctionName=function_name))
    replay.match(
        "update_function_code_result",
        timed_client.update_function_code(
            FunctionName=function_name, ZipFile=VERSION_ZIP, Publish=True
        ),
    )
    replay.match(
        "get_function_version_result",
        timed_client.get_function(FunctionName=function_name, Qualifier="1"),
    )
    replay.match(
        "get_function_latest_result",
        timed_client.get_function(FunctionName=function_name, Qualifier="$LATEST"),
    )


def _publish_two_versions(client, functions, name: str, replay: Replay, **create) -> None:
    """TestLambdaAlias's setup: version 1 with `testenv=staging`, version 2 with `prod`."""
    replay.match(
        "create_response",
        _create_aws(functions, name, Environment={"Variables": {"testenv": "staging"}}, **create),
    )
    replay.match("publish_v1", client.publish_version(FunctionName=name))
    client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"testenv": "prod"}}
    )
    wait_updated(client, name)
    replay.match("publish_v2", client.publish_version(FunctionName=name))


def _by_name(listed: dict) -> dict:
    """LocalStack's SortingTransformer("Aliases", by Name)."""
    return {**listed, "Aliases": sorted(listed["Aliases"], key=lambda alias: alias["Name"])}


def test_alias_lifecycle(lambda_client, functions, function_name):
    """Replays TestLambdaAlias::test_alias_lifecycle (every key)."""
    replay = Replay("TestLambdaAlias::test_alias_lifecycle")
    client = lambda_client
    _publish_two_versions(client, functions, function_name, replay)

    alias_1_1 = client.create_alias(
        FunctionName=function_name,
        Name="aliasname1_1",
        FunctionVersion="1",
        Description="custom-alias",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}},
    )
    replay.match("create_alias_1_1", alias_1_1)
    replay.match("get_alias_1_1", client.get_alias(FunctionName=function_name, Name="aliasname1_1"))
    replay.match(
        "get_function_alias_1_1",
        client.get_function(FunctionName=function_name, Qualifier="aliasname1_1"),
    )
    replay.match(
        "get_function_byarn_alias_1_1", client.get_function(FunctionName=alias_1_1["AliasArn"])
    )
    replay.match_error(
        "get_function_alias_notfound_exc",
        client.get_function,
        FunctionName=function_name,
        Qualifier="aliasdoesnotexist",
    )
    replay.match_error(
        "get_function_alias_byarn_notfound_exc",
        client.get_function,
        FunctionName=alias_1_1["AliasArn"].replace("aliasname1_1", "aliasdoesnotexist"),
    )

    for key, name, version, description in [
        ("1_2", "aliasname1_2", "1", "custom-alias"),
        ("1_3", "aliasname1_3", "1", None),
        ("2", "aliasname2", "2", "custom-alias"),
    ]:
        extra = {} if description is None else {"Description": description}
        replay.match(
            f"create_alias_{key}",
            client.create_alias(
                FunctionName=function_name, Name=name, FunctionVersion=version, **extra
            ),
        )
        replay.match(f"get_alias_{key}", client.get_alias(FunctionName=function_name, Name=name))

    listed = (
        client.get_paginator("list_aliases")
        .paginate(FunctionName=function_name, PaginationConfig={"PageSize": 1})
        .build_full_result()
    )
    replay.match("list_aliases_for_fnname", _by_name(listed))

    replay.match(
        "update_alias_1_1",
        client.update_alias(
            FunctionName=function_name,
            Name="aliasname1_1",
            RoutingConfig={"AdditionalVersionWeights": {}},
        ),
    )
    replay.match(
        "get_alias_1_1_after_update",
        client.get_alias(FunctionName=function_name, Name="aliasname1_1"),
    )
    replay.match(
        "list_aliases_for_fnname_after_update",
        _by_name(client.list_aliases(FunctionName=function_name)),
    )
    # An update that changes nothing still gives the alias a new RevisionId.
    replay.match(
        "update_alias_1_2", client.update_alias(FunctionName=function_name, Name="aliasname1_2")
    )
    replay.match(
        "get_alias_1_2_after_update",
        client.get_alias(FunctionName=function_name, Name="aliasname1_2"),
    )
    replay.match(
        "list_aliases_for_fnname_after_update_2",
        _by_name(client.list_aliases(FunctionName=function_name)),
    )
    replay.match(
        "list_aliases_for_version",
        _by_name(client.list_aliases(FunctionName=function_name, FunctionVersion="1")),
    )
    replay.match(
        "delete_alias_response",
        client.delete_alias(FunctionName=function_name, Name="aliasname1_1"),
    )
    replay.match(
        "list_aliases_for_fnname_afterdelete",
        _by_name(client.list_aliases(FunctionName=function_name)),
    )


@pytest.fixture
def unvalidated_client(kiln):
    """LocalStack's `aws_client_factory(config=Config(parameter_validation=False))`: botocore
    sends what it would refuse (a weight below 0), so AWS's answer is what is compared."""
    return boto3.client(
        "lambda",
        endpoint_url=kiln.url,
        region_name=REGION,
        aws_access_key_id="kiln-test",
        aws_secret_access_key="kiln-test",
        config=Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_notfound_and_invalid_routingconfigs(unvalidated_client, functions, function_name):
    """Replays TestLambdaAlias::test_notfound_and_invalid_routingconfigs (every key)."""
    replay = Replay("TestLambdaAlias::test_notfound_and_invalid_routingconfigs")
    client = unvalidated_client
    # Created with Publish=True: the first PublishVersion returns that version 1.
    _publish_two_versions(client, functions, function_name, replay, Publish=True)

    def refused(key: str, weights: dict, version: str = "1", function: str = function_name):
        replay.match_error(
            key,
            client.create_alias,
            FunctionName=function,
            Name="custom",
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": weights},
        )

    refused("routing_config_exc_toomany", {"1": 0.8, "2": 0.2})
    refused("routing_config_exc_toohigh", {"2": 2})
    refused("routing_config_exc_subzero", {"2": -1})
    refused("routing_config_exc_sameversion", {"1": 0.5})
    refused("target_version_doesnotexist", {"2": 0.5}, version="10")
    refused("routing_config_exc_version_doesnotexist", {"10": 0.5})
    refused("target_version_exc_version_latest", {"1": 0.5}, version="$LATEST")
    refused("routing_config_exc_version_latest", {"$LATEST": 0.5})
    replay.match(
        "create-alias-latest",
        client.create_alias(
            FunctionName=function_name, Name="custom-latest", FunctionVersion="$LATEST"
        ),
    )
    refused("routing_config_exc_fn_doesnotexist", {"2": 0.5}, function=f"{function_name}-unknown")
    replay.match(
        "create_alias_empty_routingconfig",
        client.create_alias(
            FunctionName=function_name,
            Name="custom-empty-routingconfig",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {}},
        ),
    )
    replay.match(
        "create_alias_response",
        client.create_alias(
            FunctionName=function_name,
            Name="custom",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
        ),
    )
    refused("routing_config_exc_already_exist", {"2": 0.5})
    replay.match_error(
        "alias_does_not_exist_esc",
        client.get_alias,
        FunctionName=function_name,
        Name="non-existent",
    )


def test_alias_naming(lambda_client, functions, function_name):
    """Replays TestLambdaAlias::test_alias_naming (every key).

    Requests reconstructed (the test postdates the reference copy): an alias named like a date
    is fine, one made only of digits is refused.
    """
    replay = Replay("TestLambdaAlias::test_alias_naming")
    replay.match(
        "create_response",
        _create_aws(functions, function_name, Environment={"Variables": {"testenv": "staging"}}),
    )
    replay.match("publish_v1", lambda_client.publish_version(FunctionName=function_name))
    replay.match(
        "create_alias_date",
        lambda_client.create_alias(
            FunctionName=function_name,
            Name="2024-01-02",
            FunctionVersion="1",
            Description="custom-alias",
        ),
    )
    replay.match(
        "get_alias_date", lambda_client.get_alias(FunctionName=function_name, Name="2024-01-02")
    )
    replay.match_error(
        "create_alias_number_exception",
        lambda_client.create_alias,
        FunctionName=function_name,
        Name="2024",
        FunctionVersion="1",
        Description="custom-alias",
    )


def test_non_existent_alias_deletion(lambda_client, functions, function_name):
    """Replays TestLambdaAlias::test_non_existent_alias_deletion (every key).

    Request reconstructed (the test postdates the reference copy): DeleteAlias of an alias
    that was never created.
    """
    replay = Replay("TestLambdaAlias::test_non_existent_alias_deletion")
    replay.match(
        "create_response",
        _create_aws(functions, function_name, Environment={"Variables": {"testenv": "staging"}}),
    )
    replay.match(
        "delete_alias_response",
        lambda_client.delete_alias(FunctionName=function_name, Name="non-existent"),
    )


def test_non_existent_alias_update(lambda_client, functions, function_name):
    """Replays TestLambdaAlias::test_non_existent_alias_update (every key).

    Request reconstructed (the test postdates the reference copy): UpdateAlias of an alias
    that was never created.
    """
    replay = Replay("TestLambdaAlias::test_non_existent_alias_update")
    replay.match(
        "create_response",
        _create_aws(functions, function_name, Environment={"Variables": {"testenv": "staging"}}),
    )
    replay.match_error(
        "update_alias_response",
        lambda_client.update_alias,
        FunctionName=function_name,
        Name="non-existent",
    )


def test_function_revisions_version_and_alias(lambda_client, functions, function_name):
    """Replays TestLambdaRevisions::test_function_revisions_version_and_alias (every key).

    Not replayed: TestLambdaRevisions::test_function_revisions_permissions (needs AddPermission;
    Kiln has no resource policies).
    """
    replay = Replay("TestLambdaRevisions::test_function_revisions_version_and_alias")
    client = lambda_client
    replay.match("create_function_response_rev1", functions.create(function_name))
    rev2 = client.get_function(FunctionName=function_name)
    replay.match("get_function_active_rev2", rev2)
    replay.match_error(
        "publish_version_revision_exception",
        client.publish_version,
        FunctionName=function_name,
        RevisionId="wrong",
    )
    published = client.publish_version(
        FunctionName=function_name, RevisionId=rev2["Configuration"]["RevisionId"]
    )
    replay.match("publish_version_response_rev_v1", published)
    version = published["Version"]
    _wait_version_active(client, function_name, version)
    replay.match(
        "get_function_published_version_rev_v2",
        client.get_function(FunctionName=function_name, Qualifier=version),
    )
    replay.match("get_function_latest_rev3", client.get_function(FunctionName=function_name))

    alias = client.create_alias(
        FunctionName=function_name, Name="revision_alias", FunctionVersion=version
    )
    replay.match("create_alias_response_rev_a1", alias)
    replay.match("get_function_latest_rev4", client.get_function(FunctionName=function_name))
    replay.match(
        "get_function_published_version_rev_v3",
        client.get_function(FunctionName=function_name, Qualifier=version),
    )
    replay.match_error(
        "update_alias_revision_exception",
        client.update_alias,
        FunctionName=function_name,
        Name="revision_alias",
        RevisionId="wrong",
    )
    replay.match(
        "update_alias_response_rev_a2",
        client.update_alias(
            FunctionName=function_name,
            Name="revision_alias",
            Description="something changed",
            RevisionId=alias["RevisionId"],
        ),
    )


# ------------------------------------------------------------------------------------------
# Tags
# ------------------------------------------------------------------------------------------


def _function_arn(lambda_client, functions, **create) -> str:
    """LocalStack's TestLambdaTag `fn_arn` fixture."""
    name = unique("fn")
    functions.create(name, **create)
    return lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]


def test_create_tag_on_fn_create(lambda_client, functions, function_name):
    """Replays TestLambdaTag::test_create_tag_on_fn_create."""
    replay = Replay("TestLambdaTag::test_create_tag_on_fn_create")
    functions.create(function_name, tags={"testtag": unique("tag")})
    got = lambda_client.get_function(FunctionName=function_name)
    replay.match("get_function_result", got)
    replay.match(
        "list_tags_result", lambda_client.list_tags(Resource=got["Configuration"]["FunctionArn"])
    )


@pytest.mark.parametrize("recording", ["test_tag_lifecycle", "test_tag_lifecycle[lambda_function]"])
def test_tag_lifecycle_single_resource(lambda_client, functions, recording):
    """Replays TestLambdaTag::test_tag_lifecycle and ::test_tag_lifecycle[lambda_function]
    (the same steps on a function).

    Not replayed: [event_source_mapping] (needs an event source mapping).
    """
    replay = Replay(f"TestLambdaTag::{recording}")
    arn = _function_arn(lambda_client, functions)
    steps = [
        ("tag_single_response", lambda_client.tag_resource, {"Tags": {"A": "tag-a"}}),
        (
            "tag_multiple_response",
            lambda_client.tag_resource,
            {"Tags": {"B": "tag-b", "C": "tag-c"}},
        ),
        (
            "tag_overlap_response",
            lambda_client.tag_resource,
            {"Tags": {"C": "tag-c-newsuffix", "D": "tag-d"}},
        ),
        ("untag_single_response", lambda_client.untag_resource, {"TagKeys": ["A"]}),
        ("untag_multiple_response", lambda_client.untag_resource, {"TagKeys": ["B", "C"]}),
        ("untag_nonexisting_response", lambda_client.untag_resource, {"TagKeys": ["F"]}),
        (
            "untag_existing_and_nonexisting_response",
            lambda_client.untag_resource,
            {"TagKeys": ["D", "F"]},
        ),
    ]
    for key, call, kwargs in steps:
        replay.match(key, call(Resource=arn, **kwargs))
        replay.match(f"{key}_listtags", lambda_client.list_tags(Resource=arn))


def test_tag_nonexisting_resource(lambda_client, functions):
    """Replays TestLambdaTag::test_tag_nonexisting_resource."""
    replay = Replay("TestLambdaTag::test_tag_nonexisting_resource")
    arn = _function_arn(lambda_client, functions)
    replay.match("pre_delete_get_function", lambda_client.get_function(FunctionName=arn))
    lambda_client.delete_function(FunctionName=arn)
    replay.match_error(
        "not_found_exception_tag", lambda_client.tag_resource, Resource=arn, Tags={"A": "B"}
    )
    replay.match_error(
        "not_found_exception_untag", lambda_client.untag_resource, Resource=arn, TagKeys=["A"]
    )
    replay.match_error("not_found_exception_list", lambda_client.list_tags, Resource=arn)


@pytest.mark.parametrize(
    "resource_type", ["lambda_function", "event_source_mapping", "capacity_provider"]
)
def test_tag_exceptions_nonexisting_resource(lambda_client, resource_type):
    """Replays TestLambdaTag::test_tag_exceptions[<resource_type>].

    Every key concerns a resource that does not exist, so no event source mapping or capacity
    provider is needed. Requests reconstructed (the test postdates the reference copy): the
    resource's ARN, that ARN with `:alias`, and the ARN with the type `foobar`.
    """
    replay = Replay(f"TestLambdaTag::test_tag_exceptions[{resource_type}]")
    arn_prefix = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}"
    resource_name = {
        "lambda_function": unique("fn"),
        "event_source_mapping": str(uuid.uuid4()),
        "capacity_provider": unique("cp"),
    }[resource_type]
    arn = f"{arn_prefix}:{resource_type.replace('lambda_', '').replace('_', '-')}:{resource_name}"
    replay.match_error(
        "not_found_exception_tag", lambda_client.tag_resource, Resource=arn, Tags={"A": "B"}
    )
    replay.match_error(
        "not_found_exception_untag", lambda_client.untag_resource, Resource=arn, TagKeys=["A"]
    )
    replay.match_error("not_found_exception_list", lambda_client.list_tags, Resource=arn)
    replay.match_error(
        "aliased_arn_exception",
        lambda_client.tag_resource,
        Resource=f"{arn}:alias",
        Tags={"A": "B"},
    )
    replay.match_error(
        "invalid_arn_exception",
        lambda_client.tag_resource,
        Resource=f"{arn_prefix}:foobar:{resource_name}",
        Tags={"A": "B"},
    )


def test_tags_tag_exceptions(lambda_client, functions):
    """Replays TestLambdaTags::test_tag_exceptions, with its closing asserts."""
    replay = Replay("TestLambdaTags::test_tag_exceptions")
    arn = _function_arn(lambda_client, functions)
    replay.match_error(
        "tag_lambda_invalidarn",
        lambda_client.tag_resource,
        Resource="arn:aws:something",
        Tags={"key_a": "value_a"},
    )
    replay.match_error(
        "tag_lambda_doesnotexist",
        lambda_client.tag_resource,
        Resource=f"{FUNCTION_ARN_PREFIX}doesnotexist",
        Tags={"key_a": "value_a"},
    )
    replay.match_error(
        "tag_lambda_qualifier_doesnotexist",
        lambda_client.tag_resource,
        Resource=f"{arn}:v1",
        Tags={"key_a": "value_a"},
    )
    replay.match("list_tag_lambda_empty", lambda_client.list_tags(Resource=arn))
    replay.match("untag_nomatch", lambda_client.untag_resource(Resource=arn, TagKeys=["somekey"]))
    replay.match_error("untag_empty_keys", lambda_client.untag_resource, Resource=arn, TagKeys=[])
    replay.match_error("tag_empty_tags", lambda_client.tag_resource, Resource=arn, Tags={})

    lambda_client.tag_resource(Resource=arn, Tags={"a_key": "a_value", "b_key": "b_value"})
    lambda_client.untag_resource(Resource=arn, TagKeys=["a_key", "c_key"])
    tags = lambda_client.list_tags(Resource=arn)["Tags"]
    assert "a_key" not in tags
    assert "b_key" in tags


def test_tags_tag_limits(lambda_client, functions, function_name):
    """Replays TestLambdaTags::test_tag_limits.

    `create_function_invalid_tags` postdates the reference copy: reconstructed as a create
    with 51 tags.
    """
    replay = Replay("TestLambdaTags::test_tag_limits")
    functions.create(function_name)
    arn = lambda_client.get_function(FunctionName=function_name)["Configuration"]["FunctionArn"]
    replay.match_error(
        "tag_lambda_too_many_tags",
        lambda_client.tag_resource,
        Resource=arn,
        Tags={f"{k}_key": f"{k}_value" for k in range(51)},
    )
    replay.match(
        "tag_response",
        lambda_client.tag_resource(
            Resource=arn, Tags={f"{k}_key": f"{k}_value" for k in range(50)}
        ),
    )
    replay.match("list_tags_response", lambda_client.list_tags(Resource=arn))
    replay.match("get_fn_response", lambda_client.get_function(FunctionName=function_name))
    replay.match_error(
        "tag_lambda_too_many_tags_additional",
        lambda_client.tag_resource,
        Resource=arn,
        Tags={"a_key": "a_value"},
    )
    replay.match_error(
        "create_function_invalid_tags",
        lambda_client.create_function,
        FunctionName=unique("fn-tag"),
        Runtime="python3.12",
        Handler="handler.handler",
        Role=ROLE,
        Code={"ZipFile": ECHO_ZIP},
        Timeout=30,
        Environment={"Variables": {}},
        Tags={f"{k}_key": f"{k}_value" for k in range(51)},
    )


def test_tags_tag_versions(lambda_client, functions, function_name):
    """Replays TestLambdaTags::test_tag_versions (every key).

    Requests reconstructed (the test postdates the reference copy): the tags of the create
    request go to the ARN of a published version, then to the `$LATEST` ARN.
    """
    replay = Replay("TestLambdaTags::test_tag_versions")
    created = functions.create(function_name, tags={"key_a": "value_a"})
    function_arn = created["CreateFunctionResponse"]["FunctionArn"]
    version = lambda_client.publish_version(FunctionName=function_name)["Version"]
    more_tags = {"key_b": "value_b", "key_c": "value_c", "key_d": "value_d", "key_e": "value_e"}
    replay.match_error(
        "tag_resource_exception",
        lambda_client.tag_resource,
        Resource=f"{function_arn}:{version}",
        Tags=more_tags,
    )
    replay.match_error(
        "tag_resource_latest_exception",
        lambda_client.tag_resource,
        Resource=f"{function_arn}:$LATEST",
        Tags=more_tags,
    )


def test_tags_tag_lifecycle(lambda_client, functions, function_name):
    """Replays TestLambdaTags::test_tag_lifecycle."""
    replay = Replay("TestLambdaTags::test_tag_lifecycle")

    def snapshot_tags(arn: str, suffix: str) -> None:
        replay.match(f"list_tags_response_{suffix}", lambda_client.list_tags(Resource=arn))
        replay.match(f"get_fn_response_{suffix}", lambda_client.get_function(FunctionName=arn))

    functions.create(function_name, tags={"key_a": "value_a"})
    arn = lambda_client.get_function(FunctionName=function_name)["Configuration"]["FunctionArn"]
    snapshot_tags(arn, "postfncreate")
    replay.match(
        "tag_resource_response",
        lambda_client.tag_resource(
            Resource=arn,
            Tags={"key_b": "value_b", "key_c": "value_c", "key_d": "value_d", "key_e": "value_e"},
        ),
    )
    snapshot_tags(arn, "postaddtags")
    replay.match(
        "tag_resource_overwrite",
        lambda_client.tag_resource(Resource=arn, Tags={"key_b": "value_b", "key_c": "value_x"}),
    )
    snapshot_tags(arn, "overwrite")
    lambda_client.untag_resource(Resource=arn, TagKeys=["key_c", "key_d"])
    snapshot_tags(arn, "postuntag")
    lambda_client.untag_resource(Resource=arn, TagKeys=["key_a", "key_b", "key_e"])
    snapshot_tags(arn, "postuntagall")
    lambda_client.delete_function(FunctionName=function_name)
    replay.match_error("list_tags_postdelete", lambda_client.list_tags, Resource=arn)


# ------------------------------------------------------------------------------------------
# Size limits
# ------------------------------------------------------------------------------------------


def test_oversized_request_create_lambda(lambda_client, big_zips):
    """Replays TestLambdaSizeLimits::test_oversized_request_create_lambda: a zip just below
    the zipped limit plus an environment that takes the request past 70167211 bytes."""
    replay = Replay("TestLambdaSizeLimits::test_oversized_request_create_lambda")
    delta = CREATE_FUNCTION_REQUEST_SIZE - CODE_SIZE_ZIPPED
    large_env = ECHO_SOURCE + "#" * (delta + 1024 * 1024 - len(ECHO_SOURCE))
    replay.match_error(
        "invalid_param_exc",
        lambda_client.create_function,
        FunctionName=unique("test_lambda"),
        Runtime="python3.12",
        Handler="handler.handler",
        Role=ROLE,
        Code={"ZipFile": big_zips("zipped_below_limit")},
        Timeout=10,
        Environment={"Variables": {"largeKey": large_env}},
    )


def test_oversized_zipped_create_lambda(lambda_client, big_zips):
    """Replays TestLambdaSizeLimits::test_oversized_zipped_create_lambda: a stored (not
    compressed) zip over 52428800 bytes, whose request stays under the request limit."""
    replay = Replay("TestLambdaSizeLimits::test_oversized_zipped_create_lambda")
    replay.match_error(
        "invalid_param_exc",
        lambda_client.create_function,
        FunctionName=unique("test_lambda"),
        Runtime="python3.12",
        Handler="handler.handler",
        Role=ROLE,
        Code={"ZipFile": big_zips("zipped_at_limit")},
        Timeout=10,
    )


@pytest.mark.parametrize("recording", ["test_oversized_unzipped_lambda", "test_oversized_lambda"])
def test_oversized_unzipped_lambda(lambda_client, big_zips, recording):
    """Replays TestLambdaSizeLimits::test_oversized_unzipped_lambda and its 2022 predecessor
    ::test_oversized_lambda: code that unzips to exactly 262144000 bytes.

    AWS got the zip from S3 (Kiln takes only Code.ZipFile); here it is uploaded inline,
    deflated to a few hundred KB.
    """
    replay = Replay(f"TestLambdaSizeLimits::{recording}")
    replay.match_error(
        "invalid_param_exc",
        lambda_client.create_function,
        FunctionName=unique("test_lambda"),
        Runtime="python3.12",
        Handler="handler.handler",
        Role=ROLE,
        Code={"ZipFile": big_zips("unzipped_at_limit")},
        Timeout=10,
    )


def test_large_lambda(functions, big_zips):
    """Replays TestLambdaSizeLimits::test_large_lambda: code that unzips to 1000 bytes below
    the limit. AWS got the zip from S3; here it is uploaded inline."""
    replay = Replay("TestLambdaSizeLimits::test_large_lambda")
    replay.match(
        "create_function_large_zip",
        functions.create_plain(
            FunctionName=unique("test_lambda"),
            Runtime="python3.12",
            Handler="handler.handler",
            Role=ROLE,
            Code={"ZipFile": big_zips("unzipped_below_limit")},
            Timeout=10,
        ),
    )


def test_large_environment_variables_fails(lambda_client, functions):
    """Replays TestLambdaSizeLimits::test_large_environment_variables_fails: one variable
    making the environment one byte over 4 KB."""
    replay = Replay("TestLambdaSizeLimits::test_large_environment_variables_fails")
    name = unique("large-envvar-lambda")
    key = "LARGE_VAR"
    replay.match_error(
        "failed_create_fn_result",
        functions.create,
        name,
        envvars={key: "x" * (4 * 1024 - 6 - len(key))},
    )
    error = error_of(lambda_client.get_function, FunctionName=name)
    assert error["Error"]["Code"] == "ResourceNotFoundException"


def test_large_environment_fails_multiple_keys(lambda_client, functions):
    """Replays TestLambdaSizeLimits::test_large_environment_fails_multiple_keys."""
    replay = Replay("TestLambdaSizeLimits::test_large_environment_fails_multiple_keys")
    name = unique("large-envvar-lambda")
    replay.match_error(
        "failured_create_fn_result_multi_key",
        functions.create,
        name,
        envvars={"SMALL_VAR": "ok", "LARGE_VAR": "x" * 4064},
    )
    error = error_of(lambda_client.get_function, FunctionName=name)
    assert error["Error"]["Code"] == "ResourceNotFoundException"


def test_lambda_envvars_near_limit_succeeds(lambda_client, functions):
    """Replays TestLambdaSizeLimits::test_lambda_envvars_near_limit_succeeds: exactly 4 KB."""
    replay = Replay("TestLambdaSizeLimits::test_lambda_envvars_near_limit_succeeds")
    name = unique("large-envvar-lambda")
    key = "LARGE_VAR"
    replay.match(
        "successful_create_fn_result",
        functions.create(name, envvars={key: "x" * (4 * 1024 - 7 - len(key))}),
    )
    lambda_client.get_function(FunctionName=name)


# ------------------------------------------------------------------------------------------
# Account settings
# ------------------------------------------------------------------------------------------


def test_account_settings(lambda_client):
    """Replays TestLambdaAccountSettings::test_account_settings (which keys, not values)."""
    replay = Replay("TestLambdaAccountSettings::test_account_settings")
    settings = lambda_client.get_account_settings()
    settings["AccountLimit"] = sorted(settings["AccountLimit"])
    settings["AccountUsage"] = sorted(settings["AccountUsage"])
    replay.match("acc_settings_modded", settings)


def test_account_settings_total_code_size_config_update(lambda_client, functions):
    """Replays TestLambdaAccountSettings::test_account_settings_total_code_size_config_update
    (every key): a create adds the zip's size, a config update adds nothing, publishing the
    updated function adds the version's code again.

    Requests reconstructed (the test postdates the reference copy) from the key names.
    """
    replay = Replay(
        "TestLambdaAccountSettings::test_account_settings_total_code_size_config_update"
    )
    assert len(NODE_ZIP) > 200  # the recording's 'more than 200' presumes such a zip
    before = lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"]
    name = unique("lambda_func")
    functions.create(name, zip_file=NODE_ZIP, runtime="nodejs16.x")
    after_create = lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"]
    assert (after_create - before > 200) == replay.expected(
        "is_total_code_size_diff_create_function_more_than_200"
    )
    lambda_client.update_function_configuration(FunctionName=name, Runtime="nodejs18.x")
    wait_updated(lambda_client, name)
    after_update = lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"]
    assert after_update - after_create == replay.expected(
        "total_code_size_diff_update_function_configuration"
    )
    lambda_client.publish_version(FunctionName=name)
    after_publish = lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"]
    assert (after_publish - after_update > 200) == replay.expected(
        "is_total_code_size_diff_publish_version_after_config_update_more_than_200"
    )


# ------------------------------------------------------------------------------------------
# Logging, SnapStart and runtime configuration
# ------------------------------------------------------------------------------------------


def _logging_scenario(lambda_client, functions, function_name, replay, create_logging, updates):
    replay.match(
        "create_response",
        functions.create(function_name, MemorySize=256, timeout=5, **create_logging),
    )
    replay.match("get_function_response", lambda_client.get_function(FunctionName=function_name))
    replay.match(
        "function_config", lambda_client.get_function_configuration(FunctionName=function_name)
    )
    for suffix, logging_config in updates:
        replay.match(
            f"updated_config{suffix}",
            lambda_client.update_function_configuration(
                FunctionName=function_name, LoggingConfig=logging_config
            ),
        )
        wait_updated(lambda_client, function_name)
        replay.match(
            f"received_config{suffix}",
            lambda_client.get_function_configuration(FunctionName=function_name),
        )


def test_function_advanced_logging_configuration(lambda_client, functions, function_name):
    """Replays TestLoggingConfig::test_function_advanced_logging_configuration.

    Requests reconstructed (the test postdates the reference copy): created with a full JSON
    logging config, then moved to the log group `cool_lambda`.
    """
    json_info = {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"}
    _logging_scenario(
        lambda_client,
        functions,
        function_name,
        Replay("TestLoggingConfig::test_function_advanced_logging_configuration"),
        {"LoggingConfig": json_info},
        [("", {**json_info, "LogGroup": "cool_lambda"})],
    )


def test_advanced_logging_configuration_format_switch(lambda_client, functions, function_name):
    """Replays TestLoggingConfig::test_advanced_logging_configuration_format_switch.

    Requests reconstructed (the test postdates the reference copy): Text -> JSON -> Text.
    """
    _logging_scenario(
        lambda_client,
        functions,
        function_name,
        Replay("TestLoggingConfig::test_advanced_logging_configuration_format_switch"),
        {},
        [("", {"LogFormat": "JSON"}), ("_v2", {"LogFormat": "Text"})],
    )


_PARTIAL_LOGGING_CONFIGS = {
    "partial_config0": {"LogFormat": "JSON"},
    "partial_config1": {"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"},
    "partial_config2": {"LogFormat": "JSON", "SystemLogLevel": "DEBUG"},
    "partial_config3": {"LogGroup": "cool_lambda"},
}


@pytest.mark.parametrize("case", list(_PARTIAL_LOGGING_CONFIGS))
def test_function_partial_advanced_logging_configuration_update(
    lambda_client, functions, function_name, case
):
    """Replays TestLoggingConfig::test_function_partial_advanced_logging_configuration_update.

    Requests reconstructed (the test postdates the reference copy) from the resulting configs.
    """
    _logging_scenario(
        lambda_client,
        functions,
        function_name,
        Replay(
            "TestLoggingConfig::test_function_partial_advanced_logging_configuration_update"
            f"[{case}]"
        ),
        {},
        [("", _PARTIAL_LOGGING_CONFIGS[case])],
    )


def test_snapstart_exceptions(lambda_client):
    """Replays TestLambdaSnapStart::test_snapstart_exceptions."""
    replay = Replay("TestLambdaSnapStart::test_snapstart_exceptions")
    replay.match_error(
        "create_function_invalid_snapstart_apply",
        lambda_client.create_function,
        FunctionName=unique("invalid-function"),
        Handler="cloud.localstack.sample.LambdaHandlerWithLib",
        Code={"ZipFile": ECHO_ZIP},
        PackageType="Zip",
        Role=ROLE,
        Runtime="java11",
        SnapStart={"ApplyOn": "invalidOption"},
    )


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_snapstart_update_function_configuration(lambda_client, functions, function_name, runtime):
    """Replays TestLambdaSnapStart::test_snapstart_update_function_configuration[<python>].

    Not replayed: the Java and .NET variants (need their runtimes' code). Request
    reconstructed: MemorySize 1024 and Timeout 5 are what AWS reports back.
    """
    replay = Replay(f"TestLambdaSnapStart::test_snapstart_update_function_configuration[{runtime}]")
    replay.match(
        "create_function_response",
        functions.create_plain(
            FunctionName=function_name,
            Runtime=runtime,
            Handler="handler.handler",
            Role=ROLE,
            Code={"ZipFile": ECHO_ZIP},
            MemorySize=1024,
            Timeout=5,
        ),
    )
    try:
        updated = lambda_client.update_function_configuration(
            FunctionName=function_name, SnapStart={"ApplyOn": "PublishedVersions"}
        )
    except ClientError as error:
        message = error.response["Error"]["Message"]
        if "does not support SnapStart" in message:
            pytest.skip(f"needs SnapStart, which Kiln refuses: {message}")
        raise
    replay.match("update_function_response", updated)


@pytest.mark.parametrize(
    "runtime",
    [
        "java8",
        "go1.x",
        "provided",
        "ruby2.7",
        "nodejs14.x",
        "python3.7",
        "dotnetcore3.1",
        "nodejs12.x",
    ],
)
def test_create_deprecated_function_runtime_with_validation_enabled(lambda_client, runtime):
    """Replays TestRuntimeValidation::
    test_create_deprecated_function_runtime_with_validation_enabled[<runtime>]."""
    if runtime == "provided":
        pytest.skip(
            "intended difference: Kiln accepts `provided` for new functions "
            "(kiln-api lambda/runtimes.rs KILN_ALSO_ACCEPTS)"
        )
    replay = Replay(
        "TestRuntimeValidation::test_create_deprecated_function_runtime_with_validation_enabled"
        f"[{runtime}]"
    )
    replay.match_error(
        "deprecation_error",
        lambda_client.create_function,
        FunctionName=unique("deprecated-runtime"),
        Runtime=runtime,
        Handler="handler.handler",
        Role=ROLE,
        Code={"ZipFile": ECHO_ZIP},
    )


# ------------------------------------------------------------------------------------------
# test_lambda.py scenarios that need no invocation
# ------------------------------------------------------------------------------------------


def test_function_state(lambda_client, functions, function_name):
    """Replays test_lambda.py TestLambdaBaseFeatures::test_function_state."""
    replay = Replay("TestLambdaBaseFeatures::test_function_state", BEHAVIOUR)
    replay.match(
        "create-fn-response",
        functions.create_plain(
            FunctionName=function_name,
            Runtime="python3.12",
            Handler="handler.handler",
            Role=ROLE,
            Code={"ZipFile": ECHO_ZIP},
        ),
    )
    replay.match("get-fn-response", lambda_client.get_function(FunctionName=function_name))


def test_recreate_function(lambda_client, functions, function_name):
    """Replays test_lambda.py TestLambdaCleanup::test_recreate_function."""
    replay = Replay("TestLambdaCleanup::test_recreate_function", BEHAVIOUR)
    replay.match(
        "create_function_response_one",
        functions.create(function_name, handler="lambda_echo.handler"),
    )
    lambda_client.delete_function(FunctionName=function_name)
    replay.match(
        "create_function_response_two",
        functions.create(function_name, handler="lambda_echo.handler"),
    )


def test_lambda_handler_update(lambda_client, functions, function_name):
    """Replays test_lambda.py TestLambdaVersions::test_lambda_handler_update, without invoking.

    Not replayed: the `invoke_result_*` keys (need invocation; one also PublishVersion).
    Request reconstructed: UpdateFunctionConfiguration(Handler="handler.handler_two").
    """
    replay = Replay("TestLambdaVersions::test_lambda_handler_update", BEHAVIOUR)
    functions.create(function_name)
    replay.match(
        "update_function_configuration_result",
        lambda_client.update_function_configuration(
            FunctionName=function_name, Handler="handler.handler_two"
        ),
    )
    wait_updated(lambda_client, function_name)
    replay.match("get_function_result", lambda_client.get_function(FunctionName=function_name))


# ------------------------------------------------------------------------------------------
# Concurrency: reserved and provisioned
# ------------------------------------------------------------------------------------------
#
# Kiln initialises a provisioned environment in milliseconds, AWS in minutes: the
# `get_provisioned_prewait` keys (IN_PROGRESS, nothing allocated, read right after the put) are
# not replayed, as Kiln may already be READY by then; the put's own answer (IN_PROGRESS, 0) is.


def _invoke_result(response: dict) -> dict:
    """An Invoke response as LocalStack's snapshots hold it: the payload parsed."""
    return {
        "ExecutedVersion": response["ExecutedVersion"],
        "Payload": json.loads(response["Payload"].read()),
        "StatusCode": response["StatusCode"],
        "ResponseMetadata": response["ResponseMetadata"],
    }


def _wait_provisioned(client, name: str, qualifier: str) -> None:
    """LocalStack's `wait_until(concurrency_update_done(...))`: the status leaves IN_PROGRESS."""
    wait_until(
        lambda: client.get_provisioned_concurrency_config(
            FunctionName=name, Qualifier=qualifier
        )["Status"]
        != "IN_PROGRESS",
        f"the provisioned concurrency of {name}:{qualifier} settled",
        timeout=60,
    )


def test_function_concurrency_exceptions(lambda_client, unvalidated_client, functions):
    """Replays TestLambdaReservedConcurrency::test_function_concurrency_exceptions (every key).

    Request reconstructed: the invalid concurrency is -1 (sent without botocore's validation).
    """
    replay = Replay("TestLambdaReservedConcurrency::test_function_concurrency_exceptions")
    replay.match_error(
        "put_function_concurrency_with_function_name_doesnotexist",
        lambda_client.put_function_concurrency,
        FunctionName="doesnotexist",
        ReservedConcurrentExecutions=1,
    )
    replay.match_error(
        "put_function_concurrency_with_function_name_doesnotexist_and_invalid_concurrency",
        unvalidated_client.put_function_concurrency,
        FunctionName="doesnotexist",
        ReservedConcurrentExecutions=-1,
    )
    name = unique("concurrency")
    arn = functions.create(name)["CreateFunctionResponse"]["FunctionArn"]
    lambda_client.publish_version(FunctionName=name)
    replay.match_error(
        "put_function_concurrency_with_qualified_arn",
        lambda_client.put_function_concurrency,
        FunctionName=f"{arn}:1",
        ReservedConcurrentExecutions=1,
    )


def test_function_concurrency(lambda_client, functions, function_name):
    """Replays TestLambdaReservedConcurrency::test_function_concurrency (every key)."""
    replay = Replay("TestLambdaReservedConcurrency::test_function_concurrency")
    functions.create(function_name)
    for reserved in (0, 1):
        replay.match(
            f"put_function_concurrency_with_reserved_{reserved}",
            lambda_client.put_function_concurrency(
                FunctionName=function_name, ReservedConcurrentExecutions=reserved
            ),
        )
    replay.match(
        "get_function_concurrency",
        lambda_client.get_function_concurrency(FunctionName=function_name),
    )
    replay.match(
        "delete_response",
        lambda_client.delete_function_concurrency(FunctionName=function_name),
    )
    replay.match(
        "get_function_concurrency_after_delete",
        lambda_client.get_function_concurrency(FunctionName=function_name),
    )


def test_function_concurrency_limits(lambda_client, functions, function_name):
    """Replays TestLambdaReservedConcurrency::test_function_concurrency_limits (every key).

    Requests reconstructed: the account limit plus one, then the unreserved concurrency minus
    the minimum of 100, plus one.
    """
    replay = Replay("TestLambdaReservedConcurrency::test_function_concurrency_limits")
    functions.create(function_name)
    limits = lambda_client.get_account_settings()["AccountLimit"]
    replay.match_error(
        "put_function_concurrency_account_limit_exceeded",
        lambda_client.put_function_concurrency,
        FunctionName=function_name,
        ReservedConcurrentExecutions=limits["ConcurrentExecutions"] + 1,
    )
    replay.match_error(
        "put_function_concurrency_below_unreserved_min_value",
        lambda_client.put_function_concurrency,
        FunctionName=function_name,
        ReservedConcurrentExecutions=limits["UnreservedConcurrentExecutions"] - 100 + 1,
    )


def test_provisioned_concurrency_exceptions(
    lambda_client, unvalidated_client, functions, function_name
):
    """Replays TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions
    (every key)."""
    replay = Replay("TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions")
    functions.create(function_name)
    replay.match("publish_version_result", lambda_client.publish_version(FunctionName=function_name))
    for operation in ("get", "delete"):
        call = getattr(lambda_client, f"{operation}_provisioned_concurrency_config")
        if operation == "get":
            replay.match_error(
                "get_provisioned_config_doesnotexist", call, FunctionName=function_name, Qualifier="1"
            )
        replay.match_error(
            f"{operation}_provisioned_functionname_doesnotexist",
            call,
            FunctionName="doesnotexist",
            Qualifier="noalias" if operation == "get" else "1",
        )
        replay.match_error(
            f"{operation}_provisioned_qualifier_doesnotexist",
            call,
            FunctionName=function_name,
            Qualifier="noalias",
        )
        replay.match_error(
            f"{operation}_provisioned_version_doesnotexist",
            call,
            FunctionName=function_name,
            Qualifier="10",
        )
        replay.match_error(
            f"{operation}_provisioned_latest", call, FunctionName=function_name, Qualifier="$LATEST"
        )
        if operation == "get":
            replay.match(
                "list_provisioned_noconfigs",
                lambda_client.list_provisioned_concurrency_configs(FunctionName=function_name),
            )
            replay.match_error(
                "list_provisioned_functionname_doesnotexist",
                lambda_client.list_provisioned_concurrency_configs,
                FunctionName="doesnotexist",
            )
    replay.match(
        "delete_provisioned_config_doesnotexist",
        lambda_client.delete_provisioned_concurrency_config(
            FunctionName=function_name, Qualifier="1"
        ),
    )
    put = lambda_client.put_provisioned_concurrency_config
    replay.match_error(
        "put_provisioned_invalid_param_0",
        unvalidated_client.put_provisioned_concurrency_config,
        FunctionName=function_name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=0,
    )
    for key, name, qualifier in [
        ("put_provisioned_functionname_doesnotexist_alias", "doesnotexist", "noalias"),
        ("put_provisioned_functionname_doesnotexist_version", "doesnotexist", "1"),
        ("put_provisioned_qualifier_doesnotexist", function_name, "doesnotexist"),
        ("put_provisioned_version_doesnotexist", function_name, "10"),
        ("put_provisioned_latest", function_name, "$LATEST"),
    ]:
        replay.match_error(
            key, put, FunctionName=name, Qualifier=qualifier, ProvisionedConcurrentExecutions=1
        )


def test_lambda_provisioned_lifecycle(lambda_client, functions, function_name):
    """Replays TestLambdaProvisionedConcurrency::test_lambda_provisioned_lifecycle (every key)."""
    replay = Replay("TestLambdaProvisionedConcurrency::test_lambda_provisioned_lifecycle")
    functions.create(function_name)
    alias = unique("alias")
    replay.match("publish_version_result", lambda_client.publish_version(FunctionName=function_name))
    replay.match(
        "create_alias_result",
        lambda_client.create_alias(FunctionName=function_name, Name=alias, FunctionVersion="1"),
    )
    put = lambda_client.put_provisioned_concurrency_config
    replay.match(
        "put_provisioned_on_version",
        put(FunctionName=function_name, Qualifier="1", ProvisionedConcurrentExecutions=1),
    )
    replay.match_error(
        "put_provisioned_on_alias_versionconflict",
        put,
        FunctionName=function_name,
        Qualifier=alias,
        ProvisionedConcurrentExecutions=1,
    )
    replay.match(
        "delete_provisioned_version",
        lambda_client.delete_provisioned_concurrency_config(
            FunctionName=function_name, Qualifier="1"
        ),
    )
    replay.match_error(
        "get_provisioned_version_postdelete",
        lambda_client.get_provisioned_concurrency_config,
        FunctionName=function_name,
        Qualifier="1",
    )
    replay.match(
        "put_provisioned_on_alias",
        put(FunctionName=function_name, Qualifier=alias, ProvisionedConcurrentExecutions=1),
    )
    replay.match_error(
        "put_provisioned_on_version_conflict",
        put,
        FunctionName=function_name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=1,
    )
    replay.match(
        "delete_alias_result", lambda_client.delete_alias(FunctionName=function_name, Name=alias)
    )
    replay.match_error(
        "get_provisioned_alias_postaliasdelete",
        lambda_client.get_provisioned_concurrency_config,
        FunctionName=function_name,
        Qualifier=alias,
    )
    replay.match(
        "list_response_postdeletes",
        lambda_client.list_provisioned_concurrency_configs(FunctionName=function_name),
    )


def test_provisioned_concurrency_limits(lambda_client, functions, function_name):
    """Replays TestLambdaProvisionedConcurrency::test_provisioned_concurrency_limits (every key).

    Requests reconstructed: the unreserved concurrency plus one, then the unreserved
    concurrency minus the minimum of 100, plus one, on version 1.
    """
    replay = Replay("TestLambdaProvisionedConcurrency::test_provisioned_concurrency_limits")
    functions.create(function_name)
    lambda_client.publish_version(FunctionName=function_name)
    unreserved = lambda_client.get_account_settings()["AccountLimit"][
        "UnreservedConcurrentExecutions"
    ]
    replay.match_error(
        "put_provisioned_concurrency_account_limit_exceeded",
        lambda_client.put_provisioned_concurrency_config,
        FunctionName=function_name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=unreserved + 1,
    )
    replay.match_error(
        "put_provisioned_concurrency_below_unreserved_min_value",
        lambda_client.put_provisioned_concurrency_config,
        FunctionName=function_name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=unreserved - 100 + 1,
    )


def test_lambda_concurrency_crud(lambda_client, functions, function_name):
    """Replays test_lambda.py TestLambdaConcurrency::test_lambda_concurrency_crud (every key)."""
    replay = Replay("TestLambdaConcurrency::test_lambda_concurrency_crud", BEHAVIOUR)
    functions.create(function_name)
    replay.match(
        "get_function_concurrency_default",
        lambda_client.get_function_concurrency(FunctionName=function_name),
    )
    replay.match(
        "put_function_concurrency",
        lambda_client.put_function_concurrency(
            FunctionName=function_name, ReservedConcurrentExecutions=0
        ),
    )
    replay.match(
        "get_function_concurrency_updated",
        lambda_client.get_function_concurrency(FunctionName=function_name),
    )
    lambda_client.delete_function_concurrency(FunctionName=function_name)
    replay.match(
        "get_function_concurrency_deleted",
        lambda_client.get_function_concurrency(FunctionName=function_name),
    )


def test_lambda_concurrency_update(lambda_client, functions, function_name):
    """Replays test_lambda.py TestLambdaConcurrency::test_lambda_concurrency_update (every
    key): GetFunction shows the reserved concurrency."""
    replay = Replay("TestLambdaConcurrency::test_lambda_concurrency_update", BEHAVIOUR)
    functions.create(function_name)
    replay.match(
        "put_function_concurrency",
        lambda_client.put_function_concurrency(
            FunctionName=function_name, ReservedConcurrentExecutions=3
        ),
    )
    replay.match(
        "get_function_concurrency_updated",
        lambda_client.get_function_concurrency(FunctionName=function_name),
    )
    replay.match(
        "get_function_concurrency_info", lambda_client.get_function(FunctionName=function_name)
    )
    lambda_client.delete_function_concurrency(FunctionName=function_name)
    replay.match(
        "get_function_concurrency_deleted",
        lambda_client.get_function_concurrency(FunctionName=function_name),
    )


def test_lambda_concurrency_block(lambda_client, functions, function_name):
    """Replays test_lambda.py TestLambdaConcurrency::test_lambda_concurrency_block (every key):
    reserved 1 and 1 provisioned on version 1 leave nothing for `$LATEST`."""
    replay = Replay("TestLambdaConcurrency::test_lambda_concurrency_block", BEHAVIOUR)
    functions.create(function_name)
    replay.match("v1_result", lambda_client.publish_version(FunctionName=function_name))
    replay.match(
        "reserved_concurrency_result",
        lambda_client.put_function_concurrency(
            FunctionName=function_name, ReservedConcurrentExecutions=1
        ),
    )
    payload = json.dumps({"hello": "world"})
    replay.match(
        "invoke_latest_before_block",
        _invoke_result(lambda_client.invoke(FunctionName=function_name, Payload=payload)),
    )
    replay.match(
        "provisioned_concurrency_result",
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=function_name, Qualifier="1", ProvisionedConcurrentExecutions=1
        ),
    )
    _wait_provisioned(lambda_client, function_name, "1")
    replay.match_error(
        "invoke_latest_first_exc",
        lambda_client.invoke,
        FunctionName=function_name,
        Payload=payload,
    )
    replay.match(
        "invoke_v1_after_block",
        _invoke_result(
            lambda_client.invoke(FunctionName=function_name, Qualifier="1", Payload=payload)
        ),
    )
    replay.match_error(
        "invoke_latest_second_exc",
        lambda_client.invoke,
        FunctionName=function_name,
        Payload=payload,
    )


def test_reserved_provisioned_overlap(lambda_client, functions, function_name):
    """Replays test_lambda.py TestLambdaConcurrency::test_reserved_provisioned_overlap.

    Not replayed: `get_provisioned_prewait` (see above). Requests reconstructed from the
    answers: 2 provisioned on version 1, reserved 1 then 2, Timeout 15 and version 2 for the
    second configuration (1 more), then 3 on version 1.
    """
    replay = Replay("TestLambdaConcurrency::test_reserved_provisioned_overlap", BEHAVIOUR)
    functions.create(function_name)
    lambda_client.publish_version(FunctionName=function_name)
    put = lambda_client.put_provisioned_concurrency_config
    replay.match(
        "put_provisioned_5",
        put(FunctionName=function_name, Qualifier="1", ProvisionedConcurrentExecutions=2),
    )
    _wait_provisioned(lambda_client, function_name, "1")
    replay.match(
        "get_provisioned_postwait",
        lambda_client.get_provisioned_concurrency_config(FunctionName=function_name, Qualifier="1"),
    )
    replay.match_error(
        "reserved_lower_than_provisioned_exc",
        lambda_client.put_function_concurrency,
        FunctionName=function_name,
        ReservedConcurrentExecutions=1,
    )
    lambda_client.put_function_concurrency(
        FunctionName=function_name, ReservedConcurrentExecutions=2
    )
    replay.match(
        "get_concurrency", lambda_client.get_function_concurrency(FunctionName=function_name)
    )
    replay.match_error(
        "reserved_equals_provisioned_latest_invoke_exc",
        lambda_client.invoke,
        FunctionName=function_name,
    )
    replay.match(
        "update_func_config",
        lambda_client.update_function_configuration(FunctionName=function_name, Timeout=15),
    )
    wait_updated(lambda_client, function_name)
    lambda_client.publish_version(FunctionName=function_name)
    replay.match_error(
        "reserved_equals_provisioned_another_provisioned_exc",
        put,
        FunctionName=function_name,
        Qualifier="2",
        ProvisionedConcurrentExecutions=1,
    )
    replay.match_error(
        "reserved_equals_provisioned_increase_provisioned_exc",
        put,
        FunctionName=function_name,
        Qualifier="1",
        ProvisionedConcurrentExecutions=3,
    )


@pytest.mark.parametrize("scenario", ["test_provisioned_concurrency", "on_alias"])
def test_provisioned_concurrency(lambda_client, functions, function_name, scenario):
    """Replays test_lambda.py TestLambdaConcurrency::test_provisioned_concurrency and
    ::test_provisioned_concurrency_on_alias: 5 environments become READY.

    Not replayed: `get_provisioned_prewait` (see above).
    """
    test = (
        "test_provisioned_concurrency"
        if scenario == "test_provisioned_concurrency"
        else "test_provisioned_concurrency_on_alias"
    )
    replay = Replay(f"TestLambdaConcurrency::{test}", BEHAVIOUR)
    functions.create(function_name)
    lambda_client.publish_version(FunctionName=function_name)
    qualifier = "1"
    if scenario == "on_alias":
        qualifier = unique("alias")
        lambda_client.create_alias(
            FunctionName=function_name, Name=qualifier, FunctionVersion="1"
        )
    replay.match(
        "put_provisioned_5",
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=function_name, Qualifier=qualifier, ProvisionedConcurrentExecutions=5
        ),
    )
    _wait_provisioned(lambda_client, function_name, qualifier)
    replay.match(
        "get_provisioned_postwait",
        lambda_client.get_provisioned_concurrency_config(
            FunctionName=function_name, Qualifier=qualifier
        ),
    )


def test_provisioned_concurrency_init_failure(lambda_client, functions, function_name):
    """Replays test_lambda.py TestLambdaConcurrency::test_provisioned_concurrency_init_failure.

    Not replayed: `get_provisioned_prewait` (see above). Request reconstructed: a handler
    module that raises while it is imported.
    """
    replay = Replay("TestLambdaConcurrency::test_provisioned_concurrency_init_failure", BEHAVIOUR)
    functions.create(
        function_name, zip_file=make_zip({"handler.py": "raise Exception('init failure')\n"})
    )
    lambda_client.publish_version(FunctionName=function_name)
    replay.match(
        "put_provisioned",
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=function_name, Qualifier="1", ProvisionedConcurrentExecutions=1
        ),
    )
    _wait_provisioned(lambda_client, function_name, "1")
    replay.match(
        "get_provisioned_postwait",
        lambda_client.get_provisioned_concurrency_config(FunctionName=function_name, Qualifier="1"),
    )


def test_reserved_concurrency(lambda_client, functions, function_name):
    """Replays test_lambda.py TestLambdaConcurrency::test_reserved_concurrency, its synchronous
    part.

    Not replayed: `put_event_invoke_conf`, `invoke_result` and `msg` (asynchronous invocation
    and its on-failure destination). Request reconstructed: Timeout 20.
    """
    replay = Replay("TestLambdaConcurrency::test_reserved_concurrency", BEHAVIOUR)
    functions.create(function_name, timeout=20)
    replay.match(
        "fn",
        lambda_client.get_function_configuration(FunctionName=function_name, Qualifier="$LATEST"),
    )
    replay.match(
        "put_reserved",
        lambda_client.put_function_concurrency(
            FunctionName=function_name, ReservedConcurrentExecutions=0
        ),
    )
    replay.match_error(
        "exc_no_cap_requestresponse",
        lambda_client.invoke,
        FunctionName=function_name,
        InvocationType="RequestResponse",
    )


def test_reserved_concurrency_async_queue(lambda_client, functions, function_name):
    """Replays test_lambda.py TestLambdaConcurrency::test_reserved_concurrency_async_queue, its
    synchronous part.

    Not replayed: `too_many_requests_exc` (a synchronous invocation throttled while
    asynchronous ones hold the reserved concurrency: needs asynchronous invocation).
    """
    replay = Replay("TestLambdaConcurrency::test_reserved_concurrency_async_queue", BEHAVIOUR)
    functions.create(function_name)
    replay.match(
        "fn",
        lambda_client.get_function_configuration(FunctionName=function_name, Qualifier="$LATEST"),
    )
    replay.match(
        "put_fn_concurrency",
        lambda_client.put_function_concurrency(
            FunctionName=function_name, ReservedConcurrentExecutions=1
        ),
    )
