"""Real image builds on the real engine (classic builder), from the local Debian bases (air-gapped overlay).

amd64: ~3-4 min cold on 2 cores, seconds when the layer cache is warm. arm64 (qemu): ~8 min cold.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlrepro.image.builder import BuildOptions, BuildResult, BuildStepError, build_image, planned_image
from mlrepro.image.progress import BuildEvent, BuildNote, StepFinished, StepOutput
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
    assert labels["io.mlrepro.profile"] == "x86-cpu" and labels["io.mlrepro.stage"] == "runtime"
    assert labels["io.mlrepro.content-hash"] == result.content_hash == labels["org.opencontainers.image.revision"]
    planned = planned_image(resolved)
    assert planned.inputs is not None and labels["io.mlrepro.image-inputs"] == planned.inputs.label()
    assert labels["io.mlrepro.platform"] == "linux/amd64"
    assert not any(k.startswith("io.mlrepro.profile-hash") for k in labels)
    # the profile's env is a run setting: set at run time (PodSpec), not baked into the image
    assert not any(e.startswith("OMP_NUM_THREADS=") for e in attrs["Config"]["Env"])


def test_run_settings_share_one_image(amd64: tuple[ResolvedProfile, BuildResult]) -> None:
    """`build -f air-gapped`, then the image of `launch -f air-gapped -f quick --set benchmark.settings...`:
    other scenarios, modes, LoadGen settings and env use the image that is there; nothing is built."""
    first = amd64[1]
    for sets in (["benchmark.settings.min_duration_ms=60000", "benchmark.scenarios=[Server,Offline]"],
                 ["benchmark.settings.min_duration_ms=1234", "benchmark.modes=[accuracy]", "env.OMP_NUM_THREADS=8"]):
        other = resolve_profile("x86-cpu", ["air-gapped", "quick"], sets)
        assert other.hash != amd64[0].hash
        again, _ = _build(other)
        assert again.skipped and again.ref == first.ref and again.image_id == first.image_id


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
    """Two harness changes in a row: the second rebuilds only the harness layers (COPY harness/, pip install).
    The first one warms the layer cache, whatever the engine's history (a prune, an index build) left."""
    first = amd64[1]
    built: list[BuildResult] = []
    try:
        for n in range(2):
            _probe_harness(tmp_path / str(n), monkeypatch)
            result, events = _build(resolve_profile("x86-cpu", ["air-gapped"]))
            built.append(result)
            assert not result.skipped and result.ref != first.ref and result.content_hash != first.content_hash
        assert built[0].ref != built[1].ref
        steps = [e for e in events if isinstance(e, StepFinished)]
        rebuilt = [s.instruction for s in steps if not s.cached and not s.instruction.startswith(("FROM", "ARG",
                                                                                                    "LABEL", "USER",
                                                                                                    "WORKDIR",
                                                                                                    "ENTRYPOINT",
                                                                                                    "CMD", "ENV"))]
        assert [r.split()[0] for r in rebuilt] == ["COPY", "RUN"] and rebuilt[0].startswith("COPY harness/"), rebuilt
        mark = _sh(docker_client, built[1].ref, "python -c 'import mlrepro.harness._probe as p; print(p.MARK)'")
        assert mark.strip() == (tmp_path / "1" / "probe.py").read_text().split("=")[1].strip()
    finally:
        for result in built:
            _remove_build(docker_client, result.ref, result.content_hash)


def _probe_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Add a file to the harness wheel: new harness code, so a new content hash (nothing else changes)."""
    from mlrepro.image import harness_wheel

    tmp_path.mkdir(parents=True, exist_ok=True)
    probe = tmp_path / "probe.py"
    probe.write_text(f"MARK = {time.time_ns()}\n")
    original = harness_wheel.harness_files
    name = "mlrepro/harness/_probe.py"
    monkeypatch.setattr(harness_wheel, "harness_files",
                        lambda: [f for f in original() if f[0] != name] + [(name, probe)])


def _remove_build(client: Any, ref: str, content_hash: str) -> None:
    """Remove a test's image and the untagged stage images its build left (found by their labels)."""
    import docker

    from mlrepro.image.leftovers import builder_leftovers, remove_images

    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(ref)
    mine = [x.image_id for x in builder_leftovers(client, keep_latest=False) if x.content_hash == content_hash]
    remove_images(client, mine)


def test_concurrent_builds_of_the_same_content_build_once(docker_client: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           amd64: tuple[ResolvedProfile, BuildResult]) -> None:
    """Two launches at once need the same new image: one builds, the other waits for it and finds it; no
    untagged copy of the image is left."""
    _probe_harness(tmp_path, monkeypatch)
    resolved = resolve_profile("x86-cpu", ["air-gapped"])
    planned = planned_image(resolved)
    assert planned.ref != amd64[1].ref
    results: list[BuildResult] = []
    errors: list[BaseException] = []
    events: list[list[BuildEvent]] = [[], []]
    start = threading.Barrier(2)

    def build(i: int) -> None:
        start.wait()
        try:
            results.append(build_image(resolved, client=docker_client, on_event=events[i].append))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=900)
        assert not errors, errors
        assert sorted(r.skipped for r in results) == [False, True]
        assert results[0].image_id == results[1].image_id and results[0].ref == planned.ref
        waits = [e for evs in events for e in evs if isinstance(e, BuildNote) and "waiting for another build" in e.message]
        assert len(waits) == 1
        untagged = docker_client.images.list(filters={"dangling": True,
                                                      "label": f"io.mlrepro.content-hash={planned.content_hash}"})
        assert [i.id for i in untagged if i.labels.get("io.mlrepro.stage") == "runtime"] == []
    finally:
        _remove_build(docker_client, planned.ref, planned.content_hash)


def test_builder_leftovers_are_labelled_and_removed(docker_client: Any, tmp_path: Path,
                                                    amd64: tuple[ResolvedProfile, BuildResult]) -> None:
    """A build whose builder stage differs (a CA bundle, not an image input: same content hash, same image)
    leaves a builder-stage image; prune finds it by its labels, keeps the newest per profile/platform/wheel
    source by default, and removing it frees its own layers and nothing the image needs."""
    from mlrepro.image.leftovers import builder_leftovers, remove_images

    resolved, first = amd64
    before = {x.image_id for x in builder_leftovers(docker_client, keep_latest=False)}
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    bundle = tmp_path / "ca.pem"
    bundle.write_text((ca.read_text() if ca.is_file() else "-----BEGIN CERTIFICATE-----\nMIIB\n"
                       "-----END CERTIFICATE-----\n") + f"\n# test run {time.time_ns()}\n")
    again, _ = _build(resolved, BuildOptions(ca_bundle=bundle, force=True))
    assert again.image_id == first.image_id  # the runtime stage is the same image: nothing untagged there
    new = [x for x in builder_leftovers(docker_client, keep_latest=False)  # (the engine is shared: others build too)
           if x.image_id not in before and x.content_hash == first.content_hash]
    # the builder stage differs: a new image; the deps stage's layers do not, its closing label (wheel source)
    # does: an image of its own, new unless an earlier build with a CA bundle left it
    assert [(x.stage, x.profile, x.platform) for x in new if x.stage != "deps"] == [("builder", "x86-cpu",
                                                                                     "linux/amd64")]
    mine = next(x for x in new if x.stage == "builder")
    (deps,) = [x for x in builder_leftovers(docker_client, keep_latest=False)
               if x.stage == "deps" and x.content_hash == first.content_hash and x.profile == "x86-cpu"
               and docker_client.images.get(x.image_id).labels.get("io.mlrepro.wheel-source") == "wheelhouse+ca"]
    assert docker_client.images.get(mine.image_id).labels["io.mlrepro.wheel-source"] == "wheelhouse+ca"
    assert mine.size_bytes > 0 and time.time() - mine.created.timestamp() < 900
    # the newest builder/deps image of x86-cpu/linux/amd64 per wheel source is kept as layer cache unless asked
    # otherwise: this newer one does not push out the cache of the builds without a CA bundle
    kept = {x.image_id for x in builder_leftovers(docker_client)}
    assert mine.image_id not in kept and deps.image_id not in kept
    newest: dict[tuple[str, str], str] = {}
    for x in builder_leftovers(docker_client, keep_latest=False):  # newest first
        if x.profile == "x86-cpu" and x.platform == "linux/amd64" and x.stage in ("builder", "deps"):
            source = docker_client.images.get(x.image_id).labels.get("io.mlrepro.wheel-source", "")
            newest.setdefault((x.stage, source), x.image_id)
    assert newest and not set(newest.values()) & kept
    planned = remove_images(docker_client, [mine.image_id], dry_run=True)
    assert planned.dry_run and mine.image_id in planned.removed and planned.failed == ()
    assert planned.freed_bytes > 100_000  # at least the CA bundle's layer and the rebuilt wheels
    assert mine.freed_bytes == planned.freed_bytes and "builder stage of x86-cpu linux/amd64" in mine.reason
    docker_client.images.get(mine.image_id)  # a dry run removes nothing
    done = remove_images(docker_client, [mine.image_id])
    assert set(done.removed) == set(planned.removed) and done.freed_bytes == planned.freed_bytes
    assert mine.image_id not in {x.image_id for x in builder_leftovers(docker_client, keep_latest=False)}
    assert _self_check(docker_client, first.ref, "linux/amd64")["loadgen"]["ok"]  # the image is intact
    assert remove_images(docker_client, [mine.image_id]).removed == ()  # gone: nothing to do, no error
    remove_images(docker_client, [deps.image_id])


def test_up_to_date_build_still_checks_the_ca_bundle(tmp_path: Path, amd64: tuple[ResolvedProfile, BuildResult]) -> None:
    from mlrepro.errors import BadInputError

    with pytest.raises(BadInputError, match=str(tmp_path / "nope.pem")):
        build_image(amd64[0], BuildOptions(ca_bundle=tmp_path / "nope.pem"))


def test_base_image_that_cannot_be_pulled_is_one_line_with_the_way_out(docker_client: Any) -> None:
    from mlrepro.image.errors import BaseImageUnavailable

    port = _closed_port()
    ref = f"127.0.0.1:{port}/nope/debian:bookworm"
    resolved = resolve_profile("x86-cpu", sets=[f"image.base={ref}"])
    with pytest.raises(BaseImageUnavailable) as info:
        build_image(resolved, client=docker_client)
    message = str(info.value)
    assert "\n" not in message and ref in message and "cannot be pulled" in message
    assert "mlrepro base-images" in message and "-f air-gapped" in message
    assert info.value.exit_code == 1


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    [entry] = pushed_images("x86-cpu", path=record)
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
@pytest.mark.timeout(2700)   # on a fresh engine the first build compiles LoadGen under qemu: 15-30 min on 2 cores
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
