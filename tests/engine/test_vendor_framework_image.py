"""``framework.source: image`` on a real engine: the mechanism the amd-gpu and intel-gpu images use, built FROM a
local stand-in for the vendor's image (rocm/pytorch and Intel's XPU image cannot be pulled here).

The stand-in is the local Debian base with python3 and a ``torch`` package that reports a ROCm build
(``torch.version.hip``), in the interpreter's own dist-packages as the vendors' images have it. The build must
give /opt/venv the base's torch behind the lock's numpy and LoadGen, and stop with one line when the base has no
torch or another build. ~3 min cold on 2 cores (two apt layers, two offline wheel installs).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from mlrepro.image.builder import BuildStepError, build_image
from mlrepro.profiles.loader import resolve_profile

pytestmark = pytest.mark.docker

STANDIN = "mlrepro-test/rocm-standin:{variant}"
_TORCH = {"hip": 'class version:\n    hip = "7.2.26015"\n    cuda = None\n',
          "cpu": 'class version:\n    hip = None\n    cuda = None\n'}


def _standin(client, base_image: str, variant: str) -> str:
    """A base with python3 (+ venv) and, unless ``variant`` is ``none``, a torch 2.9.1 of that build."""
    import tarfile

    tag = STANDIN.format(variant=variant)
    files = {"Dockerfile": "\n".join([
        f"FROM {base_image}",
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        "python3 python3-venv && rm -rf /var/lib/apt/lists/*",
        *(["COPY torch /usr/lib/python3/dist-packages/torch"] if variant != "none" else [])]) + "\n"}
    if variant != "none":
        files["torch/__init__.py"] = '__version__ = "2.9.1+rocm7.2.0.git7e1940d4"\n' + _TORCH[variant]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    client.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True, forcerm=True)
    return tag


def _profile(tmp_path: Path, base: str) -> Path:
    path = tmp_path / "standin.yaml"
    path.write_text(f"extends: amd-gpu\nname: rocm-standin\nimage:\n  base: {base}\n  python: \"3.11\"\n",
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cleanup(docker_client):
    made: list[str] = []
    yield made
    for ref in made:
        try:
            docker_client.images.remove(ref, force=True)
        except Exception:  # noqa: BLE001 - best effort: only what this test made
            pass


def test_the_venv_gets_the_base_images_torch_and_the_locks_packages(docker_client, base_image, tmp_path, cleanup):
    base = _standin(docker_client, base_image, "hip")
    cleanup.append(base)
    resolved = resolve_profile(str(_profile(tmp_path, base)))
    assert resolved.profile.accelerator.vendor == "amd" and resolved.profile.framework.source == "image"
    result = build_image(resolved, client=docker_client)
    cleanup.append(result.ref)
    out = docker_client.containers.run(
        result.ref, ["-c", "import numpy, torch, mlperf_loadgen; print(torch.__version__, torch.version.hip, "
                           "numpy.__file__)"], entrypoint="/opt/venv/bin/python", remove=True, user="10001")
    version, hip, numpy_file = out.decode().split()
    assert (version, hip) == ("2.9.1+rocm7.2.0.git7e1940d4", "7.2.26015")
    assert numpy_file.startswith("/opt/venv/")            # the lock's numpy, ahead of the base's packages


@pytest.mark.parametrize("variant,message", [
    ("none", "build_helper: the base image has no torch"),
    ("cpu", "build_helper: torch 2.9.1+rocm7.2.0.git7e1940d4 in the base image is not a hip build"),
])
def test_a_base_without_the_vendors_torch_build_fails_the_build(docker_client, base_image, tmp_path, cleanup,
                                                                variant, message):
    base = _standin(docker_client, base_image, variant)
    cleanup.append(base)
    with pytest.raises(BuildStepError) as err:
        build_image(resolve_profile(str(_profile(tmp_path, base))), client=docker_client)
    assert "check-framework torch 2.9.1 hip" in str(err.value)          # the step that stopped it
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in err.value.tail]    # stderr comes colored
    assert message in "\n".join(lines)                                   # and why, in the build's last lines
