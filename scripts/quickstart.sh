#!/usr/bin/env bash
# The main job on the embedded default (local filesystem, no servers): build
# the fs driver, start it as Argo would (socket path as its only argument),
# save/load/stream/list/delete a file through it, then SIGTERM it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p ferry-driver-fs --bin ferry-driver-fs --example roundtrip

work=$(mktemp -d)
socket="$work/artifact-plugins/fs/socket"
FERRY_LOG=${FERRY_LOG:-warn} target/release/ferry-driver-fs "$socket" &
driver=$!
stop() {
    kill -TERM "$driver" 2>/dev/null || true
    wait "$driver" && echo "driver exited 0 on SIGTERM" || echo "driver exited $?"
    rm -rf "$work"
}
trap stop EXIT

file=${1:-README.md}
target/release/examples/roundtrip "$socket" "root: $work/storage" "$file"
