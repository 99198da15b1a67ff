#!/usr/bin/env python3
"""How Kiln's control-plane latencies grow with the number of functions (Kiln only, quick).

The side-by-side bench (`run.sh`) measures at 1,000 functions; this probe goes further out to
show which operations are O(1) and which grow with the registry. Every function gets its own
~260 B code package, as in the bench.

    python bench/control_plane/scaling_probe.py [--kiln-bin target/release/kiln] [--sizes 0,1000,3000]

Prints one row per size: p50 (and p90) of GetFunction, ListFunctions first page (MaxItems=50),
ListFunctions last page, a full walk of all pages, DeleteFunction (of 30 scratch functions that
were created and left to become Active first) and GET /_kiln/health. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the same client, requests and checks as the bench)


def p(ns: list[int], q: float) -> float:
    return bench.pct(sorted(ns), q)


def main() -> int:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiln-bin", type=Path, default=repo / "target" / "release" / "kiln")
    parser.add_argument("--sizes", default="0,1000,3000", help="registry sizes to probe, ascending")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="kiln-scaling-probe-"))
    server = bench.start_server(
        "kiln",
        [
            str(args.kiln_bin),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(workdir / "data"),
            "--account-id",
            bench.ACCOUNT_ID,
        ],
        workdir / "kiln.log",
        "Kiln listening on ",
    )
    headers = bench.LAMBDA_HEADERS
    try:
        target = bench.Target(
            "kiln", server, bench.Client(server.host, server.port, "kiln"), True, "/_kiln/health"
        )
        print(
            "| functions | GetFunction p50 | List first page p50 | List last page p50 | walk all pages | DeleteFunction p50 / p90 | /_kiln/health p50 |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        present: list[str] = []
        for size in sizes:
            new = [f"probe-fn-{i:05d}" for i in range(len(present), size)]
            for start in range(0, len(new), 100):
                bench.timed_batch(
                    target, bench.create_requests(new[start : start + 100]), 201, "CreateFunction"
                )
            bench.wait_active(target, new)
            present += new

            get = (
                p(bench.timed_batch(target, bench.get_requests(present[:200]), 200, "GetFunction")[0], 50)
                if present
                else float("nan")
            )
            first = bench.timed_batch(
                target, [("GET", bench.LIST_FIRST, None, headers)] * 50, 200, "ListFunctions"
            )[0]
            # The marker of the last page: walk once.
            marker, last_path = None, bench.LIST_FIRST
            while True:
                path = (
                    bench.LIST_FIRST
                    if marker is None
                    else f"{bench.LIST_FIRST}&Marker={urllib.parse.quote(marker, safe='')}"
                )
                status, data = target.client.call("GET", path, None, headers)
                bench.expect_2xx("kiln", "ListFunctions", status, data)
                marker = json.loads(data).get("NextMarker")
                if not marker:
                    break
                last_path = f"{bench.LIST_FIRST}&Marker={urllib.parse.quote(marker, safe='')}"
            last = bench.timed_batch(target, [("GET", last_path, None, headers)] * 50, 200, "ListFunctions")[
                0
            ]
            walks = [bench.walk_all(target)[0] for _ in range(3)]
            scratch = [f"probe-scratch-{size}-{i:02d}" for i in range(30)]
            bench.timed_batch(target, bench.create_requests(scratch), 201, "CreateFunction")
            bench.wait_active(target, scratch)
            delete = bench.timed_batch(target, bench.delete_requests(scratch), 204, "DeleteFunction")[0]
            health = bench.timed_batch(
                target, [("GET", "/_kiln/health", None, headers)] * 300, 200, "health"
            )[0]
            print(
                f"| {size} | {bench.fmt_ms(get)} | {bench.fmt_ms(p(first, 50))} | {bench.fmt_ms(p(last, 50))} | "
                f"{bench.fmt_ms(p(walks, 50))} | {bench.fmt_ms(p(delete, 50))} / {bench.fmt_ms(p(delete, 90))} | "
                f"{bench.fmt_ms(p(health, 50))} |",
                flush=True,
            )
        print(f"\nloadavg after: {bench.loadavg()} (all times in ms)")
        return 0
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
