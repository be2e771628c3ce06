"""Profile resolution: built-ins, extends, overlays, --set, validation errors with file + dotted key, hash."""

from pathlib import Path

import pytest

from mlrepro.profiles import ProfileError, builtin_profile_names, resolve_profile

BUILTINS = ["amd-gpu", "arm64-cpu", "intel-gpu", "llm-client", "nvidia-gpu", "nvidia-gpu-arm64", "nvidia-gpu-llm", "x86-cpu",
            "x86-cpu-llm"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def problems(exc: pytest.ExceptionInfo[ProfileError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def test_builtins_resolve_and_have_the_expected_shape():
    assert builtin_profile_names() == BUILTINS
    x86 = resolve_profile("x86-cpu").profile
    arm = resolve_profile("arm64-cpu").profile
    gpu = resolve_profile("nvidia-gpu").profile
    garm = resolve_profile("nvidia-gpu-arm64").profile
    assert (x86.platform, x86.accelerator.enabled, x86.framework.backend) == ("linux/amd64", False, "onnxruntime")
    assert arm.platform == "linux/arm64" and arm.scheduling.node_selector["kubernetes.io/arch"] == "arm64"
    assert gpu.accelerator.resource_name == "nvidia.com/gpu" and gpu.framework.backend == "onnxruntime-gpu"
    assert gpu.base_image.startswith("nvidia/cuda:") and gpu.device == "cuda"
    assert garm.platform == "linux/arm64" and garm.framework.backend == "torch" and garm.accelerator.product
    amd, intel = resolve_profile("amd-gpu").profile, resolve_profile("intel-gpu").profile
    assert (amd.accelerator.resource_name, amd.accelerator.taint_key, amd.device, amd.framework.source) == \
        ("amd.com/gpu", "amd.com/gpu", "cuda", "image")           # ROCm torch answers to torch.cuda (HIP)
    assert (intel.accelerator.resource_name, intel.accelerator.taint_key, intel.device) == \
        ("gpu.intel.com/xe", "gpu.intel.com/xe", "xpu")
    assert amd.base_image.startswith("rocm/pytorch:") and intel.base_image.startswith("intel/")


def test_hash_is_stable_and_content_sensitive():
    a, b = resolve_profile("x86-cpu"), resolve_profile("x86-cpu")
    assert a.hash == b.hash and len(a.hash) == 64
    c = resolve_profile("x86-cpu", sets=["benchmark.batch_size=64"])
    assert c.hash != a.hash
    # equal content through a different route → equal hash
    d = resolve_profile("x86-cpu", sets=["benchmark.batch_size=64", "description=" + a.profile.description])
    assert d.hash == c.hash


def test_user_profile_extends_builtin_and_file(tmp_path):
    base = write(tmp_path, "base.yaml", "extends: x86-cpu\nname: team-base\nenv: {A: '1'}\n")
    write(tmp_path, "mine.yaml", "extends: base.yaml\nname: mine\nenv: {B: '2'}\npackages: {pip+: [scipy]}\n")
    r = resolve_profile(tmp_path / "mine.yaml")
    assert r.profile.name == "mine"
    assert r.profile.env == {"OMP_NUM_THREADS": "2", "A": "1", "B": "2"}
    assert r.profile.packages.pip == ["scipy"]
    assert r.sources == ("<builtin:x86-cpu>", str(base), str(tmp_path / "mine.yaml"))


def test_overlays_then_set_in_order(tmp_path):
    o1 = write(tmp_path, "o1.yaml", "benchmark: {scenarios: [Server], batch_size: 8}\n")
    o2 = write(tmp_path, "o2.yaml", "benchmark: {batch_size: 16}\n")
    r = resolve_profile("x86-cpu", [o1, o2], ["benchmark.scenarios=[Offline,SingleStream]"])
    assert r.profile.benchmark.batch_size == 16
    assert r.profile.benchmark.scenarios == ["Offline", "SingleStream"]
    assert r.sources[-1] == "--set"


def test_builtin_overlays_by_name():
    r = resolve_profile("arm64-cpu", ["air-gapped", "quick"])
    assert r.profile.base_image == "mlrepro/debian:bookworm-arm64"
    assert r.profile.benchmark.settings["min_duration_ms"] == 1000


def test_unknown_key_with_suggestion_names_file(tmp_path):
    f = write(tmp_path, "p.yaml", "extends: x86-cpu\nbenchmrk: {}\nimage: {bsae: x}\n")
    with pytest.raises(ProfileError) as e:
        resolve_profile(f)
    assert f"{f}: benchmrk: unknown key (did you mean 'benchmark'?)" in problems(e)
    assert f"{f}: image.bsae: unknown key (did you mean 'base'?)" in problems(e)


def test_wrong_type_and_invalid_values(tmp_path):
    f = write(tmp_path, "p.yaml", "extends: x86-cpu\nbenchmark: {batch_size: many, scenarios: [Offlin]}\n"
                                  "resources: {limits: {memory: 4GB}}\nplatform: linux/riscv64\n")
    with pytest.raises(ProfileError) as e:
        resolve_profile(f)
    text = "\n".join(problems(e))
    assert f"{f}: benchmark.batch_size: wrong type" in text
    assert f"{f}: benchmark.scenarios.0: invalid value 'Offlin'" in text
    assert f"{f}: resources.limits.memory: '4GB' is not a Kubernetes quantity" in text
    assert f"{f}: platform: invalid value 'linux/riscv64'" in text


def test_missing_required_field(tmp_path):
    f = write(tmp_path, "p.yaml", "name: bare\n")
    with pytest.raises(ProfileError) as e:
        resolve_profile(f)
    assert f"{f}: image: missing required field" in problems(e)


def test_unknown_base_profile_and_cycle(tmp_path):
    f = write(tmp_path, "p.yaml", "extends: x86-cpuu\n")
    with pytest.raises(ProfileError) as e:
        resolve_profile(f)
    assert problems(e) == [f"{f}: extends: unknown profile 'x86-cpuu' (did you mean 'x86-cpu'?)"]
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: ./a.yaml\n")
    with pytest.raises(ProfileError, match="cyclic extends: a.yaml -> b.yaml -> a.yaml"):
        resolve_profile(tmp_path / "a.yaml")


def test_invalid_resource_name_and_quantity_via_set():
    with pytest.raises(ProfileError) as e:
        resolve_profile("nvidia-gpu", sets=["accelerator.resource=gpu", "results.size=lots"])
    assert "--set: accelerator.resource: invalid value 'gpu'" in problems(e)
    assert any(p.startswith("--set: results.size: 'lots' is not a Kubernetes quantity") for p in problems(e))


def test_contradictions_are_reported_at_the_key_the_user_set(tmp_path):
    f = write(tmp_path, "g.yaml", "extends: x86-cpu\nname: g\naccelerator: {vendor: nvidia, count: 2}\n")
    with pytest.raises(ProfileError) as e:
        resolve_profile(f)
    assert problems(e) == [f"{f}: accelerator.count: 2 GPU(s) with the CPU-only backend 'onnxruntime' "
                           "(use framework.backend: onnxruntime-gpu or torch)"]
    with pytest.raises(ProfileError) as e:
        resolve_profile("arm64-cpu", sets=["image.base=example/py:3.11-amd64"])
    assert problems(e) == ["--set: image.base: 'example/py:3.11-amd64' is an amd64-only image but platform "
                           "is linux/arm64"]
    with pytest.raises(ProfileError) as e:
        resolve_profile("x86-cpu", sets=["resources.limits.cpu=500m"])
    assert problems(e) == ["--set: resources.limits.cpu: requests.cpu (1) exceeds limits.cpu (500m)"]
    with pytest.raises(ProfileError, match="'onnxruntime-gpu' has no linux/arm64 wheel"):
        resolve_profile("nvidia-gpu-arm64", sets=["framework.backend=onnxruntime-gpu"])


def test_mig_profile_sets_resource_name():
    r = resolve_profile("nvidia-gpu", sets=["accelerator.mig_profile=1g.10gb"])
    assert r.profile.accelerator.resource_name == "nvidia.com/mig-1g.10gb"


def test_malformed_yaml_and_set(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: [unclosed\n")
    with pytest.raises(ProfileError, match=r"invalid YAML \(line 2"):
        resolve_profile(f)
    with pytest.raises(ProfileError, match="--set: =1: expected dotted.key=value"):
        resolve_profile("x86-cpu", sets=["=1"])
    with pytest.raises(ProfileError, match="file not found"):
        resolve_profile(tmp_path / "nope.yaml")
    with pytest.raises(ProfileError, match="unknown overlay 'quik' \\(did you mean 'quick'\\?\\)"):
        resolve_profile("x86-cpu", ["quik"])


def test_unknown_loadgen_setting():
    with pytest.raises(ProfileError, match="benchmark.settings: unknown LoadGen setting 'min_duration'"):
        resolve_profile("x86-cpu", sets=["benchmark.settings.min_duration=5"])


def test_env_numbers_and_booleans_are_strings(tmp_path):
    """`OMP_NUM_THREADS: 8` in a profile and `--set env.OMP_NUM_THREADS=8` mean the string "8"."""
    from mlrepro.profiles.loader import resolve_profile

    p = tmp_path / "p.yaml"
    p.write_text("extends: x86-cpu\nname: mine\nenv:\n  OMP_NUM_THREADS: 8\n  MLREPRO_DEBUG: true\n")
    r = resolve_profile(str(p), sets=["env.KMP_BLOCKTIME=0", "env.RATIO=0.5"])
    assert r.profile.env["OMP_NUM_THREADS"] == "8" and r.profile.env["MLREPRO_DEBUG"] == "true"
    assert r.profile.env["KMP_BLOCKTIME"] == "0" and r.profile.env["RATIO"] == "0.5"
