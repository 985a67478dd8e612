"""Fixtures for talking to Ferry drivers from Python, using only proto/artifact.proto.

The stubs are generated at session start with grpcio-tools, so the test proves
that a client written from the proto file alone interoperates with the driver.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    out = tmp_path_factory.mktemp("stubs")
    proto_dir = REPO / "proto"
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(proto_dir / "artifact.proto"),
        ]
    )
    assert rc == 0, "protoc failed on proto/artifact.proto"
    sys.path.insert(0, str(out))
    import artifact_pb2
    import artifact_pb2_grpc

    return artifact_pb2, artifact_pb2_grpc


def driver_binary():
    path = os.environ.get("FERRY_DRIVER_FS", str(REPO / "target" / "debug" / "ferry-driver-fs"))
    if not Path(path).exists():
        pytest.fail(f"{path} does not exist: run `cargo build -p ferry-driver-fs` first")
    return path


def start_fs_driver(socket, env=None):
    """ferry-driver-fs serving `socket`, once the socket exists (`env`: the whole environment, if given)."""
    proc = subprocess.Popen([driver_binary(), str(socket)], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not socket.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "driver socket did not appear"
        time.sleep(0.01)
    return proc


def fs_artifacts(artifact_pb2, root):
    """A maker of Artifacts for keys on the fs driver with storage `root` (or another configuration)."""

    def artifact(key, configuration=None):
        return artifact_pb2.Artifact(
            name=key.rsplit("/", 1)[-1],
            plugin=artifact_pb2.PluginArtifact(name="fs", configuration=configuration or f"root: {root}", key=key),
        )

    return artifact


def fs_client(socket, pb, root):
    """A grpcio channel to the fs driver at `socket` with its default options,
    a stub on it, and a maker of Artifacts for storage `root`."""
    artifact_pb2, artifact_pb2_grpc = pb
    channel = grpc.insecure_channel(f"unix://{socket}")
    return channel, artifact_pb2_grpc.ArtifactServiceStub(channel), fs_artifacts(artifact_pb2, root)


@pytest.fixture
def driver(tmp_path, pb):
    """A running ferry-driver-fs and a stub connected to it over its unix socket."""
    artifact_pb2, _ = pb
    socket = tmp_path / "artifact-plugins" / "fs" / "socket"
    proc = start_fs_driver(socket)
    # grpcio's default channel, as a script pointed at a socket opens it: it
    # sends the socket's path as :authority, which unpatched h2 refuses
    # (vendor/h2/FERRY-PATCH.md). grpc-go, and so Argo, sends "localhost".
    channel, stub, artifact = fs_client(socket, pb, tmp_path / "storage")
    grpc.channel_ready_future(channel).result(timeout=10)
    yield stub, artifact, artifact_pb2, tmp_path
    channel.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0, "driver must exit 0 on SIGTERM"
