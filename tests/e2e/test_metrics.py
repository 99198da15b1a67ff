"""`GET /metrics`: Lambda's per-function metrics in Prometheus' text format, end to end."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request

from kiln_harness import ROLE, make_zip

SOURCE = """\
import time


def handler(event, context):
    if event.get("fail"):
        raise ValueError("failing on purpose")
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
"""


def scrape(kiln) -> tuple[str, dict[str, float]]:
    with urllib.request.urlopen(f"{kiln.url}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return text, samples


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

    text, samples = scrape(kiln)
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
    while scrape(kiln)[1].get(key) != 1:
        assert time.monotonic() < deadline, "the running invocation never showed"
        time.sleep(0.05)
    assert scrape(kiln)[1]["kiln_lambda_concurrent_executions"] >= 1
    thread.join()
    assert scrape(kiln)[1][key] == 0
