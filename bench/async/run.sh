#!/usr/bin/env bash
# Async invoke bench: durable accept throughput and latency against the SQS SendMessage and HTTP
# floors, and accept -> handler start against a synchronous Invoke, one run.
#
#   bench/async/run.sh [bench.py options]      e.g. --rounds 5, --seconds 10
#
# Builds Kiln and the native driver (bench/async/driver), both release (waits if another cargo
# holds the lock), then runs bench.py, which prints Markdown. SKIP_BUILD=1 uses the existing
# binaries.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    (cd "$repo" && cargo build --release --locked -p kiln >&2)
    (cd "$here/driver" && cargo build --release >&2)
fi
exec python3 "$here/bench.py" --kiln-bin "${KILN_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/kiln}" "$@"
