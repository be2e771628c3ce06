"""Fixtures of the cluster-path tests: a stateful Kubernetes API stand-in over real HTTPS (standin.py; a CA made
once per session, standin_tls.py, in the kubeconfig), the test as Job controller, scheduler and kubelet (kubelet.py,
nodes.py), a kubeconfig pointing at it, and after each test the check that every object the runner sent
validates with kubernetes-validate for Kubernetes 1.31 to 1.35.

Tests here are marked ``k8s``. When the stand-in cannot start (kmock missing, no loopback port) they skip --
unless ``MLREPRO_REQUIRE_K8S=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

VALIDATE_VERSIONS = ("1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0")
DRA_SINCE = (1, 34)
PYTHON_CLIENT_AGENT = "OpenAPI-Generator/"    # the official kubernetes client's User-Agent: mlrepro's requests
SENT_KINDS = {"ConfigMap", "PersistentVolumeClaim", "Job", "Pod", "ResourceClaimTemplate", "Deployment", "Service"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.k8s)


def _unavailable(reason: str) -> None:
    if os.environ.get("MLREPRO_REQUIRE_K8S") == "1":
        pytest.fail(f"{reason} (MLREPRO_REQUIRE_K8S=1)", pytrace=False)
    pytest.skip(reason)


@dataclass
class Kube:
    """A running stand-in with its fake kubelet, and where the test's kubeconfig and state live."""

    server: Any            # standin.StandInServer
    kubelet: Any           # kubelet.FakeKubelet
    kubeconfig: Path
    state_dir: Path
    namespace: str
    claims: Path

    @property
    def standin(self) -> Any:
        return self.server.standin

    def scenario(self, default: Any = None, **by_run: Any) -> None:
        """Choose the scenario of each new Job: a key (``arm64_cpu_singlestream_perf``) matches the run ids that
        contain it (``_`` as ``-``); anything else gets ``default`` (the real harness when None)."""
        from kubelet import harness_job

        def pick(job: dict[str, Any]) -> Any:
            run_id = job["metadata"]["name"]
            for key, scenario in by_run.items():
                if key.replace("_", "-") in run_id:
                    return scenario
            return default or harness_job

        self.kubelet.scenario_for = pick

    def objects(self, plural: str) -> list[dict[str, Any]]:
        return self.server.call(lambda: [o for (g, p, ns, n), o in self.standin.state.objects.items()
                                         if p == plural and ns == self.namespace])

    def requests(self) -> list[Any]:
        return self.server.call(lambda: list(self.standin.requests_log))

    def close_watches(self) -> int:
        return self.server.call(self.standin.close_watches_now)

    def compact(self) -> None:
        self.server.call(self.standin.state.compact)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The stand-in's CA and server certificate, made once per session."""
    try:
        from standin_tls import make_tls
    except ImportError as exc:
        _unavailable(f"the Kubernetes API stand-in needs the cryptography package for TLS: {exc}")
    return make_tls(tmp_path_factory.mktemp("standin-tls"))


@pytest.fixture()
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls: Any) -> Iterator[Kube]:
    try:
        from kubelet import FakeKubelet
        from standin import StandIn, StandInServer
    except ImportError as exc:
        _unavailable(f"the Kubernetes API stand-in needs kmock: {exc}")
    claims = tmp_path / "claims"
    standin = StandIn(claims_root=claims)
    server = StandInServer(standin, tls=tls)
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - any reason the server cannot come up
        _unavailable(f"the Kubernetes API stand-in did not start: {exc}")
    assert server.url.startswith("https://")
    kubelet = server.call(lambda: FakeKubelet(standin))
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    state = tmp_path / "state"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(state))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    k = Kube(server, kubelet, kubeconfig, state, "bench", claims)
    try:
        yield k
        assert not kubelet.errors, f"the fake kubelet failed: {kubelet.errors[0]!r}"
        requests = k.requests()
        validate_sent_objects(requests)
        check_allowed_by_the_role(requests)
    finally:
        server.stop()


def role_grants() -> set[tuple[str, str, str]]:
    """(API group, resource, verb) the launcher Role of manifests/rbac.yaml allows."""
    import yaml

    repo = Path(__file__).resolve().parents[2]
    docs = [d for d in yaml.safe_load_all((repo / "manifests" / "rbac.yaml").read_text(encoding="utf-8")) if d]
    role = next(d for d in docs if d["kind"] == "Role")
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]}


def check_allowed_by_the_role(requests: list[Any]) -> None:
    """Every API request mlrepro made is allowed by the Role (server-side apply: patch, plus create when the
    object is new) and is one of the calls the runner declares (mlrepro.runners.kubernetes.api.API_CALLS)."""
    from mlrepro.runners.kubernetes.api import API_CALLS

    grants = role_grants()
    for r in requests:
        if not r.resource or not r.agent.startswith(PYTHON_CLIENT_AGENT):
            continue          # helm's own requests (its release secrets) are not mlrepro's
        needed = [(r.group, r.resource, r.verb)]
        if r.verb == "patch" and r.content_type.startswith("application/apply-patch"):
            needed.append((r.group, r.resource, "create"))
        for call in needed:
            assert call in grants, f"{r.method} {r.path}: {call} is not allowed by manifests/rbac.yaml"
            assert call in API_CALLS, f"{r.method} {r.path}: {call} is not declared in API_CALLS"


_validated: set[str] = set()


def validate_sent_objects(requests: list[Any]) -> None:
    """Every object the runner sent (create, apply, update) is valid for Kubernetes 1.31-1.35 (objects of APIs
    that only exist from a later version, like resource.k8s.io/v1 from 1.34, from that version on)."""
    import kubernetes_validate

    for r in requests:
        body = r.body
        if r.verb not in ("create", "patch", "update") or not isinstance(body, dict) or body.get("kind") not in SENT_KINDS:
            continue
        key = json.dumps(body, sort_keys=True)
        if key in _validated:
            continue
        since = DRA_SINCE if body.get("apiVersion", "").startswith("resource.k8s.io/") else (1, 31)
        for version in VALIDATE_VERSIONS:
            if tuple(int(x) for x in version.split(".")[:2]) >= since:
                kubernetes_validate.validate(body, version, strict=True)
        _validated.add(key)


@pytest.fixture()
def quick_sets() -> list[str]:
    """A short, real run of the null workload (harness overhead only; the `quick` overlay is applied too, and the
    harness calibrates its LoadGen target): a few seconds per run."""
    return ["benchmark.workload='null'", "benchmark.settings.min_duration_ms=100", "benchmark.scenarios=[Offline]",
            "benchmark.modes=[performance]"]


@pytest.fixture()
def launch(kube: Kube) -> Callable[..., Any]:
    """Run the pipeline on the stand-in (image given: no registry involved) and return its result."""
    from mlrepro.flow import PipelineOptions, run_pipeline
    from mlrepro.profiles import resolve_profile
    from mlrepro.runners.base import KubeTarget

    def go(profile: str = "x86-cpu", sets: list[str] | None = None, messages: list[str] | None = None,
           **options: Any) -> Any:
        resolved = [resolve_profile(p, ["quick"], sets or []) for p in profile.split(",")]
        opts = PipelineOptions(target="kubernetes", image=options.pop("image", "registry.test/mlrepro/bench@sha256:"
                                                                                + "ab" * 32),
                               into=options.pop("into", None), collect=options.pop("collect", False),
                               submitter="Acme", kube=KubeTarget(), stream_logs=options.pop("stream_logs", False),
                               **options)
        return run_pipeline(resolved if len(resolved) > 1 else resolved[0], opts,
                            progress=(messages.append if messages is not None else lambda _m: None),
                            state_dir=kube.state_dir)

    return go
