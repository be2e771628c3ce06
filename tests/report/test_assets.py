"""The vendored browser libraries are the pinned npm packages' files (scripts/vendor_report_assets.py), each
with its licence, and every one is inlined in the page."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

from mlrepro.report.html import ASSET_FILES

ASSETS = resources.files("mlrepro.report").joinpath("assets")


def test_files_match_the_manifest() -> None:
    manifest = json.loads(ASSETS.joinpath("manifest.json").read_text())
    assert {e["file"] for e in manifest} >= set(ASSET_FILES)
    for e in manifest:
        data = ASSETS.joinpath(e["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e["sha256"], e["file"]
        assert e["licence"] in ("BSD-3-Clause", "MIT")
    for package in {e["package"] for e in manifest}:
        assert ASSETS.joinpath(f"{package}.LICENSE.txt").is_file()
