#!/usr/bin/env bash
# Installs what the tests need (Python packages into .venv) and runs every test:
# Rust unit, socket-level and doc tests, then the Python grpcio interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

cargo build --workspace --all-targets
cargo test --workspace

# The conformance suite against every reference driver (today: fs), and at the
# core level against the driver written in Python from the proto alone.
mkdir -p target/conformance
target/debug/ferry-conformance --profile conformance/profiles/fs.yaml \
    --junit target/conformance/fs.junit.xml --json target/conformance/fs.json
target/debug/ferry-conformance --profile conformance/profiles/python.yaml --mode core \
    --junit target/conformance/python.junit.xml --json target/conformance/python.json

FERRY_DRIVER_FS="$PWD/target/debug/ferry-driver-fs" .venv/bin/python -m pytest -q tests/python
