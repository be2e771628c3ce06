"""Rules of a result's measurements: the measurements json and its folder's user.conf and README.md.

Source: the MLCommons submission checker, checks/measurements_checks.py and the measurements path of
loader.py (v5.x: ``measurements/<system>/<benchmark>/<scenario>/<system>[_<scenario>].json``; v6.x:
``measurements.json`` in the result folder) at mlcommons/inference@b66003e.

Public API::

    check_measurements(ctx, findings)
"""

from __future__ import annotations

from mlrepro.results.check.context import ResultContext
from mlrepro.results.check.report import Findings


def check_measurements(ctx: ResultContext, f: Findings) -> None:
    r = ctx.result
    scope = ctx.scope
    rnd = ctx.round
    if r.measurements_rel is None:
        where = rnd.layout.measurements_file or f"{r.system}[_{r.scenario_folder}].json"
        f.error("MEASUREMENTS_MISSING", f"{r.measurements_dir_rel}/{where}", "no measurements json", scope=scope)
    elif r.measurements is None:
        f.error("MEASUREMENTS_UNREADABLE", r.measurements_rel, f"{r.measurements_error} (the official checker "
                "stops with a traceback)", scope=scope)
    else:
        for key in rnd.measurements_fields:
            if key not in r.measurements:
                f.error("MEASUREMENTS_FIELD", r.measurements_rel, f"field {key} is missing", scope=scope)
            elif not r.measurements[key]:
                f.error("MEASUREMENTS_FIELD", r.measurements_rel, f"field {key} is empty", scope=scope)
    for name in rnd.files.measurements_required:
        if name == "user.conf" and r.endpoints is not None:
            continue        # an endpoints run has no LoadGen settings (checker: required_files_check)
        path = f"{r.measurements_dir_rel}/{name}"
        if name not in r.measurements_files:
            f.error("FILE_MISSING", path, "required file is missing", scope=scope)
        elif r.measurements_files[name] == 0:
            if name == "user.conf":
                f.error("USER_CONF_EMPTY", path, "user.conf is empty: it must hold the LoadGen settings of the run",
                        scope=scope)
            else:
                f.error("FILE_EMPTY", path, f"{name} is empty", scope=scope)
