"""Results: MLPerf inference submission trees -- ``collect`` into one, read one, ``check`` one.

Modules (import what you need; nothing here imports docker, kubernetes, typer or rich):

- :mod:`mlrepro.results.rundir`        verify + read one harness run directory (``load_run`` -> ``HarnessRun``)
- :mod:`mlrepro.results.submission`    ``collect`` verified harness runs into a submission tree
- :mod:`mlrepro.results.tree`          read a tree (ours or anyone's) as results
- :mod:`mlrepro.results.check`         mlrepro's own check of a submission tree (``check_tree``)
- :mod:`mlrepro.results.rounds`        each round's rules and layout, as data
- :mod:`mlrepro.results.layout`        tree and sidecar paths;  :mod:`mlrepro.results.systems` systems json;
  :mod:`mlrepro.results.measurements`  measurements.json;      :mod:`mlrepro.results.accuracy` truncation,
  accuracy.txt;  :mod:`mlrepro.results.fsutil` staging/rename helpers;  :mod:`mlrepro.results.errors` errors

The local run state (run records, calibration cache) is :mod:`mlrepro.state`.
"""
