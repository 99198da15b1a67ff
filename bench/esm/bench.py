"""SendMessage to the function running, through an SQS event source mapping, side by side with
a direct Invoke of the same function (the floor: what running the function costs anyway).

One release `kiln serve` with fresh data. One Python function records `time.time()` as the
first thing its handler does and forwards it (with the marker it was given) to a results
queue. Each sample, on an idle mapping (the previous sample finished, then a pause):

- mapping: t0 = time.time() just before a SendMessage of the marker to the mapped queue;
  latency = the handler's timestamp - t0;
- direct:  t0 just before an Invoke of the same function with the marker; latency = the
  handler's timestamp - t0.

Both go through the same keep-alive HTTP connections from this process, and both stamps come
from the same host clock. Rounds interleave the two kinds. The fsync latency of the data
directory's disk is measured in the same run: the mapping path commits twice (SendMessage is
acknowledged only once durable; the receive that hands the message to the poller records its
delivery durably), so on a slow-fsync disk that is most of its cost. Prints Markdown.
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

FUNCTION = """\
import json
import os
import time
import urllib.request


def handler(event, context):
    started = time.time()
    if "Records" in event:
        markers = [record["body"] for record in event["Records"]]
    else:
        markers = [event["marker"]]
    for marker in markers:
        body = json.dumps({"QueueUrl": os.environ["RESULTS_URL"],
                           "MessageBody": json.dumps({"marker": marker, "started": started})})
        request = urllib.request.Request(
            os.environ["SQS_ENDPOINT"], data=body.encode(),
            headers={"Content-Type": "application/x-amz-json-1.0",
                     "X-Amz-Target": "AmazonSQS.SendMessage"})
        urllib.request.urlopen(request, timeout=10).read()
    return {"ok": True}
"""


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
    def call(self, method: str, path: str, body: dict | None = None, ok=(200, 201, 202, 204)) -> dict:
        status, answer = self.request(method, path, body, {"Content-Type": "application/json"})
        if status not in ok:
            raise RuntimeError(f"Lambda {method} {path}: {status} {answer}")
        return answer


def start_kiln(kiln_bin: Path, workdir: Path, python: str) -> tuple[subprocess.Popen, str, str]:
    log = open(workdir / "kiln.log", "ab")
    process = subprocess.Popen(
        [str(kiln_bin), "serve", "--listen", "127.0.0.1:0", "--sqs-listen", "127.0.0.1:0",
         "--data-dir", str(workdir / "data"), "--python", python, "--log", "warn"],
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


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def fsync_floor(directory: Path, n: int = 200) -> list[float]:
    """Milliseconds per fsync of a 4 KiB append in `directory`: the floor of every durable step
    (the send's commit and the receive's commit are two of them)."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    samples = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t0 = time.perf_counter()
            os.fsync(fd)
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return samples


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


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="kiln-esm-bench-"))
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    process, lambda_url, sqs_url = start_kiln(args.kiln_bin, workdir, args.python)
    try:
        lam, sqs, control = Lambda(lambda_url), Sqs(sqs_url), Sqs(sqs_url)
        results_url = sqs.call("CreateQueue", {"QueueName": "results"})["QueueUrl"]
        source_url = sqs.call("CreateQueue", {"QueueName": "source"})["QueueUrl"]
        source_arn = sqs.call("GetQueueAttributes", {"QueueUrl": source_url, "AttributeNames": ["QueueArn"]})["Attributes"]["QueueArn"]
        lam.call("POST", "/2015-03-31/functions", {
            "FunctionName": "stamp", "Runtime": "python3.12", "Handler": "app.handler",
            "Role": "arn:aws:iam::000000000000:role/bench", "MemorySize": 1769, "Timeout": 10,
            "Code": {"ZipFile": base64.b64encode(zip_of({"app.py": FUNCTION})).decode()},
            "Environment": {"Variables": {"SQS_ENDPOINT": sqs_url, "RESULTS_URL": results_url}},
        })
        while lam.call("GET", "/2015-03-31/functions/stamp/configuration")["State"] != "Active":
            time.sleep(0.05)
        mapping = lam.call("POST", "/2015-03-31/event-source-mappings", {
            "EventSourceArn": source_arn, "FunctionName": "stamp", "BatchSize": 1,
        })
        while lam.call("GET", f"/2015-03-31/event-source-mappings/{mapping['UUID']}")["State"] != "Enabled":
            time.sleep(0.05)
        samples: dict[str, list[float]] = {"mapping": [], "direct": []}
        for warmup in range(5):  # warm environments, connections and code paths
            marker = f"warm-{warmup}"
            sqs.call("SendMessage", {"QueueUrl": source_url, "MessageBody": marker})
            wait_result(control, results_url, marker)
            lam.call("POST", "/2015-03-31/functions/stamp/invocations", {"marker": f"direct-{marker}"})
            wait_result(control, results_url, f"direct-{marker}")
        for n in range(args.n):
            for kind in (("mapping", "direct") if n % 2 == 0 else ("direct", "mapping")):
                marker = f"{kind}-{n}"
                time.sleep(args.pause)
                if kind == "mapping":
                    t0 = time.time()
                    sqs.call("SendMessage", {"QueueUrl": source_url, "MessageBody": marker})
                else:
                    t0 = time.time()
                    lam.call("POST", "/2015-03-31/functions/stamp/invocations", {"marker": marker})
                started = wait_result(control, results_url, marker)
                samples[kind].append((started - t0) * 1000)
        load_after = Path("/proc/loadavg").read_text().split()[:3]
        fsyncs = fsync_floor(workdir)
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        print(f"# SQS event source mapping latency, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
        print(f"- Kiln: release build, git {commit}; function: Python ({args.python}), 1,769 MB, BatchSize 1")
        print(f"- {args.n} samples of each kind, interleaved, {args.pause * 1000:.0f} ms idle before each")
        print(f"- load before {' '.join(load_before)}, after {' '.join(load_after)}\n")
        print("| path | p50 | p90 | p99 | min |")
        print("| --- | --- | --- | --- | --- |")
        for kind, label in (("mapping", "SendMessage -> mapping -> handler starts"),
                            ("direct", "Invoke -> handler starts (floor)")):
            values = samples[kind]
            print(f"| {label} | {pct(values, 50):.2f} ms | {pct(values, 90):.2f} ms | {pct(values, 99):.2f} ms | {min(values):.2f} ms |")
        print(f"| fsync of 4 KiB on the data directory's disk (floor of one durable step) | {pct(fsyncs, 50):.2f} ms "
              f"| {pct(fsyncs, 90):.2f} ms | {pct(fsyncs, 99):.2f} ms | {min(fsyncs):.2f} ms |")
        mapping_p50, direct_p50 = pct(samples["mapping"], 50), pct(samples["direct"], 50)
        print(f"\n- mapping / direct at p50: {mapping_p50 / direct_p50:.2f}x; the queue and poller add "
              f"{mapping_p50 - direct_p50:.2f} ms at p50, {(mapping_p50 - direct_p50) / pct(fsyncs, 50):.1f} fsyncs' worth "
              "(the path has two durable commits: the send, and the receive that records the delivery)")
        print(f"- target: a message reaches an idle mapping's function within 20 ms at p50: "
              f"{'met' if mapping_p50 <= 20 else 'NOT met'} ({mapping_p50:.2f} ms)")
        if args.json_out:
            args.json_out.write_text(json.dumps(samples))
        return 0
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln-bin", type=Path, default=REPO / "target" / "release" / "kiln")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter for the function")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--pause", type=float, default=0.05, help="idle seconds before each sample")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--keep-workdir", action="store_true")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
