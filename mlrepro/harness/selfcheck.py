"""``mlrepro-harness --self-check``: can this image run a benchmark? One JSON line on stdout.

Reports the machine architecture (``platform.machine()``: ``x86_64`` / ``aarch64``), Python, whether LoadGen
imports (and its version) and which backends import. Exit 0 when LoadGen imports, 1 otherwise (the image is
unusable); a missing optional backend does not fail the check.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import platform
from typing import Any

from mlrepro.harness import exit_codes

BACKEND_MODULES = {"onnxruntime": "onnxruntime", "torch": "torch", "numpy": "numpy", "transformers": "transformers"}
#: backends only looked up, not imported (vLLM's import initialises CUDA and takes seconds)
FOUND_ONLY = {"vllm": ("vllm", "vllm")}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _try_import(module: str) -> dict[str, Any]:
    if importlib.util.find_spec(module) is None:
        return {"ok": False, "version": None, "error": "not installed"}
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - report any import failure
        return {"ok": False, "version": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "version": getattr(mod, "__version__", None), "error": None}


def _found(module: str, dist: str) -> dict[str, Any]:
    if importlib.util.find_spec(module) is None:
        return {"ok": False, "version": None, "error": "not installed"}
    return {"ok": True, "version": _version(dist), "error": None, "imported": False}


def check() -> dict[str, Any]:
    from mlrepro.harness.loadgen_runner import import_loadgen

    try:
        lg = import_loadgen()
        loadgen: dict[str, Any] = {"ok": hasattr(lg, "StartTestWithLogSettings"),
                                   "version": _version("mlcommons-loadgen") or _version("mlcommons_loadgen"),
                                   "error": None}
    except Exception as exc:  # noqa: BLE001
        loadgen = {"ok": False, "version": None, "error": str(exc)}
    return {
        "arch": platform.machine(),
        "python": platform.python_version(),
        "loadgen": loadgen,
        "backends": {**{name: _try_import(mod) for name, mod in BACKEND_MODULES.items()},
                     **{name: _found(mod, dist) for name, (mod, dist) in FOUND_ONLY.items()}},
    }


def self_check() -> int:
    report = check()
    print(json.dumps(report, sort_keys=True), flush=True)
    return exit_codes.EXIT_VALID if report["loadgen"]["ok"] else exit_codes.EXIT_RUNTIME
