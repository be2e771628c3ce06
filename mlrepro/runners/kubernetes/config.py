"""Which cluster, as kubectl decides it, with the official client's loaders.

Kubeconfig (``kubectl config`` rules): ``--kubeconfig FILE`` alone if given, else every file of
``$KUBECONFIG`` (``:``-separated, merged, first wins), else ``~/.kube/config``. Context: ``--context``, else the
kubeconfig's ``current-context``. When no kubeconfig file exists and the process runs in a pod
(``KUBERNETES_SERVICE_HOST`` set), the in-cluster service-account configuration is used.
Namespace: ``--namespace``, else the context's namespace, else (in-cluster) the pod's own namespace, else
``default``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.runners.base import KubeTarget
from mlrepro.runners.kubernetes.errors import ClientTooOldError, KubeConfigError

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes.client import ApiClient

DEFAULT_KUBECONFIG = "~/.kube/config"
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
FIELD_MANAGER = "mlrepro"

CLIENT_FLOOR = (37, 0, 2)
"""The oldest ``kubernetes`` client mlrepro works with (pyproject.toml states it too, for pip; a test keeps the two
equal): ``client.ResourceV1Api`` (resource.k8s.io/v1, DRA) exists from 34.1.0; the ``_content_type=`` of
server-side apply is accepted from 36.0.0 (before: ApiTypeError, a TypeError, not an API error); WebSocket exec
over TLS delivers messages already decrypted in the SSL socket from 37.0.2 (kubernetes-client/python PR #2650,
issue #2414: before, ``WSClient.update()`` could wait for bytes that had already arrived)."""


@dataclass
class ClusterConnection:
    api_client: ApiClient
    namespace: str
    context: str
    """The kubeconfig context used ("" = in-cluster); recorded with each run so ``logs``/``collect`` find it."""
    host: str


def kubeconfig_files(target: KubeTarget) -> list[Path]:
    """The kubeconfig files kubectl would read for ``target``, existing ones only, in precedence order."""
    if target.kubeconfig is not None:
        path = Path(target.kubeconfig).expanduser()
        if not path.is_file():
            raise KubeConfigError(f"--kubeconfig {path}: no such file")
        return [path]
    env = os.environ.get("KUBECONFIG")
    candidates = [p for p in env.split(os.pathsep) if p] if env else [DEFAULT_KUBECONFIG]
    return [Path(p).expanduser() for p in candidates if Path(p).expanduser().is_file()]


def check_client(installed: str | None = None) -> None:
    """Raise ClientTooOldError when the ``kubernetes`` client (``installed``, else the installed distribution's
    version) is older than CLIENT_FLOOR; a client that cannot be asked is let through."""
    if installed is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("kubernetes")
        except PackageNotFoundError:
            return
    m = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)", installed)
    if m is None:
        return
    parts = tuple(int(g or 0) for g in m.groups()[:3])
    pre = re.match(r"[-_.]?(a|b|c|rc|alpha|beta|pre|preview|dev)", m.group(4) or "")
    if parts + (-1 if pre else 0,) < CLIENT_FLOOR + (0,):      # 37.0.2rc1 comes before 37.0.2 (PEP 440)
        floor = ".".join(map(str, CLIENT_FLOOR))
        raise ClientTooOldError(f"the kubernetes client {installed} is older than {floor}, which the cluster path "
                                f"needs (exec over TLS, DRA, server-side apply): pip install 'kubernetes>={floor}'")


def connect(target: KubeTarget) -> ClusterConnection:
    """An API client for ``target`` (see the module docstring). Raises KubeConfigError (exit 2) when no
    configuration can be found or the context does not exist, ClientTooOldError (exit 2) for a client older
    than CLIENT_FLOOR."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    check_client()
    configuration = client.Configuration()
    files = kubeconfig_files(target)
    if not files:
        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
            looked = f"--kubeconfig {target.kubeconfig}" if target.kubeconfig else \
                f"$KUBECONFIG ({os.environ['KUBECONFIG']})" if os.environ.get("KUBECONFIG") else DEFAULT_KUBECONFIG
            raise KubeConfigError(f"no Kubernetes configuration: {looked} not found and not running in a cluster "
                                  "(set KUBECONFIG or pass --kubeconfig)")
        if target.context:
            raise KubeConfigError(f"--context {target.context}: there is no kubeconfig, only the in-cluster "
                                  "configuration")
        try:
            config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise KubeConfigError(f"in-cluster configuration: {exc}") from None
        namespace = target.namespace or _in_cluster_namespace()
        return ClusterConnection(client.ApiClient(configuration), namespace, "", configuration.host)
    joined = os.pathsep.join(str(f) for f in files)
    try:
        contexts, _ = config.list_kube_config_contexts(config_file=joined)
        name = target.context or current_context(files)
        known = ", ".join(sorted(c.get("name", "?") for c in contexts or [])) or "none"
        if name is None:
            raise KubeConfigError(f"{joined} sets no current-context: pass --context (contexts: {known})")
        chosen = next((c for c in contexts or [] if c.get("name") == name), None)
        if chosen is None:
            what = f"--context {name}" if target.context else "the kubeconfig's current-context"
            raise KubeConfigError(f"{what} is not a context of {joined} (contexts: {known})")
        config.load_kube_config(config_file=joined, context=name, client_configuration=configuration,
                                persist_config=False)
    except ConfigException as exc:
        raise KubeConfigError(f"kubeconfig {joined}: {exc}") from None
    namespace = target.namespace or (chosen.get("context") or {}).get("namespace") or "default"
    return ClusterConnection(client.ApiClient(configuration), namespace, name, configuration.host)


def current_context(files: list[Path]) -> str | None:
    """kubectl's current-context of merged kubeconfig files: the first file that sets one wins (the client's
    merger lets the last one win)."""
    import yaml

    for path in files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise KubeConfigError(f"kubeconfig {path}: cannot read ({exc})") from None
        if isinstance(doc, dict) and doc.get("current-context"):
            return str(doc["current-context"])
    return None


def _in_cluster_namespace() -> str:
    try:
        return IN_CLUSTER_NAMESPACE_FILE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"
