"""Paths of an MLPerf inference submission tree (checker v6.x layout) and of mlrepro's sidecar beside it.

Tree (what is submitted and what the official checker reads)::

    <root>/<division>/<Submitter>/
        systems/<system_id>.json
        src/                      README.md; mlrepro/<run_id>/{run.json, record.json, reproduce.json, profile.yaml?}
        documentation/README.md
        model_mapping.json        (open division only)
        results/<system_id>/<benchmark>/<Scenario>/
            performance/run_1/{mlperf_log_summary.txt, mlperf_log_detail.txt}
            accuracy/{mlperf_log_summary.txt, mlperf_log_detail.txt, mlperf_log_accuracy.json, accuracy.txt}
            measurements.json, user.conf, README.md

Sidecar ``<root>.mlrepro/`` (a sibling of the tree, so nothing in it is ever submitted or seen by the checker;
older checkers log an error for any unknown directory in the root)::

    full_accuracy_logs/<sha256>.json     untruncated mlperf_log_accuracy.json files, named by the sha256 that
                                         the result's accuracy.txt carries on its hash= line
    rejected/<run_id>/                                       failed / INVALID runs with rejection.json
    staging/  trash/  collect.lock                           collect's private working area
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlrepro.harness import layout as hl
from mlrepro.harness.scenarios import SCENARIOS as SCENARIO_NAMES  # noqa: F401 - the result folders collect writes
from mlrepro.results.rounds import load_round

#: the round whose layout collect writes: the newest (the v6 layout). Where things are in a tree is the round's
#: data (rounds/data/common.yaml ``layouts`` and ``files``); the names of LoadGen's logs are LoadGen's
#: (mlrepro.harness.layout). The rest of this module is path arithmetic over those.
ROUND = load_round()
DIVISIONS = ROUND.divisions
SYSTEMS = "systems"
SRC = ROUND.layout.code_dir
DOCUMENTATION = "documentation"
RESULTS = ROUND.layout.result_dir.split("/", 1)[0]
MODEL_MAPPING = "model_mapping.json"
MEASUREMENTS = ROUND.layout.measurements_file or "measurements.json"
USER_CONF, README = ROUND.files.measurements_required
PERF_DIR = ROUND.files.performance_dir
ACC_DIR = ROUND.files.accuracy_dir
SUMMARY = hl.SUMMARY_LOG
DETAIL = hl.DETAIL_LOG
ACCURACY_JSON = hl.ACCURACY_LOG
ACCURACY_TXT = hl.ACCURACY_TXT
SRC_MLREPRO = "mlrepro"                 # src/mlrepro/<run_id>/ holds each run's records
REPRODUCE_JSON = "reproduce.json"
#: a result README.md that collect wrote starts its body with README_MARK and names the runs in a table row
#: "| README_RUN_ID_ROW | <performance run> | <accuracy run> |" (mlrepro.results.tree reads it back)
README_MARK = "Collected by mlrepro"
README_RUN_ID_ROW = "run id"

SIDECAR_SUFFIX = ".mlrepro"
FULL_ACCURACY = "full_accuracy_logs"
REJECTED = "rejected"
STAGING = "staging"
TRASH = "trash"
LOCK = "collect.lock"

#: files of a result folder collect writes, relative to the folder
RESULT_FILES = (
    f"{PERF_DIR}/{SUMMARY}", f"{PERF_DIR}/{DETAIL}",
    f"{ACC_DIR}/{SUMMARY}", f"{ACC_DIR}/{DETAIL}", f"{ACC_DIR}/{ACCURACY_JSON}", f"{ACC_DIR}/{ACCURACY_TXT}",
    MEASUREMENTS, USER_CONF, README,
)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def valid_name(name: str) -> bool:
    """A safe single path component for submitter / system id / benchmark names."""
    return bool(_NAME_RE.match(name)) and len(name) <= 128 and name not in (".", "..")


def sanitize_name(text: str, max_len: int = 64) -> str:
    """``text`` reduced to ``[A-Za-z0-9._+-]`` (runs of anything else become ``_``), non-empty."""
    out = re.sub(r"[^A-Za-z0-9._+-]+", "_", text.strip()).strip("._-+")
    out = out[:max_len].rstrip("._-+")
    return out or "system"


@dataclass(frozen=True)
class TreeLayout:
    """Path arithmetic for one ``<division>/<Submitter>`` of a tree. Creates nothing."""

    root: Path
    division: str
    submitter: str
    sidecar_dir: Path | None = None

    @property
    def submitter_dir(self) -> Path:
        return self.root / self.division / self.submitter

    @property
    def rel_submitter(self) -> str:
        return f"{self.division}/{self.submitter}"

    @property
    def systems_dir(self) -> Path:
        return self.submitter_dir / SYSTEMS

    def system_json(self, system_id: str) -> Path:
        return self.systems_dir / f"{system_id}.json"

    @property
    def src_dir(self) -> Path:
        return self.submitter_dir / SRC

    def src_run_dir(self, run_id: str) -> Path:
        return self.src_dir / SRC_MLREPRO / run_id

    @property
    def documentation_dir(self) -> Path:
        return self.submitter_dir / DOCUMENTATION

    @property
    def model_mapping(self) -> Path:
        return self.submitter_dir / MODEL_MAPPING

    @property
    def results_dir(self) -> Path:
        return self.submitter_dir / RESULTS

    def result_rel(self, system_id: str, benchmark: str, scenario: str) -> str:
        """The result folder relative to the tree root (the round's ``result_dir`` template)."""
        return f"{self.rel_submitter}/{ROUND.layout.path(ROUND.layout.result_dir, system_id, benchmark, scenario)}"

    def result_dir(self, system_id: str, benchmark: str, scenario: str) -> Path:
        return self.root / self.result_rel(system_id, benchmark, scenario)

    # -- sidecar ---------------------------------------------------------------------------------

    @property
    def sidecar(self) -> Path:
        return self.sidecar_dir if self.sidecar_dir is not None else sidecar_for(self.root)

    def full_accuracy_log(self, sha256: str) -> Path:
        return full_accuracy_log(self.sidecar, sha256)

    def rejected_dir(self, run_id: str) -> Path:
        return self.sidecar / REJECTED / self.rel_submitter / run_id


def full_accuracy_log(sidecar: Path, sha256: str) -> Path:
    """Where the full accuracy log whose sha256 ``accuracy.txt`` names is kept (content-addressed)."""
    return sidecar / FULL_ACCURACY / f"{sha256.lower()}.json"


def sidecar_for(root: Path) -> Path:
    """The default sidecar of a tree: ``<root>.mlrepro`` beside it."""
    root = Path(root)
    return root.parent / f"{root.name}{SIDECAR_SUFFIX}"
