#!/usr/bin/env bash
# Installs (once; cached in ~/.cargo/bin) and starts s3s-fs, a real
# S3-compatible server that checks SigV4 signatures, on 127.0.0.1.
#   scripts/s3-server.sh DATA_DIR PORT      # runs in the foreground
# The buckets `ferry-test` and `ferry-test-alt` exist; credentials are ferry-test-access / ferry-test-secret.
set -euo pipefail
data=${1:?data directory}
port=${2:-19014}
bin=${S3S_FS:-$HOME/.cargo/bin/s3s-fs}
if [ ! -x "$bin" ]; then
    # Newer versions need a newer rustc than this project's.
    cargo install s3s-fs@0.14.1 --features binary --locked >&2
fi
mkdir -p "$data/ferry-test" "$data/ferry-test-alt"
exec "$bin" --host 127.0.0.1 --port "$port" \
    --access-key ferry-test-access --secret-key ferry-test-secret "$data"
