"""Concurrency: reserved concurrency, the account limit, throttling and provisioned
concurrency, driven with boto3 and the aws CLI against real `kiln serve` processes.

The functions here sleep and report when they ran, so that the tests can check from the
results alone that no more invocations overlapped than the limits allow.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import AwsCli, make_lambda_client
from kiln_harness import ROLE, KilnServer, make_zip

SLEEPER = make_zip(
    {
        "handler.py": (
            "import os\n"
            "import time\n\n\n"
            "def handler(event, context):\n"
            "    started = time.time()\n"
            "    time.sleep(event.get('sleep', 0))\n"
            "    return {\n"
            "        'started': started,\n"
            "        'ended': time.time(),\n"
            "        'initialization': os.environ.get('AWS_LAMBDA_INITIALIZATION_TYPE'),\n"
            "        'version': os.environ.get('AWS_LAMBDA_FUNCTION_VERSION'),\n"
            "    }\n"
        )
    }
)


def create(client, name: str) -> None:
    client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": SLEEPER},
        Timeout=30,
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name)


def invoke(client, name: str, sleep: float = 0, qualifier: str | None = None, tail=False):
    """The function's result, or the throttle's `Reason`."""
    extra = {"Qualifier": qualifier} if qualifier else {}
    if tail:
        extra["LogType"] = "Tail"
    try:
        response = client.invoke(
            FunctionName=name, Payload=json.dumps({"sleep": sleep}), **extra
        )
    except ClientError as error:
        assert error.response["Error"]["Code"] == "TooManyRequestsException", error.response
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert error.response["message"] == "Rate Exceeded."
        assert error.response["Type"] == "User"
        return {"throttled": error.response["Reason"]}
    assert "FunctionError" not in response, response
    result = json.loads(response["Payload"].read())
    if tail:
        result["log"] = base64.b64decode(response["LogResult"]).decode()
    return result


def invoke_in_parallel(url: str, calls: list[tuple[str, float]]) -> list[dict]:
    """Runs the invocations at once, each on its own client (no SDK retries)."""
    results: list[dict | None] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int, name: str, sleep: float) -> None:
        client = make_lambda_client(url)
        barrier.wait()
        results[index] = invoke(client, name, sleep)

    threads = [
        threading.Thread(target=run, args=(index, name, sleep))
        for index, (name, sleep) in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [result for result in results if result is not None]


def most_at_once(results: list[dict]) -> int:
    """The most invocations that ran at the same moment, from their reported times."""
    events = []
    for result in results:
        if "started" in result:
            events.append((result["started"], 1))
            events.append((result["ended"], -1))
    running = peak = 0
    # Ends sort before starts at the same instant: touching intervals do not overlap.
    for _, change in sorted(events, key=lambda event: (event[0], event[1])):
        running += change
        peak = max(peak, running)
    return peak


def wait_ready(client, name: str, qualifier: str, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while True:
        config = client.get_provisioned_concurrency_config(
            FunctionName=name, Qualifier=qualifier
        )
        if config["Status"] != "IN_PROGRESS" or time.time() > deadline:
            return config
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def delete_function_after(kiln, function_name):
    """Tests on the shared server delete their function, so that its reserved and
    provisioned concurrency do not change other tests' account figures."""
    yield
    try:
        make_lambda_client(kiln.url).delete_function(FunctionName=function_name)
    except ClientError:
        pass


@pytest.fixture
def small_account(tmp_path):
    """A server whose account allows 3 concurrent invocations."""
    server = KilnServer(tmp_path / "data", "--concurrency-limit", "3").start()
    yield server
    server.stop()


@pytest.fixture
def own_server(tmp_path):
    server = KilnServer(tmp_path / "data").start()
    yield server
    server.stop()


def test_reserved_zero_throttles_every_invocation(lambda_client, function_name):
    create(lambda_client, function_name)
    assert invoke(lambda_client, function_name)["version"] == "$LATEST"
    put = lambda_client.put_function_concurrency(
        FunctionName=function_name, ReservedConcurrentExecutions=0
    )
    assert put["ReservedConcurrentExecutions"] == 0
    for _ in range(3):
        assert invoke(lambda_client, function_name) == {
            "throttled": "ReservedFunctionConcurrentInvocationLimitExceeded"
        }
    lambda_client.delete_function_concurrency(FunctionName=function_name)
    assert "version" in invoke(lambda_client, function_name)


def test_reserved_concurrency_caps_parallel_invocations(kiln, lambda_client, function_name):
    reserved = 2
    create(lambda_client, function_name)
    lambda_client.put_function_concurrency(
        FunctionName=function_name, ReservedConcurrentExecutions=reserved
    )
    results = invoke_in_parallel(kiln.url, [(function_name, 1.0)] * (3 * reserved))
    ran = [result for result in results if "started" in result]
    throttled = [result for result in results if "throttled" in result]
    assert len(ran) + len(throttled) == 3 * reserved
    assert throttled, "3N parallel invocations of a function reserved at N: some are throttled"
    assert {result["throttled"] for result in throttled} == {
        "ReservedFunctionConcurrentInvocationLimitExceeded"
    }
    assert 1 <= most_at_once(ran) <= reserved, ran
    # The slots come back when the invocations end.
    assert "started" in invoke(lambda_client, function_name)


def test_reserved_concurrency_operations_and_get_function(lambda_client, function_name, aws):
    create(lambda_client, function_name)
    assert "Concurrency" not in lambda_client.get_function(FunctionName=function_name)
    got = lambda_client.get_function_concurrency(FunctionName=function_name)
    assert "ReservedConcurrentExecutions" not in got

    put = aws.json(
        "lambda",
        "put-function-concurrency",
        "--function-name",
        function_name,
        "--reserved-concurrent-executions",
        "5",
    )
    assert put == {"ReservedConcurrentExecutions": 5}
    assert aws.json("lambda", "get-function-concurrency", "--function-name", function_name) == {
        "ReservedConcurrentExecutions": 5
    }
    assert lambda_client.get_function(FunctionName=function_name)["Concurrency"] == {
        "ReservedConcurrentExecutions": 5
    }
    aws.run("lambda", "delete-function-concurrency", "--function-name", function_name)
    assert "Concurrency" not in lambda_client.get_function(FunctionName=function_name)

    with pytest.raises(ClientError) as raised:
        lambda_client.put_function_concurrency(
            FunctionName=f"{function_name}:1", ReservedConcurrentExecutions=1
        )
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_account_settings_and_the_unreserved_floor(own_server):
    client = make_lambda_client(own_server.url)
    limits = client.get_account_settings()["AccountLimit"]
    assert limits["ConcurrentExecutions"] == 1000
    assert limits["UnreservedConcurrentExecutions"] == 1000

    create(client, "first")
    create(client, "second")
    client.put_function_concurrency(FunctionName="first", ReservedConcurrentExecutions=600)
    limits = client.get_account_settings()["AccountLimit"]
    assert limits["UnreservedConcurrentExecutions"] == 400

    with pytest.raises(ClientError) as raised:
        client.put_function_concurrency(FunctionName="second", ReservedConcurrentExecutions=301)
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidParameterValueException"
    assert error["message"] == (
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100]."
    )
    client.put_function_concurrency(FunctionName="second", ReservedConcurrentExecutions=300)
    assert client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
    # A function's own reservation is replaced, not added.
    client.put_function_concurrency(FunctionName="first", ReservedConcurrentExecutions=600)
    client.delete_function(FunctionName="first")
    assert client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 700
    client.delete_function_concurrency(FunctionName="second")
    assert client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000


def test_the_account_limit_throttles_unreserved_functions(small_account):
    client = make_lambda_client(small_account.url)
    aws = AwsCli(small_account.url)
    settings = aws.json("lambda", "get-account-settings")
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 3
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 3
    names = ["one", "two"]
    for name in names:
        create(client, name)
    # The floor is the whole limit when the limit is under 100.
    with pytest.raises(ClientError) as raised:
        client.put_function_concurrency(FunctionName="one", ReservedConcurrentExecutions=1)
    assert "minimum value of [3]" in raised.value.response["message"]

    results = invoke_in_parallel(small_account.url, [(names[i % 2], 1.0) for i in range(8)])
    ran = [result for result in results if "started" in result]
    throttled = [result for result in results if "throttled" in result]
    assert throttled, results
    assert {result["throttled"] for result in throttled} == {"ConcurrentInvocationLimitExceeded"}
    assert 1 <= most_at_once(ran) <= 3, ran
    assert "started" in invoke(client, "one")


def test_provisioned_concurrency_initialises_ahead_and_survives_restart(own_server):
    client = make_lambda_client(own_server.url)
    name = "provisioned"
    create(client, name)
    version = client.publish_version(FunctionName=name)["Version"]
    put = client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["Status"] == "IN_PROGRESS"
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["AllocatedProvisionedConcurrentExecutions"] == 0
    ready = wait_ready(client, name, version)
    assert ready["Status"] == "READY", ready
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert ready["AvailableProvisionedConcurrentExecutions"] == 2
    # Provisioned concurrency comes out of the unreserved pool.
    assert client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 998

    first = invoke(client, name, qualifier=version, tail=True)
    assert first["initialization"] == "provisioned-concurrency"
    assert "REPORT RequestId" in first["log"]
    assert "Init Duration" not in first["log"], first["log"]
    on_demand = invoke(client, name, tail=True)
    assert on_demand["initialization"] == "on-demand"
    assert "Init Duration" in on_demand["log"]

    listed = client.list_provisioned_concurrency_configs(FunctionName=name)
    assert [config["FunctionArn"].rsplit(":", 1)[1] for config in listed[
        "ProvisionedConcurrencyConfigs"
    ]] == [version]

    own_server.stop()
    own_server.restart()
    client = make_lambda_client(own_server.url)
    ready = wait_ready(client, name, version)
    assert ready["Status"] == "READY", ready
    after_restart = invoke(client, name, qualifier=version, tail=True)
    assert after_restart["initialization"] == "provisioned-concurrency"
    assert "Init Duration" not in after_restart["log"]

    client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    with pytest.raises(ClientError) as raised:
        client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert (
        raised.value.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    )
    assert client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000


def test_provisioned_concurrency_counts_against_reserved(lambda_client, function_name):
    """Reserved 1 with 1 provisioned on version 1 leaves nothing for $LATEST (as AWS does in
    TestLambdaConcurrency::test_lambda_concurrency_block)."""
    create(lambda_client, function_name)
    version = lambda_client.publish_version(FunctionName=function_name)["Version"]
    lambda_client.put_function_concurrency(
        FunctionName=function_name, ReservedConcurrentExecutions=1
    )
    lambda_client.put_provisioned_concurrency_config(
        FunctionName=function_name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    assert wait_ready(lambda_client, function_name, version)["Status"] == "READY"
    assert invoke(lambda_client, function_name) == {
        "throttled": "ReservedFunctionConcurrentInvocationLimitExceeded"
    }
    assert invoke(lambda_client, function_name, qualifier=version)["version"] == version
    with pytest.raises(ClientError) as raised:
        lambda_client.put_function_concurrency(
            FunctionName=function_name, ReservedConcurrentExecutions=0
        )
    assert raised.value.response["message"] == (
        " ReservedConcurrentExecutions  0 should not be lower than function's total "
        "provisioned concurrency [1]."
    )
    lambda_client.delete_provisioned_concurrency_config(
        FunctionName=function_name, Qualifier=version
    )


def test_provisioned_concurrency_on_an_alias_moves_with_it(lambda_client, function_name):
    create(lambda_client, function_name)
    first = lambda_client.publish_version(FunctionName=function_name)["Version"]
    lambda_client.update_function_configuration(FunctionName=function_name, Description="2")
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    second = lambda_client.publish_version(FunctionName=function_name)["Version"]
    lambda_client.create_alias(FunctionName=function_name, Name="live", FunctionVersion=first)
    lambda_client.put_provisioned_concurrency_config(
        FunctionName=function_name, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    assert wait_ready(lambda_client, function_name, "live")["Status"] == "READY"
    lambda_client.update_alias(FunctionName=function_name, Name="live", FunctionVersion=second)
    assert wait_ready(lambda_client, function_name, "live")["Status"] == "READY"
    result = invoke(lambda_client, function_name, qualifier="live")
    assert result == {**result, "version": second, "initialization": "provisioned-concurrency"}
    lambda_client.delete_alias(FunctionName=function_name, Name="live")
    assert lambda_client.list_provisioned_concurrency_configs(FunctionName=function_name)[
        "ProvisionedConcurrencyConfigs"
    ] == []


def test_failed_provisioned_init_is_reported(lambda_client, function_name):
    lambda_client.create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": "raise Exception('init fails')\n"})},
    )
    lambda_client.get_waiter("function_active_v2").wait(FunctionName=function_name)
    version = lambda_client.publish_version(FunctionName=function_name)["Version"]
    lambda_client.put_provisioned_concurrency_config(
        FunctionName=function_name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    failed = wait_ready(lambda_client, function_name, version)
    assert failed["Status"] == "FAILED", failed
    assert failed["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE"
    assert failed["AllocatedProvisionedConcurrentExecutions"] == 0


def test_provisioned_environments_outlive_the_keep_alive_and_are_replaced(tmp_path):
    """With a 1 s keep-alive, provisioned environments stay; one whose runtime dies is
    replaced in the background."""
    server = KilnServer(tmp_path / "data", "--keep-alive", "1s").start()
    try:
        client = make_lambda_client(server.url)
        client.create_function(
            FunctionName="crashy",
            Runtime="python3.12",
            Role=ROLE,
            Handler="handler.handler",
            Code={
                "ZipFile": make_zip(
                    {
                        "handler.py": (
                            "import os\n\n\n"
                            "def handler(event, context):\n"
                            "    if event.get('crash'):\n"
                            "        os._exit(1)\n"
                            "    return os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']\n"
                        )
                    }
                )
            },
        )
        client.get_waiter("function_active_v2").wait(FunctionName="crashy")
        version = client.publish_version(FunctionName="crashy")["Version"]
        client.put_provisioned_concurrency_config(
            FunctionName="crashy", Qualifier=version, ProvisionedConcurrentExecutions=1
        )
        assert wait_ready(client, "crashy", version)["Status"] == "READY"
        time.sleep(2.5)  # past the keep-alive, and a few reaper ticks

        def invoke_version(payload: dict) -> dict:
            response = client.invoke(
                FunctionName="crashy",
                Qualifier=version,
                Payload=json.dumps(payload),
                LogType="Tail",
            )
            return {
                "error": response.get("FunctionError"),
                "payload": json.loads(response["Payload"].read()),
                "log": base64.b64decode(response["LogResult"]).decode(),
            }

        kept = invoke_version({})
        assert kept["payload"] == "provisioned-concurrency"
        assert "Init Duration" not in kept["log"], kept["log"]

        crashed = invoke_version({"crash": True})
        assert crashed["error"] == "Unhandled"
        assert crashed["payload"]["errorType"] == "Runtime.ExitError"

        deadline = time.time() + 30
        while True:
            config = client.get_provisioned_concurrency_config(
                FunctionName="crashy", Qualifier=version
            )
            if config["Status"] == "READY" and config["AllocatedProvisionedConcurrentExecutions"]:
                break
            assert time.time() < deadline, config
            time.sleep(0.1)
        replaced = invoke_version({})
        assert replaced["payload"] == "provisioned-concurrency"
        assert "Init Duration" not in replaced["log"], replaced["log"]
    finally:
        server.stop()
