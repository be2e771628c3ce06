"""The host-side wheelhouse: every distribution of a lock, for the image's platform, fetched by the host.

The image build then runs pip with ``--no-index``: no network inside the build and no CA bundle, even
behind a TLS-intercepting proxy (the host's pip already trusts it).

Cache (``$MLREPRO_CACHE_DIR/wheels/<platform>-cp<XY>/``, default ``~/.cache/mlrepro``; never required)::

    pypi/               files from the index: ``pip download --only-binary=:all: --platform manylinux_2_28_<arch>
                        --python-version X.Y --implementation cp --require-hashes``; for a package without a
                        wheel for the platform (LoadGen on aarch64) its sdist, plus the sdist's build requirements
    built/              wheels the builder stage compiled from a locked sdist, copied out of the builder stage
    built/index.json    [{wheel, sha256, name, version, sdist, sdist_sha256}]

A cached compiled wheel is used when its source sdist's hash is in the lock; its own hash is then added
to the context's lock (``extra_hashes``), so ``--require-hashes`` still holds and nothing is compiled.
Files already in the cache whose hash the lock accepts are used without asking the index.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlrepro.image.context import WHEELHOUSE_MANIFEST
from mlrepro.image.errors import BuildError, one_line
from mlrepro.image.lock import Lock, LockedPackage, cache_dir, normalize, reachable

_ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
GLIBC_MINOR = 28
"""Target manylinux_2_28 (glibc >= 2.28: Debian 10+, Ubuntu 20.04+, RHEL 8+), like the lock."""


def pip_platforms(platform: str) -> list[str]:
    """``--platform`` values for pip, newest first: pip does not expand ``manylinux_2_28_<arch>`` to the
    older manylinux tags it implies, so every one is listed (``manylinux2014`` = ``manylinux_2_17``)."""
    arch = _ARCH[platform]
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 16, -1)] + [f"manylinux2014_{arch}"]
    if arch == "x86_64":
        tags += ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64"]
    return tags
KNOWN_NO_WHEEL = {("mlcommons-loadgen", "linux/arm64")}
"""Skip the wheel attempt for these (it fails anyway); anything else falls back to its sdist on failure."""


class WheelhouseError(BuildError):
    """The wheelhouse could not be completed (index unreachable, a file with an unexpected hash)."""


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    platform: str
    python: str
    files: tuple[str, ...]
    sdists: tuple[str, ...]
    """Locked sdists the builder stage will compile."""
    local_wheels: tuple[str, ...]
    """Wheels compiled by an earlier build on this host (from ``built/``)."""
    build_requirements: tuple[str, ...]
    extra_hashes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    downloaded: int = 0
    """Files fetched from the index this time (0: everything came from the cache)."""


def platform_cache(platform: str, python: str) -> Path:
    return cache_dir() / "wheels" / f"{platform.replace('/', '-')}-cp{python.replace('.', '')}"


def prepare_wheelhouse(lock: Lock, dest: Path, *, log: Callable[[str], None] | None = None) -> Wheelhouse:
    """Fill ``dest`` (created) with every distribution ``lock`` needs for its platform and write its manifest.

    Raises WheelhouseError when something cannot be fetched (then build without a wheelhouse instead).
    """
    say = log or (lambda _m: None)
    cache = platform_cache(lock.platform, lock.python)
    pypi, built = cache / "pypi", cache / "built"
    pypi.mkdir(parents=True, exist_ok=True)
    built.mkdir(parents=True, exist_ok=True)
    packages = lock.packages()
    with _locked(cache / ".lock"):
        chosen, missing = _from_cache(packages, pypi, built)
        downloaded = 0
        if missing:
            say(f"downloading {len(missing)} of {len(packages)} locked distributions for {lock.platform} "
                f"(Python {lock.python})")
            before = set(os.listdir(pypi))
            _download(missing, lock, pypi)
            downloaded = len(set(os.listdir(pypi)) - before)
            chosen, missing = _from_cache(packages, pypi, built)
            if missing:
                raise WheelhouseError(f"no file with a locked hash for {', '.join(sorted(missing))} "
                                      f"({lock.platform}, Python {lock.python})")
        sdists = sorted(name for name, (kind, _) in chosen.items() if kind == "sdist")
        build_reqs: list[Path] = []
        if sdists:
            requires = sorted({r for n in sdists for r in _build_requires(chosen[n][1])})
            build_reqs = _build_requirement_files(requires, lock, pypi, say)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    extra: dict[str, tuple[str, ...]] = {}
    local: list[str] = []
    index = _built_index(built)
    for name, (kind, path) in sorted(chosen.items()):
        _link_or_copy(path, dest / path.name)
        files.append(path.name)
        if kind == "built":
            local.append(path.name)
            extra[name] = (index[path.name]["sha256"],)
    for path in build_reqs:
        if path.name not in files:
            _link_or_copy(path, dest / path.name)
            files.append(path.name)
    house = Wheelhouse(path=dest, platform=lock.platform, python=lock.python, files=tuple(sorted(files)),
                       sdists=tuple(chosen[n][1].name for n in sdists), local_wheels=tuple(local),
                       build_requirements=tuple(p.name for p in build_reqs), extra_hashes=extra,
                       downloaded=downloaded)
    manifest = {"complete": True, "platform": lock.platform, "python": lock.python, "lock": lock.key,
                "files": list(house.files), "sdists": list(house.sdists), "local_wheels": list(house.local_wheels),
                "build_requirements": list(house.build_requirements),
                "extra_hashes": {k: list(v) for k, v in extra.items()}}
    (dest / WHEELHOUSE_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return house


def store_built_wheels(platform: str, python: str, wheels: dict[str, bytes], records: list[dict[str, str]]) -> list[Path]:
    """Keep wheels the builder stage compiled (``records`` from its ``built.json``) in the host cache."""
    built = platform_cache(platform, python) / "built"
    built.mkdir(parents=True, exist_ok=True)
    stored = []
    with _locked(built.parent / ".lock"):
        index = _built_index(built)
        for rec in records:
            data = wheels.get(rec["wheel"])
            if data is None or hashlib.sha256(data).hexdigest() != rec["sha256"] or not rec.get("sdist_sha256"):
                continue
            target = built / rec["wheel"]
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            index[rec["wheel"]] = {k: rec[k] for k in ("wheel", "sha256", "name", "version", "sdist", "sdist_sha256")}
            stored.append(target)
        tmp_index = built / "index.json.tmp"
        tmp_index.write_text(json.dumps(sorted(index.values(), key=lambda r: r["wheel"]), indent=2) + "\n")
        os.replace(tmp_index, built / "index.json")
    return stored


# --- cache lookup --------------------------------------------------------------------------------

def _from_cache(packages: dict[str, LockedPackage], pypi: Path, built: Path
                ) -> tuple[dict[str, tuple[str, Path]], dict[str, LockedPackage]]:
    """name -> ("wheel" | "built" | "sdist", file) for what the cache can serve; the rest is missing."""
    hashes = _hash_index(pypi)
    index = _built_index(built)
    chosen: dict[str, tuple[str, Path]] = {}
    for name, pkg in packages.items():
        wheel = sdist = None
        for fname, digest in hashes.items():
            if digest in pkg.hashes and _dist_name(fname) == name:
                if fname.endswith(".whl"):
                    wheel = pypi / fname
                else:
                    sdist = pypi / fname
        if wheel is not None:
            chosen[name] = ("wheel", wheel)
            continue
        local = next((r for r in index.values() if r["name"] == name and r["version"] == pkg.version
                      and r["sdist_sha256"] in pkg.hashes and (built / r["wheel"]).is_file()), None)
        if local is not None:
            chosen[name] = ("built", built / local["wheel"])
        elif sdist is not None:
            chosen[name] = ("sdist", sdist)
    missing = {n: p for n, p in packages.items() if n not in chosen}
    return chosen, missing


def _hash_index(folder: Path) -> dict[str, str]:
    """file name -> sha256 of the distribution files in ``folder`` (memoized in ``.hashes.json``)."""
    memo_path = folder / ".hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    result, changed = {}, False
    for entry in os.scandir(folder):
        if not entry.is_file() or not entry.name.endswith((".whl", ".tar.gz", ".zip")):
            continue
        st = entry.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
        cached = memo.get(entry.name)
        if cached and cached[0] == stamp:
            result[entry.name] = cached[1]
            continue
        digest = _sha256(Path(entry.path))
        memo[entry.name] = [stamp, digest]
        result[entry.name] = digest
        changed = True
    if changed:
        tmp = memo_path.with_name(".hashes.json.tmp")
        tmp.write_text(json.dumps({k: memo[k] for k in sorted(result)}))
        os.replace(tmp, memo_path)
    return result


def _built_index(built: Path) -> dict[str, dict[str, str]]:
    try:
        return {r["wheel"]: r for r in json.loads((built / "index.json").read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _dist_name(filename: str) -> str | None:
    if filename.endswith(".whl"):
        return normalize(filename.split("-", 1)[0])
    for ext in (".tar.gz", ".zip"):
        if filename.endswith(ext):
            name = filename[: -len(ext)].rpartition("-")[0]
            return normalize(name) if name else None
    return None


# --- downloads -----------------------------------------------------------------------------------

def _req_line(pkg: LockedPackage) -> str:
    return f"{pkg.name}=={pkg.version} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pkg.hashes))


def _pip(args: list[str], req_lines: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="mlrepro-req-", delete=False) as fh:
        fh.write("\n".join(req_lines) + "\n")
        req = fh.name
    try:
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
                "--disable-pip-version-check", "-r", req, *args]
        return subprocess.run(argv, capture_output=True, text=True, check=False)
    finally:
        os.unlink(req)


def _index_args(lock: Lock) -> list[str]:
    """``--extra-index-url`` for each index the lock names that answers here; pip's own configuration (its
    find-links: a local mirror) serves the files of one that does not, checked against the lock's hashes."""
    return [arg for url in lock.index_urls if not reachable(url) for arg in ("--extra-index-url", url)]


def _binary_args(lock: Lock, dest: Path) -> list[str]:
    platforms = [arg for tag in pip_platforms(lock.platform) for arg in ("--platform", tag)]
    return ["--only-binary=:all:", *platforms, "--python-version", lock.python, "--implementation", "cp",
            *_index_args(lock), "-d", str(dest)]


def _download(missing: dict[str, LockedPackage], lock: Lock, dest: Path) -> None:
    sources = {n for n in missing if (n, lock.platform) in KNOWN_NO_WHEEL}
    binaries = [p for n, p in sorted(missing.items()) if n not in sources]
    if binaries and _pip(_binary_args(lock, dest), [_req_line(p) for p in binaries]).returncode != 0:
        for pkg in binaries:  # find the ones without a wheel for the platform, one by one
            if _pip(_binary_args(lock, dest), [_req_line(pkg)]).returncode != 0:
                sources.add(pkg.name)
    for name in sorted(sources):
        proc = _pip(["--no-binary=:all:", *_index_args(lock), "-d", str(dest)], [_req_line(missing[name])])
        if proc.returncode != 0:
            raise WheelhouseError(f"cannot download {name}=={missing[name].version} for {lock.platform} "
                                  f"(neither a wheel nor its sdist): {_tail(proc.stderr)}")


def _build_requires(sdist: Path) -> list[str]:
    """``[build-system] requires`` of an sdist (PEP 518), default setuptools + wheel."""
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        return ["setuptools>=40.8.0", "wheel"]
    try:
        with tarfile.open(sdist) as tar:
            member = next((m for m in tar.getmembers() if m.name.count("/") == 1
                           and m.name.endswith("/pyproject.toml")), None)
            if member is None:
                return ["setuptools>=40.8.0", "wheel"]
            data = tomllib.loads(tar.extractfile(member).read().decode())  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, ValueError):
        return ["setuptools>=40.8.0", "wheel"]
    return list(data.get("build-system", {}).get("requires", ["setuptools>=40.8.0", "wheel"]))


def _build_requirement_files(requires: list[str], lock: Lock, pypi: Path, say: Callable[[str], None]) -> list[Path]:
    """Wheels of the sdists' build requirements, fetched once per requirement set (not hash-locked: pip
    does not hash-check what it installs into a build-isolation environment)."""
    folder = pypi / "build-requires" / hashlib.sha256("\n".join(requires).encode()).hexdigest()[:16]
    done = folder / "complete.json"
    if done.is_file():
        return [folder / n for n in json.loads(done.read_text())]
    say(f"downloading the build requirements of the sdists: {', '.join(requires)}")
    tmp = Path(tempfile.mkdtemp(prefix="build-requires-", dir=pypi))
    try:
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                *_binary_args(lock, tmp), *requires]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise WheelhouseError(f"cannot download the build requirements {', '.join(requires)}: "
                                  f"{_tail(proc.stderr)}")
        names = sorted(n for n in os.listdir(tmp) if n.endswith(".whl"))
        (tmp / "complete.json").write_text(json.dumps(names))
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return [folder / n for n in names]


# --- helpers -------------------------------------------------------------------------------------

def _tail(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return one_line(" ".join(lines[-3:]) or "pip failed")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
