"""Hostile and malformed input: broken JSON, wrong types, oversized bodies, dangerous zips,
unknown routes and broken paths. Every refusal must be a clean AWS-shaped error, leave nothing
behind in the data directory, and never take the server down.

These tests use their own server (module scope) so they can inspect its data directory.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import make_lambda_client
from kiln_harness import ACCOUNT_ID, PYTHON_HANDLER_ZIP, REGION, ROLE, KilnServer, make_zip

CREATE_BODY_LIMIT = 70_167_211
UNZIP_MESSAGE = "Could not unzip uploaded file. Please check your file, then try to upload again."
ARN_PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"

# Every raw reply seen in this module, for the request-id checks.
REPLIES: list["Reply"] = []


# --- the server and its data directory --------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    kiln = KilnServer(tmp_path_factory.mktemp("hostile") / "data").start()
    yield kiln
    if kiln.process is not None:
        kiln.stop()


@pytest.fixture
def client(server):
    return make_lambda_client(server.url)


@pytest.fixture
def name(request):
    base = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]
    return f"{base}-{uuid.uuid4().hex[:8]}"


def data_snapshot(data_dir: Path) -> dict[str, list[str]]:
    def listing(*parts: str) -> list[str]:
        path = data_dir.joinpath(*parts)
        return sorted(os.listdir(path)) if path.exists() else []

    return {
        "code": listing("code"),
        "blobs": listing("blobs", "sha256"),
        "blob-staging": listing("blobs", "staging"),
        "code-staging": listing("code-staging"),
    }


def assert_nothing_left_behind(server: KilnServer, before: dict[str, list[str]]):
    after = data_snapshot(server.data_dir)
    assert after["blob-staging"] == [], after
    assert after["code-staging"] == [], after
    # Only new entries count: an unrelated collection may remove old ones meanwhile.
    new_blobs = sorted(set(after["blobs"]) - set(before["blobs"]))
    new_trees = sorted(set(after["code"]) - set(before["code"]))
    assert new_blobs == [], "the request left a blob behind"
    assert new_trees == [], "the request left an extracted tree behind"


def files_named(root: Path, name: str) -> list[Path]:
    found = []
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for entry in filenames + dirnames:
            if entry == name:
                found.append(Path(directory) / entry)
    return found


# --- raw HTTP ---------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def parse_reply(raw: bytes) -> Reply:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return Reply(status, headers, body[:length])


def read_reply(sock: socket.socket) -> Reply:
    data = b""
    while True:
        if b"\r\n\r\n" in data:
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n"):
                if line.startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if len(data.split(b"\r\n\r\n", 1)[1]) >= length:
                break
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    reply = parse_reply(data)
    REPLIES.append(reply)
    return reply


def send_raw(server: KilnServer, request: bytes, timeout: float = 10) -> Reply:
    host, port = server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        return read_reply(sock)


def http(server: KilnServer, method: str, path: str, body: bytes = b"", headers=None) -> Reply:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {server.address}", "Connection: close"]
    merged = {"Content-Type": "application/json", **(headers or {})}
    if body or method in ("POST", "PUT"):
        merged.setdefault("Content-Length", str(len(body)))
    lines += [f"{key}: {value}" for key, value in merged.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return send_raw(server, request)


def assert_aws_error(reply: Reply, status: int, code: str | None = None) -> str:
    """Checks the AWS error shape and returns the message."""
    assert reply.status == status, (reply.status, reply.body[:500])
    assert reply.headers.get("x-amzn-requestid"), reply.headers
    error_type = reply.headers.get("x-amzn-errortype")
    assert error_type, reply.headers
    if code is not None:
        assert error_type == code, (error_type, reply.body[:500])
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    body = reply.json()
    assert isinstance(body, dict), body
    message = body.get("message", body.get("Message"))
    assert isinstance(message, str) and message, body
    if "Type" in body:
        assert body["Type"] in ("User", "Service")
    return message


def create_body(name: str, zip_bytes: bytes = PYTHON_HANDLER_ZIP, **fields) -> dict:
    body = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "handler.handler",
        "Code": {"ZipFile": base64.b64encode(zip_bytes).decode()},
    }
    body.update(fields)
    return body


def assert_function_absent(client, name: str):
    with pytest.raises(ClientError) as raised:
        client.get_function(FunctionName=name)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- malformed bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"FunctionName": ',
        b'{"FunctionName": "x",}',
        b"this is not json",
        b"\xff\xfe\x00\x01",
        b"[" * 100_000,
        b'{"a":' * 50_000,
        b"null",
        b"[]",
        b'"a string"',
        b"42",
    ],
    ids=["truncated", "trailing-comma", "text", "binary", "deep-array", "deep-object", "null",
         "array", "string", "number"],
)
def test_malformed_json_is_invalid_request_content(server, body):
    reply = http(server, "POST", "/2015-03-31/functions", body)
    message = assert_aws_error(reply, 400, "InvalidRequestContentException")
    assert message.startswith("Could not parse request body into json"), message
    assert reply.json()["Type"] == "User"


def test_malformed_json_on_updates_and_tags_leaves_function_alone(server, client, name):
    before = client.create_function(**{
        "FunctionName": name, "Runtime": "python3.12", "Role": ROLE,
        "Handler": "handler.handler", "Code": {"ZipFile": PYTHON_HANDLER_ZIP},
    })
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
    )
    settled = client.get_function_configuration(FunctionName=name)
    for method, path in [
        ("PUT", f"/2015-03-31/functions/{name}/configuration"),
        ("PUT", f"/2015-03-31/functions/{name}/code"),
        ("POST", f"/2017-03-31/tags/{ARN_PREFIX}{name}".replace(":", "%3A")),
    ]:
        reply = http(server, method, path, b'{"Timeout": 5,')
        assert_aws_error(reply, 400, "InvalidRequestContentException")
    after = client.get_function_configuration(FunctionName=name)
    assert after["RevisionId"] == settled["RevisionId"]
    assert after["Timeout"] == before["Timeout"]
    assert client.list_tags(Resource=ARN_PREFIX + name)["Tags"] == {}


HANDLER_ZIP_B64 = base64.b64encode(PYTHON_HANDLER_ZIP).decode()


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"MemorySize": "abc"}, id="memory-string"),
        pytest.param({"Timeout": []}, id="timeout-array"),
        pytest.param({"Timeout": {"seconds": 3}}, id="timeout-object"),
        pytest.param({"MemorySize": 99999999999999999999999}, id="memory-overflow"),
        pytest.param({"Environment": "KEY=value"}, id="environment-string"),
        pytest.param({"Environment": {"Variables": ["KEY", "value"]}}, id="variables-array"),
        pytest.param({"Tags": ["a", "b"]}, id="tags-array"),
        pytest.param({"FunctionName": {"name": "x"}}, id="name-object"),
        pytest.param({"Code": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}, id="code-string"),
        pytest.param({"Architectures": "x86_64"}, id="architectures-string"),
        pytest.param({"EphemeralStorage": {"Size": "big"}}, id="storage-size-string"),
        pytest.param({"Publish": "yes"}, id="publish-string"),
        # Arrays where objects belong: JSON parsers that map arrays onto structs by position
        # must not accept these.
        pytest.param({"TracingConfig": ["Active"]}, id="tracing-array"),
        pytest.param({"EphemeralStorage": [1024]}, id="storage-array"),
        pytest.param({"Code": [HANDLER_ZIP_B64, None, None, None, None]}, id="code-array"),
    ],
)
def test_wrong_json_types_are_refused(server, client, name, fields):
    body = create_body(name, **fields)
    reply = http(server, "POST", "/2015-03-31/functions", json.dumps(body).encode())
    message = assert_aws_error(reply, 400, "InvalidRequestContentException")
    assert message.startswith("Could not parse request body into json"), message
    real_name = body["FunctionName"] if isinstance(body["FunctionName"], str) else name
    assert_function_absent(client, real_name)


def test_zip_file_that_is_not_base64_is_refused(server, client, name):
    body = create_body(name)
    body["Code"]["ZipFile"] = "%%% not base64 %%%"
    reply = http(server, "POST", "/2015-03-31/functions", json.dumps(body).encode())
    assert_aws_error(reply, 400, "InvalidRequestContentException")
    assert_function_absent(client, name)


def test_missing_required_fields_are_validation_errors(server):
    reply = http(server, "POST", "/2015-03-31/functions", b"{}")
    message = assert_aws_error(reply, 400, "ValidationException")
    assert message.startswith("3 validation errors detected: "), message
    for field in ("functionName", "role", "code"):
        assert (
            f"Value null at '{field}' failed to satisfy constraint: Member must not be null"
            in message
        )


# --- oversized bodies -------------------------------------------------------------------------


def test_declared_oversized_body_is_refused_without_reading_it(server):
    host, port = server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            (
                "POST /2015-03-31/functions HTTP/1.1\r\n"
                f"Host: {server.address}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {CREATE_BODY_LIMIT + 1}\r\n\r\n"
                '{"FunctionName": "x", "Code": {"ZipFile": "'
            ).encode()
        )
        started = time.monotonic()
        reply = read_reply(sock)
        assert time.monotonic() - started < 5, "the server waited for a body it must refuse"
    message = assert_aws_error(reply, 413, "RequestEntityTooLargeException")
    assert message == (
        f"Request must be smaller than {CREATE_BODY_LIMIT} bytes for the CreateFunction operation"
    )


def test_declared_oversized_update_code_body_is_refused(server):
    reply = send_raw(
        server,
        (
            "PUT /2015-03-31/functions/anything/code HTTP/1.1\r\n"
            f"Host: {server.address}\r\n"
            f"Content-Length: {CREATE_BODY_LIMIT + 1}\r\n\r\n{{"
        ).encode(),
    )
    message = assert_aws_error(reply, 413, "RequestEntityTooLargeException")
    assert message == (
        f"Request must be smaller than {CREATE_BODY_LIMIT} bytes for the UpdateFunctionCode "
        "operation"
    )


def stream_chunked(server: KilnServer, method: str, path: str, total: int) -> Reply:
    """Really sends `total` bytes as a chunked body (no length declared up front), reading the
    reply concurrently since the server may answer before the upload ends."""
    host, port = server.address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    replies: list[Reply] = []
    failures: list[BaseException] = []

    def reader():
        try:
            replies.append(read_reply(sock))
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    thread = threading.Thread(target=reader)
    try:
        sock.sendall(
            (
                f"{method} {path} HTTP/1.1\r\nHost: {server.address}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        thread.start()
        prefix = b'{"FunctionName":"streamed","Description":"'
        piece_size = 1 << 20
        filler = b"A" * piece_size
        sent = 0
        try:
            while sent < total:
                piece = (prefix if sent == 0 else b"") + filler
                piece = piece[: min(piece_size, total - sent)]
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                sent += len(piece)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # The server answered and closed early: fine.
        thread.join(30)
    finally:
        sock.close()
    assert not failures, failures
    assert replies, "no reply to an oversized streamed body"
    return replies[0]


def test_streamed_body_over_the_create_limit_is_refused(server, client):
    before = data_snapshot(server.data_dir)
    reply = stream_chunked(server, "POST", "/2015-03-31/functions", CREATE_BODY_LIMIT + 1024)
    message = assert_aws_error(reply, 413, "RequestEntityTooLargeException")
    assert message == (
        f"Request must be smaller than {CREATE_BODY_LIMIT} bytes for the CreateFunction operation"
    )
    assert_function_absent(client, "streamed")
    assert_nothing_left_behind(server, before)


def test_oversized_body_on_a_small_operation_is_refused(server):
    size = 7 * 1024 * 1024
    reply = stream_chunked(server, "PUT", "/2015-03-31/functions/anything/configuration", size)
    assert_aws_error(reply, 413, "RequestEntityTooLargeException")
    # The same size declared up front on UpdateFunctionConfiguration is refused too.
    reply = send_raw(
        server,
        (
            "PUT /2015-03-31/functions/anything/configuration HTTP/1.1\r\n"
            f"Host: {server.address}\r\nContent-Length: {size}\r\n\r\n{{"
        ).encode(),
    )
    assert_aws_error(reply, 413, "RequestEntityTooLargeException")


def stored_zip_of_size(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return 1\n")
        archive.writestr("padding.bin", bytes(size))
    return buffer.getvalue()


def test_zip_over_50_mb_is_refused_and_leaves_nothing(server, client, name):
    zip_bytes = stored_zip_of_size(52_428_800)
    assert len(zip_bytes) > 52_428_800
    before = data_snapshot(server.data_dir)
    with pytest.raises(ClientError) as raised:
        client.create_function(
            FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="handler.handler",
            Code={"ZipFile": zip_bytes},
        )
    error = raised.value.response
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Message"] == "Zipped size must be smaller than 52428800 bytes"
    assert_function_absent(client, name)
    assert_nothing_left_behind(server, before)


# --- hostile zips -----------------------------------------------------------------------------


def zip_with_entries(entries: list[tuple[str, bytes, int]]) -> bytes:
    """A zip whose entries are (name, content, unix mode incl. file type), written verbatim."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry_name, content, mode in entries:
            info = zipfile.ZipInfo(entry_name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode bits count
            info.external_attr = mode << 16
            archive.writestr(info, content)
    data = buffer.getvalue()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names == [entry[0] for entry in entries], names  # nothing sanitised on the way
    return data


HANDLER = (b"def handler(event, context):\n    return 1\n", 0o100644)
SYMLINK = 0o120777


def hostile_zips(marker: str) -> dict[str, bytes]:
    handler = ("handler.py", *HANDLER)
    return {
        "parent-traversal": zip_with_entries([handler, (f"../{marker}", b"escaped", 0o100644)]),
        "deep-traversal": zip_with_entries(
            [handler, (f"lib/../../../../{marker}", b"escaped", 0o100644)]
        ),
        "absolute-path": zip_with_entries(
            [handler, (f"/tmp/{marker}", b"escaped", 0o100644)]
        ),
        "symlink-to-parent": zip_with_entries(
            [handler, (marker, b"../../../../../../etc/passwd", SYMLINK)]
        ),
        "symlink-absolute": zip_with_entries([handler, (marker, b"/etc/passwd", SYMLINK)]),
        "symlink-climbing-from-subdir": zip_with_entries(
            [handler, (f"lib/{marker}", b"../../outside", SYMLINK)]
        ),
        "symlink-then-write-through": zip_with_entries(
            [handler, ("lib", b"../../../tmp", SYMLINK), (f"lib/{marker}", b"x", 0o100644)]
        ),
    }


def corrupt_crc_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("handler.py", b"A" * 4096)
    data = bytearray(buffer.getvalue())
    offset = data.index(b"A" * 64)
    data[offset + 100] = ord("B")  # same length, wrong CRC
    return bytes(data)


def garbage_payloads() -> dict[str, bytes]:
    valid = make_zip({"handler.py": os.urandom(20_000)})
    return {
        "garbage-bytes": os.urandom(4096),
        "text": b"definitely not a zip archive\n" * 10,
        "empty": b"",
        "truncated": valid[: len(valid) // 2],
        "only-local-header": valid[:30],
        "corrupt-crc": corrupt_crc_zip(),
    }


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """300 MB of zeros deflated to a few hundred KB; Lambda's unzipped limit is 262144000."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return 1\n")
        with archive.open("zeros.bin", "w", force_zip64=True) as entry:
            block = bytes(1 << 20)
            for _ in range(300):
                entry.write(block)
    data = buffer.getvalue()
    assert len(data) < 2_000_000
    return data


def refused_create(client, name: str, zip_bytes: bytes) -> dict:
    with pytest.raises(ClientError) as raised:
        client.create_function(
            FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="handler.handler",
            Code={"ZipFile": zip_bytes},
        )
    return raised.value.response


@pytest.mark.parametrize("case", list(hostile_zips("marker")))
def test_hostile_zip_is_refused_and_leaves_nothing(server, client, name, case):
    marker = f"kiln-escape-{uuid.uuid4().hex}"
    zip_bytes = hostile_zips(marker)[case]
    before = data_snapshot(server.data_dir)
    error = refused_create(client, name, zip_bytes)
    assert error["Error"]["Code"] == "InvalidParameterValueException", error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"].startswith(UNZIP_MESSAGE), error["Error"]["Message"]
    assert_function_absent(client, name)
    assert_nothing_left_behind(server, before)
    sandbox = server.data_dir.parent.parent
    assert files_named(sandbox, marker) == []
    assert not Path("/tmp", marker).exists()


@pytest.mark.parametrize("case", list(garbage_payloads()))
def test_garbage_zip_is_refused_and_leaves_nothing(server, client, name, case):
    zip_bytes = garbage_payloads()[case]
    before = data_snapshot(server.data_dir)
    error = refused_create(client, name, zip_bytes)
    assert error["Error"]["Code"] == "InvalidParameterValueException", error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"] == UNZIP_MESSAGE
    assert_function_absent(client, name)
    assert_nothing_left_behind(server, before)


def test_zip_bomb_is_refused_and_leaves_nothing(server, client, name, zip_bomb):
    before = data_snapshot(server.data_dir)
    error = refused_create(client, name, zip_bomb)
    assert error["Error"]["Code"] == "InvalidParameterValueException", error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"] == "Unzipped size must be smaller than 262144000 bytes"
    assert_function_absent(client, name)
    assert_nothing_left_behind(server, before)


def test_hostile_code_updates_keep_the_old_code(server, client, name, zip_bomb):
    client.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="handler.handler",
        Code={"ZipFile": PYTHON_HANDLER_ZIP},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
    )
    settled = client.get_function_configuration(FunctionName=name)
    marker = f"kiln-escape-{uuid.uuid4().hex}"
    payloads = {**hostile_zips(marker), **garbage_payloads(), "bomb": zip_bomb}
    for case, zip_bytes in payloads.items():
        before = data_snapshot(server.data_dir)
        with pytest.raises(ClientError) as raised:
            client.update_function_code(FunctionName=name, ZipFile=zip_bytes)
        error = raised.value.response
        assert error["Error"]["Code"] == "InvalidParameterValueException", (case, error)
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400, case
        assert_nothing_left_behind(server, before)
        now = client.get_function_configuration(FunctionName=name)
        assert now["CodeSha256"] == settled["CodeSha256"], case
        assert now["RevisionId"] == settled["RevisionId"], case
        assert now["LastUpdateStatus"] == "Successful", case
    assert files_named(server.data_dir.parent.parent, marker) == []


def test_symlinks_inside_the_package_are_accepted(server, client, name):
    zip_bytes = zip_with_entries(
        [
            ("handler.py", *HANDLER),
            ("lib/", b"", 0o040755),
            ("lib/data.txt", b"hello", 0o100644),
            ("current", b"lib/data.txt", SYMLINK),
            ("lib/up", b"../handler.py", SYMLINK),
        ]
    )
    created = client.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="handler.handler",
        Code={"ZipFile": zip_bytes},
    )
    assert created["CodeSize"] == len(zip_bytes)
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
    )


def test_dry_run_code_update_leaves_nothing(server, client, name):
    client.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="handler.handler",
        Code={"ZipFile": PYTHON_HANDLER_ZIP},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
    )
    settled = client.get_function_configuration(FunctionName=name)
    before = data_snapshot(server.data_dir)
    candidate = make_zip({"handler.py": f"# dry run {uuid.uuid4()}\n"})
    client.update_function_code(FunctionName=name, ZipFile=candidate, DryRun=True)
    now = client.get_function_configuration(FunctionName=name)
    assert now["CodeSha256"] == settled["CodeSha256"]
    assert now["RevisionId"] == settled["RevisionId"]
    # A dry run changes nothing, on disk either.
    assert_nothing_left_behind(server, before)


def slow_to_extract_zip() -> bytes:
    """A distinct package that uploads in a moment but takes the server a while to extract
    (64 MB of zeros, deflated), which widens the window in which creates race."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("handler.py", f"# {uuid.uuid4()}\n")
        with archive.open("zeros.bin", "w") as entry:
            block = bytes(1 << 20)
            for _ in range(64):
                entry.write(block)
    return buffer.getvalue()


def test_losing_a_create_race_leaves_nothing(server, name):
    """Concurrent creates of one name: one wins, the others get 409 and their packages must
    not stay on disk."""
    contenders = 4
    zips = [slow_to_extract_zip() for _ in range(contenders)]
    clients = [make_lambda_client(server.url) for _ in range(contenders)]
    before = data_snapshot(server.data_dir)
    barrier = threading.Barrier(contenders)
    outcomes: list[str] = [""] * contenders

    def contend(index: int):
        barrier.wait()
        try:
            clients[index].create_function(
                FunctionName=name, Runtime="python3.12", Role=ROLE,
                Handler="handler.handler", Code={"ZipFile": zips[index]},
            )
            outcomes[index] = "created"
        except ClientError as error:
            outcomes[index] = error.response["Error"]["Code"]

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["ResourceConflictException"] * (contenders - 1) + ["created"]
    winner_digest = hashlib.sha256(zips[outcomes.index("created")]).hexdigest()
    after = data_snapshot(server.data_dir)
    assert after["blob-staging"] == [] and after["code-staging"] == []
    assert sorted(set(after["blobs"]) - set(before["blobs"])) == [f"{winner_digest}.zip"]
    assert sorted(set(after["code"]) - set(before["code"])) == [winner_digest]


def test_concurrent_updates_with_one_revision_id_have_one_winner(server, client, name):
    """Optimistic locking under contention: of several code updates that all carry the same
    RevisionId, exactly one applies; the others get 412 and leave nothing on disk."""
    client.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="handler.handler",
        Code={"ZipFile": PYTHON_HANDLER_ZIP},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
    )
    revision = client.get_function_configuration(FunctionName=name)["RevisionId"]
    contenders = 4
    zips = [slow_to_extract_zip() for _ in range(contenders)]
    clients = [make_lambda_client(server.url) for _ in range(contenders)]
    before = data_snapshot(server.data_dir)
    barrier = threading.Barrier(contenders)
    outcomes: list[str] = [""] * contenders

    def contend(index: int):
        barrier.wait()
        try:
            clients[index].update_function_code(
                FunctionName=name, ZipFile=zips[index], RevisionId=revision
            )
            outcomes[index] = "updated"
        except ClientError as error:
            outcomes[index] = error.response["Error"]["Code"]

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["PreconditionFailedException"] * (contenders - 1) + ["updated"]
    winner = zips[outcomes.index("updated")]
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
    )
    current = client.get_function_configuration(FunctionName=name)
    assert current["CodeSha256"] == base64.b64encode(hashlib.sha256(winner).digest()).decode()
    winner_digest = hashlib.sha256(winner).hexdigest()
    # Give the collection of the replaced package a moment, then nothing but the winner is new.
    deadline = time.monotonic() + 5
    while True:
        after = data_snapshot(server.data_dir)
        new_blobs = sorted(set(after["blobs"]) - set(before["blobs"]))
        if new_blobs == [f"{winner_digest}.zip"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after["blob-staging"] == [] and after["code-staging"] == []
    assert new_blobs == [f"{winner_digest}.zip"]
    assert sorted(set(after["code"]) - set(before["code"])) == [winner_digest]


# --- routes and paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/2015-03-31/functionz"),
        ("PATCH", "/2015-03-31/functions"),
        ("GET", "/2099-01-01/functions"),
        ("GET", "/_kiln/nope"),
        ("POST", "/_kiln/health"),
        ("GET", "/_kiln/code/../kiln.db"),
        ("GET", "/_kiln/code/..%2fkiln.db"),
    ],
)
def test_unknown_paths_are_404_json(server, method, path):
    reply = http(server, method, path)
    assert_aws_error(reply, 404, "UnknownOperationException")
    assert b"SQLite" not in reply.body


@pytest.mark.parametrize(
    "path",
    [
        "/_kiln/code/" + "0" * 64 + ".zip",
        "/_kiln/code/" + "g" * 64 + ".zip",
        "/_kiln/code/%2e%2e%2f%2e%2e%2fkiln.db.zip",
        "/_kiln/code/" + "A" * 64 + ".zip",
    ],
)
def test_code_downloads_only_serve_stored_packages(server, path):
    reply = http(server, "GET", path)
    assert_aws_error(reply, 404)
    assert b"SQLite" not in reply.body


def test_unimplemented_operation_is_501(server):
    reply = http(server, "GET", "/2015-03-31/functions/some-function/policy")
    message = assert_aws_error(reply, 501, "NotImplementedException")
    assert "GetPolicy" in message


@pytest.mark.parametrize(
    "segment, code",
    [
        ("%ff", "InvalidRequestContentException"),
        ("%C0%AF", "InvalidRequestContentException"),
        ("%zz", None),
        ("abc%2", None),
        ("%", None),
        ("x%00y", None),
    ],
)
def test_invalid_percent_encoding_in_path_is_400(server, segment, code):
    reply = http(server, "GET", f"/2015-03-31/functions/{segment}")
    assert_aws_error(reply, 400, code)


def test_invalid_query_values_are_400(server):
    for query, code in [
        ("MaxItems=abc", "InvalidRequestContentException"),
        ("MaxItems=%ff", "InvalidRequestContentException"),
        ("MaxItems=0", "ValidationException"),
        ("MaxItems=-5", "ValidationException"),
        ("MaxItems=99999999999999999999999", "InvalidRequestContentException"),
        ("FunctionVersion=SOME", "ValidationException"),
        ("Marker=%00%01", "InvalidParameterValueException"),
    ]:
        reply = http(server, "GET", f"/2015-03-31/functions?{query}")
        assert_aws_error(reply, 400, code)


def test_protocol_level_garbage_does_not_hurt_the_server(server):
    for request, status in [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        (
            b"GET /2015-03-31/functions/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
        ),
        (
            b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-Header-%d: v\r\n" % index for index in range(150))
            + b"\r\n",
            431,
        ),
    ]:
        host, port = server.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert data.startswith(b"HTTP/1.1 %d " % status), data[:200]
    assert http(server, "GET", "/_kiln/health").status == 200


# --- after all of that ------------------------------------------------------------------------


def test_every_error_reply_carries_a_unique_request_id(server):
    # A spread of refusals of every kind; replies from earlier tests in this module count too.
    for method, path, body in [
        ("GET", "/", b""),
        ("GET", "/_kiln/nope", b""),
        ("GET", "/_kiln/code/" + "0" * 64 + ".zip", b""),
        ("POST", "/2015-03-31/functions", b"{"),
        ("POST", "/2015-03-31/functions", b"{}"),
        ("POST", "/2015-03-31/functions", json.dumps(create_body("x", Timeout=5000)).encode()),
        ("GET", "/2015-03-31/functions/%ff", b""),
        ("GET", "/2015-03-31/functions/missing-function", b""),
        ("GET", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012"
                "%3Afunction%3Ax", b""),
        ("GET", "/2015-03-31/functions/x/policy", b""),
        ("PUT", "/2015-03-31/functions/missing-function/configuration", b"{}"),
        ("DELETE", "/2015-03-31/functions/missing-function", b""),
        ("GET", "/2015-03-31/functions?MaxItems=0", b""),
    ]:
        http(server, method, path, body)
    errors = [reply for reply in REPLIES if reply.status >= 400]
    assert len(errors) >= 13
    ids = [reply.headers.get("x-amzn-requestid") for reply in errors]
    assert all(ids), [reply.status for reply in errors if not reply.headers.get("x-amzn-requestid")]
    assert len(set(ids)) == len(ids)
    statuses = {reply.status for reply in errors}
    assert {400, 403, 404, 501} <= statuses


def test_server_survives_everything(server, client):
    assert server.process.poll() is None, "kiln exited"
    reply = http(server, "GET", "/_kiln/health")
    assert reply.status == 200
    assert reply.json()["status"] == "ok"
    after = data_snapshot(server.data_dir)
    assert after["blob-staging"] == [] and after["code-staging"] == []
    # And it still does real work.
    name = f"survivor-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="handler.handler",
        Code={"ZipFile": PYTHON_HANDLER_ZIP},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
    )
