"""Read one harness run directory (see :mod:`mlrepro.harness.layout`) for ``collect``.

Every file is verified against the run's ``checksums.sha256`` (helper functions of
:mod:`mlrepro.harness.checksums`) before anything is parsed; a missing manifest, a listed file that is missing or
different, or a needed file the manifest does not list raises :class:`ChecksumError`. Parsing uses
:mod:`mlrepro.harness.logparse`. What the run says is then judged (failed, INVALID, LoadGen errors, zero seeds,
missing accuracy hash ...) into ``problems``: a run with problems is never placed in a tree's ``results/``.

Public API::

    find_run_dirs(sources) -> list[Path]
    load_run(run_dir) -> HarnessRun                   (ChecksumError)
    read_verified(run, rel) -> bytes                  (re-reads a listed file, checking its hash; ChecksumError)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrepro.harness import exit_codes
from mlrepro.harness import layout as hl
from mlrepro.harness.checksums import ManifestError, Stamp, Verification, stamp_of, verify_manifest
from mlrepro.harness.logparse import Detail, Summary, parse_detail, parse_summary
from mlrepro.harness.scenarios import BY_NAME
from mlrepro.harness.spec import AUDIT_TESTS
from mlrepro.results.accuracy import AccuracyTxt, parse_accuracy_txt
from mlrepro.results.errors import ChecksumError, CollectInputError
from mlrepro.results.fsutil import read_file
from mlrepro.results.rounds import load_round
from mlrepro.results.tokens import TOKEN_KEYS, TokenStats, token_stats

_OK_EXIT = exit_codes.EXIT_VALID
_INVALID_EXIT = exit_codes.EXIT_INVALID


@dataclass(frozen=True)
class SubRun:
    """One LoadGen sub-run of a harness run, as its logs say.

    ``result``/``result_unit``: the headline metric: tokens/s for an LLM's Offline, Server or Interactive run
    (LoadGen's result_tokens_per_second / result_completed_tokens_per_second, as the checker reports it), else
    samples/s (Offline, Server) or the latency percentile in ns (SingleStream, MultiStream). ``tokens``: an LLM
    run's token throughput and TTFT/TPOT percentiles (None for a run without token latencies)."""

    kind: str                          # performance | accuracy
    rel_dir: str                       # relative to the run dir, e.g. "Offline/performance/run_1"
    summary_rel: str
    detail_rel: str
    validity: str | None
    scenario: str | None
    errors: tuple[str, ...]
    seeds: Mapping[str, int | None]
    min_duration_ms: float | None
    result: float | None
    result_unit: str
    invalid_reason: str | None
    has_summary: bool = True
    has_detail: bool = True
    tokens: TokenStats | None = None

    @property
    def tokens_per_second(self) -> float | None:
        """Token throughput in tokens/s (None: not an LLM run)."""
        return self.tokens.tokens_per_second if self.tokens else None

    @property
    def ttft_p50_ns(self) -> float | None:
        return self.tokens.ttft_p50_ns if self.tokens else None

    @property
    def ttft_p99_ns(self) -> float | None:
        """99th percentile time to first token in ns (Server and Interactive runs)."""
        return self.tokens.ttft_p99_ns if self.tokens else None

    @property
    def tpot_p50_ns(self) -> float | None:
        return self.tokens.tpot_p50_ns if self.tokens else None

    @property
    def tpot_p99_ns(self) -> float | None:
        """99th percentile time per output token in ns (Server and Interactive runs)."""
        return self.tokens.tpot_p99_ns if self.tokens else None


@dataclass(frozen=True)
class HarnessRun:
    """A verified harness run directory: what collect needs, nothing large."""

    path: Path
    run_id: str
    manifest: Mapping[str, str]
    scenario: str
    mode: str
    profile_name: str
    profile_hash: str
    image_reference: str
    image_digest: str
    workload: Mapping[str, Any]
    benchmark: str
    model_mapping: Mapping[str, str]
    short_run: bool
    overrides: Mapping[str, Any]
    exit_code: int | None
    status_name: str
    error: str | None
    started_at: str
    finished_at: str
    harness_version: str
    system: Mapping[str, Any]
    performance: SubRun | None
    accuracy: SubRun | None
    accuracy_txt: AccuracyTxt | None
    accuracy_log_rel: str | None
    accuracy_log_sha256: str | None
    problems: tuple[str, ...] = field(default=())
    fallback_used: bool = False
    calibration: Mapping[str, Any] | None = None       # record.calibration (targets: pinned/cached/calibrated)
    framework: Mapping[str, Any] | None = None         # record.framework (profile pin vs what the run imported)
    reproduce_argv: tuple[str, ...] = ()               # the mlrepro command that re-runs it
    compliance: Mapping[str, str] = field(default_factory=dict)   # TEST01/TEST04/TEST06... -> its folder ("Offline/TEST06")
    audit_of: str = ""                                 # mode "audit": the run whose compliance tests it ran
    audits: tuple[Mapping[str, Any], ...] = ()         # record.compliance: each test's verdict in the run
    stamps: Mapping[str, Stamp] = field(default_factory=dict, repr=False)
    record: Mapping[str, Any] = field(default_factory=dict, repr=False)   # record.json as read (verified)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(k for k, s in (("performance", self.performance), ("accuracy", self.accuracy)) if s)

    @property
    def rejection_kind(self) -> str:
        """failed | invalid | incomplete ('' when there are no problems)."""
        if not self.problems:
            return ""
        if self.exit_code not in (_OK_EXIT, _INVALID_EXIT, None):
            return "failed"
        if any(p.startswith("incomplete") for p in self.problems) and len(self.problems) == 1:
            return "incomplete"
        return "invalid"


def find_run_dirs(sources: Iterable[str | Path]) -> list[Path]:
    """Run directories among ``sources``: each is a run directory (holds ``checksums.sha256`` or
    ``record.json``) or a results directory whose children are run directories. Sorted, de-duplicated."""
    found: dict[str, Path] = {}
    for src in sources:
        p = Path(src)
        if not p.is_dir():
            raise CollectInputError(f"{p}: not a directory")
        if _is_run_dir(p):
            found[str(p.resolve())] = p
            continue
        children = sorted(c for c in p.iterdir() if c.is_dir() and _is_run_dir(c))
        if not children:
            raise CollectInputError(f"{p}: neither a harness run directory nor a directory of them")
        for c in children:
            found[str(c.resolve())] = c
    return [found[k] for k in sorted(found)]


def _is_run_dir(p: Path) -> bool:
    return (p / hl.CHECKSUMS).is_file() or (p / hl.RECORD_JSON).is_file()


def _read_listed(run_dir: Path, manifest: Mapping[str, str], rel: str,
                 stamps: Mapping[str, Stamp] | None = None) -> bytes:
    """The bytes of ``rel``, verified: re-hashed unless it is provably the file hashed before (same size,
    mtime and inode as recorded in ``stamps`` when it was verified)."""
    digest = manifest.get(rel)
    if digest is None:
        raise ChecksumError(f"{run_dir}: {rel} is not covered by {hl.CHECKSUMS}", str(run_dir), (rel,))
    try:
        data, st = read_file(os.path.join(run_dir, rel))
        same = stamps is not None and stamps.get(rel) == stamp_of(st)
    except OSError:
        raise ChecksumError(f"{run_dir}: {rel} is listed in {hl.CHECKSUMS} but missing", str(run_dir),
                            (rel,)) from None
    if not same and hashlib.sha256(data).hexdigest() != digest:
        raise ChecksumError(f"{run_dir}: {rel} differs from the harness's {hl.CHECKSUMS}", str(run_dir), (rel,))
    return data


def verify_run_dir(run_dir: Path, keep: Callable[[str], bool] | None = None,
                   where: str | None = None) -> Verification:
    """Every file ``<run_dir>/checksums.sha256`` lists, hashed once (:func:`harness.checksums.verify_manifest`).
    Raises ChecksumError (``where``, default the directory, says whose results they are) for a missing or
    unreadable manifest, or naming the first file that differs or is missing and counting the others."""
    where = where or str(run_dir)
    if not (run_dir / hl.CHECKSUMS).is_file():
        raise ChecksumError(f"{where}: no {hl.CHECKSUMS} (the harness writes it last: the run did not finish "
                            "writing its results, or they were not copied completely)", str(run_dir))
    try:
        check = verify_manifest(run_dir, keep=keep, list_unlisted=False)
    except ManifestError as exc:
        raise ChecksumError(f"{where}: {exc}", str(run_dir)) from None
    if not check.ok:
        bad = check.bad
        what = "differs from" if check.mismatched else "is missing from"
        raise ChecksumError(f"{where}: {bad[0]} {what} the harness's {hl.CHECKSUMS}"
                            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""), str(run_dir), tuple(bad))
    return check


def read_verified(run: HarnessRun, rel: str) -> bytes:
    """The bytes of a file the manifest lists; re-hashed unless unchanged since load_run verified it."""
    return _read_listed(run.path, run.manifest, rel, run.stamps)


def _json(data: bytes, rel: str, run_dir: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _subrun(run_dir: Path, manifest: Mapping[str, str], kept: Mapping[str, bytes], kind: str,
            rel_dir: str) -> SubRun | None:
    summary_rel = f"{rel_dir}/{hl.SUMMARY_LOG}"
    detail_rel = f"{rel_dir}/{hl.DETAIL_LOG}"
    if summary_rel not in manifest and detail_rel not in manifest:
        return None
    summary: Summary | None = None
    detail: Detail | None = None
    if summary_rel in manifest:
        summary = parse_summary(kept[summary_rel].decode("utf-8", "replace"))
    if detail_rel in manifest:
        detail = parse_detail(relevant_detail_lines(kept[detail_rel].decode("utf-8", "replace")))
    validity = summary.validity if summary and summary.validity else (detail.validity if detail else None)
    results = detail.results if detail else {}
    result: float | None = None
    unit = ""
    if summary is not None:
        if summary.samples_per_second is not None:
            result, unit = summary.samples_per_second, "samples/s"
        elif summary.completed_samples_per_second is not None:
            result, unit = summary.completed_samples_per_second, "samples/s"
        elif summary.result_latency_ns is not None:
            result, unit = float(summary.result_latency_ns), "ns"
    tokens = token_stats(detail.values) if detail else None
    if tokens is not None and tokens.tokens_per_second is not None and unit == "samples/s":
        result, unit = tokens.tokens_per_second, "tokens/s"
    min_dur = detail.effective.get("effective_min_duration_ms") if detail else None
    return SubRun(
        kind=kind, rel_dir=rel_dir, summary_rel=summary_rel, detail_rel=detail_rel, validity=validity,
        scenario=detail.scenario if detail else (summary.scenario if summary else None),
        errors=tuple(str(e.value) for e in detail.errors) if detail else (),
        seeds=dict(detail.seeds) if detail else {},
        min_duration_ms=float(min_dur) if isinstance(min_dur, (int, float)) else None,
        result=result, result_unit=unit,
        invalid_reason=_str(results.get("result_invalid_reason")) or None,
        has_summary=summary is not None, has_detail=detail is not None, tokens=tokens,
    )


def load_run(run_dir: str | Path, where: str | None = None) -> HarnessRun:
    """Verify (every listed file hashed once) and read one run directory. Raises ChecksumError (nothing is
    trusted without the manifest; ``where`` names the results in its message, default the directory)."""
    p = Path(run_dir)
    check = verify_run_dir(p, keep=_parsed_file, where=where)
    manifest, kept, stamps = check.manifest, check.kept, check.stamps
    if hl.RECORD_JSON not in kept:
        raise ChecksumError(f"{p}: {hl.RECORD_JSON} is not covered by {hl.CHECKSUMS}", str(p), (hl.RECORD_JSON,))
    record = _json(kept[hl.RECORD_JSON], hl.RECORD_JSON, p)
    problems: list[str] = []
    if record is None:
        record = {}
        problems.append(f"{hl.RECORD_JSON} is not a JSON object")
    spec: dict[str, Any] = {}
    if hl.RUN_JSON in manifest:
        spec = _json(kept[hl.RUN_JSON], hl.RUN_JSON, p) or {}
    system: dict[str, Any] = {}
    if hl.SYSTEM_JSON in manifest:
        system = _json(kept[hl.SYSTEM_JSON], hl.SYSTEM_JSON, p) or {}
    else:
        problems.append(f"{hl.SYSTEM_JSON} is missing")

    run_id = _str(record.get("run_id")) or _str(spec.get("run_id")) or p.name
    scenario = _str(record.get("scenario")) or _str(spec.get("scenario"))
    mode = _str(record.get("mode")) or _str(spec.get("mode"))
    workload = record.get("workload") if isinstance(record.get("workload"), dict) else {}
    if not workload and isinstance(spec.get("workload"), dict):
        workload = dict(spec["workload"])
    wname = _str(workload.get("name"))
    benchmark, model_mapping, fallback_used = _benchmark_and_mapping(workload, wname)
    image = record.get("image") if isinstance(record.get("image"), dict) else {}
    status = record.get("status") if isinstance(record.get("status"), dict) else {}
    settings = record.get("settings") if isinstance(record.get("settings"), dict) else {}
    harness = record.get("harness") if isinstance(record.get("harness"), dict) else {}
    exit_code = status.get("exit_code")
    exit_code = exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None

    perf = acc = None
    if scenario:
        perf = _subrun(p, manifest, kept, "performance", f"{scenario}/{hl.PERFORMANCE}/run_1")
        acc = _subrun(p, manifest, kept, "accuracy", f"{scenario}/{hl.ACCURACY}")
    else:
        problems.append("the record names no scenario")
    acc_txt = None
    acc_log_rel = acc_log_sha = None
    if acc is not None:
        acc_log_rel = f"{acc.rel_dir}/{hl.ACCURACY_LOG}"
        acc_log_sha = manifest.get(acc_log_rel)
        txt_rel = f"{acc.rel_dir}/{hl.ACCURACY_TXT}"
        if txt_rel in manifest:
            acc_txt = parse_accuracy_txt(kept[txt_rel].decode("utf-8", "replace"),
                                         model_mapping.get(benchmark, benchmark))

    # --- judgement -----------------------------------------------------------------------------
    if exit_code is None:
        problems.append("the record has no exit status")
    elif exit_code not in (_OK_EXIT, _INVALID_EXIT):
        err = status.get("error")
        problems.append(f"failed: exit code {exit_code} ({_str(status.get('name')) or 'error'})"
                        + (f": {err}" if err else ""))
    wanted = hl.subruns_for_mode(mode) if mode in ("performance", "accuracy", "submission") else ()
    verify_only = verify_only_tests()
    compliance = {t: f"{scenario}/{t}" for t in AUDIT_TESTS if t not in verify_only
                  and f"{scenario}/{t}/performance/run_1/{hl.DETAIL_LOG}" in manifest} if scenario else {}
    if scenario:
        compliance.update({t: f"{scenario}/{t}" for t, names in verify_only.items()
                           if any(f"{scenario}/{t}/{n}" in manifest for n in names)})
    audit_of = _str(record.get("audit_of"))
    if mode == "audit":
        if not compliance:
            problems.append("incomplete: the audit run has no compliance test logs")
        if not audit_of:
            problems.append("the audit run's record names no audited run (audit_of)")
    elif not wanted:
        problems.append(f"unknown mode {mode!r}")
    for kind, sub in (("performance", perf), ("accuracy", acc)):
        if kind in wanted and sub is None:
            problems.append(f"incomplete: the {kind} run's logs are missing")
    if perf is not None:
        if perf.validity != "VALID":
            reason = f": {perf.invalid_reason.strip()}" if perf.invalid_reason else ""
            problems.append(f"performance run is {perf.validity or 'of unknown validity'}{reason}")
        problems.extend(_log_problems(perf, scenario))
    if acc is not None:
        problems.extend(_log_problems(acc, scenario))
        if acc_log_sha is None:
            problems.append(f"{acc_log_rel} is missing")
        if acc_txt is None:
            problems.append(f"{acc.rel_dir}/{hl.ACCURACY_TXT} is missing")
        else:
            if acc_txt.metric_line is None:
                problems.append(f"{hl.ACCURACY_TXT} has no accuracy line")
            if acc_txt.hash is not None and acc_log_sha is not None and acc_txt.hash != acc_log_sha:
                problems.append(f"{hl.ACCURACY_TXT} hash= does not match {hl.ACCURACY_LOG}")
    if exit_code == _INVALID_EXIT and not any("INVALID" in x for x in problems):
        problems.append("the harness reported INVALID (exit code 4)")

    return HarnessRun(
        path=p, run_id=run_id, manifest=manifest, scenario=scenario, mode=mode,
        profile_name=_str(record.get("profile_name")) or _str(spec.get("profile_name")),
        profile_hash=_str(record.get("profile_hash")) or _str(spec.get("profile_hash")),
        image_reference=_str(image.get("reference")) or _str(spec.get("image")),
        image_digest=_str(image.get("digest")),
        workload=workload, benchmark=benchmark, model_mapping=model_mapping,
        short_run=bool(settings.get("short_run")) or _short(perf),
        overrides=settings.get("overrides") if isinstance(settings.get("overrides"), dict) else {},
        exit_code=exit_code, status_name=_str(status.get("name")), error=_str(status.get("error")) or None,
        started_at=_str(record.get("started_at")), finished_at=_str(record.get("finished_at")),
        harness_version=_str(harness.get("version")), system=system,
        performance=perf, accuracy=acc, accuracy_txt=acc_txt,
        accuracy_log_rel=acc_log_rel if acc_log_sha else None, accuracy_log_sha256=acc_log_sha,
        problems=tuple(problems), fallback_used=fallback_used, stamps=stamps,
        calibration=record.get("calibration") if isinstance(record.get("calibration"), dict) else None,
        framework=record.get("framework") if isinstance(record.get("framework"), dict) else None,
        reproduce_argv=_argv(record.get("reproduce")),
        compliance=compliance, audit_of=audit_of,
        audits=tuple(c for c in record.get("compliance") or () if isinstance(c, dict)),
        record=record,
    )


def verify_only_tests() -> dict[str, tuple[str, ...]]:
    """Compliance tests whose folder is verification files only (TEST06 of the LLMs, TEST07-TEST09), with those
    files (the newest round's ``compliance.tests``): the harness writes them as ``<scenario>/<TEST>/<file>``."""
    tests = load_round().compliance.tests
    return {name: t.verify for name, t in tests.items() if not t.performance}


def _argv(reproduce: Any) -> tuple[str, ...]:
    argv = reproduce.get("argv") if isinstance(reproduce, dict) else None
    return tuple(argv) if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else ()


_PARSED_NAMES = frozenset({hl.RECORD_JSON, hl.RUN_JSON, hl.SYSTEM_JSON, hl.SUMMARY_LOG, hl.DETAIL_LOG,
                           hl.ACCURACY_TXT})


def _parsed_file(rel: str) -> bool:
    return rel.rsplit("/", 1)[-1] in _PARSED_NAMES


#: detail-log keys collect and check read; every other line is dropped before parsing unless it is (or might
#: be) an error entry, which keeps the parse of harness.logparse exact for what is used and ~5x faster
DETAIL_KEYS = frozenset({
    "effective_scenario", "effective_test_mode", "result_validity", "result_invalid_reason",
    "effective_min_duration_ms", "effective_qsl_rng_seed", "effective_sample_index_rng_seed",
    "effective_schedule_rng_seed", "loadgen_version",
}) | TOKEN_KEYS
_KEY_PREFIX = ':::MLLOG {"key": "'


def relevant_detail_lines(text: str) -> str:
    """The lines of a detail log that matter for validity, errors, seeds, scenario and duration: entries with
    one of DETAIL_KEYS, and every line that does not say ``"is_error": false`` (errors, odd formatting)."""
    out = []
    n = len(_KEY_PREFIX)
    for line in text.splitlines():
        if line.startswith(_KEY_PREFIX):
            end = line.find('"', n)
            if end > 0 and line[n:end] in DETAIL_KEYS:
                out.append(line)
                continue
        if '"is_error": false' not in line:
            out.append(line)
    return "\n".join(out)


def _benchmark_and_mapping(workload: Mapping[str, Any], wname: str) -> tuple[str, dict[str, str], bool]:
    """(benchmark, model mapping {benchmark: checker benchmark}, whether the installed workload class was asked).

    ``workload.model_mapping`` (the workload class attribute: a checker benchmark name, "" for none; a
    {name: benchmark} object is accepted too), else ``workload.describe.model_mapping``, else the class installed under the workload's name."""
    benchmark = _str(workload.get("benchmark"))
    describe = workload.get("describe") if isinstance(workload.get("describe"), Mapping) else {}
    raw: Any = workload.get("model_mapping")
    if raw is None:
        raw = describe.get("model_mapping")
    used = False
    fb = _installed_workload(wname) if not benchmark or raw is None else None
    if not benchmark:
        benchmark = fb[0] if fb else wname
        used = fb is not None
    if raw is None and fb is not None and fb[0] == benchmark:
        raw = fb[1]
        used = True
    if isinstance(raw, str):
        mapping = {benchmark: raw} if raw else {}
    elif isinstance(raw, Mapping):
        mapping = {str(k): str(v) for k, v in raw.items()}
    else:
        mapping = {}
    return benchmark, mapping, used


def _installed_workload(name: str) -> tuple[str, str] | None:
    """(benchmark, checker benchmark it maps to or "") of the workload installed under ``name`` (its entry
    point: the one list of workloads), for records written before they carried these; None when unknown here."""
    from mlrepro.harness.registry import load_workload_class

    try:
        cls = load_workload_class(name)
    except Exception:  # noqa: BLE001 - an unknown or broken workload: the record's own name stands
        return None
    return (cls.benchmark or name, cls.model_mapping)


def _short(perf: SubRun | None) -> bool:
    return perf is not None and perf.min_duration_ms is not None and perf.min_duration_ms < 600_000


def _log_problems(sub: SubRun, scenario: str) -> list[str]:
    out: list[str] = []
    if not sub.has_summary:
        out.append(f"{sub.summary_rel} is missing")
    if not sub.has_detail:
        out.append(f"{sub.detail_rel} is missing")
    if sub.errors:
        out.append(f"{sub.kind} run has {len(sub.errors)} LoadGen error(s): {sub.errors[0]}")
    # a scenario runs as one of LoadGen's (Interactive: a Server run with the -interactive settings)
    expected = BY_NAME[scenario].loadgen if scenario in BY_NAME else scenario
    if sub.scenario and scenario and sub.scenario != expected:
        out.append(f"{sub.kind} log scenario {sub.scenario} differs from the record's {scenario}"
                   + (f" (a LoadGen {expected} run)" if expected != scenario else ""))
    seeds = sub.seeds
    if seeds and any(not v for v in seeds.values()):
        out.append(f"{sub.kind} run used zero RNG seeds (mlperf.conf not loaded)")
    return out


def file_size(run: HarnessRun, rel: str) -> int:
    return os.stat(run.path / rel).st_size
