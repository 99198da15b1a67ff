"""The SQS-compatible queue endpoint, driven by boto3's SQS client and the aws CLI."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
import urllib.parse
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import AwsCli
from kiln_harness import ACCOUNT_ID, REGION, KilnServer


def make_sqs_client(url: str):
    return boto3.client(
        "sqs",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="kiln-test",
        aws_secret_access_key="kiln-test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60),
    )


@pytest.fixture
def sqs(kiln):
    return make_sqs_client(kiln.sqs_url)


@pytest.fixture
def queue_name(request):
    base = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]
    return f"{base}-{uuid.uuid4().hex[:8]}"


def md5_of_attributes(attributes: dict) -> str:
    """SQS's MD5OfMessageAttributes, computed independently of Kiln."""
    encoded = b""
    for name in sorted(attributes):
        value = attributes[name]
        for field in (name.encode(), value["DataType"].encode()):
            encoded += struct.pack(">I", len(field)) + field
        if "BinaryValue" in value:
            encoded += b"\x02" + struct.pack(">I", len(value["BinaryValue"])) + value["BinaryValue"]
        else:
            data = value["StringValue"].encode()
            encoded += b"\x01" + struct.pack(">I", len(data)) + data
    return hashlib.md5(encoded).hexdigest()


def error_of(excinfo) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def test_queue_lifecycle_attributes_tags_and_listing(sqs, kiln, queue_name):
    url = sqs.create_queue(
        QueueName=queue_name,
        Attributes={"VisibilityTimeout": "45", "DelaySeconds": "0"},
        tags={"team": "kiln"},
    )["QueueUrl"]
    assert url == f"{kiln.sqs_url}/{ACCOUNT_ID}/{queue_name}"
    # Idempotent with equal attributes, refused with different ones.
    assert sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueNameExists) as excinfo:
        sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "46"})
    assert error_of(excinfo) == (
        "QueueAlreadyExists",
        "A queue already exists with the same name and a different value for attribute VisibilityTimeout",
    )
    assert sqs.get_queue_url(QueueName=queue_name)["QueueUrl"] == url

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "45"
    assert attributes["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}"
    assert attributes["MessageRetentionPeriod"] == "345600"
    assert attributes["MaximumMessageSize"] == "1048576"
    for counter in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"):
        assert attributes[counter] == "0"
    assert int(attributes["CreatedTimestamp"]) <= int(attributes["LastModifiedTimestamp"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ReceiveMessageWaitTimeSeconds": "1", "MessageRetentionPeriod": "120"})
    picked = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ReceiveMessageWaitTimeSeconds", "MessageRetentionPeriod"])
    assert picked["Attributes"] == {"ReceiveMessageWaitTimeSeconds": "1", "MessageRetentionPeriod": "120"}
    with pytest.raises(sqs.exceptions.InvalidAttributeName):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Bogus"])
    with pytest.raises(ClientError) as excinfo:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "43201"})
    assert error_of(excinfo)[0] == "InvalidAttributeValue"

    sqs.tag_queue(QueueUrl=url, Tags={"env": "test"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "kiln", "env": "test"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test"}

    others = [sqs.create_queue(QueueName=f"{queue_name}-{n}")["QueueUrl"] for n in range(3)]
    listed = sqs.list_queues(QueueNamePrefix=queue_name)["QueueUrls"]
    assert listed == [url, *others]
    pages = list(sqs.get_paginator("list_queues").paginate(QueueNamePrefix=queue_name, PaginationConfig={"PageSize": 2}))
    assert [u for page in pages for u in page["QueueUrls"]] == listed
    assert len(pages) == 2

    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as excinfo:
        sqs.get_queue_url(QueueName=queue_name)
    assert error_of(excinfo) == ("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url, MessageBody="x")


def test_messages_attributes_md5_and_selection(sqs, queue_name):
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    attributes = {
        "attribName1": {"DataType": "String", "StringValue": "attribValue 1"},
        "count": {"DataType": "Number", "StringValue": "42"},
        "blob.raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01binary"},
        "blob.other": {"DataType": "Binary.gif", "BinaryValue": b"GIF89a"},
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello world", MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"hello world").hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    # The published value for this one attribute.
    one = {"attribName1": attributes["attribName1"]}
    assert sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=one)["MD5OfMessageAttributes"] == "19e27d4e946b072f3f58da80d94fd778"

    received = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=1,
        MessageAttributeNames=["blob.*", "count"],
        MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount", "SenderId", "ApproximateFirstReceiveTimestamp"],
    )["Messages"][0]
    assert received["Body"] == "hello world"
    assert received["MessageId"] == sent["MessageId"]
    assert set(received["MessageAttributes"]) == {"blob.raw", "blob.other", "count"}
    assert received["MessageAttributes"]["blob.raw"]["BinaryValue"] == b"\x00\x01binary"
    selected = {k: v for k, v in attributes.items() if k != "attribName1"}
    assert received["MD5OfMessageAttributes"] == md5_of_attributes(selected)
    assert set(received["Attributes"]) == {"SentTimestamp", "ApproximateReceiveCount", "SenderId", "ApproximateFirstReceiveTimestamp"}
    assert received["Attributes"]["ApproximateReceiveCount"] == "1"
    assert abs(int(received["Attributes"]["SentTimestamp"]) - time.time() * 1000) < 60_000

    plain = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert "MessageAttributes" not in plain and "Attributes" not in plain
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=plain["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)

    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}})
    assert error_of(excinfo)[0] == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert error_of(excinfo) == ("InvalidParameterValue", "Value 901 for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.")
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="bad \x01 char")
    assert error_of(excinfo)[0] == "InvalidMessageContents"
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    with pytest.raises(ClientError) as excinfo:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert error_of(excinfo)[0] == "InvalidParameterValue"


def test_batches_and_batch_errors(sqs, queue_name):
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    sent = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": f"m{i}", "MessageBody": f"body {i}"} for i in range(10)],
    )
    assert sorted(e["Id"] for e in sent["Successful"]) == sorted(f"m{i}" for i in range(10))
    assert sent.get("Failed", []) == []
    assert all(e["MD5OfMessageBody"] == hashlib.md5(f"body {e['Id'][1:]}".encode()).hexdigest() for e in sent["Successful"])

    with pytest.raises(sqs.exceptions.EmptyBatchRequest):
        sqs.send_message_batch(QueueUrl=url, Entries=[])
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest) as excinfo:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": "x"} for i in range(11)])
    assert error_of(excinfo)[0] == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}])
    with pytest.raises(sqs.exceptions.BatchRequestTooLong):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": "x" * 300_000} for i in range(4)])
    with pytest.raises(sqs.exceptions.InvalidBatchEntryId):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "no spaces", "MessageBody": "x"}])
    mixed = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "ok", "MessageBody": "fine"}, {"Id": "late", "MessageBody": "x", "DelaySeconds": 1000}],
    )
    assert [e["Id"] for e in mixed["Successful"]] == ["ok"]
    assert mixed["Failed"] == [{
        "Id": "late", "SenderFault": True, "Code": "InvalidParameterValue",
        "Message": "Value 1000 for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.",
    }]

    received = []
    while len(received) < 11:
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        assert page, "every sent message is receivable"
        assert len(page) <= 10
        received += page
    assert len({m["MessageId"] for m in received}) == 11
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[{"Id": "c0", "ReceiptHandle": received[0]["ReceiptHandle"], "VisibilityTimeout": 0},
                 {"Id": "bad", "ReceiptHandle": "garbage", "VisibilityTimeout": 0}],
    )
    assert [e["Id"] for e in changed["Successful"]] == ["c0"]
    assert changed["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    again = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"][0]
    assert again["MessageId"] == received[0]["MessageId"]
    received[0] = again
    for chunk in (received[:10], received[10:]):
        deleted = sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
        )
        assert len(deleted["Successful"]) == len(chunk)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "0"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_visibility_timeout_expiry_and_change(sqs, queue_name):
    url = sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    first = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])["Attributes"] == {"ApproximateNumberOfMessagesNotVisible": "1"}
    time.sleep(1.2)
    second = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert second["MessageId"] == first["MessageId"]
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=30)
    time.sleep(1.2)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
    third = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
    with pytest.raises(sqs.exceptions.MessageNotInflight):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"], VisibilityTimeout=5)
    # Delayed messages are counted apart and arrive after their delay.
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3)["Messages"][0]["Body"] == "later"
    sqs.purge_queue(QueueUrl=url)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_long_poll_returns_right_after_a_send(sqs, kiln, queue_name):
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    sender = make_sqs_client(kiln.sqs_url)
    sent_at = {}

    def send_later():
        time.sleep(0.5)
        sender.send_message(QueueUrl=url, MessageBody="wake up")
        sent_at["t"] = time.monotonic()

    thread = threading.Thread(target=send_later)
    started = time.monotonic()
    thread.start()
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    returned = time.monotonic()
    thread.join()
    assert messages[0]["Body"] == "wake up"
    assert returned - started < 2
    assert returned - sent_at["t"] < 0.1, f"returned {returned - sent_at['t']:.3f}s after the send"
    # Nothing arrives: the full wait, then an empty answer.
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert 0.9 < time.monotonic() - started < 2


def test_maximum_message_size_is_enforced(sqs, queue_name):
    url = sqs.create_queue(QueueName=queue_name, Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])["Attributes"] == {"MaximumMessageSize": "1024"}
    too_big = ("InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.")
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1024)
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
    assert error_of(excinfo) == too_big
    # Bytes, not characters: 513 two-byte characters are 1026 bytes.
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="\u00e9" * 513)
    assert error_of(excinfo) == too_big
    # Attributes count too (name, type and value): 1000 + len("k") + len("String") + 20 bytes.
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1000,
                         MessageAttributes={"k": {"DataType": "String", "StringValue": "v" * 20}})
    assert error_of(excinfo) == too_big
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1000,
                     MessageAttributes={"k": {"DataType": "String", "StringValue": "v" * 17}})
    # The limit is the queue's: raise it and the refused message goes through.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": "2048"})
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 2049)
    assert error_of(excinfo) == ("InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be shorter than 2048 bytes.")
    for value in ("1023", "1048577"):
        with pytest.raises(ClientError) as excinfo:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": value})
        assert error_of(excinfo) == ("InvalidAttributeValue", "Invalid value for the parameter MaximumMessageSize.")
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "MaximumMessageSize"])["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "3", "MaximumMessageSize": "2048"}


def test_queue_wait_time_and_delay_defaults(sqs, kiln, queue_name):
    # ReceiveMessageWaitTimeSeconds: a receive without WaitTimeSeconds long-polls that long.
    url = sqs.create_queue(QueueName=queue_name, Attributes={"ReceiveMessageWaitTimeSeconds": "2"})["QueueUrl"]
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert 1.9 < time.monotonic() - started < 4
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert time.monotonic() - started < 1, "an explicit WaitTimeSeconds=0 overrides the queue's wait"
    sender = make_sqs_client(kiln.sqs_url)
    thread = threading.Thread(target=lambda: (time.sleep(0.5), sender.send_message(QueueUrl=url, MessageBody="wake")))
    started = time.monotonic()
    thread.start()
    got = sqs.receive_message(QueueUrl=url)["Messages"]
    thread.join()
    assert [m["Body"] for m in got] == ["wake"]
    assert time.monotonic() - started < 1.9, "a long poll, not a sleep: it returns when the message arrives"

    # DelaySeconds: a message sent without its own delay waits the queue's.
    delayed_url = sqs.create_queue(QueueName=f"{queue_name}-delay", Attributes={"DelaySeconds": "2"})["QueueUrl"]
    sent_at = time.monotonic()
    sqs.send_message(QueueUrl=delayed_url, MessageBody="late")
    counts = sqs.get_queue_attributes(QueueUrl=delayed_url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesDelayed"]) == ("0", "1")
    assert "Messages" not in sqs.receive_message(QueueUrl=delayed_url)
    # A message's own DelaySeconds=0 overrides the queue's.
    sqs.send_message(QueueUrl=delayed_url, MessageBody="now", DelaySeconds=0)
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=delayed_url, VisibilityTimeout=60)["Messages"]] == ["now"]
    late = sqs.receive_message(QueueUrl=delayed_url, WaitTimeSeconds=5)["Messages"]
    assert [m["Body"] for m in late] == ["late"]
    assert 1.9 < time.monotonic() - sent_at < 4.5
    # Changing the queue's delay applies to the next sends.
    sqs.set_queue_attributes(QueueUrl=delayed_url, Attributes={"DelaySeconds": "0"})
    sqs.send_message(QueueUrl=delayed_url, MessageBody="undelayed")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=delayed_url)["Messages"]] == ["undelayed"]


def test_wait_time_seconds_above_20_is_refused(sqs, queue_name):
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    for value in (21, 3600, -1):
        started = time.monotonic()
        with pytest.raises(ClientError) as excinfo:
            sqs.receive_message(QueueUrl=url, WaitTimeSeconds=value)
        assert error_of(excinfo) == (
            "InvalidParameterValue",
            f"Value {value} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.",
        )
        assert time.monotonic() - started < 2, "refused at once, without waiting"
    # 20 is allowed (a message is waiting, so it answers at once).
    sqs.send_message(QueueUrl=url, MessageBody="m")
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)["Messages"][0]["Body"] == "m"
    # The queue-level default has the same bound.
    refused = ("InvalidAttributeValue", "Invalid value for the parameter ReceiveMessageWaitTimeSeconds.")
    with pytest.raises(ClientError) as excinfo:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"ReceiveMessageWaitTimeSeconds": "21"})
    assert error_of(excinfo) == refused
    with pytest.raises(ClientError) as excinfo:
        sqs.create_queue(QueueName=f"{queue_name}-x", Attributes={"ReceiveMessageWaitTimeSeconds": "21"})
    assert error_of(excinfo) == refused
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ReceiveMessageWaitTimeSeconds": "20"})
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ReceiveMessageWaitTimeSeconds"])["Attributes"] == {"ReceiveMessageWaitTimeSeconds": "20"}


def test_send_message_batch_md5_of_message_attributes(sqs, queue_name):
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    entries = [
        # The value SQS's documentation publishes for this one attribute.
        {"Id": "published", "MessageBody": "a", "MessageAttributes": {
            "attribName1": {"DataType": "String", "StringValue": "attribValue 1"}}},
        {"Id": "mixed", "MessageBody": "b", "MessageAttributes": {
            "zeta": {"DataType": "Number", "StringValue": "-1.5e3"},
            "alpha": {"DataType": "String", "StringValue": "\u00fcnic\u00f8de \u2603"},
            "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
            "custom": {"DataType": "String.custom-label", "StringValue": "x"},
        }},
        {"Id": "plain", "MessageBody": "c"},
    ]
    sent = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert sent.get("Failed", []) == []
    by_id = {entry["Id"]: entry for entry in sent["Successful"]}
    assert sorted(by_id) == ["mixed", "plain", "published"]
    assert by_id["published"]["MD5OfMessageAttributes"] == "19e27d4e946b072f3f58da80d94fd778"
    assert by_id["mixed"]["MD5OfMessageAttributes"] == md5_of_attributes(entries[1]["MessageAttributes"])
    assert "MD5OfMessageAttributes" not in by_id["plain"]
    for entry in entries:
        assert by_id[entry["Id"]]["MD5OfMessageBody"] == hashlib.md5(entry["MessageBody"].encode()).hexdigest()
    # A receive of every attribute reports the same digest as the send.
    received = {}
    while len(received) < 3:
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
        received |= {m["MessageId"]: m for m in page}
    for entry in sent["Successful"]:
        assert received[entry["MessageId"]].get("MD5OfMessageAttributes") == entry.get("MD5OfMessageAttributes")
    mixed = received[by_id["mixed"]["MessageId"]]["MessageAttributes"]
    assert mixed["blob"]["BinaryValue"] == bytes(range(256))
    assert mixed["zeta"] == {"DataType": "Number", "StringValue": "-1.5e3"}


def test_purge_queue_removes_visible_messages(sqs, queue_name):
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    for start in range(0, 30, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": f"body {i}"} for i in range(start, start + 10)])
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    assert before == {"ApproximateNumberOfMessages": "30", "ApproximateNumberOfMessagesNotVisible": "0", "ApproximateNumberOfMessagesDelayed": "1"}
    purged = sqs.purge_queue(QueueUrl=url)
    assert purged["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert set(purged) == {"ResponseMetadata"}
    after = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    assert after == {name: "0" for name in names}
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    # The queue itself stays.
    assert sqs.get_queue_url(QueueName=queue_name)["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.purge_queue(QueueUrl=f"{url}-missing")


def test_a_second_purge_within_60_seconds_is_refused(sqs, queue_name):
    """SQS allows one PurgeQueue per queue every 60 seconds; the second is a 403."""
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress) as excinfo:
        sqs.purge_queue(QueueUrl=url)
    code, message = error_of(excinfo)
    assert code == "AWS.SimpleQueueService.PurgeQueueInProgress"
    assert message == f"Only one PurgeQueue operation on {queue_name} is allowed every 60 seconds."
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_fifo_order_groups_and_deduplication(sqs, queue_name):
    with pytest.raises(ClientError) as excinfo:
        sqs.create_queue(QueueName=queue_name, Attributes={"FifoQueue": "true"})
    assert error_of(excinfo)[0] == "InvalidParameterValue"
    name = f"{queue_name}.fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
    assert error_of(excinfo) == ("MissingParameter", "The request must contain the parameter MessageGroupId.")
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
    assert error_of(excinfo)[0] == "InvalidParameterValue"

    sequence = []
    for i in range(5):
        for group in ("a", "b"):
            result = sqs.send_message(QueueUrl=url, MessageBody=f"{group}{i}", MessageGroupId=group, MessageDeduplicationId=f"{group}{i}")
            sequence.append(int(result["SequenceNumber"]))
    assert sequence == sorted(sequence) and len(set(sequence)) == 10
    duplicate = sqs.send_message(QueueUrl=url, MessageBody="a0 again", MessageGroupId="a", MessageDeduplicationId="a0")
    assert int(duplicate["SequenceNumber"]) == sequence[0]

    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, MessageSystemAttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in got] == ["a0", "b0", "a1"]
    assert got[0]["Attributes"]["MessageGroupId"] == "a"
    assert got[0]["Attributes"]["MessageDeduplicationId"] == "a0"
    assert int(got[0]["Attributes"]["SequenceNumber"]) == sequence[0]
    # Both groups have messages in flight: nothing else is delivered.
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    rest = []
    while True:
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not page:
            break
        rest += [m["Body"] for m in page]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(page)])
    assert [b for b in rest if b.startswith("a")] == ["a2", "a3", "a4"]
    assert [b for b in rest if b.startswith("b")] == ["b1", "b2", "b3", "b4"]

    cbd = sqs.create_queue(QueueName=f"{queue_name}-cbd.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    first = sqs.send_message(QueueUrl=cbd, MessageBody="same", MessageGroupId="g")
    second = sqs.send_message(QueueUrl=cbd, MessageBody="same", MessageGroupId="g")
    assert first["MessageId"] == second["MessageId"]
    only = sqs.receive_message(QueueUrl=cbd, MaxNumberOfMessages=10, MessageSystemAttributeNames=["MessageDeduplicationId"])["Messages"]
    assert len(only) == 1
    assert only[0]["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"same").hexdigest()
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=cbd, MessageBody="x", MessageGroupId="g", DelaySeconds=5)
    assert error_of(excinfo)[0] == "InvalidParameterValue"


def test_redrive_to_dead_letter_queue(sqs, queue_name):
    dlq_url = sqs.create_queue(QueueName=f"{queue_name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}'
    url = sqs.create_queue(QueueName=queue_name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    stored = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    assert stored == f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":2}}'
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"] == [url]

    sent = sqs.send_message(QueueUrl=url, MessageBody="poison")
    for count in ("1", "2"):
        got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"]
        assert got[0]["Attributes"]["ApproximateReceiveCount"] == count
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    moved = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=2, MessageSystemAttributeNames=["All"])["Messages"][0]
    assert moved["MessageId"] == sent["MessageId"]
    assert moved["Body"] == "poison"
    assert moved["Attributes"]["DeadLetterQueueSourceArn"].endswith(f":{queue_name}")

    with pytest.raises(ClientError) as excinfo:
        sqs.create_queue(QueueName=f"{queue_name}-x", Attributes={"RedrivePolicy": '{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:missing","maxReceiveCount":3}'})
    assert error_of(excinfo)[0] == "InvalidParameterValue"


def test_aws_cli_drives_the_queue_endpoint(kiln, queue_name):
    aws = AwsCli(kiln.sqs_url)
    url = aws.json("sqs", "create-queue", "--queue-name", queue_name)["QueueUrl"]
    assert url.endswith(f"/{ACCOUNT_ID}/{queue_name}")
    assert url in aws.json("sqs", "list-queues", "--queue-name-prefix", queue_name)["QueueUrls"]
    sent = aws.json("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli",
                    "--message-attributes", '{"k": {"DataType": "String", "StringValue": "v"}}')
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"from the cli").hexdigest()
    got = aws.json("sqs", "receive-message", "--queue-url", url, "--message-attribute-names", "All", "--wait-time-seconds", "1")
    message = got["Messages"][0]
    assert message["Body"] == "from the cli"
    assert message["MessageAttributes"]["k"]["StringValue"] == "v"
    aws.run("sqs", "delete-message", "--queue-url", url, "--receipt-handle", message["ReceiptHandle"])
    attributes = aws.json("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    failed = aws.run("sqs", "get-queue-url", "--queue-name", f"{queue_name}-missing", check=False)
    assert failed.returncode != 0
    assert "AWS.SimpleQueueService.NonExistentQueue" in failed.stderr
    aws.run("sqs", "delete-queue", "--queue-url", url)


def test_aws_cli_batches_and_visibility(kiln, queue_name):
    aws = AwsCli(kiln.sqs_url)
    url = aws.json("sqs", "create-queue", "--queue-name", queue_name)["QueueUrl"]
    attributes = {"kind": {"DataType": "String", "StringValue": "batch"}, "n": {"DataType": "Number", "StringValue": "7"}}
    entries = [{"Id": "m0", "MessageBody": "body 0", "MessageAttributes": attributes},
               {"Id": "m1", "MessageBody": "body 1"}, {"Id": "m2", "MessageBody": "body 2", "DelaySeconds": 0}]
    sent = aws.json("sqs", "send-message-batch", "--queue-url", url, "--entries", json.dumps(entries))
    assert sent.get("Failed", []) == []
    by_id = {entry["Id"]: entry for entry in sent["Successful"]}
    assert sorted(by_id) == ["m0", "m1", "m2"]
    for n in range(3):
        assert by_id[f"m{n}"]["MD5OfMessageBody"] == hashlib.md5(f"body {n}".encode()).hexdigest()
    assert by_id["m0"]["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    assert "MD5OfMessageAttributes" not in by_id["m1"]

    def receive_all(count: str) -> dict[str, dict]:
        got: dict[str, dict] = {}
        while len(got) < 3:
            page = aws.json("sqs", "receive-message", "--queue-url", url, "--max-number-of-messages", "10",
                            "--visibility-timeout", "60", "--message-system-attribute-names", "ApproximateReceiveCount")
            assert page, "every sent message is receivable"
            got |= {m["MessageId"]: m for m in page["Messages"]}
        assert {m["Attributes"]["ApproximateReceiveCount"] for m in got.values()} == {count}
        return got

    first = receive_all("1")
    assert set(first) == {entry["MessageId"] for entry in sent["Successful"]}
    assert aws.json("sqs", "receive-message", "--queue-url", url) is None, "all three are in flight"
    one, *others = first.values()
    # change-message-visibility answers with nothing; the message is visible again at once.
    changed = aws.run("sqs", "change-message-visibility", "--queue-url", url,
                      "--receipt-handle", one["ReceiptHandle"], "--visibility-timeout", "0")
    assert changed.stdout == ""
    again = aws.json("sqs", "receive-message", "--queue-url", url, "--visibility-timeout", "60",
                     "--message-system-attribute-names", "ApproximateReceiveCount")["Messages"]
    assert [(m["MessageId"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [(one["MessageId"], "2")]
    batch = [{"Id": f"c{n}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for n, m in enumerate(others)]
    batch.append({"Id": "bad", "ReceiptHandle": "garbage", "VisibilityTimeout": 0})
    changed = aws.json("sqs", "change-message-visibility-batch", "--queue-url", url, "--entries", json.dumps(batch))
    assert sorted(entry["Id"] for entry in changed["Successful"]) == ["c0", "c1"]
    assert [(entry["Id"], entry["Code"], entry["SenderFault"]) for entry in changed["Failed"]] == [("bad", "ReceiptHandleIsInvalid", True)]
    # The two made visible come back (the third is still in flight from its second receive).
    returned = {}
    while len(returned) < 2:
        page = aws.json("sqs", "receive-message", "--queue-url", url, "--max-number-of-messages", "10", "--visibility-timeout", "60")
        assert page, "the messages made visible are receivable"
        returned |= {m["MessageId"]: m for m in page["Messages"]}
    assert set(returned) == {m["MessageId"] for m in others}

    handles = [again[0]["ReceiptHandle"], *(m["ReceiptHandle"] for m in returned.values())]
    deleted = aws.json("sqs", "delete-message-batch", "--queue-url", url, "--entries",
                       json.dumps([{"Id": f"d{n}", "ReceiptHandle": h} for n, h in enumerate(handles)]
                                  + [{"Id": "bad", "ReceiptHandle": "garbage"}]))
    assert sorted(entry["Id"] for entry in deleted["Successful"]) == ["d0", "d1", "d2"]
    assert [(entry["Id"], entry["Code"], entry["SenderFault"]) for entry in deleted["Failed"]] == [("bad", "ReceiptHandleIsInvalid", True)]
    counts = aws.json("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names",
                      "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    assert counts == {"Attributes": {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}}


def test_aws_cli_queue_attributes_tags_purge_and_dead_letter_sources(kiln, sqs, queue_name):
    aws = AwsCli(kiln.sqs_url)
    dlq_url = aws.json("sqs", "create-queue", "--queue-name", f"{queue_name}-dlq")["QueueUrl"]
    dlq_arn = aws.json("sqs", "get-queue-attributes", "--queue-url", dlq_url, "--attribute-names", "QueueArn")["Attributes"]["QueueArn"]
    assert dlq_arn == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}-dlq"
    url = aws.json("sqs", "create-queue", "--queue-name", queue_name, "--tags", "team=kiln")["QueueUrl"]

    # set-queue-attributes answers with nothing; get-queue-attributes shows the change.
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    changed = aws.run("sqs", "set-queue-attributes", "--queue-url", url, "--attributes",
                      json.dumps({"VisibilityTimeout": "45", "DelaySeconds": "1", "RedrivePolicy": policy}))
    assert changed.stdout == ""
    got = aws.json("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names",
                   "VisibilityTimeout", "DelaySeconds", "RedrivePolicy")["Attributes"]
    assert json.loads(got.pop("RedrivePolicy")) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    assert got == {"VisibilityTimeout": "45", "DelaySeconds": "1"}
    refused = aws.run("sqs", "set-queue-attributes", "--queue-url", url, "--attributes", "VisibilityTimeout=43201", check=False)
    assert refused.returncode != 0
    assert "(InvalidAttributeValue) when calling the SetQueueAttributes operation: " \
        "Invalid value for the parameter VisibilityTimeout." in refused.stderr
    assert aws.json("sqs", "list-dead-letter-source-queues", "--queue-url", dlq_url) == {"queueUrls": [url]}
    assert aws.json("sqs", "list-dead-letter-source-queues", "--queue-url", url) == {"queueUrls": []}

    assert aws.run("sqs", "tag-queue", "--queue-url", url, "--tags", "env=test,owner=ci").stdout == ""
    assert aws.json("sqs", "list-queue-tags", "--queue-url", url) == {"Tags": {"team": "kiln", "env": "test", "owner": "ci"}}
    assert aws.run("sqs", "untag-queue", "--queue-url", url, "--tag-keys", "team", "owner").stdout == ""
    assert aws.json("sqs", "list-queue-tags", "--queue-url", url) == {"Tags": {"env": "test"}}

    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{n}", "MessageBody": f"m{n}", "DelaySeconds": 0} for n in range(5)])
    names = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    counts = aws.json("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", *names)["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "5", "ApproximateNumberOfMessagesNotVisible": "0"}
    aws.json("sqs", "receive-message", "--queue-url", url, "--max-number-of-messages", "2")
    assert aws.run("sqs", "purge-queue", "--queue-url", url).stdout == ""
    counts = aws.json("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", *names)["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    assert aws.json("sqs", "receive-message", "--queue-url", url, "--wait-time-seconds", "1") is None


def test_aws_cli_fifo_send_and_receive(kiln, queue_name):
    aws = AwsCli(kiln.sqs_url)
    name = f"{queue_name}.fifo"
    url = aws.json("sqs", "create-queue", "--queue-name", name, "--attributes", "FifoQueue=true")["QueueUrl"]
    assert url.endswith(f"/{ACCOUNT_ID}/{name}")
    fifo = aws.json("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "FifoQueue", "ContentBasedDeduplication")
    assert fifo == {"Attributes": {"FifoQueue": "true", "ContentBasedDeduplication": "false"}}

    def send(body: str, group: str, dedup: str) -> dict:
        return aws.json("sqs", "send-message", "--queue-url", url, "--message-body", body,
                        "--message-group-id", group, "--message-deduplication-id", dedup)

    first = send("a1", "a", "d-a1")
    assert first["MD5OfMessageBody"] == hashlib.md5(b"a1").hexdigest()
    assert set(first) == {"MessageId", "MD5OfMessageBody", "SequenceNumber"}
    # The same deduplication id within five minutes: accepted, not enqueued again.
    duplicate = send("a1 again", "a", "d-a1")
    assert (duplicate["MessageId"], duplicate["SequenceNumber"]) == (first["MessageId"], first["SequenceNumber"])
    second = send("a2", "a", "d-a2")
    other = send("b1", "b", "d-b1")
    assert int(first["SequenceNumber"]) < int(second["SequenceNumber"]) < int(other["SequenceNumber"])
    missing = aws.run("sqs", "send-message", "--queue-url", url, "--message-body", "x", check=False)
    assert missing.returncode != 0
    assert "(MissingParameter) when calling the SendMessage operation: The request must contain the parameter MessageGroupId." in missing.stderr

    got = aws.json("sqs", "receive-message", "--queue-url", url, "--max-number-of-messages", "10",
                   "--message-system-attribute-names", "All")["Messages"]
    assert [m["Body"] for m in got] == ["a1", "a2", "b1"]
    for message, sent, group, dedup in zip(got, (first, second, other), "aab", ("d-a1", "d-a2", "d-b1")):
        assert message["MessageId"] == sent["MessageId"]
        assert message["Attributes"]["MessageGroupId"] == group
        assert message["Attributes"]["MessageDeduplicationId"] == dedup
        assert message["Attributes"]["SequenceNumber"] == sent["SequenceNumber"]
    # Both groups are in flight: nothing more until they are deleted.
    assert aws.json("sqs", "receive-message", "--queue-url", url) is None
    for message in got:
        aws.run("sqs", "delete-message", "--queue-url", url, "--receipt-handle", message["ReceiptHandle"])
    third = send("a3", "a", "d-a3")
    again = aws.json("sqs", "receive-message", "--queue-url", url, "--max-number-of-messages", "10")["Messages"]
    assert [(m["Body"], m["MessageId"]) for m in again] == [("a3", third["MessageId"])]


def test_query_protocol_for_older_clients(kiln, queue_name):
    def call(**params):
        data = urllib.parse.urlencode({**params, "Version": "2012-11-05"}).encode()
        request = urllib.request.Request(kiln.sqs_url + "/", data=data, headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    status, body = call(Action="CreateQueue", QueueName=queue_name)
    assert status == 200 and "<QueueUrl>" in body
    url = body.split("<QueueUrl>")[1].split("</QueueUrl>")[0]
    status, body = call(Action="SendMessage", QueueUrl=url, MessageBody="<xml & stuff>")
    assert status == 200 and "<MD5OfMessageBody>" in body
    status, body = call(Action="ReceiveMessage", QueueUrl=url, **{"AttributeName.1": "All"})
    assert "<Body>&lt;xml &amp; stuff&gt;</Body>" in body
    status, body = call(Action="GetQueueUrl", QueueName=f"{queue_name}-missing")
    assert status == 400 and "<Code>AWS.SimpleQueueService.NonExistentQueue</Code>" in body


def test_acknowledged_messages_survive_kill9(tmp_path):
    server = KilnServer(tmp_path / "data").start()
    try:
        sqs = make_sqs_client(server.sqs_url)
        url = sqs.create_queue(QueueName="durable", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
        fifo_url = sqs.create_queue(QueueName="durable.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        sent = set()
        for batch in range(20):
            result = sqs.send_message_batch(
                QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": f"{batch}-{i}"} for i in range(10)]
            )
            assert len(result["Successful"]) == 10
            sent |= {f"{batch}-{i}" for i in range(10)}
        fifo_ids = {}
        for i in range(5):
            result = sqs.send_message(QueueUrl=fifo_url, MessageBody=f"f{i}", MessageGroupId="g", MessageDeduplicationId=f"f{i}")
            fifo_ids[f"f{i}"] = result["MessageId"]
        received = []
        while len(received) < 50:
            received += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        deleted = received[:30]
        for chunk in (deleted[:10], deleted[10:20], deleted[20:]):
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])
        deleted_bodies = {m["Body"] for m in deleted}
        in_flight = sqs.receive_message(QueueUrl=fifo_url)["Messages"][0]
        assert in_flight["Body"] == "f0"

        server.kill9()
        server.restart()
        sqs = make_sqs_client(server.sqs_url)
        # Received-but-undeleted messages are still invisible (deadline persisted) ...
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert int(counts["ApproximateNumberOfMessages"]) + int(counts["ApproximateNumberOfMessagesNotVisible"]) == 170
        # ... and come back after their visibility timeout, with every other acknowledged one.
        time.sleep(2.1)
        after = {}
        while True:
            page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                       MessageSystemAttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
            if not page:
                break
            for message in page:
                after[message["Body"]] = int(message["Attributes"]["ApproximateReceiveCount"])
        assert set(after) == sent - deleted_bodies
        assert not set(after) & deleted_bodies
        redelivered = {m["Body"] for m in received[30:]}
        assert all(after[body] == 2 for body in redelivered), "receive counts survive the restart"
        # FIFO: the group stays locked until f0's visibility ends; its old receipt still deletes it.
        sqs.delete_message(QueueUrl=fifo_url, ReceiptHandle=in_flight["ReceiptHandle"])
        rest = sqs.receive_message(QueueUrl=fifo_url, MaxNumberOfMessages=10)["Messages"]
        assert [m["Body"] for m in rest] == ["f1", "f2", "f3", "f4"]
        sqs.delete_message_batch(QueueUrl=fifo_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(rest)])
        # Deduplication ids are remembered across the restart: a resend is not enqueued again.
        again = sqs.send_message(QueueUrl=fifo_url, MessageBody="f1", MessageGroupId="g", MessageDeduplicationId="f1")
        assert again["MessageId"] == fifo_ids["f1"]
        assert "Messages" not in sqs.receive_message(QueueUrl=fifo_url)
    finally:
        server.stop()
