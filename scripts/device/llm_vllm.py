"""Driver of scripts/device/llm_vllm.sh: the native harness on vLLM (backend ``vllm``, device ``cuda``).

Writes one run spec per scenario (the demo workload ``smollm2-135m-demo`` unless ``--workload`` names another
entry, with ``--model`` / ``--dataset``) and runs ``mlrepro-harness --spec ... --results OUT`` in this process
for each (one model load per engine), then prints one summary line per run: validity, tokens/s, TTFT/TPOT p99.
Exit 0 when every run is VALID, else the worst harness exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mlrepro.harness.main import main as harness_main  # noqa: E402

QUICK = {"Offline": {"min_duration_ms": 10_000, "min_query_count": 64},
         "Server": {"min_duration_ms": 10_000, "min_query_count": 459},
         "Interactive": {"min_duration_ms": 10_000, "min_query_count": 459},
         "SingleStream": {"min_duration_ms": 10_000, "min_query_count": 64}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", required=True, help="HF directory or GGUF (DIR:FILE.gguf) present on the device")
    ap.add_argument("--workload", default="smollm2-135m-demo")
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--scenarios", default="Offline,Server")
    ap.add_argument("--mode", default="performance")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    worst = 0
    for scenario in args.scenarios.split(","):
        run_id = f"vllm-{scenario.lower()}-{args.mode}"
        spec = {"run_id": run_id, "scenario": scenario, "mode": args.mode,
                "workload": {"name": args.workload, "backend": "vllm", "device": "cuda",
                             "batch_size": args.batch_size, "model_path": args.model,
                             **({"dataset_path": args.dataset} if args.dataset else {})},
                "settings": QUICK[scenario], "profile_name": "device-vllm"}
        path = out / f"{run_id}.json"
        path.write_text(json.dumps(spec, indent=2))
        code = harness_main(["--spec", str(path), "--results", str(out)])
        worst = max(worst, code)
        rec_path = out / run_id / "record.json"
        if rec_path.is_file():
            rec = json.loads(rec_path.read_text())
            perf = [s for s in rec["subruns"] if s["kind"] == "performance"]
            tok = (perf[0]["results"].get("tokens") or {}) if perf else {}
            print(f"{scenario}: exit {code} {perf[0]['validity'] if perf else rec['status']['name']} "
                  f"tokens/s={tok.get('tokens_per_second') or tok.get('completed_tokens_per_second')} "
                  f"ttft_p99_ns={tok.get('ttft_p99_ns')} tpot_p99_ns={tok.get('tpot_p99_ns')}", flush=True)
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
