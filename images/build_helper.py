"""Runs inside the builder stage of the mlrepro image (standard library only, any Python 3.8+).

``check-python X.Y``
    Fail early, with a clear message, when the image's ``python3`` is not the version the lock was made for.

``add-hashes LOCK WHEELHOUSE OUT``
    ``pip wheel --require-hashes`` has verified every input against LOCK: wheels were copied as they are
    and sdists (their hashes are in LOCK) were compiled here. A compiled wheel has a new hash, so the
    runtime's ``pip install --require-hashes`` would refuse it: this command appends the hash of every wheel
    in OUT that LOCK does not know to its package's entry, writes ``OUT/requirements.lock`` and records the
    compiled wheels (with the sdist they came from) in ``OUT/built.json`` so ``mlrepro build`` can cache them
    on the host.

``venv-over-base DEST``
    (``framework.source: image``) Run by the base image's ``python3``: create the venv DEST and make the base's
    own packages (a vendor's torch build: rocm/pytorch, Intel's XPU images) visible in it through a ``.pth``
    file, behind the venv's packages. ``--system-site-packages`` is not enough: a base whose ``python3`` is
    itself a venv or conda env keeps its packages outside the interpreter's system site.

``check-framework NAME VERSION BUILD``
    Run by the venv's python: NAME (torch) imports, its version starts with VERSION (``-`` for any) and it is
    a BUILD build (``cuda``: ``torch.version.cuda``, ``hip``: ``torch.version.hip``, ``xpu``: ``torch.xpu``);
    else the build fails with one line naming the base image.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dist_name_version(filename: str) -> tuple[str, str] | None:
    """(normalized name, version) of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return (normalize(parts[0]), parts[1]) if len(parts) >= 5 else None
    for ext in (".tar.gz", ".zip"):
        if filename.endswith(ext):
            name, _, version = filename[: -len(ext)].rpartition("-")
            return (normalize(name), version) if name else None
    return None


def lock_entries(lines: list[str]) -> dict[str, tuple[int, str, set[str]]]:
    """normalized name -> (index of its ``name==version`` line, version, known hashes)."""
    entries: dict[str, tuple[int, str, set[str]]] = {}
    current = None
    for i, line in enumerate(lines):
        m = _REQ.match(line)
        if m:
            current = normalize(m.group(1))
            entries[current] = (i, m.group(2), set(_HASH.findall(line)))
        elif current and line.startswith((" ", "\t")):
            entries[current][2].update(_HASH.findall(line))
        else:
            current = None
    return entries


def add_hashes(lock: Path, wheelhouse: Path, out: Path) -> int:
    lines = lock.read_text(encoding="utf-8").splitlines()
    entries = lock_entries(lines)
    sdists = {}
    for f in sorted(wheelhouse.iterdir()) if wheelhouse.is_dir() else []:
        nv = dist_name_version(f.name)
        if nv and not f.name.endswith(".whl"):
            sdists[nv] = (f.name, sha256(f))
    inserts: dict[int, list[str]] = {}
    built = []
    for wheel in sorted(out.glob("*.whl")):
        nv = dist_name_version(wheel.name)
        if nv is None or nv[0] not in entries:
            print(f"build_helper: {wheel.name} is not in the lock", file=sys.stderr)
            return 1
        index, version, known = entries[nv[0]]
        digest = sha256(wheel)
        if digest in known:
            continue
        if version != nv[1]:
            print(f"build_helper: {wheel.name} is not version {version} of the lock", file=sys.stderr)
            return 1
        inserts.setdefault(index, []).append(f"    --hash=sha256:{digest} \\")
        sdist = sdists.get(nv)
        built.append({"wheel": wheel.name, "sha256": digest, "name": nv[0], "version": version,
                      "sdist": sdist[0] if sdist else None, "sdist_sha256": sdist[1] if sdist else None})
    result = []
    for i, line in enumerate(lines):
        result.append(line)
        if i in inserts:
            if not line.rstrip().endswith("\\"):
                result[-1] = line.rstrip() + " \\"
                inserts[i][-1] = inserts[i][-1][:-2]
            result.extend(inserts[i])
    (out / "requirements.lock").write_text("\n".join(result) + "\n", encoding="utf-8")
    (out / "built.json").write_text(json.dumps(built, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for item in built:
        print(f"build_helper: compiled {item['wheel']} from {item['sdist']}")
    return 0


def check_python(expected: str) -> int:
    actual = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if actual != expected:
        print(f"build_helper: python3 in this image is {actual}, but the profile (image.python) and its lock "
              f"are for {expected}: set image.python: \"{actual}\" or use another base", file=sys.stderr)
        return 1
    return 0


def venv_over_base(dest: str) -> int:
    import site
    import venv

    target = Path(dest)
    if Path(sys.prefix).resolve() == target.resolve():
        print(f"build_helper: the base image's python3 lives in {dest}, where the mlrepro venv goes: use a base "
              "whose framework is installed elsewhere", file=sys.stderr)
        return 1
    dirs = [p for p in [*site.getsitepackages(), *sys.path] if p.endswith(("site-packages", "dist-packages"))
            and Path(p).is_dir()]
    venv.create(target, with_pip=True)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    pth = target / "lib" / version / "site-packages" / "mlrepro-base-image.pth"
    pth.write_text("".join(f"{d}\n" for d in dict.fromkeys(dirs)), encoding="utf-8")
    print(f"build_helper: {dest} sees the base image's packages in {', '.join(dict.fromkeys(dirs)) or 'nothing'}")
    return 0


def check_framework(name: str, version: str, build: str) -> int:
    import importlib

    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        print(f"build_helper: the base image has no {name} ({exc}); framework.source 'image' needs a base image "
              f"that ships it", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a broken install in the base: one line, not a traceback
        print(f"build_helper: {name} in the base image fails to import: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    found = str(getattr(module, "__version__", "?"))
    if version != "-" and not (found == version or found.startswith((version + "+", version + "a", version + "."))):
        print(f"build_helper: the base image has {name} {found}, not {version} (framework.version)", file=sys.stderr)
        return 1
    builds = {"cpu": lambda m: True, "cuda": lambda m: getattr(m.version, "cuda", None), "hip": lambda m: getattr(m.version, "hip", None),
              "xpu": lambda m: getattr(m, "xpu", None)}
    if build not in builds or not builds[build](module):
        print(f"build_helper: {name} {found} in the base image is not a {build} build", file=sys.stderr)
        return 1
    print(f"build_helper: {name} {found} ({build}) from the base image")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "check-python":
        return check_python(argv[1])
    if len(argv) == 4 and argv[0] == "add-hashes":
        return add_hashes(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    if len(argv) == 2 and argv[0] == "venv-over-base":
        return venv_over_base(argv[1])
    if len(argv) == 4 and argv[0] == "check-framework":
        return check_framework(argv[1], argv[2], argv[3])
    print("usage: build_helper.py check-python X.Y | add-hashes LOCK WHEELHOUSE OUT | venv-over-base DEST | "
          "check-framework NAME VERSION BUILD", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
