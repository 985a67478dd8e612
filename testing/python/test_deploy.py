"""deploy/argo, rendered by kustomize over stand-ins of Argo's objects, checked
offline: every object against the Kubernetes schemas, and the rules Argo
itself applies to plugin drivers (argo-server runs every registered image as a
sidecar on /tmp/artifact-plugins/<name>/socket, names are short DNS labels)."""
import copy
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = "1.33.0"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.fixture(scope="module")
def rendered():
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render deploy/argo (scripts/test.sh installs it)"
    out = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy/argo/test")], check=True, capture_output=True, text=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(objs, kind, name):
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def secret_env_name(name, key):
    """The SDK's FERRY_SECRET_<NAME>_<KEY> rule (driver-sdk/src/config.rs)."""
    norm = lambda s: re.sub(r"[^A-Z0-9]", "_", s.upper())
    return f"FERRY_SECRET_{norm(name)}_{norm(key)}"


def check_argo_rules(objs):
    """Raises AssertionError naming the first rule the manifests break."""
    config = find(objs, "ConfigMap", "workflow-controller-configmap")["data"]
    drivers = yaml.safe_load(config["artifactDrivers"])
    pod = find(objs, "Deployment", "argo-server")["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    server_mounts = {m["mountPath"]: m["name"] for m in containers["argo-server"].get("volumeMounts", [])}
    for d in drivers:
        name = d["name"]
        assert DNS_LABEL.match(name) and len("init-artifact-" + name) <= 63, f"driver name {name!r} is not a short DNS label"
        sidecar = containers.get(f"artifact-plugin-{name}")
        assert sidecar, f"argo-server has no sidecar for driver {name!r}"
        assert sidecar["image"] == d["image"], f"{name}: sidecar image {sidecar['image']} != registered {d['image']}"
        socket_dir = f"/tmp/artifact-plugins/{name}"
        assert sidecar["args"] == [f"{socket_dir}/socket"], f"{name}: sidecar args {sidecar['args']}"
        volume = server_mounts.get(socket_dir)
        assert volume, f"argo-server does not mount {socket_dir}"
        assert "emptyDir" in volumes[volume], f"{name}: {volume} is not an emptyDir"
        assert {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}.get(socket_dir) == volume, (
            f"{name}: the sidecar does not share {volume} at {socket_dir}"
        )
    return drivers


def test_every_object_matches_the_kubernetes_schema(rendered):
    assert {o["kind"] for o in rendered} >= {"ConfigMap", "Deployment", "Role", "RoleBinding"}
    for obj in rendered:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_argo_server_runs_every_registered_driver_on_its_socket(rendered):
    drivers = check_argo_rules(rendered)
    assert {d["name"] for d in drivers} == {"ferry-s3", "ferry-gcs", "ferry-oss", "ferry-git", "ferry-http"}


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda c: c.__setitem__("image", "ferry/driver-s3:other"), "sidecar image"),
        (lambda c: c.__setitem__("args", ["/tmp/socket"]), "sidecar args"),
        (lambda c: c.__setitem__("volumeMounts", []), "does not share"),
    ],
)
def test_a_broken_sidecar_is_caught(rendered, break_it, message):
    broken = copy.deepcopy(rendered)
    pod = find(broken, "Deployment", "argo-server")["spec"]["template"]["spec"]
    break_it(next(c for c in pod["containers"] if c["name"] == "artifact-plugin-ferry-s3"))
    with pytest.raises(AssertionError, match=message):
        check_argo_rules(broken)


def test_the_default_repository_uses_a_registered_driver_and_its_secrets_reach_it(rendered):
    repos = find(rendered, "ConfigMap", "artifact-repositories")
    default = repos["metadata"]["annotations"]["workflows.argoproj.io/default-artifact-repository"]
    plugin = yaml.safe_load(repos["data"][default])["plugin"]
    registered = {d["name"] for d in check_argo_rules(rendered)}
    assert plugin["name"] in registered
    configuration = yaml.safe_load(plugin["configuration"])
    needed = {
        secret_env_name(ref["name"], ref["key"])
        for field, ref in configuration.items()
        if field.endswith("Secret")
    }
    assert needed, "the default repository names no secret"
    executor = yaml.safe_load(find(rendered, "ConfigMap", "workflow-controller-configmap")["data"]["executor"])
    assert needed <= {e["name"] for e in executor["env"]}, "plugin containers would not get the repository's secrets"
    pod = find(rendered, "Deployment", "argo-server")["spec"]["template"]["spec"]
    sidecar = next(c for c in pod["containers"] if c["name"] == f"artifact-plugin-{plugin['name']}")
    assert needed <= {e["name"] for e in sidecar["env"]}, "argo-server's sidecar would not get the repository's secrets"


def test_example_workflows_name_only_registered_drivers(rendered):
    registered = {d["name"] for d in check_argo_rules(rendered)}
    examples = sorted((REPO / "deploy/argo/examples").glob("*.yaml"))
    assert examples, "deploy/argo/examples holds no workflow"
    for path in examples:
        doc = yaml.safe_load(path.read_text())
        assert doc["kind"] == "Workflow", path
        used = set(re.findall(r"^\s*name:\s*(ferry-[a-z0-9-]+)\s*$", path.read_text(), re.M))
        assert used, f"{path.name} names no Ferry driver"
        assert used <= registered, f"{path.name} uses unregistered drivers {used - registered}"
