"""AMD and Intel GPUs on Kubernetes: the Job carries the vendor's resource, toleration and node labels (or its DRA
claim), validates against Kubernetes 1.31-1.35, stays Pod Security "restricted", and the chart renders the same
objects (real helm binary)."""

from __future__ import annotations

import kubernetes_validate
import pytest
import render_support
from test_helm import values_and_objects
from test_manifests import K8S_VERSIONS, by_kind, example_objects, pod_spec_of

from mlrepro.profiles.loader import resolve_profile

VARIANTS = {
    "amd-product": ("amd-gpu", ["accelerator.product=AMD_Instinct_MI300X_OAM", "accelerator.count=8"]),
    "intel-i915": ("intel-gpu", ["accelerator.resource=gpu.intel.com/i915", "accelerator.product=Max_1550"]),
    "amd-dra": ("amd-gpu", ["accelerator.request=dra", "accelerator.count=2"]),
    "intel-dra": ("intel-gpu", ["accelerator.request=dra"]),
}


def objects(variant: str) -> dict[str, dict]:
    name, sets = VARIANTS[variant]
    return by_kind(example_objects(resolve_profile(name, sets=sets)))


def test_amd_job_asks_for_amd_gpus_on_labelled_nodes():
    spec = pod_spec_of(by_kind(example_objects(resolve_profile("amd-gpu")))["Job"])
    assert spec["containers"][0]["resources"]["limits"] == {"cpu": "4", "memory": "8Gi", "amd.com/gpu": "1"}
    assert spec["tolerations"] == [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"kubernetes.io/arch": "amd64", "feature.node.kubernetes.io/amd-gpu": "true"}
    spec = pod_spec_of(objects("amd-product")["Job"])
    assert spec["nodeSelector"]["amd.com/gpu.product-name"] == "AMD_Instinct_MI300X_OAM"
    assert spec["containers"][0]["resources"]["limits"]["amd.com/gpu"] == "8"


def test_intel_job_asks_for_the_resource_of_the_nodes_kernel_driver():
    spec = pod_spec_of(by_kind(example_objects(resolve_profile("intel-gpu")))["Job"])
    assert spec["containers"][0]["resources"]["limits"]["gpu.intel.com/xe"] == "1"
    assert spec["tolerations"] == [{"key": "gpu.intel.com/xe", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"kubernetes.io/arch": "amd64", "intel.feature.node.kubernetes.io/gpu": "true"}
    spec = pod_spec_of(objects("intel-i915")["Job"])
    assert "gpu.intel.com/xe" not in spec["containers"][0]["resources"]["limits"]
    assert spec["containers"][0]["resources"]["limits"]["gpu.intel.com/i915"] == "1"
    assert spec["tolerations"] == [{"key": "gpu.intel.com/i915", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"]["gpu.intel.com/product"] == "Max_1550"


@pytest.mark.parametrize("variant,device_class,count", [("amd-dra", "gpu.amd.com", 2), ("intel-dra", "gpu.intel.com", 1)])
def test_dra_claims_the_vendors_device_class(variant, device_class, count):
    objs = objects(variant)
    assert list(objs) == ["ConfigMap", "PersistentVolumeClaim", "ResourceClaimTemplate", "Job"]
    (request,) = objs["ResourceClaimTemplate"]["spec"]["spec"]["devices"]["requests"]
    assert request == {"name": "gpu", "exactly": {"deviceClassName": device_class, "count": count}}
    container = pod_spec_of(objs["Job"])["containers"][0]
    assert container["resources"]["claims"] == [{"name": "gpu"}]
    assert not any("/" in k for k in container["resources"]["limits"])          # no device-plugin resource


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_vendor_variants_validate(variant, version):
    objs = objects(variant)
    if "ResourceClaimTemplate" in objs and tuple(int(x) for x in version.split(".")[:2]) < (1, 34):
        pytest.skip("resource.k8s.io/v1 is Kubernetes 1.34+ (the chart refuses DRA below it)")
    for obj in objs.values():
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_vendor_pods_stay_restricted(variant):
    """No privileged pod, no hostPath: the device plugin (or the DRA driver) hands the devices in."""
    spec = pod_spec_of(objects(variant)["Job"])
    (container,) = spec["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in sc and sc["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert all(set(v) - {"name"} <= {"configMap", "persistentVolumeClaim", "emptyDir"} for v in spec["volumes"])
    assert not any(k in spec for k in ("hostIPC", "hostPID", "hostNetwork"))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_chart_renders_the_vendor_variants(variant, helm_template):
    name, sets = VARIANTS[variant]
    values, objs = values_and_objects(resolve_profile(name, sets=sets))
    assert helm_template(values) == render_support.by_kind(objs)
