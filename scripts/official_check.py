"""Run the official MLCommons submission checker on a tree, from a local mlcommons/inference git repository.

Development aid (not used by tests or CI: the checker is not on PyPI and needs the repository). It extracts
``tools/submission`` at the given commit into a temporary directory and runs
``python3 -m submission_checker.main --input TREE --version VERSION``, printing its error lines and its summary;
the exit code is the checker's (or 3 when it stops with a traceback).

    python scripts/official_check.py TREE [--version v6.1] [--repo /work/.mirror/mlcommons+inference/repo]
                                          [--commit b66003e]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_REPO = "/work/.mirror/mlcommons+inference/repo"
PREFIX = "tools/submission/submission_checker/"


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree")
    ap.add_argument("--version", default="v6.1")
    ap.add_argument("--repo", default=DEFAULT_REPO)
    ap.add_argument("--commit", default="b66003e")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlperf-checker-") as tmp:
        cwd = extract(args.repo, args.commit, Path(tmp))
        proc = subprocess.run([sys.executable, "-m", "submission_checker.main", "--input",
                               str(Path(args.tree).resolve()), "--version", args.version, "--csv",
                               str(Path(tmp) / "summary.csv")], cwd=cwd, capture_output=True, text=True,
                              check=False)
    out = proc.stdout + proc.stderr
    for line in out.splitlines():
        text = re.sub(r"^\[[^\]]*\] ", "", line)
        if " ERROR]" in line or text.startswith("Results="):
            print(text)
    if "Traceback" in out:
        print(out[out.index("Traceback"):].strip().splitlines()[-1])
        return 3
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
