#!/usr/bin/env bash
# Control-plane latency bench: Kiln vs moto vs the loopback floor, in one run.
#
#   bench/control_plane/run.sh [bench.py options]     e.g. --rounds 7, --no-boto3
#
# 1. builds Kiln (release; waits if another cargo holds the lock),
# 2. creates the moto venv if missing (bench/control_plane/.venv, moto[server]==$MOTO_VERSION),
# 3. runs bench.py, which starts kiln serve, moto_server and a trivial werkzeug floor on free
#    loopback ports with fresh temp data, runs interleaved rounds, stops them all and prints
#    Markdown tables (raw samples in bench/control_plane/out/).
#
# Environment: MOTO_VERSION (default 5.2.5), KILN_BENCH_VENV (default bench/control_plane/.venv),
# PYTHON (interpreter used to create the venv, default python3), SKIP_BUILD=1 (use the existing
# target/release/kiln as is), KILN_BIN=/path/to/kiln (bench that binary instead; no build).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${KILN_BENCH_VENV:-$here/.venv}"
moto_version="${MOTO_VERSION:-5.2.5}"
python="${PYTHON:-python3}"

# bench.py stops its own servers in a finally block. This trap is the backstop should bench.py
# itself be killed: it stops bench.py, then any server whose pid bench.py wrote to the pid file
# (and only those, by process id).
bench_pid=""
pidfile="$(mktemp -t kiln-cp-bench-pids.XXXXXX)"
export KILN_BENCH_PIDFILE="$pidfile"
cleanup() {
    if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
        kill -TERM "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
    local pid
    while read -r pid; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done < "$pidfile"
    rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [[ -n "${KILN_BIN:-}" ]]; then
    kiln_bin="$KILN_BIN"
    kiln_desc="binary $kiln_bin"
else
    if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
        echo "# building kiln (release)" >&2
        (cd "$repo" && cargo build --release -p kiln >&2)
    fi
    kiln_bin="$repo/target/release/kiln"
    kiln_rev="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo "no commit yet")"
    dirty="$(cd "$repo" && git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null | head -c1 | wc -c)"
    kiln_desc="work tree at git $kiln_rev"
    if [[ "$dirty" != 0 ]]; then kiln_desc+=" + uncommitted changes under crates/"; fi
fi
[[ -x "$kiln_bin" ]] || { echo "no kiln binary at $kiln_bin" >&2; exit 1; }

if ! "$venv/bin/python" -c "import moto, werkzeug, boto3" 2>/dev/null; then
    echo "# creating moto venv at $venv (moto[server]==$moto_version)" >&2
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version" >&2
fi

mkdir -p "$here/out"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
moto_installed="$("$venv/bin/python" -c 'import moto; print(moto.__version__)')"

# Header: what, where, which versions.
cat <<EOF
# Control-plane bench, $(date -u '+%Y-%m-%d %H:%M UTC')

- Command: \`bench/control_plane/run.sh${*:+ $*}\`
- Machine: $(uname -srm), nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
- Kiln: $("$kiln_bin" --version), $kiln_desc (built $(date -u -r "$kiln_bin" '+%Y-%m-%d %H:%M UTC'))
- moto: $moto_installed (moto_server, werkzeug $("$venv/bin/python" -c 'import werkzeug.serving, importlib.metadata as m; print(m.version("werkzeug"))')), Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')
- Driver: bench/control_plane/bench.py, Python http.client, one keep-alive connection per target, sequential

EOF

"$venv/bin/python" "$here/bench.py" \
    --kiln-bin "$kiln_bin" --venv "$venv" --json-out "$here/out/control_plane-$stamp.json" "$@" &
bench_pid=$!
set +e
wait "$bench_pid"
status=$?
set -e
bench_pid=""
exit "$status"
