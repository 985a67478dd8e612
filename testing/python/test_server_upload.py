"""`ferry server`'s upload through a driver without SaveStream: one written to
Argo v4.0's six RPCs (no GetCapabilities, no SaveStream), as the only public
third-party plugin is. The server must fall back to a temporary file and
Save, as argo-server does, and leave no temporary file behind.

The driver is the Python example driver with those two RPCs taken away, so
they answer UNIMPLEMENTED as grpcio's generated base class does.
"""
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FERRY = os.environ.get("FERRY_BIN", str(REPO / "target" / "debug" / "ferry"))

SIX_RPCS = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("driver", {driver!r})
driver = importlib.util.module_from_spec(spec)
spec.loader.exec_module(driver)

class SixRpcs(driver.Driver):
    # grpcio's base class answers UNIMPLEMENTED.
    SaveStream = driver.pb_grpc.ArtifactServiceServicer.SaveStream
    GetCapabilities = driver.pb_grpc.ArtifactServiceServicer.GetCapabilities

driver.Driver = SixRpcs
driver.main()
"""


def multipart(field, filename, data):
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return boundary, head + data + f"\r\n--{boundary}--\r\n".encode()


def test_an_upload_to_a_driver_without_savestream_goes_through_a_temporary_file(tmp_path):
    if not Path(FERRY).exists():
        pytest.fail(f"{FERRY} does not exist: run `cargo build --workspace` first")
    script = tmp_path / "six_rpcs.py"
    script.write_text(SIX_RPCS.format(driver=str(REPO / "examples" / "python-driver" / "driver.py")))
    drivers = tmp_path / "drivers.yaml"
    drivers.write_text(
        "artifactDrivers:\n- name: six-rpcs\n  image: example/six-rpcs:1\n"
        f"  command: [{json.dumps(sys.executable)}, {json.dumps(str(script))}]\n"
    )
    store = tmp_path / "store"
    store.mkdir()
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "wft.yaml").write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: ingest}\nspec:\n"
        "  entrypoint: main\n  arguments:\n    artifacts:\n    - name: data\n"
        f"      plugin: {{name: six-rpcs, configuration: 'root: {store}', key: unused}}\n"
        "  templates:\n  - name: main\n    container: {image: x, command: ['true']}\n"
    )
    proc = subprocess.Popen(
        [FERRY, "--home", str(tmp_path / "home"), "server", "--listen", "127.0.0.1:0",
         "--templates", str(templates), "--drivers", str(drivers)],
        stdout=subprocess.PIPE,
    )
    try:
        base = proc.stdout.readline().decode().split()[-1]
        data = os.urandom(3 << 20)
        boundary, body = multipart("file", "sample.bin", data)
        req = urllib.request.Request(
            f"{base}/upload-artifacts/default/ingest/data", data=body, method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        answer = json.load(urllib.request.urlopen(req, timeout=120))
        assert answer["name"] == "data"
        key = answer["key"]
        assert key.startswith("uploads/default/") and key.endswith("/sample.bin"), key
        assert (store / key).read_bytes() == data
        # The temporary file (in the server's scratch directory) is gone once the upload is answered.
        scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"ferry-server-{proc.pid}"
        assert scratch.is_dir(), "the upload went through a temporary file"
        assert [p for p in scratch.rglob("*")] == []
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
