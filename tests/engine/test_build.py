"""Real image builds on the real engine (classic builder), from the local Debian bases (air-gapped overlay).

amd64: ~3-4 min cold on 2 cores, seconds when the layer cache is warm. arm64 (qemu): ~8 min cold.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from mlrepro.image.builder import BuildOptions, BuildResult, BuildStepError, build_image, planned_image
from mlrepro.image.progress import BuildEvent, StepFinished, StepOutput
from mlrepro.profiles.loader import ResolvedProfile, resolve_profile

pytestmark = pytest.mark.docker

COMPILERS_PROBE = "command -v gcc g++ cc c++ clang make || true"


def _self_check(client: Any, ref: str, platform: str) -> dict[str, Any]:
    out = client.containers.run(ref, remove=True, platform=platform)
    return json.loads(out.decode().strip().splitlines()[-1])


def _sh(client: Any, ref: str, script: str, user: str = "10001", platform: str | None = None) -> str:
    out = client.containers.run(ref, ["-c", script], entrypoint="sh", remove=True, user=user, platform=platform)
    return out.decode()


def _build(resolved: ResolvedProfile, options: BuildOptions | None = None) -> tuple[BuildResult, list[BuildEvent]]:
    events: list[BuildEvent] = []
    return build_image(resolved, options, on_event=events.append), events


@pytest.fixture(scope="module")
def amd64(base_image: str) -> tuple[ResolvedProfile, BuildResult]:
    resolved = resolve_profile("x86-cpu", ["air-gapped"])
    assert resolved.profile.base_image == base_image
    result, _ = _build(resolved)
    return resolved, result


def test_amd64_image_self_check(docker_client: Any, amd64: tuple[ResolvedProfile, BuildResult]) -> None:
    resolved, result = amd64
    assert result.ref == planned_image(resolved).ref
    report = _self_check(docker_client, result.ref, "linux/amd64")
    assert report["arch"] == "x86_64" and report["loadgen"]["ok"] and report["backends"]["onnxruntime"]["ok"]
    attrs = docker_client.images.get(result.ref).attrs
    labels = attrs["Config"]["Labels"]
    assert attrs["Architecture"] == "amd64"
    assert attrs["Config"]["User"] == "10001:10001"
    assert labels["io.mlrepro.profile"] == "x86-cpu" and labels["io.mlrepro.profile-hash"] == resolved.hash
    assert labels["io.mlrepro.content-hash"] == result.content_hash == labels["org.opencontainers.image.revision"]
    assert labels["io.mlrepro.platform"] == "linux/amd64"
    assert "OMP_NUM_THREADS=2" in attrs["Config"]["Env"]


def test_amd64_runtime_has_no_compilers_no_pip_cache_no_ca(docker_client: Any,
                                                            amd64: tuple[ResolvedProfile, BuildResult]) -> None:
    ref = amd64[1].ref
    assert _sh(docker_client, ref, COMPILERS_PROBE).strip() == ""
    assert _sh(docker_client, ref, "id -u").strip() == "10001"
    leftovers = _sh(docker_client, ref, "ls -d /root/.cache/pip /wheels /build /etc/mlrepro /var/lib/apt/lists/*_* "
                                        "/var/cache/apt/archives/*.deb 2>/dev/null || true", user="0")
    assert leftovers.strip() == ""


def test_noop_rebuild_is_skipped_fast(amd64: tuple[ResolvedProfile, BuildResult]) -> None:
    first = amd64[1]
    started = time.monotonic()
    again, _ = _build(resolve_profile("x86-cpu", ["air-gapped"]))
    assert again.skipped and again.ref == first.ref and again.image_id == first.image_id
    assert time.monotonic() - started <= 2.0


def test_harness_change_changes_tag_and_rebuilds_only_the_tail(docker_client: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                amd64: tuple[ResolvedProfile, BuildResult]) -> None:
    from mlrepro.image import harness_wheel

    first = amd64[1]
    probe = tmp_path / "probe.py"
    probe.write_text(f"MARK = {time.time_ns()}\n")
    original = harness_wheel.harness_files
    monkeypatch.setattr(harness_wheel, "harness_files", lambda: original() + [("mlrepro/harness/_probe.py", probe)])
    result, events = _build(resolve_profile("x86-cpu", ["air-gapped"]))
    try:
        assert not result.skipped and result.ref != first.ref and result.content_hash != first.content_hash
        steps = [e for e in events if isinstance(e, StepFinished)]
        rebuilt = [s.instruction for s in steps if not s.cached and not s.instruction.startswith(("FROM", "ARG",
                                                                                                    "LABEL", "USER",
                                                                                                    "WORKDIR",
                                                                                                    "ENTRYPOINT",
                                                                                                    "CMD", "ENV"))]
        assert [r.split()[0] for r in rebuilt] == ["COPY", "RUN"] and rebuilt[0].startswith("COPY harness/")
        assert _sh(docker_client, result.ref, "python -c 'import mlrepro.harness._probe as p; print(p.MARK)'").strip()
    finally:
        docker_client.images.remove(result.ref)


def test_failing_step_names_it_and_tags_nothing(docker_client: Any, base_image: str) -> None:
    import docker

    resolved = resolve_profile("x86-cpu", ["air-gapped"], ["packages.apt=[no-such-pkg-xyz]"])
    planned = planned_image(resolved)
    with pytest.raises(BuildStepError) as info:
        build_image(resolved)
    err = info.value
    assert err.instruction is not None and "apt-get" in err.instruction and "no-such-pkg-xyz" in err.instruction
    assert f"step {err.step}/{err.total}" in str(err) and "\n" not in str(err)
    assert any("no-such-pkg-xyz" in line for line in err.tail) and len(err.tail) <= 20
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(planned.ref)


@pytest.mark.registry
def test_push_and_pull_back_by_digest(docker_client: Any, registry: Any, tmp_path: Path,
                                      amd64: tuple[ResolvedProfile, BuildResult]) -> None:
    from mlrepro.image.images import list_images, push_image, pushed_images
    from mlrepro.image.registry import RegistryAuth, pull

    resolved, result = amd64
    record = tmp_path / "images.json"
    pushed = push_image(result.ref, client=docker_client, registry=registry.host, username=registry.username,
                        password=registry.password, record_path=record)
    assert pushed.digest.startswith("sha256:") and pushed.ref.startswith(registry.host + "/")
    assert registry.password not in record.read_text()
    [entry] = pushed_images(resolved.hash, path=record)
    assert entry.digest == pushed.digest and entry.digest_ref == pushed.digest_ref
    assert entry.content_hash == result.content_hash
    docker_client.images.remove(pushed.ref)
    auth = RegistryAuth(registry.host, registry.username, registry.password)
    pulled = pull(docker_client, pushed.digest_ref, auth)
    assert pulled.id == result.image_id
    listed = {img.image_id: img for img in list_images(docker_client, profile="x86-cpu")}
    mine = listed[result.image_id]
    assert result.ref in mine.tags and mine.platform == "linux/amd64" and mine.size_bytes > 0
    assert pushed.digest_ref in mine.digests


@pytest.mark.slow
def test_index_build_needs_and_uses_the_ca_bundle(docker_client: Any, base_image: str, tmp_path: Path) -> None:
    """No host wheelhouse: pip in the builder goes to PyPI -- here through a TLS-intercepting proxy, so
    without the CA bundle the pip step fails, and with it the build works."""
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if not ca.is_file():
        pytest.skip("no system CA bundle")
    resolved = resolve_profile("x86-cpu", ["air-gapped"])
    try:
        build_image(resolved, BuildOptions(wheelhouse=False, force=True))
        intercepted = False  # PyPI is reachable without a custom CA here
    except BuildStepError as exc:
        intercepted = True
        assert exc.instruction is not None and "pip wheel" in exc.instruction and "--no-index" not in exc.instruction
    # a bundle with a unique trailing comment: a new layer, so pip really downloads (no layer-cache hit)
    bundle = tmp_path / "ca.pem"
    bundle.write_text(ca.read_text() + f"\n# test run {time.time_ns()}\n")
    result, events = _build(resolved, BuildOptions(wheelhouse=False, ca_bundle=bundle, force=True))
    assert result.offline is False
    if intercepted:
        assert any(isinstance(e, StepOutput) and e.line.strip().startswith("Saved") for e in events)
    report = _self_check(docker_client, result.ref, "linux/amd64")
    assert report["loadgen"]["ok"]
    assert _sh(docker_client, result.ref, "ls /etc/mlrepro 2>/dev/null || echo none", user="0").strip() == "none"


# --- arm64 under qemu ------------------------------------------------------------------------------

@pytest.mark.arm64
@pytest.mark.slow
def test_arm64_build_and_cached_loadgen_wheel(docker_client: Any, base_image_arm64: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLREPRO_CACHE_DIR", str(tmp_path / "cache"))  # a host wheel cache without LoadGen
    resolved = resolve_profile("arm64-cpu", ["air-gapped"])
    first, events = _build(resolved, BuildOptions(force=True))
    assert first.source_builds == ("mlcommons_loadgen-6.0.17.tar.gz",) or first.source_builds[0].startswith(
        "mlcommons_loadgen-")
    wheel_step = next(e for e in events if isinstance(e, StepFinished) and "pip wheel" in e.instruction)
    assert first.compiled or wheel_step.cached  # compiled now, or this exact step is in the layer cache
    report = _self_check(docker_client, first.ref, "linux/arm64")
    assert report["arch"] == "aarch64" and report["loadgen"]["ok"]
    attrs = docker_client.images.get(first.ref).attrs
    assert attrs["Architecture"] == "arm64"
    assert _sh(docker_client, first.ref, COMPILERS_PROBE, platform="linux/arm64").strip() == ""
    cached = list((tmp_path / "cache" / "wheels" / "linux-arm64-cp311" / "built").glob("mlcommons_loadgen-*.whl"))
    assert len(cached) == 1, "the compiled LoadGen wheel was not copied out of the builder stage"

    docker_client.images.remove(first.ref)
    started = time.monotonic()
    second, events = _build(resolved, BuildOptions(force=True))
    seconds = time.monotonic() - started
    assert second.source_builds == () and second.cached_wheels == (cached[0].name,)
    assert second.compiled == ()
    assert not any(isinstance(e, StepOutput) and "Building wheel for mlcommons" in e.line for e in events)
    if first.compiled:  # the first build compiled LoadGen under qemu (~5-15 min); the second must be far quicker
        assert seconds < first.seconds / 2, f"second arm64 build took {seconds:.0f}s, the first {first.seconds:.0f}s"
    report = _self_check(docker_client, second.ref, "linux/arm64")
    assert report["arch"] == "aarch64" and report["loadgen"]["ok"]
