"""A Python grpcio client, written from proto/artifact.proto alone, against ferry-driver-fs."""
import grpc
import pytest


def content(n, seed=0):
    return bytes((i * 31 + seed) % 251 for i in range(n))


def test_save_load_stream_list_delete(driver):
    stub, artifact, pb, tmp = driver
    data = content(3 * 1024 * 1024 + 7)
    src = tmp / "in.bin"
    src.write_bytes(data)

    r = stub.Save(pb.SaveArtifactRequest(path=str(src), output_artifact=artifact("wf/pod/in.bin")))
    assert r.success, r.error

    dst = tmp / "out.bin.tmp"
    r = stub.Load(pb.LoadArtifactRequest(input_artifact=artifact("wf/pod/in.bin"), path=str(dst)))
    assert r.success, r.error
    assert dst.read_bytes() == data

    frames = list(stub.OpenStream(pb.OpenStreamRequest(artifact=artifact("wf/pod/in.bin"))))
    assert frames[-1].is_end and frames[-1].data == b""
    assert all(len(f.data) <= 4 * 1024 * 1024 for f in frames)
    assert b"".join(f.data for f in frames) == data

    r = stub.ListObjects(pb.ListObjectsRequest(artifact=artifact("wf")))
    assert r.error == ""
    assert list(r.objects) == ["wf/pod/in.bin"]

    r = stub.IsDirectory(pb.IsDirectoryRequest(artifact=artifact("wf/pod")))
    assert r.is_directory and r.error == ""

    for _ in range(2):
        r = stub.Delete(pb.DeleteArtifactRequest(artifact=artifact("wf/pod/in.bin")))
        assert r.success, r.error
    with pytest.raises(grpc.RpcError) as e:
        list(stub.OpenStream(pb.OpenStreamRequest(artifact=artifact("wf/pod/in.bin"))))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_directory_save_and_load(driver):
    stub, artifact, pb, tmp = driver
    src = tmp / "tree"
    (src / "sub" / "ünï").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "sub" / "ünï" / "b.bin").write_bytes(content(5000))
    r = stub.Save(pb.SaveArtifactRequest(path=str(src), output_artifact=artifact("t/out")))
    assert r.success, r.error
    objects = stub.ListObjects(pb.ListObjectsRequest(artifact=artifact("t/out"))).objects
    assert sorted(objects) == ["t/out/a.txt", "t/out/sub/ünï/b.bin"]
    dst = tmp / "tree.tmp"
    r = stub.Load(pb.LoadArtifactRequest(input_artifact=artifact("t/out"), path=str(dst)))
    assert r.success, r.error
    assert (dst / "sub" / "ünï" / "b.bin").read_bytes() == content(5000)


def test_save_stream_as_argo_server_sends_it(driver):
    stub, artifact, pb, tmp = driver
    assert stub.GetCapabilities(pb.GetCapabilitiesRequest()).supports_save_stream
    data = content(5 * 1024 * 1024 + 1, seed=3)
    chunk = 2 * 1024 * 1024

    def frames():
        yield pb.SaveStreamArtifactRequest(output_artifact=artifact("uploads/ns/u1/f.csv"))
        for i in range(0, len(data), chunk):
            yield pb.SaveStreamArtifactRequest(chunk=data[i : i + chunk])

    r = stub.SaveStream(frames())
    assert r.success, r.error
    got = b"".join(f.data for f in stub.OpenStream(pb.OpenStreamRequest(artifact=artifact("uploads/ns/u1/f.csv"))))
    assert got == data


def test_missing_key_and_bad_configuration(driver):
    stub, artifact, pb, tmp = driver
    dst = tmp / "missing.tmp"
    with pytest.raises(grpc.RpcError) as e:
        stub.Load(pb.LoadArtifactRequest(input_artifact=artifact("no/such/key"), path=str(dst)))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert not dst.exists()

    src = tmp / "f"
    src.write_bytes(b"x")
    r = stub.Save(pb.SaveArtifactRequest(path=str(src), output_artifact=artifact("k", "root: /tmp\nrooot: x")))
    assert not r.success
    assert "rooot" in r.error
    # Still serving after the bad request.
    r = stub.Save(pb.SaveArtifactRequest(path=str(src), output_artifact=artifact("k")))
    assert r.success, r.error
