"""The results layout: the only contract between the harness and ``collect``.

Everything one harness invocation writes lives under ``<results>/<run_id>/`` (``<results>`` is the mounted
results volume, ``--results``)::

    <results>/<run_id>/
        run.json                 copy of the run spec as the harness read it (RunSpec.to_json())
        user.conf                the user.conf the timed run loaded after mlperf.conf (userconf.compose_user_conf:
                                 the profile's lines, the setting overrides, the calibrated targets)
        system.json              system description captured where the harness ran (sysinfo.collect_system())
        <Scenario>/              (Interactive: its own folder; LoadGen runs it as Server)
            performance/run_1/   performance run (modes "performance" and "submission")
                mlperf_log_summary.txt
                mlperf_log_detail.txt
                mlperf_log_accuracy.json
                mlperf_log_trace.json        (only when spec.enable_trace)
            calibration/<probe>/ calibration probes (logs + the probe's user.conf); invalid-attempt-1/ when an
                                 INVALID timed run was recalibrated and re-run
            accuracy/            accuracy run (modes "accuracy" and "submission")
                mlperf_log_summary.txt
                mlperf_log_detail.txt
                mlperf_log_accuracy.json     full, never truncated (collect truncates for the tree)
                accuracy.txt                 "<metric>=<value><unit>" then "hash=<sha256 of mlperf_log_accuracy.json>"
            TEST01/ TEST04/      compliance tests (spec.compliance; mode "audit" runs only these); TEST06/ for
                                 LLMs (verify_accuracy.txt: first token, EOS, sample length checks)
                audit.config                 the test's LoadGen settings, handed to LoadGen for this run only
                performance/run_1/           the audit run's logs (TEST01: mlperf_log_accuracy.json holds the
                                             sampled responses)
                verify_performance.txt       against performance/run_1 of this run (when it has one)
                verify_accuracy.txt          TEST01, against accuracy/ of this run (when it has one)
        record.json              the run record (record.py): status, exit code, settings, seeds, results, errors
        checksums.sha256         sha256sum format manifest of every file above (written last)

``record.json`` and ``checksums.sha256`` are written even when the run fails, covering whatever exists.
Paths inside ``record.json`` and ``checksums.sha256`` are relative to ``<results>/<run_id>/`` with ``/`` separators.
A file ``audit.config`` placed in ``<results>/<run_id>/`` before the run is handed to LoadGen (compliance tests);
the working directory's ``audit.config`` is never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlrepro.harness.checksums import MANIFEST_NAME as CHECKSUMS

RUN_JSON = "run.json"
USER_CONF = "user.conf"
SYSTEM_JSON = "system.json"
RECORD_JSON = "record.json"
AUDIT_CONFIG = "audit.config"
ACCURACY_TXT = "accuracy.txt"

SUMMARY_LOG = "mlperf_log_summary.txt"
DETAIL_LOG = "mlperf_log_detail.txt"
ACCURACY_LOG = "mlperf_log_accuracy.json"
TRACE_LOG = "mlperf_log_trace.json"

PERFORMANCE = "performance"
ACCURACY = "accuracy"
CALIBRATION = "calibration"


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run's results. Pure path arithmetic: creates nothing."""

    results_dir: Path
    run_id: str
    scenario: str

    @property
    def run_dir(self) -> Path:
        return self.results_dir / self.run_id

    @property
    def scenario_dir(self) -> Path:
        return self.run_dir / self.scenario

    @property
    def performance_dir(self) -> Path:
        return self.scenario_dir / PERFORMANCE / "run_1"

    @property
    def accuracy_dir(self) -> Path:
        return self.scenario_dir / ACCURACY

    def subrun_dir(self, kind: str) -> Path:
        """Directory of a sub-run: ``kind`` is "performance" or "accuracy"."""
        if kind == PERFORMANCE:
            return self.performance_dir
        if kind == ACCURACY:
            return self.accuracy_dir
        raise ValueError(f"unknown sub-run kind {kind!r}")

    def compliance_dir(self, test: str) -> Path:
        """A compliance test's folder (``TEST01``, ``TEST04``)."""
        return self.scenario_dir / test

    @property
    def calibration_dir(self) -> Path:
        """Calibration probes' logs (one folder per probe) and a failed attempt that was re-run."""
        return self.scenario_dir / CALIBRATION

    @property
    def run_json(self) -> Path:
        return self.run_dir / RUN_JSON

    @property
    def user_conf(self) -> Path:
        return self.run_dir / USER_CONF

    @property
    def system_json(self) -> Path:
        return self.run_dir / SYSTEM_JSON

    @property
    def record_json(self) -> Path:
        return self.run_dir / RECORD_JSON

    @property
    def checksums(self) -> Path:
        return self.run_dir / CHECKSUMS

    @property
    def audit_config(self) -> Path:
        return self.run_dir / AUDIT_CONFIG

    def relative(self, path: Path) -> str:
        """``path`` relative to the run directory, with ``/`` separators."""
        return path.relative_to(self.run_dir).as_posix()


def subruns_for_mode(mode: str) -> tuple[str, ...]:
    """The sub-runs a spec mode performs, in order."""
    if mode == "performance":
        return (PERFORMANCE,)
    if mode == "accuracy":
        return (ACCURACY,)
    if mode == "submission":
        return (PERFORMANCE, ACCURACY)
    if mode in ("calibrate", "audit"):
        return ()
    raise ValueError(f"unknown mode {mode!r}")
