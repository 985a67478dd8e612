"""A driver's traces as an OpenTelemetry collector receives them: ferry-driver-fs
with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a real OTLP receiver (rotel, a
collector shipped on PyPI, started here), calls made by grpcio carrying a W3C
`traceparent` as Argo's otelgrpc client sends it, then SIGTERM, and the spans
the receiver got read back from what its trace processor wrote down."""
import json
import os
import signal
import socket as sockets
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import rotel

from conftest import fs_client, start_fs_driver

ROTEL_AGENT = Path(rotel.__file__).parent / "rotel-agent"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = (("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"), ("tracestate", "argo=1"))

# Runs inside rotel's embedded Python for every batch the receiver takes in:
# one JSON line per span, with its resource's attributes.
PROCESSOR = '''
import json

OUT = {out!r}


def _hex(b):
    return bytes(b).hex() if b is not None else ""


def _value(v):
    v = getattr(v, "value", v)
    return v if v is None or isinstance(v, (str, int, float, bool)) else str(v)


def _attrs(kvs):
    return {{kv.key: _value(kv.value) for kv in (kvs or [])}}


def process_spans(resource_spans):
    resource = _attrs(resource_spans.resource.attributes) if resource_spans.resource else {{}}
    with open(OUT, "a") as f:
        for scope in resource_spans.scope_spans:
            for s in scope.spans:
                f.write(json.dumps({{
                    "name": s.name,
                    "trace_id": _hex(s.trace_id),
                    "span_id": _hex(s.span_id),
                    "parent_span_id": _hex(s.parent_span_id),
                    "kind": str(s.kind),
                    "status": str(s.status.code) if s.status else "",
                    "attributes": _attrs(s.attributes),
                    "events": [{{"name": e.name, "attributes": _attrs(e.attributes)}} for e in s.events],
                    "resource": resource,
                }}) + "\\n")
'''


def free_port():
    with sockets.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    with sockets.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def receiver(tmp_path):
    """A running rotel agent: its OTLP/HTTP endpoint and the file its processor writes spans to."""
    out = tmp_path / "spans.jsonl"
    processor = tmp_path / "processor.py"
    processor.write_text(PROCESSOR.format(out=str(out)))
    grpc_port, http_port = free_port(), free_port()
    log = open(tmp_path / "rotel.log", "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ROTEL_"))}
    agent = subprocess.Popen(
        [
            str(ROTEL_AGENT), "start",
            "--exporter", "blackhole",
            "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
            "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
            "--otlp-with-trace-processor", str(processor),
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not listening(http_port):
            if agent.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"rotel did not start (exit {agent.poll()}):\n{(tmp_path / 'rotel.log').read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{http_port}", out, tmp_path / "rotel.log"
    finally:
        agent.terminate()
        try:
            agent.wait(timeout=10)
        except subprocess.TimeoutExpired:
            agent.kill()
        log.close()


def received(out, log, until, timeout=30):
    """The spans received so far, once `until(spans)` holds (the processor runs after the export returned)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        if until(spans):
            return spans
        if time.monotonic() > deadline:
            pytest.fail(f"spans received: {json.dumps(spans, indent=1)}\nrotel log:\n{log.read_text()}")
        time.sleep(0.1)


def test_each_call_is_a_span_in_the_callers_trace(tmp_path, pb, receiver):
    artifact_pb2, _ = pb
    endpoint, out, log = receiver
    sock = tmp_path / "artifact-plugins" / "fs" / "socket"
    proc = start_fs_driver(sock, env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "PATH": "/usr/bin:/bin"})
    try:
        root = tmp_path / "storage"
        channel, stub, art = fs_client(sock, pb, root)

        src = tmp_path / "file.bin"
        src.write_bytes(b"traced" * 1000)
        saved = stub.Save(artifact_pb2.SaveArtifactRequest(path=str(src), output_artifact=art("f")), metadata=TRACEPARENT)
        assert saved.success, saved.error
        loaded = stub.Load(
            artifact_pb2.LoadArtifactRequest(input_artifact=art("f"), path=str(tmp_path / "back")), metadata=TRACEPARENT
        )
        assert loaded.success, loaded.error
        streamed = stub.OpenStream(artifact_pb2.OpenStreamRequest(artifact=art("f")), metadata=TRACEPARENT)
        assert b"".join(m.data for m in streamed) == src.read_bytes()
        # A failure answered in-band and one answered with a status.
        bad = stub.Delete(artifact_pb2.DeleteArtifactRequest(artifact=art("f", "rooot: /x")), metadata=TRACEPARENT)
        assert not bad.success
        with pytest.raises(grpc.RpcError) as missing:
            stub.OpenStream(artifact_pb2.OpenStreamRequest(artifact=art("missing")), metadata=TRACEPARENT).next()
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        # No traceparent: a trace of its own.
        assert stub.IsDirectory(artifact_pb2.IsDirectoryRequest(artifact=art("f"))).is_directory is False
        channel.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stderr.read().decode()

    methods = {"Save", "Load", "OpenStream", "Delete", "IsDirectory"}
    spans = received(out, log, lambda spans: methods <= {s["attributes"].get("rpc.method") for s in spans})
    traced = [s for s in spans if s["trace_id"] == TRACE_ID]
    by_method = {}
    for s in traced:
        by_method.setdefault(s["attributes"]["rpc.method"], []).append(s)
    assert sorted(by_method) == ["Delete", "Load", "OpenStream", "Save"], spans
    for s in traced:
        assert s["parent_span_id"] == PARENT_ID, s
        assert s["span_id"] and s["span_id"] != PARENT_ID, s
        assert s["name"] == f"artifact.ArtifactService/{s['attributes']['rpc.method']}", s
        assert s["attributes"]["rpc.system"] == "grpc", s
        assert s["attributes"]["rpc.service"] == "artifact.ArtifactService", s
        assert s["kind"] == "2", s  # OTLP's SPAN_KIND_SERVER
        assert s["resource"]["service.name"] == "ferry-driver-fs", s
        # Nothing of the configuration, which may hold secrets (the events are
        # the driver's log lines, which name a bad field but show no value).
        assert str(root) not in json.dumps(s["attributes"]) and "rooot" not in json.dumps(s["attributes"]), s

    [save] = by_method["Save"]
    assert save["attributes"]["rpc.grpc.status_code"] == 0, save
    assert "error.type" not in save["attributes"], save
    # The driver's own log event landed in the call's span.
    assert any(e["attributes"].get("key") == "f" for e in save["events"]), save
    [delete] = by_method["Delete"]
    assert delete["attributes"]["error.type"] == "invalid-config", delete
    assert delete["status"] == "2", delete  # OTLP's STATUS_CODE_ERROR
    opened = sorted(by_method["OpenStream"], key=lambda s: s["attributes"]["rpc.grpc.status_code"])
    assert [s["attributes"]["rpc.grpc.status_code"] for s in opened] == [0, 5], opened

    [alone] = [s for s in spans if s["attributes"].get("rpc.method") == "IsDirectory"]
    assert alone["trace_id"] not in ("", "0" * 32, TRACE_ID), alone
    assert alone["parent_span_id"] == "", alone


def exporter_threads(pid):
    # The SDK's batch processor thread, "OpenTelemetry.Traces.BatchProcessor", as the kernel cuts its name.
    names = [(t / "comm").read_text().strip() for t in Path(f"/proc/{pid}/task").iterdir()]
    return [n for n in names if n.startswith("OpenTelemetry")]


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:9"])
def test_an_exporter_thread_only_with_the_variable(tmp_path, endpoint):
    sock = tmp_path / "artifact-plugins" / "fs" / "socket"
    env = {"PATH": "/usr/bin:/bin"}
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    proc = start_fs_driver(sock, env=env)
    try:
        assert bool(exporter_threads(proc.pid)) == bool(endpoint), exporter_threads(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        # A receiver that is not there holds the exit for at most the flush timeout.
        assert proc.wait(timeout=20) == 0
