#!/usr/bin/env python3
"""Queue bench: durable SQS sends and receives on Kiln, side by side with the floors.

In one run, with fresh data:

- Kiln (`kiln serve`, release) over the SQS JSON protocol:
  - SendMessageBatch (10 messages of 100 bytes) from 32 keep-alive connections: messages/s,
    request latency p50/p99; every answer checked (10 successful entries);
  - SendMessage at concurrency 1 (latency) and 32 (throughput);
  - ReceiveMessage (10) + DeleteMessageBatch from 16 connections until the queue is empty;
- the HTTP floor: the same SendMessageBatch request against a trivial hyper server that answers
  a fixed body (same HTTP stack, no queue, no disk);
- the durability floor: SQLite alone, one writer committing 10-row transactions with Kiln's
  settings (WAL, synchronous=FULL): what a send costs without group commit.

Each phase runs `--rounds` times (interleaved); the median round is reported. Prints Markdown;
raw JSON lines go to bench/queues/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DRIVER = HERE / "driver" / "target" / "release" / "queues-bench"


def start(argv: list[str], ready: str, log: Path) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(log, "ab"), start_new_session=True)
    lines = []
    while True:
        line = process.stdout.readline().decode()
        if not line:
            raise RuntimeError(f"{argv[0]} exited before {ready!r}; see {log}")
        lines.append(line.strip())
        if line.startswith(ready):
            return process, lines


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def sqs_call(url: str, operation: str, body: dict) -> dict:
    request = urllib.request.Request(
        url + "/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{operation}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def driver(*args: str) -> dict:
    output = subprocess.run([str(DRIVER), *args], check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def median_by(rounds: list[dict], key: str) -> dict:
    ordered = sorted(rounds, key=lambda r: r[key])
    return ordered[len(ordered) // 2]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln-bin", default=str(REPO / "target" / "release" / "kiln"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    out = HERE / "out"
    out.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kiln-queues-bench-"))
    raw = open(out / f"results-{int(time.time())}.jsonl", "w")
    processes = []
    try:
        kiln, lines = start(
            [args.kiln_bin, "serve", "--listen", "127.0.0.1:0", "--sqs-listen", "127.0.0.1:0",
             "--data-dir", str(work / "kiln-data"), "--log", "warn"],
            "Kiln SQS listening on ", work / "kiln.log",
        )
        processes.append(kiln)
        sqs_url = lines[-1].split("Kiln SQS listening on ", 1)[1]
        floor, lines = start([str(DRIVER), "floor-http"], "floor listening on ", work / "floor.log")
        processes.append(floor)
        floor_url = lines[-1].split("floor listening on ", 1)[1]

        results: dict[str, list[dict]] = {}

        def record(name: str, result: dict) -> None:
            result["phase"] = name
            raw.write(json.dumps(result) + "\n")
            results.setdefault(name, []).append(result)

        seconds = str(args.seconds)
        conc = str(args.concurrency)
        for round_index in range(args.rounds):
            queue = sqs_call(sqs_url, "CreateQueue", {"QueueName": f"bench-{round_index}"})["QueueUrl"]
            record("kiln batch", driver("send", "--url", sqs_url, "--queue-url", queue, "--batch", "10", "--concurrency", conc, "--seconds", seconds))
            record("floor batch", driver("send", "--url", floor_url, "--queue-url", queue, "--batch", "10", "--concurrency", conc, "--seconds", seconds))
            record("kiln single c1", driver("send", "--url", sqs_url, "--queue-url", queue, "--batch", "1", "--concurrency", "1", "--seconds", "3"))
            record("kiln single c32", driver("send", "--url", sqs_url, "--queue-url", queue, "--batch", "1", "--concurrency", conc, "--seconds", "3"))
            count = int(sqs_call(sqs_url, "GetQueueAttributes", {"QueueUrl": queue, "AttributeNames": ["ApproximateNumberOfMessages"]})["Attributes"]["ApproximateNumberOfMessages"])
            record("kiln drain", driver("drain", "--url", sqs_url, "--queue-url", queue, "--concurrency", "16", "--messages", str(count)))
            sqs_call(sqs_url, "DeleteQueue", {"QueueUrl": queue})
            record("sqlite floor", driver("floor-sqlite", "--dir", str(work), "--seconds", "3"))

        batch = median_by(results["kiln batch"], "messages_per_s")
        floor_batch = median_by(results["floor batch"], "messages_per_s")
        single = median_by(results["kiln single c1"], "p50_us")
        single32 = median_by(results["kiln single c32"], "messages_per_s")
        drain = median_by(results["kiln drain"], "messages_per_s")
        sqlite = median_by(results["sqlite floor"], "messages_per_s")
        spread = lambda name, key: f"{min(r[key] for r in results[name]):,.0f}-{max(r[key] for r in results[name]):,.0f}"  # noqa: E731

        print(f"Queue bench: {args.rounds} rounds, {args.seconds:g} s per send phase, {args.concurrency} connections, 100-byte messages, {os.cpu_count()} cores\n")
        print("| what | messages/s (median) | rounds range | request p50 | request p99 |")
        print("| --- | ---: | ---: | ---: | ---: |")
        print(f"| Kiln SendMessageBatch x10, durable | {batch['messages_per_s']:,.0f} | {spread('kiln batch', 'messages_per_s')} | {batch['p50_us'] / 1000:.2f} ms | {batch['p99_us'] / 1000:.2f} ms |")
        print(f"| HTTP floor, same request | {floor_batch['messages_per_s']:,.0f} | {spread('floor batch', 'messages_per_s')} | {floor_batch['p50_us'] / 1000:.2f} ms | {floor_batch['p99_us'] / 1000:.2f} ms |")
        print(f"| SQLite floor, 10-row commits, one writer | {sqlite['messages_per_s']:,.0f} | {spread('sqlite floor', 'messages_per_s')} | {sqlite['commit_p50_us'] / 1000:.2f} ms (commit) | {sqlite['commit_p99_us'] / 1000:.2f} ms (commit) |")
        print(f"| Kiln SendMessage, concurrency 32 | {single32['messages_per_s']:,.0f} | {spread('kiln single c32', 'messages_per_s')} | {single32['p50_us'] / 1000:.2f} ms | {single32['p99_us'] / 1000:.2f} ms |")
        print(f"| Kiln SendMessage, concurrency 1 | {single['messages_per_s']:,.0f} | {spread('kiln single c1', 'messages_per_s')} | {single['p50_us'] / 1000:.2f} ms | {single['p99_us'] / 1000:.2f} ms |")
        print(f"| Kiln ReceiveMessage x10 + DeleteMessageBatch, 16 connections | {drain['messages_per_s']:,.0f} | {spread('kiln drain', 'messages_per_s')} | | |")
        print()
        print(f"- Kiln batched durable sends / HTTP floor: {batch['messages_per_s'] / floor_batch['messages_per_s']:.2f}")
        print(f"- Kiln batched durable sends / SQLite one-writer floor: {batch['messages_per_s'] / sqlite['messages_per_s']:.2f} (group commit shares each fsync among concurrent requests)")
        print(f"- target >= 20,000 durable sends/s in batches: {'met' if batch['messages_per_s'] >= 20_000 else 'NOT met'}")
        return 0
    finally:
        for process in processes:
            stop(process)
        raw.close()


if __name__ == "__main__":
    sys.exit(main())
