"""The run layer: everything that runs something goes through one flow.

``run``, ``launch``, ``calibrate`` and ``reproduce`` call :func:`run_pipeline`; ``compliance`` calls
:func:`audit_runs`; both plan job specs and hand them to :func:`~mlrepro.flow.execute.execute`, the per-run flow
(record → launch → wait → fetch verified → clean up → summarize → record). ``logs`` and ``collect`` of recorded
runs are :mod:`mlrepro.flow.recorded`.

Modules::

    options.py    PipelineOptions, RunSummary, PipelineResult (what is asked, what comes back)
    plan.py       options + profiles -> job specs, each checked by the target
    execute.py    the per-run flow, parallel, with Ctrl-C handling (signals.py)
    summary.py    a finished run's verified results -> its line in the results table; the calibration cache
    pipeline.py   run_pipeline: plan -> execute -> collect
    audit.py      audit_runs: compliance tests of recorded runs, through the same flow
    recorded.py   logs and collect of recorded runs, through the runner table
    prune.py      what a state directory's runs left behind (volumes, containers, work dirs, stage images)
"""

from mlrepro.flow.audit import AuditResult, audit_runs
from mlrepro.flow.options import PipelineOptions, PipelineResult, RunSummary, short_id
from mlrepro.flow.pipeline import run_pipeline
from mlrepro.flow.recorded import collect_runs, stream_logs

__all__ = ["AuditResult", "PipelineOptions", "PipelineResult", "RunSummary", "audit_runs", "collect_runs",
           "run_pipeline", "short_id", "stream_logs"]
