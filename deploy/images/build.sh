#!/usr/bin/env bash
# Builds one image per reference driver with no registry: each is FROM scratch
# with the release binary and exactly the shared libraries it links (read off
# `ldd`), CA certificates, /etc/passwd naming the non-root user 65532, and a
# world-writable /tmp, as Argo's plugin docs require. The git image adds the git
# CLI (push, submodules), ssh and a static busybox for the shell git runs hooks,
# GIT_SSH_COMMAND and `git submodule` through.
#
# `conformance` builds the conformance suite's image, ferry/conformance:<tag>:
# ferry-conformance with the docker CLI (to start a driver image as a sibling
# container) and a static busybox (for the profiles' shell hooks).
#
#   deploy/images/build.sh [DRIVER|conformance...]  # default: every driver and conformance
#   FERRY_IMAGE_PREFIX=ferry/driver- FERRY_IMAGE_TAG=dev   (the defaults)
#
# Images are named ${FERRY_IMAGE_PREFIX}<driver>:${FERRY_IMAGE_TAG}.
set -euo pipefail
cd "$(dirname "$0")/../.."

prefix=${FERRY_IMAGE_PREFIX:-ferry/driver-}
tag=${FERRY_IMAGE_TAG:-dev}
drivers=()
conformance=
[ $# -gt 0 ] || set -- fs s3 oss gcs git http conformance
for d in "$@"; do
    if [ "$d" = conformance ]; then conformance=yes; continue; fi
    [ -d "drivers/$d" ] || { echo "build.sh: no driver named \"$d\" (drivers/$d does not exist)" >&2; exit 2; }
    drivers+=("$d")
done
if { [ -n "$conformance" ] || printf '%s\n' "${drivers[@]}" | grep -qx git; } && [ ! -x /bin/busybox ]; then
    echo "build.sh: the git and conformance images need a static busybox: apt-get install busybox-static" >&2
    exit 2
fi
if [ -n "$conformance" ] && ! command -v docker >/dev/null; then
    echo "build.sh: the conformance image carries the docker CLI, and none is installed here" >&2
    exit 2
fi

packages=()
for d in "${drivers[@]}"; do packages+=(-p "ferry-driver-$d"); done
[ -z "$conformance" ] || packages+=(-p ferry-conformance)
cargo build --release --locked "${packages[@]}"

source deploy/images/rootfs.sh

# `new_root STAGE`: an empty stage whose rootfs has what every image shares
# (a world-writable /tmp, CA certificates, the users); prints the rootfs path.
new_root() {
    local root="$1/rootfs"
    rm -rf "$1"
    mkdir -p "$root/tmp" "$root/etc/ssl/certs"
    chmod 1777 "$root/tmp"
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
    add_users "$root"
    echo "$root"
}

# `build_image NAME DOCKERFILE STAGE [DOCKER_BUILD_ARGS...]`: builds and prints its size.
build_image() {
    local name=$1 dockerfile=$2 stage=$3 size
    shift 3
    docker build --quiet "$@" -t "$name" -f "$dockerfile" "$stage" >/dev/null
    size=$(docker image inspect -f '{{.Size}}' "$name")
    awk -v n="$name" -v s="$size" 'BEGIN { printf "%-28s %6.1f MB\n", n, s / 1e6 }'
}

if [ -n "$conformance" ]; then
    stage=target/images/conformance
    root=$(new_root "$stage")
    add_elf "$root" target/release/ferry-conformance /usr/local/bin/ferry-conformance
    add_elf "$root" "$(command -v docker)" /usr/local/bin/docker
    strip "$root/usr/local/bin/docker"
    mkdir -p "$root/bin"
    cp /bin/busybox "$root/bin/busybox"
    # Every applet, so a profile's hooks run as they do on the author's machine.
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
    done
    build_image "ferry/conformance:$tag" deploy/images/conformance.Dockerfile "$stage"
fi

for d in "${drivers[@]}"; do
    stage="target/images/$d"
    root=$(new_root "$stage")
    add_elf "$root" "target/release/ferry-driver-$d" "/usr/local/bin/ferry-driver-$d"
    ln -s "/usr/local/bin/ferry-driver-$d" "$root/entrypoint"
    if [ "$d" = git ]; then
        add_elf "$root" /usr/bin/git
        add_elf "$root" /usr/lib/git-core/git-remote-http
        ln -s git-remote-http "$root/usr/lib/git-core/git-remote-https"
        cp /usr/lib/git-core/git-submodule /usr/lib/git-core/git-sh-setup /usr/lib/git-core/git-sh-i18n "$root/usr/lib/git-core/"
        add_elf "$root" /usr/bin/ssh
        mkdir -p "$root/bin"
        cp /bin/busybox "$root/bin/busybox"
        # The applets git's shell scripts and GIT_SSH_COMMAND use.
        for applet in sh sed tr cat basename dirname mkdir rm ls grep printf expr uname wc head env; do
            ln -s busybox "$root/bin/$applet"
        done
    fi
    build_image "$prefix$d:$tag" deploy/images/Dockerfile "$stage" --build-arg "DRIVER=$d"
done
