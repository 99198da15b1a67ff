#!/usr/bin/env python3
"""Control-plane latency of Kiln vs moto, side by side in one run.

Run it through `run.sh` (which builds Kiln and sets up moto's venv); see README.md.

What it does, in order:

1. Starts the targets on loopback with fresh temporary state:
   - kiln:  `kiln serve` (release build) with `--account-id 123456789012` so that the exact
            same request bytes (role ARN included) work on Kiln and on moto;
   - moto:  `moto_server` (moto's server mode, werkzeug threaded HTTP/1.1);
   - floors: a trivial werkzeug app (`floor_server.py`, the HTTP stack moto runs on), and a second,
            empty `kiln serve` answering its cheapest endpoint, `GET /_kiln/health`. (The health
            endpoint counts functions, so its cost grows with the registry: the populated Kiln's
            health is measured too, as its own row, but it is not a floor.)
2. Creates the IAM role moto insists on (moto checks the role exists; Kiln only checks its form).
3. Populates each target with 1,000 functions (each with its own ~260 B zip), interleaved in
   chunks of 50, timing every CreateFunction, and probes Get/List/Delete/health at 0, 250, ...,
   1,000 so a latency cliff as the registry grows shows up (the "scaling" table).
4. Warms every target up (unrecorded), then runs R rounds. In each round every operation runs
   one batch per target, the target order rotating from round to round, so slow drifts of a
   shared machine hit every target alike. New functions are created, left (untimed) to become
   Active, then deleted, so 1,000 are present whenever Get/List are measured.
5. Checks the final state (each target still lists exactly the 1,000 functions), stops every
   process (also on failure or Ctrl-C), and prints Markdown tables; raw samples go to a JSON file.

One driver, one connection per target (http.client keep-alive), request bodies built before
timing starts, and identical requests for every target, so client overhead is the same
everywhere. Each request carries an Authorization header shaped like SigV4 whose credential
scope names `us-east-1/lambda` (moto routes by it); the signature is not valid and neither
server checks it. Every response must be 2xx (and is spot-checked for content), else the run
aborts: a fast error is not a result.

Statistics: per round and per (operation, target) we compute p50/p90/p99 (nearest rank) and
sequential throughput (requests / wall time of the batch). The tables quote the median of the
per-round values and, for p50, the spread (min-max) across rounds.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import io
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ACCOUNT_ID = "123456789012"  # moto's fixed account; Kiln is started with the same one
REGION = "us-east-1"
ROLE_NAME = "kiln-bench-role"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLE_NAME}"
POPULATION = 1000  # functions present while Get*/List* are measured
PAGE = 50  # ListFunctions MaxItems (Lambda's maximum)

# What every CreateFunction uploads: a ~200-byte Python handler, zipped. The function's name is
# in its docstring, so every function has its own code package (as real functions do) and no
# server can get away with deduplicating one shared blob.
HANDLER_TEMPLATE = (
    "import json\n\n\n"
    "def handler(event, context):\n"
    '    """{name}: echoes the event; control-plane bench."""\n'
    '    return {{"statusCode": 200, "body": json.dumps({{"hello": "kiln", "event": event}})}}\n'
)


def make_zip(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("handler.py", date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (0o100644) << 16
        archive.writestr(info, HANDLER_TEMPLATE.format(name=name))
    return buffer.getvalue()


HANDLER_SOURCE = HANDLER_TEMPLATE.format(name="bench-fn-0000")  # typical size, for the report
ZIP_BYTES = make_zip("bench-fn-0000")


def sigv4_like_headers(service: str) -> dict[str, str]:
    """Headers shaped like a SigV4-signed request (signature not valid; nobody checks it)."""
    return {
        "Authorization": (
            "AWS4-HMAC-SHA256 Credential=AKIDKILNBENCH/20240101/"
            f"{REGION}/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
        ),
        "X-Amz-Date": "20240101T000000Z",
        "User-Agent": "kiln-control-plane-bench/1",
    }


LAMBDA_HEADERS = sigv4_like_headers("lambda")
JSON_HEADERS = {**LAMBDA_HEADERS, "Content-Type": "application/json"}


def create_body(name: str) -> bytes:
    return json.dumps(
        {
            "FunctionName": name,
            "Runtime": "python3.12",
            "Role": ROLE_ARN,
            "Handler": "handler.handler",
            "Code": {"ZipFile": base64.b64encode(make_zip(name)).decode()},
            "Timeout": 3,
            "MemorySize": 128,
        }
    ).encode()


class BenchError(RuntimeError):
    """A target misbehaved (non-2xx, wrong content, crash): the run aborts."""


# --------------------------------------------------------------------------------------------
# HTTP client: one keep-alive connection per target, counting (re)connects.


class CountingConnection(http.client.HTTPConnection):
    connects = 0

    def connect(self) -> None:
        super().connect()
        self.connects += 1
        # Same as curl / the AWS SDKs: no Nagle delay on small requests.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Client:
    def __init__(self, host: str, port: int, label: str):
        self.label = label
        self.conn = CountingConnection(host, port, timeout=120)

    def call(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # A server may close an idle keep-alive connection; retry once on a fresh one.
            self.conn.close()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        if response.will_close:
            self.conn.close()
        return response.status, data

    @property
    def connects(self) -> int:
        return self.conn.connects


def expect_2xx(label: str, what: str, status: int, data: bytes) -> None:
    if not 200 <= status < 300:
        raise BenchError(f"{label}: {what} answered {status}: {data[:500]!r}")


# --------------------------------------------------------------------------------------------
# Processes: every child is started in its own session and killed by pid at the end.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    label: str
    process: subprocess.Popen
    host: str
    port: int
    log_path: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise BenchError(f"{self.label} exited with {self.process.returncode}; log tail:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def note_pid(pid: int) -> None:
    """Appends a child's pid to $KILN_BENCH_PIDFILE, so run.sh can stop it if we are SIGKILLed."""
    pidfile = os.environ.get("KILN_BENCH_PIDFILE")
    if pidfile:
        with open(pidfile, "a") as f:
            f.write(f"{pid}\n")


def start_server(label: str, argv: list[str], log_path: Path, ready_prefix: str) -> Server:
    """Starts argv, waits for a stdout line starting with ready_prefix naming http://HOST:PORT."""
    log = open(log_path, "ab")
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=log, start_new_session=True, cwd=log_path.parent
    )
    note_pid(process.pid)
    log.close()
    deadline = time.monotonic() + 60
    while True:
        line = process.stdout.readline().decode(errors="replace")
        if not line:
            process.wait(timeout=5)
            raise BenchError(f"{label} did not start; log:\n{log_path.read_text(errors='replace')[-2000:]}")
        if line.startswith(ready_prefix):
            address = line.split("http://", 1)[1].strip().rstrip("/")
            host, port = address.rsplit(":", 1)
            # Keep draining stdout so the child never blocks on a full pipe.
            _drain(process.stdout, log_path)
            return Server(label, process, host, int(port), log_path)
        if time.monotonic() > deadline:
            process.kill()
            raise BenchError(f"{label} did not print {ready_prefix!r} within 60 s")


def _drain(stream, log_path: Path) -> None:
    import threading

    def pump():
        with open(log_path, "ab") as log:
            for chunk in iter(lambda: stream.read1(65536), b""):
                log.write(chunk)

    threading.Thread(target=pump, daemon=True).start()


def start_kiln(kiln_bin: Path, workdir: Path, label: str) -> Server:
    """`kiln serve` on a free port with a fresh data dir, in moto's account so requests match."""
    argv = [str(kiln_bin), "serve", "--listen", "127.0.0.1:0", "--sqs-listen", "off", "--data-dir", str(workdir / f"{label}-data")]
    argv += ["--account-id", ACCOUNT_ID, "--region", REGION]
    return start_server(label, argv, workdir / f"{label}.log", "Kiln listening on ")


def start_moto(venv: Path, workdir: Path) -> Server:
    port = free_port()
    log_path = workdir / "moto.log"
    log = open(log_path, "ab")
    process = subprocess.Popen(
        [str(venv / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
        start_new_session=True,
        cwd=workdir,
        # No Docker is needed for the control plane; keep moto from looking for it.
        env={**os.environ, "MOTO_CALL_RESET_API": "false"},
    )
    note_pid(process.pid)
    log.close()
    server = Server("moto", process, "127.0.0.1", port, log_path)
    # moto has no health endpoint: wait until ListFunctions answers.
    deadline = time.monotonic() + 60
    while True:
        server.check_alive()
        try:
            client = Client("127.0.0.1", port, "moto")
            status, data = client.call("GET", "/2015-03-31/functions", None, LAMBDA_HEADERS)
            client.conn.close()
            if status == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError("moto_server did not answer within 60 s")
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# Targets and operations.


@dataclass
class Target:
    label: str  # "kiln", "moto", "kiln-empty", "werkzeug"
    server: Server
    client: Client
    lambda_api: bool  # serves the Lambda API (kiln, moto) or only the floor endpoint
    health_path: str | None  # the cheapest endpoint
    floor: bool = False  # measured as a transport floor (no Lambda ops)
    samples: dict = field(default_factory=dict)  # op -> [round -> {"ns": [...], "wall_ns": int}]


def timed_batch(
    target: Target, requests: list[tuple[str, str, bytes | None, dict]], expect: int | None, what: str
) -> tuple[list[int], int, list[bytes]]:
    """Sends the requests back to back; returns (latencies ns, batch wall ns, first body)."""
    client = target.client
    call = client.call
    clock = time.perf_counter_ns
    latencies = []
    first = []
    start = clock()
    for method, path, body, headers in requests:
        t0 = clock()
        status, data = call(method, path, body, headers)
        t1 = clock()
        if status != expect and not (expect is None and 200 <= status < 300):
            raise BenchError(f"{target.label}: {what} {method} {path} answered {status}: {data[:500]!r}")
        latencies.append(t1 - t0)
        if not first:
            first.append(data)
    wall = clock() - start
    return latencies, wall, first


def record(target: Target, op: str, round_no: int, latencies: list[int], wall: int) -> None:
    rounds = target.samples.setdefault(op, {})
    entry = rounds.setdefault(round_no, {"ns": [], "wall_ns": 0})
    entry["ns"].extend(latencies)
    entry["wall_ns"] += wall


def get_requests(names: list[str]) -> list:
    return [("GET", f"/2015-03-31/functions/{n}", None, LAMBDA_HEADERS) for n in names]


def getconf_requests(names: list[str]) -> list:
    return [("GET", f"/2015-03-31/functions/{n}/configuration", None, LAMBDA_HEADERS) for n in names]


def create_requests(names: list[str]) -> list:
    return [("POST", "/2015-03-31/functions", create_body(n), JSON_HEADERS) for n in names]


def delete_requests(names: list[str]) -> list:
    return [("DELETE", f"/2015-03-31/functions/{n}", None, LAMBDA_HEADERS) for n in names]


LIST_FIRST = f"/2015-03-31/functions?MaxItems={PAGE}"


def walk_all(target: Target) -> tuple[int, int, int]:
    """Lists every function following NextMarker; returns (ns, functions seen, pages)."""
    clock = time.perf_counter_ns
    seen = 0
    pages = 0
    marker = None
    t0 = clock()
    while True:
        path = LIST_FIRST if marker is None else f"{LIST_FIRST}&Marker={urllib.parse.quote(marker, safe='')}"
        status, data = target.client.call("GET", path, None, LAMBDA_HEADERS)
        if status != 200:
            raise BenchError(f"{target.label}: ListFunctions {path} answered {status}: {data[:500]!r}")
        page = json.loads(data)
        seen += len(page["Functions"])
        pages += 1
        marker = page.get("NextMarker")
        if not marker:
            break
        if pages > 10 * POPULATION:
            raise BenchError(f"{target.label}: ListFunctions never ends (marker loop?)")
    return clock() - t0, seen, pages


def wait_active(target: Target, names: list[str], timeout: float = 60.0) -> float:
    """Untimed: waits until every function reports State Active; returns the seconds waited.

    Kiln (like Lambda) answers CreateFunction with State Pending and finishes the deployment in
    the background; moto is Active at once. Waiting keeps that background work out of the next
    measured batch, so each batch measures only its own operation.
    """
    start = time.monotonic()
    for name in names:
        while True:
            status, data = target.client.call(
                "GET", f"/2015-03-31/functions/{name}/configuration", None, LAMBDA_HEADERS
            )
            if status != 200:
                raise BenchError(
                    f"{target.label}: GetFunctionConfiguration {name} answered {status}: {data[:300]!r}"
                )
            state = json.loads(data).get("State")
            if state == "Active":
                break
            if state == "Failed" or time.monotonic() - start > timeout:
                raise BenchError(
                    f"{target.label}: {name} is {state!r} after {time.monotonic() - start:.1f} s"
                )
            time.sleep(0.005)
    return time.monotonic() - start


def check_get(target: Target, body: bytes, name: str) -> None:
    doc = json.loads(body)
    got = doc.get("Configuration", {}).get("FunctionName")
    if got != name:
        raise BenchError(f"{target.label}: GetFunction {name} returned FunctionName {got!r}")


def check_getconf(target: Target, body: bytes, name: str) -> None:
    got = json.loads(body).get("FunctionName")
    if got != name:
        raise BenchError(f"{target.label}: GetFunctionConfiguration {name} returned FunctionName {got!r}")


def check_list_first(target: Target, body: bytes, notes: dict) -> None:
    doc = json.loads(body)
    count = len(doc["Functions"])
    notes.setdefault("list_first_page_size", {})[target.label] = count
    notes.setdefault("list_first_page_bytes", {})[target.label] = len(body)
    notes.setdefault("list_first_has_next_marker", {})[target.label] = bool(doc.get("NextMarker"))
    if count == 0:
        raise BenchError(f"{target.label}: ListFunctions returned no functions")


def probe_scaling(
    target: Target, present: list[str], created_ns: list[int], rng: random.Random, notes: dict
) -> None:
    """A quick look at how each operation's latency moves with the number of functions present.

    Small samples (p50 only), taken while populating; the rounds measure properly at 1,000.
    """
    row = {
        "present": len(present),
        "target": target.label,
        "create_p50": pct(created_ns, 50),
        "create_p99": pct(created_ns, 99),
    }
    if present:
        sample = rng.sample(present, 50)
        lat, _, first = timed_batch(target, get_requests(sample), 200, "GetFunction")
        check_get(target, first[0], sample[0])
        row["get_p50"] = pct(sorted(lat), 50)
    lat, _, _ = timed_batch(target, [("GET", LIST_FIRST, None, LAMBDA_HEADERS)] * 20, 200, "ListFunctions")
    row["list_p50"] = pct(sorted(lat), 50)
    # DeleteFunction: create 20 scratch functions (untimed), let them settle, time their deletes.
    scratch = [f"bench-probe-{len(present):04d}-{i:02d}" for i in range(20)]
    timed_batch(target, create_requests(scratch), 201, "CreateFunction")
    wait_active(target, scratch)
    lat, _, _ = timed_batch(target, delete_requests(scratch), 204, "DeleteFunction")
    row["delete_p50"] = pct(sorted(lat), 50)
    if target.health_path:
        lat, _, _ = timed_batch(
            target, [("GET", target.health_path, None, LAMBDA_HEADERS)] * 100, 200, "health"
        )
        row["health_p50"] = pct(sorted(lat), 50)
    notes["scaling"].append(row)


# --------------------------------------------------------------------------------------------
# Optional "what users see" column: the same Get/List calls through boto3 (real SigV4 signing,
# botocore parsing and validation). Skipped with --no-boto3 or when boto3 is not importable.


def boto3_client(target: Target):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=f"http://{target.server.host}:{target.server.port}",
        region_name=REGION,
        aws_access_key_id="AKIDKILNBENCH",
        aws_secret_access_key="kiln-bench-secret",
        config=Config(retries={"max_attempts": 1}, parameter_validation=True),
    )


def boto3_batch(client, calls: list) -> tuple[list[int], int]:
    clock = time.perf_counter_ns
    latencies = []
    start = clock()
    for fn, kwargs in calls:
        t0 = clock()
        fn(**kwargs)  # raises on any non-2xx
        latencies.append(clock() - t0)
    return latencies, clock() - start


# --------------------------------------------------------------------------------------------
# Statistics and report.


def pct(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_ns:
        return float("nan")
    rank = max(1, min(len(sorted_ns), int(round(q / 100 * len(sorted_ns) + 0.5))))
    return sorted_ns[rank - 1] / 1e6


def summarize(rounds: dict) -> dict:
    per_round = []
    for entry in rounds.values():
        ns = sorted(entry["ns"])
        per_round.append(
            {
                "n": len(ns),
                "p50": pct(ns, 50),
                "p90": pct(ns, 90),
                "p99": pct(ns, 99),
                "ops_s": len(ns) / (entry["wall_ns"] / 1e9) if entry["wall_ns"] else float("nan"),
            }
        )
    med = {k: statistics.median(r[k] for r in per_round) for k in ("p50", "p90", "p99", "ops_s")}
    med["n_round"] = per_round[0]["n"]
    med["rounds"] = len(per_round)
    med["p50_min"] = min(r["p50"] for r in per_round)
    med["p50_max"] = max(r["p50"] for r in per_round)
    med["p99_min"] = min(r["p99"] for r in per_round)
    med["p99_max"] = max(r["p99"] for r in per_round)
    return med


def fmt_ms(value: float) -> str:
    if value != value:
        return "n/a"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_rate(value: float) -> str:
    return "n/a" if value != value else (f"{value:,.0f}" if value >= 10 else f"{value:.2f}")


def ratio_text(kiln: float, moto: float) -> str:
    """'8.4x faster' / '1.3x slower' from Kiln's point of view (latencies)."""
    if not kiln or not moto or kiln != kiln or moto != moto:
        return "n/a"
    if moto >= kiln:
        return f"{moto / kiln:.1f}x faster"
    return f"{kiln / moto:.1f}x slower"


OP_TITLES = {
    "CreateFunction": f"CreateFunction ({len(ZIP_BYTES)} B zip, 1,000 present)",
    "DeleteFunction": "DeleteFunction (the functions just created)",
    "GetFunction": "GetFunction (1,000 present)",
    "GetFunctionConfiguration": "GetFunctionConfiguration (1,000 present)",
    "ListFunctions first page": "ListFunctions MaxItems=50, first page (1,000 present; moto ignores MaxItems)",
    "ListFunctions walk all": "ListFunctions, all 1,000 following NextMarker (incl. client JSON parse)",
    "floor": "Floor: loopback HTTP round trip (empty Kiln `GET /_kiln/health`; trivial werkzeug app)",
    "Kiln health (1,000 present)": "`GET /_kiln/health` on the populated Kiln (1,000 present)",
    "boto3 GetFunction": "boto3 `get_function` (1,000 present)",
    "boto3 ListFunctions first page": "boto3 `list_functions(MaxItems=50)` (1,000 present)",
}


def markdown_report(targets: list[Target], notes: dict) -> str:
    lines = []
    ops = [op for op in OP_TITLES if any(op in t.samples for t in targets)]
    lines.append(
        "| Operation | Target | n/round | p50 ms | p90 ms | p99 ms | seq. ops/s | p50 min-max over rounds | p99 min-max |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---|---|")
    summaries: dict[tuple[str, str], dict] = {}
    for op in ops:
        for t in targets:
            if op not in t.samples:
                continue
            s = summarize(t.samples[op])
            summaries[(op, t.label)] = s
            target_name = {"werkzeug": "werkzeug (moto's HTTP server)", "kiln-empty": "kiln (empty)"}.get(
                t.label, t.label
            )
            lines.append(
                f"| {OP_TITLES[op]} | {target_name} | {s['n_round']} | {fmt_ms(s['p50'])} | {fmt_ms(s['p90'])} | "
                f"{fmt_ms(s['p99'])} | {fmt_rate(s['ops_s'])} | {fmt_ms(s['p50_min'])}-{fmt_ms(s['p50_max'])} | "
                f"{fmt_ms(s['p99_min'])}-{fmt_ms(s['p99_max'])} |"
            )
    lines.append("")
    lines.append(
        'Kiln vs moto (medians over rounds; "faster" = lower latency for Kiln; the floor row compares'
    )
    lines.append("the empty Kiln's health endpoint with the trivial werkzeug app):")
    lines.append("")
    lines.append("| Operation | Kiln p50 | moto p50 | p50 | p99 | seq. throughput |")
    lines.append("|---|---:|---:|---|---|---|")
    for op in ops:
        if op == "floor":  # the floors: Kiln's HTTP stack vs the one moto runs on
            k, m = summaries.get((op, "kiln-empty")), summaries.get((op, "werkzeug"))
        else:
            k, m = summaries.get((op, "kiln")), summaries.get((op, "moto"))
        if not k or not m:
            continue
        thr = "n/a"
        if k["ops_s"] and m["ops_s"]:
            r = k["ops_s"] / m["ops_s"]
            thr = f"{r:.1f}x higher" if r >= 1 else f"{1 / r:.1f}x lower"
        lines.append(
            f"| {OP_TITLES[op]} | {fmt_ms(k['p50'])} ms | {fmt_ms(m['p50'])} ms | "
            f"{ratio_text(k['p50'], m['p50'])} | {ratio_text(k['p99'], m['p99'])} | {thr} |"
        )
    if "scaling" in notes:
        lines.append("")
        lines.append(
            "Scaling while populating (ms; small samples, one pass: GetFunction n=50, ListFunctions n=20,"
        )
        lines.append(
            "DeleteFunction n=20, health n=100; CreateFunction = the 250 creates that led up to that size):"
        )
        lines.append("")
        lines.append(
            "| Functions present | Target | CreateFunction p50 | CreateFunction p99 | GetFunction p50 | ListFunctions MaxItems=50 p50 | DeleteFunction p50 | `/_kiln/health` p50 |"
        )
        lines.append("|---:|---|---:|---:|---:|---:|---:|---:|")
        for row in sorted(notes["scaling"], key=lambda row: (row["present"], row["target"])):
            lines.append(
                f"| {row['present']} | {row['target']} | {fmt_ms(row['create_p50'])} | {fmt_ms(row['create_p99'])} | "
                f"{fmt_ms(row.get('get_p50', float('nan')))} | {fmt_ms(row['list_p50'])} | "
                f"{fmt_ms(row['delete_p50'])} | {fmt_ms(row.get('health_p50', float('nan')))} |"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The run.


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="kiln-cp-bench-"))
    servers: list[Server] = []
    notes: dict = {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "zip_bytes": len(ZIP_BYTES),
        "handler_bytes": len(HANDLER_SOURCE),
        "workdir": str(workdir),
        "args": vars(args) | {"kiln_bin": str(args.kiln_bin), "venv": str(args.venv)},
    }
    print(f"# work dir {workdir}", file=sys.stderr)
    ok = False  # set once the report is printed; a failed run keeps its logs

    # Clean up on SIGTERM / SIGHUP as on Ctrl-C: turn them into exceptions.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    try:
        # 1. Servers.
        kiln = start_kiln(args.kiln_bin, workdir, "kiln")
        servers.append(kiln)
        moto = start_moto(args.venv, workdir)
        servers.append(moto)
        kiln_empty = start_kiln(args.kiln_bin, workdir, "kiln-empty")
        servers.append(kiln_empty)
        floor = start_server(
            "werkzeug",
            [str(args.venv / "bin" / "python"), str(HERE / "floor_server.py"), str(free_port())],
            workdir / "floor.log",
            "floor listening on ",
        )
        servers.append(floor)

        targets = [
            Target("kiln", kiln, Client(kiln.host, kiln.port, "kiln"), True, "/_kiln/health"),
            Target("moto", moto, Client(moto.host, moto.port, "moto"), True, None),
            Target(
                "kiln-empty",
                kiln_empty,
                Client(kiln_empty.host, kiln_empty.port, "kiln-empty"),
                False,
                "/_kiln/health",
                floor=True,
            ),
            Target("werkzeug", floor, Client(floor.host, floor.port, "werkzeug"), False, "/", floor=True),
        ]
        lambda_targets = [t for t in targets if t.lambda_api]

        # 2. The IAM role moto requires (IAM query protocol). Kiln only checks the ARN's form.
        iam = Client(moto.host, moto.port, "moto-iam")
        policy = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        )
        form = urllib.parse.urlencode(
            {
                "Action": "CreateRole",
                "Version": "2010-05-08",
                "RoleName": ROLE_NAME,
                "AssumeRolePolicyDocument": policy,
            }
        ).encode()
        status, data = iam.call(
            "POST",
            "/",
            form,
            {**sigv4_like_headers("iam"), "Content-Type": "application/x-www-form-urlencoded"},
        )
        expect_2xx("moto", "IAM CreateRole", status, data)
        iam.conn.close()

        notes["loadavg_before"] = loadavg()
        print(f"# loadavg before: {notes['loadavg_before']}", file=sys.stderr)

        # 3. Populate 1,000 functions per target, interleaved; probe scaling every 250.
        names = [f"bench-fn-{i:04d}" for i in range(POPULATION)]
        scaling_create: dict[str, list[int]] = {t.label: [] for t in lambda_targets}
        notes["scaling"] = []
        for t in lambda_targets:
            probe_scaling(t, [], [], rng, notes)
        t_pop = time.monotonic()
        for chunk_start in range(0, POPULATION, 50):
            chunk = names[chunk_start : chunk_start + 50]
            for t in lambda_targets:
                lat, _, first = timed_batch(t, create_requests(chunk), 201, "CreateFunction")
                scaling_create[t.label].extend(lat)
            present = chunk_start + 50
            if present % 250 == 0:
                for t in lambda_targets:
                    probe_scaling(t, names[:present], sorted(scaling_create[t.label]), rng, notes)
                    scaling_create[t.label] = []
                print(
                    f"# populated {present}/{POPULATION} ({time.monotonic() - t_pop:.1f} s)", file=sys.stderr
                )
        for t in lambda_targets:
            wait_active(t, names)
            _, seen, _ = walk_all(t)
            if seen != POPULATION:
                raise BenchError(f"{t.label}: lists {seen} functions after populating {POPULATION}")

        # 4a. Warm-up (unrecorded): a bit of every operation on every target.
        for t in targets:
            if t.health_path:
                timed_batch(t, [("GET", t.health_path, None, LAMBDA_HEADERS)] * 500, 200, "floor")
            if t.lambda_api:
                warm = rng.sample(names, 200)
                timed_batch(t, get_requests(warm), 200, "GetFunction")
                timed_batch(t, getconf_requests(warm), 200, "GetFunctionConfiguration")
                timed_batch(t, [("GET", LIST_FIRST, None, LAMBDA_HEADERS)] * 10, 200, "ListFunctions")
                walk_all(t)
                temp = [f"bench-warm-{i:03d}" for i in range(20)]
                timed_batch(t, create_requests(temp), 201, "CreateFunction")
                wait_active(t, temp)
                timed_batch(t, delete_requests(temp), 204, "DeleteFunction")

        boto3_clients = {}
        if args.boto3:
            try:
                boto3_clients = {t.label: boto3_client(t) for t in lambda_targets}
                for t in lambda_targets:  # warm botocore's lazy loaders
                    for n in rng.sample(names, 50):
                        boto3_clients[t.label].get_function(FunctionName=n)
                    boto3_clients[t.label].list_functions(MaxItems=PAGE)
            except ImportError:
                print("# boto3 not importable: skipping the boto3 column", file=sys.stderr)
                boto3_clients = {}

        # 4b. Rounds, interleaved: every op runs once per target per round, order rotating.
        created_serial = 0
        for r in range(args.rounds):
            t_round = time.monotonic()
            order = targets[r % len(targets) :] + targets[: r % len(targets)]
            lam_order = [t for t in order if t.lambda_api]
            get_names = rng.choices(names, k=args.n_get)
            for t in lam_order:
                lat, wall, first = timed_batch(t, get_requests(get_names), 200, "GetFunction")
                check_get(t, first[0], get_names[0])
                record(t, "GetFunction", r, lat, wall)
            for t in lam_order:
                lat, wall, first = timed_batch(
                    t, getconf_requests(get_names), 200, "GetFunctionConfiguration"
                )
                check_getconf(t, first[0], get_names[0])
                record(t, "GetFunctionConfiguration", r, lat, wall)
            for t in lam_order:
                lat, wall, first = timed_batch(
                    t, [("GET", LIST_FIRST, None, LAMBDA_HEADERS)] * args.n_list, 200, "ListFunctions"
                )
                check_list_first(t, first[0], notes)
                record(t, "ListFunctions first page", r, lat, wall)
            for t in lam_order:
                walks = []
                wall0 = time.perf_counter_ns()
                for _ in range(args.n_walk):
                    ns, seen, pages = walk_all(t)
                    if seen != POPULATION:
                        raise BenchError(f"{t.label}: walk saw {seen} functions, expected {POPULATION}")
                    walks.append(ns)
                notes.setdefault("walk_pages", {})[t.label] = pages
                record(t, "ListFunctions walk all", r, walks, time.perf_counter_ns() - wall0)
            new_names = [f"bench-new-{created_serial + i:05d}" for i in range(args.n_create)]
            created_serial += args.n_create
            for t in lam_order:
                lat, wall, _ = timed_batch(t, create_requests(new_names), 201, "CreateFunction")
                record(t, "CreateFunction", r, lat, wall)
            for t in lam_order:
                waited = wait_active(t, new_names)
                notes.setdefault("active_wait_s", {}).setdefault(t.label, []).append(round(waited, 3))
            for t in lam_order:
                lat, wall, _ = timed_batch(t, delete_requests(new_names), 204, "DeleteFunction")
                record(t, "DeleteFunction", r, lat, wall)
            for t in order:
                if t.health_path:
                    op = "floor" if t.floor else "Kiln health (1,000 present)"
                    lat, wall, _ = timed_batch(
                        t, [("GET", t.health_path, None, LAMBDA_HEADERS)] * args.n_floor, 200, op
                    )
                    record(t, op, r, lat, wall)
            for t in lam_order:
                if t.label in boto3_clients:
                    c = boto3_clients[t.label]
                    lat, wall = boto3_batch(
                        c, [(c.get_function, {"FunctionName": n}) for n in get_names[: args.n_boto3]]
                    )
                    record(t, "boto3 GetFunction", r, lat, wall)
            for t in lam_order:
                if t.label in boto3_clients:
                    c = boto3_clients[t.label]
                    lat, wall = boto3_batch(
                        c, [(c.list_functions, {"MaxItems": PAGE})] * max(1, args.n_list // 2)
                    )
                    record(t, "boto3 ListFunctions first page", r, lat, wall)
            for s in servers:
                s.check_alive()
            print(
                f"# round {r + 1}/{args.rounds} done in {time.monotonic() - t_round:.1f} s, loadavg {loadavg()}",
                file=sys.stderr,
            )

        # 5. Final state: still exactly the 1,000 functions everywhere.
        for t in lambda_targets:
            _, seen, _ = walk_all(t)
            if seen != POPULATION:
                raise BenchError(f"{t.label}: lists {seen} functions at the end, expected {POPULATION}")
        notes["loadavg_after"] = loadavg()
        notes["connects"] = {t.label: t.client.connects for t in targets}
        notes["rss_kb_after"] = {s.label: rss_kb(s.process.pid) for s in servers}
        notes["zip_note"] = f"handler.py {len(HANDLER_SOURCE)} B, zip {len(ZIP_BYTES)} B"

        report = markdown_report(targets, notes)
        meta = (
            f"Date: {notes['date_utc']}; nproc {notes['nproc']}; loadavg before `{notes['loadavg_before']}`, "
            f"after `{notes['loadavg_after']}`; rounds {args.rounds}; {notes['zip_note']}; "
            f"ListFunctions first-page sizes {notes.get('list_first_page_size')}, "
            f"response bytes {notes.get('list_first_page_bytes')}; pages per walk {notes.get('walk_pages')}; "
            f"TCP connects per target {notes['connects']}; server RSS after (kB) {notes['rss_kb_after']}."
        )
        print(report)
        print()
        print(meta)
        if args.json_out:
            raw = {
                "notes": notes,
                "samples_ns": {
                    t.label: {op: {str(r): e for r, e in rounds.items()} for op, rounds in t.samples.items()}
                    for t in targets
                },
                "summary": {
                    t.label: {op: summarize(rounds) for op, rounds in t.samples.items()} for t in targets
                },
            }
            Path(args.json_out).write_text(json.dumps(raw))
            print(f"# raw samples: {args.json_out}", file=sys.stderr)
        ok = True
        return 0
    except BenchError as error:
        print(f"BENCH ABORTED: {error}", file=sys.stderr)
        return 1
    finally:
        for s in reversed(servers):
            s.stop()
        if args.keep_workdir:
            print(f"# work dir kept: {workdir}", file=sys.stderr)
        else:
            import shutil

            # Keep logs of a failed run for the reproduction; drop bulky data dirs always.
            shutil.rmtree(workdir / "kiln-data", ignore_errors=True)
            shutil.rmtree(workdir / "kiln-empty-data", ignore_errors=True)
            if ok:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                print(f"# logs kept in {workdir}", file=sys.stderr)


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiln-bin", type=Path, required=True, help="kiln release binary")
    parser.add_argument("--venv", type=Path, required=True, help="venv holding moto[server]")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n-get", type=int, default=400, help="GetFunction(+Configuration) per batch")
    parser.add_argument("--n-list", type=int, default=60, help="ListFunctions first page per batch")
    parser.add_argument("--n-walk", type=int, default=5, help="full ListFunctions walks per batch")
    parser.add_argument(
        "--n-create", type=int, default=100, help="CreateFunction (and DeleteFunction) per batch"
    )
    parser.add_argument("--n-floor", type=int, default=1000, help="floor requests per batch")
    parser.add_argument("--n-boto3", type=int, default=200, help="boto3 get_function per batch")
    parser.add_argument("--no-boto3", dest="boto3", action="store_false")
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--json-out", help="write raw samples and summaries here")
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args()
    try:
        return run(args)
    except KeyboardInterrupt as interrupt:
        print(f"interrupted ({interrupt}); servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
