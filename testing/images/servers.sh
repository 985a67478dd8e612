#!/usr/bin/env bash
# Builds the storage-server images the container tests start through
# testcontainers (no registry is reachable here, so nothing is pulled):
#   ferry/s3s-fs:dev   s3s-fs (a real S3 server that checks signatures), FROM
#                      scratch with the binary scripts/test.sh installs and the
#                      libraries it links; non-root; serves the volume /data.
#   testing/images/servers.sh [IMAGE]       # default ferry/s3s-fs:dev
# Where a registry is reachable, FERRY_S3_SERVER_IMAGE can name any image
# whose entrypoint takes s3s-fs's arguments instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/images/rootfs.sh
image=${1:-ferry/s3s-fs:dev}
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
docker build --quiet -t "$image" "$stage" >/dev/null
echo "$image"
