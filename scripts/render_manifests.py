#!/usr/bin/env python3
"""Write manifests/<profile>.yaml for every built-in profile (`make manifests`).

    python scripts/render_manifests.py           # (re)write the files, remove those of deleted profiles
    python scripts/render_manifests.py --check   # exit 1 and name the files that differ (CI)

manifests/rbac.yaml is hand-written and left alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlrepro.artifacts import example_manifests_text
from mlrepro.profiles.loader import builtin_profile_names, resolve_profile

REPO_ROOT = Path(__file__).resolve().parent.parent
STATIC = {"rbac.yaml"}


def expected(out_dir: Path) -> dict[Path, str]:
    return {out_dir / f"{name}.yaml": example_manifests_text(resolve_profile(name)) for name in builtin_profile_names()}


def stale(out_dir: Path, wanted: dict[Path, str]) -> list[Path]:
    return sorted(p for p in out_dir.glob("*.yaml") if p not in wanted and p.name not in STATIC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report differences (exit 1 if any)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "manifests", help="output directory")
    args = parser.parse_args(argv)
    wanted = expected(args.out)
    differing = [p for p, text in wanted.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    extra = stale(args.out, wanted)
    if args.check:
        for p in differing:
            print(f"out of date: {p} (run `make manifests`)", file=sys.stderr)
        for p in extra:
            print(f"no such built-in profile any more: {p} (run `make manifests`)", file=sys.stderr)
        return 1 if differing or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for p in differing:
        p.write_text(wanted[p], encoding="utf-8")
        print(f"wrote {p}")
    for p in extra:
        p.unlink()
        print(f"removed {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
