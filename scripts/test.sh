#!/usr/bin/env bash
# Kiln's whole test suite, runnable on a fresh machine: it installs what it needs itself.
#
#   1. formatting and lints (cargo fmt, clippy -D warnings)
#   2. Rust unit and in-process integration tests (cargo test)
#   3. end-to-end tests: real `kiln serve` processes driven by boto3 and the aws CLI, installed
#      from PyPI into .venv-test (pinned in tests/e2e/requirements.txt)
#
# Extra arguments go to pytest, e.g. `./scripts/test.sh -k persistence`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "cargo build (binary for end-to-end tests)"
cargo build --locked -p kiln

step "python test environment"
python=${PYTHON:-python3}
venv=.venv-test
requirements=tests/e2e/requirements.txt
stamp="$venv/.requirements.sha256"
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$wanted" > "$stamp"
fi

step "build tools for aws-lambda-ric (tests/e2e/test_real_runtimes.py)"
# npm's aws-lambda-ric compiles curl and aws-lambda-cpp from source when it installs.
ric_tools_missing=""
for tool in cmake autoconf automake libtoolize make g++; do
    command -v "$tool" >/dev/null 2>&1 || ric_tools_missing="$ric_tools_missing $tool"
done
if [ -z "$ric_tools_missing" ]; then
    echo "already installed"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        cmake autoconf automake libtool make g++ >/dev/null
else
    echo "missing:$ric_tools_missing (not root, or no apt-get): the aws-lambda-ric tests will skip"
fi

step "end-to-end tests (boto3, aws CLI)"
KILN_BIN="$PWD/target/debug/kiln" "$venv/bin/python" -m pytest tests/e2e -q "$@"
