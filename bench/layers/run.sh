#!/usr/bin/env bash
# Layers bench: cold starts of a provided.al2023 function with three layers versus none.
#
#   bench/layers/run.sh [bench.py options]      e.g. --n 300
#
# Builds Kiln (release) and the native driver (bench/invoke/driver), then runs bench.py, which
# starts its own `kiln serve` on a free loopback port with a fresh data directory and prints
# Markdown. SKIP_BUILD=1 uses the existing binaries.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$repo" && cargo build --release -p kiln >&2)
    (cd "$repo/bench/invoke/driver" && cargo build --release >&2)
fi
exec "${PYTHON:-python3}" "$here/bench.py" \
    --kiln "$repo/target/release/kiln" \
    --driver "$repo/bench/invoke/driver/target/release/invoke-bench" "$@"
