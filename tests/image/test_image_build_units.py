"""Units of the image build that need no engine and no network: lock, tags, stream parser, build_helper."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlrepro.image.lock import find_lock, input_digest, lock_key, parse_lock, with_extra_hashes
from mlrepro.image.progress import (
    BuildFailed,
    BuildStreamParser,
    ImageBuilt,
    StepFinished,
    StepOutput,
    StepStarted,
)
from mlrepro.image.tags import content_hash, image_name
from mlrepro.profiles.loader import builtin_profile_names, resolve_profile
from mlrepro.resources import images_dir

H0, H1, H2, H3 = ("0" * 64, "1" * 64, "2" * 64, "3" * 64)
LOCK = f"""# header
# mlrepro-lock-input: {H0}
mlcommons-loadgen==6.0.17 \\
    --hash=sha256:{H1} \\
    --hash=sha256:{H2}
    # via -r requirements.in
numpy==2.4.6 \\
    --hash=sha256:{H3}
    # via onnxruntime
"""


def test_parse_and_extend_lock() -> None:
    locked = parse_lock(LOCK)
    assert locked["mlcommons-loadgen"].version == "6.0.17"
    assert locked["mlcommons-loadgen"].hashes == {"1" * 64, "2" * 64}
    assert locked["numpy"].hashes == {"3" * 64}
    extended = parse_lock(with_extra_hashes(LOCK, {"mlcommons-loadgen": ("4" * 64,), "numpy": ("5" * 64,)}))
    assert extended["mlcommons-loadgen"].hashes == {"1" * 64, "2" * 64, "4" * 64}
    assert extended["numpy"].hashes == {"3" * 64, "5" * 64}
    with pytest.raises(Exception, match="not in the lock"):
        with_extra_hashes(LOCK, {"torch": ("6" * 64,)})


@pytest.mark.parametrize("name", builtin_profile_names())
def test_builtin_locks_are_committed_and_current(name: str) -> None:
    profile = resolve_profile(name).profile
    lock = find_lock(profile)
    assert lock is not None and lock.source == "committed", f"run `python -m mlrepro.image.lock` ({lock_key(profile)})"
    pkgs = lock.packages()
    assert {"numpy", "mlcommons-loadgen"} <= set(pkgs)
    if profile.framework.source == "image":     # the vendor image's own torch build (not on PyPI): not locked
        assert profile.framework.backend not in pkgs and lock.key.endswith("-from-image")
    else:
        assert pkgs[profile.framework.backend].version == profile.framework.version
    assert all(p.hashes for p in pkgs.values())
    # the air-gapped overlay keeps Python 3.11 on the CPU profiles: same lock
    if profile.image.python == "3.11":
        assert find_lock(resolve_profile(name, ["air-gapped"]).profile) is not None


def test_lock_key_and_digest_follow_inputs() -> None:
    base = resolve_profile("x86-cpu").profile
    extra = resolve_profile("x86-cpu", sets=["packages.pip=[requests==2.32.3]"]).profile
    arm = resolve_profile("arm64-cpu").profile
    assert lock_key(base) == "amd64-py3.11-onnxruntime-1.20.1"
    assert lock_key(extra).startswith("amd64-py3.11-onnxruntime-1.20.1-pip")
    assert len({input_digest(base), input_digest(extra), input_digest(arm)}) == 3


# run settings: every one of these must leave the image (tag, content hash, Dockerfile) as it is
RUN_SETTINGS = [
    ["benchmark.settings.min_duration_ms=60000"],
    ["benchmark.settings.Server.min_query_count=2048"],
    ["benchmark.scenarios=[Server,Offline]"],
    ["benchmark.modes=[performance]"],
    ["benchmark.options={threads: 1, Server: {max_new_tokens: 2}}"],
    ["env.FOO=bar", "env.OMP_NUM_THREADS=8"],
    ["resources.limits.cpu=4"],
    ["job.deadline_seconds=60"],
    ["scheduling.node_selector={kubernetes.io/arch: amd64, pool: bench}"],
    ["results.size=5Gi"],
]


def test_content_hash_tracks_inputs() -> None:
    resolved = resolve_profile("x86-cpu", ["air-gapped"])
    lock = find_lock(resolved.profile)
    assert lock is not None
    wheel = b"harness-1"
    h1 = content_hash(resolved, lock, wheel)
    assert content_hash(resolved, lock, wheel) == h1
    assert content_hash(resolved, lock, b"harness-2") != h1  # harness code
    name = image_name(resolved)
    assert name.repository == "mlrepro/bench" and name.tag.startswith("x86-cpu-") and len(name.tag) == 8 + 12
    assert name.build_args() == {"MLREPRO_CONTENT_HASH": name.content_hash,
                                 "MLREPRO_IMAGE_INPUTS": name.inputs.label() if name.inputs else ""}
    assert re.fullmatch(r"dockerfile=[0-9a-f]{12},build-helper=[0-9a-f]{12},harness=[0-9a-f]{12},lock=[0-9a-f]{12}",
                        name.build_args()["MLREPRO_IMAGE_INPUTS"])
    fixed = image_name(resolve_profile("x86-cpu", sets=["image.tag_policy=fixed", "image.tag=v1",
                                                        "image.registry=127.0.0.1:5001"]))
    assert fixed.ref == "127.0.0.1:5001/mlrepro/bench:v1"


@pytest.mark.parametrize("sets", RUN_SETTINGS, ids=[s[0].split("=")[0] for s in RUN_SETTINGS])
def test_run_settings_are_not_image_inputs(sets: list[str]) -> None:
    from mlrepro.render.dockerfile import render_dockerfile

    base = resolve_profile("x86-cpu", ["air-gapped"])
    other = resolve_profile("x86-cpu", ["air-gapped", "quick"], sets)
    assert other.hash != base.hash  # a different profile...
    assert image_name(other) == image_name(base)  # ...the same image
    assert render_dockerfile(other) == render_dockerfile(base)


@pytest.mark.parametrize("sets", [["packages.apt=[curl]"], ["image.base=debian:bookworm-slim"],
                                  ["image.builder_base=debian:bookworm"], ["image.user_uid=10002"],
                                  ['image.python="3.12"']], ids=lambda s: s[0].split("=")[0])
def test_image_inputs_change_the_image(sets: list[str]) -> None:
    base = resolve_profile("x86-cpu", ["air-gapped"])
    lock = find_lock(base.profile)
    assert lock is not None
    # the same lock: the Dockerfile alone tells them apart
    assert content_hash(resolve_profile("x86-cpu", ["air-gapped"], sets), lock, b"w") != content_hash(base, lock, b"w")


def test_the_lock_is_an_image_input() -> None:
    """pip packages and the framework reach the image through the lock (its key and input digest follow
    them: test_lock_key_and_digest_follow_inputs): another lock text is another image."""
    from dataclasses import replace

    resolved = resolve_profile("x86-cpu", ["air-gapped"])
    lock = find_lock(resolved.profile)
    assert lock is not None
    other = replace(lock, text=lock.text.replace("numpy==", "numpy===", 1))
    assert content_hash(resolved, other, b"w") != content_hash(resolved, lock, b"w")


def test_build_helper_is_an_image_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mlrepro import resources

    resolved = resolve_profile("x86-cpu", ["air-gapped"])
    lock = find_lock(resolved.profile)
    assert lock is not None
    before = content_hash(resolved, lock, b"w")
    fake = tmp_path / "images"
    shutil.copytree(images_dir(), fake)
    (fake / "build_helper.py").write_text((fake / "build_helper.py").read_text() + "\n# changed\n")
    monkeypatch.setattr(resources, "images_dir", lambda: fake)
    assert content_hash(resolved, lock, b"w") != before


def test_stream_parser() -> None:
    p = BuildStreamParser()
    events = []
    for obj in [{"stream": "Step 1/3 : FROM base AS builder"}, {"stream": "\n"}, {"stream": " ---> abc123def456\n"},
                {"stream": "Step 2/3 : RUN make\n ---> Using cache\n ---> 0123456789ab\n"},
                {"stream": "Step 3/3 : RUN apt-get install -y nope\n"}, {"stream": " ---> Running in 5b3c\n"},
                {"stream": "E: Unable to locate"}, {"stream": " package nope\n"},
                {"errorDetail": {"code": 100, "message": "The command '/bin/sh -c apt-get' returned a non-zero code: 100"},
                 "error": "The command ..."}]:
        events += p.feed(obj)
    kinds = [type(e) for e in events]
    assert kinds == [StepStarted, StepFinished, StepStarted, StepFinished, StepStarted, StepOutput, BuildFailed]
    assert events[3].cached and not events[1].cached
    failure = events[-1]
    assert isinstance(failure, BuildFailed) and failure.step == 3 and failure.instruction == "RUN apt-get install -y nope"
    assert failure.tail == ("E: Unable to locate package nope",)
    ok = BuildStreamParser()
    assert isinstance(ok.feed({"aux": {"ID": "sha256:" + "a" * 64}})[0], ImageBuilt)


def test_build_helper_adds_hashes_of_compiled_wheels(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK)
    house, out = tmp_path / "wheels", tmp_path / "out"
    house.mkdir(), out.mkdir()
    (house / "mlcommons_loadgen-6.0.17.tar.gz").write_bytes(b"sdist")
    (out / "mlcommons_loadgen-6.0.17-cp311-cp311-linux_aarch64.whl").write_bytes(b"compiled")
    helper = images_dir() / "build_helper.py"
    subprocess.run([sys.executable, str(helper), "add-hashes", str(lock), str(house), str(out)], check=True,
                   capture_output=True)
    new = parse_lock((out / "requirements.lock").read_text())
    assert hashlib.sha256(b"compiled").hexdigest() in new["mlcommons-loadgen"].hashes
    built = json.loads((out / "built.json").read_text())
    assert built[0]["sdist_sha256"] == hashlib.sha256(b"sdist").hexdigest()
    (out / "evil-1.0-py3-none-any.whl").write_bytes(b"x")  # not in the lock: refused
    proc = subprocess.run([sys.executable, str(helper), "add-hashes", str(lock), str(house), str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "not in the lock" in proc.stderr
    proc = subprocess.run([sys.executable, str(helper), "check-python", "2.7"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "image.python" in proc.stderr


def test_every_builtin_renders() -> None:
    from mlrepro.render.dockerfile import render_dockerfile

    for name in builtin_profile_names():
        assert render_dockerfile(resolve_profile(name)).startswith("# mlrepro image for profile")


def test_push_progress_is_one_line_per_layer_state() -> None:
    from rich.console import Console

    from mlrepro.image.progress import PushRenderer
    from mlrepro.image.registry import PushEvent

    stream = [{"status": "The push refers to repository [127.0.0.1:5000/bench/mlrepro/bench]"},
              {"status": "Preparing", "progressDetail": {}, "id": "aaaaaaaaaaaa"},
              {"status": "Preparing", "progressDetail": {}, "id": "bbbbbbbbbbbb"},
              {"status": "Waiting", "progressDetail": {}, "id": "aaaaaaaaaaaa"}]
    stream += [{"status": "Pushing", "progressDetail": {"current": n, "total": 5_000_000}, "id": "aaaaaaaaaaaa",
                "progress": "[=>   ]"} for n in range(0, 5_000_001, 500_000)]
    stream += [{"status": "Layer already exists", "progressDetail": {}, "id": "bbbbbbbbbbbb"},
               {"status": "Pushed", "progressDetail": {}, "id": "aaaaaaaaaaaa"},
               {"status": "x86-cpu-0123: digest: sha256:" + "c" * 64 + " size: 1234", "progressDetail": {}},
               {"progressDetail": {}, "aux": {"Tag": "x86-cpu-0123", "Digest": "sha256:" + "c" * 64, "Size": 1234}}]
    console = Console(record=True, width=200)
    render = PushRenderer(console=console)
    events = [PushEvent.from_json(obj) for obj in stream]
    for event in events:
        render(event)
    lines = console.export_text().splitlines()
    assert lines[0].startswith("The push refers to repository")
    assert [ln.split()[:2] for ln in lines[1:]] == [["aaaaaaaaaaaa", "Preparing"], ["bbbbbbbbbbbb", "Preparing"],
                                                     ["aaaaaaaaaaaa", "Waiting"], ["aaaaaaaaaaaa", "Pushing"],
                                                     ["bbbbbbbbbbbb", "Layer"], ["aaaaaaaaaaaa", "Pushed"]]
    assert "5.0 MB" in lines[4] and "5.0 MB" in lines[6]
    pushing = [e for e in events if e.layer_state == "Pushing"]
    assert pushing[-1].current == pushing[-1].total == 5_000_000
    assert events[-1].digest == "sha256:" + "c" * 64 and events[-2].layer_state is None


def test_prune_counts_each_layer_once_in_removal_order() -> None:
    """What the engine deletes with an image: the untagged parents no other image (nor container) uses; a
    parent shared by two leftovers goes with the second, so per-image figures add up to the total."""
    from mlrepro.image.leftovers import _closure, _own_bytes

    every = {
        "base": {"Id": "base", "ParentId": "", "Size": 100, "RepoTags": ["debian:12"]},
        "apt": {"Id": "apt", "ParentId": "base", "Size": 150, "RepoTags": None},
        "wheels": {"Id": "wheels", "ParentId": "apt", "Size": 200, "RepoTags": ["<none>:<none>"]},
        "label1": {"Id": "label1", "ParentId": "wheels", "Size": 200, "RepoTags": None},
        "label2": {"Id": "label2", "ParentId": "wheels", "Size": 200, "RepoTags": None},
        "other": {"Id": "other", "ParentId": "apt", "Size": 170, "RepoTags": ["mine:1"]},
        "used": {"Id": "used", "ParentId": "base", "Size": 130, "RepoTags": None},
        "leaf": {"Id": "leaf", "ParentId": "used", "Size": 135, "RepoTags": None},
    }
    groups = _closure(["label2", "label1", "leaf"], every, in_use={"used"})
    # label2 first: wheels still has label1 as a child; label1 takes wheels, not apt (a tagged image needs it)
    assert groups == {"label2": ["label2"], "label1": ["label1", "wheels"], "leaf": ["leaf"]}
    assert [_own_bytes(g, every) for g in groups.values()] == [0, 50, 5]
    assert _closure(["label1", "wheels"], every, set()) == {"label1": ["label1"], "wheels": []}  # label2 needs it
    assert _closure(["label2", "label1", "wheels"], every, set())["wheels"] == []  # went with label1
