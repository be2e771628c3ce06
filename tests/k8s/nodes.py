"""The stand-in's nodes, storage classes and scheduler: enough of a cluster to place a pod as a real one would.

- Nodes carry labels (``kubernetes.io/arch``, ``kubernetes.io/hostname``), taints, extended resources
  (``nvidia.com/gpu``) and the images they hold: a pod on a node without its image waits ``pull_s`` in
  ``ContainerCreating`` first (an image pull that takes time).
- The scheduler (one pass of what kube-scheduler's filters do, kubernetes.io "Assigning Pods to Nodes", "Taints
  and Tolerations"): nodeSelector, required node affinity (matchExpressions on labels, matchFields on
  ``metadata.name``), untolerated NoSchedule/NoExecute taints, extended resources, and the node of a node-local
  volume (bound to the node of its first consumer, ``WaitForFirstConsumer``). Among the feasible nodes, those of
  a preferred node affinity come first, then the node list's order (kube-scheduler's ImageLocality score is small
  for an image on one node of many: it is left out, so a pod with no preference lands on the first node).
  A pod that fits nowhere gets the scheduler's message: ``0/3 nodes are available: 1 node(s) had untolerated
  taint {nvidia.com/gpu: }, 2 node(s) didn't match Pod's node affinity/selector.``
- Storage classes say whether kubelet applies the pod's fsGroup to their volumes (block storage with an fsType
  does; NFS/EFS-style ReadWriteMany classes do not) and whether a volume is node-local.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    name: str
    arch: str = "amd64"
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    allocatable: dict[str, int] = field(default_factory=dict)      # extended resources: nvidia.com/gpu
    images: set[str] = field(default_factory=set)
    unschedulable: bool = False

    def all_labels(self) -> dict[str, str]:
        return {"kubernetes.io/arch": self.arch, "kubernetes.io/os": "linux", "kubernetes.io/hostname": self.name,
                **self.labels}


@dataclass(frozen=True)
class StorageClass:
    """``applies_fs_group``: kubelet chowns the volume to the pod's fsGroup (volumes with an fsType under CSI
    fsGroupPolicy ReadWriteOnceWithFSType: only ReadWriteOnce ones); ``node_local``: the volume lives on one node;
    ``mode``: the permissions of a new volume's root (owner root)."""

    applies_fs_group: bool = True
    node_local: bool = False
    mode: int = 0o755
    read_write_once_only: bool = True    # fsGroup applied to RWO volumes only (ReadWriteOnceWithFSType)

    def fs_group_applies(self, access_mode: str) -> bool:
        return self.applies_fs_group and (not self.read_write_once_only or access_mode != "ReadWriteMany")


STORAGE_CLASSES = {
    "standard": StorageClass(),                                         # block storage with an fsType (the default)
    "nfs-client": StorageClass(applies_fs_group=False),                 # NFS/EFS-style: root-owned 0755, no fsGroup
    "local-path": StorageClass(applies_fs_group=False, node_local=True, mode=0o777),   # rancher local-path
}
DEFAULT_STORAGE_CLASS = "standard"


def default_nodes() -> list[Node]:
    """Two CPU nodes, an arm64 node and a GPU node tainted ``nvidia.com/gpu:NoSchedule`` (as GPU operators do)."""
    return [
        Node("node-1"),
        Node("node-2"),
        Node("arm-node-1", arch="arm64"),
        Node("gpu-node-1", labels={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"},
             taints=[{"key": "nvidia.com/gpu", "effect": "NoSchedule"}], allocatable={"nvidia.com/gpu": 8}),
    ]


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    """kubernetes.io "Taints and Tolerations": an empty key with Exists matches every taint; an empty effect
    matches every effect; Equal compares the value."""
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if not t.get("key"):
            if t.get("operator") == "Exists":
                return True
            continue
        if t["key"] != taint.get("key"):
            continue
        if t.get("operator", "Equal") == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _term_matches(term: dict[str, Any], node: Node) -> bool:
    labels = node.all_labels()
    for req in term.get("matchExpressions") or []:
        value, op, values = labels.get(req["key"]), req["operator"], req.get("values") or []
        if (op == "In" and value not in values) or (op == "NotIn" and value in values) \
                or (op == "Exists" and value is None) or (op == "DoesNotExist" and value is not None):
            return False
    for req in term.get("matchFields") or []:
        assert req["key"] == "metadata.name", req            # the only field the API allows
        if (req["operator"] == "In") != (node.name in (req.get("values") or [])):
            return False
    return True


def _gpus(pod: dict[str, Any]) -> int:
    return sum(int(((c.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", 0))
               for c in pod["spec"].get("containers", []))


@dataclass
class Placement:
    node: Node | None
    message: str = ""       # why no node fits (the scheduler's PodScheduled=False message)


def schedule(pod: dict[str, Any], nodes: list[Node], claim_nodes: dict[str, str]) -> Placement:
    """Where ``pod`` goes among ``nodes``. ``claim_nodes``: claim name -> the node of its node-local volume."""
    spec = pod["spec"]
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = ((affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
                .get("nodeSelectorTerms") or [])
    preferred = affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    claims = [(v.get("persistentVolumeClaim") or {}).get("claimName") for v in spec.get("volumes") or []]
    bound = {claim_nodes[c] for c in claims if c in claim_nodes}
    why: Counter[str] = Counter()
    feasible: list[Node] = []
    for node in nodes:
        labels = node.all_labels()
        if node.unschedulable:
            why["node(s) were unschedulable"] += 1
        elif any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()) \
                or (required and not any(_term_matches(t, node) for t in required)):
            why["node(s) didn't match Pod's node affinity/selector"] += 1
        elif any(t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(spec.get("tolerations"), t)
                 for t in node.taints):
            taint = next(t for t in node.taints if not tolerates(spec.get("tolerations"), t))
            why[f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"] += 1
        elif _gpus(pod) > node.allocatable.get("nvidia.com/gpu", 0):
            why["Insufficient nvidia.com/gpu"] += 1
        elif bound and bound != {node.name}:
            why["node(s) had volume node affinity conflict"] += 1
        else:
            feasible.append(node)
    if not feasible:
        reasons = ", ".join(f"{n} {text}" for text, n in sorted(why.items()))
        return Placement(None, f"0/{len(nodes)} nodes are available: {reasons}. preemption: 0/{len(nodes)} nodes "
                               "are available: no preemption victims found for incoming pod.")

    def score(node: Node) -> tuple[int, int]:
        weight = sum(p.get("weight", 0) for p in preferred if _term_matches(p.get("preference") or {}, node))
        return (-weight, nodes.index(node))

    return Placement(min(feasible, key=score))
