"""Asynchronous invoke: durable accept throughput and latency, side by side with floors, and the
delay from accept to the handler starting.

One release `kiln serve` with fresh data. Parts, in this order:

1. accept -> handler starts: `t0 = time.time()` just before an `Invoke` with
   `X-Amz-Invocation-Type: Event` (202 once the event is durable); the Python handler stamps
   `time.time()` first thing and forwards it to a results queue. One event at a time, idle
   between samples; the same measurement with a synchronous `Invoke` is the floor.
2. accept throughput: the native driver (driver/, one client thread, keep-alive connections)
   sends async Invokes of a no-op Python function for `--seconds`, every answer checked (202);
   side by side, in the same run and the same way: the queue service's `SendMessage` (the same
   kind of durable group-committed write, one message per request) and `GET /_kiln/health`
   (Kiln's HTTP stack answering without any work). Rounds interleave the three. The events
   accepted are invoked meanwhile, `--async-concurrency` at a time (default 1 here, so that the
   figure is about accepting: on 2 cores, running a Python function costs far more CPU than
   accepting its event, and Kiln's warm invoke throughput, ~10,000/s, would otherwise cap the
   accept rate); `--async-concurrency 16` (Kiln's default) shows accept under full execution load.

Prints Markdown.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DRIVER = HERE / "driver" / "target" / "release" / "async-bench"

STAMP = """\
import json
import os
import time
import urllib.request


def handler(event, context):
    started = time.time()
    body = json.dumps({"QueueUrl": os.environ["RESULTS_URL"],
                       "MessageBody": json.dumps({"marker": event["marker"], "started": started})})
    request = urllib.request.Request(
        os.environ["SQS_ENDPOINT"], data=body.encode(),
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"})
    urllib.request.urlopen(request, timeout=10).read()
    return {"ok": True}
"""
NOOP = "def handler(event, context):\n    return None\n"


class Json:
    """Keep-alive JSON requests to one endpoint."""

    def __init__(self, url: str):
        parsed = urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)

    def request(self, method: str, path: str, body: dict | None, headers: dict[str, str]) -> tuple[int, dict]:
        payload = json.dumps(body).encode() if body is not None else b""
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else {})


class Sqs(Json):
    def call(self, operation: str, body: dict) -> dict:
        status, answer = self.request("POST", "/", body, {
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{operation}",
        })
        if status != 200:
            raise RuntimeError(f"SQS {operation}: {status} {answer}")
        return answer


class Lambda(Json):
    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None,
             ok=(200, 201, 202, 204)) -> dict:
        status, answer = self.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
        if status not in ok:
            raise RuntimeError(f"Lambda {method} {path}: {status} {answer}")
        return answer


def start_kiln(kiln_bin: Path, workdir: Path, python: str, async_concurrency: int) -> tuple[subprocess.Popen, str, str]:
    log = open(workdir / "kiln.log", "ab")
    process = subprocess.Popen(
        [str(kiln_bin), "serve", "--listen", "127.0.0.1:0", "--sqs-listen", "127.0.0.1:0",
         "--data-dir", str(workdir / "data"), "--python", python, "--log", "warn",
         "--async-concurrency", str(async_concurrency)],
        stdout=subprocess.PIPE, stderr=log, start_new_session=True,
    )
    lines = [process.stdout.readline().decode().strip() for _ in range(2)]
    urls = {}
    for line in lines:
        for prefix in ("Kiln listening on ", "Kiln SQS listening on "):
            if line.startswith(prefix):
                urls[prefix] = line[len(prefix):]
    if len(urls) != 2:
        process.kill()
        raise RuntimeError(f"kiln did not start: {lines}")
    return process, urls["Kiln listening on "], urls["Kiln SQS listening on "]


def zip_of(files: dict[str, str]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            archive.writestr(info, text)
    return base64.b64encode(buffer.getvalue()).decode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def create(lam: Lambda, name: str, code: str, variables: dict) -> None:
    lam.call("POST", "/2015-03-31/functions", {
        "FunctionName": name, "Runtime": "python3.12", "Handler": "app.handler",
        "Role": "arn:aws:iam::000000000000:role/bench", "MemorySize": 1769, "Timeout": 10,
        "Code": {"ZipFile": zip_of({"app.py": code})},
        "Environment": {"Variables": variables},
    })
    while lam.call("GET", f"/2015-03-31/functions/{name}/configuration")["State"] != "Active":
        time.sleep(0.05)


def wait_result(sqs: Sqs, results_url: str, marker: str) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = sqs.call("ReceiveMessage", {"QueueUrl": results_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 5})
        for message in answer.get("Messages", []):
            sqs.call("DeleteMessage", {"QueueUrl": results_url, "ReceiptHandle": message["ReceiptHandle"]})
            result = json.loads(message["Body"])
            if result["marker"] == marker:
                return result["started"]
    raise RuntimeError(f"no result for {marker}")


def drive(url: str, seconds: float, concurrency: int, *args: str) -> dict:
    output = subprocess.run(
        [str(DRIVER), "--url", url, "--seconds", str(seconds), "--concurrency", str(concurrency), *args],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="kiln-async-bench-"))
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    process, lambda_url, sqs_url = start_kiln(args.kiln_bin, workdir, args.python, args.async_concurrency)
    try:
        lam, sqs, control = Lambda(lambda_url), Sqs(sqs_url), Sqs(sqs_url)
        results_url = sqs.call("CreateQueue", {"QueueName": "results"})["QueueUrl"]
        floor_url = sqs.call("CreateQueue", {"QueueName": "floor"})["QueueUrl"]
        create(lam, "stamp", STAMP, {"SQS_ENDPOINT": sqs_url, "RESULTS_URL": results_url})
        create(lam, "noop", NOOP, {})

        # 1. accept -> handler starts, against a synchronous Invoke.
        delays: dict[str, list[float]] = {"async": [], "sync": []}
        invoke = "/2015-03-31/functions/stamp/invocations"
        for n in range(args.warmup + args.n):
            for kind in (("async", "sync") if n % 2 == 0 else ("sync", "async")):
                marker = f"{kind}-{n}"
                time.sleep(args.pause)
                headers = {"X-Amz-Invocation-Type": "Event"} if kind == "async" else {}
                t0 = time.time()
                lam.call("POST", invoke, {"marker": marker}, headers)
                started = wait_result(control, results_url, marker)
                if n >= args.warmup:
                    delays[kind].append((started - t0) * 1000)

        # 2. accept throughput, interleaved with the floors.
        kinds = {
            "async": ["--path", "/2015-03-31/functions/noop/invocations", "--header", "X-Amz-Invocation-Type: Event",
                      "--header", "Content-Type: application/json", "--body", '{"n": {seq}}', "--expect-status", "202"],
            "sqs": ["--path", "/", "--header", "Content-Type: application/x-amz-json-1.0",
                    "--header", "X-Amz-Target: AmazonSQS.SendMessage",
                    "--body", json.dumps({"QueueUrl": floor_url, "MessageBody": '{"n": {seq}}'}), "--expect-status", "200"],
            "http": ["--method", "GET", "--path", "/_kiln/health", "--expect-status", "200"],
        }
        urls = {"async": lambda_url, "sqs": sqs_url, "http": lambda_url}
        results: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for round_number in range(args.rounds):
            order = list(kinds) if round_number % 2 == 0 else list(reversed(kinds))
            for kind in order:
                results[kind].append(drive(urls[kind], args.seconds, args.concurrency, *kinds[kind]))
                time.sleep(1)
        load_after = Path("/proc/loadavg").read_text().split()[:3]

        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        print(f"# Async invoke bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
        print(f"- Kiln: release build, git {commit}; Python functions ({args.python}), 1,769 MB")
        print(f"- accept: {args.rounds} interleaved rounds of {args.seconds:.0f} s, {args.concurrency} keep-alive "
              f"connections from one client thread; medians of the rounds (range in brackets)")
        print(f"- Kiln runs at most {args.async_concurrency} asynchronous attempt(s) of the bench's one function at once (`--async-concurrency`, a per-function limit)")
        print(f"- load before {' '.join(load_before)}, after {' '.join(load_after)}\n")
        print("| what | requests/s (median) | rounds range | p50 | p99 |")
        print("| --- | ---: | ---: | ---: | ---: |")
        labels = {
            "async": "Kiln async Invoke (Event), durable, 202",
            "sqs": "floor: Kiln SQS SendMessage, durable, same writer design",
            "http": "floor: Kiln HTTP, GET /_kiln/health, no work",
        }
        medians = {}
        for kind, label in labels.items():
            rates = [r["requests_per_s"] for r in results[kind]]
            p50 = statistics.median(r["p50_us"] for r in results[kind]) / 1000
            p99 = statistics.median(r["p99_us"] for r in results[kind]) / 1000
            medians[kind] = (statistics.median(rates), p99)
            print(f"| {label} | {statistics.median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f} | {p50:.2f} ms | {p99:.2f} ms |")
        async_rate, async_p99 = medians["async"]
        print(f"\n- async accept / SQS SendMessage: {async_rate / medians['sqs'][0]:.2f}")
        print(f"- async accept / HTTP floor: {async_rate / medians['http'][0]:.2f}")
        met = async_rate >= 20_000 and async_p99 <= 5
        print(f"- target >= 20,000 events/s with p99 <= 5 ms, durable: {'met' if met else 'NOT met'} "
              f"({async_rate:,.0f}/s, p99 {async_p99:.2f} ms)\n")
        print("| accept -> handler starts | p50 | p90 | p99 | min |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for kind, label in (("async", "async Invoke (202, durable) -> handler starts"),
                            ("sync", "floor: sync Invoke -> handler starts")):
            values = delays[kind]
            print(f"| {label} | {pct(values, 50):.2f} ms | {pct(values, 90):.2f} ms | {pct(values, 99):.2f} ms | {min(values):.2f} ms |")
        print(f"\n- {args.n} samples of each, interleaved, {args.pause * 1000:.0f} ms idle before each; "
              f"async adds {pct(delays['async'], 50) - pct(delays['sync'], 50):.2f} ms at p50")
        return 0
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln-bin", type=Path, default=REPO / "target" / "release" / "kiln")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter for the functions")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--n", type=int, default=200, help="accept -> start samples of each kind")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pause", type=float, default=0.02)
    parser.add_argument("--async-concurrency", type=int, default=1,
                        help="kiln serve --async-concurrency (attempts running while accepting)")
    parser.add_argument("--keep-workdir", action="store_true")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
