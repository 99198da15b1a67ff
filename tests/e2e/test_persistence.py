"""Durability: what Kiln acknowledged survives `kill -9`, interrupted work is either complete
or absent after a restart, shutdown on SIGTERM is clean, and one data directory has one server.

Every test runs its own server on its own data directory.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import make_lambda_client
from kiln_harness import (
    ACCOUNT_ID,
    PYTHON_HANDLER_ZIP,
    REGION,
    ROLE,
    KilnServer,
    kiln_binary,
    make_zip,
)

ARN_PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
FAST = {"Delay": 0.05, "MaxAttempts": 200}


@pytest.fixture
def server(tmp_path):
    kiln = KilnServer(tmp_path / "data").start()
    yield kiln
    if kiln.process is not None:
        kiln.kill9()


def code_sha256(zip_bytes: bytes) -> str:
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def unique_zip(size: int = 0) -> bytes:
    return make_zip(
        {
            "handler.py": "def handler(event, context):\n    return event\n",
            "marker.txt": f"{uuid.uuid4()}",
            **({"payload.bin": os.urandom(size)} if size else {}),
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


def wait_active(client, name: str):
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)


def wait_updated(client, name: str):
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST)


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read()


def exists(client, name: str) -> bool:
    try:
        client.get_function(FunctionName=name)
        return True
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceNotFoundException", error.response
        return False


def all_listed(client) -> list[dict]:
    return [
        entry
        for page in client.get_paginator("list_functions").paginate()
        for entry in page["Functions"]
    ]


def disk_state(data_dir) -> dict[str, list[str]]:
    def listing(*parts):
        path = data_dir.joinpath(*parts)
        return sorted(os.listdir(path)) if path.exists() else []

    return {
        "blobs": listing("blobs", "sha256"),
        "code": listing("code"),
        "blob-staging": listing("blobs", "staging"),
        "code-staging": listing("code-staging"),
    }


def assert_disk_matches_functions(server: KilnServer, client, zips_by_digest: dict[str, bytes]):
    """The blob store and extraction cache hold exactly the packages functions use."""
    used = {
        hashlib.sha256(zips_by_digest[config["CodeSha256"]]).hexdigest()
        for config in all_listed(client)
        if config["CodeSha256"] in zips_by_digest
    }
    state = disk_state(server.data_dir)
    assert state["blob-staging"] == [], state
    assert state["code-staging"] == [], state
    assert set(state["blobs"]) == {f"{digest}.zip" for digest in used}
    assert set(state["code"]) == used


def snapshot(client, names: list[str]) -> dict:
    state = {}
    for name in names:
        got = client.get_function(FunctionName=name)
        got.pop("ResponseMetadata")
        tags = client.list_tags(Resource=ARN_PREFIX + name)
        tags.pop("ResponseMetadata")
        state[name] = {"function": got, "tags": tags}
    state["__list__"] = sorted(all_listed(client), key=lambda entry: entry["FunctionName"])
    settings = client.get_account_settings()
    settings.pop("ResponseMetadata")
    state["__settings__"] = settings
    return state


# --- kill -9 of a settled server --------------------------------------------------------------


def test_everything_survives_kill9(server):
    client = make_lambda_client(server.url)
    zips = {name: unique_zip() for name in ("tagged", "reconfigured", "recoded", "plain")}
    new_code = unique_zip()

    create(
        client, "tagged", zips["tagged"],
        Tags={"team": "kiln", "env": "durable"},
        Environment={"Variables": {"GREETING": "hello", "EMPTY": ""}},
        Description="tags and variables",
    )
    create(client, "reconfigured", zips["reconfigured"])
    create(client, "recoded", zips["recoded"], Tags={"drop": "me", "keep": "me"})
    create(
        client, "plain", zips["plain"],
        Architectures=["arm64"],
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"},
        TracingConfig={"Mode": "Active"},
        MemorySize=512, Timeout=30, EphemeralStorage={"Size": 1024},
    )
    for name in zips:
        wait_active(client, name)
    client.update_function_configuration(
        FunctionName="reconfigured",
        MemorySize=2048,
        Environment={"Variables": {"MODE": "updated"}},
        Description="updated once",
    )
    wait_updated(client, "reconfigured")
    client.update_function_code(FunctionName="recoded", ZipFile=new_code)
    wait_updated(client, "recoded")
    client.untag_resource(Resource=ARN_PREFIX + "recoded", TagKeys=["drop"])
    client.tag_resource(Resource=ARN_PREFIX + "recoded", Tags={"added": "later"})

    names = sorted(zips)
    before = snapshot(client, names)
    server.kill9()
    server.restart()
    client = make_lambda_client(server.url)
    after = snapshot(client, names)

    for name in names:
        assert after[name] == before[name], name
    assert after["__list__"] == before["__list__"]
    assert after["__settings__"] == before["__settings__"]
    assert after["recoded"]["tags"] == {"Tags": {"keep": "me", "added": "later"}}
    assert after["reconfigured"]["function"]["Configuration"]["MemorySize"] == 2048

    expected_code = {**zips, "recoded": new_code}
    for name in names:
        configuration = after[name]["function"]["Configuration"]
        assert configuration["State"] == "Active"
        assert configuration["LastUpdateStatus"] == "Successful"
        assert configuration["CodeSha256"] == code_sha256(expected_code[name])
        assert download(after[name]["function"]["Code"]["Location"]) == expected_code[name]
    by_digest = {code_sha256(z): z for z in expected_code.values()}
    assert_disk_matches_functions(server, client, by_digest)

    # The RevisionIds from before the crash are still the live ones.
    revision = before["reconfigured"]["function"]["Configuration"]["RevisionId"]
    updated = client.update_function_configuration(
        FunctionName="reconfigured", Timeout=11, RevisionId=revision
    )
    assert updated["Timeout"] == 11
    wait_updated(client, "reconfigured")
    client.delete_function(FunctionName="plain")
    assert not exists(client, "plain")


def test_restart_cleans_crash_leftovers(server):
    client = make_lambda_client(server.url)
    zip_bytes = unique_zip()
    create(client, "keeper", zip_bytes)
    wait_active(client, "keeper")
    server.kill9()

    # What a crash in the middle of storing code can leave behind.
    data = server.data_dir
    (data / "blobs" / "staging" / f"{'ab' * 32}.{uuid.uuid4()}").write_bytes(b"half a blob")
    partial_tree = data / "code-staging" / f"{'cd' * 32}.{uuid.uuid4()}" / "tree" / "lib"
    partial_tree.mkdir(parents=True)
    (partial_tree / "file.py").write_text("partial")
    os.chmod(partial_tree, 0o555)  # read-only directories, as packages may contain
    orphan = "ef" * 32
    (data / "blobs" / "sha256" / f"{orphan}.zip").write_bytes(b"unreferenced")
    (data / "code" / orphan / "tree").mkdir(parents=True)
    (data / "code" / orphan / "size").write_text("12")

    server.restart()
    client = make_lambda_client(server.url)
    assert_disk_matches_functions(server, client, {code_sha256(zip_bytes): zip_bytes})
    got = client.get_function(FunctionName="keeper")
    assert download(got["Code"]["Location"]) == zip_bytes


# --- kill -9 in the middle of work ------------------------------------------------------------


def test_kill9_during_concurrent_creates(server):
    count = 120
    names = [f"crash-{index:03d}" for index in range(count)]
    zips = {name: unique_zip(size=64 * 1024) for name in names}
    pending = list(reversed(names))
    lock = threading.Lock()
    acknowledged: set[str] = set()
    stop = threading.Event()

    def worker():
        client = make_lambda_client(server.url)
        while not stop.is_set():
            with lock:
                if not pending:
                    return
                name = pending.pop()
            try:
                create(client, name, zips[name])
            except Exception:  # noqa: BLE001 - the server is being killed
                continue
            with lock:
                acknowledged.add(name)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 30 and time.monotonic() < deadline:
        time.sleep(0.001)
    server.kill9()
    stop.set()
    for thread in threads:
        thread.join(30)
    killed_after = len(acknowledged)
    assert 30 <= killed_after < count, "the kill should land in the middle of the creates"

    server.restart()
    client = make_lambda_client(server.url)
    present = [name for name in names if exists(client, name)]
    # Nothing acknowledged is lost.
    assert acknowledged <= set(present)
    for name in present:
        # Either complete: active, with exactly the uploaded code ...
        wait_active(client, name)
        got = client.get_function(FunctionName=name)
        assert got["Configuration"]["CodeSha256"] == code_sha256(zips[name])
        assert got["Configuration"]["LastUpdateStatus"] == "Successful"
        assert download(got["Code"]["Location"]) == zips[name]
    # ... or absent, with nothing of it left on disk.
    by_digest = {code_sha256(z): z for z in zips.values()}
    assert_disk_matches_functions(server, client, by_digest)

    for name in names:
        if name not in present:
            created = create(client, name, zips[name])
            assert created["CodeSha256"] == code_sha256(zips[name])
    for name in names:
        wait_active(client, name)
    listed = [entry["FunctionName"] for entry in all_listed(client)]
    assert sorted(listed) == names
    assert client.get_account_settings()["AccountUsage"]["FunctionCount"] == count
    assert_disk_matches_functions(server, client, by_digest)


def test_kill9_during_code_updates(server):
    client = make_lambda_client(server.url)
    versions = [unique_zip(size=256 * 1024) for _ in range(40)]
    create(client, "churn", versions[0])
    wait_active(client, "churn")
    acknowledged = [0]
    stop = threading.Event()

    def updater():
        worker_client = make_lambda_client(server.url)
        for index in range(1, len(versions)):
            if stop.is_set():
                return
            try:
                worker_client.update_function_code(FunctionName="churn", ZipFile=versions[index])
                acknowledged.append(index)
                wait_updated(worker_client, "churn")
            except Exception:  # noqa: BLE001 - the server is being killed
                return

    thread = threading.Thread(target=updater)
    thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 6 and time.monotonic() < deadline:
        time.sleep(0.001)
    server.kill9()
    stop.set()
    thread.join(30)
    last_acknowledged = acknowledged[-1]
    assert last_acknowledged >= 5

    server.restart()
    client = make_lambda_client(server.url)
    wait_updated(client, "churn")
    configuration = client.get_function_configuration(FunctionName="churn")
    assert configuration["State"] == "Active"
    assert configuration["LastUpdateStatus"] == "Successful"
    digests = [code_sha256(z) for z in versions]
    current = digests.index(configuration["CodeSha256"])
    # The last acknowledged update, or the one in flight when the server died.
    assert current in (last_acknowledged, last_acknowledged + 1)
    location = client.get_function(FunctionName="churn")["Code"]["Location"]
    assert download(location) == versions[current]
    assert_disk_matches_functions(server, client, dict(zip(digests, versions)))


# --- clean shutdown and the data directory lock -----------------------------------------------


def test_sigterm_exits_zero_and_keeps_data(server):
    client = make_lambda_client(server.url)
    create(client, "survivor", Tags={"k": "v"})
    wait_active(client, "survivor")
    before = client.get_function(FunctionName="survivor")
    before.pop("ResponseMetadata")
    # An idle keep-alive connection from the client is open: shutdown must not wait on it.
    assert server.stop() == 0
    server.restart()
    client = make_lambda_client(server.url)
    after = client.get_function(FunctionName="survivor")
    after.pop("ResponseMetadata")
    assert after == before
    assert server.stop() == 0


def test_sigterm_with_a_stalled_client_still_exits(server):
    host, port = server.address.rsplit(":", 1)
    head_only = socket.create_connection((host, int(port)))
    head_only.sendall(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\n")
    half_body = socket.create_connection((host, int(port)))
    half_body.sendall(
        b"POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"a\""
    )
    time.sleep(0.2)
    try:
        code = server.stop(timeout=10)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        head_only.close()
        half_body.close()
    assert code is not None, (
        "kiln did not exit within 10 s of SIGTERM while a client stalled mid-request"
    )
    assert code == 0


def test_second_server_on_the_same_data_dir_is_refused(server):
    client = make_lambda_client(server.url)
    create(client, "owned")
    wait_active(client, "owned")
    # Work the first server may have in progress: the second must not touch it.
    in_progress = server.data_dir / "code-staging" / f"{'12' * 32}.{uuid.uuid4()}"
    in_progress.mkdir()

    second = subprocess.run(
        [
            str(kiln_binary()), "serve",
            "--listen", "127.0.0.1:0",
            "--data-dir", str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert second.returncode != 0
    assert "Kiln listening" not in second.stdout
    assert "another kiln is already using the data directory" in second.stderr, second.stderr
    assert str(server.data_dir) in second.stderr
    assert in_progress.exists()

    # The first one is unharmed.
    assert server.process.poll() is None
    wait_active(client, "owned")
    in_progress.rmdir()

    # Once it is gone, the directory is free.
    assert server.stop() == 0
    replacement = KilnServer(server.data_dir).start()
    try:
        assert exists(make_lambda_client(replacement.url), "owned")
    finally:
        assert replacement.stop() == 0


def sandbox_pids_of(server_pid: int) -> list[int]:
    """Processes in the sandbox cgroups of the Kiln process `server_pid` (none without cgroups)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cgroup") as cgroups:
                if f"/kiln-{server_pid}/" in cgroups.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def test_sandboxes_frozen_when_the_server_was_killed_are_gone_after_a_restart(tmp_path):
    """A sandbox frozen between invocations cannot die while frozen, not even of the
    parent-death signal it gets when `kill -9` takes its server: the next Kiln thaws and kills
    what a dead one left behind."""
    kiln = KilnServer(tmp_path / "data", "--freeze-after", "100ms").start()
    try:
        client = make_lambda_client(kiln.url)
        client.create_function(
            FunctionName="frozen", Runtime="python3.12", Role=ROLE, Handler="handler.handler",
            Code={"ZipFile": PYTHON_HANDLER_ZIP},
        )
        client.get_waiter("function_active_v2").wait(FunctionName="frozen", WaiterConfig=FAST)
        assert client.invoke(FunctionName="frozen", Payload=b'{"a": 1}')["StatusCode"] == 200
        old_pid = kiln.process.pid
        left = sandbox_pids_of(old_pid)
        if not left:
            pytest.skip("no sandbox cgroups on this machine: plain processes die with their server")
        time.sleep(1)  # idle long enough to be frozen
        kiln.kill9()
        time.sleep(0.5)
        kiln.restart()
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") for pid in left):
            assert time.monotonic() < deadline, f"sandbox processes {left} outlived their server"
            time.sleep(0.1)
        assert sandbox_pids_of(old_pid) == []
    finally:
        kiln.stop()
