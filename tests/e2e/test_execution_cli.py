"""Running functions from the command line: `kiln invoke`, `kiln logs [--follow]`,
`kiln doctor`, and the aws CLI's `lambda invoke --log-type Tail`, against the real server."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import time

import pytest

from kiln_harness import ROLE, kiln_binary, make_zip

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
REPORT = re.compile(
    rf"^REPORT RequestId: ({UUID})\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t(Init Duration: \d+\.\d\d ms\t)?$"
)

PYTHON = make_zip(
    {
        "app.py": (
            "import time\n"
            "def echo(event, context):\n"
            "    print('echoing', event)\n"
            "    return event\n"
            "def fail(event, context):\n"
            "    raise RuntimeError('cli failure')\n"
            "def follow(event, context):\n"
            "    print('follow-marker', event['marker'], flush=True)\n"
            "    time.sleep(2)\n"
            "    print('follow-done', event['marker'], flush=True)\n"
            "    return 'followed'\n"
            "def multiline(event, context):\n"
            "    print('first line\\nsecond line')\n"
            "    return 'ok'\n"
        )
    }
)
NODE = make_zip({"index.js": "exports.echo = async (event) => event;\n"})
SHELL = make_zip(
    {
        "bootstrap": (
            "#!/bin/sh\n"
            'API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"\n'
            "while true; do\n"
            '  EVENT=$(curl -sS -D /tmp/h "$API/invocation/next")\n'
            "  ID=$(grep -i '^lambda-runtime-aws-request-id:' /tmp/h | tr -d '\\r' | cut -d' ' -f2)\n"
            "  printf '%s' \"$EVENT\" | curl -sS -X POST --data-binary @- "
            '"$API/invocation/$ID/response" >/dev/null\n'
            "done\n"
        )
    },
    modes={"bootstrap": 0o755},
)
FAMILIES = {
    "python": ("python3.12", PYTHON, "app.echo"),
    "node": ("nodejs20.x", NODE, "index.echo"),
    "shell": ("provided.al2023", SHELL, "echo"),
}


def create(client, name, family="python", handler=None):
    runtime, code, default_handler = FAMILIES[family]
    client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler=handler or default_handler,
        Code={"ZipFile": code},
        Timeout=10,
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )


def kiln_cli(*args, endpoint=None, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    command = [str(kiln_binary()), *args]
    if endpoint is not None:
        command += ["--endpoint", endpoint]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=dict(os.environ), **kwargs
    )


def assert_tail(text: str) -> str:
    """START first, END and REPORT last; returns the request id."""
    lines = text.splitlines()
    report = REPORT.match(lines[-1])
    assert report, text
    request_id = report.group(1)
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST", text
    assert lines[-2] == f"END RequestId: {request_id}", text
    return request_id


# ---------------------------------------------------------------------------------------------
# kiln invoke


@pytest.mark.parametrize("family", ["python", "node", "shell"])
def test_kiln_invoke_prints_the_result_and_the_log(kiln, lambda_client, function_name, family):
    create(lambda_client, function_name, family)
    result = kiln_cli(
        "invoke", function_name, "--payload", '{"hello": "wörld", "n": [1, 2]}', endpoint=kiln.url
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"hello": "wörld", "n": [1, 2]}
    assert result.stdout.endswith("\n")
    assert_tail(result.stderr)
    if family == "python":
        assert "echoing {'hello': 'wörld', 'n': [1, 2]}" in result.stderr.splitlines()
    # The default payload is {}.
    default = kiln_cli("invoke", function_name, endpoint=kiln.url)
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout) == {}


def test_kiln_invoke_options(kiln, lambda_client, function_name, tmp_path):
    create(lambda_client, function_name)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"from": "file", "text": "日本語"}))
    from_file = kiln_cli("invoke", function_name, "--payload", f"@{event}", endpoint=kiln.url)
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout) == {"from": "file", "text": "日本語"}

    from_stdin = kiln_cli(
        "invoke", function_name, "--payload", "@-", endpoint=kiln.url, input='[1, "stdin"]'
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert json.loads(from_stdin.stdout) == [1, "stdin"]

    qualified = kiln_cli(
        "invoke", function_name, "--qualifier", "$LATEST", "--no-logs", "--payload", "7",
        endpoint=kiln.url,
    )
    assert qualified.returncode == 0, qualified.stderr
    assert json.loads(qualified.stdout) == 7
    assert qualified.stderr == "", "--no-logs prints no log"

    # The endpoint may also come from KILN_ENDPOINT.
    env = {**os.environ, "KILN_ENDPOINT": kiln.url}
    by_env = subprocess.run(
        [str(kiln_binary()), "invoke", function_name, "--payload", '"env"'],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert by_env.returncode == 0, by_env.stderr
    assert json.loads(by_env.stdout) == "env"


def test_kiln_invoke_function_error_exits_1(kiln, lambda_client, function_name):
    create(lambda_client, function_name, handler="app.fail")
    result = kiln_cli("invoke", function_name, endpoint=kiln.url)
    assert result.returncode == 1, (result.returncode, result.stderr)
    error = json.loads(result.stdout)
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "cli failure"
    request_id = assert_tail(result.stderr)
    assert error["requestId"] == request_id
    assert "[ERROR] RuntimeError: cli failure" in result.stderr


def test_kiln_invoke_api_errors(kiln, lambda_client, function_name):
    missing = kiln_cli("invoke", f"{function_name}-missing", endpoint=kiln.url)
    assert missing.returncode != 0
    assert missing.stdout == ""
    assert "ResourceNotFoundException" in missing.stderr
    assert f"function:{function_name}-missing" in missing.stderr

    create(lambda_client, function_name)
    invalid = kiln_cli("invoke", function_name, "--payload", "{not json", endpoint=kiln.url)
    assert invalid.returncode != 0
    assert invalid.stdout == ""
    assert "InvalidRequestContentException" in invalid.stderr

    unreachable = kiln_cli("invoke", function_name, endpoint="http://127.0.0.1:9", timeout=30)
    assert unreachable.returncode != 0
    assert unreachable.stdout == ""
    assert unreachable.stderr.strip()


# ---------------------------------------------------------------------------------------------
# kiln logs


def test_kiln_logs_prints_stored_lines(kiln, lambda_client, function_name):
    create(lambda_client, function_name, handler="app.multiline")
    first = kiln_cli("invoke", function_name, endpoint=kiln.url)
    second = kiln_cli("invoke", function_name, endpoint=kiln.url)
    ids = [assert_tail(first.stderr), assert_tail(second.stderr)]
    result = kiln_cli("logs", function_name, endpoint=kiln.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"{ISO} INIT_START Runtime Version: .+\tRuntime Version ARN: .+", lines[0])
    messages = [line.split(" ", 1)[1] if re.match(ISO, line) else line for line in lines]
    for request_id in ids:
        start = messages.index(f"START RequestId: {request_id} Version: $LATEST")
        assert messages[start + 1] == "first line"
        assert messages[start + 2] == "second line"
        assert messages[start + 3] == f"END RequestId: {request_id}"
        assert REPORT.match(messages[start + 4])
    for line in lines:
        if re.match(ISO, line):
            stamp = time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S")
            assert abs(time.mktime(stamp) - time.mktime(time.gmtime())) < 120
    # A function with no invocations has no lines; --since filters by time.
    assert kiln_cli("logs", f"{function_name}-none", endpoint=kiln.url).stdout == ""
    time.sleep(1.2)
    recent = kiln_cli("logs", function_name, "--since", "1s", endpoint=kiln.url)
    assert recent.returncode == 0
    assert recent.stdout == ""
    third = kiln_cli("invoke", function_name, endpoint=kiln.url)
    third_id = assert_tail(third.stderr)
    recent = kiln_cli("logs", function_name, "--since", "1s", endpoint=kiln.url)
    assert f"START RequestId: {third_id} Version: $LATEST" in recent.stdout
    assert ids[0] not in recent.stdout
    assert "INIT_START" not in recent.stdout
    assert ids[0] in kiln_cli("logs", function_name, "--since", "10m", endpoint=kiln.url).stdout


def test_kiln_logs_follow_shows_lines_while_the_invocation_runs(
    kiln, lambda_client, function_name
):
    create(lambda_client, function_name, handler="app.follow")
    marker = function_name
    follower = subprocess.Popen(
        [str(kiln_binary()), "logs", function_name, "--follow", "--endpoint", kiln.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[tuple[float, str]] = []

    def read():
        for line in follower.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        time.sleep(0.3)  # the follower is connected
        finished = {}

        def call():
            finished["result"] = lambda_client.invoke(
                FunctionName=function_name, Payload=json.dumps({"marker": marker})
            )
            finished["at"] = time.monotonic()

        invoker = threading.Thread(target=call)
        invoker.start()
        deadline = time.monotonic() + 10
        seen_at = None
        while time.monotonic() < deadline and seen_at is None:
            for at, line in list(lines):
                if line.endswith(f"follow-marker {marker}"):
                    seen_at = at
            time.sleep(0.02)
        assert seen_at is not None, lines
        assert "at" not in finished, "the line was shown only after the invocation ended"
        invoker.join()
        assert json.loads(finished["result"]["Payload"].read()) == "followed"
        assert seen_at < finished["at"] - 1.0, "shown while the handler still slept"
        # The rest of the invocation follows.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            line.split(" ", 1)[-1].startswith("REPORT RequestId: ") for _, line in lines
        ):
            time.sleep(0.02)
        messages = [line.split(" ", 1)[1] for _, line in lines]
        start = next(i for i, m in enumerate(messages) if m.startswith("START RequestId: "))
        assert messages[start + 1] == f"follow-marker {marker}"
        assert messages[start + 2] == f"follow-done {marker}"
        assert messages[start + 3].startswith("END RequestId: ")
        assert REPORT.match(messages[start + 4])
        assert all(re.match(ISO + " ", line) for _, line in lines)
        assert follower.poll() is None, "--follow keeps running"
    finally:
        follower.kill()
        follower.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# kiln doctor


def test_kiln_doctor(kiln):
    result = kiln_cli("doctor")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    tier = re.fullmatch(r"Isolation: (\S+)", lines[0])
    assert tier, lines[0]
    # The same tier the server announced at start-up.
    server_log = re.sub(r"\x1b\[[0-9;]*m", "", kiln.log_path.read_text(errors="replace"))
    assert f'function sandboxes tier="{tier.group(1)}"' in server_log
    assert "  functions isolated from the host and each other: yes" in lines
    assert "  memory and CPU limits enforced: yes" in lines
    assert "Runtimes:" in lines
    runtimes = lines[lines.index("Runtimes:") + 1 :]
    assert any(re.fullmatch(r"  python3\.x: /\S+ \(version 3\.\d+\)", line) for line in runtimes)
    assert any(re.fullmatch(r"  nodejs: /\S+ \(version \d+\)", line) for line in runtimes)
    assert any(line.startswith("  provided, provided.al2, provided.al2023: ") for line in runtimes)


# ---------------------------------------------------------------------------------------------
# The aws CLI


def test_aws_cli_invoke_with_log_tail(aws, lambda_client, function_name, tmp_path):
    create(lambda_client, function_name)
    outfile = tmp_path / "out.json"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"cli": True, "text": "ünïcode"}))
    response = aws.json(
        "lambda", "invoke",
        "--function-name", function_name,
        "--payload", f"fileb://{event}",
        "--log-type", "Tail",
        str(outfile),
    )
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert json.loads(outfile.read_text()) == {"cli": True, "text": "ünïcode"}
    tail = base64.b64decode(response["LogResult"]).decode()
    assert_tail(tail)
    assert "echoing {'cli': True, 'text': 'ünïcode'}" in tail.splitlines()

    # A function error: still exit 0 for the CLI, with FunctionError set.
    failing = f"{function_name}-fail"
    create(lambda_client, failing, handler="app.fail")
    response = aws.json(
        "lambda", "invoke", "--function-name", failing, "--log-type", "Tail", str(outfile)
    )
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(outfile.read_text())
    assert (error["errorType"], error["errorMessage"]) == ("RuntimeError", "cli failure")
    assert_tail(base64.b64decode(response["LogResult"]).decode())

    # Errors of the API are the CLI's errors.
    missing = aws.run(
        "lambda", "invoke", "--function-name", f"{function_name}-missing", str(outfile),
        check=False,
    )
    assert missing.returncode != 0
    assert "An error occurred (ResourceNotFoundException)" in missing.stderr

    dry = aws.json(
        "lambda", "invoke", "--function-name", function_name,
        "--invocation-type", "DryRun", str(outfile),
    )
    assert dry["StatusCode"] == 204
