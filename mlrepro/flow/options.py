"""What a launch is asked (:class:`PipelineOptions`) and what it gives back (:class:`PipelineResult`, one
:class:`RunSummary` per run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.runners.base import DEFAULT_PENDING_TIMEOUT_S, KubeTarget
from mlrepro.runners.targets import AUTO
from mlrepro.state.status import RunStatus

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.results.rundir import HarnessRun
    from mlrepro.results.submission import CollectReport


@dataclass(frozen=True)
class PipelineOptions:
    target: str = AUTO                    # a name of the runner table (mlrepro.runners.targets), or auto
    scenarios: Sequence[str] = ()
    modes: Sequence[str] = ()
    into: Path | None = Path("submission")
    division: str = "open"
    submitter: str = "mlrepro"
    system_overrides: Mapping[str, str] = field(default_factory=dict)   # systems-json fields (notes, contact)
    collect: bool = True
    parallel: int = 1
    results_dir: Path | None = None       # docker: bind-mount this host directory instead of named volumes
    force: bool = False                   # collect: replace a different existing result
    image: str | None = None              # docker, kubernetes: use this image instead of preparing one
    stream_logs: bool = True              # print the harness's output while it runs (prefixed by run when parallel)
    keep_results: bool = False            # keep a run's results volume / claim after its results are fetched
    keep_server: bool = False             # leave a run's model server running after it (--keep-server)
    kube: KubeTarget = field(default_factory=KubeTarget)
    registry: str | None = None           # kubernetes: build + push here when no push is recorded
    pending_timeout_s: float = DEFAULT_PENDING_TIMEOUT_S
    recalibrate: bool = False             # ignore cached calibrations of this profile (they are replaced)
    find_peak: bool = False               # Server: search the highest VALID target QPS more finely
    user_conf: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(scenario, mode) -> the whole user.conf that run loads instead of the one the profile's ``user_conf`` and
    ``settings`` compose (``mlrepro reproduce``: a recorded user.conf, its targets pinned, nothing recalibrated)."""


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    scenario: str
    mode: str
    status: str
    exit_code: int | None
    result: float | None = None
    result_unit: str = ""
    validity: str | None = None
    accuracy: float | None = None
    duration_s: float = 0.0
    results_dir: Path | None = None
    message: str = ""
    profile: str = ""
    loadgen_target: dict | None = None    # the record's target decision: setting, value, source, cost_s ...
    tokens_per_second: float | None = None   # an LLM run: tokens/s (the result of its performance run)
    ttft_p99_ns: float | None = None      # an LLM run: TTFT and TPOT 99th percentiles as LoadGen logged them
    tpot_p99_ns: float | None = None
    notes: tuple[str, ...] = ()           # framework version differing from the pin, a recalibration ...
    compliance_failed: tuple[str, ...] = ()   # compliance tests whose verification failed in the run
    run: HarnessRun | None = field(default=None, repr=False, compare=False)
    """The run's verified results as fetched (what collect places; None when nothing was fetched)."""


@dataclass(frozen=True)
class PipelineResult:
    target: str
    image: str
    runs: tuple[RunSummary, ...]
    collect_report: CollectReport | None = None
    images: tuple[str, ...] = ()
    """The image of each profile, in the order the profiles were given."""
    group: str = ""
    """The group id of this launch's runs (``mlrepro runs --group``)."""
    collect_expected: bool = False        # a tree was asked for (run --into)
    collect_error: str = ""
    """Why collecting into the tree failed (e.g. a different result is already there); the runs are kept."""

    @property
    def succeeded(self) -> bool:
        """Every run succeeded (VALID, and accuracy computed where asked)."""
        return bool(self.runs) and all(r.status == RunStatus.succeeded.value for r in self.runs)

    @property
    def problems(self) -> tuple[str, ...]:
        """Why the job did not produce what was asked for, beyond each run's own status: a compliance test that
        failed, a tree that refused the results (a different result already there), a run the tree rejected."""
        report = self.collect_report
        failed = tuple(f"{r.run_id}: compliance {t} failed" for r in self.runs for t in r.compliance_failed)
        if not self.collect_expected or not self.succeeded:
            return failed
        if self.collect_error:
            return failed + (self.collect_error,)
        rejected = [r for r in (report.rejected if report else ()) if r.kind not in ("incomplete", "superseded")]
        if rejected and report is not None and not report.results:
            why = "; ".join(f"{r.run_id}: {'; '.join(r.reasons)}" for r in rejected)
            return failed + (f"nothing was placed in the submission tree ({why})",)
        return failed + tuple(f"{r.run_id}: not placed in the tree ({r.kind}: {'; '.join(r.reasons)})"
                              for r in rejected)

    @property
    def tree_needs(self) -> tuple[str, ...]:
        """What the submission tree still needs before these (successful) runs make a result in it: e.g. the
        accuracy run of a performance-only run. Not a failure: performance-only runs are how one tunes."""
        report = self.collect_report
        if not self.collect_expected or not self.succeeded or self.collect_error:
            return ()
        if report is None:
            return ("results to collect (no run left any)",)
        return tuple(dict.fromkeys(reason for r in report.rejected if r.kind == "incomplete" for reason in r.reasons))

    @property
    def ok(self) -> bool:
        """Every run succeeded and nothing asked for failed (``run``/``launch`` exit 0; what the tree still
        needs is said, not failed)."""
        return self.succeeded and not self.problems

    @property
    def failures(self) -> tuple[RunSummary, ...]:
        return tuple(r for r in self.runs if r.status != RunStatus.succeeded.value)


def short_id(run_id: str) -> str:
    """The part of a run id that tells runs of one launch apart in a narrow line: its time stamp and random
    suffix (``x86-cpu-offline-perf-20261130-032059-f306`` -> ``032059-f306``). Commands take any unique part."""
    parts = run_id.rsplit("-", 2)
    return "-".join(parts[-2:]) if len(parts) == 3 else run_id
