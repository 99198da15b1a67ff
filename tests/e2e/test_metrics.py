"""`GET /metrics`: Lambda's per-function metrics in Prometheus' text format, end to end."""

from __future__ import annotations

import json
import re
import threading
import time

from conftest import make_lambda_client
from kiln_harness import ROLE, make_zip, scrape_metrics

SOURCE = """\
import time


def handler(event, context):
    if event.get("fail"):
        raise ValueError("failing on purpose")
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
"""


def test_invocations_errors_durations_and_concurrency(kiln, lambda_client, function_name):
    lambda_client.create_function(
        FunctionName=function_name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": SOURCE})}, Timeout=10,
    )
    lambda_client.get_waiter("function_active_v2").wait(FunctionName=function_name)
    for payload in ({}, {}, {"fail": True}):
        lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(payload))
    lambda_client.publish_version(FunctionName=function_name)
    lambda_client.invoke(FunctionName=function_name, Qualifier="1", Payload=b"{}")

    text, samples = scrape_metrics(kiln)
    latest = f'function_name="{function_name}",executed_version="$LATEST"'
    assert samples[f"kiln_lambda_invocations_total{{{latest}}}"] == 3
    assert samples[f"kiln_lambda_errors_total{{{latest}}}"] == 1
    assert samples[f"kiln_lambda_duration_milliseconds_count{{{latest}}}"] == 3
    assert samples[f'kiln_lambda_duration_milliseconds_bucket{{{latest},le="+Inf"}}'] == 3
    version_one = f'function_name="{function_name}",executed_version="1"'
    assert samples[f"kiln_lambda_invocations_total{{{version_one}}}"] == 1
    assert samples[f'kiln_lambda_concurrent_executions{{function_name="{function_name}"}}'] == 0
    for family in ("invocations_total", "errors_total", "duration_milliseconds", "throttles_total",
                   "concurrent_executions", "async_events_received_total", "dead_letter_errors_total",
                   "destination_delivery_failures_total", "async_events_dropped_total",
                   "async_event_age_milliseconds"):
        assert re.search(rf"^# TYPE kiln_lambda_{family} (counter|gauge|histogram|summary)$", text, re.M), family

    # An invocation in flight counts in ConcurrentExecutions while it runs.
    thread = threading.Thread(
        target=lambda: lambda_client.invoke(FunctionName=function_name, Payload=json.dumps({"sleep": 1.5}))
    )
    thread.start()
    deadline = time.monotonic() + 5
    key = f'kiln_lambda_concurrent_executions{{function_name="{function_name}"}}'
    while scrape_metrics(kiln)[1].get(key) != 1:
        assert time.monotonic() < deadline, "the running invocation never showed"
        time.sleep(0.05)
    assert scrape_metrics(kiln)[1]["kiln_lambda_concurrent_executions"] >= 1
    thread.join()
    assert scrape_metrics(kiln)[1][key] == 0


def test_provisioned_concurrency_invocations_spillover_and_utilization(kiln, lambda_client, function_name):
    """Two provisioned environments on version 1: invocations of the version run on them and
    count as provisioned; while both are busy, further invocations spill over to on-demand
    environments and count as spillover."""
    lambda_client.create_function(
        FunctionName=function_name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": SOURCE})}, Timeout=30,
    )
    lambda_client.get_waiter("function_active_v2").wait(FunctionName=function_name)
    version = lambda_client.publish_version(FunctionName=function_name)["Version"]
    try:
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=function_name, Qualifier=version, ProvisionedConcurrentExecutions=2
        )
        deadline = time.monotonic() + 60
        while lambda_client.get_provisioned_concurrency_config(
            FunctionName=function_name, Qualifier=version
        )["Status"] != "READY":
            assert time.monotonic() < deadline, "provisioned concurrency never became READY"
            time.sleep(0.1)

        function = f'function_name="{function_name}"'
        resource = f'{function},resource="{version}"'
        provisioned = "kiln_lambda_provisioned_concurrency_invocations_total"
        spillover = "kiln_lambda_provisioned_concurrency_spillover_invocations_total"
        running = "kiln_lambda_provisioned_concurrent_executions"
        utilization = "kiln_lambda_provisioned_concurrency_utilization"
        text, samples = scrape_metrics(kiln)
        for family, kind in ((provisioned, "counter"), (spillover, "counter"),
                             (running, "gauge"), (utilization, "gauge")):
            assert f"# TYPE {family} {kind}\n" in text, family
        # Configured, not invoked yet.
        assert samples[f"{provisioned}{{{resource}}}"] == 0
        assert samples[f"{spillover}{{{resource}}}"] == 0
        assert samples[f"{running}{{{resource}}}"] == 0
        assert samples[f"{utilization}{{{resource}}}"] == 0

        lambda_client.invoke(FunctionName=function_name, Qualifier=version, Payload=b"{}")
        lambda_client.invoke(FunctionName=function_name, Payload=b"{}")  # $LATEST: not provisioned
        samples = scrape_metrics(kiln)[1]
        assert samples[f"{provisioned}{{{resource}}}"] == 1
        assert samples[f"{provisioned}{{{function}}}"] == 1
        assert samples[f"{spillover}{{{resource}}}"] == 0

        # Four at once, each holding its environment for 3 s: two on the provisioned
        # environments, two spilled over to on-demand ones.
        parallel = 4
        barrier = threading.Barrier(parallel + 1)
        errors: list[str] = []

        def run() -> None:
            client = make_lambda_client(kiln.url)
            barrier.wait()
            reply = client.invoke(
                FunctionName=function_name, Qualifier=version, Payload=json.dumps({"sleep": 3})
            )
            if "FunctionError" in reply:
                errors.append(reply["Payload"].read().decode())

        threads = [threading.Thread(target=run) for _ in range(parallel)]
        for thread in threads:
            thread.start()
        barrier.wait()
        # While they run, both provisioned environments are busy.
        deadline = time.monotonic() + 3
        while scrape_metrics(kiln)[1].get(f"{running}{{{resource}}}") != 2:
            assert time.monotonic() < deadline, "the busy provisioned environments never showed"
            time.sleep(0.05)
        samples = scrape_metrics(kiln)[1]
        assert samples[f"{running}{{{function}}}"] == 2
        assert samples[f"{utilization}{{{resource}}}"] == 1
        for thread in threads:
            thread.join()
        assert not errors, errors

        samples = scrape_metrics(kiln)[1]
        assert samples[f"{provisioned}{{{resource}}}"] == 3
        assert samples[f"{spillover}{{{resource}}}"] == 2
        assert samples[f"{spillover}{{{function}}}"] == 2
        assert samples[f"{running}{{{resource}}}"] == 0
        assert samples[f"{utilization}{{{resource}}}"] == 0
        # Every invocation of the version counts in Invocations too.
        executed = f'{function},executed_version="{version}"'
        assert samples[f"kiln_lambda_invocations_total{{{executed}}}"] == 5
    finally:
        # Provisioned concurrency comes out of the shared server's unreserved pool.
        lambda_client.delete_function(FunctionName=function_name)
