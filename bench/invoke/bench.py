#!/usr/bin/env python3
"""The invoke path of Kiln vs `cargo lambda watch` vs the physical floors, side by side in one run.

Run it through `run.sh` (which builds everything and installs cargo-lambda); see README.md.

Targets, all on loopback, all answering `POST /2015-03-31/functions/NAME/invocations`:

- kiln-rust:    `kiln serve` (release), a no-op `lambda_runtime` function (bench/invoke/function,
                release build) deployed as provided.al2023 with 1,769 MB (one full vCPU, the
                share at which Lambda gives a function a whole core);
- kiln-python:  the same server, a no-op Python handler on Kiln's bundled runtime, 1,769 MB;
- cargo-lambda: `cargo lambda watch --release` running the same Rust crate from source, with
                its default of one instance per function (`cl-1`) and with `--concurrency 32`
                (`cl-32`);
- floor:        a trivial hyper server echoing the request body (`invoke-bench floor`): one
                loopback HTTP round trip on the same stack Kiln uses, nothing behind it.

Phases:

1. Warm latency and throughput, R rounds, the target order rotating each round: per target,
   N1 requests at concurrency 1, then N32 at concurrency 32 (each after a short warm-up over
   the same connections). CPU time of each target's server process and of its function
   processes (its descendants) is sampled from /proc around every batch, and the driver's own
   from getrusage, to show where the time goes.
2. Cold starts: fresh functions invoked once each (a new execution environment every time);
   for the floor, `invoke-bench cold-floor` starts the same bootstrap as a plain child process
   against a minimal Runtime API; for cargo-lambda, a fresh `cargo lambda watch` is started
   and its first invoke timed.
3. Memory per idle sandbox: M fresh functions invoked once each, so M idle (frozen) sandboxes;
   the deltas of the server's RSS, the sandboxes' PSS and the host's MemAvailable, divided by
   M. The floor: M plain processes of the same bootstrap parked in `/next` of a minimal Runtime
   API (`invoke-bench idle-floor`), measured the same way. MemAvailable moves by megabytes
   with the rest of a shared host, so the overhead is computed from what can be attributed:
   server RSS growth + function PSS + slab + page tables + kernel stacks, Kiln's per sandbox
   minus the plain process's. For cargo-lambda, the watch
   process's RSS before and after `cl-32` scaled out.

The driver (`invoke-bench load`) is native: one thread, one keep-alive connection per
concurrent worker, every answer checked (status 200, no X-Amz-Function-Error, the echoed
marker in the body); any failure aborts the run.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MEMORY_MB = 1769
BODY = '{"bench":"kiln","n":1}'
EXPECT = '"kiln"'  # in the echoed event, however the runtime spaces its JSON
PYTHON_HANDLER = "def handler(event, context):\n    return event\n"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class BenchError(RuntimeError):
    """A target misbehaved: the run aborts."""


# --------------------------------------------------------------------------------------------
# Processes


def note_pid(pid: int) -> None:
    """Records a child's pid in $KILN_BENCH_PIDFILE, so run.sh can stop it if we are killed."""
    pidfile = os.environ.get("KILN_BENCH_PIDFILE")
    if pidfile:
        with open(pidfile, "a") as f:
            f.write(f"{pid}\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    label: str
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            # Each server runs in its own session: signal the whole group (cargo-lambda's
            # `cargo run` children included).
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_announced(label: str, argv: list[str], log_path: Path, cwd: Path | None = None) -> Server:
    """Starts argv; waits for a stdout line naming its address as http://HOST:PORT."""
    log = open(log_path, "ab")
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=log, start_new_session=True, cwd=cwd or log_path.parent
    )
    note_pid(process.pid)
    log.close()
    deadline = time.monotonic() + 60
    while True:
        line = process.stdout.readline().decode(errors="replace")
        if not line:
            process.wait(timeout=5)
            raise BenchError(f"{label} did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
        if "http://" in line:
            port = int(line.split("http://", 1)[1].strip().rstrip("/").rsplit(":", 1)[1])
            drain(process.stdout, log_path)
            return Server(label, process, port, log_path)
        if time.monotonic() > deadline:
            process.kill()
            raise BenchError(f"{label} did not announce its address within 60 s")


def drain(stream, log_path: Path) -> None:
    def pump():
        with open(log_path, "ab") as log:
            for chunk in iter(lambda: stream.read1(65536), b""):
                log.write(chunk)

    threading.Thread(target=pump, daemon=True).start()


def start_cargo_lambda(cargo_lambda: Path, function_dir: Path, workdir: Path, label: str, concurrency: int) -> Server:
    """`cargo lambda watch --release` on a free port, serving the bench function's crate."""
    port = free_port()
    log_path = workdir / f"{label}.log"
    argv = [str(cargo_lambda), "lambda", "watch", "--release", "--ignore-changes", "--quiet"]
    argv += ["--invoke-address", "127.0.0.1", "--invoke-port", str(port)]
    argv += ["--concurrency", str(concurrency)]
    log = open(log_path, "ab")
    process = subprocess.Popen(
        argv, stdout=log, stderr=log, start_new_session=True, cwd=function_dir,
        env={**os.environ, "RUST_LOG": "error"},
    )
    note_pid(process.pid)
    log.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{label} exited:\n{log_path.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return Server(label, process, port, log_path)
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{label} did not listen within 120 s")


# --------------------------------------------------------------------------------------------
# /proc accounting


def proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime+stime ticks) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def descendants(table: dict[int, tuple[int, int]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


@dataclass
class CpuSample:
    server: int
    functions: dict[int, int]


def cpu_sample(root: int) -> CpuSample:
    table = proc_table()
    return CpuSample(
        server=table.get(root, (0, 0))[1],
        functions={pid: table[pid][1] for pid in descendants(table, root)},
    )


def cpu_delta_seconds(before: CpuSample, after: CpuSample) -> tuple[float, float]:
    functions = sum(ticks - before.functions.get(pid, 0) for pid, ticks in after.functions.items())
    return (after.server - before.server) / CLK_TCK, functions / CLK_TCK


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def meminfo_kb(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --------------------------------------------------------------------------------------------
# Kiln's API (plain JSON over HTTP; no SDK needed)


def api(port: int, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read()
    except urllib.error.HTTPError as error:
        raise BenchError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None
    return json.loads(text) if text else {}


def zip_of(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (content, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


@dataclass
class Deployment:
    runtime: str
    handler: str
    zip_b64: str


def create_function(port: int, name: str, deployment: Deployment) -> None:
    api(port, "POST", "/2015-03-31/functions", {
        "FunctionName": name,
        "Runtime": deployment.runtime,
        "Role": "arn:aws:iam::000000000000:role/kiln-bench",
        "Handler": deployment.handler,
        "MemorySize": MEMORY_MB,
        "Timeout": 30,
        "Code": {"ZipFile": deployment.zip_b64},
    })


def wait_active(port: int, names: list[str]) -> None:
    deadline = time.monotonic() + 60
    for name in names:
        while api(port, "GET", f"/2015-03-31/functions/{name}/configuration").get("State") != "Active":
            if time.monotonic() > deadline:
                raise BenchError(f"{name} did not become Active")
            time.sleep(0.05)


def invoke_url(port: int, name: str) -> str:
    return f"http://127.0.0.1:{port}/2015-03-31/functions/{name}/invocations"


# --------------------------------------------------------------------------------------------
# The native driver


@dataclass
class Driver:
    binary: Path
    workdir: Path

    def run(self, args: list[str]) -> tuple[dict, float]:
        """Runs invoke-bench; returns its JSON summary and its own CPU seconds."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True,
            env={**os.environ, "RUST_BACKTRACE": "0"},
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise BenchError(f"invoke-bench {' '.join(args[:3])} failed: {result.stderr.strip()[-2000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return json.loads(result.stdout.strip().splitlines()[-1]), cpu

    def load(self, urls: list[str], concurrency: int, requests: int | None, warmup: int) -> tuple[dict, float]:
        args = ["load", "--body", BODY, "--expect", EXPECT, "--concurrency", str(concurrency)]
        args += ["--warmup", str(warmup)]
        if requests is not None:
            args += ["--requests", str(requests)]
        if len(urls) > 8:
            path = self.workdir / "urls.txt"
            path.write_text("\n".join(urls) + "\n")
            args += ["--urls-file", str(path)]
        else:
            for url in urls:
                args += ["--url", url]
        return self.run(args)


# --------------------------------------------------------------------------------------------
# Phases


@dataclass
class Target:
    label: str
    url: str
    root_pid: int
    warm: dict = field(default_factory=lambda: {1: [], 32: []})


def warm_rounds(driver: Driver, targets: list[Target], rounds: int, n1: int, n32: int) -> None:
    for round_no in range(rounds):
        order = targets[round_no % len(targets):] + targets[: round_no % len(targets)]
        for target in order:
            for concurrency, requests, warmup in ((1, n1, n1 // 10), (32, n32, n32 // 10)):
                before = cpu_sample(target.root_pid)
                summary, driver_cpu = driver.load([target.url], concurrency, requests, warmup)
                after = cpu_sample(target.root_pid)
                server_cpu, function_cpu = cpu_delta_seconds(before, after)
                measured = requests + warmup
                summary["server_cpu_us"] = server_cpu / measured * 1e6
                summary["function_cpu_us"] = function_cpu / measured * 1e6
                summary["driver_cpu_us"] = driver_cpu / measured * 1e6
                target.warm[concurrency].append(summary)
        print(f"# warm round {round_no + 1}/{rounds} done, load {loadavg()}", file=sys.stderr)


def cold_kiln(driver: Driver, port: int, names: list[str]) -> list[float]:
    """Invokes each fresh function once; returns the latencies (us)."""
    raw = driver.workdir / "cold-raw.txt"
    urls = [invoke_url(port, name) for name in names]
    path = driver.workdir / "cold-urls.txt"
    path.write_text("\n".join(urls) + "\n")
    driver.run(["load", "--body", BODY, "--expect", EXPECT, "--urls-file", str(path), "--raw-out", str(raw)])
    return [float(line) for line in raw.read_text().split()]


def cold_floor(driver: Driver, n: int, program: str, args: list[str], env: dict[str, str], cwd: Path) -> list[float]:
    raw = driver.workdir / "cold-floor-raw.txt"
    argv = ["cold-floor", "--program", program, "--n", str(n), "--event", BODY, "--expect", EXPECT]
    argv += ["--raw-out", str(raw), "--cwd", str(cwd)]
    for arg in args:
        argv += [f"--arg={arg}"]
    for name, value in env.items():
        argv += ["--env", f"{name}={value}"]
    driver.run(argv)
    return [float(line) for line in raw.read_text().split()]


def idle_floor_memory(driver: Driver, n: int, program: str, env: dict[str, str], cwd: Path) -> dict:
    """Per-process memory of `n` plain bootstrap processes parked in `/next`: the floor that
    any platform pays for an idle function process (its pages, task, page tables, stacks)."""
    argv = [str(driver.binary), "idle-floor", "--program", program, "--n", str(n), "--event", BODY, "--expect", EXPECT,
            "--cwd", str(cwd)]
    for name, value in env.items():
        argv += ["--env", f"{name}={value}"]
    time.sleep(1)
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        before = memory_snapshot(process.pid, "__none__")
        line = process.stdout.readline().strip()
        if line != "ready":
            raise BenchError(f"idle-floor: expected 'ready', got {line!r}")
        time.sleep(2)
        after = memory_snapshot(process.pid, Path(program).name[:15])
        return memory_delta(before, after, n)
    finally:
        process.stdin.close()
        process.wait(timeout=60)


def cold_cargo_lambda(driver: Driver, cargo_lambda: Path, function_dir: Path, workdir: Path, n: int) -> list[float]:
    samples = []
    for index in range(n):
        server = start_cargo_lambda(cargo_lambda, function_dir, workdir, f"cl-cold-{index}", 1)
        try:
            # Let its start-up build check finish, so the sample is the function's cold start.
            time.sleep(1.5)
            summary, _ = driver.load([invoke_url(server.port, "bootstrap")], 1, 1, 0)
            samples.append(summary["p50_us"])
        finally:
            server.stop()
    return samples


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def memory_snapshot(server_pid: int, function_command: str) -> dict:
    # Only the function processes: cargo-lambda also runs short-lived `cargo metadata` and
    # `cargo run` processes while it scales out.
    pids = {pid for pid in descendants(proc_table(), server_pid) if command_name(pid) == function_command}
    return {
        "server_rss_kb": rss_kb(server_pid),
        "processes": len(pids),
        "processes_pss_kb": sum(pss_kb(pid) for pid in pids),
        "mem_available_kb": meminfo_kb("MemAvailable"),
        "slab_kb": meminfo_kb("Slab"),
        "page_tables_kb": meminfo_kb("PageTables"),
        "kernel_stack_kb": meminfo_kb("KernelStack"),
    }


def memory_delta(before: dict, after: dict, count: int) -> dict:
    per = lambda key: (after[key] - before[key]) / count  # noqa: E731
    return {
        "count": count,
        "server_rss_kb": per("server_rss_kb"),
        "processes_per_sandbox": per("processes"),
        "processes_pss_kb": per("processes_pss_kb"),
        "mem_available_drop_kb": -per("mem_available_kb"),
        "slab_kb": per("slab_kb"),
        "page_tables_kb": per("page_tables_kb"),
        "kernel_stack_kb": per("kernel_stack_kb"),
    }


# --------------------------------------------------------------------------------------------
# Report


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[index - 1]


def median_of(rounds: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def spread(rounds: list[dict], key: str) -> str:
    values = [r[key] for r in rounds]
    return f"{fmt_us(min(values))}–{fmt_us(max(values))}"


def fmt_us(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.1f} ms"
    if value >= 1000:
        return f"{value / 1000:.2f} ms"
    return f"{value:.0f} µs"


def fmt_rate(value: float) -> str:
    return f"{value / 1000:.2f}k/s"


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}×" if reference else "–"


def report(targets: dict[str, Target], cold: dict[str, list[float]], memory: dict, notes: dict) -> str:
    out = []
    floor, cl1, cl32 = targets["floor"], targets["cl-1"], targets["cl-32"]
    out.append("## Warm invoke, concurrency 1 (latency per request)\n")
    out.append("| target | p50 | p50 spread (rounds) | p99 | p50 vs floor | p50 vs cargo-lambda (1 instance) |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    for target in targets.values():
        rounds = target.warm[1]
        p50 = median_of(rounds, "p50_us")
        out.append(
            f"| {target.label} | {fmt_us(p50)} | {spread(rounds, 'p50_us')} | {fmt_us(median_of(rounds, 'p99_us'))} "
            f"| {ratio(p50, median_of(floor.warm[1], 'p50_us'))} | {ratio(p50, median_of(cl1.warm[1], 'p50_us'))} |"
        )
    out.append("")
    out.append("## Warm invoke, concurrency 32 (throughput and where the CPU goes)\n")
    out.append(
        "| target | invokes/s | spread (rounds) | p50 | p99 | vs cargo-lambda (best of cl-1, cl-32) "
        "| server CPU/invoke | function CPU/invoke | driver CPU/invoke |"
    )
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    best_cl = max(median_of(cl1.warm[32], "per_second"), median_of(cl32.warm[32], "per_second"))
    for target in targets.values():
        rounds = target.warm[32]
        rate = median_of(rounds, "per_second")
        rates = [r["per_second"] for r in rounds]
        out.append(
            f"| {target.label} | {fmt_rate(rate)} | {fmt_rate(min(rates))}–{fmt_rate(max(rates))} "
            f"| {fmt_us(median_of(rounds, 'p50_us'))} | {fmt_us(median_of(rounds, 'p99_us'))} "
            f"| {ratio(rate, best_cl)} | {fmt_us(median_of(rounds, 'server_cpu_us'))} "
            f"| {fmt_us(median_of(rounds, 'function_cpu_us'))} | {fmt_us(median_of(rounds, 'driver_cpu_us'))} |"
        )
    out.append("")
    out.append("## Cold start (end to end: request in, a new environment started, response out)\n")
    out.append("| target | n | p50 | p90 | min | p50 vs its floor |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    floors = {"kiln-rust": "floor-rust", "kiln-python": "floor-python", "cargo-lambda": "floor-rust"}
    for label, samples in cold.items():
        reference = cold.get(floors.get(label, ""), [])
        vs = ratio(pct(samples, 50), pct(reference, 50)) if reference else "–"
        out.append(
            f"| {label} | {len(samples)} | {fmt_us(pct(samples, 50))} | {fmt_us(pct(samples, 90))} "
            f"| {fmt_us(min(samples))} | {vs} |"
        )
    out.append("")
    out.append("## Memory per idle sandbox\n")
    kiln = memory["kiln"]
    cl = memory["cargo-lambda"]
    fl = memory["floor"]
    out.append("| measure | Kiln (per idle Rust sandbox) | plain process (floor) | cargo-lambda (per extra instance) |")
    out.append("| --- | --- | --- | --- |")
    out.append(f"| sandboxes / processes / instances measured | {kiln['count']} | {fl['count']} | {cl['count']} |")
    out.append(f"| server process RSS growth | {kiln['server_rss_kb']:.0f} kB | – | {cl['server_rss_kb']:.0f} kB |")
    out.append(
        f"| function processes' PSS | {kiln['processes_pss_kb']:.0f} kB | {fl['processes_pss_kb']:.0f} kB "
        f"| {cl['processes_pss_kb']:.0f} kB |"
    )
    out.append(
        f"| host MemAvailable drop (everything, kernel included; noisy) | {kiln['mem_available_drop_kb']:.0f} kB "
        f"| {fl['mem_available_drop_kb']:.0f} kB | {cl['mem_available_drop_kb']:.0f} kB |"
    )
    kernel = lambda m: f"{m['slab_kb']:.0f} / {m['page_tables_kb']:.0f} / {m['kernel_stack_kb']:.0f} kB"  # noqa: E731
    out.append(f"| of which kernel: slab / page tables / kernel stacks | {kernel(kiln)} | {kernel(fl)} | {kernel(cl)} |")
    accounted = lambda m: m["server_rss_kb"] + m["processes_pss_kb"] + m["slab_kb"] + m["page_tables_kb"] + m["kernel_stack_kb"]  # noqa: E731
    out.append(
        f"| accounted (server RSS + PSS + slab + page tables + kernel stacks) | {accounted(kiln):.0f} kB "
        f"| {accounted(fl):.0f} kB | {accounted(cl):.0f} kB |"
    )
    platform = accounted(kiln) - accounted(fl)
    out.append(
        f"| platform overhead (accounted − the plain process's) | {platform:.0f} kB | 0 "
        f"| {accounted(cl) - accounted(fl):.0f} kB |"
    )
    out.append("")
    out.append("## Against the targets (DESIGN.md)\n")
    kr1 = targets["kiln-rust"].warm[1]
    best_rate = max(median_of(targets[k].warm[32], "per_second") for k in ("kiln-rust", "kiln-python"))
    rows = [
        ("warm p50, no-op Rust function, concurrency 1", "≤ 250 µs", fmt_us(median_of(kr1, "p50_us")), median_of(kr1, "p50_us") <= 250),
        ("warm p99, same", "≤ 1 ms", fmt_us(median_of(kr1, "p99_us")), median_of(kr1, "p99_us") <= 1000),
        ("warm throughput on 2 cores (best no-op function)", "≥ 10,000/s", fmt_rate(best_rate), best_rate >= 10_000),
        ("cold start p50, Rust provided.al2023, isolated", "≤ 5 ms", fmt_us(pct(cold["kiln-rust"], 50)), pct(cold["kiln-rust"], 50) <= 5000),
        ("cold start p50, Python", "≤ 40 ms", fmt_us(pct(cold["kiln-python"], 50)), pct(cold["kiln-python"], 50) <= 40_000),
        ("platform memory per idle sandbox", "≤ 200 kB", f"{platform:.0f} kB (server RSS {kiln['server_rss_kb']:.0f} kB)", platform <= 200),
    ]
    out.append("| metric | target | measured (median) | met |")
    out.append("| --- | --- | --- | --- |")
    for metric, goal, measured, met in rows:
        out.append(f"| {metric} | {goal} | {measured} | {'yes' if met else '**no**'} |")
    out.append("")
    out.append("## Run notes\n")
    for key, value in notes.items():
        out.append(f"- {key}: {value}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="kiln-invoke-bench-"))
    driver = Driver(args.driver, workdir)
    servers: list[Server] = []
    notes: dict[str, str] = {"load before": loadavg()}
    ok = False
    try:
        kiln = start_announced(
            "kiln",
            [str(args.kiln_bin), "serve", "--listen", "127.0.0.1:0", "--sqs-listen", "off", "--data-dir", str(workdir / "kiln-data"),
             "--python", args.python, "--log", "warn"],
            workdir / "kiln.log",
        )
        servers.append(kiln)
        floor = start_announced("floor", [str(args.driver), "floor"], workdir / "floor.log")
        servers.append(floor)
        cl1 = start_cargo_lambda(args.cargo_lambda, args.function_dir, workdir, "cl-1", 1)
        servers.append(cl1)
        cl32 = start_cargo_lambda(args.cargo_lambda, args.function_dir, workdir, "cl-32", 32)
        servers.append(cl32)

        bootstrap = args.bootstrap.read_bytes()
        rust = Deployment("provided.al2023", "bootstrap", base64.b64encode(zip_of({"bootstrap": (bootstrap, 0o755)})).decode())
        python_version = subprocess.check_output([args.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], text=True).strip()
        python = Deployment(f"python{python_version}", "app.handler",
                            base64.b64encode(zip_of({"app.py": (PYTHON_HANDLER.encode(), 0o644)})).decode())
        create_function(kiln.port, "bench-rust", rust)
        create_function(kiln.port, "bench-python", python)
        wait_active(kiln.port, ["bench-rust", "bench-python"])

        targets = {
            "floor": Target("floor", f"http://127.0.0.1:{floor.port}/2015-03-31/functions/floor/invocations", floor.pid),
            "kiln-rust": Target("kiln-rust", invoke_url(kiln.port, "bench-rust"), kiln.pid),
            "kiln-python": Target("kiln-python", invoke_url(kiln.port, "bench-python"), kiln.pid),
            "cl-1": Target("cl-1", invoke_url(cl1.port, "bootstrap"), cl1.pid),
            "cl-32": Target("cl-32", invoke_url(cl32.port, "bootstrap"), cl32.pid),
        }
        # First invokes (cargo-lambda builds or checks the crate and starts the function here).
        for target in targets.values():
            driver.load([target.url], 1, 20, 0)
        cl_memory_before = memory_snapshot(cl32.pid, "bootstrap")
        for target in targets.values():
            driver.load([target.url], 32, 3000, 0)
        time.sleep(1)
        cl_memory_after = memory_snapshot(cl32.pid, "bootstrap")
        cl_instances = cl_memory_after["processes"] - cl_memory_before["processes"]
        print(f"# warmed up; load {loadavg()}", file=sys.stderr)

        warm_rounds(driver, list(targets.values()), args.rounds, args.n_c1, args.n_c32)

        # The warm phase's peers are done: stop them, so that their idle instances and
        # `cargo` helpers do not share the machine with the cold starts.
        for server in (cl1, cl32, floor):
            server.stop()
        time.sleep(3)
        notes["load before the cold phase"] = loadavg()

        # Cold starts, floors and Kiln interleaved per round.
        cold: dict[str, list[float]] = {"floor-rust": [], "kiln-rust": [], "floor-python": [], "kiln-python": [], "cargo-lambda": []}
        rust_names = [f"cold-rust-{i:03d}" for i in range(args.n_cold)]
        python_names = [f"cold-python-{i:03d}" for i in range(args.n_cold_python)]
        for name in rust_names:
            create_function(kiln.port, name, rust)
        for name in python_names:
            create_function(kiln.port, name, python)
        wait_active(kiln.port, rust_names + python_names)
        task = workdir / "python-task"
        task.mkdir()
        (task / "app.py").write_text(PYTHON_HANDLER)
        lambda_env = {
            "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB), "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_REGION": "us-east-1", "LANG": "en_US.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin:/bin", "TZ": ":UTC",
        }
        python_env = {**lambda_env, "_HANDLER": "app.handler", "LAMBDA_TASK_ROOT": str(task),
                      "PYTHONPATH": str(REPO / "runtimes" / "python")}
        cold_rounds = 3
        for round_no in range(cold_rounds):
            share = lambda names: names[round_no::cold_rounds]  # noqa: E731
            cold["floor-rust"] += cold_floor(driver, len(share(rust_names)), str(args.bootstrap), [], lambda_env, workdir)
            cold["kiln-rust"] += cold_kiln(driver, kiln.port, share(rust_names))
            cold["floor-python"] += cold_floor(
                driver, len(share(python_names)), args.python, [str(REPO / "runtimes" / "python" / "bootstrap.py")],
                python_env, task,
            )
            cold["kiln-python"] += cold_kiln(driver, kiln.port, share(python_names))
            cold["cargo-lambda"] += cold_cargo_lambda(driver, args.cargo_lambda, args.function_dir, workdir, args.n_cold_cl)
            print(f"# cold round {round_no + 1}/{cold_rounds} done, load {loadavg()}", file=sys.stderr)

        # Memory per idle sandbox.
        idle_names = [f"idle-rust-{i:03d}" for i in range(args.idle)]
        for name in idle_names:
            create_function(kiln.port, name, rust)
        wait_active(kiln.port, idle_names)
        floor_memory = idle_floor_memory(driver, args.idle, str(args.bootstrap), lambda_env, workdir)
        time.sleep(2)
        before = memory_snapshot(kiln.pid, "bootstrap")
        cold_kiln(driver, kiln.port, idle_names)
        time.sleep(2)  # idle environments get frozen after 1 s
        after = memory_snapshot(kiln.pid, "bootstrap")
        started = after["processes"] - before["processes"]
        if started < args.idle:
            raise BenchError(f"expected {args.idle} new sandbox processes, found {started}")
        memory = {
            "kiln": memory_delta(before, after, args.idle),
            "cargo-lambda": memory_delta(cl_memory_before, cl_memory_after, max(cl_instances, 1)),
            "floor": floor_memory,
        }
        # Function processes per sandbox: 1 for Kiln (the bootstrap is PID 1 of its namespace);
        # cargo-lambda runs each instance under `cargo run`, counted with it.
        notes["Kiln processes per idle sandbox"] = f"{memory['kiln']['processes_per_sandbox']:.2f}"
        notes["cargo-lambda instances started by cl-32"] = str(cl_instances)
        notes["load after"] = loadavg()
        notes["workdir"] = str(workdir)
        print(report(targets, cold, memory, notes))
        if args.json_out:
            args.json_out.write_text(json.dumps({
                "warm": {label: target.warm for label, target in targets.items()},
                "cold": cold, "memory": memory, "notes": notes,
            }, indent=1))
        ok = True
        return 0
    finally:
        for server in reversed(servers):
            server.stop()
        if ok and not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not ok:
            print(f"# failed; logs kept in {workdir}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln-bin", type=Path, required=True)
    parser.add_argument("--driver", type=Path, required=True)
    parser.add_argument("--bootstrap", type=Path, required=True, help="the bench function's release binary")
    parser.add_argument("--function-dir", type=Path, default=HERE / "function")
    parser.add_argument("--cargo-lambda", type=Path, required=True)
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter for Python functions")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n-c1", type=int, default=5000)
    parser.add_argument("--n-c32", type=int, default=20000)
    parser.add_argument("--n-cold", type=int, default=60)
    parser.add_argument("--n-cold-python", type=int, default=30)
    parser.add_argument("--n-cold-cl", type=int, default=2, help="cargo-lambda cold starts per round")
    parser.add_argument("--idle", type=int, default=100, help="idle sandboxes for the memory phase")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(args)
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
