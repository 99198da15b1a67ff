"""SQS event source mappings end to end: boto3 and the aws CLI against a real `kiln serve`.

Functions under test forward every event they receive to a "results" queue (SendMessage to
Kiln's SQS port from inside the function), so a test sees exactly what Lambda handed the
function, durably, also across a `kill -9`. Expected shapes come from the AWS recordings
(`event_source_mapping/test_lambda_integration_sqs.snapshot.json`).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kiln_harness import ACCOUNT_ID, REGION, ROLE, KilnServer, aws_clients, make_queue, make_zip, unique
from recordings import assert_matches, error_response, recorded

SQS_RECORDINGS = "event_source_mapping/test_lambda_integration_sqs.snapshot.json"
FAST = {"Delay": 0.1, "MaximumAttempts": 200}

# Forwards the event (and what the function was asked to do with it) to RESULTS_URL.
RECORDER = """\
import json
import os
import urllib.request


def send(body):
    request = urllib.request.Request(
        os.environ["SQS_ENDPOINT"],
        data=json.dumps({"QueueUrl": os.environ["RESULTS_URL"], "MessageBody": body}).encode(),
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"},
    )
    urllib.request.urlopen(request, timeout=10).read()


def handler(event, context):
    send(json.dumps({"event": event, "version": context.function_version}))
    mode = os.environ.get("MODE", "ok")
    if mode == "fail":
        raise RuntimeError("failing on purpose")
    if mode == "report":
        failures = [
            {"itemIdentifier": record["messageId"]}
            for record in event["Records"]
            if json.loads(record["body"]).get("fail")
        ]
        return {"batchItemFailures": failures}
    if mode == "invalid-report":
        return "not a report"
    return {"ok": True}
"""
RECORDER_ZIP = make_zip({"app.py": RECORDER})

# Sleeps SLEEP seconds and sends the bodies it got, with when it started and ended, to
# RESULTS_URL: overlapping intervals are invocations that ran at the same time.
TIMER = """\
import json
import os
import time
import urllib.request


def handler(event, context):
    started = time.time()
    time.sleep(float(os.environ["SLEEP"]))
    ended = time.time()
    body = json.dumps({
        "bodies": [record["body"] for record in event["Records"]], "start": started, "end": ended,
    })
    request = urllib.request.Request(
        os.environ["SQS_ENDPOINT"],
        data=json.dumps({"QueueUrl": os.environ["RESULTS_URL"], "MessageBody": body}).encode(),
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"},
    )
    urllib.request.urlopen(request, timeout=10).read()
    return {"ok": True}
"""
TIMER_ZIP = make_zip({"app.py": TIMER})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    kiln = KilnServer(tmp_path_factory.mktemp("esm") / "data").start()
    yield kiln
    if kiln.process is not None:
        kiln.stop()


def make_recorder(lam, server, name: str, results_url: str, mode: str = "ok", timeout: int = 10):
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": RECORDER_ZIP}, Timeout=timeout,
        Environment={"Variables": {
            "SQS_ENDPOINT": server.sqs_url, "RESULTS_URL": results_url, "MODE": mode,
        }},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200})


def wait_state(lam, uuid_: str, state: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        mapping = lam.get_event_source_mapping(UUID=uuid_)
        if mapping["State"] == state:
            return mapping
        if time.monotonic() > deadline:
            raise AssertionError(f"mapping stayed {mapping['State']}, wanted {state}")
        time.sleep(0.05)


def collect(sqs, results_url: str, count: int, timeout: float = 30) -> list[dict]:
    """The next `count` forwarded invocations (each {"event", "version"})."""
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(found)} of {count} invocations arrived: {found}")
        reply = sqs.receive_message(QueueUrl=results_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in reply.get("Messages", []):
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=results_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def drain(sqs, url: str) -> list[dict]:
    """Every message now in `url` (parsed JSON bodies), deleted; ends at the first empty receive."""
    found: list[dict] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def most_overlapping(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (one ending as another starts do not overlap)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


def records(invocations: list[dict]) -> list[dict]:
    return [record for invocation in invocations for record in invocation["event"]["Records"]]


def queue_counts(sqs, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def wait_empty(sqs, url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while queue_counts(sqs, url) != (0, 0):
        if time.monotonic() > deadline:
            raise AssertionError(f"queue not empty: {queue_counts(sqs, url)}")
        time.sleep(0.1)


def error_of(excinfo) -> tuple[int, str, str]:
    response = excinfo.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


# ---------------------------------------------------------------------------------------------


def test_messages_reach_the_function_as_lambdas_sqs_event(server):
    lam, sqs = aws_clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    url, arn = make_queue(sqs, unique("source"))
    name = unique("recorder")
    make_recorder(lam, server, name, results_url)

    created = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, MaximumBatchingWindowInSeconds=1
    )
    assert_matches(
        created,
        recorded(SQS_RECORDINGS, "event_source_mapping/test_lambda_integration_sqs.py::TestSQSEventSourceMapping::test_sqs_event_source_mapping",
                 "create-event-source-mapping-response"),
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    enabled = wait_state(lam, created["UUID"], "Enabled")
    assert enabled["ResponseMetadata"]["HTTPStatusCode"] == 200

    sqs.send_message(
        QueueUrl=url, MessageBody=json.dumps({"foo": "bar"}),
        MessageAttributes={
            "Title": {"DataType": "String", "StringValue": "The Whistler"},
            "Author": {"DataType": "String", "StringValue": "John Grisham"},
            "WeeksOn": {"DataType": "Number", "StringValue": "6"},
        },
    )
    (invocation,) = collect(sqs, results_url, 1)
    (record,) = invocation["event"]["Records"]
    assert invocation["version"] == "$LATEST"
    assert json.loads(record["body"]) == {"foo": "bar"}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["awsRegion"] == REGION
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    # The recorded AWS event for exactly these attributes.
    expected = recorded(
        SQS_RECORDINGS, "event_source_mapping/test_lambda_integration_sqs.py::test_message_body_and_attributes_passed_correctly",
        "first_attempt",
    )["Messages"][0]["Body"]["event"]["Records"][0]
    assert record["messageAttributes"] == expected["messageAttributes"]
    assert record["md5OfMessageAttributes"] == expected["md5OfMessageAttributes"]
    assert sorted(record) == sorted(expected)
    wait_empty(sqs, url)

    listed = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [created["UUID"]]
    assert [m["UUID"] for m in lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]] == [created["UUID"]]

    deleted = lam.delete_event_source_mapping(UUID=created["UUID"])
    assert deleted["State"] == "Deleting" and deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    deadline = time.monotonic() + 10
    while True:
        try:
            lam.get_event_source_mapping(UUID=created["UUID"])
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ResourceNotFoundException"
            break
        assert time.monotonic() < deadline, "the mapping was never deleted"
        time.sleep(0.05)
    sqs.send_message(QueueUrl=url, MessageBody="after delete")
    time.sleep(1.5)
    assert queue_counts(sqs, url) == (1, 0), "a deleted mapping polls no more"


def test_batch_size_and_window_gather_one_batch(server):
    lam, sqs = aws_clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    url, arn = make_queue(sqs, unique("source"))
    name = unique("recorder")
    make_recorder(lam, server, name, results_url)
    for start in range(0, 15, 5):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": json.dumps({"n": i})} for i in range(start, start + 5)
        ])
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=20, MaximumBatchingWindowInSeconds=2,
    )
    assert mapping["BatchSize"] == 20
    found = records(collect(sqs, results_url, 1))
    time.sleep(0.5)
    found += records(collect(sqs, results_url, 0))
    assert len(found) == 15, "one batch of 15: the window gathered them"
    assert sorted(json.loads(r["body"])["n"] for r in found) == list(range(15))
    wait_empty(sqs, url)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_partial_batch_failures_and_redrive(server):
    lam, sqs = aws_clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    dlq_url, dlq_arn = make_queue(sqs, unique("dlq"))
    url, arn = make_queue(
        sqs, unique("source"), VisibilityTimeout=2,
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
    )
    name = unique("recorder")
    make_recorder(lam, server, name, results_url, mode="report", timeout=2)
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok1", "MessageBody": json.dumps({"id": "ok1"})},
        {"Id": "bad", "MessageBody": json.dumps({"id": "bad", "fail": True})},
        {"Id": "ok2", "MessageBody": json.dumps({"id": "ok2"})},
    ])
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=10, MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    first = records(collect(sqs, results_url, 1))
    assert sorted(json.loads(r["body"])["id"] for r in first) == ["bad", "ok1", "ok2"]
    # Only the reported failure comes back, once more (maxReceiveCount 2), then to the DLQ.
    second = records(collect(sqs, results_url, 1, timeout=15))
    assert [json.loads(r["body"])["id"] for r in second] == ["bad"]
    assert second[0]["attributes"]["ApproximateReceiveCount"] == "2"
    deadline = time.monotonic() + 15
    dead = []
    while not dead:
        assert time.monotonic() < deadline, "the failed message never reached the DLQ"
        dead = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
    assert json.loads(dead[0]["Body"])["id"] == "bad"
    wait_empty(sqs, url)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_a_failing_function_leaves_the_batch_for_retry(server):
    lam, sqs = aws_clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    url, arn = make_queue(sqs, unique("source"), VisibilityTimeout=2)
    name = unique("recorder")
    make_recorder(lam, server, name, results_url, mode="invalid-report", timeout=2)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": 1}))
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    # An invalid report fails the whole batch: the message is received again.
    attempts = records(collect(sqs, results_url, 2, timeout=15))
    assert [r["attributes"]["ApproximateReceiveCount"] for r in attempts] == ["1", "2"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=[])
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_filter_criteria_drop_what_does_not_match(server):
    lam, sqs = aws_clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    url, arn = make_queue(sqs, unique("source"))
    name = unique("recorder")
    make_recorder(lam, server, name, results_url)
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"kind": ["keep"]}})}]},
    )
    assert mapping["FilterCriteria"] == {"Filters": [{"Pattern": json.dumps({"body": {"kind": ["keep"]}})}]}
    wait_state(lam, mapping["UUID"], "Enabled")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"kind": "drop"}))
    sqs.send_message(QueueUrl=url, MessageBody="not json at all")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"kind": "keep"}))
    found = records(collect(sqs, results_url, 1))
    assert [json.loads(r["body"]) for r in found] == [{"kind": "keep"}]
    # Filtered-out messages are deleted, as on Lambda.
    wait_empty(sqs, url)
    time.sleep(0.5)
    assert collect(sqs, results_url, 0) == []
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_filter_criteria_on_message_attributes(server):
    """Patterns may name the record's `messageAttributes` (Lambda filters the whole record)."""
    lam, sqs = aws_clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    url, arn = make_queue(sqs, unique("source"))
    name = unique("recorder")
    make_recorder(lam, server, name, results_url)
    patterns = [
        json.dumps({"messageAttributes": {"kind": {"stringValue": ["keep"]}}}),
        json.dumps({"messageAttributes": {"team": {"stringValue": [{"prefix": "ops-"}], "dataType": ["String"]}}}),
    ]

    def attribute(value, data_type="String"):
        return {"DataType": data_type, "StringValue": value}

    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "kind-keep", "MessageBody": "kind-keep", "MessageAttributes": {"kind": attribute("keep")}},
        {"Id": "kind-drop", "MessageBody": "kind-drop", "MessageAttributes": {"kind": attribute("drop")}},
        {"Id": "team-ops", "MessageBody": "team-ops", "MessageAttributes": {"team": attribute("ops-db")}},
        {"Id": "team-dev", "MessageBody": "team-dev", "MessageAttributes": {"team": attribute("dev-ui")}},
        # The right value under another data type: the dataType rule refuses it.
        {"Id": "team-number", "MessageBody": "team-number", "MessageAttributes": {"team": attribute("ops-1", "String.custom")}},
        # The attribute's value in the body only: a messageAttributes pattern does not look there.
        {"Id": "body-only", "MessageBody": json.dumps({"kind": "keep"})},
    ])
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name,
        FilterCriteria={"Filters": [{"Pattern": pattern} for pattern in patterns]},
    )
    assert mapping["FilterCriteria"] == {"Filters": [{"Pattern": pattern} for pattern in patterns]}
    # Kept messages are deleted after their invocation, filtered ones without one: an empty
    # queue means every result has been sent.
    wait_empty(sqs, url, timeout=30)
    found = {record["body"]: record for record in records(drain(sqs, results_url))}
    assert sorted(found) == ["kind-keep", "team-ops"]
    assert found["kind-keep"]["messageAttributes"] == {
        "kind": {"stringValue": "keep", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
    }
    assert found["team-ops"]["messageAttributes"]["team"]["stringValue"] == "ops-db"
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_filter_criteria_on_system_attributes(server):
    """A pattern on the record's `attributes`: here a FIFO queue's MessageGroupId."""
    lam, sqs = aws_clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    url, arn = make_queue(sqs, unique("source") + ".fifo", FifoQueue="true", ContentBasedDeduplication="true")
    name = unique("recorder")
    make_recorder(lam, server, name, results_url)
    for n in range(4):
        for group in ("keep", "drop"):
            sqs.send_message(QueueUrl=url, MessageBody=f"{group}-{n}", MessageGroupId=group)
    pattern = json.dumps({"attributes": {"MessageGroupId": ["keep"], "ApproximateReceiveCount": ["1"]}})
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=3,
        FilterCriteria={"Filters": [{"Pattern": pattern}]},
    )
    wait_empty(sqs, url, timeout=30)
    found = records(drain(sqs, results_url))
    # Group order holds across batches; the other group is deleted unseen.
    assert [record["body"] for record in found] == ["keep-0", "keep-1", "keep-2", "keep-3"]
    assert {record["attributes"]["MessageGroupId"] for record in found} == {"keep"}
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == counts["ApproximateNumberOfMessagesNotVisible"] == "0"
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_maximum_concurrency_caps_overlapping_invocations(server):
    """ScalingConfig.MaximumConcurrency 2: never more than two invocations at once, and two do run at once."""
    lam, sqs = aws_clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    url, arn = make_queue(sqs, unique("source"))
    name = unique("timer")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": TIMER_ZIP}, Timeout=10,
        Environment={"Variables": {"SQS_ENDPOINT": server.sqs_url, "RESULTS_URL": results_url, "SLEEP": "1"}},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200})
    bodies = [f"m{n}" for n in range(10)]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": body, "MessageBody": body} for body in bodies])
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=1, ScalingConfig={"MaximumConcurrency": 2},
    )
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert mapping["BatchSize"] == 1
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["ScalingConfig"] == {"MaximumConcurrency": 2}

    runs = collect(sqs, results_url, len(bodies), timeout=90)
    assert [len(run["bodies"]) for run in runs] == [1] * len(bodies)
    assert sorted(body for run in runs for body in run["bodies"]) == bodies
    intervals = [(run["start"], run["end"]) for run in runs]
    assert all(end - start >= 1 for start, end in intervals)
    assert most_overlapping(intervals) == 2, sorted(intervals)
    wait_empty(sqs, url)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_maximum_concurrency_out_of_range_is_refused(server):
    """2..1000, checked as the model's constraint (botocore's own check is off to reach the server)."""
    lam, sqs = aws_clients(server, config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    _, arn = make_queue(sqs, unique("source"))
    name = unique("recorder")
    make_recorder(lam, server, name, "http://unused")
    field = "scalingConfig.maximumConcurrency"
    expected = {
        1: f"1 validation error detected: Value '1' at '{field}' failed to satisfy constraint: "
           "Member must have value greater than or equal to 2",
        0: f"1 validation error detected: Value '0' at '{field}' failed to satisfy constraint: "
           "Member must have value greater than or equal to 2",
        1001: f"1 validation error detected: Value '1001' at '{field}' failed to satisfy constraint: "
              "Member must have value less than or equal to 1000",
    }
    for value, message in expected.items():
        with pytest.raises(ClientError) as excinfo:
            lam.create_event_source_mapping(
                EventSourceArn=arn, FunctionName=name, ScalingConfig={"MaximumConcurrency": value}
            )
        assert error_of(excinfo) == (400, "ValidationException", message)
    assert lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"] == []

    # The bounds themselves are accepted.
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, Enabled=False, ScalingConfig={"MaximumConcurrency": 1000}
    )
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 1000}
    wait_state(lam, mapping["UUID"], "Disabled")
    updated = lam.update_event_source_mapping(UUID=mapping["UUID"], ScalingConfig={"MaximumConcurrency": 2})
    assert updated["ScalingConfig"] == {"MaximumConcurrency": 2}
    wait_state(lam, mapping["UUID"], "Disabled")
    for value, message in expected.items():
        with pytest.raises(ClientError) as excinfo:
            lam.update_event_source_mapping(UUID=mapping["UUID"], ScalingConfig={"MaximumConcurrency": value})
        assert error_of(excinfo) == (400, "ValidationException", message)
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["ScalingConfig"] == {"MaximumConcurrency": 2}
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_disabled_mapping_stops_and_resumes(server):
    lam, sqs = aws_clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    url, arn = make_queue(sqs, unique("source"))
    name = unique("recorder")
    make_recorder(lam, server, name, results_url)
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, Enabled=False)
    assert mapping["State"] == "Disabled"
    sqs.send_message(QueueUrl=url, MessageBody="one")
    time.sleep(1.5)
    assert queue_counts(sqs, url) == (1, 0), "a disabled mapping does not poll"
    enabling = lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    assert enabling["State"] == "Enabling"
    wait_state(lam, mapping["UUID"], "Enabled")
    assert [r["body"] for r in records(collect(sqs, results_url, 1))] == ["one"]
    disabling = lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    assert disabling["State"] == "Disabling"
    wait_state(lam, mapping["UUID"], "Disabled")
    sqs.send_message(QueueUrl=url, MessageBody="two")
    time.sleep(1.5)
    assert queue_counts(sqs, url) == (1, 0)
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    assert [r["body"] for r in records(collect(sqs, results_url, 1))] == ["two"]
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_fifo_order_holds_per_message_group(server):
    lam, sqs = aws_clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    url, arn = make_queue(sqs, unique("source") + ".fifo", FifoQueue="true", ContentBasedDeduplication="true")
    name = unique("recorder")
    make_recorder(lam, server, name, results_url)
    for n in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"g": n % 2, "n": n}), MessageGroupId=str(n % 2))
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=3)
    found = records(collect(sqs, results_url, 1))
    while len(found) < 20:
        found += records(collect(sqs, results_url, 1))
    for group in (0, 1):
        order = [json.loads(r["body"])["n"] for r in found if json.loads(r["body"])["g"] == group]
        assert order == sorted(order) and len(order) == 10, order
    assert {"MessageGroupId", "SequenceNumber", "MessageDeduplicationId"} <= set(found[0]["attributes"])
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_mapping_errors_as_aws(server):
    lam, sqs = aws_clients(server)
    _, arn = make_queue(sqs, unique("source"), VisibilityTimeout=30)
    name = unique("recorder")
    make_recorder(lam, server, name, "http://unused", timeout=10)

    for call in (lam.get_event_source_mapping, lam.delete_event_source_mapping):
        with pytest.raises(ClientError) as excinfo:
            call(UUID=str(uuid.uuid4()))
        assert error_of(excinfo) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    with pytest.raises(ClientError) as excinfo:
        lam.update_event_source_mapping(UUID=str(uuid.uuid4()), Enabled=False)
    assert error_of(excinfo)[:2] == (404, "ResourceNotFoundException")

    with pytest.raises(ClientError) as excinfo:
        lam.create_event_source_mapping(FunctionName=name)
    assert error_of(excinfo) == (400, "InvalidParameterValueException", "Unrecognized event source.")
    with pytest.raises(ClientError) as excinfo:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=unique("missing"))
    assert error_of(excinfo) == (400, "InvalidParameterValueException", "Function does not exist")
    with pytest.raises(ClientError) as excinfo:
        lam.create_event_source_mapping(
            EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{unique('nope')}", FunctionName=name
        )
    assert_matches(
        error_response(excinfo.value),
        recorded(SQS_RECORDINGS, "event_source_mapping/test_lambda_integration_sqs.py::test_esm_with_not_existing_sqs_queue", "error"),
    )
    with pytest.raises(ClientError) as excinfo:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=20)
    assert_matches(
        error_response(excinfo.value),
        recorded(SQS_RECORDINGS, "event_source_mapping/test_lambda_integration_sqs.py::TestSQSEventSourceMapping::test_event_source_mapping_default_batch_size",
                 "invalid-create-event-source-mapping"),
    )
    for pattern in ("simple string", json.dumps({"eventSource": "aws:sqs"}) + "x"):
        with pytest.raises(ClientError) as excinfo:
            lam.create_event_source_mapping(
                EventSourceArn=arn, FunctionName=name, FilterCriteria={"Filters": [{"Pattern": pattern}]}
            )
        assert error_of(excinfo) == (400, "InvalidParameterValueException", "Invalid filter pattern definition.")
    with pytest.raises(ClientError) as excinfo:
        lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName=name, DestinationConfig={"OnFailure": {"Destination": arn}}
        )
    assert error_of(excinfo)[2] == "Unsupported DestinationConfig parameter for given event source mapping type."

    # The queue's visibility timeout must cover the function's timeout.
    _, short_arn = make_queue(sqs, unique("short"), VisibilityTimeout=5)
    with pytest.raises(ClientError) as excinfo:
        lam.create_event_source_mapping(EventSourceArn=short_arn, FunctionName=name)
    assert error_of(excinfo) == (
        400, "InvalidParameterValueException",
        "Queue visibility timeout: 5 seconds is less than Function timeout: 10 seconds",
    )

    first = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name)
    with pytest.raises(ClientError) as excinfo:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name)
    assert error_of(excinfo) == (
        409, "ResourceConflictException",
        f'An event source mapping with SQS arn (" {arn} ") and function (" {name} ") already exists. '
        f"Please update or delete the existing mapping with UUID {first['UUID']}",
    )
    lam.delete_event_source_mapping(UUID=first["UUID"])


def test_mappings_with_the_aws_cli(server, tmp_path):
    from conftest import AwsCli

    lam, sqs = aws_clients(server)
    _, arn = make_queue(sqs, unique("source"))
    name = unique("recorder")
    make_recorder(lam, server, name, "http://unused")
    aws = AwsCli(server.url)
    created = aws.json("lambda", "create-event-source-mapping", "--function-name", name,
                       "--event-source-arn", arn, "--batch-size", "5")
    assert created["BatchSize"] == 5 and created["State"] == "Creating"
    listed = aws.json("lambda", "list-event-source-mappings", "--function-name", name)
    assert [m["UUID"] for m in listed["EventSourceMappings"]] == [created["UUID"]]
    wait_state(lam, created["UUID"], "Enabled")
    updated = aws.json("lambda", "update-event-source-mapping", "--uuid", created["UUID"], "--batch-size", "7")
    assert updated["BatchSize"] == 7 and updated["State"] == "Updating"
    wait_state(lam, created["UUID"], "Enabled")
    got = aws.json("lambda", "get-event-source-mapping", "--uuid", created["UUID"])
    assert got["UUID"] == created["UUID"]
    assert got["BatchSize"] == 7 and got["State"] == "Enabled"
    assert got["EventSourceArn"] == arn
    assert got["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    assert got["EventSourceMappingArn"] == created["EventSourceMappingArn"]
    assert "ScalingConfig" not in got
    scaled = aws.json("lambda", "update-event-source-mapping", "--uuid", created["UUID"],
                      "--scaling-config", "MaximumConcurrency=3")
    assert scaled["ScalingConfig"] == {"MaximumConcurrency": 3}
    wait_state(lam, created["UUID"], "Enabled")
    got = aws.json("lambda", "get-event-source-mapping", "--uuid", created["UUID"])
    assert got["ScalingConfig"] == {"MaximumConcurrency": 3} and got["BatchSize"] == 7
    refused = aws.run("lambda", "get-event-source-mapping", "--uuid", str(uuid.uuid4()), check=False)
    assert refused.returncode != 0
    assert "(ResourceNotFoundException) when calling the GetEventSourceMapping operation: " \
        "The resource you requested does not exist." in refused.stderr
    aws.json("lambda", "delete-event-source-mapping", "--uuid", created["UUID"])


def test_kill9_with_messages_in_flight_loses_nothing(tmp_path):
    server = KilnServer(tmp_path / "data").start()
    try:
        lam, sqs = aws_clients(server)
        results_url, _ = make_queue(sqs, "results")
        url, arn = make_queue(sqs, "source", VisibilityTimeout=3)
        make_recorder(lam, server, "recorder", results_url, timeout=3)
        sent = [str(n) for n in range(300)]
        for start in range(0, len(sent), 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": n, "MessageBody": n} for n in sent[start:start + 10]
            ])
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="recorder", BatchSize=10)
        # Let part of the queue be processed, then kill the server mid-work.
        seen: set[str] = set()
        while len(seen) < 50:
            seen |= {r["body"] for r in records(collect(sqs, results_url, 1))}
        server.kill9()
        server.restart()
        lam, sqs = aws_clients(server)
        deadline = time.monotonic() + 60
        while not set(sent) <= seen:
            assert time.monotonic() < deadline, f"never processed: {sorted(set(sent) - seen, key=int)[:20]}"
            reply = sqs.receive_message(QueueUrl=results_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in reply.get("Messages", []):
                seen |= {r["body"] for r in json.loads(message["Body"])["event"]["Records"]}
                sqs.delete_message(QueueUrl=results_url, ReceiptHandle=message["ReceiptHandle"])
        wait_empty(sqs, url, timeout=30)
    finally:
        if server.process is not None:
            server.kill9()
