"""Kiln's Runtime API against runtime clients nobody on the Kiln team wrote.

Three real Lambda runtime interface clients run as `provided.al2023` custom runtimes:

* the Rust `lambda_runtime` crate (crates.io), in tests/functions/rust-lambda, built here with
  cargo into target/functions (cargo caches it across runs);
* awslambdaric (PyPI), the Python runtime interface client, with tests/functions/python-ric;
* aws-lambda-ric (npm), the Node.js runtime interface client, with tests/functions/node-ric.
  Its install builds native code (curl and aws-lambda-cpp need cmake, autoconf, automake,
  libtool, make and g++; node-gyp needs the installed node's headers); scripts/test.sh installs
  the Debian packages. Built once into target/functions and reused.

Every function handles the same events ({"action": "echo" | "error" | "env" | "sleep" | "alloc" |
"crash" | "count" | "tmp"}), so one set of tests covers every client: results, function errors
in the shape each client posts them, the log tail, environment variables and the context object
as each client exposes them, warm reuse, timeouts, out-of-memory kills, crashes mid-invoke and
parallel invocations. Expected values come from sections 6, 8 and 9 of the shared reference.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from kiln_harness import ACCOUNT_ID, REGION, REPO_ROOT, ROLE, make_zip

FUNCTIONS = REPO_ROOT / "tests" / "functions"
# Built artefacts live under target/ (ignored by git), so they are reused between runs.
BUILD_ROOT = REPO_ROOT / "target" / "functions"

AWSLAMBDARIC_VERSION = "4.2.2"  # PyPI; cp311 manylinux wheels, nothing to compile
NODE_RIC_VERSION = "3.3.0"  # npm; pinned in tests/functions/node-ric/package(-lock).json
SANDBOX_PYTHON = "/usr/bin/python3"  # the host's /usr is what the sandbox sees
NODE_BUILD_TOOLS = ("cmake", "autoconf", "automake", "libtoolize", "make", "g++")

ARN_PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
REPORT = re.compile(
    rf"^REPORT RequestId: (?P<id>{UUID})\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: (?P<memory>\d+) MB\tMax Memory Used: \d+ MB\t"
    r"(?:Init Duration: (?P<init>\d+\.\d\d) ms\t)?(?P<status>Status: .*)?$"
)
# X-Ray's header, with the Lineage that recursive loop detection adds (this invocation: 1).
TRACE_ID = re.compile(
    r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01];Lineage=[0-9a-f]{8}:1$"
)


def run_build(command: list[str], what: str, timeout: int, **kwargs) -> float:
    """Runs one build step; fails the session's fixture with the step's output tail."""
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        pytest.fail(f"{what} failed ({' '.join(command)}), exit {result.returncode}:\n{output}")
    return time.monotonic() - started


def zip_directory(root: Path, extra: dict[str, str | bytes], executable: set[str]) -> bytes:
    files: dict[str, bytes | str] = {}
    modes: dict[str, int] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            name = path.relative_to(root).as_posix()
            files[name] = path.read_bytes()
            modes[name] = 0o755 if os.access(path, os.X_OK) else 0o644
    files.update(extra)
    modes.update({name: 0o755 for name in executable})
    return make_zip(files, modes)


@dataclass
class Client:
    """One runtime interface client, packaged as a provided.al2023 function."""

    name: str  # "rust" | "python" | "node": also the handlers' "runtime" and log prefix
    code: bytes
    handler: str

    @property
    def log_prefix(self) -> str:
        return {"rust": "rust-lambda", "python": "python-ric", "node": "node-ric"}[self.name]


# ---------------------------------------------------------------------------------------------
# Building the three functions (session fixtures: each is built at most once a run).


@pytest.fixture(scope="session")
def rust_client() -> Client:
    """tests/functions/rust-lambda on the `lambda_runtime` crate, built with cargo."""
    manifest = FUNCTIONS / "rust-lambda" / "Cargo.toml"
    seconds = run_build(
        [
            "cargo",
            "build",
            "--release",
            "--locked",
            "--manifest-path",
            str(manifest),
            "--target-dir",
            str(BUILD_ROOT),
        ],
        "building the lambda_runtime function",
        timeout=1800,
    )
    print(f"\nrust-lambda built in {seconds:.1f} s")
    binary = (BUILD_ROOT / "release" / "bootstrap").read_bytes()
    return Client("rust", make_zip({"bootstrap": binary}, modes={"bootstrap": 0o755}), "unused")


@pytest.fixture(scope="session")
def python_client() -> Client:
    """awslambdaric from PyPI run by the sandbox's /usr/bin/python3, with python-ric/app.py."""
    if not Path(SANDBOX_PYTHON).exists():
        pytest.skip(f"{SANDBOX_PYTHON} is missing: the awslambdaric function has no interpreter")
    # The wheel must match the interpreter that runs inside the sandbox, not this venv's.
    version = subprocess.run(
        [SANDBOX_PYTHON, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tag = version.replace(".", "")
    package = BUILD_ROOT / f"awslambdaric-{AWSLAMBDARIC_VERSION}-cp{tag}-{platform.machine()}"
    if not (package / ".complete").exists():
        staging = package.with_name(package.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        run_build(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--no-compile",
                "--target",
                str(staging),
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                version,
                "--abi",
                f"cp{tag}",
                "--platform",
                f"manylinux2014_{platform.machine()}",
                f"awslambdaric=={AWSLAMBDARIC_VERSION}",
            ],
            f"pip install awslambdaric=={AWSLAMBDARIC_VERSION}",
            timeout=600,
        )
        shutil.rmtree(staging / "bin", ignore_errors=True)
        (staging / ".complete").write_text(AWSLAMBDARIC_VERSION)
        shutil.rmtree(package, ignore_errors=True)
        staging.rename(package)
    bootstrap = (
        "#!/bin/sh\n"
        "cd $LAMBDA_TASK_ROOT\n"
        "export PYTHONPATH=$LAMBDA_TASK_ROOT\n"
        f"exec {SANDBOX_PYTHON} -m awslambdaric $_HANDLER\n"
    )
    code = zip_directory(
        package,
        {"bootstrap": bootstrap, "app.py": (FUNCTIONS / "python-ric" / "app.py").read_text()},
        {"bootstrap"},
    )
    return Client("python", code, "app.handler")


@pytest.fixture(scope="session")
def node_client() -> Client:
    """aws-lambda-ric from npm (native code built here) with node-ric/index.mjs."""
    source = FUNCTIONS / "node-ric"
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not found: cannot install aws-lambda-ric")
    missing = [tool for tool in NODE_BUILD_TOOLS if not shutil.which(tool)]
    if missing:
        pytest.skip(
            f"npm install aws-lambda-ric@{NODE_RIC_VERSION} needs {', '.join(missing)} to build "
            "curl and aws-lambda-cpp (scripts/test.sh installs cmake autoconf automake libtool)"
        )
    node_version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    # node-gyp must compile against the installed node's headers: it cannot download them here.
    node_dir = Path(node).resolve().parent.parent
    if not (node_dir / "include" / "node" / "common.gypi").exists():
        pytest.skip(
            f"node-gyp needs {node_dir}/include/node (the headers of node {node_version}) to "
            "build aws-lambda-ric's rapid-client.node"
        )
    lock = (source / "package-lock.json").read_bytes()
    build = BUILD_ROOT / f"node-ric-{NODE_RIC_VERSION}-{node_version}-{platform.machine()}"
    stamp = build / ".complete"  # holds the lock file the build was made from
    if not stamp.exists() or stamp.read_bytes() != lock:
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(source / name, build / name)
        seconds = run_build(
            [npm, "ci", "--no-audit", "--no-fund", "--foreground-scripts"],
            f"npm ci (aws-lambda-ric@{NODE_RIC_VERSION})",
            timeout=1800,
            cwd=build,
            env={**os.environ, "npm_config_nodedir": str(node_dir)},
        )
        print(f"\naws-lambda-ric built in {seconds:.1f} s")
        stamp.write_bytes(lock)
    ric = build / "node_modules" / "aws-lambda-ric"
    native = ric / "dist" / "rapid-client.node"
    if not native.exists():
        pytest.fail(f"npm ci finished but {native} was not built")
    # Only what the client needs at run time (the build left ~150 MB of sources behind).
    parts = ["package.json", "bin/index.mjs", *(f"dist/{p.name}" for p in (ric / "dist").iterdir())]
    files: dict[str, str | bytes] = {
        f"node_modules/aws-lambda-ric/{part}": (ric / part).read_bytes() for part in parts
    }
    files["index.mjs"] = (source / "index.mjs").read_text()
    files["bootstrap"] = (
        "#!/bin/sh\n"
        "cd $LAMBDA_TASK_ROOT\n"
        "exec node $LAMBDA_TASK_ROOT/node_modules/aws-lambda-ric/bin/index.mjs $_HANDLER\n"
    )
    return Client("node", make_zip(files, modes={"bootstrap": 0o755}), "index.handler")


CLIENTS = ["rust", "python", "node"]


@pytest.fixture(params=CLIENTS)
def client(request) -> Client:
    return request.getfixturevalue(f"{request.param}_client")


@pytest.fixture(autouse=True)
def delete_function_afterwards(lambda_client, function_name):
    """Deleting the test's function retires its environments in the shared server."""
    yield
    try:
        lambda_client.delete_function(FunctionName=function_name)
    except ClientError:
        pass


# ---------------------------------------------------------------------------------------------
# Helpers


def create(lambda_client, name: str, client: Client, **extra) -> dict:
    extra.setdefault("MemorySize", 512)
    extra.setdefault("Timeout", 10)
    config = lambda_client.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler=client.handler,
        Code={"ZipFile": client.code},
        **extra,
    )
    lambda_client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return config


class Invocation:
    def __init__(self, response: dict, elapsed: float):
        self.response = response
        self.elapsed = elapsed
        self.status = response["StatusCode"]
        self.function_error = response.get("FunctionError")
        self.payload = json.loads(response["Payload"].read())
        tail = response.get("LogResult")
        self.tail = base64.b64decode(tail).decode() if tail else ""

    @property
    def lines(self) -> list[str]:
        return self.tail.splitlines()

    @property
    def report(self) -> re.Match:
        match = REPORT.match(self.lines[-1]) if self.lines else None
        assert match, f"last tail line is not a REPORT line:\n{self.tail}"
        return match

    @property
    def request_id(self) -> str:
        return self.report["id"]


def invoke(lambda_client, name: str, event: dict | None = None, **extra) -> Invocation:
    started = time.monotonic()
    response = lambda_client.invoke(
        FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail", **extra
    )
    return Invocation(response, time.monotonic() - started)


def assert_ok(invocation: Invocation) -> dict:
    assert invocation.status == 200
    assert invocation.function_error is None, (invocation.payload, invocation.tail)
    return invocation.payload


def assert_unhandled(invocation: Invocation, error_type: str) -> dict:
    assert invocation.status == 200
    assert invocation.function_error == "Unhandled", (invocation.payload, invocation.tail)
    assert invocation.payload["errorType"] == error_type, (invocation.payload, invocation.tail)
    assert invocation.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-function-error"] == (
        "Unhandled"
    )
    return invocation.payload


# ---------------------------------------------------------------------------------------------
# The same behaviours, checked on every client.


def test_result_is_the_handlers_return_value(lambda_client, function_name, client):
    create(lambda_client, function_name, client)
    event = {
        "action": "echo",
        "list": [1, "two", {"three": 3.5}, None, True],
        "unicode": "ünïcødé ✓ 🚀",
        "nested": {"deep": {"deeper": []}},
    }
    result = invoke(lambda_client, function_name, event)
    assert_ok(result)
    assert result.response["ExecutedVersion"] == "$LATEST"
    assert result.payload == {"runtime": client.name, "echo": event}


def test_large_event_and_result(lambda_client, function_name, client):
    """About 1 MB each way: bodies big enough for libcurl's and hyper's large-body paths."""
    create(lambda_client, function_name, client)
    event = {"action": "echo", "blob": "x" * 1_000_000}
    result = invoke(lambda_client, function_name, event)
    assert assert_ok(result) == {"runtime": client.name, "echo": event}


ERROR_TYPES = {
    "rust": "&alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>",
    "python": "ValueError",
    "node": "TypeError",
}


def assert_error_shape(client: Client, payload: dict, request_id: str) -> None:
    """The error body exactly as each client posts it to /invocation/{id}/error."""
    if client.name == "rust":
        # lambda_runtime's Diagnostic: errorType is the type name of a reference to the boxed
        # error (hence the "&"), errorMessage its Display; nothing else.
        assert payload == {
            "errorType": ERROR_TYPES["rust"],
            "errorMessage": 'rust handler failed on purpose: "boom"',
        }
    elif client.name == "python":
        # awslambdaric: errorMessage, errorType, requestId and stackTrace (frames as strings).
        assert set(payload) == {"errorMessage", "errorType", "requestId", "stackTrace"}
        assert payload["errorMessage"] == "python handler failed on purpose: boom"
        assert payload["requestId"] == request_id
        assert any("raise ValueError" in frame for frame in payload["stackTrace"]), payload
    else:
        # aws-lambda-ric: errorType (the error's name), errorMessage and trace (stack lines).
        assert set(payload) == {"errorType", "errorMessage", "trace"}
        assert payload["errorMessage"] == 'node handler failed on purpose: "boom"'
        assert payload["trace"][0] == 'TypeError: node handler failed on purpose: "boom"'
        assert any("index.mjs" in line for line in payload["trace"]), payload


def test_function_error_in_the_clients_shape(lambda_client, function_name, client):
    create(lambda_client, function_name, client)
    before = assert_ok(invoke(lambda_client, function_name, {"action": "count"}))
    failed = invoke(lambda_client, function_name, {"action": "error", "message": "boom"})
    payload = assert_unhandled(failed, ERROR_TYPES[client.name])
    assert_error_shape(client, payload, failed.request_id)
    assert failed.lines[0] == f"START RequestId: {failed.request_id} Version: $LATEST"
    assert failed.lines[-2] == f"END RequestId: {failed.request_id}"
    if client.name == "python":
        assert "[ERROR] ValueError: python handler failed on purpose: boom" in failed.tail
    if client.name == "node":
        assert "\tERROR\tInvoke Error \t" in failed.tail
    # A handled error does not cost the environment: its state carries on.
    after = assert_ok(invoke(lambda_client, function_name, {"action": "count"}))
    assert after["token"] == before["token"]
    assert after["count"] == before["count"] + 2


def test_log_tail(lambda_client, function_name, client):
    create(lambda_client, function_name, client)
    first = invoke(lambda_client, function_name, {"action": "echo"})
    assert_ok(first)
    request_id = first.request_id
    lines = first.lines
    start = next(i for i, line in enumerate(lines) if line.startswith("START "))
    assert lines[start] == f"START RequestId: {request_id} Version: $LATEST"
    assert lines[-2] == f"END RequestId: {request_id}"
    body = lines[start + 1 : -2]
    printed = f"{client.log_prefix} action=echo request={request_id}"
    # The runtimes format stdout their own way: awslambdaric leaves print() alone,
    # aws-lambda-ric prefixes console.log with "time\trequestId\tINFO\t".
    assert any(line.endswith(printed) for line in body), first.tail
    if client.name == "node":
        assert any(re.match(rf"^\S+Z\t{request_id}\tINFO\t{printed}$", line) for line in body)
    else:
        assert printed in body
    assert any(line.endswith(f"{client.log_prefix} stderr line") for line in body), first.tail
    if client.name == "python":
        assert any(
            re.match(rf"^\[WARNING\]\t\S+Z\t{request_id}\tpython-ric logger line$", line)
            for line in body
        ), first.tail
    report = first.report
    assert report["memory"] == "512"
    assert report["init"] is not None, "a cold start reports its Init Duration"
    assert report["status"] is None
    second = invoke(lambda_client, function_name, {"action": "echo"})
    assert second.request_id != request_id
    assert second.report["init"] is None, "a warm start has no Init Duration"
    assert request_id not in second.tail


def test_environment_and_context(lambda_client, function_name, client):
    create(
        lambda_client,
        function_name,
        client,
        MemorySize=128,
        Timeout=10,
        Environment={"Variables": {"KILN_TEST_VAR": "from-the-configuration"}},
    )
    client_context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    result = invoke(lambda_client, function_name, {"action": "env"}, ClientContext=client_context)
    payload = assert_ok(result)
    context, env = payload["context"], payload["env"]

    # The request id the client saw is the invocation's, the one in START/END/REPORT.
    assert context["request_id"] == result.request_id
    assert result.lines[0] == f"START RequestId: {result.request_id} Version: $LATEST"
    assert context["invoked_function_arn"] == ARN_PREFIX + function_name
    assert 7_000 < context["remaining_ms"] <= 10_000, context
    assert context["function_name"] == function_name
    # Each client keeps the memory size as it read it: an integer in Rust, a string otherwise.
    assert str(context["memory"]) == "128"
    assert context["version"] == "$LATEST"
    assert context["log_group"] == f"/aws/lambda/{function_name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", context["log_stream"])
    assert context["client_context_custom"] == {"k": "v"}

    assert env["AWS_LAMBDA_FUNCTION_NAME"] == function_name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == context["log_group"]
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == context["log_stream"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == REGION
    assert env["AWS_EXECUTION_ENV"] is None, "not set for provided runtimes"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["TZ"] == ":UTC"
    assert env["_HANDLER"] == client.handler
    assert env["KILN_TEST_VAR"] == "from-the-configuration"
    # Each client copies Lambda-Runtime-Trace-Id into _X_AMZN_TRACE_ID for the invocation.
    assert env["_X_AMZN_TRACE_ID"] and TRACE_ID.match(env["_X_AMZN_TRACE_ID"]), env
    assert payload["cwd"] == "/var/task"


def test_context_of_a_published_version(lambda_client, function_name, client):
    """Invoked by version, the ARN carries the qualifier and the environment its version."""
    create(lambda_client, function_name, client)
    try:
        lambda_client.publish_version(FunctionName=function_name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "NotImplementedException":
            pytest.skip(f"Kiln has no versions yet: {error.response['Error']['Message']}")
        raise
    versioned = invoke(lambda_client, function_name, {"action": "env"}, Qualifier="1")
    payload = assert_ok(versioned)
    assert versioned.response["ExecutedVersion"] == "1"
    assert versioned.lines[0] == f"START RequestId: {versioned.request_id} Version: 1"
    context = payload["context"]
    assert context["request_id"] == versioned.request_id
    assert context["invoked_function_arn"] == f"{ARN_PREFIX}{function_name}:1"
    assert context["version"] == payload["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", context["log_stream"])
    assert context["client_context_custom"] is None


def test_invoke_response_request_id_is_the_invocations(lambda_client, function_name, client):
    """On Lambda, Invoke's x-amzn-RequestId is the request id the runtime gets from /next."""
    create(lambda_client, function_name, client)
    for event in ({"action": "env"}, {"action": "error", "message": "boom"}):
        result = invoke(lambda_client, function_name, event)
        assert result.response["ResponseMetadata"]["RequestId"] == result.request_id, event


def test_back_to_back_invocations_keep_one_environment(lambda_client, function_name, client):
    """Real clients call /next the moment their reply is accepted: that must simply wait."""
    create(lambda_client, function_name, client)
    tokens = set()
    for i in range(20):
        if i % 2:
            assert_unhandled(
                invoke(lambda_client, function_name, {"action": "error", "message": i}),
                ERROR_TYPES[client.name],
            )
        else:
            result = invoke(lambda_client, function_name, {"action": "count"})
            tokens.add(assert_ok(result)["token"])
    assert len(tokens) == 1, "one environment served every invocation"


def test_warm_reuse_keeps_module_state_and_tmp(lambda_client, function_name, client):
    create(lambda_client, function_name, client)
    results = [assert_ok(invoke(lambda_client, function_name, {"action": "tmp"})) for _ in range(3)]
    assert [r["count"] for r in results] == [1, 2, 3]
    assert [r["lines"] for r in results] == [1, 2, 3]
    assert len({r["token"] for r in results}) == 1, "one environment served all three"


def test_timeout(lambda_client, function_name, client):
    create(lambda_client, function_name, client, Timeout=2)
    before = assert_ok(invoke(lambda_client, function_name, {"action": "tmp"}))
    timed_out = invoke(lambda_client, function_name, {"action": "sleep", "ms": 10_000})
    payload = assert_unhandled(timed_out, "Sandbox.Timedout")
    assert payload["errorMessage"] == (
        f"RequestId: {timed_out.request_id} Error: Task timed out after 2.00 seconds"
    )
    assert timed_out.elapsed < 8, "the invocation ends at the timeout, not when the handler does"
    assert timed_out.report["status"] == "Status: timeout"
    assert f"{client.log_prefix} action=sleep" in timed_out.tail
    # The runtime process was replaced (module state is fresh); /tmp is kept, as on Lambda.
    after = assert_ok(invoke(lambda_client, function_name, {"action": "tmp"}))
    assert after["token"] != before["token"]
    assert after["count"] == 1
    assert after["lines"] == 2


def test_out_of_memory(lambda_client, function_name, client):
    create(lambda_client, function_name, client, MemorySize=128, Timeout=30)
    result = invoke(lambda_client, function_name, {"action": "alloc", "mb": 300})
    payload = assert_unhandled(result, "Runtime.OutOfMemory")
    assert "Runtime exited with error: signal: killed" in payload["errorMessage"], payload
    assert result.report["status"] == "Status: error\tError Type: Runtime.OutOfMemory"
    # The next invocation gets a working environment again.
    assert assert_ok(invoke(lambda_client, function_name, {"action": "echo"}))["runtime"] == (
        client.name
    )
    small = assert_ok(invoke(lambda_client, function_name, {"action": "alloc", "mb": 20}))
    assert small["allocated_mb"] == 20


def test_crash_mid_invoke(lambda_client, function_name, client):
    create(lambda_client, function_name, client)
    before = assert_ok(invoke(lambda_client, function_name, {"action": "count"}))
    crashed = invoke(lambda_client, function_name, {"action": "crash", "code": 3})
    payload = assert_unhandled(crashed, "Runtime.ExitError")
    assert payload["errorMessage"] == (
        f"RequestId: {crashed.request_id} Error: Runtime exited with error: exit status 3"
    )
    assert f"{client.log_prefix} exiting with 3" in crashed.tail
    assert crashed.report["status"] == "Status: error\tError Type: Runtime.ExitError"
    after = assert_ok(invoke(lambda_client, function_name, {"action": "count"}))
    assert after["token"] != before["token"], "a new runtime process serves the next invocation"
    assert after["count"] == 1


def test_parallel_invocations(lambda_client, function_name, client):
    create(lambda_client, function_name, client)
    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        results = list(
            pool.map(
                lambda _: invoke(lambda_client, function_name, {"action": "sleep", "ms": 1000}),
                range(6),
            )
        )
    elapsed = time.monotonic() - started
    payloads = [assert_ok(result) for result in results]
    assert all(payload["slept_ms"] == 1000 for payload in payloads)
    assert len({payload["token"] for payload in payloads}) == 6, "six environments"
    assert len({result.request_id for result in results}) == 6
    assert elapsed < 4.0, f"6 parallel 1 s sleeps took {elapsed:.2f} s"


# ---------------------------------------------------------------------------------------------
# Client-specific paths.


def test_rust_panic_is_a_function_error(lambda_client, function_name, rust_client):
    """lambda_runtime catches the panic and posts it; the process (and its state) lives on."""
    create(lambda_client, function_name, rust_client)
    before = assert_ok(invoke(lambda_client, function_name, {"action": "count"}))
    panicked = invoke(lambda_client, function_name, {"action": "panic"})
    panic_type = "&alloc::boxed::Box<dyn core::any::Any + core::marker::Send>"
    payload = assert_unhandled(panicked, panic_type)
    assert payload == {
        "errorType": panic_type,
        "errorMessage": "Lambda panicked: rust handler panicked on purpose",
    }
    after = assert_ok(invoke(lambda_client, function_name, {"action": "count"}))
    assert after["token"] == before["token"]
    assert after["count"] == 3


INIT_ERRORS = {
    # awslambdaric posts /runtime/init/error with Runtime.ImportModuleError, then exits 1.
    "python": (
        "Runtime.ImportModuleError",
        "Unable to import module 'missing_module': No module named 'missing_module'",
    ),
    # aws-lambda-ric posts /runtime/init/error with Runtime.ImportModuleError, then exits.
    "node": ("Runtime.ImportModuleError", "Error: Cannot find module 'missing_module'"),
}


@pytest.mark.parametrize("name", sorted(INIT_ERRORS))
def test_init_error_from_the_client(lambda_client, function_name, request, name):
    client = request.getfixturevalue(f"{name}_client")
    broken = Client(client.name, client.code, "missing_module.handler")
    create(lambda_client, function_name, broken)
    error_type, message = INIT_ERRORS[name]
    for _ in range(2):  # every invocation retries the init, and gets the same error
        result = invoke(lambda_client, function_name, {"action": "echo"})
        payload = assert_unhandled(result, error_type)
        assert payload["errorMessage"].startswith(message), payload
