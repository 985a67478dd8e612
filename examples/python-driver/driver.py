"""An Argo Workflows artifact driver in Python, written from proto/artifact.proto alone.

Usage: python driver.py SOCKET_PATH

It stores artifacts in a local directory given per request as the YAML
configuration `root: /some/dir`, and is the proof that Ferry's conformance
suite tests drivers in any language. Stubs are generated from the proto at
start-up with grpcio-tools, so nothing generated is committed.
"""
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import uuid
from concurrent import futures
from pathlib import Path

import grpc
import yaml
from grpc_tools import protoc

PROTO_DIR = Path(__file__).resolve().parents[2] / "proto"
FRAME = 1 << 20


def load_stubs():
    out = tempfile.mkdtemp(prefix="artifact-stubs-")
    rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}", "artifact.proto"])
    if rc != 0:
        sys.exit(f"protoc failed on {PROTO_DIR}/artifact.proto")
    sys.path.insert(0, out)
    import artifact_pb2
    import artifact_pb2_grpc

    return artifact_pb2, artifact_pb2_grpc


pb, pb_grpc = load_stubs()


class BadRequest(Exception):
    pass


class NotFound(Exception):
    pass


def parse_root(configuration):
    try:
        cfg = yaml.safe_load(configuration) if configuration.strip() else None
    except yaml.YAMLError as e:
        raise BadRequest(f"invalid configuration: {e}")
    if not isinstance(cfg, dict) or set(cfg) != {"root"} or not isinstance(cfg["root"], str):
        raise BadRequest("invalid configuration: expected exactly one field `root` (an absolute path)")
    root = Path(cfg["root"])
    if not root.is_absolute():
        raise BadRequest("invalid configuration: `root` must be an absolute path")
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def locate(artifact):
    """The (root, path) an artifact names; rejects keys that could escape the root."""
    if artifact is None or not artifact.HasField("plugin"):
        raise BadRequest("request has no artifact plugin block")
    root = parse_root(artifact.plugin.configuration)
    key = artifact.plugin.key.rstrip("/") if artifact.plugin.key != "/" else "/"
    if key == "":
        # It would name the whole root: refused for every call, as Argo never sends one.
        raise BadRequest("an empty key names no object")
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts) or any(ord(c) < 32 for c in key):
        raise BadRequest(f"invalid key {artifact.plugin.key!r}")
    path = root.joinpath(*parts)
    # Symlinks planted inside the root must not lead out of it.
    probe = path
    while not probe.exists() and probe != root:
        probe = probe.parent
    if not str(probe.resolve()).startswith(str(root)):
        raise BadRequest(f"key {key!r} resolves outside the root")
    return root, path


def staging(root):
    d = root / ".staging"
    d.mkdir(exist_ok=True)
    return d / uuid.uuid4().hex


def replace(src, dst):
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def copy_tree(src, dst):
    """Regular files of `src` into `dst`; symlinks leaving `src` are refused."""
    real_src = os.path.realpath(src)
    for dirpath, dirnames, filenames in os.walk(src):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                target = os.path.realpath(p)
                if not os.path.exists(target):
                    continue
                if not target.startswith(real_src + os.sep):
                    raise BadRequest(f"{p} is a symlink out of the artifact directory")
                if not os.path.isfile(target):
                    continue
            rel = os.path.relpath(p, src)
            out = os.path.join(dst, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            shutil.copyfile(p, out)


def stage_copy(src, tmp):
    """Copies the file or tree at `src` to `tmp`; False when `src` does not exist."""
    if src.is_file():
        shutil.copyfile(src, tmp)
    elif src.is_dir():
        copy_tree(src, tmp)
        os.makedirs(tmp, exist_ok=True)
    else:
        return False
    return True


def listing(root, path):
    keys = []
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            full = Path(dirpath) / name
            keys.append("/".join(full.relative_to(root).parts))
    return sorted(k for k in keys if not k.startswith(".staging/"))


class Driver(pb_grpc.ArtifactServiceServicer):
    def _fail(self, context, err):
        if isinstance(err, NotFound):
            context.abort(grpc.StatusCode.NOT_FOUND, str(err))
        return str(err) or type(err).__name__

    def Load(self, request, context):
        try:
            if not request.path:
                raise BadRequest("load request has an empty path")
            root, path = locate(request.input_artifact)
            dst = Path(request.path)
            tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex}.partial"
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not stage_copy(path, tmp):
                raise NotFound(f"no object or directory at key {request.input_artifact.plugin.key!r}")
            replace(tmp, dst)
            return pb.LoadArtifactResponse(success=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported in-band
            return pb.LoadArtifactResponse(success=False, error=self._fail(context, e))

    def Save(self, request, context):
        try:
            if not request.path:
                raise BadRequest("save request has an empty path")
            root, path = locate(request.output_artifact)
            src = Path(request.path)
            tmp = staging(root)
            if not stage_copy(src, tmp):
                raise BadRequest(f"local path {src} does not exist")
            replace(tmp, path)
            return pb.SaveArtifactResponse(success=True)
        except Exception as e:  # noqa: BLE001
            return pb.SaveArtifactResponse(success=False, error=self._fail(context, e))

    def Delete(self, request, context):
        try:
            root, path = locate(request.artifact)
            # Argo's rule: a key ending in "/" is a directory (everything under
            # it), any other key exactly one object, never what lies under key/.
            if request.artifact.plugin.key.endswith("/"):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
            elif path.is_symlink() or path.is_file():
                path.unlink()
            return pb.DeleteArtifactResponse(success=True)
        except Exception as e:  # noqa: BLE001
            return pb.DeleteArtifactResponse(success=False, error=self._fail(context, e))

    def ListObjects(self, request, context):
        try:
            root, path = locate(request.artifact)
            if path.is_dir():
                return pb.ListObjectsResponse(objects=listing(root, path))
            if path.is_file():
                return pb.ListObjectsResponse(objects=[])
            raise NotFound(f"no object or directory at key {request.artifact.plugin.key!r}")
        except Exception as e:  # noqa: BLE001
            return pb.ListObjectsResponse(error=self._fail(context, e))

    def IsDirectory(self, request, context):
        try:
            root, path = locate(request.artifact)
            return pb.IsDirectoryResponse(is_directory=path.is_dir() and bool(listing(root, path)))
        except Exception as e:  # noqa: BLE001
            return pb.IsDirectoryResponse(error=self._fail(context, e))

    def OpenStream(self, request, context):
        try:
            root, path = locate(request.artifact)
            if not path.is_file():
                raise NotFound(f"no object at key {request.artifact.plugin.key!r}")
            f = open(path, "rb")
        except Exception as e:  # noqa: BLE001
            msg = self._fail(context, e)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, msg)
        with f:
            while True:
                data = f.read(FRAME)
                if not data:
                    break
                yield pb.OpenStreamResponse(data=data)
        yield pb.OpenStreamResponse(is_end=True)

    def SaveStream(self, request_iterator, context):
        tmp = None
        try:
            first = next(request_iterator, None)
            if first is None or not first.HasField("output_artifact"):
                raise BadRequest("the first SaveStream message must carry output_artifact")
            root, path = locate(first.output_artifact)
            tmp = staging(root)
            with open(tmp, "wb") as out:
                out.write(first.chunk)
                for msg in request_iterator:
                    if msg.HasField("output_artifact"):
                        raise BadRequest("output_artifact may only come in the first message")
                    out.write(msg.chunk)
            if not context.is_active():
                raise BadRequest("the client cancelled the upload")
            replace(tmp, path)
            tmp = None
            return pb.SaveArtifactResponse(success=True)
        except Exception as e:  # noqa: BLE001
            return pb.SaveArtifactResponse(success=False, error=self._fail(context, e))
        finally:
            if tmp is not None and tmp.exists():
                tmp.unlink()

    def GetCapabilities(self, request, context):
        return pb.GetCapabilitiesResponse(supports_save_stream=True)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: driver.py SOCKET_PATH")
    socket = sys.argv[1].removeprefix("unix://")
    os.makedirs(os.path.dirname(socket) or ".", exist_ok=True)
    if os.path.exists(socket) and stat.S_ISSOCK(os.stat(socket).st_mode):
        os.unlink(socket)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    pb_grpc.add_ArtifactServiceServicer_to_server(Driver(), server)
    server.add_insecure_port(f"unix:{socket}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    stop.wait()
    server.stop(grace=5).wait()
    if os.path.exists(socket):
        os.unlink(socket)
    sys.exit(0)


if __name__ == "__main__":
    main()
