#!/usr/bin/env python3
"""Fetch the report's browser libraries from the npm registry into mlrepro/report/assets/ (package data).

The HTML report (``mlrepro report -o``) inlines these files so that it works offline. Each package is pinned
below; ``npm pack`` downloads it and checks the registry's sha512 integrity, this script checks it once more
against the pin, copies the built file and the package's licence, and writes ``assets/manifest.json`` (package,
version, licence, file, sha256). ``tests/report/test_assets.py`` checks the shipped files against that manifest.

Usage: python scripts/vendor_report_assets.py      (needs npm and the npm registry; run after changing a pin)
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "mlrepro" / "report" / "assets"

#: (package, version, sha512 integrity from the registry, files in the tarball to ship, licence, licence file)
PINS = (
    ("vega", "6.4.0",
     "sha512-rHXCq2LpEWCLMjXBEj7hocY9G0/i5TGYRayGGSj06VTF4+l2IG2Z7oeZKCjWbUh/7hTE/mVhbaOPB72wCElh6g==",
     ("build/vega.min.js",), "BSD-3-Clause", "LICENSE"),
    ("vega-lite", "6.5.0",
     "sha512-fMXF6s0MrIg0UTWnLIfeFtgSLzVhyzSKobzGrh5rhS+mL6FOYFG3m7ouJ4U23gj65EK+gl9FIIT5w7wLNaAzkA==",
     ("build/vega-lite.min.js",), "BSD-3-Clause", "LICENSE"),
    ("vega-embed", "7.3.0",
     "sha512-wQ8s5GaSzqoKgmRfbRolgBrjE2CP7ZKHXqH7NijxMqPjpdWxSs4Dn8tvp9g0giQvh2cK+3p56sxjWWM0wNngGw==",
     ("build/vega-embed.min.js",), "BSD-3-Clause", "LICENSE"),
    ("tablesort", "5.7.1",
     "sha512-wm+xSponmlN1spiuwGlrvNGoG8fEso+y86OOjS+Pl0Qsje/cOVSfUvELcXILWc8/sgEdY/NGMPo0qhFGyYKnwQ==",
     ("dist/tablesort.min.js", "dist/sorts/tablesort.number.min.js"), "MIT", "LICENCE"),
)


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _pack(name: str, version: str, workdir: Path) -> Path:
    out = subprocess.run(["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(workdir)],
                         capture_output=True, text=True, check=False, cwd=workdir)
    if out.returncode != 0:
        sys.exit(f"npm pack {name}@{version} failed: {out.stderr.strip().splitlines()[-1:]}")
    info = json.loads(out.stdout)[0]
    return workdir / info["filename"]


def main() -> int:
    if shutil.which("npm") is None:
        sys.exit("npm is not installed (apt-get install npm)")
    ASSETS.mkdir(parents=True, exist_ok=True)
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, version, integrity, files, licence, licence_file in PINS:
            tgz = _pack(name, version, work)
            got = _integrity(tgz.read_bytes())
            if got != integrity:
                sys.exit(f"{name}@{version}: integrity {got} is not the pinned {integrity}")
            with tarfile.open(tgz) as tar:
                members = {m.name: m for m in tar.getmembers() if m.isfile()}
                for rel in (*files, licence_file):
                    member = members.get(f"package/{rel}")
                    if member is None:
                        sys.exit(f"{name}@{version}: no {rel} in the package")
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    dest = f"{name}.LICENSE.txt" if rel == licence_file else Path(rel).name
                    (ASSETS / dest).write_bytes(data)
                    manifest.append({"package": name, "version": version, "licence": licence, "integrity": got,
                                     "file": dest, "sha256": hashlib.sha256(data).hexdigest()})
    (ASSETS / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for entry in manifest:
        print(f"{entry['package']}@{entry['version']} ({entry['licence']}): {entry['file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
