#!/usr/bin/env bash
# The main job on the embedded default (local filesystem, no servers): build
# `ferry` and the fs driver, run an Argo workflow whose steps pass an artifact
# through the driver over gRPC, then show the run and its artifacts.
#   bash scripts/quickstart.sh [WORKFLOW.yaml ...]
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p ferry-executor -p ferry-driver-fs

export FERRY_HOME=${FERRY_HOME:-$PWD/target/ferry-home}
ferry=target/release/ferry
name="quickstart-$(date +%s)"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(examples/workflows/dag-artifacts.yaml)

"$ferry" run --name "$name" "${files[@]}"
echo
"$ferry" get "$name"
echo
"$ferry" artifacts "$name"
echo
echo "state and artifacts are in $FERRY_HOME; try: $ferry logs $name"
