"""Asynchronous invocation end to end: `InvocationType=Event`, `InvokeAsync`, retries,
dead-letter queues, destinations and event invoke configs, with boto3 against a real
`kiln serve` started with `--retry-delay-scale 0.01` (Lambda's one-minute retry takes 0.6 s).

Functions under test forward every invocation to a "results" queue of Kiln's (SendMessage
from inside the function), so a test sees each attempt durably, also across a `kill -9`.
Expected shapes come from the AWS recordings (`test_lambda_destinations.snapshot.json`,
`test_lambda_api.snapshot.json`).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kiln_harness import (
    REGION, ROLE, KilnServer, aws_clients, make_queue, make_zip, scrape_metrics, unique,
)
from recordings import assert_matches, error_response, recorded

DESTINATIONS = "test_lambda_destinations.snapshot.json"
API = "test_lambda_api.snapshot.json"
DESTINATION_TEST = "test_lambda_destinations.py::TestLambdaDestinationSqs::"
CONFIG_TEST = "test_lambda_api.py::TestLambdaEventInvokeConfig::test_lambda_eventinvokeconfig_exceptions"
SCALE = 0.01

# Forwards each invocation (event, request id, time) to RESULTS_URL, then fails if asked to.
RECORDER = """\
import json
import os
import time
import urllib.request


def send(body):
    request = urllib.request.Request(
        os.environ["SQS_ENDPOINT"],
        data=json.dumps({"QueueUrl": os.environ["RESULTS_URL"], "MessageBody": body}).encode(),
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"},
    )
    urllib.request.urlopen(request, timeout=10).read()


def handler(event, context):
    send(json.dumps({"event": event, "request_id": context.aws_request_id, "at": time.time(),
                     "version": context.function_version}))
    time.sleep(float(os.environ.get("SLEEP", "0")))
    if os.environ.get("MODE") == "fail":
        raise Exception("intentional failure")
    return {"ok": True, "event": event}
"""
RECORDER_ZIP = make_zip({"app.py": RECORDER})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    kiln = KilnServer(
        tmp_path_factory.mktemp("async") / "data", "--retry-delay-scale", str(SCALE)
    ).start()
    yield kiln
    if kiln.process is not None:
        kiln.stop()


def clients(server):
    return aws_clients(
        server, Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=32)
    )


def make_recorder(lam, server, name: str, results_url: str, mode: str = "ok", **extra) -> str:
    # These tests time Kiln's retries and deliveries, not the function. At 128 MB (1/14 of a
    # vCPU) a Python exception and its traceback alone take 60 to 350 ms on these machines,
    # which would blur the retry gaps being measured.
    extra.setdefault("MemorySize", 512)
    created = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": RECORDER_ZIP}, Timeout=10,
        Environment={"Variables": {
            "SQS_ENDPOINT": server.sqs_url, "RESULTS_URL": results_url, "MODE": mode,
        }},
        **extra,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200}
    )
    return created["FunctionArn"]


def receive(sqs, url: str, count: int, timeout: float = 30, attributes: bool = False) -> list[dict]:
    """The next `count` messages of a queue (deleted once read)."""
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(found)} of {count} messages arrived: {found}")
        extra = {"MessageAttributeNames": ["All"]} if attributes else {}
        reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **extra)
        for message in reply.get("Messages", []):
            found.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def bodies(messages: list[dict]) -> list[dict]:
    return [json.loads(message["Body"]) for message in messages]


def assert_quiet(sqs, url: str, seconds: float) -> None:
    reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=int(seconds))
    assert not reply.get("Messages"), f"unexpected messages: {reply.get('Messages')}"


def without_stack_trace(record: dict) -> dict:
    """The record with its stack trace checked for shape and removed: it names the recorded
    function's own file and line."""
    record = json.loads(json.dumps(record))
    trace = record["responsePayload"].pop("stackTrace")
    assert isinstance(trace, list) and len(trace) == 1
    return record


def destination_message(test: str, key: str) -> dict:
    entry = recorded(DESTINATIONS, DESTINATION_TEST + test, key)
    return entry["Messages"][0] if "Messages" in entry else entry


def test_event_invoke_is_accepted_and_runs_with_an_on_success_record(server):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    destination_url, destination_arn = make_queue(sqs, unique("success"))
    name = unique("async-ok")
    make_recorder(lam, server, name, results_url)
    put = lam.put_function_event_invoke_config(
        FunctionName=name,
        DestinationConfig={"OnSuccess": {"Destination": destination_arn},
                           "OnFailure": {"Destination": destination_arn}},
    )
    expected_put = recorded(DESTINATIONS, DESTINATION_TEST + "test_assess_lambda_destination_invocation[Success-payload0]", "put_function_event_invoke_config")
    assert put.pop("LastModified") is not None
    expected_put = {k: v for k, v in expected_put.items() if k != "LastModified"}
    assert_matches(put, expected_put)

    reply = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert reply["StatusCode"] == 202
    assert reply["Payload"].read() == b""
    headers = reply["ResponseMetadata"]["HTTPHeaders"]
    assert "x-amz-executed-version" not in headers
    request_id = headers["x-amzn-requestid"]

    [invocation] = bodies(receive(sqs, results_url, 1))
    assert invocation["event"] == {}
    assert invocation["request_id"] == request_id
    [message] = receive(sqs, destination_url, 1)
    record = json.loads(message["Body"])
    expected = destination_message("test_assess_lambda_destination_invocation[Success-payload0]", "receive_message_result")["Body"]
    # The recorded function returned its event and context; ours returns its own answer.
    assert record.pop("responsePayload") == {"ok": True, "event": {}}
    expected = {k: v for k, v in expected.items() if k != "responsePayload"}
    assert_matches(record, expected)
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["functionArn"].endswith(f":function:{name}:$LATEST")
    assert record["timestamp"].endswith("Z")


def test_a_failing_function_is_retried_then_sent_to_the_dlq_and_on_failure(server):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    dlq_url, dlq_arn = make_queue(sqs, unique("dlq"))
    failure_url, failure_arn = make_queue(sqs, unique("failure"))
    name = unique("async-fail")
    make_recorder(lam, server, name, results_url, mode="fail", DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": failure_arn}}
    )
    payload = {"message": unique("msg")}
    sent = time.time()
    reply = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload))
    request_id = reply["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]

    attempts = bodies(receive(sqs, results_url, 3, timeout=30))
    assert [attempt["request_id"] for attempt in attempts] == [request_id] * 3
    times = sorted(attempt["at"] for attempt in attempts)
    # Lambda waits ~1 min then ~2 min; scaled by 0.01: 0.6 s then 1.2 s.
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    assert 0.55 <= first_gap < 1.5, first_gap
    assert 1.15 <= second_gap < 2.5, second_gap
    assert times[0] - sent < 2

    [dead_letter] = receive(sqs, dlq_url, 1, attributes=True)
    expected_dlq = recorded(DESTINATIONS, "test_lambda_destinations.py::TestLambdaDLQ::test_dead_letter_queue", "receive_result")["Messages"][0]
    assert json.loads(dead_letter["Body"]) == payload
    attributes = dead_letter["MessageAttributes"]
    assert attributes["RequestID"] == {"DataType": "String", "StringValue": request_id}
    assert attributes["ErrorCode"] == expected_dlq["MessageAttributes"]["ErrorCode"]
    assert attributes["ErrorMessage"] == {"DataType": "String", "StringValue": "intentional failure"}
    assert set(attributes) == set(expected_dlq["MessageAttributes"])

    [failure] = receive(sqs, failure_url, 1)
    record = json.loads(failure["Body"])
    expected = destination_message("test_retries", "queue_destination_payload")["Body"]
    assert_matches(without_stack_trace(record), without_stack_trace(expected))
    assert record["requestPayload"] == payload
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["requestId"] == request_id
    # Exactly three attempts, no more.
    assert_quiet(sqs, results_url, 2)


def test_an_event_older_than_its_maximum_age_expires(server):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    failure_url, failure_arn = make_queue(sqs, unique("failure"))
    name = unique("async-age")
    make_recorder(lam, server, name, results_url, mode="fail")
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumEventAgeInSeconds=60, MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": failure_arn}},
    )
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"message": "m"}))
    [failure] = receive(sqs, failure_url, 1)
    expected = destination_message("test_maxeventage", "no_retry_failure_message")
    assert_matches(without_stack_trace(json.loads(failure["Body"])), without_stack_trace(expected["Body"]))
    assert len(receive(sqs, results_url, 1)) == 1
    assert_quiet(sqs, results_url, 1)


def test_a_function_can_be_the_destination_of_another(server):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    target = unique("async-target")
    target_arn = make_recorder(lam, server, target, results_url)
    source = unique("async-source")
    make_recorder(lam, server, source, results_url)
    lam.put_function_event_invoke_config(
        FunctionName=source, DestinationConfig={"OnSuccess": {"Destination": target_arn}}
    )
    lam.invoke(FunctionName=source, InvocationType="Event", Payload=b'{"hello": 1}')
    invocations = bodies(receive(sqs, results_url, 2))
    record = next(i["event"] for i in invocations if "requestContext" in i["event"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestPayload"] == {"hello": 1}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}


def test_versions_and_aliases_are_honoured(server):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    name = unique("async-alias")
    make_recorder(lam, server, name, results_url)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lam.invoke(FunctionName=name, Qualifier="live", InvocationType="Event", Payload=b"{}")
    lam.invoke(FunctionName=f"{name}:$LATEST", InvocationType="Event", Payload=b"{}")
    versions = sorted(invocation["version"] for invocation in bodies(receive(sqs, results_url, 2)))
    assert versions == sorted([version, "$LATEST"])
    with pytest.raises(ClientError) as excinfo:
        lam.invoke(FunctionName=name, Qualifier="nope", InvocationType="Event", Payload=b"{}")
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_reserved_concurrency_zero_sends_events_straight_to_the_dlq_and_on_failure(server):
    """A function throttled entirely (reserved concurrency 0) is not retried: its event fails at
    once. Without that rule it would be retried until its maximum age (216 s at this scale)."""
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    dlq_url, dlq_arn = make_queue(sqs, unique("dlq"))
    failure_url, failure_arn = make_queue(sqs, unique("failure"))
    name = unique("async-zero")
    make_recorder(lam, server, name, results_url, DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": failure_arn}}
    )
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    payload = {"message": unique("msg")}
    sent = time.monotonic()
    reply = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload))
    assert reply["StatusCode"] == 202
    request_id = reply["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]

    [dead_letter] = receive(sqs, dlq_url, 1, timeout=10, attributes=True)
    [failure] = receive(sqs, failure_url, 1, timeout=10)
    assert time.monotonic() - sent < 10
    assert json.loads(dead_letter["Body"]) == payload
    assert dead_letter["MessageAttributes"] == {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": "429"},
        "ErrorMessage": {"DataType": "String",
                         "StringValue": "throttled: ReservedFunctionConcurrentInvocationLimitExceeded"},
    }
    record = json.loads(failure["Body"])
    assert record.pop("timestamp").endswith("Z")
    function_arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    assert record == {
        "version": "1.0",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 0,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 429},
        "responsePayload": {"errorMessage": "throttled: ReservedFunctionConcurrentInvocationLimitExceeded"},
    }
    # The function never ran, and the event is delivered once, not retried.
    assert_quiet(sqs, results_url, 1)
    assert_quiet(sqs, dlq_url, 1)
    assert_quiet(sqs, failure_url, 1)

    # Once the function may run again, its events run.
    lam.delete_function_concurrency(FunctionName=name)
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"again": true}')
    [invocation] = bodies(receive(sqs, results_url, 1))
    assert invocation["event"] == {"again": True}


def test_an_event_throttled_by_a_busy_reserved_function_is_retried(server):
    """Reserved concurrency N > 0 in use is an ordinary throttle: the event waits and runs."""
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    dlq_url, dlq_arn = make_queue(sqs, unique("dlq"))
    name = unique("async-busy")
    make_recorder(lam, server, name, results_url, DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    # The recorder sleeps when asked to, holding the function's only slot.
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": RECORDER.replace(
        "    if os.environ.get", "    time.sleep(event.get('sleep', 0))\n    if os.environ.get", 1)}))
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200}
    )
    blocker = threading.Thread(target=lambda: lam.invoke(FunctionName=name, Payload=b'{"sleep": 3}'))
    blocker.start()
    [started] = bodies(receive(sqs, results_url, 1))
    assert started["event"] == {"sleep": 3}
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"queued": true}')
    blocker.join()
    [invocation] = bodies(receive(sqs, results_url, 1, timeout=30))
    assert invocation["event"] == {"queued": True}
    # It ran after the slot came back, and never reached the dead-letter queue.
    assert invocation["at"] >= started["at"] + 2.9
    assert_quiet(sqs, dlq_url, 1)


def test_invoke_async_legacy(server):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    name = unique("async-legacy")
    make_recorder(lam, server, name, results_url)
    reply = lam.invoke_async(FunctionName=name, InvokeArgs=b'{"legacy": true}')
    assert reply["Status"] == 202
    [invocation] = bodies(receive(sqs, results_url, 1))
    assert invocation["event"] == {"legacy": True}


def test_async_payload_limit(server):
    lam, _ = clients(server)
    name = unique("async-limit")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": RECORDER_ZIP},
    )
    too_large = json.dumps({"data": "x" * 1_048_576}).encode()
    with pytest.raises(ClientError) as excinfo:
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=too_large)
    error = excinfo.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["Error"]["Message"] == (
        f"{len(too_large)} byte payload is too large for the Event invocation type (limit 1048576 bytes)"
    )
    with pytest.raises(ClientError) as excinfo:
        lam.invoke(FunctionName=unique("missing"), InvocationType="Event", Payload=b"{}")
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_event_invoke_config_crud_and_errors(server):
    lam, sqs = clients(server)
    name = unique("eic")
    other = unique("eic-other")
    for function in (name, other):
        lam.create_function(
            FunctionName=function, Runtime="python3.12", Role=ROLE, Handler="app.handler",
            Code={"ZipFile": RECORDER_ZIP},
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=function, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="eventinvokealias", FunctionVersion=version)
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    other_arn = lam.get_function(FunctionName=other)["Configuration"]["FunctionArn"]

    def expect_error(key, call, **kwargs):
        with pytest.raises(ClientError) as excinfo:
            call(**kwargs)
        assert_matches(error_response(excinfo.value), recorded(API, CONFIG_TEST, key))

    def expect_ok(key, response):
        assert response.pop("LastModified") is not None
        expected = {k: v for k, v in recorded(API, CONFIG_TEST, key).items() if k != "LastModified"}
        assert_matches(response, expected)

    put = lam.put_function_event_invoke_config
    expect_error("put_functionname_name_notfound", put, FunctionName=unique("nope"), MaximumRetryAttempts=1)
    expect_error("put_functionname_nootherargs", put, FunctionName=name)
    expect_error("put_destination_lambda_doesntexist", put, FunctionName=name,
                 DestinationConfig={"OnSuccess": {"Destination": arn.replace(name, "doesnotexist")}})
    expect_error("put_destination_recursive", put, FunctionName=name,
                 DestinationConfig={"OnSuccess": {"Destination": arn}})
    expect_ok("put_destination_other_lambda", put(FunctionName=name,
              DestinationConfig={"OnSuccess": {"Destination": other_arn}}))
    expect_error("put_destination_invalid_service_arn", put, FunctionName=name,
                 DestinationConfig={"OnSuccess": {"Destination": f"arn:aws:iam:{REGION}:000000000000:function:{name}"}})
    expect_ok("put_destination_success_no_destination_arn", put(FunctionName=name,
              DestinationConfig={"OnSuccess": {}}))
    expect_error("put_destination_invalid_arn_pattern", put, FunctionName=name,
                 DestinationConfig={"OnFailure": {"Destination": f"arn:aws:_-/!lambda:{REGION}:000000000000:function:{name}"}})
    expect_ok("put_destination_latest", put(FunctionName=name, MaximumRetryAttempts=1))
    expect_ok("put_destination_version", put(FunctionName=name, Qualifier=version, MaximumRetryAttempts=1))
    expect_ok("put_alias_functionname_qualifier", put(FunctionName=name, Qualifier="eventinvokealias", MaximumRetryAttempts=1))
    expect_error("put_alias_doesnotexist", put, FunctionName=name, Qualifier="doesnotexist", MaximumRetryAttempts=1)
    expect_error("put_alias_qualifiedarn_qualifierconflict", put, FunctionName=f"{arn}:eventinvokealias", Qualifier=version, MaximumRetryAttempts=1)
    expect_ok("put_maxevent_maxvalue_result", put(FunctionName=name, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=21600))
    expect_ok("put_pre_overwrite", put(FunctionName=name, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60))
    expect_ok("put_post_overwrite", put(FunctionName=name, MaximumRetryAttempts=0))
    expect_ok("get_post_overwrite", lam.get_function_event_invoke_config(FunctionName=name))
    update = lam.update_function_event_invoke_config
    expect_ok("pre_update_response", put(FunctionName=name, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60))
    expect_ok("update_response", update(FunctionName=name, MaximumRetryAttempts=0))
    listed = lam.list_function_event_invoke_configs(FunctionName=name)
    for config in listed["FunctionEventInvokeConfigs"]:
        assert config.pop("LastModified") is not None
    expected_list = recorded(API, CONFIG_TEST, "list_configs")
    for config in expected_list["FunctionEventInvokeConfigs"]:
        config.pop("LastModified")
    assert_matches(listed, expected_list)
    for qualifier in ("$LATEST", version, "eventinvokealias"):
        reply = lam.delete_function_event_invoke_config(FunctionName=name, Qualifier=qualifier)
        assert reply["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert_matches(lam.list_function_event_invoke_configs(FunctionName=name), recorded(API, CONFIG_TEST, "list_configs_postdelete"))
    expect_error("delete_function_not_found", lam.delete_function_event_invoke_config, FunctionName=name)
    expect_error("delete_function_doesnotexist", lam.delete_function_event_invoke_config, FunctionName="doesnotexist")
    expect_error("list_function_doesnotexist", lam.list_function_event_invoke_configs, FunctionName="doesnotexist")
    expect_error("get_qualifier_doesnotexist", lam.get_function_event_invoke_config, FunctionName=name, Qualifier="doesnotexist")
    expect_error("update_eventinvokeconfig_function_doesnotexist", update, FunctionName="doesnotexist", MaximumRetryAttempts=1)
    expect_error("update_eventinvokeconfig_config_doesnotexist_with_qualifier", update, FunctionName=name, Qualifier="eventinvokealias", MaximumRetryAttempts=1)

    # Model limits, and destinations Kiln cannot deliver to.
    for field, value, constraint in (
        ("MaximumRetryAttempts", 3, "Member must have value less than or equal to 2"),
        ("MaximumEventAgeInSeconds", 21601, "Member must have value less than or equal to 21600"),
    ):
        with pytest.raises(ClientError) as excinfo:
            put(FunctionName=name, **{field: value})
        error = excinfo.value.response["Error"]
        assert error["Code"] == "ValidationException"
        assert constraint in error["Message"]
    with pytest.raises(ClientError) as excinfo:
        put(FunctionName=name, DestinationConfig={"OnFailure": {"Destination": f"arn:aws:sns:{REGION}:000000000000:topic"}})
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "Kiln has no SNS topic" in excinfo.value.response["Error"]["Message"]

    # Configs go with their function.
    put(FunctionName=name, MaximumRetryAttempts=1)
    lam.delete_function(FunctionName=name)
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": RECORDER_ZIP},
    )
    assert lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"] == []


def test_a_function_with_a_backlog_does_not_hold_up_another(tmp_path):
    """Lambda queues asynchronous events per function: a slow function's backlog delays its own
    events, not another function's. Kiln runs at most --async-concurrency attempts of one
    function at once (2 here) and parks its other due events."""
    kiln = KilnServer(tmp_path / "data", "--retry-delay-scale", str(SCALE),
                      "--async-concurrency", "2").start()
    try:
        lam, sqs = clients(kiln)
        slow_url, _ = make_queue(sqs, unique("slow"))
        quick_url, _ = make_queue(sqs, unique("quick"))
        slow = unique("async-slow")
        quick = unique("async-quick")
        make_recorder(lam, kiln, slow, slow_url, MemorySize=512)
        lam.update_function_configuration(
            FunctionName=slow,
            Environment={"Variables": {"SQS_ENDPOINT": kiln.sqs_url, "RESULTS_URL": slow_url,
                                       "MODE": "ok", "SLEEP": "4"}},
        )
        lam.get_waiter("function_updated_v2").wait(FunctionName=slow, WaiterConfig={"Delay": 0.1})
        make_recorder(lam, kiln, quick, quick_url, MemorySize=512)
        # Warm the quick function, so that its cold start does not count below.
        lam.invoke(FunctionName=quick, Payload=b'{"warm": true}')
        assert bodies(receive(sqs, quick_url, 1))[0]["event"] == {"warm": True}
        for n in range(6):
            lam.invoke(FunctionName=slow, InvocationType="Event", Payload=json.dumps({"n": n}))
        # Two slow attempts run (4 s each); four slow events wait.
        assert len(receive(sqs, slow_url, 2, timeout=30)) == 2
        sent = time.time()
        lam.invoke(FunctionName=quick, InvocationType="Event", Payload=b'{"quick": true}')
        [record] = bodies(receive(sqs, quick_url, 1, timeout=30))
        assert record["event"] == {"quick": True}
        # Behind the slow backlog it would wait at least until two slow attempts ended (~4 s).
        assert record["at"] - sent < 2.5, record["at"] - sent
        # The slow function's own events all run, two at a time.
        slow_starts = sorted(body["at"] for body in bodies(receive(sqs, slow_url, 4, timeout=60)))
        assert len(slow_starts) == 4
        assert slow_starts[2] - slow_starts[0] >= 3, slow_starts
    finally:
        if kiln.process is not None:
            kiln.stop()


def test_ten_thousand_events_survive_kill_9(tmp_path):
    kiln = KilnServer(tmp_path / "data", "--retry-delay-scale", str(SCALE)).start()
    try:
        lam, sqs = clients(kiln)
        results_url, _ = make_queue(sqs, unique("results"))
        name = unique("async-kill")
        make_recorder(lam, kiln, name, results_url)
        total, threads = 10_000, 16
        accepted: list[int] = []
        lock = threading.Lock()
        url = f"{kiln.url}/2015-03-31/functions/{name}/invocations"

        def sender(start: int) -> None:
            opener = urllib.request.build_opener()
            mine = []
            for index in range(start, total, threads):
                request = urllib.request.Request(
                    url, data=json.dumps({"id": index}).encode(), method="POST",
                    headers={"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"},
                )
                with opener.open(request, timeout=30) as reply:
                    assert reply.status == 202
                mine.append(index)
            with lock:
                accepted.extend(mine)

        workers = [threading.Thread(target=sender, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert len(accepted) == total
        kiln.kill9()
        kiln.restart()
        lam, sqs = clients(kiln)
        seen: set[int] = set()
        deadline = time.monotonic() + 300
        while len(seen) < total:
            assert time.monotonic() < deadline, f"{total - len(seen)} events never ran"
            reply = sqs.receive_message(QueueUrl=results_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = reply.get("Messages", [])
            for message in messages:
                seen.add(json.loads(message["Body"])["event"]["id"])
            if messages:
                sqs.delete_message_batch(QueueUrl=results_url, Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
                ])
        assert seen == set(range(total))
    finally:
        if kiln.process is not None:
            kiln.stop()


# --- Accounting: Lambda's per-function metrics and attempt counts, checked by value. ---

# The recorder, failing also when its event asks, and sleeping as long as its event asks.
FLEXIBLE_RECORDER_ZIP = make_zip({"app.py": RECORDER.replace(
    '    if os.environ.get("MODE") == "fail":',
    '    time.sleep(event.get("sleep", 0))\n'
    '    if os.environ.get("MODE") == "fail" or event.get("fail"):', 1)})
assert FLEXIBLE_RECORDER_ZIP != RECORDER_ZIP


def make_flexible_recorder(lam, server, name: str, results_url: str, **extra) -> str:
    created = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": FLEXIBLE_RECORDER_ZIP}, Timeout=30,
        Environment={"Variables": {
            "SQS_ENDPOINT": server.sqs_url, "RESULTS_URL": results_url, "MODE": "ok",
        }},
        **extra,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 200}
    )
    return created["FunctionArn"]


ASYNC_FAMILIES = (
    "kiln_lambda_async_events_received_total",
    "kiln_lambda_async_events_dropped_total",
    "kiln_lambda_dead_letter_errors_total",
    "kiln_lambda_destination_delivery_failures_total",
)


def function_metrics(server, name: str) -> dict[str, float]:
    """The function's counters by family: the asynchronous ones (a missing series is a KeyError,
    never read as 0), Throttles, and Invocations and Errors of `$LATEST` (None when missing, which
    no expected count equals)."""
    samples = scrape_metrics(server)[1]
    function = f'function_name="{name}"'
    latest = f'{function},executed_version="$LATEST"'
    found = {family: samples[f"{family}{{{function}}}"] for family in ASYNC_FAMILIES}
    found["kiln_lambda_async_event_age_milliseconds_count"] = samples[
        f"kiln_lambda_async_event_age_milliseconds_count{{{function}}}"]
    for family in ("kiln_lambda_invocations_total", "kiln_lambda_errors_total"):
        found[family] = samples.get(f"{family}{{{latest}}}")
    found["kiln_lambda_throttles_total"] = samples.get(f"kiln_lambda_throttles_total{{{function}}}")
    return found


def wait_for_metrics(server, name: str, expected: dict[str, float], timeout: float = 30) -> dict[str, float]:
    """The function's counters once every family in `expected` has reached its value (they only
    grow); the caller then compares them exactly, so that a count past the value fails."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = function_metrics(server, name)
        except KeyError:
            found = None
        if found is not None and all(
            found[family] is not None and found[family] >= value for family, value in expected.items()
        ):
            return found
        assert time.monotonic() < deadline, f"counters never reached {expected}: {found}"
        time.sleep(0.05)


def test_failed_deliveries_to_a_missing_dlq_and_destination_are_counted_once(server):
    """DeadLetterErrors and DestinationDeliveryFailures count failed sends: one each for an event
    that failed all three attempts, whose DLQ and on-failure queue were deleted after being
    configured; the event is counted as dropped, as every event that never ran successfully."""
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    dlq_url, dlq_arn = make_queue(sqs, unique("dlq"))
    failure_url, failure_arn = make_queue(sqs, unique("failure"))
    name = unique("async-undeliverable")
    make_recorder(lam, server, name, results_url, mode="fail", DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": failure_arn}}
    )
    sqs.delete_queue(QueueUrl=dlq_url)
    sqs.delete_queue(QueueUrl=failure_url)
    with pytest.raises(ClientError) as excinfo:
        sqs.get_queue_url(QueueName=dlq_url.rsplit("/", 1)[1])
    assert excinfo.value.response["Error"]["Code"] in (
        "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")

    reply = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 1}')
    request_id = reply["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    attempts = bodies(receive(sqs, results_url, 3))
    assert [attempt["request_id"] for attempt in attempts] == [request_id] * 3
    found = wait_for_metrics(server, name, {
        "kiln_lambda_dead_letter_errors_total": 1,
        "kiln_lambda_destination_delivery_failures_total": 1,
        "kiln_lambda_async_events_dropped_total": 1,
    })
    assert_quiet(sqs, results_url, 2)
    assert function_metrics(server, name) == found == {
        "kiln_lambda_async_events_received_total": 1,
        "kiln_lambda_async_events_dropped_total": 1,
        "kiln_lambda_dead_letter_errors_total": 1,
        "kiln_lambda_destination_delivery_failures_total": 1,
        "kiln_lambda_async_event_age_milliseconds_count": 3,
        "kiln_lambda_invocations_total": 3,
        "kiln_lambda_errors_total": 3,
        "kiln_lambda_throttles_total": 0,
    }


def test_a_failed_on_success_delivery_is_counted_once(server):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    success_url, success_arn = make_queue(sqs, unique("success"))
    name = unique("async-success-gone")
    make_recorder(lam, server, name, results_url)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": success_arn}}
    )
    sqs.delete_queue(QueueUrl=success_url)

    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 1}')
    assert len(receive(sqs, results_url, 1)) == 1
    found = wait_for_metrics(server, name, {"kiln_lambda_destination_delivery_failures_total": 1})
    # A successful event is not retried, whatever became of its record.
    assert_quiet(sqs, results_url, 2)
    assert function_metrics(server, name) == found == {
        "kiln_lambda_async_events_received_total": 1,
        "kiln_lambda_async_events_dropped_total": 0,
        "kiln_lambda_dead_letter_errors_total": 0,
        "kiln_lambda_destination_delivery_failures_total": 1,
        "kiln_lambda_async_event_age_milliseconds_count": 1,
        "kiln_lambda_invocations_total": 1,
        "kiln_lambda_errors_total": 0,
        "kiln_lambda_throttles_total": 0,
    }


def test_invocations_errors_throttles_and_async_events_are_counted_exactly(server):
    """Three synchronous invokes (one failing), two events (one failing, with no retries, DLQ or
    destination: dropped), then reserved concurrency 0 and three synchronous invokes, each
    answered 429: every counter says exactly that."""
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    name = unique("async-counted")
    make_flexible_recorder(lam, server, name, results_url)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)

    for payload in ({"sync": 1}, {"sync": 2}, {"sync": 3, "fail": True}):
        reply = lam.invoke(FunctionName=name, Payload=json.dumps(payload))
        assert ("FunctionError" in reply) == ("fail" in payload)
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"async": 1}')
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"async": 2, "fail": true}')
    events = sorted(json.dumps(body["event"], sort_keys=True) for body in bodies(receive(sqs, results_url, 5)))
    assert events == sorted(json.dumps(e, sort_keys=True) for e in (
        {"sync": 1}, {"sync": 2}, {"sync": 3, "fail": True}, {"async": 1}, {"async": 2, "fail": True}))
    wait_for_metrics(server, name, {"kiln_lambda_async_events_dropped_total": 1})

    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    # botocore's `max_attempts` counts retries (`clients` allows one); each 429 here is one
    # request.
    once, _ = aws_clients(server, Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    throttled = 0
    for _ in range(3):
        with pytest.raises(ClientError) as excinfo:
            once.invoke(FunctionName=name, Payload=b'{"throttled": true}')
        assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 0
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert excinfo.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert excinfo.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
        throttled += 1
    # No retry of the failed event, and no throttled invoke ran.
    assert_quiet(sqs, results_url, 2)
    assert function_metrics(server, name) == {
        "kiln_lambda_async_events_received_total": 2,
        "kiln_lambda_async_events_dropped_total": 1,
        "kiln_lambda_dead_letter_errors_total": 0,
        "kiln_lambda_destination_delivery_failures_total": 0,
        "kiln_lambda_async_event_age_milliseconds_count": 2,
        "kiln_lambda_invocations_total": 5,
        "kiln_lambda_errors_total": 2,
        "kiln_lambda_throttles_total": throttled,
    }


def test_no_retries_means_one_attempt_and_an_on_failure_record_of_one(server):
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    failure_url, failure_arn = make_queue(sqs, unique("failure"))
    name = unique("async-once")
    make_recorder(lam, server, name, results_url, mode="fail")
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": failure_arn}},
    )
    payload = {"message": unique("msg")}
    reply = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload))
    request_id = reply["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    [attempt] = bodies(receive(sqs, results_url, 1))
    assert attempt["request_id"] == request_id
    [failure] = receive(sqs, failure_url, 1)
    record = json.loads(failure["Body"])
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"{lam.get_function(FunctionName=name)['Configuration']['FunctionArn']}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == payload
    assert record["responseContext"] == {
        "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorMessage"] == "intentional failure"
    # A retry would have come 0.6 s after the attempt: none does, and one record only.
    assert_quiet(sqs, results_url, 2)
    assert_quiet(sqs, failure_url, 1)
    found = function_metrics(server, name)
    assert found["kiln_lambda_invocations_total"] == 1
    assert found["kiln_lambda_errors_total"] == 1


def test_an_event_throttled_until_its_maximum_age_expires_as_event_age_exceeded(server):
    """Reserved concurrency 1 held by a long synchronous invocation: the event is throttled,
    backed off, and expires after MaximumEventAgeInSeconds (60 s, 0.6 s at this scale) without
    ever running; its on-failure record says EventAgeExceeded."""
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    dlq_url, dlq_arn = make_queue(sqs, unique("dlq"))
    failure_url, failure_arn = make_queue(sqs, unique("failure"))
    name = unique("async-expired")
    make_flexible_recorder(lam, server, name, results_url, DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumEventAgeInSeconds=60, MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": failure_arn}},
    )
    blocker = threading.Thread(target=lambda: lam.invoke(FunctionName=name, Payload=b'{"sleep": 5}'))
    blocker.start()
    try:
        [started] = bodies(receive(sqs, results_url, 1))
        assert started["event"] == {"sleep": 5}
        payload = {"queued": unique("msg")}
        reply = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload))
        request_id = reply["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        [failure] = receive(sqs, failure_url, 1)
        [dead_letter] = receive(sqs, dlq_url, 1, attributes=True)
    finally:
        blocker.join()
    record = json.loads(failure["Body"])
    assert record.pop("timestamp").endswith("Z")
    function_arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    message = "throttled: ReservedFunctionConcurrentInvocationLimitExceeded"
    assert record == {
        "version": "1.0",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "EventAgeExceeded",
            "approximateInvokeCount": 0,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 429},
        "responsePayload": {"errorMessage": message},
    }
    assert json.loads(dead_letter["Body"]) == payload
    assert dead_letter["MessageAttributes"] == {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": "429"},
        "ErrorMessage": {"DataType": "String", "StringValue": message},
    }
    # The slot is free now, and the expired event does not run.
    assert_quiet(sqs, results_url, 2)
    assert_quiet(sqs, failure_url, 1)
    found = function_metrics(server, name)
    assert found["kiln_lambda_invocations_total"] == 1
    assert found["kiln_lambda_async_events_received_total"] == 1
    assert found["kiln_lambda_async_event_age_milliseconds_count"] >= 1
    assert found["kiln_lambda_throttles_total"] >= 1


def test_an_event_sent_to_its_dlq_and_on_failure_destination_still_counts_as_dropped(server):
    """Lambda's AsyncEventsDropped: "events that are dropped without successfully executing the
    function. If you configure a dead-letter queue (DLQ) or OnFailure destination, then events
    are sent there before they're dropped" (developer guide, asynchronous invocation metrics)."""
    lam, sqs = clients(server)
    results_url, _ = make_queue(sqs, unique("results"))
    dlq_url, dlq_arn = make_queue(sqs, unique("dlq"))
    failure_url, failure_arn = make_queue(sqs, unique("failure"))
    name = unique("async-dropped")
    make_recorder(lam, server, name, results_url, mode="fail", DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": failure_arn}},
    )
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 1}')
    assert len(receive(sqs, results_url, 1)) == 1
    assert len(receive(sqs, dlq_url, 1)) == 1
    assert len(receive(sqs, failure_url, 1)) == 1
    # The counter follows the deliveries within microseconds: 5 s is ample.
    found = wait_for_metrics(server, name, {"kiln_lambda_async_event_age_milliseconds_count": 1})
    deadline = time.monotonic() + 5
    while found["kiln_lambda_async_events_dropped_total"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
        found = function_metrics(server, name)
    assert found["kiln_lambda_async_events_received_total"] == 1
    assert found["kiln_lambda_dead_letter_errors_total"] == 0
    assert found["kiln_lambda_destination_delivery_failures_total"] == 0
    assert found["kiln_lambda_async_events_dropped_total"] == 1


def test_configs_and_pending_retries_survive_kill_9_with_no_extra_attempt(tmp_path):
    """One attempt, `kill -9` before the retry, a restart: the event invoke config is still
    there, the retry runs once, its failure is recorded with approximateInvokeCount 2, and
    nothing runs after it (with MaximumRetryAttempts 1 there are two attempts in all, across
    both processes)."""
    kiln = KilnServer(tmp_path / "data", "--retry-delay-scale", "0.05").start()
    try:
        lam, sqs = clients(kiln)
        results_url, _ = make_queue(sqs, unique("results"))
        failure_url, failure_arn = make_queue(sqs, unique("failure"))
        name = unique("async-restart-quiet")
        make_recorder(lam, kiln, name, results_url, mode="fail")
        lam.put_function_event_invoke_config(
            FunctionName=name, MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": failure_arn}},
        )
        reply = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 1}')
        request_id = reply["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        [first] = bodies(receive(sqs, results_url, 1))
        # The retry is due 3 s (60 s x 0.05) after the first attempt: kill before it, once the
        # failed attempt is persisted (right after the function returns).
        time.sleep(1)
        kiln.kill9()
        kiln.restart()
        lam, sqs = clients(kiln)
        assert lam.get_function_event_invoke_config(FunctionName=name)["MaximumRetryAttempts"] == 1
        [failure] = receive(sqs, failure_url, 1, timeout=30)
        record = json.loads(failure["Body"])
        assert record["requestContext"]["requestId"] == request_id
        assert record["requestContext"]["approximateInvokeCount"] == 2
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        [second] = bodies(receive(sqs, results_url, 1))
        assert first["request_id"] == second["request_id"] == request_id
        assert second["at"] - first["at"] >= 2.9
        # A further retry would come 6 s (120 s x 0.05) after the second attempt: none comes,
        # and no second record.
        assert_quiet(sqs, results_url, 8)
        assert_quiet(sqs, failure_url, 1)
        # The restarted process ran the function once: the retry.
        found = function_metrics(kiln, name)
        assert found["kiln_lambda_invocations_total"] == 1
        assert found["kiln_lambda_errors_total"] == 1
        assert found["kiln_lambda_async_events_received_total"] == 0
        assert found["kiln_lambda_async_event_age_milliseconds_count"] == 1
    finally:
        if kiln.process is not None:
            kiln.stop()
