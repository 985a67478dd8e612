#!/usr/bin/env bash
# Prints a DOCKER_HOST for testcontainers: the engine's own socket when it
# speaks the API version bollard asks for, else a proxy (nginx.conf beside this
# file) that pins the engine's version. The proxy runs until its directory's
# nginx.pid is killed; scripts/test.sh does that on exit.
#   export DOCKER_HOST=$(testing/images/docker-api/start.sh DIR)
set -euo pipefail
dir=${1:?usage: start.sh WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
wanted=1.53
engine=$(docker version --format '{{.Server.APIVersion}}')
if [ "$(printf '%s\n%s\n' "$engine" "$wanted" | sort -V | head -n1)" = "$wanted" ]; then
    echo "unix:///var/run/docker.sock"
    exit 0
fi
command -v nginx >/dev/null || { echo "start.sh: the Docker engine speaks API $engine, older than $wanted; the version proxy needs nginx (apt-get install nginx-light)" >&2; exit 2; }
mkdir -p "$dir"
sed -e "s#__DIR__#$dir#g" -e "s#__API__#$engine#g" "$here/nginx.conf" > "$dir/nginx.conf"
rm -f "$dir/docker.sock"
nginx -c "$dir/nginx.conf" -e "$dir/error.log" > "$dir/nginx.out" 2>&1 &
for _ in $(seq 1 100); do [ -S "$dir/docker.sock" ] && break; sleep 0.05; done
[ -S "$dir/docker.sock" ] || { echo "start.sh: the Docker API proxy did not start:" >&2; cat "$dir/error.log" "$dir/nginx.out" >&2; exit 1; }
echo "unix://$dir/docker.sock"
