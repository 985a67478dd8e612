"""`ferry render --runtime kubernetes`, checked offline: every Pod it writes for
the example workflows (and the deploy examples, with deploy/argo's driver
registry) is valid against the Kubernetes schemas, and has Argo's plugin
layout (each driver socket shared by wait and its sidecar through an emptyDir)."""
import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = "1.33.0"
FERRY = os.environ.get("FERRY_BIN", str(REPO / "target" / "debug" / "ferry"))
EXAMPLES = sorted(p for p in (REPO / "examples" / "workflows").glob("*.yaml") if p.name != "artifact-repositories.yaml")


def render(tmp_path, *args):
    out = subprocess.run(
        [FERRY, "--home", str(tmp_path), "render", "--runtime", "kubernetes", *map(str, args)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def check_layout(pod):
    spec = pod["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    containers = {c["name"]: c for c in spec["containers"]}
    wait_mounts = {m["mountPath"]: m["name"] for m in containers["wait"]["volumeMounts"]}
    sidecars = [n for n in containers if n.startswith("artifact-plugin-")]
    assert containers["wait"]["env"][-1] == {"name": "ARGO_ARTIFACT_PLUGIN_NAMES", "value": ",".join(sidecars)}
    for name in sidecars:
        driver = name.removeprefix("artifact-plugin-")
        socket_dir = f"/tmp/artifact-plugins/{driver}"
        assert containers[name]["args"][-1] == f"{socket_dir}/socket"
        assert wait_mounts.get(socket_dir) == name and "emptyDir" in volumes[name], f"{name}: socket not shared"
        assert containers[name]["securityContext"]["runAsNonRoot"] is True
    for init in spec["initContainers"][1:]:
        assert init["name"].startswith("init-artifact-")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_renders_to_valid_pods(tmp_path, example):
    # The examples' repository ConfigMap goes with them, as for `ferry run`.
    pods = render(tmp_path, example, REPO / "examples" / "workflows" / "artifact-repositories.yaml")
    assert pods, f"{example.name}: no pods"
    for pod in pods:
        kubernetes_validate.validate(pod, KUBERNETES, strict=True)
        check_layout(pod)


def test_the_deploy_examples_render_with_deploy_argos_registry(tmp_path):
    registry = REPO / "deploy" / "argo" / "component" / "workflow-controller-configmap.yaml"
    repositories = REPO / "deploy" / "argo" / "component" / "artifact-repositories.yaml"
    for example in sorted((REPO / "deploy" / "argo" / "examples").glob("*.yaml")):
        pods = render(tmp_path, "--drivers", registry, example, repositories)
        images = {c["image"] for p in pods for c in p["spec"]["containers"] + p["spec"]["initContainers"]}
        assert any(i.startswith("ferry/driver-") for i in images), f"{example.name}: {images}"
        for pod in pods:
            kubernetes_validate.validate(pod, KUBERNETES, strict=True)
            check_layout(pod)


def test_a_bad_field_is_named(tmp_path):
    wf = tmp_path / "bad.yaml"
    wf.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: bad}\nspec:\n  entrypoint: t\n"
        "  templates:\n  - name: t\n    container: {image: x, command: ['true'], resources: {limits: 3}}\n"
    )
    out = subprocess.run([FERRY, "--home", str(tmp_path), "render", "--runtime", "kubernetes", str(wf)], capture_output=True, text=True)
    assert out.returncode != 0 and "template t" in out.stderr and "container.resources" in out.stderr, out.stderr
