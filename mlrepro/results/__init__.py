"""Results: the run-state store, safe archive extraction, ``collect`` into an MLPerf submission tree, ``check``.

Modules (import what you need; nothing here imports docker, kubernetes, typer or rich):

- :mod:`mlrepro.results.state`         SQLite run-state store (``open_store``)
- :mod:`mlrepro.results.safe_extract`  safe extraction of tar streams (``safe_extract``)
- :mod:`mlrepro.results.submission`    ``collect`` harness run directories into a submission tree
- :mod:`mlrepro.results.check`         mlrepro's own check of a submission tree (``check_tree``)
- :mod:`mlrepro.results.rundir`        verify + read one harness run directory (``load_run``)
- :mod:`mlrepro.results.layout`        tree and sidecar paths;  :mod:`mlrepro.results.systems` systems json;
  :mod:`mlrepro.results.measurements`  measurements.json;      :mod:`mlrepro.results.accuracy` truncation,
  accuracy.txt;  :mod:`mlrepro.results.fsutil` staging/rename helpers;  :mod:`mlrepro.results.errors` errors
"""
