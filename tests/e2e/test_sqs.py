"""The SQS-compatible queue endpoint, driven by boto3's SQS client and the aws CLI."""

from __future__ import annotations

import hashlib
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
