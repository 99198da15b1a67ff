"""Recursive loop detection end to end: PutFunctionRecursionConfig and
GetFunctionRecursionConfig, and loops stopped after 16 rounds, with boto3 both outside and
inside the functions.

The looping functions use the real boto3 (shipped to them in a layer built from this test
environment's own boto3), which forwards the function's `_X_AMZN_TRACE_ID` as
`X-Amzn-Trace-Id` on every call (botocore's recursion detection): nothing in the functions
knows about Kiln's lineage. Expected shapes and messages come from the AWS recordings
(`test_lambda_api.snapshot.json`, `TestLambdaRecursion`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import botocore
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kiln_harness import ROLE, KilnServer, aws_clients, make_queue, make_zip, scrape_metrics, unique
from recordings import assert_matches, error_response, recorded

API = "test_lambda_api.snapshot.json"
RECURSION_TEST = "test_lambda_api.py::TestLambdaRecursion::"
STOPPED = (
    "Lambda has detected your function being invoked in a recursive loop with other Amazon "
    "Web Services resources and stopped your function's invocation."
)
# Lambda lets one chain of events invoke a function this many times.
LIMIT = 16

# Reads a counter from each SQS record (or from an async event), reports it with the trace
# header it ran under, and sends the next counter on: to the queue that triggered it, or to
# itself as an asynchronous invocation. Stops on its own at STOP_AT.
LOOPER = """\
import json
import os

import boto3

sqs = boto3.client("sqs")
lam = boto3.client("lambda")


def report(n):
    sqs.send_message(QueueUrl=os.environ["RESULTS_URL"], MessageBody=json.dumps(
        {"n": n, "trace": os.environ.get("_X_AMZN_TRACE_ID")}))


def handler(event, context):
    stop_at = int(os.environ.get("STOP_AT", "1000"))
    if "Records" in event:
        for record in event["Records"]:
            n = json.loads(record["body"])["n"]
            report(n)
            if n < stop_at:
                sqs.send_message(QueueUrl=os.environ["LOOP_URL"], MessageBody=json.dumps({"n": n + 1}))
    else:
        n = event["n"]
        report(n)
        if n < stop_at:
            lam.invoke(FunctionName=context.function_name, InvocationType="Event",
                       Payload=json.dumps({"n": n + 1}))
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID")}
"""


def boto3_layer_zip() -> bytes:
    """boto3 and its dependencies from this environment, under `python/` as a layer wants
    them; botocore's service models cut down to the two services the functions call."""
    site = Path(boto3.__file__).resolve().parents[1]
    botocore_dir = Path(botocore.__file__).resolve().parent
    files: dict[str, bytes] = {}

    def add_tree(root: Path, under: str, skip=lambda path: False):
        for path in sorted(root.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or skip(path):
                continue
            files[f"python/{under}/{path.relative_to(root)}"] = path.read_bytes()

    def unused_model(path: Path) -> bool:
        relative = path.relative_to(botocore_dir).parts
        return len(relative) > 2 and relative[0] == "data" and relative[1] not in ("lambda", "sqs")

    add_tree(botocore_dir, "botocore", unused_model)
    for package in ("boto3", "jmespath", "dateutil", "s3transfer", "urllib3"):
        add_tree(site / package, package)
    files["python/six.py"] = (site / "six.py").read_bytes()
    return make_zip(files)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    kiln = KilnServer(
        tmp_path_factory.mktemp("recursion") / "data", "--retry-delay-scale", "0.01"
    ).start()
    yield kiln
    if kiln.process is not None:
        kiln.stop()


def clients(server):
    return aws_clients(server, Config(retries={"max_attempts": 1, "mode": "standard"}))


@pytest.fixture(scope="module")
def boto3_layer(server):
    lam, _ = clients(server)
    published = lam.publish_layer_version(
        LayerName="boto3", Content={"ZipFile": boto3_layer_zip()}, CompatibleRuntimes=["python3.12"]
    )
    return published["LayerVersionArn"]


def make_looper(lam, name: str, layer: str, variables: dict, **extra) -> str:
    created = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": LOOPER})}, Timeout=30, MemorySize=256,
        Layers=[layer], Environment={"Variables": variables}, **extra,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200}
    )
    return created["FunctionArn"]


def drain(sqs, url: str, quiet: float = 3.0, timeout: float = 120) -> list[dict]:
    """Every message of a queue until none came for `quiet` seconds (deleted once read)."""
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        assert time.monotonic() < deadline, f"the queue never went quiet: {len(found)} messages"
        reply = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
            MessageAttributeNames=["All"], AttributeNames=["All"],
        )
        for message in reply.get("Messages", []):
            found.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            last = time.monotonic()
    return found


def lineage(trace: str) -> dict[str, int]:
    """The `Lineage` counts of a trace header."""
    for field in trace.split(";"):
        key, _, value = field.partition("=")
        if key == "Lineage":
            return {entry.split(":")[0]: int(entry.split(":")[1]) for entry in value.split(",")}
    return {}


def dropped(server, function: str) -> float:
    """The function's `kiln_lambda_recursive_invocations_dropped_total`."""
    samples = scrape_metrics(server)[1]
    return samples[f'kiln_lambda_recursive_invocations_dropped_total{{function_name="{function}"}}']


def test_recursion_config_defaults_to_terminate_and_round_trips(server, tmp_path):
    lam, _ = clients(server)
    name = unique("recursion-config")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 1\n"})},
    )
    got = lam.get_function_recursion_config(FunctionName=name)
    assert_matches(got, recorded(API, RECURSION_TEST + "test_put_function_recursion_config_default_terminate", "get_recursion_default_terminate_response"))

    put = lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="Allow")
    allow = RECURSION_TEST + "test_put_function_recursion_config_allow"
    assert_matches(put, recorded(API, allow, "put_recursion_config_response"))
    got = lam.get_function_recursion_config(FunctionName=name)
    assert_matches(got, recorded(API, allow, "get_recursion_config_response"))

    with pytest.raises(ClientError) as caught:
        lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="InvalidValue")
    assert_matches(
        error_response(caught.value),
        recorded(API, RECURSION_TEST + "test_put_function_recursion_config_invalid_value", "put_recursion_invalid_value_error"),
    )
    assert lam.get_function_recursion_config(FunctionName=name)["RecursiveLoop"] == "Allow"

    missing = unique("missing")
    for call in (
        lambda: lam.get_function_recursion_config(FunctionName=missing),
        lambda: lam.put_function_recursion_config(FunctionName=missing, RecursiveLoop="Allow"),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    # The setting is function-wide: a qualified name is refused.
    with pytest.raises(ClientError) as caught:
        lam.put_function_recursion_config(FunctionName=f"{name}:$LATEST", RecursiveLoop="Terminate")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_setting_survives_a_kill_9(tmp_path):
    kiln = KilnServer(tmp_path / "data").start()
    try:
        lam, _ = clients(kiln)
        lam.create_function(
            FunctionName="kept", Runtime="python3.12", Role=ROLE, Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 1\n"})},
        )
        lam.put_function_recursion_config(FunctionName="kept", RecursiveLoop="Allow")
        kiln.kill9()
        kiln.restart()
        lam, _ = clients(kiln)
        assert lam.get_function_recursion_config(FunctionName="kept")["RecursiveLoop"] == "Allow"
    finally:
        kiln.stop()


def test_a_loop_through_a_queue_stops_after_16_rounds(server, boto3_layer):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    dlq_url, dlq_arn = make_queue(sqs, unique("loop-dlq"))
    loop_url, loop_arn = make_queue(
        sqs, unique("loop"),
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
    )
    name = unique("sqs-looper")
    make_looper(lam, name, boto3_layer, {"RESULTS_URL": results_url, "LOOP_URL": loop_url})
    lam.create_event_source_mapping(EventSourceArn=loop_arn, FunctionName=name, BatchSize=1)

    sqs.send_message(QueueUrl=loop_url, MessageBody=json.dumps({"n": 1}))
    reports = [json.loads(message["Body"]) for message in drain(sqs, results_url)]
    assert sorted(report["n"] for report in reports) == list(range(1, LIMIT + 1))
    # Each round ran under the trace of the message that triggered it, one round further.
    for report in reports:
        counts = lineage(report["trace"])
        assert list(counts.values()) == [report["n"]], report

    # The 17th message was not delivered: it sits in the queue's dead-letter queue, intact.
    [stopped] = drain(sqs, dlq_url, quiet=1)
    assert json.loads(stopped["Body"]) == {"n": LIMIT + 1}
    assert list(lineage(stopped["Attributes"]["AWSTraceHeader"]).values()) == [LIMIT]
    assert not sqs.receive_message(QueueUrl=loop_url, WaitTimeSeconds=1).get("Messages")
    assert dropped(server, name) == 1
    samples = scrape_metrics(server)[1]
    assert samples[f'kiln_lambda_invocations_total{{function_name="{name}",executed_version="$LATEST"}}'] == LIMIT


def test_allow_lets_a_loop_run_on(server, boto3_layer):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    loop_url, loop_arn = make_queue(sqs, unique("loop"))
    name = unique("sqs-allowed")
    make_looper(lam, name, boto3_layer, {"RESULTS_URL": results_url, "LOOP_URL": loop_url, "STOP_AT": "20"})
    lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="Allow")
    lam.create_event_source_mapping(EventSourceArn=loop_arn, FunctionName=name, BatchSize=1)

    sqs.send_message(QueueUrl=loop_url, MessageBody=json.dumps({"n": 1}))
    reports = [json.loads(message["Body"]) for message in drain(sqs, results_url)]
    assert sorted(report["n"] for report in reports) == list(range(1, 21))
    assert dropped(server, name) == 0


def test_an_async_self_invocation_loop_stops_and_goes_to_the_dlq_and_on_failure(server, boto3_layer):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    dlq_url, dlq_arn = make_queue(sqs, unique("dlq"))
    failure_url, failure_arn = make_queue(sqs, unique("failure"))
    name = unique("async-looper")
    arn = make_looper(lam, name, boto3_layer, {"RESULTS_URL": results_url},
                      DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": failure_arn}}
    )

    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"n": 1}))
    reports = [json.loads(message["Body"]) for message in drain(sqs, results_url)]
    assert sorted(report["n"] for report in reports) == list(range(1, LIMIT + 1))

    # The 17th event is not retried: it goes to the DLQ and the on-failure destination.
    [dead] = drain(sqs, dlq_url, quiet=1)
    assert json.loads(dead["Body"]) == {"n": LIMIT + 1}
    attributes = dead["MessageAttributes"]
    assert attributes["ErrorCode"] == {"StringValue": "400", "DataType": "Number"}
    assert attributes["ErrorMessage"] == {"StringValue": STOPPED, "DataType": "String"}
    request_id = attributes["RequestID"]["StringValue"]
    [failure] = drain(sqs, failure_url, quiet=1)
    record = json.loads(failure["Body"])
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{arn}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 0,
    }
    assert record["requestPayload"] == {"n": LIMIT + 1}
    assert record["responseContext"] == {"statusCode": 400}
    assert record["responsePayload"] == {"errorMessage": STOPPED}
    assert dropped(server, name) == 1


def test_a_synchronous_invoke_in_a_loop_is_refused(server):
    lam, _ = clients(server)
    name = unique("sync")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": "import os\ndef handler(e, c):\n    return os.environ['_X_AMZN_TRACE_ID']\n"})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})

    def invoke_with_trace(trace: str | None):
        client, _ = clients(server)
        if trace is not None:
            client.meta.events.register(
                "before-call.lambda.Invoke",
                lambda params, **kwargs: params["headers"].__setitem__("X-Amzn-Trace-Id", trace),
            )
        return client.invoke(FunctionName=name, Payload=b"{}")

    # Without a caller's trace the function gets a new one, counting this invocation.
    first = json.loads(invoke_with_trace(None)["Payload"].read())
    assert first.startswith("Root=1-")
    [(key, count)] = lineage(first).items()
    assert count == 1
    # The caller's trace is kept, with the function's count advanced.
    root = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    passed = json.loads(invoke_with_trace(f"{root};Lineage={key}:{LIMIT - 1}")["Payload"].read())
    assert passed == f"{root};Lineage={key}:{LIMIT}"
    # A caller already 16 rounds into a loop is stopped.
    with pytest.raises(ClientError) as caught:
        invoke_with_trace(f"{root};Lineage={key}:{LIMIT}")
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"] == {"Code": "RecursiveInvocationException", "Message": STOPPED}
    # Allow lifts it.
    lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="Allow")
    passed = json.loads(invoke_with_trace(f"{root};Lineage={key}:{LIMIT}")["Payload"].read())
    assert lineage(passed) == {key: LIMIT + 1}
