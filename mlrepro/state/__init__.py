"""The local state of this machine: what mlrepro remembers between commands, under one state directory.

``$MLREPRO_STATE_DIR`` (default ``~/.local/state/mlrepro``) holds (nothing here imports docker or kubernetes):

- :mod:`mlrepro.state.store`              ``state.db``: the run records (``open_store``), run statuses
- :mod:`mlrepro.state.paths`              ``runs/<run id>/``: a run's work directory (spec, log, fetched results)
- :mod:`mlrepro.state.calibration_cache`  ``calibration.db``: calibrated LoadGen targets per system
- :mod:`mlrepro.state.state_id`           ``state-id``: the label of the engine objects this directory made
- :mod:`mlrepro.state.errors`             typed errors

``mlrepro prune`` (what a state directory made and no longer needs) is :mod:`mlrepro.flow.prune`.
"""
