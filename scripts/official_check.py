"""Run the official MLCommons submission checker on a tree, from a local mlcommons/inference git repository.

Development aid (not used by tests or CI: the checker is not on PyPI and needs the repository). It extracts
``tools/submission`` at the given commit into a temporary directory and runs
``python3 -m submission_checker.main --input TREE --version VERSION``, printing its error lines and its summary;
the exit code is the checker's (or 3 when it stops with a traceback). ``--json`` prints the verdict instead, in
the shape of the real fixtures' official-verdict.json (exit code, crashed, error lines with paths relative to the
tree, summary); the tests that compare mlrepro's check with the official checker run it that way.

    python scripts/official_check.py TREE [--version v6.1] [--repo /work/.mirror/mlcommons+inference/repo]
                                          [--commit b66003e] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_REPO = "/work/.mirror/mlcommons+inference/repo"
PREFIX = "tools/submission/submission_checker/"
#: error lines that only repeat others (left out of the verdict, as in the fixtures' official-verdict.json)
_ROLLUPS = ("Some ", "SUMMARY:")


def extract(repo: str, commit: str, dest: Path) -> Path:
    """``tools/submission/submission_checker`` of ``commit`` under ``dest`` (returns the folder to run from)."""
    names = subprocess.run(["git", "-C", repo, "ls-tree", "-r", "--name-only", commit, PREFIX],
                           capture_output=True, text=True, check=True).stdout.split()
    for name in names:
        data = subprocess.run(["git", "-C", repo, "show", f"{commit}:{name}"], capture_output=True,
                              check=True).stdout
        out = dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return dest / "tools" / "submission"


def verdict(tree: str, version: str, repo: str = DEFAULT_REPO, commit: str = "b66003e") -> dict[str, object]:
    """Run the official checker on ``tree``: {"checker", "version", "exit_code", "crashed", "errors", "summary"}
    (error lines with the tree's absolute path removed). Raises subprocess.CalledProcessError when ``repo`` lacks
    ``commit``."""
    root = str(Path(tree).resolve())
    with tempfile.TemporaryDirectory(prefix="mlperf-checker-") as tmp:
        cwd = extract(repo, commit, Path(tmp))
        proc = subprocess.run([sys.executable, "-m", "submission_checker.main", "--input", root, "--version",
                               version, "--csv", str(Path(tmp) / "summary.csv")], cwd=cwd, capture_output=True,
                              text=True, check=False)
    out = proc.stdout + proc.stderr
    errors, summary = [], ""
    for line in out.splitlines():
        text = re.sub(r"^\[[^\]]*\] ", "", line).replace(root + "/", "")
        if " ERROR]" in line and not text.startswith(_ROLLUPS):
            errors.append(text)
        elif text.startswith("Results="):
            summary = text
    crashed = "Traceback" in out
    if crashed:
        errors.append(out[out.index("Traceback"):].strip().splitlines()[-1])
    return {"checker": f"mlcommons/inference tools/submission @ {commit}", "version": version,
            "exit_code": proc.returncode, "crashed": crashed, "errors": errors, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree")
    ap.add_argument("--version", default="v6.1")
    ap.add_argument("--repo", default=DEFAULT_REPO)
    ap.add_argument("--commit", default="b66003e")
    ap.add_argument("--json", action="store_true", help="print the verdict as JSON")
    args = ap.parse_args(argv)
    result = verdict(args.tree, args.version, args.repo, args.commit)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for line in result["errors"]:   # type: ignore[union-attr]
            print(line)
        print(result["summary"])
    return 3 if result["crashed"] else int(result["exit_code"])   # type: ignore[call-overload]


if __name__ == "__main__":
    sys.exit(main())
