#!/usr/bin/env bash
# Builds the Go example driver: examples/go-driver/build.sh [OUT]
#
# Offline, in GOPATH mode against Debian's Go packages (golang-google-grpc-dev,
# golang-google-protobuf-dev, golang-github-golang-protobuf-1-5-dev,
# golang-gopkg-yaml.v3-dev), with stubs generated from proto/artifact.proto by
# protoc, protoc-gen-go and protoc-gen-go-grpc; nothing generated is committed. The binary is static
# (CGO_ENABLED=0), so it also runs in a FROM-scratch image.
# OUT defaults to target/examples/go-driver/ferry-go-driver.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$repo/target/examples/go-driver"
out="${1:-$work/ferry-go-driver}"
gopath="$work/gopath"
pkg="$gopath/src/ferrygodriver"

rm -rf "$pkg"
mkdir -p "$pkg/artifact" "$(dirname "$out")"
cp "$here"/*.go "$pkg/"
mapping="Martifact.proto=ferrygodriver/artifact"
protoc -I"$repo/proto" \
    --go_out="$pkg/artifact" --go_opt=paths=source_relative --go_opt="$mapping" \
    --go-grpc_out="$pkg/artifact" --go-grpc_opt=paths=source_relative --go-grpc_opt="$mapping" \
    artifact.proto

export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS= GOCACHE="$gopath/cache" CGO_ENABLED=0
go build -trimpath -ldflags="-s -w" -o "$out" ferrygodriver
echo "built $out"
