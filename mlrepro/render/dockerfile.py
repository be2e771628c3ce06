"""Render the image's Dockerfile from a resolved profile (Jinja2 templates in ``images/``).

Stages (see ``images/Dockerfile.j2``)::

    builder  FROM image.builder_base   python3 (+ python3-dev, g++ when something must be compiled),
                                       ``pip wheel --require-hashes -r requirements.lock`` -> /wheels
    os       FROM image.base           runtime OS packages (python3 when python_install=apt, packages.apt),
                                       the unprivileged user (image.user_uid)
    deps     FROM os                   /opt/venv from the builder's wheels only (--no-index --require-hashes;
                                       --no-deps when packages.exclude leaves declared dependencies out);
                                       with ``framework.source: image`` the venv also sees the base image's
                                       framework (a vendor's torch build), checked for version and GPU build
    runtime  FROM os                   /opt/venv, then the harness wheel LAST, labels; USER uid, ENTRYPOINT

Layer order follows change frequency: OS packages -> Python dependencies (the lock) -> harness code, so
a harness change rebuilds two small layers. Compilers, the package index and a custom CA bundle exist
only in the builder stage; the runtime never sees them.

Only image inputs go in (see :mod:`mlrepro.image.tags`): the profile's ``env`` is a run setting and is set
in the container at run time (:func:`mlrepro.render.podspec.build_pod_spec`, which the Docker runner maps too),
never baked in as ``ENV``; nor is the profile's hash. The builder and deps stages end with labels
(``io.mlrepro.stage``, profile, platform, content hash, wheel source: ``images/partials/stage_labels.j2``)
because the classic builder leaves their images untagged; :mod:`mlrepro.image.leftovers` finds them by these
labels.

Two ways to get the wheels (:class:`DockerfileOptions` ``offline``):

* offline (``mlrepro build``, the default there): the host prepared a wheelhouse (``wheels/`` in the
  context, :mod:`mlrepro.image.wheelhouse`), pip runs with ``--no-index``. No network and **no CA bundle
  needed** -- the way to build behind a TLS-intercepting proxy or air-gapped.
* online (``mlrepro generate`` without a wheelhouse): ``wheels/`` holds only its manifest and pip
  downloads from the index inside the builder, still hash-checked against the lock. Behind a
  TLS-intercepting proxy give a CA bundle (``image.ca_bundle`` or ``--ca-bundle``): it is copied to
  ``ca-bundle.pem`` and used (PIP_CERT, SSL_CERT_FILE, REQUESTS_CA_BUNDLE) in the builder stage only.

Injection safety: autoescape is off (this is not HTML), but the environment's ``finalize`` rejects any
``{{ value }}`` that did not pass through one of the filters below, and each filter checks or escapes
its value for the place it goes (image reference, shell word, Dockerfile double-quoted string, number,
exec-form JSON). Free text (the description) is folded to one line. The rendered text is then parsed back
(:func:`instructions`) and must consist of known instructions only.
"""

from __future__ import annotations

import json
import re
import shlex
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mlrepro import __version__
from mlrepro.profiles.loader import ResolvedProfile
from mlrepro.profiles.model import _IMAGE_REF, Profile

if TYPE_CHECKING:  # pragma: no cover
    import jinja2

TEMPLATE = "Dockerfile.j2"
SOURCE_URL = "https://github.com/mlrepro/mlrepro"
HARNESS_DIST_DIR = "/opt/mlrepro/dist"
ENTRYPOINT = ("/opt/venv/bin/mlrepro-harness",)
CMD = ("--self-check",)
INSTRUCTIONS = frozenset({"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                          "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"})

# (package name, arch) pairs known to publish no wheel on PyPI: the builder then gets a compiler.
NO_WHEEL: frozenset[tuple[str, str]] = frozenset({("mlcommons-loadgen", "arm64")})

# Characters the Dockerfile parser (or a reader) could take as a line break, and every control character.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_WORD = re.compile(r"^[A-Za-z0-9_/][A-Za-z0-9_.:/=+@-]*$")
_IMAGE_REF_RE = re.compile(_IMAGE_REF)


class Safe(str):
    """A value that went through a filter of this module: the only thing ``finalize`` lets through."""


@dataclass(frozen=True)
class DockerfileOptions:
    offline: bool = False
    """pip in the builder uses only ``wheels/`` (``--no-index``); False lets it reach the package index."""
    ca_bundle: bool = False
    """The context holds ``ca-bundle.pem``; the builder stage trusts it."""
    toolchain: bool | None = None
    """Install python3-dev/g++ in the builder. None: only when a locked package has no wheel for the
    platform (:data:`NO_WHEEL`) -- e.g. LoadGen on arm64."""
    harness_wheel: str = f"mlrepro_harness-{__version__}-py3-none-any.whl"
    """File name of the harness wheel in ``harness/`` of the context."""
    source_url: str = SOURCE_URL


def wheel_source(options: DockerfileOptions) -> str:
    """Where the builder stage gets its wheels: ``wheelhouse`` (offline) or ``index``, ``+ca`` with a CA
    bundle. The value of the stage images' ``io.mlrepro.wheel-source`` label: builds that differ in it have
    different builder layers (one layer cache each), though the same content hash and the same image."""
    return ("wheelhouse" if options.offline else "index") + ("+ca" if options.ca_bundle else "")


def needs_toolchain(profile: Profile) -> bool:
    """True when the builder must compile something for this profile's platform."""
    return any(arch == profile.arch for _, arch in NO_WHEEL)


def render_dockerfile(resolved: ResolvedProfile, options: DockerfileOptions | None = None) -> str:
    """The Dockerfile text for ``resolved`` (image inputs only: no env, no run setting). Raises ValueError
    (via the filters) for a value a Dockerfile cannot carry that the profile schema let through."""
    options = options or DockerfileOptions()
    p = resolved.profile
    toolchain = needs_toolchain(p) if options.toolchain is None else options.toolchain
    python_apt = p.image.python_install == "apt"
    builder_apt = (["python3", "python3-venv"] if python_apt else []) + (
        (["python3-dev"] if python_apt else []) + ["g++"] if toolchain else [])
    if not _WORD.match(options.harness_wheel) or not options.harness_wheel.endswith(".whl"):
        raise ValueError(f"not a wheel file name: {options.harness_wheel!r}")
    context: dict[str, Any] = {
        "name": p.name,
        "platform": p.platform,
        "version": __version__,
        "backend": p.framework.backend,
        "python": p.image.python,
        "python_apt": python_apt,
        "toolchain": toolchain,
        "offline": options.offline,
        "ca_bundle": options.ca_bundle,
        "wheel_source": wheel_source(options),
        "builder_image": p.builder_image,
        "base_image": p.base_image,
        "builder_apt_packages": builder_apt,
        "runtime_apt_packages": (["python3"] if python_apt else []) + list(p.packages.apt),
        "venv_apt_packages": ["python3-venv"],
        "uid": p.image.user_uid,
        "title": f"mlrepro {p.name}",
        "description": one_line(p.description) or f"mlrepro benchmark image for profile {p.name}",
        "source_url": options.source_url,
        "harness_wheel_path": f"{HARNESS_DIST_DIR}/{options.harness_wheel}",
        "framework_from_image": p.framework.source == "image",
        "no_deps": bool(p.packages.exclude),
        "framework_name": p.framework.backend,
        "framework_version": p.framework.version or "-",
        "framework_build": _framework_build(p),
        "entrypoint": list(ENTRYPOINT),
        "cmd": list(CMD),
    }
    text = _environment().get_template(TEMPLATE).render(context)
    text = text.strip("\n") + "\n"
    instructions(text)  # structural self-check: raises if anything but known instructions came out
    return text


def _framework_build(profile: Profile) -> str:
    """The GPU build the base image's framework must be (vendors.VENDORS: cuda, hip, xpu); ``cpu`` without an
    accelerator."""
    row = profile.accelerator.vendor_row
    return row.torch_build if row is not None and profile.accelerator.enabled else "cpu"


# --- filters ---------------------------------------------------------------------------------------

def _no_breaks(value: str, what: str) -> str:
    bad = next((c for c in value if c in _LINE_BREAKS or unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise ValueError(f"{what} contains the control character {bad!r}")
    return value


def dq(value: object) -> Safe:
    """A Dockerfile double-quoted word (LABEL): ``\\``, ``"`` and ``$`` escaped; no line breaks."""
    text = _no_breaks(str(value), "a quoted Dockerfile value")
    return Safe('"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"')


def sh(value: object) -> Safe:
    """One shell word for a RUN line (apt package names): shell-quoted, no line breaks."""
    return Safe(shlex.quote(_no_breaks(str(value), "a shell word")))


def ref(value: object) -> Safe:
    """An image reference (FROM): must match the schema's strict pattern."""
    text = str(value)
    if not _IMAGE_REF_RE.match(text) or "{" in text:
        raise ValueError(f"not an image reference: {text!r}")
    return Safe(text)


def word(value: object) -> Safe:
    """A bare token (names, platform, versions, paths): letters, digits and ``_.:/=+@-`` only."""
    text = str(value)
    if not _WORD.match(text):
        raise ValueError(f"not a plain word: {text!r}")
    return Safe(text)


def num(value: object) -> Safe:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return Safe(str(value))


def exec_form(value: object) -> Safe:
    """A JSON array of strings (ENTRYPOINT/CMD exec form); JSON escapes keep it on one line."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"exec form needs a list of strings: {value!r}")
    return Safe(json.dumps(value, ensure_ascii=True))


def one_line(text: str) -> str:
    """Free text (a description) folded to one line: whitespace and control characters become spaces."""
    cleaned = "".join(" " if (c in _LINE_BREAKS or unicodedata.category(c) in ("Cc", "Cs")) else c for c in text)
    return " ".join(cleaned.split())


def _finalize(value: object) -> str:
    if not isinstance(value, Safe):
        raise TypeError(f"unfiltered value {value!r} in the Dockerfile template: pass it through a filter")
    return value


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    from mlrepro.resources import images_dir

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(images_dir())),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters.update(dq=dq, sh=sh, ref=ref, word=word, num=num, exec_form=exec_form)
    return env


# --- structure -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    keyword: str
    line: int
    """1-based line number of the instruction's first line."""
    text: str
    """The instruction with its continuation lines joined (backslash-newline removed)."""


def instructions(text: str) -> list[Instruction]:
    """Parse a Dockerfile the way the engine does (lines, ``#`` comments, ``\\`` continuations).

    Raises ValueError on anything that is not a known instruction, or on a stray line-break character.
    """
    bad = next((c for c in text if c in _LINE_BREAKS - {"\n"}), None)
    if bad is not None:
        raise ValueError(f"the Dockerfile contains the line-break character {bad!r}")
    result: list[Instruction] = []
    pending: list[str] | None = None
    start = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip()
        if pending is None:
            if not stripped or stripped.startswith("#"):
                continue
            keyword = stripped.split(None, 1)[0].upper()
            if keyword not in INSTRUCTIONS:
                raise ValueError(f"line {number}: {keyword!r} is not a Dockerfile instruction")
            pending, start = [], number
        elif stripped.startswith("#"):
            continue  # comment inside a continuation: the engine drops it
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        joined = " ".join(part.strip() for part in pending if part.strip())
        result.append(Instruction(joined.split(None, 1)[0].upper(), start, joined))
        pending = None
    if pending is not None:
        raise ValueError("the Dockerfile ends inside a continued instruction")
    return result
