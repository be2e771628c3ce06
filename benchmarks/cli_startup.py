"""`mlrepro --help` wall time against a bare `python -c pass`, in the same run.

Target: under 0.3 s on the 2-core development machine. Writes benchmarks/results/cli_startup.json.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15


def wall(argv: list[str]) -> float:
    samples = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> int:
    mlrepro = shutil.which("mlrepro") or str(Path(sys.executable).with_name("mlrepro"))
    baseline = wall([sys.executable, "-c", "pass"])
    help_s = wall([mlrepro, "--help"])
    gen_help_s = wall([mlrepro, "generate", "--help"])
    result = {"python_baseline_s": round(baseline, 4), "mlrepro_help_s": round(help_s, 4),
              "mlrepro_generate_help_s": round(gen_help_s, 4), "ratio_help_vs_python": round(help_s / baseline, 2),
              "target_s": 0.3, "meets_target": help_s < 0.3, "runs": RUNS}
    print(f"{'command':<28}{'median s':>10}")
    print(f"{'python -c pass':<28}{baseline:>10.3f}")
    print(f"{'mlrepro --help':<28}{help_s:>10.3f}   ({help_s / baseline:.1f}x python start-up)")
    print(f"{'mlrepro generate --help':<28}{gen_help_s:>10.3f}")
    out = Path(__file__).parent / "results" / "cli_startup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
