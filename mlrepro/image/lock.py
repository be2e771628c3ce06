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

HARNESS_REQUIREMENTS: tuple[str, ...] = ("numpy>=1.26", "mlcommons-loadgen>=5.0")
"""What the harness imports besides the backend (kept in step with pyproject's dependencies)."""
MANYLINUX = "manylinux_2_28"
UV_PLATFORMS = {"linux/amd64": f"x86_64-{MANYLINUX}", "linux/arm64": f"aarch64-{MANYLINUX}"}
LOCK_FORMAT = 1
_INPUT_LINE = re.compile(r"^# mlrepro-lock-input: ([0-9a-f]{64})$", re.MULTILINE)
_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


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

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def packages(self) -> dict[str, LockedPackage]:
        return parse_lock(self.text)


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
    image``, a GPU build that is not on PyPI) and ``packages.pip``."""
    fw = profile.framework
    backend = () if fw.source == "image" else (f"{fw.backend}=={fw.version}" if fw.version else fw.backend,)
    return HARNESS_REQUIREMENTS + backend + tuple(profile.packages.pip)


def lock_key(profile: Profile) -> str:
    """File name stem: ``amd64-py3.11-onnxruntime-1.20.1`` (+ ``-from-image`` when the base image has the
    framework, + ``-pip<hash8>`` with extra pip packages)."""
    fw = profile.framework
    key = f"{profile.arch}-py{profile.image.python}-{fw.backend}-{fw.version or 'latest'}"
    if fw.source == "image":
        key += "-from-image"        # the lock holds what mlrepro adds to the image's framework
    if profile.packages.pip:
        key += "-pip" + hashlib.sha256("\n".join(sorted(profile.packages.pip)).encode()).hexdigest()[:8]
    return key


def input_digest(profile: Profile) -> str:
    doc = {"format": LOCK_FORMAT, "inputs": list(lock_inputs(profile)), "platform": UV_PLATFORMS[profile.platform],
           "python": profile.image.python}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


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
    header = (f"# mlrepro lock: {profile.platform}, CPython {profile.image.python}, {MANYLINUX}; inputs: "
              f"{', '.join(inputs)}\n"
              + (f"# {profile.framework.backend} {profile.framework.version or ''} is the base image's own build "
                 f"(framework.source: image; GPU builds are not on PyPI): not in this lock.\n"
                 if profile.framework.source == "image" else "")
              + f"# Regenerate: python -m mlrepro.image.lock (make lock). Do not edit.\n"
              f"# mlrepro-lock-input: {input_digest(profile)}\n")
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
                "--custom-compile-command", "python -m mlrepro.image.lock",
                str(req_in), "-o", str(out)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp, check=False)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            raise LockError(f"cannot lock {', '.join(inputs)} for {profile.platform} / Python {profile.image.python}: "
                            f"{one_line(' '.join(lines[-4:]) or 'uv failed')}")
        body = out.read_text(encoding="utf-8").replace(str(req_in), "requirements.in")
    text = header + body
    tmp_dest = dest.with_name(dest.name + ".tmp")
    tmp_dest.write_text(text, encoding="utf-8")
    os.replace(tmp_dest, dest)
    return _lock(profile, dest, text, "compiled")


def _lock(profile: Profile, path: Path, text: str, source: str) -> Lock:
    return Lock(key=lock_key(profile), path=path, text=text, platform=profile.platform, python=profile.image.python,
                inputs=lock_inputs(profile), input_digest=input_digest(profile), source=source)


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
        except MlreproError as exc:
            print(f"lock: {name}: error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
