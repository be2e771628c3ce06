"""Which cluster, namespace and image: kubeconfig/context/namespace resolved as kubectl does, the in-cluster
configuration, and the image a cluster run uses (the recorded push, or a clear error saying to push)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlrepro.cli.main import app
from mlrepro.runners.base import KubeTarget
from mlrepro.runners.kubernetes.config import connect
from mlrepro.runners.kubernetes.errors import ImageNotPushedError, KubeConfigError

cli = CliRunner()


def kubeconfig(path: Path, contexts: dict[str, str | None], current: str | None, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", **({"current-context": current} if current else {}),
        "clusters": [{"name": f"c-{name}", "cluster": {"server": f"{server}/{name}"}} for name in contexts],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": name, "context": {"cluster": f"c-{name}", "user": "u",
                                                **({"namespace": ns} if ns else {})}} for name, ns in contexts.items()],
    }))
    return path


@pytest.fixture()
def no_cluster_env(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)


def test_kubeconfig_files_merge_and_namespaces_resolve_as_kubectl_does(tmp_path, monkeypatch, no_cluster_env):
    a = kubeconfig(tmp_path / "a", {"dev": "team-a", "prod": None}, "dev", "https://a.example")
    b = kubeconfig(tmp_path / "b", {"lab": "lab-ns"}, "lab", "https://b.example")
    monkeypatch.setenv("KUBECONFIG", f"{a}:{b}")
    c = connect(KubeTarget())
    assert (c.context, c.namespace, c.host) == ("dev", "team-a", "https://a.example/dev")   # first file wins
    c = connect(KubeTarget(context="lab"))
    assert (c.context, c.namespace, c.host) == ("lab", "lab-ns", "https://b.example/lab")   # from the second file
    c = connect(KubeTarget(context="prod"))
    assert c.namespace == "default"                                                        # no namespace set
    c = connect(KubeTarget(context="lab", namespace="override"))
    assert c.namespace == "override"
    c = connect(KubeTarget(kubeconfig=b))                                                  # --kubeconfig alone
    assert c.context == "lab"
    with pytest.raises(KubeConfigError, match=r"--context nope is not a context of .* \(contexts: dev, lab, prod\)"):
        connect(KubeTarget(context="nope"))


def test_no_configuration_is_one_clear_line(tmp_path, no_cluster_env):
    out = cli.invoke(app, ["launch", "-p", "x86-cpu", "--target", "k8s", "--image", "reg.test/x@sha256:" + "0" * 64])
    assert out.exit_code == 2
    assert out.stderr.strip() == ("mlrepro: error: no Kubernetes configuration: ~/.kube/config not found and not "
                                  "running in a cluster (set KUBECONFIG or pass --kubeconfig)")


def test_in_cluster_configuration_and_its_namespace(tmp_path, monkeypatch, no_cluster_env):
    from kubernetes.config import incluster_config

    from mlrepro.runners.kubernetes import config as cfg

    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("bench-ns\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setattr(cfg, "IN_CLUSTER_NAMESPACE_FILE", tmp_path / "namespace")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    c = connect(KubeTarget())
    assert (c.context, c.namespace, c.host) == ("", "bench-ns", "https://10.0.0.1:443")
    assert connect(KubeTarget(namespace="other")).namespace == "other"


def test_the_image_is_the_recorded_push_of_this_content(tmp_path, monkeypatch):
    from mlrepro.image.images import record_push
    from mlrepro.image.tags import image_name
    from mlrepro.profiles import resolve_profile
    from mlrepro.runners.kubernetes.images import cluster_image

    monkeypatch.setenv("MLREPRO_STATE_DIR", str(tmp_path / "state"))
    resolved = resolve_profile("x86-cpu")
    name = image_name(resolved)
    with pytest.raises(ImageNotPushedError) as err:
        cluster_image(resolved, None, lambda _m: None)
    assert str(err.value) == (
        f"no pushed image of x86-cpu ({name.ref}): a cluster cannot pull from this machine's engine; push it with "
        "`mlrepro build -p x86-cpu --push --registry REGISTRY`, or pass --registry REGISTRY (build + push) or "
        "--image REF") and err.value.exit_code == 2
    record_push("reg.test/mlrepro/bench:x86-cpu-old", "sha256:" + "1" * 64, content_hash="other", profile="x86-cpu")
    with pytest.raises(ImageNotPushedError, match="is of other content than"):
        cluster_image(resolved, None, lambda _m: None)
    record_push(f"reg.test/{name.ref}", "sha256:" + "2" * 64, content_hash=name.content_hash, profile="x86-cpu")
    record_push("reg.test/mlrepro/bench:x86-cpu-newer", "sha256:" + "3" * 64, content_hash="x", profile="x86-cpu")
    assert cluster_image(resolved, None, lambda _m: None) == "reg.test/mlrepro/bench@sha256:" + "2" * 64
    # run settings are not image inputs: the same push serves a launch with other LoadGen settings and overlays
    quick = resolve_profile("x86-cpu", ["quick"], ["benchmark.settings.min_duration_ms=60000"])
    assert quick.hash != resolved.hash
    assert cluster_image(quick, None, lambda _m: None) == "reg.test/mlrepro/bench@sha256:" + "2" * 64
