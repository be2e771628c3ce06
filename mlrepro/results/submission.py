"""``collect``: harness run directories -> an MLPerf inference submission tree (checker v6.x layout).

See :mod:`mlrepro.results.layout` for the tree and its sidecar ``<root>.mlrepro/``. What collect guarantees:

- **Verified input.** Every run directory is checked against its ``checksums.sha256`` first; any mismatch,
  missing file or missing manifest raises :class:`ChecksumError` before anything is written.
- **Only valid results in ``results/``.** Failed, INVALID, LoadGen-error, zero-seed runs (and, in the closed
  division, short runs and non-MLPerf benchmarks) are *rejected*: copied to ``<sidecar>/rejected/...`` with a
  ``rejection.json`` and reported, never placed in the tree. A result folder needs a performance and an accuracy
  run of the same system/benchmark/scenario (one ``--mode submission`` run, or a performance and an accuracy run
  collected together); if several runs provide the same part, the latest (by finish time) wins and the others
  are reported as superseded.
- **Idempotent.** Collecting the same runs again rewrites nothing (byte-identical tree, no mtime changes).
- **No silent overwrite.** A different existing result folder, systems json, src record or model mapping raises
  :class:`ConflictError` naming the path (nothing is written); ``force=True`` replaces them.
- **Crash-safe.** Each unit (result folder, file) is written in ``<sidecar>/staging`` and renamed into place;
  a process killed at any moment leaves complete old or new units only, and running collect again completes
  the tree. One ``os.sync()`` before the renames (``durable=True``) replaces per-file fsyncs.
- **Truncated accuracy logs.** ``accuracy/mlperf_log_accuracy.json`` in the tree is truncated to <= 10 KiB
  (MLCommons' truncate_accuracy_log method); the full log is kept at
  ``<sidecar>/full_accuracy_logs/<sha256>.json`` and ``accuracy.txt`` carries that ``hash=``.

Public API::

    collect(sources, root, *, submitter, division="open", system_id=None, system_overrides=None,
            force=False, durable=True, sidecar=None, jobs=None) -> CollectReport
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrepro.harness import layout as hl
from mlrepro.results import layout as tl
from mlrepro.results.accuracy import accuracy_txt_with_hash, truncate_accuracy_log
from mlrepro.results.compliance import compliance_files, verify_only_files
from mlrepro.results.errors import CollectInputError, ConflictError
from mlrepro.results.fsutil import (
    DirLock,
    dir_matches,
    file_equals,
    fsync_dir,
    write_files,
    write_new,
)
from mlrepro.results.measurements import measurements_json
from mlrepro.results.rounds import checker_benchmarks
from mlrepro.results.rundir import HarnessRun, SubRun, find_run_dirs, load_run, read_verified, verify_only_tests
from mlrepro.results.systems import (
    SystemFinding,
    build_system_desc,
    derive_system_id,
    desc_json,
    submission_blockers,
)

_LEGACY_COMMAND = "mlrepro run -p {profile} --scenario {scenario} --mode {mode}"


def reproduce_command(run: HarnessRun) -> str:
    """The command that re-runs ``run``: the one its record carries (every -p, -f, --set, --target, scenario and
    mode, so it resolves to the run's profile hash), else a best effort from the profile name for old records."""
    if run.reproduce_argv:
        return shlex.join(run.reproduce_argv)
    return _LEGACY_COMMAND.format(profile=run.profile_name or "<profile>", scenario=run.scenario,
                                  mode=run.mode or "submission")


def target_text(run: HarnessRun) -> str:
    """The run's LoadGen target for a README row, e.g. ``offline_expected_qps=2.9e+05 (calibrated, 1.4 s)``."""
    cal = run.calibration or {}
    targets = cal.get("targets") if isinstance(cal.get("targets"), list) else []
    if not targets or not isinstance(targets[0], dict):
        return "-"
    d = targets[0]
    value = d.get("value")
    if value is None:
        return f"{d.get('setting')}: {d.get('source')}"
    extra = f", {d.get('cost_s', 0):.1f} s" if d.get("source") == "calibrated" else ""
    retry = "; recalibrated after an INVALID attempt" if cal.get("retry") else ""
    return f"{d.get('setting')}={value:.6g} ({d.get('source')}{extra}{retry})"


def framework_text(run: HarnessRun) -> str:
    fw = run.framework or {}
    if not fw:
        return "-"
    mark = "" if fw.get("matches") else " (differs from the profile's pin)"
    return f"{fw.get('package')} {fw.get('installed') or 'not installed'}, pinned {fw.get('pinned')}{mark}"
PROFILE_FILES = ("profile.yaml", "profile.resolved.yaml")
SUPPORTED_DIVISIONS = ("closed", "open")

#: test hook: called with the unit index before each rename of the commit phase (crash-safety tests kill the
#: process from it); None in normal use
_commit_hook: Callable[[int], None] | None = None


# --- report ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlacedResult:
    """A result folder of the tree (new, replaced or already there unchanged)."""

    path: Path
    system_id: str
    benchmark: str
    scenario: str
    performance_run: str
    accuracy_run: str
    result: float | None
    result_unit: str
    accuracy: str | None            # the accuracy.txt metric line, e.g. "accuracy=97.500%"
    replaced: bool = False


@dataclass(frozen=True)
class RejectedRun:
    """A run that is not (or no longer) in the tree's results, and why."""

    run_id: str
    source: Path
    kind: str                       # failed | invalid | incomplete | not-allowed | superseded
    reasons: tuple[str, ...]
    kept_at: Path | None = None     # its copy under <sidecar>/rejected (failed / invalid / not-allowed)


@dataclass(frozen=True)
class CollectReport:
    tree: Path
    sidecar: Path
    division: str
    submitter: str
    placed: tuple[PlacedResult, ...] = ()
    unchanged: tuple[PlacedResult, ...] = ()
    rejected: tuple[RejectedRun, ...] = ()
    systems: tuple[str, ...] = ()
    system_findings: Mapping[str, tuple[SystemFinding, ...]] = field(default_factory=dict)
    """Per system id: what would still block submitting its systems json (see systems.submission_blockers)."""
    notes: tuple[str, ...] = ()
    written: int = 0                # units written (result folders, files), 0 when nothing changed
    timings: Mapping[str, float] = field(default_factory=dict)   # seconds per phase

    @property
    def results(self) -> tuple[PlacedResult, ...]:
        return self.placed + self.unchanged

    @property
    def ok(self) -> bool:
        """Every run collected ended up in the tree (superseded runs do not count)."""
        return all(r.kind == "superseded" for r in self.rejected)


# --- staging / commit ----------------------------------------------------------------------------------

@dataclass
class _Unit:
    kind: str          # file | dir
    staged: Path
    dest: Path
    replace: bool


class _Writer:
    """Stages units in ``staging`` (compared with what is in place first) and commits them by rename."""

    def __init__(self, staging: Path, trash: Path, prefix: str = "") -> None:
        self.staging = staging
        self.trash = trash
        self.prefix = prefix
        self.units: list[_Unit] = []
        self.conflicts: list[Path] = []
        self._n = 0

    def _next(self, kind: str) -> Path:
        self._n += 1
        return self.staging / f"{self.prefix}{kind}{self._n:07d}"

    def file(self, dest: Path, data: bytes, *, guarded: bool = True, only_if_missing: bool = False,
             same_if_size: bool = False) -> str:
        """Stage ``data`` for ``dest``; returns new | unchanged | replace. ``same_if_size``: a content-addressed
        file of the right size is taken as identical."""
        state = "new"
        if os.path.lexists(dest):
            if only_if_missing or (same_if_size and os.path.getsize(dest) == len(data)) or \
                    file_equals(dest, data):
                return "unchanged"
            if guarded:
                self.conflicts.append(dest)
            if dest.is_dir() and not dest.is_symlink():
                raise ConflictError(f"{dest}: a directory is in the way", str(dest))
            state = "replace"
        staged = self._next("f")
        write_new(str(staged), data)
        self.units.append(_Unit("file", staged, dest, state == "replace"))
        return state

    def directory(self, dest: Path, files: Mapping[str, bytes], *, guarded: bool = True) -> str:
        """Stage the folder ``dest`` with ``files``; returns new | unchanged | replace."""
        state = "new"
        if os.path.lexists(dest):
            if dest.is_dir() and not dest.is_symlink() and dir_matches(dest, files):
                return "unchanged"
            if guarded:
                self.conflicts.append(dest)
            state = "replace"
        staged = self._next("d")
        write_files(staged, files)
        self.units.append(_Unit("dir", staged, dest, state == "replace"))
        return state

    def commit(self, durable: bool, stop: Path, timings: dict[str, float] | None = None) -> None:
        if not self.units:
            return
        if durable:
            t = time.perf_counter()
            os.sync()
            if timings is not None:
                timings["sync"] = time.perf_counter() - t
        touched: set[Path] = set()
        for i, unit in enumerate(self.units):
            if _commit_hook is not None:
                _commit_hook(i)
            parent = unit.dest.parent
            if not parent.is_dir():
                parent.mkdir(parents=True, exist_ok=True)
                touched.update(_ancestors(parent, stop))
            if unit.kind == "file":
                os.replace(unit.staged, unit.dest)
            else:
                if unit.replace and os.path.lexists(unit.dest):
                    self.trash.mkdir(parents=True, exist_ok=True)
                    os.rename(unit.dest, self._next_trash())
                os.rename(unit.staged, unit.dest)
            touched.add(parent)
        if durable:
            for d in sorted(touched, key=lambda p: len(p.parts), reverse=True):
                fsync_dir(d)

    def _next_trash(self) -> Path:
        self._n += 1
        return self.trash / f"t{self._n:07d}"


def _ancestors(path: Path, stop: Path) -> list[Path]:
    out = []
    for p in [path, *path.parents]:
        out.append(p)
        if p == stop or p == p.parent:
            break
    return out


# --- planning ----------------------------------------------------------------------------------------

@dataclass
class _Group:
    system_id: str
    benchmark: str
    scenario: str
    perf: list[HarnessRun] = field(default_factory=list)
    acc: list[HarnessRun] = field(default_factory=list)
    audits: list[HarnessRun] = field(default_factory=list)     # mode "audit" runs (mlrepro compliance)


def _order(run: HarnessRun) -> tuple[str, str]:
    return (run.finished_at, run.run_id)


def _division_problems(run: HarnessRun, division: str) -> list[str]:
    out: list[str] = []
    if not tl.valid_name(run.benchmark):
        out.append(f"benchmark name {run.benchmark!r} is not a valid directory name")
    if run.scenario and run.scenario not in tl.SCENARIO_NAMES:
        out.append(f"unknown scenario {run.scenario!r}")
    if division == "closed":
        if run.benchmark not in checker_benchmarks():
            out.append(f"closed division: {run.benchmark!r} is not an MLPerf benchmark (collect it into the "
                       "open division)")
        if run.short_run:
            out.append("closed division: short run (duration or query-count overrides, or a performance "
                       "min_duration below 600 s)")
    elif run.benchmark not in checker_benchmarks() and \
            run.model_mapping.get(run.benchmark) not in checker_benchmarks():
        out.append(f"open division: model {run.benchmark!r} has no model_mapping to an MLPerf benchmark")
    return out


PARALLEL_MIN_RUNS = 64


def _chunk(n: int, jobs: int) -> int:
    return max(8, n // (jobs * 8))


def _load_all(run_dirs: Sequence[Path], pool: ProcessPoolExecutor | None, jobs: int) -> list[HarnessRun]:
    if pool is None:
        return [load_run(d) for d in run_dirs]
    return list(pool.map(load_run, run_dirs, chunksize=_chunk(len(run_dirs), jobs)))


def _dedupe(runs: Iterable[HarnessRun]) -> list[HarnessRun]:
    by_id: dict[str, HarnessRun] = {}
    for run in runs:
        seen = by_id.get(run.run_id)
        if seen is None:
            by_id[run.run_id] = run
        elif dict(seen.manifest) != dict(run.manifest):
            raise CollectInputError(f"run id {run.run_id!r} appears in {seen.path} and {run.path} with "
                                    "different content")
    return [by_id[k] for k in sorted(by_id)]


# --- content -----------------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    text = str(value) if value not in (None, "") else "-"
    return text.replace("|", "\\|").replace("\n", " ")


def _readme(layout: tl.TreeLayout, g: _Group, p: HarnessRun, a: HarnessRun, full_sha: str,
            acc_line: str | None) -> bytes:
    perf = p.performance
    assert perf is not None
    runs = [("performance", p), ("accuracy", a)]
    rows = [
        (tl.README_RUN_ID_ROW, [r.run_id for _, r in runs]),
        ("profile", [r.profile_name for _, r in runs]),
        ("profile hash", [r.profile_hash for _, r in runs]),
        ("image", [r.image_reference for _, r in runs]),
        ("image digest", [r.image_digest for _, r in runs]),
        ("workload", [f"{r.workload.get('name', '')} ({r.workload.get('backend', '')}, "
                      f"{r.workload.get('device', '')})" for _, r in runs]),
        ("harness version", [r.harness_version for _, r in runs]),
        ("started (UTC)", [r.started_at for _, r in runs]),
        ("finished (UTC)", [r.finished_at for _, r in runs]),
        ("LoadGen overrides", [", ".join(f"{k}={v}" for k, v in sorted(r.overrides.items())) for _, r in runs]),
        ("LoadGen target", [target_text(r) for _, r in runs]),
        ("framework", [framework_text(r) for _, r in runs]),
    ]
    lines = [
        f"# {g.benchmark} / {g.scenario} on {g.system_id}",
        "",
        f"{tl.README_MARK} from the harness runs below (files verified against each run's checksums.sha256).",
        "",
        "| | performance | accuracy |",
        "|---|---|---|",
        *[f"| {name} | {_cell(vals[0])} | {_cell(vals[1])} |" for name, vals in rows],
        "",
        f"- Result: {_fmt(perf.result)} {perf.result_unit} (Result is : {perf.validity})".rstrip(),
        *_token_lines(perf),
        f"- Accuracy: {acc_line or '-'}",
        (f"- Full mlperf_log_accuracy.json: sha256 `{full_sha}`; the copy here is truncated to at most 10 KiB, "
         "the full log is kept beside the tree as "
         f"`{layout.sidecar.name}/{tl.FULL_ACCURACY}/{full_sha}.json`."),
    ]
    if p.short_run:
        lines.append("- Short run: LoadGen duration/query overrides were used (not valid for the closed "
                     "division).")
    lines += ["", "## Reproduce", ""]
    for kind, r in runs if p.run_id != a.run_id else [("performance and accuracy", p)]:
        mode = r.mode or ("submission" if p.run_id == a.run_id else kind)
        lines += [f"{kind.capitalize()} ({mode}):", "", "    " + reproduce_command(r), ""]
    lines += [
        ("The resolved run specs and run records are in `src/mlrepro/<run id>/` of this submitter "
         "(`run.json` can be given to `mlrepro-harness` directly). A faithful reproduction resolves to the same "
         "profile hash and runs the same image digest as listed above."),
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def _token_lines(perf: SubRun) -> list[str]:
    """README lines of an LLM run's token latencies (TTFT, TPOT p50/p99 in ms); none for other runs."""
    t = perf.tokens
    if t is None or not (t.ttft_ns or t.tpot_ns):
        return []
    ms = lambda v: "-" if v is None else f"{v / 1e6:.6g} ms"  # noqa: E731
    return [f"- Time to first token: p50 {ms(t.ttft_p50_ns)}, p99 {ms(t.ttft_p99_ns)}; time per output token: "
            f"p50 {ms(t.tpot_p50_ns)}, p99 {ms(t.tpot_p99_ns)} (LoadGen)"]


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.6g}" if isinstance(v, float) and not v.is_integer() else str(int(v))


def _result_files(layout: tl.TreeLayout, g: _Group, p: HarnessRun, a: HarnessRun,
                  audit: HarnessRun | None = None) -> tuple[dict[str, bytes], str, str | None, dict[str, bytes]]:
    """The files of a result folder, the sha256 of the full accuracy log, the accuracy line, and the full
    compliance accuracy logs to keep ({sha256: bytes}). The compliance folders come from ``audit`` (a mode
    "audit" run of ``p``) or from ``p`` itself; their verifications are computed against ``p`` and ``a``."""
    perf, acc = p.performance, a.accuracy
    assert perf is not None and acc is not None and a.accuracy_log_rel is not None
    full = read_verified(a, a.accuracy_log_rel)
    full_sha = hashlib.sha256(full).hexdigest()
    txt = read_verified(a, f"{acc.rel_dir}/{hl.ACCURACY_TXT}").decode("utf-8", "replace")
    acc_line = a.accuracy_txt.metric_line if a.accuracy_txt else None
    files = {
        f"{tl.PERF_DIR}/{tl.SUMMARY}": read_verified(p, perf.summary_rel),
        f"{tl.PERF_DIR}/{tl.DETAIL}": read_verified(p, perf.detail_rel),
        f"{tl.ACC_DIR}/{tl.SUMMARY}": read_verified(a, acc.summary_rel),
        f"{tl.ACC_DIR}/{tl.DETAIL}": read_verified(a, acc.detail_rel),
        f"{tl.ACC_DIR}/{tl.ACCURACY_JSON}": truncate_accuracy_log(full),
        f"{tl.ACC_DIR}/{tl.ACCURACY_TXT}": accuracy_txt_with_hash(txt, full_sha).encode("utf-8"),
        tl.MEASUREMENTS: measurements_json(p.workload),
        tl.USER_CONF: read_verified(p, hl.USER_CONF) if hl.USER_CONF in p.manifest else b"",
        tl.README: _readme(layout, g, p, a, full_sha, acc_line),
    }
    kept: dict[str, bytes] = {}
    source = audit if audit is not None else p
    verify_only = verify_only_tests()
    for test, rel in sorted(source.compliance.items()):
        if test in verify_only:
            continue
        tfiles, tfull = compliance_files(test, p.path / perf.detail_rel, source.path / rel, a.path / a.accuracy_log_rel)
        files.update(tfiles)
        kept.update(tfull)
    # verification-only tests (TEST06 of the LLMs...): as the harness verified them, from the audit run, else the
    # performance run, else the accuracy run
    done: set[str] = set()
    for run in (r for r in (audit, p, a) if r is not None):
        for test, rel in sorted(run.compliance.items()):
            if test in verify_only and test not in done:
                done.add(test)
                files.update(verify_only_files(run, test, rel))
    return files, full_sha, acc_line, kept


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _src_files(run: HarnessRun) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for rel in (hl.RUN_JSON, hl.RECORD_JSON, *PROFILE_FILES):
        if rel in run.manifest:
            files[rel] = read_verified(run, rel)
    files[tl.REPRODUCE_JSON] = _json_bytes({
        "run_id": run.run_id,
        "profile_name": run.profile_name,
        "profile_hash": run.profile_hash,
        "image": {"reference": run.image_reference or None, "digest": run.image_digest or None},
        "scenario": run.scenario,
        "mode": run.mode,
        "workload": run.workload.get("name"),
        "settings_overrides": dict(run.overrides),
        "harness_version": run.harness_version or None,
        "seeds": dict(run.performance.seeds) if run.performance else None,
        "started_at": run.started_at or None,
        "finished_at": run.finished_at or None,
        "command": reproduce_command(run),
        "argv": list(run.reproduce_argv) or None,
        "calibration": dict(run.calibration) if run.calibration else None,
        "framework": dict(run.framework) if run.framework else None,
    })
    return files


def _rejected_files(run: HarnessRun, kind: str, reasons: Sequence[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    omitted = []
    for rel in sorted(run.manifest):
        if rel.endswith("/" + hl.TRACE_LOG):
            omitted.append(rel)
            continue
        files[rel] = read_verified(run, rel)
    files[hl.CHECKSUMS] = (run.path / hl.CHECKSUMS).read_bytes()
    files["rejection.json"] = _json_bytes({"run_id": run.run_id, "kind": kind, "reasons": list(reasons),
                                           "exit_code": run.exit_code, "status": run.status_name,
                                           "omitted": omitted})
    return files


_SRC_README = b"""# Source and reproducibility records

mlrepro runs the MLPerf LoadGen harness of the mlrepro package (https://pypi.org/project/mlrepro/) in a
container image built from a hardware/software profile. For every run placed in `results/`,
`mlrepro/<run id>/` holds:

- `run.json`: the resolved run spec the harness executed;
- `record.json`: the harness's run record (settings, seeds, LoadGen verdict, accuracy, versions);
- `reproduce.json`: profile name and hash, image reference and digest, LoadGen overrides and seeds, harness
  version, and the command that reruns it;
- `profile.yaml` when the run directory carried the resolved profile.
"""

_DOC_README = b"""# Documentation

Placeholder written by mlrepro collect: describe the system, the model and any deviations here.
Each result folder's README.md says how it was produced and how to reproduce it.
"""


@dataclass(frozen=True)
class _GroupTask:
    layout: tl.TreeLayout
    key: tuple[str, str, str]          # system id, benchmark, scenario
    perf: HarnessRun
    acc: HarnessRun
    audit: HarnessRun | None           # the mode "audit" run whose compliance folders the result holds
    src_runs: tuple[HarnessRun, ...]   # runs whose src/ record this task writes
    staging: Path
    trash: Path
    prefix: str


def _stage_group(t: _GroupTask) -> tuple[list[_Unit], list[Path], PlacedResult, str, tuple[Path, str] | None]:
    """Stage one result folder and its src records (runs in a worker). The content-addressed full accuracy log
    is staged by the caller, once per distinct log: returned as (dest, sha256) when it is not kept yet."""
    shard = t.staging / f"w{os.getpid()}"        # one staging directory per process: no lock contention
    if not shard.is_dir():
        shard.mkdir(exist_ok=True)
    w = _Writer(shard, t.trash, t.prefix)
    layout, (sid, bench, scen), p, a = t.layout, t.key, t.perf, t.acc
    g = _Group(sid, bench, scen)
    for r in t.src_runs:
        w.directory(layout.src_run_dir(r.run_id), _src_files(r))
    files, full_sha, acc_line, kept = _result_files(layout, g, p, a, t.audit)
    full_dest = layout.full_accuracy_log(full_sha)
    pending = None if os.path.exists(full_dest) else (full_dest, full_sha)
    for sha, data in sorted(kept.items()):      # compliance logs: staged before the folder that names them
        w.file(layout.full_accuracy_log(sha), data, guarded=False, same_if_size=True)
    dest = layout.result_dir(sid, bench, scen)
    state = w.directory(dest, files)
    perf = p.performance
    assert perf is not None
    item = PlacedResult(path=dest, system_id=sid, benchmark=bench, scenario=scen, performance_run=p.run_id,
                        accuracy_run=a.run_id, result=perf.result, result_unit=perf.result_unit,
                        accuracy=acc_line, replaced=state == "replace")
    return w.units, w.conflicts, item, state, pending


# --- collect -----------------------------------------------------------------------------------------

def _worker_init(lock_fd: int | None, parent: int) -> None:
    """In each worker process: drop the inherited collect lock (a worker orphaned by a killed collect must not
    keep the tree locked) and exit when the parent is gone (workers would otherwise wait forever)."""
    if lock_fd is not None:
        try:
            os.close(lock_fd)
        except OSError:
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="mlrepro-collect-parent-watch", daemon=True).start()


def _clear_work_dirs(side: Path) -> None:
    """Remove what earlier (possibly killed) collects left in staging/ and trash/. Each is first renamed aside,
    so a straggling worker of a killed collect cannot write into the new working directories."""
    for name in (tl.STAGING, tl.TRASH):
        d = side / name
        if os.path.lexists(d):
            aside = side / f".{name}-old-{os.urandom(4).hex()}"
            os.rename(d, aside)
    for old in side.glob(".*-old-*"):
        shutil.rmtree(old, ignore_errors=True)


def _check_inputs(division: str, submitter: str, system_id: str | None) -> None:
    if division not in SUPPORTED_DIVISIONS:
        raise CollectInputError(f"division {division!r}: mlrepro collects into "
                                f"{' or '.join(SUPPORTED_DIVISIONS)}")
    if not tl.valid_name(submitter):
        raise CollectInputError(f"submitter {submitter!r}: use letters, digits, '.', '_', '+', '-' "
                                "(it is a directory name)")
    if system_id is not None and not tl.valid_name(system_id):
        raise CollectInputError(f"system id {system_id!r}: use letters, digits, '.', '_', '+', '-'")


def collect(sources: Sequence[str | Path | HarnessRun] | str | Path, root: str | Path, *, submitter: str,
            division: str = "open", system_id: str | None = None,
            system_overrides: Mapping[str, str] | None = None, force: bool = False, durable: bool = True,
            sidecar: str | Path | None = None, jobs: int | None = None) -> CollectReport:
    """Collect harness runs into the submission tree at ``root``: runs already verified (a :class:`HarnessRun`
    from a runner's fetch: not hashed again, its files re-read only if they changed since), run directories and
    directories of them (verified here, each file hashed once).

    ``jobs``: worker processes that verify/parse runs and stage result folders (default: the CPU count; used
    from PARALLEL_MIN_RUNS runs on, smaller collects run in this process). ``durable``: one ``os.sync()`` before
    the renames and an fsync of each touched directory after them (power-loss safety; kill -9 safety does not
    need it). Raises ChecksumError (tampered/incomplete input), ConflictError (a different result is in the way
    and ``force`` is false), CollectInputError (bad names, no runs). Nothing is written when it raises."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    _check_inputs(division, submitter, system_id)
    root_p = Path(root).absolute()
    side = Path(sidecar).absolute() if sidecar is not None else tl.sidecar_for(root_p)
    if side == root_p or root_p in side.parents:
        raise CollectInputError(f"sidecar {side} must be outside the tree {root_p}")
    layout = tl.TreeLayout(root_p, division, submitter, side)
    verified = [s for s in sources if isinstance(s, HarnessRun)]
    paths = [s for s in sources if not isinstance(s, HarnessRun)]
    run_dirs = find_run_dirs(paths) if paths else []
    if not run_dirs and not verified:
        raise CollectInputError("no harness run directories given")
    with DirLock(side / tl.LOCK) as lock:
        _clear_work_dirs(side)
        token = f"{os.getpid()}-{os.urandom(4).hex()}"
        staging, trash = side / tl.STAGING / token, side / tl.TRASH / token
        staging.mkdir(parents=True)
        n_jobs = jobs if jobs is not None else (os.cpu_count() or 1)
        pool = None
        if n_jobs > 1 and len(run_dirs) + len(verified) >= PARALLEL_MIN_RUNS:
            pool = ProcessPoolExecutor(max_workers=n_jobs, initializer=_worker_init,
                                       initargs=(lock.fd, os.getpid()))
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            runs = _dedupe(verified + _load_all(run_dirs, pool, n_jobs))
            t1 = time.perf_counter()
            timings["verify_and_parse"] = t1 - t0
            writer = _Writer(staging, trash)
            report = _stage_all(runs, layout, writer, system_id, system_overrides or {}, pool, n_jobs)
            t2 = time.perf_counter()
            timings["stage"] = t2 - t1
            if writer.conflicts and not force:
                first = writer.conflicts[0]
                more = f" (and {len(writer.conflicts) - 1} more)" if len(writer.conflicts) > 1 else ""
                raise ConflictError(f"{first}: a different result is already there{more}; collect with force "
                                    "to replace it", str(first), tuple(str(c) for c in writer.conflicts))
            writer.commit(durable, root_p.parent, timings)
            timings["commit"] = time.perf_counter() - t2
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            _clear_work_dirs(side)
    written = len(writer.units)
    return CollectReport(tree=root_p, sidecar=side, division=division, submitter=submitter,
                         placed=report["placed"], unchanged=report["unchanged"], rejected=report["rejected"],
                         systems=report["systems"], system_findings=report["system_findings"],
                         notes=report["notes"], written=written,
                         timings={k: round(v, 3) for k, v in timings.items()})


def _stage_all(runs: list[HarnessRun], layout: tl.TreeLayout, w: _Writer, system_id: str | None,
               overrides: Mapping[str, str], pool: ProcessPoolExecutor | None, jobs: int) -> dict[str, Any]:
    division = layout.division
    rejected: list[RejectedRun] = []
    notes: list[str] = []
    descs: dict[str, dict[str, str]] = {}
    groups: dict[tuple[str, str, str], _Group] = {}
    run_system: dict[str, str] = {}
    fallback = sorted({r.workload.get("name", "") for r in runs if r.fallback_used})
    if fallback:
        notes.append("run records lack workload.benchmark/model_mapping for "
                     f"{', '.join(fallback)}: used the installed workloads' own")

    def reject(run: HarnessRun, kind: str, reasons: Sequence[str]) -> None:
        kept = None
        if kind in ("failed", "invalid", "not-allowed"):
            kept = layout.rejected_dir(run.run_id)
            w.directory(kept, _rejected_files(run, kind, reasons), guarded=False)
        rejected.append(RejectedRun(run.run_id, run.path, kind, tuple(reasons), kept))

    # 1. judge every run, group the acceptable ones by result folder
    desc_cache: dict[tuple[str, str], tuple[dict[str, str], str]] = {}
    for run in runs:
        backend = str(run.workload.get("backend") or "")
        cache_key = (run.manifest.get(hl.SYSTEM_JSON, run.run_id), backend)
        cached = desc_cache.get(cache_key)
        if cached is None:
            desc = build_system_desc(run.system, division=division, submitter=layout.submitter, backend=backend,
                                     overrides=overrides)
            cached = desc_cache[cache_key] = (desc, system_id or derive_system_id(desc))
        desc, sid = cached
        reasons = list(run.problems)
        extra = _division_problems(run, division)
        if reasons:
            reject(run, run.rejection_kind, reasons + extra)
            continue
        if extra:
            reject(run, "not-allowed", extra)
            continue
        known = descs.get(sid)
        if known is not None and known != desc:
            raise CollectInputError(f"system id {sid!r} names two different systems (runs "
                                    f"{run_system[sid]} and {run.run_id}); give distinct ids or none")
        descs.setdefault(sid, desc)
        run_system.setdefault(sid, run.run_id)
        g = groups.setdefault((sid, run.benchmark, run.scenario), _Group(sid, run.benchmark, run.scenario))
        if run.mode == "audit":
            g.audits.append(run)
        if run.performance is not None:
            g.perf.append(run)
        if run.accuracy is not None:
            g.acc.append(run)

    # 2. choose the runs of each result folder
    chosen: list[tuple[_Group, HarnessRun, HarnessRun]] = []
    audit_of: dict[str, HarnessRun] = {}
    for key in sorted(groups):
        g = groups[key]
        for r in g.audits:
            audited = next((x for x in g.perf if x.run_id == r.audit_of), None)
            if audited is None:
                rejected.append(RejectedRun(r.run_id, r.path, "incomplete", (
                    f"the compliance tests of run {r.audit_of}, which is not among the collected runs of this "
                    "system/benchmark/scenario; collect them together",)))
        members = sorted({r.run_id: r for r in g.perf + g.acc}.values(), key=_order)
        rel = layout.result_rel(g.system_id, g.benchmark, g.scenario)
        if not g.perf or not g.acc:
            missing = "accuracy" if not g.acc else "performance"
            for r in members + [x for x in g.audits if any(y.run_id == x.audit_of for y in g.perf)]:
                reason = (f"no {missing} run for {rel}; collect "
                          f"{'an' if missing == 'accuracy' else 'a'} {missing} run of the same "
                          "system/benchmark/scenario together with it (or run --mode submission)")
                rejected.append(RejectedRun(r.run_id, r.path, "incomplete", (reason,)))
            continue
        p, a = max(g.perf, key=_order), max(g.acc, key=_order)
        for r in members:
            if r.run_id not in (p.run_id, a.run_id):
                winner = p.run_id if r in g.perf else a.run_id
                rejected.append(RejectedRun(r.run_id, r.path, "superseded",
                                            (f"superseded by run {winner} for {rel}",)))
        audits = sorted((r for r in g.audits if r.audit_of == p.run_id), key=_order)
        for r in audits[:-1]:
            rejected.append(RejectedRun(r.run_id, r.path, "superseded",
                                        (f"superseded by audit run {audits[-1].run_id} for {rel}",)))
        for r in g.audits:
            if r.audit_of != p.run_id and any(x.run_id == r.audit_of for x in g.perf):
                rejected.append(RejectedRun(r.run_id, r.path, "superseded",
                                            (f"audits run {r.audit_of}, superseded by {p.run_id} for {rel}",)))
        if audits:
            audit_of[p.run_id] = audits[-1]
        chosen.append((g, p, a))

    # 3. stage: systems, model mapping, READMEs, src records, full accuracy logs, result folders
    used_systems = sorted({g.system_id for g, _, _ in chosen})
    for sid in used_systems:
        w.file(layout.system_json(sid), desc_json(descs[sid]))
    if division == "open":
        _stage_model_mapping(layout, w, chosen)
    if chosen:
        w.file(layout.src_dir / tl.README, _SRC_README, only_if_missing=True)
        w.file(layout.documentation_dir / tl.README, _DOC_README, only_if_missing=True)
    src_done: set[str] = set()
    tasks: list[_GroupTask] = []
    for i, (g, p, a) in enumerate(chosen):
        src_runs = []
        audit = audit_of.get(p.run_id)
        for r in (p, a, audit) if audit is not None else (p, a):
            if r.run_id not in src_done:
                src_done.add(r.run_id)
                src_runs.append(r)
        tasks.append(_GroupTask(layout, (g.system_id, g.benchmark, g.scenario), p, a, audit, tuple(src_runs),
                                w.staging, w.trash, f"g{i:07d}-"))
    if pool is not None and len(tasks) >= PARALLEL_MIN_RUNS:
        outcomes = list(pool.map(_stage_group, tasks, chunksize=_chunk(len(tasks), jobs)))
    else:
        outcomes = list(map(_stage_group, tasks))
    placed: list[PlacedResult] = []
    unchanged: list[PlacedResult] = []
    full_logs: dict[Path, HarnessRun] = {}
    for (units, conflicts, item, state, pending), task in zip(outcomes, tasks):
        w.units.extend(units)
        w.conflicts.extend(conflicts)
        (unchanged if state == "unchanged" else placed).append(item)
        if pending is not None and pending[0] not in full_logs:
            full_logs[pending[0]] = task.acc
    # full accuracy logs first in the commit order: a result folder never names a log that is not kept
    units_before = len(w.units)
    for dest, run in full_logs.items():
        assert run.accuracy_log_rel is not None
        w.file(dest, read_verified(run, run.accuracy_log_rel), guarded=False, same_if_size=True)
    w.units[:] = w.units[units_before:] + w.units[:units_before]
    findings = {sid: tuple(submission_blockers(descs[sid], division=division)) for sid in used_systems}
    return {"placed": tuple(placed), "unchanged": tuple(unchanged), "rejected": tuple(rejected),
            "systems": tuple(used_systems), "system_findings": findings, "notes": tuple(notes)}


def _stage_model_mapping(layout: tl.TreeLayout, w: _Writer,
                         chosen: Sequence[tuple[_Group, HarnessRun, HarnessRun]]) -> None:
    wanted: dict[str, str] = {}
    for g, p, _ in chosen:
        if g.benchmark not in checker_benchmarks():
            wanted[g.benchmark] = p.model_mapping[g.benchmark]
    if not wanted:
        return
    path = layout.model_mapping
    existing: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_bytes())
            existing = loaded if isinstance(loaded, dict) else {}
            if not isinstance(loaded, dict):
                w.conflicts.append(path)
        except (OSError, ValueError):
            w.conflicts.append(path)
    merged = dict(existing)
    for k, v in wanted.items():
        if k in existing and existing[k] != v:
            w.conflicts.append(path)
        merged[k] = v
    if merged != existing or not path.exists():
        w.file(path, _json_bytes(merged), guarded=False)
