"""Three outside gRPC clients with their default options against ferry-driver-fs:
Python's grpcio (default channel), grpcurl (no -authority, no proto file) and
an Argo-style grpc-go client. testing/clients/check.py runs the same against
every reference driver's server in scripts/test.sh; this is its offline part.
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "testing" / "clients"))

import check  # noqa: E402


def test_grpcio_grpcurl_and_grpc_go_pass_every_check_with_their_defaults(capsys):
    failed = check.check(REPO / "conformance" / "profiles" / "fs.yaml", ["grpcio", "grpcurl", "go"])
    out = capsys.readouterr().out
    assert failed == 0, out
    lines = out.splitlines()
    for client in ("grpcio", "grpcurl", "grpc-go"):
        assert sum(line.startswith(f"ok - {client}: ") for line in lines) == 7, out
