"""The work-dir layout of a run on this machine, in one place.

    $MLREPRO_STATE_DIR/runs/<run id>/
        run.json            the run spec (native: the harness reads it here)
        config/             run.json + user.conf, bind-mounted read-only at /config (docker)
        harness.log         the harness's output (written as it runs, or saved when the run ends)
        server.log          a model server's output (a network SUT: saved when the server stops)
        results/            native: the harness's --results directory; other targets: where results are fetched
        results/<run id>/   the run's verified results: what ``collect`` reads
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUNS_DIR = "runs"


@dataclass(frozen=True)
class RunPaths:
    root: Path
    run_id: str

    @classmethod
    def of(cls, state_dir: Path, run_id: str) -> RunPaths:
        """The paths of ``run_id`` under the state directory."""
        return cls(state_dir / RUNS_DIR / run_id, run_id)

    @property
    def spec_file(self) -> Path:
        return self.root / "run.json"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def log(self) -> Path:
        return self.root / "harness.log"

    @property
    def server_log(self) -> Path:
        """The model server's output (a network SUT), kept beside the harness's."""
        return self.root / "server.log"

    @property
    def results_root(self) -> Path:
        """What the harness sees as /results (native), and where results of other targets are fetched to."""
        return self.root / "results"

    @property
    def results(self) -> Path:
        """The run's own results folder on this machine (``results_root / run id``)."""
        return self.results_root / self.run_id
