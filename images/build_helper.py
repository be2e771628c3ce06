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


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "check-python":
        return check_python(argv[1])
    if len(argv) == 4 and argv[0] == "add-hashes":
        return add_hashes(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    print("usage: build_helper.py check-python X.Y | add-hashes LOCK WHEELHOUSE OUT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
