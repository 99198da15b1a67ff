#!/usr/bin/env bash
# Queue bench: Kiln's durable SQS sends and receives vs the HTTP and SQLite floors, one run.
#
#   bench/queues/run.sh [bench.py options]      e.g. --rounds 5, --seconds 10
#
# Builds Kiln and the native driver (bench/queues/driver), both release (waits if another
# cargo holds the lock), then runs bench.py, which prints Markdown (raw lines in
# bench/queues/out/). SKIP_BUILD=1 uses the existing binaries.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    (cd "$repo" && cargo build --release --locked -p kiln >&2)
    (cd "$here/driver" && cargo build --release >&2)
fi
exec python3 "$here/bench.py" "$@"
