#!/usr/bin/env python3
"""Cold starts with three layers versus none, side by side in one run.

Run it through `run.sh` (which builds Kiln and the native driver); see README.md.

One `kiln serve` (release) on a fresh data directory. Three layers are published (a `bin/`
of scripts, a `lib/` of files, a `python/` package, 150 files in all, one path shipped by
two of them). Then N functions without layers and N functions with the three layers are
created: the same `provided.al2023` shell bootstrap (it echoes the event through the Runtime
API with curl), 1,769 MB. Every function is invoked once (a new execution environment every
time), the two kinds interleaved (none, layers, none, layers, ...) at concurrency 1 by the
native driver (`bench/invoke/driver`), so drift on a shared machine hits both alike.

Printed: p50/p90/p99/mean of each kind and the ratios, plus the size of the merged `/opt`
tree (one for all N functions with layers) and of the layers' extracted packages.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MEMORY_MB = 1769
BODY = '{"bench":"kiln","n":1}'
EXPECT = '"kiln"'

BOOTSTRAP = r"""#!/bin/sh
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  curl -sS -D /tmp/headers -o /tmp/event "$API/invocation/next"
  ID=$(grep -i '^lambda-runtime-aws-request-id:' /tmp/headers | tr -d '\r' | cut -d' ' -f2)
  curl -sS -X POST --data-binary @/tmp/event "$API/invocation/$ID/response" >/dev/null
done
"""


class BenchError(Exception):
    pass


def zip_of(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (content, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def layers() -> list[bytes]:
    tools = {f"bin/tool{i}": (b"#!/bin/sh\necho tool\n", 0o755) for i in range(50)}
    libs = {f"lib/libfake{i}.so": (bytes(4096), 0o644) for i in range(50)}
    libs["bin/tool0"] = (b"#!/bin/sh\necho overridden\n", 0o755)
    package = {f"python/pkg/mod{i}.py": (f"VALUE = {i}\n".encode(), 0o644) for i in range(49)}
    package["python/pkg/__init__.py"] = (b"", 0o644)
    return [zip_of(tools), zip_of(libs), zip_of(package)]


class Kiln:
    def __init__(self, binary: Path, data_dir: Path, log: Path):
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0", "--sqs-listen", "off", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE, stderr=self.log, start_new_session=True,
        )
        line = self.process.stdout.readline().decode()
        if not line.startswith("Kiln listening on "):
            self.process.kill()
            raise BenchError(f"kiln did not start: {line!r}")
        self.url = line.split("Kiln listening on ", 1)[1].strip()

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            raise BenchError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None
        return json.loads(text) if text else {}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def tree_stats(root: Path) -> tuple[int, int]:
    files = 0
    size = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            files += 1
            size += path.stat().st_size
    return files, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln", type=Path, default=REPO / "target" / "release" / "kiln")
    parser.add_argument("--driver", type=Path, default=REPO / "bench" / "invoke" / "driver" / "target" / "release" / "invoke-bench")
    parser.add_argument("--n", type=int, default=200, help="functions of each kind (default 200)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="kiln-layers-bench-"))
    kiln = Kiln(args.kiln, workdir / "data", workdir / "kiln.log")
    try:
        arns = []
        for index, content in enumerate(layers()):
            published = kiln.api("POST", f"/2018-10-31/layers/bench-{index}/versions", {
                "Content": {"ZipFile": base64.b64encode(content).decode()},
                "CompatibleRuntimes": ["provided.al2023"],
            })
            arns.append(published["LayerVersionArn"])
        code = base64.b64encode(zip_of({"bootstrap": (BOOTSTRAP.encode(), 0o755)})).decode()
        names = []
        for index in range(args.n):
            for kind, with_layers in (("none", []), ("layers", arns)):
                name = f"cold-{kind}-{index}"
                body = {
                    "FunctionName": name,
                    "Runtime": "provided.al2023",
                    "Role": "arn:aws:iam::000000000000:role/kiln-bench",
                    "Handler": "echo",
                    "MemorySize": MEMORY_MB,
                    "Timeout": 30,
                    "Code": {"ZipFile": code},
                }
                if with_layers:
                    body["Layers"] = with_layers
                kiln.api("POST", "/2015-03-31/functions", body)
                names.append((kind, name))
        deadline = time.monotonic() + 120
        for _, name in names:
            while kiln.api("GET", f"/2015-03-31/functions/{name}/configuration").get("State") != "Active":
                if time.monotonic() > deadline:
                    raise BenchError(f"{name} did not become Active")
                time.sleep(0.02)
        urls = workdir / "urls.txt"
        urls.write_text("".join(f"{kiln.url}/2015-03-31/functions/{name}/invocations\n" for _, name in names))
        raw = workdir / "raw.txt"
        result = subprocess.run(
            [str(args.driver), "load", "--body", BODY, "--expect", EXPECT, "--concurrency", "1",
             "--urls-file", str(urls), "--raw-out", str(raw)],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise BenchError(f"driver failed: {result.stderr[-2000:]}")
        latencies = [float(line) for line in raw.read_text().split()]
        by_kind: dict[str, list[float]] = {"none": [], "layers": []}
        for (kind, _), latency in zip(names, latencies):
            by_kind[kind].append(latency / 1000)
        merged = list((workdir / "data" / "layers-merged").iterdir())
        merged_files, _ = tree_stats(merged[0]) if merged else (0, 0)
        print(f"# cold starts, provided.al2023 shell bootstrap, {MEMORY_MB} MB, {args.n} per kind, interleaved")
        print(f"# merged /opt trees: {len(merged)} ({merged_files} files, hard links) for {args.n} functions with 3 layers")
        print()
        print("| functions | n | p50 ms | p90 ms | p99 ms | mean ms |")
        print("| --- | --- | --- | --- | --- | --- |")
        for kind, label in (("none", "no layers"), ("layers", "3 layers")):
            values = by_kind[kind]
            print(f"| {label} | {len(values)} | {pct(values, 50):.2f} | {pct(values, 90):.2f} | "
                  f"{pct(values, 99):.2f} | {sum(values) / len(values):.2f} |")
        none, with_layers = by_kind["none"], by_kind["layers"]
        print()
        print(f"ratio 3 layers / none: p50 {pct(with_layers, 50) / pct(none, 50):.3f}, "
              f"p90 {pct(with_layers, 90) / pct(none, 90):.3f}")
    finally:
        kiln.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        sys.exit(1)
