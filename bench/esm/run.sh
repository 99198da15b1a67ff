#!/usr/bin/env bash
# Event source mapping bench: SendMessage to the handler starting, through an SQS mapping, side
# by side with a direct Invoke of the same function.
#
#   bench/esm/run.sh [bench.py options]      e.g. --n 500
#
# Builds Kiln (release; waits if another cargo holds the lock), then runs bench.py, which
# prints Markdown. SKIP_BUILD=1 uses the existing binary.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    (cd "$repo" && cargo build --release --locked -p kiln >&2)
fi
exec python3 "$here/bench.py" --kiln-bin "${KILN_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/kiln}" "$@"
