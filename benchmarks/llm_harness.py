"""LLM harness overhead (transformers backend, SmolLM2-135M demo on CPU): what LoadGen measures through the harness
against the same model without LoadGen.

* Offline tokens/s: per round, a harness Offline run (LoadGen, the token path, ``batch`` samples per generate)
  records the batches it generated; the same batches (same sample indices, same order) then go through the same
  model's ``generate`` directly (no LoadGen, no streamer, no callbacks), and the order of the two alternates per
  round. Harness tokens/s: LoadGen's ``result_tokens_per_second``; direct: the generated tokens / the wall time
  of the generate calls. Ratio = median over rounds of harness / direct. Goal: >= 0.9.
* TTFT / TPOT: a SingleStream run (one query at a time, no queueing); per query the backend's own times (from
  the start of its generate call to the first token, and (end - first token) / (n_tokens - 1)), their p50 taken
  as LoadGen takes percentiles, against the p50 LoadGen logs (``result_first_token_50.00_percentile_latency_ns``,
  ``result_time_per_output_token_50.00_percentile_ns``). Goal: |p50 difference| <= 2 ms each.

Run: ``python benchmarks/llm_harness.py [--rounds 3] [--samples 32]``. Writes benchmarks/results/llm_harness.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from mlrepro.harness.loadgen_runner import LoadgenSession, build_settings, import_loadgen, set_mode  # noqa: E402
from mlrepro.harness.logparse import parse_log_dir, token_metrics  # noqa: E402
from mlrepro.harness.registry import load_workload_class  # noqa: E402
from mlrepro.harness.spec import WorkloadSpec  # noqa: E402
from mlrepro.harness.userconf import compose_user_conf  # noqa: E402

DEMO = "smollm2-135m-demo"
OUT = ROOT / "benchmarks/results/llm_harness.json"


def make_workload(batch: int, max_new_tokens: int | None) -> Any:
    cls = load_workload_class(DEMO)

    class Recording(cls):  # type: ignore[misc, valid-type]
        """The demo workload, remembering the batches it generated."""

        batches: list[list[int]] = []
        timings: list[tuple[float | None, float | None, int]] = []

        def generate(self, indices, on_first, on_done):  # type: ignore[no-untyped-def]
            counts: dict[int, int] = {}

            def done(row, tokens):  # type: ignore[no-untyped-def]
                counts[row] = len(tokens)
                on_done(row, tokens)

            self.batches.append(list(indices))
            super().generate(indices, on_first, done)
            for row, (f, d) in enumerate(self.backend.last_timings):
                self.timings.append((f, d, counts.get(row, 0)))

    opts = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
    w = Recording(WorkloadSpec(name=DEMO, backend="transformers", batch_size=batch, options=opts))
    w.load()
    return w


def loadgen_run(lg: Any, w: Any, scenario: str, settings: dict[str, float], outdir: Path) -> dict[str, Any]:
    conf = outdir / "user.conf"
    outdir.mkdir(parents=True, exist_ok=True)
    conf.write_text(compose_user_conf("", "llama3_1-8b", scenario, {}, settings))
    built = build_settings(lg, conf, "llama3_1-8b", scenario, official=False)
    set_mode(lg, built.settings, "performance")
    info = LoadgenSession(lg, w, built.settings, scenario, "performance", outdir, outdir / "no-audit.config",
                          enable_trace=False).run()
    if info.failure is not None:
        raise info.failure
    logs = parse_log_dir(outdir)
    return {"validity": logs.validity, "tokens": token_metrics(logs.detail), "detail": logs.detail}


def loadgen_percentile(values: list[float], p: float) -> float:
    """A percentile as LoadGen takes it (results.cc: ``sorted[count * p]``, no interpolation): with 32 queries
    ``statistics.median`` would average two neighbours that differ by milliseconds on a busy machine."""
    return sorted(values)[int(len(values) * p)]


def direct(w: Any, batches: list[list[int]]) -> tuple[int, float]:
    """The same batches through the same model's generate: no LoadGen, no streamer. (tokens, seconds)."""
    b = w.backend
    tokens = 0
    t0 = time.perf_counter()
    for batch in batches:
        prompts = w.prompts(batch)
        width = max(map(len, prompts))
        ids = torch.full((len(prompts), width), b.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, p in enumerate(prompts):
            ids[r, width - len(p):] = torch.tensor(p)
            mask[r, width - len(p):] = 1
        with torch.inference_mode():
            out = b.model.generate(input_ids=ids, attention_mask=mask, do_sample=False, num_beams=1,
                                   max_new_tokens=w.max_new_tokens, min_new_tokens=w.min_new_tokens,
                                   pad_token_id=b.pad_id, eos_token_id=sorted(b.eos))
        new = out[:, width:]
        for row in new.tolist():                 # count each row up to and including its first EOS
            n = next((i + 1 for i, t in enumerate(row) if t in b.eos), len(row))
            tokens += n
    return tokens, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=32, help="Offline samples per run")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--single-stream-queries", type=int, default=32)
    args = ap.parse_args()
    lg = import_loadgen()
    t0 = time.perf_counter()
    w = make_workload(args.batch, None)
    load_s = time.perf_counter() - t0
    w.warmup([0])
    rounds = []
    offline = {"min_duration_ms": 0, "min_query_count": args.samples, "offline_expected_qps": 1,
               "sample_concatenate_permutation": 0}
    with tempfile.TemporaryDirectory(prefix="mlrepro-llm-bench-") as tmp:
        # LoadGen's order of samples is fixed by mlperf.conf's seeds: every harness run generates the same batches,
        # so the direct side can run before or after it (the order alternates per round)
        w.batches.clear()
        loadgen_run(lg, w, "Offline", offline, Path(tmp) / "offline-first")
        batches = list(w.batches)
        for r in range(args.rounds):
            order = ("harness", "direct") if r % 2 == 0 else ("direct", "harness")
            row: dict[str, Any] = {"order": list(order), "batches": [len(b) for b in batches]}
            for side in order:
                if side == "harness":
                    w.batches.clear()
                    res = loadgen_run(lg, w, "Offline", offline, Path(tmp) / f"offline-{r}")
                    row["same_batches"] = w.batches == batches
                    row["harness_tokens_per_second"] = res["tokens"]["tokens_per_second"]
                    row["harness_validity"] = res["validity"]
                else:
                    tokens, secs = direct(w, batches)
                    row["direct_tokens_per_second"] = tokens / secs
                    row["direct_tokens"] = tokens
            row["ratio"] = row["harness_tokens_per_second"] / row["direct_tokens_per_second"]
            print(f"round {r + 1}: harness {row['harness_tokens_per_second']:.1f} tokens/s, direct "
                  f"{row['direct_tokens_per_second']:.1f} tokens/s, ratio {row['ratio']:.3f}", flush=True)
            rounds.append(row)

        w2 = make_workload(1, None)
        w2.timings.clear()
        res = loadgen_run(lg, w2, "SingleStream", {"min_duration_ms": 0,
                                                   "min_query_count": args.single_stream_queries,
                                                   "single_stream_expected_latency_ns": 1e9,
                                                   "sample_concatenate_permutation": 0}, Path(tmp) / "ss")
    ttft_backend = loadgen_percentile([f * 1e9 for f, d, n in w2.timings if f is not None], 0.5)
    tpot_backend = loadgen_percentile([(d - f) * 1e9 / (n - 1) for f, d, n in w2.timings if f and d and n > 1], 0.5)
    tok = res["tokens"]
    ttft_lg, tpot_lg = tok["ttft_ns"]["percentiles"]["50.00"], tok["tpot_ns"]["percentiles"]["50.00"]
    result = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "model_load_s": round(load_s, 2),
        "offline": {"rounds": rounds, "ratio_median": statistics.median(r["ratio"] for r in rounds), "goal": 0.9},
        "latency": {"queries": len(w2.timings), "ttft_p50_loadgen_ms": ttft_lg / 1e6,
                    "ttft_p50_backend_ms": ttft_backend / 1e6, "ttft_p50_diff_ms": (ttft_lg - ttft_backend) / 1e6,
                    "tpot_p50_loadgen_ms": tpot_lg / 1e6, "tpot_p50_backend_ms": tpot_backend / 1e6,
                    "tpot_p50_diff_ms": (tpot_lg - tpot_backend) / 1e6, "goal_ms": 2.0},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"offline_ratio": result["offline"]["ratio_median"], **result["latency"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
