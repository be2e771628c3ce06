"""mlrepro's own check of a submission tree.

The official MLCommons checker (``python3 -m submission_checker.main --input DIR --version v6.1``, from the
mlcommons/inference repository) is not a PyPI package and is not installed here; run it as well before
submitting. This check covers what mlrepro produces plus the gaps of the official one: it rejects performance
logs that say ``Result is : INVALID`` and any LoadGen error (``:::MLLOG`` entries with ``is_error: true``), which
the official checker lets through (the first always, the second unless ``--submission-exceptions`` is off).

Checked: structure (divisions, ``systems/``, ``src/``, ``results/``), every systems json (checker's required
fields, non-empty strings, status, system type, division/submitter equal to the directory names), benchmark names
(closed: MLPerf names; open: MLPerf names or ``model_mapping.json`` entries), each result folder's required files,
``Result is : VALID``, LoadGen errors, non-zero RNG seeds, scenario consistency, minimum duration (600 s; an error
in the closed division, a warning in the open one), ``measurements.json`` keys, compliance folders in the closed division (TEST01 present), ``accuracy.txt`` (metric line and
``hash=`` equal to the sha256 of the full accuracy log kept in the sidecar, or of the log itself when it was
small enough to keep whole), accuracy log size <= 10 KiB.

Public API::

    check_tree(root, *, sidecar=None) -> CheckReport
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrepro.harness.logparse import parse_detail, parse_summary
from mlrepro.results import layout as tl
from mlrepro.results.accuracy import MAX_ACCURACY_LOG_SIZE, parse_accuracy_txt
from mlrepro.results.measurements import REQUIRED_KEYS as MEASUREMENT_KEYS
from mlrepro.results.rundir import CHECKER_BENCHMARKS, relevant_detail_lines
from mlrepro.results.systems import system_desc_problems

MIN_DURATION_MS = 600_000
OFFICIAL_CHECKER_NOTE = ("the official MLCommons submission checker is not installed here (it is not on PyPI); "
                         "run `python3 -m submission_checker.main --input <tree> --version v6.1` from a "
                         "mlcommons/inference checkout as well")
_IGNORED_ROOT_DIRS = {".git", ".github", "assets"}
_PERF_FILES = {tl.SUMMARY, tl.DETAIL}
_PERF_OPTIONAL = {tl.ACCURACY_JSON, "mlperf_log_trace.json"}


@dataclass(frozen=True)
class Finding:
    severity: str      # error | warning
    code: str          # e.g. INVALID_RESULT, LOADGEN_ERROR, MISSING_FILE, SYSTEM_DESC, ACCURACY_HASH ...
    path: str          # relative to the tree root
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message} [{self.code}]"


@dataclass(frozen=True)
class CheckReport:
    tree: Path
    findings: tuple[Finding, ...]
    results_checked: int
    systems_checked: int
    note: str = OFFICIAL_CHECKER_NOTE

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors


class _Checker:
    def __init__(self, root: Path, sidecar: Path) -> None:
        self.root = root
        self.sidecar = sidecar
        self.findings: list[Finding] = []
        self.results = 0
        self.systems = 0

    def add(self, severity: str, code: str, path: Path | str, message: str) -> None:
        rel = path.relative_to(self.root).as_posix() if isinstance(path, Path) else path
        self.findings.append(Finding(severity, code, rel, message))

    def err(self, code: str, path: Path | str, message: str) -> None:
        self.add("error", code, path, message)

    def warn(self, code: str, path: Path | str, message: str) -> None:
        self.add("warning", code, path, message)

    # -- tree ----------------------------------------------------------------------------------------

    def run(self) -> None:
        if not self.root.is_dir():
            self.err("STRUCTURE", ".", "the tree root is not a directory")
            return
        divisions = 0
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir():
                if entry.name in tl.DIVISIONS:
                    divisions += 1
                    for sub in sorted(p for p in entry.iterdir() if p.is_dir()):
                        self.submitter(entry.name, sub)
                elif entry.name not in _IGNORED_ROOT_DIRS:
                    self.err("STRUCTURE", entry, "unknown directory in the tree root (not a division)")
            elif not entry.name.endswith((".md", ".pdf")):
                self.err("STRUCTURE", entry, "file outside the division folders")
        if divisions == 0:
            self.err("STRUCTURE", ".", "no division folder (closed, open or network)")

    def submitter(self, division: str, sub: Path) -> None:
        submitter = sub.name
        for name in (tl.SYSTEMS, tl.SRC, tl.RESULTS):
            if not (sub / name).is_dir():
                self.err("STRUCTURE", sub / name, "required folder is missing")
        if not (sub / tl.DOCUMENTATION).is_dir():
            self.warn("STRUCTURE", sub / tl.DOCUMENTATION, "documentation folder is missing")
        if (sub / "code").is_dir():
            self.warn("STRUCTURE", sub / "code", "v5.x 'code' folder: v6.x checkers look for 'src'")
        mapping: dict[str, Any] = {}
        mpath = sub / tl.MODEL_MAPPING
        if mpath.exists():
            try:
                loaded = json.loads(mpath.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                self.err("MODEL_MAPPING", mpath, f"unreadable ({exc})")
            else:
                if isinstance(loaded, dict):
                    mapping = loaded
                else:
                    self.err("MODEL_MAPPING", mpath, "not a JSON object")
            if division != "open":
                self.warn("MODEL_MAPPING", mpath, "model_mapping.json is only read in the open division")
            for k, v in mapping.items():
                if v not in CHECKER_BENCHMARKS:
                    self.err("MODEL_MAPPING", mpath, f"{k!r} maps to {v!r}, which is not an MLPerf benchmark")
        systems: dict[str, dict[str, Any] | None] = {}
        if (sub / tl.SYSTEMS).is_dir():
            for f in sorted((sub / tl.SYSTEMS).glob("*.json")):
                systems[f.stem] = self.system(f, division, submitter)
        results = sub / tl.RESULTS
        if not results.is_dir():
            return
        for sysdir in sorted(p for p in results.iterdir() if p.is_dir()):
            if sysdir.name not in systems:
                self.err("SYSTEM_DESC", sysdir, f"no systems/{sysdir.name}.json for this system")
            for bdir in sorted(p for p in sysdir.iterdir() if p.is_dir()):
                bench = bdir.name
                if bench not in CHECKER_BENCHMARKS:
                    if division != "open":
                        self.err("BENCHMARK", bdir, f"{bench!r} is not an MLPerf benchmark name")
                    elif mapping.get(bench) not in CHECKER_BENCHMARKS:
                        self.err("BENCHMARK", bdir, f"{bench!r} is neither an MLPerf benchmark nor mapped to "
                                 "one in model_mapping.json (the official checker crashes on it)")
                mapped = mapping.get(bench, bench) if division == "open" else bench
                for sdir in sorted(p for p in bdir.iterdir() if p.is_dir()):
                    self.result(division, sdir, str(mapped))

    def system(self, path: Path, division: str, submitter: str) -> dict[str, Any] | None:
        self.systems += 1
        try:
            desc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.err("SYSTEM_DESC", path, f"unreadable ({exc})")
            return None
        if not isinstance(desc, dict):
            self.err("SYSTEM_DESC", path, "not a JSON object")
            return None
        for problem in system_desc_problems(desc, division=division, submitter=submitter):
            self.err("SYSTEM_DESC", path, problem)
        return desc

    # -- one result folder ---------------------------------------------------------------------------

    def result(self, division: str, sdir: Path, benchmark: str) -> None:
        self.results += 1
        scenario = sdir.name
        if scenario not in tl.SCENARIO_NAMES:
            self.err("STRUCTURE", sdir, f"{scenario!r} is not a scenario")
        required = [tl.MEASUREMENTS, tl.USER_CONF, tl.README,
                    f"{tl.PERF_DIR}/{tl.SUMMARY}", f"{tl.PERF_DIR}/{tl.DETAIL}",
                    f"{tl.ACC_DIR}/{tl.SUMMARY}", f"{tl.ACC_DIR}/{tl.DETAIL}",
                    f"{tl.ACC_DIR}/{tl.ACCURACY_JSON}", f"{tl.ACC_DIR}/{tl.ACCURACY_TXT}"]
        for rel in required:
            if not (sdir / rel).is_file():
                self.err("MISSING_FILE", sdir / rel, "required file is missing")
        perf = sdir / tl.PERF_DIR
        if perf.is_dir():
            extra = sorted(p.name for p in perf.iterdir() if p.name not in _PERF_FILES | _PERF_OPTIONAL)
            if extra:
                self.warn("STRUCTURE", perf, f"unexpected files: {', '.join(extra)}")
        if division == "closed" and not (sdir / "TEST01").is_dir():
            self.err("COMPLIANCE", sdir, "closed-division results need the compliance runs (TEST01, and TEST04 "
                     "or TEST06 depending on the benchmark); mlrepro does not produce them yet")
        self.performance(division, sdir, scenario)
        self.accuracy(sdir, scenario, benchmark)
        self.measurements(sdir / tl.MEASUREMENTS)

    def performance(self, division: str, sdir: Path, scenario: str) -> None:
        summary_path = sdir / tl.PERF_DIR / tl.SUMMARY
        if summary_path.is_file():
            summary = parse_summary(summary_path.read_text(encoding="utf-8", errors="replace"))
            if summary.validity != "VALID":
                self.err("INVALID_RESULT", summary_path,
                         f"Result is : {summary.validity or '(missing)'} (a performance run must be VALID)")
            if summary.scenario and summary.scenario != scenario:
                self.err("SCENARIO", summary_path, f"log says scenario {summary.scenario}, folder says {scenario}")
        detail_path = sdir / tl.PERF_DIR / tl.DETAIL
        if detail_path.is_file():
            detail = self.detail(detail_path, scenario)
            if detail.validity not in (None, "VALID"):
                self.err("INVALID_RESULT", detail_path, f"result_validity is {detail.validity}")
            seeds = detail.seeds
            zero = sorted(k for k, v in seeds.items() if not v)
            if zero:
                self.err("SEEDS", detail_path, f"RNG seed(s) {', '.join(zero)} are 0 or missing "
                         "(mlperf.conf was not loaded)")
            dur = detail.effective.get("effective_min_duration_ms")
            if isinstance(dur, (int, float)) and dur < MIN_DURATION_MS:
                self.add("error" if division == "closed" else "warning", "SHORT_RUN", detail_path,
                         f"min_duration {dur:g} ms is below the 600 s MLPerf requires (the official checker "
                         "rejects it)")

    def detail(self, path: Path, scenario: str) -> Any:
        detail = parse_detail(relevant_detail_lines(path.read_text(encoding="utf-8", errors="replace")))
        for e in detail.errors:
            self.err("LOADGEN_ERROR", path, f"LoadGen error: {e.value}")
        if detail.entry_count == 0:
            self.err("MISSING_FILE", path, "no :::MLLOG entries (not a LoadGen detail log)")
        if detail.scenario and detail.scenario != scenario:
            self.err("SCENARIO", path, f"log says scenario {detail.scenario}, folder says {scenario}")
        return detail

    def accuracy(self, sdir: Path, scenario: str, benchmark: str) -> None:
        acc = sdir / tl.ACC_DIR
        detail_path = acc / tl.DETAIL
        if detail_path.is_file():
            self.detail(detail_path, scenario)
        log = acc / tl.ACCURACY_JSON
        size = log.stat().st_size if log.is_file() else None
        if size is not None and size > MAX_ACCURACY_LOG_SIZE:
            self.err("TRUNCATION", log, f"{size} bytes: must be truncated to at most {MAX_ACCURACY_LOG_SIZE}")
        txt_path = acc / tl.ACCURACY_TXT
        if not txt_path.is_file():
            return
        parsed = parse_accuracy_txt(txt_path.read_text(encoding="utf-8", errors="replace"), benchmark)
        if parsed.metric_line is None:
            self.err("ACCURACY_FORMAT", txt_path, f"no line matching the {benchmark} accuracy pattern "
                     "(e.g. accuracy=NN.NNN%)")
        if parsed.hash is None:
            self.err("ACCURACY_FORMAT", txt_path, "no hash=<sha256 of the full mlperf_log_accuracy.json> line")
            return
        full = tl.full_accuracy_log(self.sidecar, parsed.hash)
        if full.is_file():
            digest = _sha256(full)
            if digest != parsed.hash:
                self.err("ACCURACY_HASH", full, f"the kept full log is corrupt: its sha256 is {digest[:12]}..., "
                         f"accuracy.txt names {parsed.hash[:12]}...")
            head = log.read_bytes()[:64] if log.is_file() else b""
            if head and not full.read_bytes().startswith(head):
                self.err("ACCURACY_HASH", log, "the truncated log does not start like the full log")
        elif size is not None and size <= MAX_ACCURACY_LOG_SIZE and _sha256(log) == parsed.hash:
            pass  # small log: the tree holds the full log itself
        elif size is not None and size <= MAX_ACCURACY_LOG_SIZE and not _looks_truncated(log):
            self.err("ACCURACY_HASH", txt_path, f"hash= {parsed.hash[:12]}... is not the sha256 of "
                     f"{tl.ACCURACY_JSON} ({_sha256(log)[:12]}...), and no full log with that hash is kept")
        elif full.parent.is_dir():
            self.err("ACCURACY_HASH", txt_path, f"hash= {parsed.hash[:12]}... names no kept full accuracy log "
                     f"(expected {full}): the hash or the kept logs were changed")
        else:
            self.warn("ACCURACY_HASH", txt_path, f"no kept full accuracy logs beside the tree ({full.parent}): "
                      "hash not verified")

    def measurements(self, path: Path) -> None:
        if not path.is_file():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.err("MEASUREMENTS", path, f"unreadable ({exc})")
            return
        if not isinstance(data, dict):
            self.err("MEASUREMENTS", path, "not a JSON object")
            return
        for key in MEASUREMENT_KEYS:
            if key not in data:
                self.err("MEASUREMENTS", path, f"key {key} is missing")
            elif data[key] in ("", None):
                self.err("MEASUREMENTS", path, f"key {key} is empty")


def _looks_truncated(path: Path) -> bool:
    return b"\n\n...\n\n" in path.read_bytes()


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_tree(root: str | Path, *, sidecar: str | Path | None = None) -> CheckReport:
    """Check the submission tree at ``root``; ``sidecar`` (default ``<root>.mlrepro``) holds the full accuracy
    logs. Never raises for content problems: they are findings."""
    root_p = Path(root).absolute()
    side = Path(sidecar).absolute() if sidecar is not None else tl.sidecar_for(root_p)
    c = _Checker(root_p, side)
    c.run()
    return CheckReport(tree=root_p, findings=tuple(c.findings), results_checked=c.results,
                       systems_checked=c.systems)
check = check_tree
