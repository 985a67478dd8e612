"""A driver's Prometheus endpoint as a scraper reads it: ferry-driver-fs with
FERRY_METRICS_ADDR, every kind of call made over its socket by a client
written from the proto alone, then /metrics fetched over HTTP and parsed by
the Prometheus client library's strict OpenMetrics parser."""
import signal
import socket as sockets
import subprocess
import urllib.request

import grpc
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import driver_binary, fs_client, start_fs_driver

PAYLOAD = bytes(range(256)) * 4096 + b"tail!!!"  # 1 MiB + 7


def free_port():
    with sockets.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("application/openmetrics-text"), r.headers["Content-Type"]
        text = r.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {}
    for f in families.values():
        for s in f.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def test_every_call_is_counted_with_its_bytes_outcome_and_duration(tmp_path, pb):
    artifact_pb2, _ = pb
    port = free_port()
    sock = tmp_path / "artifact-plugins" / "fs" / "socket"
    proc = start_fs_driver(sock, env={"FERRY_METRICS_ADDR": f"127.0.0.1:{port}", "PATH": "/usr/bin:/bin"})
    try:
        channel, stub, art = fs_client(sock, pb, tmp_path / "storage")

        src = tmp_path / "file.bin"
        src.write_bytes(PAYLOAD)
        tree = tmp_path / "tree"
        (tree / "sub").mkdir(parents=True)
        (tree / "a").write_bytes(b"a" * 10)
        (tree / "b").write_bytes(b"b" * 20)
        (tree / "sub" / "c").write_bytes(b"c" * 30)

        assert stub.Save(artifact_pb2.SaveArtifactRequest(path=str(src), output_artifact=art("f"))).success
        assert stub.Save(artifact_pb2.SaveArtifactRequest(path=str(tree), output_artifact=art("t"))).success
        r = stub.Load(artifact_pb2.LoadArtifactRequest(input_artifact=art("f"), path=str(tmp_path / "back.bin")))
        assert r.success, r.error
        streamed = b"".join(m.data for m in stub.OpenStream(artifact_pb2.OpenStreamRequest(artifact=art("f"))))
        assert streamed == PAYLOAD
        frames = [artifact_pb2.SaveStreamArtifactRequest(output_artifact=art("s"))] + [
            artifact_pb2.SaveStreamArtifactRequest(chunk=b"x" * 1000) for _ in range(3)
        ]
        assert stub.SaveStream(iter(frames)).success
        try:
            stub.Load(artifact_pb2.LoadArtifactRequest(input_artifact=art("missing"), path=str(tmp_path / "m")))
            raise AssertionError("Load of a missing key succeeded")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND
        bad = stub.Save(artifact_pb2.SaveArtifactRequest(path=str(src), output_artifact=art("f", "rooot: /x")))
        assert not bad.success
        assert stub.IsDirectory(artifact_pb2.IsDirectoryRequest(artifact=art("t"))).is_directory
        channel.close()

        families, samples = scrape(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0

    def value(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))))

    # Bytes and objects by RPC and direction: exactly what moved.
    assert value("ferry_driver_bytes_total", rpc="save", direction="upload") == len(PAYLOAD) + 60
    assert value("ferry_driver_objects_total", rpc="save", direction="upload") == 4
    assert value("ferry_driver_bytes_total", rpc="load", direction="download") == len(PAYLOAD)
    assert value("ferry_driver_bytes_total", rpc="open_stream", direction="download") == len(PAYLOAD)
    assert value("ferry_driver_objects_total", rpc="open_stream", direction="download") == 1
    assert value("ferry_driver_bytes_total", rpc="save_stream", direction="upload") == 3000
    # Outcomes, and errors by kind.
    assert value("ferry_driver_requests_total", rpc="save", outcome="ok") == 2
    assert value("ferry_driver_requests_total", rpc="save", outcome="error") == 1
    assert value("ferry_driver_errors_total", rpc="save", kind="invalid-config") == 1
    assert value("ferry_driver_requests_total", rpc="load", outcome="not_found") == 1
    assert value("ferry_driver_requests_total", rpc="open_stream", outcome="ok") == 1
    assert value("ferry_driver_requests_total", rpc="is_directory", outcome="ok") == 1
    # Durations: one observation per call, every one of them under a minute.
    assert families["ferry_driver_request_duration_seconds"].type == "histogram"
    assert value("ferry_driver_request_duration_seconds_count", rpc="save") == 3
    assert 0 < value("ferry_driver_request_duration_seconds_sum", rpc="save") < 60
    # Nothing in flight once every call has answered.
    assert all(
        v == 0 for (name, _), v in samples.items() if name == "ferry_driver_requests_in_flight"
    ), {k: v for k, v in samples.items() if k[0] == "ferry_driver_requests_in_flight"}
    assert families["ferry_driver_requests"].documentation


def test_no_endpoint_without_the_variable(tmp_path):
    sock = tmp_path / "artifact-plugins" / "fs" / "socket"
    proc = start_fs_driver(sock, env={"PATH": "/usr/bin:/bin"})
    try:
        listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
        assert f"pid={proc.pid}," not in listening, listening
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_a_bad_address_is_a_clear_start_up_error(tmp_path):
    sock = tmp_path / "socket"
    run = subprocess.run(
        [driver_binary(), str(sock)],
        env={"FERRY_METRICS_ADDR": "not-an-address", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0
    assert "FERRY_METRICS_ADDR" in run.stderr and "not-an-address" in run.stderr, run.stderr
