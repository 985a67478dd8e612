#!/usr/bin/env bash
# Builds the step image the `--runtime docker` tests map workflow images to
# (no registry is reachable here): FROM scratch with Debian's static busybox
# and a link for each of its applets, /tmp writable.
#   testing/images/busybox.sh [IMAGE]      # default ferry/busybox:dev
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${1:-ferry/busybox:dev}
[ -x /bin/busybox ] || { echo "busybox.sh: needs Debian's busybox-static (apt-get install busybox-static)" >&2; exit 2; }
stage=target/images/busybox
rm -rf "$stage"
mkdir -p "$stage/rootfs/bin" "$stage/rootfs/tmp" "$stage/rootfs/etc"
chmod 1777 "$stage/rootfs/tmp"
cp /bin/busybox "$stage/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$stage/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$stage/rootfs/etc/passwd"
printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nCMD ["sh"]\n' > "$stage/Dockerfile"
docker build --quiet -t "$image" "$stage" >/dev/null
echo "$image"
