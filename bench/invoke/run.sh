#!/usr/bin/env bash
# Invoke bench: Kiln vs `cargo lambda watch` vs the loopback and plain-process floors, one run.
#
#   bench/invoke/run.sh [bench.py options]      e.g. --rounds 7, --n-c32 40000
#
# 1. builds Kiln, the native driver (bench/invoke/driver) and the bench function
#    (bench/invoke/function), all release; waits if another cargo holds the lock,
# 2. creates the cargo-lambda venv if missing (bench/invoke/.venv, cargo-lambda==$CARGO_LAMBDA_VERSION),
# 3. runs bench.py, which starts every server on a free loopback port with fresh temporary
#    data, measures, stops them all and prints Markdown (raw results in bench/invoke/out/).
#
# Environment: CARGO_LAMBDA_VERSION (default 1.9.2), KILN_BENCH_VENV (default bench/invoke/.venv),
# PYTHON (creates the venv; default python3), FUNCTION_PYTHON (runs Python functions, for Kiln
# and for the floor alike; default /usr/bin/python3), SKIP_BUILD=1 (use the existing binaries).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${KILN_BENCH_VENV:-$here/.venv}"
cargo_lambda_version="${CARGO_LAMBDA_VERSION:-1.9.2}"
python="${PYTHON:-python3}"
function_python="${FUNCTION_PYTHON:-/usr/bin/python3}"

# bench.py stops its own servers; this trap is the backstop should bench.py itself be killed.
bench_pid=""
pidfile="$(mktemp -t kiln-invoke-bench-pids.XXXXXX)"
export KILN_BENCH_PIDFILE="$pidfile"
cleanup() {
    if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
        kill -TERM "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
    local pid
    while read -r pid; do
        # Every server runs in its own session (process group = its pid).
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        fi
    done < "$pidfile"
    rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    echo "# building kiln, the driver and the bench function (release)" >&2
    (cd "$repo" && cargo build --release -p kiln >&2)
    (cd "$here/driver" && cargo build --release >&2)
    (cd "$here/function" && cargo build --release >&2)
fi
kiln_bin="$repo/target/release/kiln"
driver="$here/driver/target/release/invoke-bench"
bootstrap="$here/function/target/release/bootstrap"
for binary in "$kiln_bin" "$driver" "$bootstrap"; do
    [[ -x "$binary" ]] || { echo "missing $binary (run without SKIP_BUILD=1)" >&2; exit 1; }
done

if ! "$venv/bin/cargo-lambda" lambda --version >/dev/null 2>&1; then
    echo "# creating the cargo-lambda venv at $venv (cargo-lambda==$cargo_lambda_version)" >&2
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==$cargo_lambda_version" >&2
fi

kiln_rev="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo "no commit yet")"
dirty="$(cd "$repo" && git status --porcelain -- crates runtimes Cargo.toml Cargo.lock 2>/dev/null | head -c1 | wc -c)"
kiln_desc="git $kiln_rev"
if [[ "$dirty" != 0 ]]; then kiln_desc+=" + uncommitted changes"; fi

mkdir -p "$here/out"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"

cat <<EOF
# Invoke bench, $(date -u '+%Y-%m-%d %H:%M UTC')

- Command: \`bench/invoke/run.sh${*:+ $*}\`
- Machine: $(uname -srm), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
- Kiln: $("$kiln_bin" --version), $kiln_desc, isolation: $("$kiln_bin" doctor 2>/dev/null | sed -n 's/^Isolation: //p' | head -1)
- cargo-lambda: $("$venv/bin/cargo-lambda" lambda --version 2>/dev/null | head -1) (\`cargo lambda watch --release\`)
- Function: bench/invoke/function (lambda_runtime $(grep -m1 -A1 'name = "lambda_runtime"' "$here/function/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p'), default \`#[tokio::main]\`, release); Python: $("$function_python" --version 2>&1)
- Driver: bench/invoke/driver (\`invoke-bench load\`: Rust, hyper, one thread, one keep-alive connection per concurrent worker)

EOF

"$python" "$here/bench.py" \
    --kiln-bin "$kiln_bin" --driver "$driver" --bootstrap "$bootstrap" \
    --cargo-lambda "$venv/bin/cargo-lambda" --python "$function_python" \
    --json-out "$here/out/invoke-$stamp.json" "$@" &
bench_pid=$!
set +e
wait "$bench_pid"
status=$?
set -e
bench_pid=""
exit "$status"
