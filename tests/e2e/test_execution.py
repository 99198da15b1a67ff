"""Running functions, end to end through boto3 against the real `kiln serve`.

Python and Node.js handlers (Kiln's bundled runtimes) and a `provided.al2023` shell bootstrap
(curl against the Runtime API) are checked for what a Lambda user observes: results, error
payloads, the log tail, the environment and context, isolation, warm reuse and parallelism,
timeouts, crashes, OOM kills, payload limits, init errors, updates, and the Invoke API's own
errors. Expected values come from section 5, 6, 8, 9 and 12.2 of the shared reference and from
the AWS recordings (`recordings.py`).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from conftest import make_lambda_client
from kiln_harness import ACCOUNT_ID, REGION, ROLE, KilnServer, make_zip
from recordings import recorded

ARN_PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STREAM = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/\[\$LATEST\]([0-9a-f]{32})$")
REPORT = re.compile(
    rf"^REPORT RequestId: (?P<id>{UUID})\tDuration: (?P<duration>\d+\.\d\d) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB\t"
    r"Max Memory Used: (?P<used>\d+) MB\t(?:Init Duration: (?P<init>\d+\.\d\d) ms\t)?"
    r"(?P<status>Status: .*)?$"
)
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
# X-Ray's header, with the Lineage that recursive loop detection adds (this invocation: 1).
TRACE_ID = re.compile(
    r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01];Lineage=[0-9a-f]{8}:1$"
)
MAX_RESPONSE = 6_291_556

# ---------------------------------------------------------------------------------------------
# Function code, built once for the module.

PYTHON_SOURCE = '''\
import errno
import json
import logging
import os
import sys
import time

COUNT = 0


def echo(event, context):
    return event


def count(event, context):
    global COUNT
    if isinstance(event, dict) and event.get("sleep"):
        print("sleeping", flush=True)
        time.sleep(10)
    COUNT += 1
    with open("/tmp/counts", "a") as counts:
        counts.write(f"{COUNT}\\n")
    with open("/tmp/counts") as counts:
        tmp = counts.read()
    return {"count": COUNT, "tmp": tmp, "stream": context.log_stream_name}


def inspect(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    second = context.get_remaining_time_in_millis()
    client_context = context.client_context
    try:
        open("/var/task/written", "w").close()
        task_write = "ok"
    except OSError as error:
        task_write = errno.errorcode[error.errno]
    return {
        "env": dict(os.environ),
        "uid": os.getuid(),
        "task_write": task_write,
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": [first, second],
            "client_context": None
            if client_context is None
            else {"custom": client_context.custom, "env": client_context.env},
        },
    }


def fail(event, context):
    raise ValueError("broken")


class CustomError(Exception):
    pass


def custom_fail(event, context):
    raise CustomError("custom failure")


def talk(event, context):
    print("hello from python")
    print("python stderr", file=sys.stderr)
    logging.warning("warned %s", 42)
    return "talked"


def chatty(event, context):
    for number in range(200):
        print(f"line {number:03d} " + "x" * 90)
    return "done"


def parallel(event, context):
    start = time.time()
    time.sleep(1)
    return {"stream": context.log_stream_name, "start": start, "end": time.time()}


def crash(event, context):
    os._exit(3)


def quit(event, context):
    sys.exit(0)


def oom(event, context):
    data = b"x" * (300 << 20)
    return len(data)


def big(event, context):
    return "a" * event["size"]


def length(event, context):
    return len(event["data"])


def follow(event, context):
    print("follow-marker " + event["marker"], flush=True)
    time.sleep(2)
    return "followed"


def isolation(event, context):
    def attempt(action):
        try:
            action()
            return "ok"
        except OSError as error:
            return errno.errorcode[error.errno]

    def write(path):
        with open(path, "w") as handle:
            handle.write("x")

    seen = []
    for root, directories, files in os.walk("/"):
        if root == "/":
            directories[:] = [d for d in directories if d not in ("proc", "usr", "sys")]
        seen.extend(os.path.join(root, name) for name in files + directories)
    processes = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    processes[entry] = handle.read().replace(b"\\0", b" ").decode().strip()
            except OSError:
                pass
    return {
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "gid": os.getgid(),
        "task_files": sorted(os.listdir("/var/task")),
        "task_write": attempt(lambda: write("/var/task/new-file")),
        "task_modify": attempt(lambda: write("/var/task/app.py")),
        "root_write": attempt(lambda: write("/kiln-root-file")),
        "runtime_write": attempt(lambda: write("/var/runtime/new-file")),
        "tmp_write": attempt(lambda: write("/tmp/isolation-check")),
        "setuid_root": attempt(lambda: os.setuid(0)),
        "data_dir_visible": os.path.exists(event["data_dir"]),
        "marker_paths": [path for path in seen if event["marker"] in path],
        "processes": processes,
    }


def probe_runtime_api(event, context):
    """Talks to another environment's Runtime API: what comes back?"""
    import socket

    host, _, port = event["address"].rpartition(":")
    outcomes = []
    for request in (
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
        "POST /2018-06-01/runtime/invocation/some-id/response HTTP/1.1\\r\\nHost: x\\r\\n"
        "Content-Length: 2\\r\\n\\r\\n{}",
    ):
        try:
            with socket.create_connection((host, int(port)), timeout=5) as connection:
                connection.sendall(request.encode())
                answer = connection.recv(4096)
                outcomes.append(answer.split(b"\\r\\n", 1)[0].decode() if answer else "closed")
        except socket.timeout:
            outcomes.append("no answer")
        except ConnectionError as error:
            outcomes.append("closed" if isinstance(error, ConnectionResetError) else repr(error))
    return outcomes


def fill_tmp(event, context):
    stats = os.statvfs("/tmp")
    chunk = b"\\0" * (4 << 20)
    written = 0
    error = None
    descriptor = os.open("/tmp/fill", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while written < (event["limit_mb"] + 64) << 20:
            written += os.write(descriptor, chunk)
    except OSError as failure:
        error = errno.errorcode[failure.errno]
    finally:
        os.close(descriptor)
        os.remove("/tmp/fill")
    return {
        "size_bytes": stats.f_blocks * stats.f_frsize,
        "written_bytes": written,
        "error": error,
    }
'''

PYTHON_FILES = {
    "app.py": PYTHON_SOURCE,
    "importer.py": "import kiln_missing_dependency\n\ndef handler(event, context):\n    return 1\n",
    "syntax.py": "def handler(event, context)\n    return 1\n",
    "raiser.py": 'raise Exception("Runtime startup fails")\n',
    # `logging` imported only when the handler runs; and never, to show the runtime does not.
    "late_logging.py": (
        "import sys\n\n"
        "def handler(event, context):\n"
        "    before = 'logging' in sys.modules\n"
        "    import logging\n"
        "    logging.getLogger('app').warning('late %s', 7)\n"
        "    return {'imported_before': before}\n"
    ),
}
PYTHON = make_zip(PYTHON_FILES)

NODE_SOURCE = """\
const fs = require("fs");

let count = 0;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

exports.echo = async (event) => event;

exports.count = async (event, context) => {
  if (event && event.sleep) {
    console.log("sleeping");
    await sleep(10000);
  }
  count += 1;
  fs.appendFileSync("/tmp/counts", `${count}\\n`);
  return { count, tmp: fs.readFileSync("/tmp/counts", "utf8"), stream: context.logStreamName };
};

exports.inspect = async (event, context) => {
  const first = context.getRemainingTimeInMillis();
  await sleep(50);
  const second = context.getRemainingTimeInMillis();
  let taskWrite = "ok";
  try {
    fs.writeFileSync("/var/task/written", "x");
  } catch (error) {
    taskWrite = error.code;
  }
  return {
    env: process.env,
    uid: process.getuid(),
    task_write: taskWrite,
    context: {
      functionName: context.functionName,
      functionVersion: context.functionVersion,
      invokedFunctionArn: context.invokedFunctionArn,
      memoryLimitInMB: context.memoryLimitInMB,
      awsRequestId: context.awsRequestId,
      logGroupName: context.logGroupName,
      logStreamName: context.logStreamName,
      callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
      remaining: [first, second],
      clientContext: context.clientContext === undefined ? null : context.clientContext,
    },
  };
};

exports.fail = async () => {
  throw new Error("broken");
};

class CustomError extends Error {
  constructor(message) {
    super(message);
    this.name = "CustomError";
  }
}

exports.customFail = async () => {
  throw new CustomError("custom failure");
};

exports.callback = (event, context, callback) => {
  callback(null, { callback: true, event });
};

exports.callbackFail = (event, context, callback) => {
  callback(new Error("callback broken"));
};

exports.talk = async () => {
  console.log("hello from node");
  console.error("node error line");
  return "talked";
};

exports.parallel = async (event, context) => {
  const start = Date.now() / 1000;
  await sleep(1000);
  return { stream: context.logStreamName, start, end: Date.now() / 1000 };
};

exports.crash = async () => {
  process.exit(4);
};

exports.oom = async () => Buffer.alloc(300 * 1024 * 1024, 1).length;

exports.big = async (event) => "a".repeat(event.size);
"""

NODE = make_zip(
    {
        "index.js": NODE_SOURCE,
        "esm.mjs": (
            "export const handler = async (event, context) =>\n"
            "  ({ esm: true, event, name: context.functionName });\n"
        ),
        "broken.js": "exports.handler = async (event) => {\n",
        "requires.js": (
            'const missing = require("kiln-missing-dependency");\n'
            "exports.handler = async () => missing;\n"
        ),
    }
)

SHELL_SOURCE = r"""#!/bin/sh
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
if [ "$_HANDLER" = "initexit" ]; then
  echo "giving up before the first invocation"
  exit 7
fi
if [ "$_HANDLER" = "initerror" ]; then
  curl -sS -X POST -H "Lambda-Runtime-Function-Error-Type: Custom.InitFailure" \
    --data-binary '{"errorType":"Custom.InitFailure","errorMessage":"cannot start"}' \
    "$API/init/error" >/dev/null
  exit 1
fi
if [ "$_HANDLER" = "slowinit" ]; then
  echo "initialising slowly"
  sleep 11
fi
COUNT=0
HEADERS=/tmp/.next-headers
while true; do
  EVENT=$(curl -sS -D "$HEADERS" "$API/invocation/next")
  ID=$(grep -i '^lambda-runtime-aws-request-id:' "$HEADERS" | tr -d '\r' | cut -d' ' -f2)
  COUNT=$((COUNT + 1))
  case "$_HANDLER" in
    echo|slowinit) BODY="$EVENT" ;;
    count)
      case "$EVENT" in *sleep*) echo "sleeping"; sleep 10 ;; esac
      echo "$COUNT" >> /tmp/counts
      BODY="{\"count\":$COUNT,\"tmp\":\"$(tr '\n' ',' < /tmp/counts)\",\"stream\":\"$AWS_LAMBDA_LOG_STREAM_NAME\"}"
      ;;
    inspect)
      if touch /var/task/written 2>/dev/null; then WRITE=ok; else WRITE=EROFS; fi
      BODY="{\"env\":\"$(env | base64 -w0)\",\"headers\":\"$(base64 -w0 < "$HEADERS")\",\"uid\":$(id -u),\"task_write\":\"$WRITE\"}"
      ;;
    talk)
      echo "hello from shell"
      echo "shell stderr" >&2
      BODY='"talked"'
      ;;
    fail)
      curl -sS -X POST -H "Lambda-Runtime-Function-Error-Type: Custom.Failure" \
        --data-binary '{"errorType":"Custom.Failure","errorMessage":"shell says no"}' \
        "$API/invocation/$ID/error" >/dev/null
      continue
      ;;
    parallel)
      START=$(date +%s.%N)
      sleep 1
      BODY="{\"stream\":\"$AWS_LAMBDA_LOG_STREAM_NAME\",\"start\":$START,\"end\":$(date +%s.%N)}"
      ;;
    crash) exit 5 ;;
    misuse)
      case "$EVENT" in
        *report*) BODY="\"$(base64 -w0 < /tmp/misuse)\"" ;;
        *)
          # What the Runtime API answers to calls out of turn: "STATUS BODY" of each.
          call() { curl -sS -m 5 -o /tmp/.answer -w '%{http_code}' "$@"; printf ' %s' "$(cat /tmp/.answer)"; }
          UNKNOWN=$(call -X POST --data-binary '{}' "$API/invocation/not-a-request-id/response")
          INIT=$(call -X POST --data-binary '{}' "$API/init/error")
          NEXT=$(call "$API/invocation/next")
          NOWHERE=$(call "$API/nowhere")
          printf '%s' "{}" | curl -sS -X POST --data-binary @- "$API/invocation/$ID/response" >/dev/null
          AGAIN=$(call -X POST --data-binary '{}' "$API/invocation/$ID/response")
          printf '%s\n%s\n%s\n%s\n%s\n' "$UNKNOWN" "$INIT" "$NEXT" "$NOWHERE" "$AGAIN" > /tmp/misuse
          continue
          ;;
      esac
      ;;
  esac
  printf '%s' "$BODY" | curl -sS -X POST --data-binary @- "$API/invocation/$ID/response" >/dev/null
done
"""

SHELL = make_zip({"bootstrap": SHELL_SOURCE}, modes={"bootstrap": 0o755})
SHELL_NOT_EXECUTABLE = make_zip({"bootstrap": SHELL_SOURCE}, modes={"bootstrap": 0o644})
NO_BOOTSTRAP = make_zip({"README.txt": "no bootstrap here\n"})

# The three runtime families, with the handler naming of each.
FAMILIES = {
    "python": ("python3.12", PYTHON, lambda name: f"app.{name}"),
    "node": ("nodejs20.x", NODE, lambda name: f"index.{name}"),
    "shell": ("provided.al2023", SHELL, lambda name: name),
}

# ---------------------------------------------------------------------------------------------
# Helpers.


def create(client, name, family, handler, **extra):
    """Creates a function of `family` with `handler` (a name in that family's code) and waits
    for it to become Active."""
    runtime, code, handler_name = FAMILIES[family]
    extra.setdefault("Timeout", 5)
    client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler=handler_name(handler),
        Code={"ZipFile": extra.pop("code", code)},
        **extra,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )


def create_raw(client, name, runtime, handler, code, **extra):
    extra.setdefault("Timeout", 5)
    client.create_function(
        FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": code},
        **extra,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )


def wait_updated(client, name):
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )


class Invocation:
    """One Invoke's response, read."""

    def __init__(self, response):
        self.response = response
        self.status = response["StatusCode"]
        self.raw = response["Payload"].read()
        self.function_error = response.get("FunctionError")
        self.executed_version = response.get("ExecutedVersion")
        self.tail = (
            base64.b64decode(response["LogResult"]).decode()
            if "LogResult" in response
            else None
        )

    @property
    def payload(self):
        return json.loads(self.raw)

    @property
    def lines(self) -> list[str]:
        return self.tail.splitlines()

    def report(self) -> re.Match:
        match = REPORT.match(self.lines[-1])
        assert match, f"last tail line is not a REPORT line: {self.lines[-1]!r}"
        return match

    @property
    def request_id(self) -> str:
        return self.report()["id"]


def invoke(client, name, payload=None, tail=True, **extra) -> Invocation:
    arguments = {"FunctionName": name, **extra}
    if payload is not None:
        arguments["Payload"] = payload if isinstance(payload, bytes) else json.dumps(payload)
    if tail:
        arguments["LogType"] = "Tail"
    return Invocation(client.invoke(**arguments))


def assert_tail_shape(invocation: Invocation, *, memory: int = 128, cold: bool, status=None):
    """START first, END then REPORT last, Lambda's REPORT fields and tabs; Init Duration only
    on a cold start."""
    lines = invocation.lines
    report = invocation.report()
    request_id = report["id"]
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST", lines
    assert lines[-2] == f"END RequestId: {request_id}", lines
    assert invocation.tail.endswith("\n")
    duration = float(report["duration"])
    assert int(report["billed"]) == max(1, math.ceil(duration)), report.group(0)
    assert int(report["memory"]) == memory
    assert 0 < int(report["used"]) <= memory, report.group(0)
    if cold:
        assert report["init"] is not None, f"a cold start reports Init Duration: {report[0]!r}"
        assert float(report["init"]) > 0
    else:
        assert report["init"] is None, f"a warm start has no Init Duration: {report[0]!r}"
    if status is None:
        assert report["status"] is None, report.group(0)
        assert report.group(0).endswith(" MB\t") or report.group(0).endswith(" ms\t")
    else:
        assert report["status"] == status, report.group(0)
    return report


def stored_logs(kiln, name) -> list[dict]:
    """The function's stored log events (GET /_kiln/logs/NAME, JSON lines)."""
    with urllib.request.urlopen(f"{kiln.url}/_kiln/logs/{name}?since=0", timeout=10) as response:
        return [json.loads(line) for line in response.read().decode().splitlines() if line]


def error_of(excinfo) -> tuple[int, str, str]:
    response = excinfo.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def today_prefix() -> str:
    return datetime.now(timezone.utc).strftime("%Y/%m/%d/")


# ---------------------------------------------------------------------------------------------
# Results.

PAYLOADS = [
    {"a": 1, "nested": {"list": [1, 2.5, None, True, "x"]}},
    [1, "two", None, False],
    "just a string",
    42,
    3.25,
    True,
    None,
    {"text": "héllo wörld, 世界, 🚀", "quote": "\"'\\"},
]


@pytest.mark.parametrize("family", ["python", "node", "shell"])
def test_results_of_every_json_type_and_the_empty_payload(lambda_client, function_name, family):
    create(lambda_client, function_name, family, "echo")
    for payload in PAYLOADS:
        result = invoke(lambda_client, function_name, json.dumps(payload).encode(), tail=False)
        assert result.status == 200
        assert result.function_error is None, result.raw
        assert result.executed_version == "$LATEST"
        assert result.tail is None, "no X-Amz-Log-Result without LogType=Tail"
        assert result.payload == payload, (family, payload)
    # Raw UTF-8 (not \u-escaped) in the request reaches the function intact.
    raw = '{"text": "héllo 世界 🚀"}'.encode()
    assert invoke(lambda_client, function_name, raw).payload == {"text": "héllo 世界 🚀"}
    # No payload at all is the event {}.
    empty = Invocation(lambda_client.invoke(FunctionName=function_name))
    assert empty.status == 200 and empty.payload == {}
    assert invoke(lambda_client, function_name, b"").payload == {}


def test_node_handler_styles(lambda_client, function_name):
    """ES module, callback and callback-error handlers."""
    create(lambda_client, function_name, "node", "callback")
    assert invoke(lambda_client, function_name, {"k": 1}).payload == {
        "callback": True,
        "event": {"k": 1},
    }
    esm = f"{function_name}-esm"
    create_raw(lambda_client, esm, "nodejs20.x", "esm.handler", NODE)
    assert invoke(lambda_client, esm, {"k": 2}).payload == {
        "esm": True,
        "event": {"k": 2},
        "name": esm,
    }
    failing = f"{function_name}-cbfail"
    create(lambda_client, failing, "node", "callbackFail")
    result = invoke(lambda_client, failing)
    assert result.function_error == "Unhandled"
    error = result.payload
    assert set(error) == {"errorType", "errorMessage", "trace"}
    assert error["errorType"] == "Error"
    assert error["errorMessage"] == "callback broken"
    assert error["trace"][0] == "Error: callback broken"


# ---------------------------------------------------------------------------------------------
# Function errors.


def test_python_function_errors(lambda_client, function_name):
    create(lambda_client, function_name, "python", "fail")
    result = invoke(lambda_client, function_name)
    assert result.status == 200
    assert result.function_error == "Unhandled"
    assert result.executed_version == "$LATEST"
    line = PYTHON_SOURCE.splitlines().index('    raise ValueError("broken")') + 1
    # awslambdaric's shape, as recorded (TestLambdaErrors::test_lambda_handler_error).
    assert result.payload == {
        "errorMessage": "broken",
        "errorType": "ValueError",
        "requestId": result.request_id,
        "stackTrace": [
            f'  File "/var/task/app.py", line {line}, in fail\n    raise ValueError("broken")\n'
        ],
    }
    assert_tail_shape(result, cold=True)
    assert "[ERROR] ValueError: broken\rTraceback (most recent call last):\r" in result.tail

    custom = f"{function_name}-custom"
    create(lambda_client, custom, "python", "custom_fail")
    error = invoke(lambda_client, custom).payload
    assert error["errorType"] == "CustomError"
    assert error["errorMessage"] == "custom failure"


def test_node_function_errors(lambda_client, function_name):
    create(lambda_client, function_name, "node", "fail")
    result = invoke(lambda_client, function_name)
    assert result.status == 200
    assert result.function_error == "Unhandled"
    error = result.payload
    assert set(error) == {"errorType", "errorMessage", "trace"}, error
    assert error["errorType"] == "Error"
    assert error["errorMessage"] == "broken"
    assert isinstance(error["trace"], list)
    assert error["trace"][0] == "Error: broken"
    assert "/var/task/index.js" in error["trace"][1], error["trace"]
    assert_tail_shape(result, cold=True)
    assert any(
        re.fullmatch(rf"\S+Z\t{result.request_id}\tERROR\tInvoke Error \t\{{.*broken.*\}}", line)
        for line in result.lines
    ), result.tail

    custom = f"{function_name}-custom"
    create(lambda_client, custom, "node", "customFail")
    error = invoke(lambda_client, custom).payload
    assert error["errorType"] == "CustomError"
    assert error["errorMessage"] == "custom failure"
    assert error["trace"][0] == "CustomError: custom failure"


def test_custom_runtime_function_error_is_passed_through(lambda_client, function_name):
    create(lambda_client, function_name, "shell", "fail")
    result = invoke(lambda_client, function_name)
    assert result.status == 200
    assert result.function_error == "Unhandled"
    assert result.payload == {"errorType": "Custom.Failure", "errorMessage": "shell says no"}
    assert_tail_shape(result, cold=True)


# ---------------------------------------------------------------------------------------------
# The log tail.


@pytest.mark.parametrize("family", ["python", "node", "shell"])
def test_log_tail_has_the_function_output_between_start_and_report(
    lambda_client, function_name, family
):
    create(lambda_client, function_name, family, "talk")
    first = invoke(lambda_client, function_name)
    assert first.payload == "talked"
    assert_tail_shape(first, cold=True)
    request_id = first.request_id
    middle = first.lines[1:-2]
    if family == "python":
        assert "hello from python" in middle
        assert "python stderr" in middle
        warning = rf"\[WARNING\]\t{ISO}\t{request_id}\twarned 42"
        assert any(re.fullmatch(warning, line) for line in middle), middle
    elif family == "node":
        stamp = ISO
        assert any(
            re.fullmatch(rf"{stamp}\t{request_id}\tINFO\thello from node", line) for line in middle
        ), middle
        assert any(
            re.fullmatch(rf"{stamp}\t{request_id}\tERROR\tnode error line", line)
            for line in middle
        ), middle
    else:
        assert "hello from shell" in middle
        assert "shell stderr" in middle
    assert not any(line.startswith(("INIT_START", "START", "END", "REPORT")) for line in middle)

    second = invoke(lambda_client, function_name)
    assert_tail_shape(second, cold=False)
    assert second.request_id != request_id
    assert not any(request_id in line for line in second.lines), "each tail is one invocation"


def test_python_logging_is_configured_even_when_imported_late(lambda_client, function_name):
    """The runtime configures `logging` when the function imports it, not before (importing it
    up front costs cold-start time); a late import still gets Lambda's format."""
    create_raw(lambda_client, function_name, "python3.12", "late_logging.handler", PYTHON)
    result = invoke(lambda_client, function_name)
    assert result.payload == {"imported_before": False}
    warning = rf"\[WARNING\]\t{ISO}\t{result.request_id}\tlate 7"
    assert any(re.fullmatch(warning, line) for line in result.lines), result.lines


def test_log_tail_is_the_last_4kb(lambda_client, function_name):
    create(lambda_client, function_name, "python", "chatty")
    result = invoke(lambda_client, function_name)
    assert len(result.tail.encode()) <= 4096
    assert len(result.tail.encode()) > 3500
    assert not result.tail.startswith("START"), "the start was cut off"
    assert "line 199 " in result.tail
    assert "line 000 " not in result.tail
    assert result.lines[-2] == f"END RequestId: {result.request_id}"
    assert result.lines[-1].startswith("REPORT RequestId: ")


def test_stored_logs_have_init_start_and_the_invocations(kiln, lambda_client, function_name):
    create(lambda_client, function_name, "python", "talk")
    first = invoke(lambda_client, function_name)
    second = invoke(lambda_client, function_name)
    events = stored_logs(kiln, function_name)
    messages = [event["message"] for event in events]
    assert re.fullmatch(
        rf"INIT_START Runtime Version: \S+\t"
        rf"Runtime Version ARN: arn:aws:lambda:{REGION}::runtime:[0-9a-f]+",
        messages[0],
    ), messages[0]
    arn = messages[0].split("Runtime Version ARN: ")[1]
    configuration = lambda_client.get_function_configuration(FunctionName=function_name)
    assert configuration["RuntimeVersionConfig"]["RuntimeVersionArn"] == arn
    for invocation in (first, second):
        start = messages.index(f"START RequestId: {invocation.request_id} Version: $LATEST")
        end = messages.index(f"END RequestId: {invocation.request_id}")
        assert start < messages.index("hello from python", start) < end
        assert messages[end + 1] == invocation.lines[-1]
    streams = {event["logStreamName"] for event in events}
    assert len(streams) == 1
    assert STREAM.match(streams.pop())
    timestamps = [event["timestamp"] for event in events]
    assert timestamps == sorted(timestamps)
    assert abs(timestamps[-1] / 1000 - time.time()) < 60


# ---------------------------------------------------------------------------------------------
# Environment and context.

USER_VARIABLES = {"MY_VAR": "hello world", "UNICODE_VAR": "héllo", "EMPTY_VAR": ""}


def expected_environment(kiln, name, family, handler, memory):
    environment = {
        "_HANDLER": handler,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH": (
            "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
        ),
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_AWS_XRAY_DAEMON_PORT": "2000",
        "AWS_ENDPOINT_URL": kiln.url,
        "AWS_ENDPOINT_URL_SQS": kiln.sqs_url,
        **USER_VARIABLES,
    }
    if family == "python":
        environment["AWS_EXECUTION_ENV"] = "AWS_Lambda_python3.12"
        environment["PYTHONPATH"] = "/var/runtime"
    if family == "node":
        environment["AWS_EXECUTION_ENV"] = "AWS_Lambda_nodejs20.x"
        environment["NODE_PATH"] = (
            "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:"
            "/var/runtime/node_modules:/var/runtime:/var/task"
        )
    return environment


# Set by Lambda with values that vary: checked by pattern below.
VARYING = {
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_ADDRESS",
    "_X_AMZN_TRACE_ID",
}
# What interpreters and shells add themselves (AWS's recorded environment has them too).
SELF_SET = {"python": {"LC_CTYPE"}, "node": set(), "shell": {"PWD", "SHLVL", "_", "OLDPWD"}}

CLIENT_CONTEXT = {
    "custom": {"foo": "bar", "n": 1},
    "env": {"fizz": "buzz"},
    "client": {"installation_id": "install-1", "app_title": "kiln-tests"},
}


def inspect(lambda_client, name, family, **extra):
    result = invoke(lambda_client, name, {"inspect": True}, **extra)
    assert result.function_error is None, result.raw
    data = result.payload
    if family == "shell":
        text = base64.b64decode(data["env"]).decode()
        data["env"] = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        headers = base64.b64decode(data["headers"]).decode().replace("\r", "").splitlines()
        data["headers"] = {
            key.lower(): value.strip()
            for key, _, value in (line.partition(":") for line in headers[1:] if line)
        }
    return result, data


@pytest.mark.parametrize("family", ["python", "node", "shell"])
def test_environment_variables(kiln, lambda_client, function_name, family):
    create(
        lambda_client,
        function_name,
        family,
        "inspect",
        MemorySize=256,
        Timeout=7,
        Environment={"Variables": USER_VARIABLES},
    )
    handler = FAMILIES[family][2]("inspect")
    result, data = inspect(lambda_client, function_name, family)
    env = data["env"]
    expected = expected_environment(kiln, function_name, family, handler, 256)
    for key, value in expected.items():
        assert env.get(key) == value, (key, env.get(key), value)
    if family == "shell":
        assert "AWS_EXECUTION_ENV" not in env, "provided runtimes have no AWS_EXECUTION_ENV"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    stream = STREAM.match(env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert stream, env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].startswith(today_prefix())
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert env[key], key
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+:2000", env["AWS_XRAY_DAEMON_ADDRESS"])
    assert env["AWS_XRAY_DAEMON_ADDRESS"] == env["_AWS_XRAY_DAEMON_ADDRESS"] + ":2000"
    if family == "shell":
        # Custom runtimes set it themselves from Lambda-Runtime-Trace-Id.
        assert "_X_AMZN_TRACE_ID" not in env
    else:
        assert TRACE_ID.match(env["_X_AMZN_TRACE_ID"]), env["_X_AMZN_TRACE_ID"]
    unexpected = set(env) - set(expected) - VARYING - SELF_SET[family]
    assert not unexpected, f"variables Lambda does not set: {sorted(unexpected)}"
    # The SDKs inside functions reach this Kiln with these settings.
    with urllib.request.urlopen(f"{env['AWS_ENDPOINT_URL']}/_kiln/health", timeout=5) as health:
        assert health.status == 200


@pytest.mark.parametrize("family", ["python", "node", "shell"])
def test_context_and_runtime_api_headers(lambda_client, function_name, family):
    create(lambda_client, function_name, family, "inspect", MemorySize=256, Timeout=7)
    arn = ARN_PREFIX + function_name
    encoded = base64.b64encode(json.dumps(CLIENT_CONTEXT).encode()).decode()
    before = time.time() * 1000
    plain, plain_data = inspect(lambda_client, function_name, family)
    qualified, data = inspect(
        lambda_client, function_name, family, Qualifier="$LATEST", ClientContext=encoded
    )
    assert qualified.executed_version == "$LATEST"
    for result, payload, invoked_arn in (
        (plain, plain_data, arn),
        (qualified, data, f"{arn}:$LATEST"),
    ):
        request_id = result.request_id
        stream = payload["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
        if family == "python":
            context = payload["context"]
            assert context["function_name"] == function_name
            assert context["function_version"] == "$LATEST"
            assert context["invoked_function_arn"] == invoked_arn
            assert context["memory_limit_in_mb"] == "256"
            assert context["aws_request_id"] == request_id
            assert context["log_group_name"] == f"/aws/lambda/{function_name}"
            assert context["log_stream_name"] == stream
            first, second = context["remaining"]
        elif family == "node":
            context = payload["context"]
            assert context["functionName"] == function_name
            assert context["functionVersion"] == "$LATEST"
            assert context["invokedFunctionArn"] == invoked_arn
            assert context["memoryLimitInMB"] == "256"
            assert context["awsRequestId"] == request_id
            assert context["logGroupName"] == f"/aws/lambda/{function_name}"
            assert context["logStreamName"] == stream
            assert context["callbackWaitsForEmptyEventLoop"] is True
            first, second = context["remaining"]
        else:
            headers = payload["headers"]
            assert headers["lambda-runtime-aws-request-id"] == request_id
            assert headers["lambda-runtime-invoked-function-arn"] == invoked_arn
            assert headers["content-type"] == "application/json"
            assert TRACE_ID.match(headers["lambda-runtime-trace-id"])
            deadline = int(headers["lambda-runtime-deadline-ms"])
            assert before < deadline <= time.time() * 1000 + 7000
            first = second = None
        if first is not None:
            assert 7000 - 1500 < first <= 7000, first
            assert 0 < second < first, (first, second)
            assert first - second >= 45, "the remaining time counts down"
    # X-Amz-Client-Context reaches the function decoded; absent when not sent.
    if family == "python":
        assert plain_data["context"]["client_context"] is None
        assert data["context"]["client_context"] == {
            "custom": CLIENT_CONTEXT["custom"],
            "env": CLIENT_CONTEXT["env"],
        }
    elif family == "node":
        assert plain_data["context"]["clientContext"] is None
        assert data["context"]["clientContext"] == CLIENT_CONTEXT
    else:
        assert "lambda-runtime-client-context" not in plain_data["headers"]
        assert json.loads(data["headers"]["lambda-runtime-client-context"]) == CLIENT_CONTEXT
    # The function name as an ARN invokes the same function.
    by_arn = invoke(lambda_client, arn, {"inspect": True})
    assert by_arn.executed_version == "$LATEST" and by_arn.function_error is None


def test_reserved_variables_cannot_be_set(lambda_client, function_name):
    message = (
        "Lambda was unable to configure your environment variables because the environment "
        "variables you have provided contains reserved keys that are currently not supported "
        "for modification. Reserved keys used in this request: "
    )
    with pytest.raises(ClientError) as excinfo:
        lambda_client.create_function(
            FunctionName=function_name,
            Runtime="python3.12",
            Role=ROLE,
            Handler="app.inspect",
            Code={"ZipFile": PYTHON},
            Environment={"Variables": {"AWS_REGION": "eu-west-1"}},
        )
    assert error_of(excinfo) == (400, "InvalidParameterValueException", message + "AWS_REGION")
    create(lambda_client, function_name, "python", "inspect")
    for key in ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT"):
        with pytest.raises(ClientError) as excinfo:
            lambda_client.update_function_configuration(
                FunctionName=function_name, Environment={"Variables": {key: "1"}}
            )
        assert error_of(excinfo) == (400, "InvalidParameterValueException", message + key)
    env = invoke(lambda_client, function_name, {}).payload["env"]
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["_HANDLER"] == "app.inspect"


# ---------------------------------------------------------------------------------------------
# Isolation.


def test_python_isolation(kiln, lambda_client, function_name):
    marker = f"kiln-secret-{function_name}"
    other = f"{function_name}-other"
    create_raw(
        lambda_client, other, "python3.12", "secret.handler",
        make_zip({f"{marker}.py": "X = 1\n", "secret.py": "def handler(e, c):\n    return 1\n"}),
    )
    assert invoke(lambda_client, other, tail=False).payload == 1
    create(lambda_client, function_name, "python", "isolation")
    result = invoke(
        lambda_client, function_name, {"data_dir": str(kiln.data_dir), "marker": marker}
    ).payload
    assert result["uid"] == 993 and result["euid"] == 993
    assert result["gid"] == 990
    assert result["task_files"] == sorted(PYTHON_FILES)
    assert result["task_write"] == "EROFS"
    assert result["task_modify"] == "EROFS"
    assert result["runtime_write"] == "EROFS"
    assert result["root_write"] in ("EROFS", "EACCES")
    assert result["tmp_write"] == "ok"
    assert result["setuid_root"] == "EPERM"
    assert result["data_dir_visible"] is False, "Kiln's data directory is hidden"
    assert result["marker_paths"] == [], "another function's code is not visible"
    assert all("kiln" not in command for command in result["processes"].values()), result[
        "processes"
    ]
    assert any("bootstrap" in command for command in result["processes"].values())


def test_an_init_over_10_seconds_is_retried_within_the_invocation(lambda_client, function_name):
    """Lambda's init phase is limited to 10 s; past it, the init is retried at the invocation,
    bounded by the function's timeout. Here the init takes 11 s: the first attempt is stopped at
    10 s, the retry at the 5 s timeout."""
    create(lambda_client, function_name, "shell", "slowinit", Timeout=5)
    started = time.monotonic()
    result = invoke(lambda_client, function_name, {})
    elapsed = time.monotonic() - started
    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == "Sandbox.Timedout"
    assert result.payload["errorMessage"].endswith("Task timed out after 5.00 seconds")
    assert 14.5 <= elapsed < 25, elapsed
    assert any(line.startswith("INIT_REPORT Init Duration: ") and line.endswith("Status: timeout")
               for line in result.lines), result.tail


def test_runtime_api_answers_calls_out_of_turn_as_lambda(lambda_client, function_name):
    """A runtime that answers an unknown or already answered request, reports an init error
    after init, asks for the next event while one is running, or calls an unknown endpoint gets
    the Runtime API's errors, and the environment keeps working."""
    # A whole vCPU: the handler starts six curl processes within the 5 s timeout.
    create(lambda_client, function_name, "shell", "misuse", MemorySize=1769)
    first = invoke(lambda_client, function_name, {})
    assert first.function_error is None, first.raw
    assert first.payload == {}
    # The same (warm) environment reports what it was answered.
    report = invoke(lambda_client, function_name, {"report": True})
    assert report.function_error is None, report.raw
    assert "Init Duration" not in report.lines[-1]
    answers = [line.split(" ", 1) for line in base64.b64decode(report.payload).decode().splitlines()]
    statuses = [status for status, _ in answers]
    bodies = [json.loads(body) for _, body in answers]
    assert statuses == ["400", "403", "403", "404", "400"], answers
    assert bodies[0] == {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
    assert bodies[1]["errorType"] == "InvalidStateTransition"
    assert bodies[2]["errorType"] == "InvalidStateTransition"
    assert bodies[3]["errorType"] == "NotFound"
    assert bodies[4] == bodies[0], "an answered request id is no longer valid"


def test_idle_environments_are_shut_down_after_the_keep_alive(tmp_path):
    """`--keep-alive`: an environment idle that long is shut down (its processes gone), and the
    next invocation is a cold start in a new one."""
    server = KilnServer(tmp_path / "data", "--keep-alive", "1s").start()
    try:
        client = make_lambda_client(server.url)
        name = "keep-alive"
        create(client, name, "shell", "count")
        first = invoke(client, name, {})
        assert "Init Duration" in first.lines[-1]
        stream = first.payload["stream"]

        def sandboxes() -> list[str]:
            found = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/environ", "rb") as handle:
                        environ = handle.read()
                except OSError:
                    continue
                if f"AWS_LAMBDA_LOG_STREAM_NAME={stream}".encode() in environ:
                    found.append(pid)
            return found

        assert sandboxes(), "the environment's bootstrap runs while warm"
        deadline = time.monotonic() + 15
        while sandboxes() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not sandboxes(), "the idle environment was not shut down"
        again = invoke(client, name, {})
        assert "Init Duration" in again.lines[-1]
        assert again.payload["count"] == 1
        assert again.payload["stream"] != stream
    finally:
        server.stop()


def test_a_sandbox_cannot_use_another_environments_runtime_api(lambda_client, function_name):
    """Sandboxes share the host's network, so another environment's Runtime API port is
    reachable; Kiln closes such connections unanswered instead of handing out the other
    function's events or taking its answers."""
    other = f"{function_name}-other"
    create(lambda_client, other, "python", "inspect")
    address = invoke(lambda_client, other, {}, tail=False).payload["env"]["AWS_LAMBDA_RUNTIME_API"]
    create(lambda_client, function_name, "python", "probe_runtime_api")
    outcomes = invoke(lambda_client, function_name, {"address": address}, tail=False).payload
    assert outcomes == ["closed", "closed"]
    # The other environment was not disturbed: it stays warm and answers as before.
    again = invoke(lambda_client, other, {})
    assert again.function_error is None, again.raw
    assert again.payload["env"]["AWS_LAMBDA_RUNTIME_API"] == address
    assert "Init Duration" not in again.lines[-1]


@pytest.mark.parametrize("family", ["node", "shell"])
def test_isolation_of_other_runtimes(lambda_client, function_name, family):
    create(lambda_client, function_name, family, "inspect")
    _, data = inspect(lambda_client, function_name, family)
    assert data["uid"] == 993
    assert data["task_write"] == "EROFS"


def test_tmp_is_limited_by_ephemeral_storage(lambda_client, function_name):
    # /tmp counts towards memory here (docs/compat.md), so leave room beyond 512 MB of it.
    create(
        lambda_client,
        function_name,
        "python",
        "fill_tmp",
        MemorySize=2048,
        EphemeralStorage={"Size": 512},
        Timeout=30,
    )
    result = invoke(lambda_client, function_name, {"limit_mb": 512})
    assert result.function_error is None, result.raw
    data = result.payload
    assert data["size_bytes"] == 512 << 20
    assert data["error"] == "ENOSPC"
    assert (512 - 16) << 20 <= data["written_bytes"] <= 512 << 20


# ---------------------------------------------------------------------------------------------
# Warm environments, parallelism.


@pytest.mark.parametrize("family", ["python", "node", "shell"])
def test_warm_environment_keeps_module_state_and_tmp(lambda_client, function_name, family):
    create(lambda_client, function_name, family, "count")
    results = [invoke(lambda_client, function_name, {}) for _ in range(3)]
    for result in results:
        assert result.function_error is None, result.raw
    payloads = [result.payload for result in results]
    assert [payload["count"] for payload in payloads] == [1, 2, 3]
    separator = "," if family == "shell" else "\n"
    assert payloads[-1]["tmp"] == separator.join(["1", "2", "3"]) + separator
    assert len({payload["stream"] for payload in payloads}) == 1, "one environment served all"
    assert_tail_shape(results[0], cold=True)
    assert_tail_shape(results[1], cold=False)
    assert_tail_shape(results[2], cold=False)


def _parallel(lambda_client, name, count):
    barrier = threading.Barrier(count)

    def call(_):
        barrier.wait()
        result = invoke(lambda_client, name, {})
        assert result.function_error is None, result.raw
        return result.payload

    started = time.monotonic()
    with ThreadPoolExecutor(count) as pool:
        payloads = list(pool.map(call, range(count)))
    return payloads, time.monotonic() - started


@pytest.mark.parametrize("family", ["python", "node", "shell"])
def test_parallel_invocations_run_in_parallel_environments(
    kiln, lambda_client, function_name, family
):
    create(lambda_client, function_name, family, "parallel")
    client = make_lambda_client(kiln.url)
    payloads, elapsed = _parallel(client, function_name, 8)
    streams = [payload["stream"] for payload in payloads]
    assert len(set(streams)) == 8, "eight environments"
    assert elapsed < 3.5, f"8 invocations of a 1 s handler took {elapsed:.2f} s"
    # They all ran at the same time.
    assert max(p["start"] for p in payloads) < min(p["end"] for p in payloads)
    if family != "python":
        return
    # Ten at once with eight idle environments: the eight are reused, two more start, and no
    # environment ever serves two invocations at once.
    again, elapsed = _parallel(client, function_name, 10)
    streams_again = [payload["stream"] for payload in again]
    assert len(set(streams_again)) == 10
    assert len(set(streams_again) & set(streams)) == 8
    by_stream: dict[str, list] = {}
    for payload in payloads + again:
        by_stream.setdefault(payload["stream"], []).append((payload["start"], payload["end"]))
    for intervals in by_stream.values():
        intervals.sort()
        for (_, end), (start, _) in zip(intervals, intervals[1:]):
            assert end <= start, "an environment serves one invocation at a time"


def test_a_busy_environment_is_never_waited_for(lambda_client, function_name):
    """While an environment is busy another invocation never waits for it: it gets its own."""
    create(lambda_client, function_name, "python", "parallel")
    first = threading.Thread(target=lambda: invoke(lambda_client, function_name, {}))
    first.start()
    time.sleep(0.3)
    started = time.monotonic()
    result = invoke(make_lambda_client_for(lambda_client), function_name, {})
    elapsed = time.monotonic() - started
    first.join()
    assert result.function_error is None
    assert elapsed < 1.9, f"the second invocation waited for the first: {elapsed:.2f} s"


def make_lambda_client_for(client):
    return make_lambda_client(client.meta.endpoint_url)


# ---------------------------------------------------------------------------------------------
# Timeouts, crashes, OOM, payload limits.


@pytest.mark.parametrize("family", ["python", "node", "shell"])
def test_timeout_then_a_fresh_runtime_with_the_same_tmp(lambda_client, function_name, family):
    # A whole vCPU (1,769 MB): at 128 MB's share, the shell runtime's six process starts per
    # invocation can by themselves take most of the 1 s timeout on a slow machine.
    create(lambda_client, function_name, family, "count", Timeout=1, MemorySize=1769)
    first = invoke(lambda_client, function_name, {})
    second = invoke(lambda_client, function_name, {})
    assert second.function_error is None, second.raw
    first, second = first.payload, second.payload
    assert (first["count"], second["count"]) == (1, 2)

    started = time.monotonic()
    timed_out = invoke(lambda_client, function_name, {"sleep": True})
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 3.0, elapsed
    assert timed_out.status == 200
    assert timed_out.function_error == "Unhandled"
    assert timed_out.executed_version == "$LATEST"
    request_id = timed_out.request_id
    # TestLambdaBehavior::test_lambda_invoke_with_timeout (recorded 2025).
    assert timed_out.payload == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    report = assert_tail_shape(timed_out, memory=1769, cold=False, status="Status: timeout")
    assert 950 <= float(report["duration"]) < 2500
    assert "sleeping" in timed_out.tail
    assert any(
        re.fullmatch(
            rf"{ISO} {request_id} Task timed out after 1.00 seconds",
            line,
        )
        for line in timed_out.lines
    ), timed_out.tail

    # TestLambdaBehavior::test_lambda_invoke_timed_out_environment_reuse: the function works
    # again, its module state is new, and /tmp kept its content.
    after = invoke(lambda_client, function_name, {})
    assert after.function_error is None, after.raw
    assert after.payload["count"] == 1, "module state starts over"
    separator = "," if family == "shell" else "\n"
    assert after.payload["tmp"] == separator.join(["1", "2", "1"]) + separator
    assert after.payload["stream"] != second["stream"], "a new runtime (new environment id)"
    assert_tail_shape(after, memory=1769, cold=True)


CRASHES = [
    ("python", "crash", "Runtime exited with error: exit status 3"),
    ("python", "quit", "Runtime exited without providing a reason"),
    ("node", "crash", "Runtime exited with error: exit status 4"),
    ("shell", "crash", "Runtime exited with error: exit status 5"),
]


@pytest.mark.parametrize(("family", "handler", "reason"), CRASHES)
def test_runtime_exit_during_an_invocation(lambda_client, function_name, family, handler, reason):
    create(lambda_client, function_name, family, handler)
    result = invoke(lambda_client, function_name)
    assert result.status == 200
    assert result.function_error == "Unhandled"
    request_id = result.request_id
    # TestLambdaErrors::test_lambda_runtime_exit / test_lambda_handler_exit (recorded 2025).
    assert result.payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: {reason}",
    }
    assert_tail_shape(result, cold=True, status="Status: error\tError Type: Runtime.ExitError")
    assert f"RequestId: {request_id} Error: {reason}" in result.lines
    # A new runtime serves the next invocation.
    again = invoke(lambda_client, function_name)
    assert again.payload["errorType"] == "Runtime.ExitError"
    assert again.request_id != request_id
    assert_tail_shape(again, cold=True, status="Status: error\tError Type: Runtime.ExitError")


@pytest.mark.parametrize("family", ["python", "node"])
def test_out_of_memory(lambda_client, function_name, family):
    # 128 MB gets 128/1769 of a vCPU, as on Lambda: where page faults are slow (a fresh VM),
    # touching 128 MB at that share takes several seconds, so the timeout leaves room for it.
    create(lambda_client, function_name, family, "oom", MemorySize=128, Timeout=60)
    result = invoke(lambda_client, function_name)
    assert result.status == 200
    assert result.function_error == "Unhandled"
    request_id = result.request_id
    assert result.payload == {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
    }
    report = assert_tail_shape(
        result, cold=True, status="Status: error\tError Type: Runtime.OutOfMemory"
    )
    assert int(report["used"]) >= 100, report.group(0)
    # The function is usable again (a fresh environment).
    again = invoke(lambda_client, function_name)
    assert again.payload["errorType"] == "Runtime.OutOfMemory"


@pytest.mark.parametrize("family", ["python", "node"])
def test_response_size_limit(lambda_client, function_name, family):
    create(lambda_client, function_name, family, "big", MemorySize=512)
    # TestLambdaBaseFeatures::test_lambda_large_response: 6 MiB of text is fine.
    fits = invoke(lambda_client, function_name, {"size": 6 * 1024 * 1024}, tail=False)
    assert fits.function_error is None
    assert len(fits.raw) == 6 * 1024 * 1024 + 2
    assert fits.payload == "a" * (6 * 1024 * 1024)
    # TestLambdaBaseFeatures::test_lambda_too_large_response (recorded 2025-11-24), twice.
    expected = recorded(
        "test_lambda.snapshot.json",
        "test_lambda.py::TestLambdaBaseFeatures::test_lambda_too_large_response",
        "invoke_result",
    )
    # Back to back: the runtime must survive being told its response was too large.
    for _ in range(2):
        too_large = invoke(lambda_client, function_name, {"size": 7 * 1024 * 1024})
        assert too_large.function_error == "Unhandled"
        assert too_large.executed_version == "$LATEST"
        assert too_large.payload == expected["Payload"]
        assert too_large.lines[-2] == f"END RequestId: {too_large.request_id}"
    after = invoke(lambda_client, function_name, {"size": 3})
    assert after.function_error is None, after.raw
    assert after.payload == "aaa"


def test_request_payload_limits(lambda_client, function_name):
    create(lambda_client, function_name, "python", "length", MemorySize=512)
    # TestLambdaBaseFeatures::test_large_payloads: ~5 MB requests are fine.
    data = "test123456" * 100 * 1000 * 5
    assert invoke(lambda_client, function_name, {"data": data}, tail=False).payload == len(data)
    with pytest.raises(ClientError) as excinfo:
        invoke(lambda_client, function_name, {"data": "x" * (6 * 1024 * 1024)})
    assert error_of(excinfo) == (
        413,
        "RequestTooLargeException",
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    )


# The last two are the bodies of TestLambdaErrors::test_lambda_invoke_payload_encoding_error.
INVALID_PAYLOADS = [
    b"{nope",
    b'{"a": 1',
    b"n\x87r\x9e\xe9\xb5\xd7I\xee\x9bmt",
    b"\x99\xeb,j\x07\xa1zYh",
]


def test_invalid_json_payload(kiln, lambda_client, function_name):
    create(lambda_client, function_name, "python", "echo")
    for payload in INVALID_PAYLOADS:
        with pytest.raises(ClientError) as excinfo:
            invoke(lambda_client, function_name, payload)
        status, code, message = error_of(excinfo)
        assert (status, code) == (400, "InvalidRequestContentException"), payload
        assert message.startswith(
            "Could not parse request body into json: Could not parse payload into json: "
        ), message
    assert stored_logs(kiln, function_name) == [], "nothing ran"


# ---------------------------------------------------------------------------------------------
# Init errors.


def _init_error(lambda_client, name, runtime, handler, code, error_type):
    create_raw(lambda_client, name, runtime, handler, code)
    result = invoke(lambda_client, name)
    assert result.status == 200
    assert result.function_error == "Unhandled"
    assert result.executed_version == "$LATEST"
    assert result.lines[-2] == f"END RequestId: {result.request_id}"
    assert f"START RequestId: {result.request_id} Version: $LATEST" in result.lines
    assert result.report()["status"] == f"Status: error\tError Type: {error_type}", result.tail
    # Nothing is cached: the next invocation tries (and fails) again.
    again = invoke(lambda_client, name)
    assert again.function_error == "Unhandled"
    assert again.request_id != result.request_id
    assert again.payload["errorType"] == result.payload["errorType"]
    return result


def test_python_import_error(kiln, lambda_client, function_name):
    result = _init_error(
        lambda_client, function_name, "python3.12", "importer.handler", PYTHON,
        "Runtime.ImportModuleError",
    )
    assert result.payload == {
        "errorMessage": "Unable to import module 'importer': "
        "No module named 'kiln_missing_dependency'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    messages = [event["message"] for event in stored_logs(kiln, function_name)]
    assert any(
        re.fullmatch(
            r"INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: init\tStatus: error\t"
            r"Error Type: Runtime.ImportModuleError",
            message,
        )
        for message in messages
    ), messages
    assert any(message.startswith("[ERROR] Runtime.ImportModuleError: ") for message in messages)

    missing_module = f"{function_name}-nomodule"
    result = _init_error(
        lambda_client, missing_module, "python3.12", "nomodule.handler", PYTHON,
        "Runtime.ImportModuleError",
    )
    assert result.payload["errorMessage"] == (
        "Unable to import module 'nomodule': No module named 'nomodule'"
    )


def test_python_syntax_error(lambda_client, function_name):
    result = _init_error(
        lambda_client, function_name, "python3.12", "syntax.handler", PYTHON,
        "Runtime.UserCodeSyntaxError",
    )
    error = result.payload
    assert error["errorType"] == "Runtime.UserCodeSyntaxError"
    assert error["errorMessage"].startswith("Syntax error in module 'syntax': ")
    assert error["errorMessage"].endswith("(syntax.py, line 1)")
    assert error["requestId"] == ""
    assert error["stackTrace"] == [
        '  File "/var/task/syntax.py" Line 1\n    def handler(event, context)\n'
    ]


def test_python_exception_during_init(lambda_client, function_name):
    """TestLambdaErrors::test_lambda_runtime_error (recorded 2025): an exception raised while
    importing the handler module is reported with its own type, not as a crash."""
    create_raw(lambda_client, function_name, "python3.12", "raiser.handler", PYTHON)
    result = invoke(lambda_client, function_name)
    assert result.function_error == "Unhandled"
    error = result.payload
    assert set(error) == {"errorMessage", "errorType", "requestId", "stackTrace"}, error
    assert error["errorType"] == "Exception"
    assert error["errorMessage"] == "Runtime startup fails"
    assert error["requestId"] == ""
    assert error["stackTrace"][-1] == (
        '  File "/var/task/raiser.py", line 1, in <module>\n'
        '    raise Exception("Runtime startup fails")\n'
    )


def test_python_handler_not_found(lambda_client, function_name):
    create_raw(lambda_client, function_name, "python3.12", "app.nope", PYTHON)
    result = invoke(lambda_client, function_name)
    assert result.function_error == "Unhandled"
    # awslambdaric reports a missing handler at invoke time, with the request id.
    assert result.payload == {
        "errorMessage": "Handler 'nope' missing on module 'app'",
        "errorType": "Runtime.HandlerNotFound",
        "requestId": result.request_id,
        "stackTrace": [],
    }


def test_node_init_errors(lambda_client, function_name):
    missing = _init_error(
        lambda_client, function_name, "nodejs20.x", "missing.handler", NODE,
        "Runtime.ImportModuleError",
    )
    assert missing.payload["errorType"] == "Runtime.ImportModuleError"
    assert missing.payload["errorMessage"] == (
        "Error: Cannot find module 'missing'\nRequire stack:\n- /var/runtime/index.mjs"
    )
    assert missing.payload["trace"][0] == (
        "Runtime.ImportModuleError: Error: Cannot find module 'missing'"
    )

    requires = _init_error(
        lambda_client, f"{function_name}-req", "nodejs20.x", "requires.handler", NODE,
        "Runtime.ImportModuleError",
    )
    assert requires.payload["errorMessage"] == (
        "Error: Cannot find module 'kiln-missing-dependency'\nRequire stack:\n"
        "- /var/task/requires.js\n- /var/runtime/index.mjs"
    )

    undefined = _init_error(
        lambda_client, f"{function_name}-undef", "nodejs20.x", "index.nope", NODE,
        "Runtime.HandlerNotFound",
    )
    assert undefined.payload["errorType"] == "Runtime.HandlerNotFound"
    assert undefined.payload["errorMessage"] == "index.nope is undefined or not exported"
    assert undefined.payload["trace"][0] == (
        "Runtime.HandlerNotFound: index.nope is undefined or not exported"
    )

    syntax = _init_error(
        lambda_client, f"{function_name}-syntax", "nodejs20.x", "broken.handler", NODE,
        "Runtime.UserCodeSyntaxError",
    )
    assert syntax.payload["errorType"] == "Runtime.UserCodeSyntaxError"
    assert syntax.payload["errorMessage"].startswith("SyntaxError: ")
    assert set(syntax.payload) == {"errorType", "errorMessage", "trace"}


def test_custom_runtime_without_bootstrap(lambda_client, function_name):
    result = _init_error(
        lambda_client, function_name, "provided.al2023", "unused", NO_BOOTSTRAP,
        "Runtime.InvalidEntrypoint",
    )
    assert result.payload == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": f"RequestId: {result.request_id} Error: Couldn't find valid "
        "bootstrap(s): [/var/task/bootstrap /opt/bootstrap]",
    }


def test_custom_runtime_bootstrap_not_executable(lambda_client, function_name):
    result = _init_error(
        lambda_client, function_name, "provided.al2023", "echo", SHELL_NOT_EXECUTABLE,
        "Runtime.InvalidEntrypoint",
    )
    assert result.payload == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": f"RequestId: {result.request_id} Error: fork/exec "
        "/var/task/bootstrap: permission denied",
    }


def test_custom_runtime_init_failures(kiln, lambda_client, function_name):
    exited = _init_error(
        lambda_client, function_name, "provided.al2023", "initexit", SHELL, "Runtime.ExitError"
    )
    assert exited.payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {exited.request_id} Error: Runtime exited with error: "
        "exit status 7",
    }
    stored = [event["message"] for event in stored_logs(kiln, function_name)]
    assert "giving up before the first invocation" in stored
    # The init output belongs to the invocation that ran the init, so it is in its tail.
    assert "giving up before the first invocation" in exited.lines, exited.tail
    reported = _init_error(
        lambda_client, f"{function_name}-report", "provided.al2023", "initerror", SHELL,
        "Custom.InitFailure",
    )
    assert reported.payload == {"errorType": "Custom.InitFailure", "errorMessage": "cannot start"}


# ---------------------------------------------------------------------------------------------
# Updates.

VERSIONED = (
    "import os\n"
    "CODE = {code!r}\n"
    "def handler(event, context):\n"
    "    return {{'code': CODE, 'stage': os.environ.get('STAGE'),\n"
    "            'memory': context.memory_limit_in_mb}}\n"
)
CODE_A = make_zip({"app.py": VERSIONED.format(code="A")})
CODE_B = make_zip({"app.py": VERSIONED.format(code="B")})


def test_updates_are_never_mixed(kiln, lambda_client, function_name):
    create_raw(
        lambda_client, function_name, "python3.12", "app.handler", CODE_A,
        Environment={"Variables": {"STAGE": "one"}},
    )
    state_a = {"code": "A", "stage": "one", "memory": "128"}
    state_b = {"code": "B", "stage": "one", "memory": "128"}
    state_c = {"code": "B", "stage": "two", "memory": "256"}
    first = invoke(lambda_client, function_name)
    assert first.payload == state_a
    invoke(lambda_client, function_name)  # warm environments of the old code exist

    seen = []
    stop = threading.Event()
    errors = []

    def keep_invoking():
        client = make_lambda_client(kiln.url)
        while not stop.is_set():
            try:
                seen.append(invoke(client, function_name, tail=False).payload)
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

    workers = [threading.Thread(target=keep_invoking) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.2)
        lambda_client.update_function_code(FunctionName=function_name, ZipFile=CODE_B)
        wait_updated(lambda_client, function_name)
        for _ in range(4):
            result = invoke(lambda_client, function_name)
            assert result.payload == state_b, "after the code update only the new code runs"
        lambda_client.update_function_configuration(
            FunctionName=function_name,
            MemorySize=256,
            Environment={"Variables": {"STAGE": "two"}},
        )
        wait_updated(lambda_client, function_name)
        results = [invoke(lambda_client, function_name) for _ in range(4)]
        time.sleep(0.2)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert not errors, errors
    for result in results:
        assert result.payload == state_c, "after the configuration update only the new one"
        assert int(result.report()["memory"]) == 256
    # (The background invocations may have started the new configuration's environment.)
    assert_tail_shape(results[-1], memory=256, cold=False)
    assert all(payload in (state_a, state_b, state_c) for payload in seen), [
        payload for payload in seen if payload not in (state_a, state_b, state_c)
    ]
    assert state_a in seen or state_b in seen


# ---------------------------------------------------------------------------------------------
# Invoke API errors and invocation types.


def test_dry_run(kiln, lambda_client, function_name):
    create(lambda_client, function_name, "python", "echo")
    response = lambda_client.invoke(FunctionName=function_name, InvocationType="DryRun")
    assert response["StatusCode"] == 204
    assert response["Payload"].read() == b""
    assert "FunctionError" not in response
    assert stored_logs(kiln, function_name) == [], "DryRun runs nothing"
    missing = f"{function_name}-missing"
    with pytest.raises(ClientError) as excinfo:
        lambda_client.invoke(FunctionName=missing, InvocationType="DryRun")
    status, code, message = error_of(excinfo)
    assert (status, code) == (404, "ResourceNotFoundException")
    assert message.startswith(f"Function not found: {ARN_PREFIX}{missing}")
    with pytest.raises(ClientError) as excinfo:
        lambda_client.invoke(FunctionName=function_name, InvocationType="DryRun", Qualifier="3")
    assert error_of(excinfo) == (
        404,
        "ResourceNotFoundException",
        f"Function not found: {ARN_PREFIX}{function_name}:3",
    )


def test_event_invocations_are_accepted(lambda_client, function_name):
    # Retries, destinations and durability of asynchronous invocation: test_async.py.
    create(lambda_client, function_name, "python", "echo")
    reply = lambda_client.invoke(FunctionName=function_name, InvocationType="Event", Payload=b"{}")
    assert reply["StatusCode"] == 202
    assert reply["Payload"].read() == b""


def test_invoking_what_does_not_exist(lambda_client, function_name):
    # TestLambdaFeatures::test_invoke_exceptions (recorded 2025-11-24): an unqualified name
    # is reported as $LATEST.
    missing = f"{function_name}-doesnotexist"
    with pytest.raises(ClientError) as excinfo:
        lambda_client.invoke(FunctionName=missing)
    assert error_of(excinfo) == (
        404,
        "ResourceNotFoundException",
        f"Function not found: {ARN_PREFIX}{missing}:$LATEST",
    )
    create(lambda_client, function_name, "python", "echo")
    # TestLambdaFunction::test_ops_on_nonexisting_version, TestLambdaAliases: versions and
    # aliases that do not exist.
    for qualifier in ("7", "live"):
        with pytest.raises(ClientError) as excinfo:
            lambda_client.invoke(FunctionName=function_name, Qualifier=qualifier)
        assert error_of(excinfo) == (
            404,
            "ResourceNotFoundException",
            f"Function not found: {ARN_PREFIX}{function_name}:{qualifier}",
        )
        with pytest.raises(ClientError) as excinfo:
            lambda_client.invoke(FunctionName=f"{function_name}:{qualifier}")
        assert error_of(excinfo)[:2] == (404, "ResourceNotFoundException")


@pytest.fixture(scope="module")
def delayed_kiln(tmp_path_factory):
    """A Kiln whose deployments take a second, as Lambda's do."""
    server = KilnServer(
        tmp_path_factory.mktemp("delayed") / "data", "--deployment-delay", "1s"
    ).start()
    yield server
    server.stop()


def test_pending_function_cannot_be_invoked(delayed_kiln, function_name):
    client = make_lambda_client(delayed_kiln.url)
    created = client.create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.echo",
        Code={"ZipFile": PYTHON},
    )
    assert created["State"] == "Pending"
    with pytest.raises(ClientError) as excinfo:
        client.invoke(FunctionName=function_name, Payload=b"{}")
    assert error_of(excinfo) == (
        409,
        "ResourceConflictException",
        "The operation cannot be performed at this time. The function is currently in the "
        "following state: Pending",
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=function_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50}
    )
    assert invoke(client, function_name, {"ok": 1}).payload == {"ok": 1}
