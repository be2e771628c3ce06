"""Model-server engines as data: ``engines.json`` beside this file, one entry per engine (vLLM, SGLang,
``transformers serve``, and ``openai``: an existing server of an engine mlrepro does not know).

An entry says how to start the engine (``command``, a template of its argv), where it listens (``port``), when
it is ready (``health_path``: 200 once the model is loaded), how the model is passed (``model_arg``), which model
name requests carry (``served_model``), what prompts its ``/v1/completions`` takes (``prompt_format``), which
sampling fields every request sends (``sampling``) and where its version is read (``version``). Every other
module reads engines from here: the client's defaults (:data:`mlrepro.harness.serving.client.ENGINE_DEFAULTS`),
the server wrapper (:mod:`mlrepro.harness.serve`), the profile schema and the server spec the targets render.
Sources are in each entry's ``source``. Adding an engine is an entry.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).with_name("engines.json")
MODEL_ARGS = ("path", "dir:file")
PROMPT_FORMATS = ("token_ids", "text")
#: the fields of a command template
PLACEHOLDERS = ("model", "host", "port", "served_model")


class EngineError(ValueError):
    """An unknown engine, an engine that cannot be started, or a bad entry of engines.json (one line)."""


@dataclass(frozen=True)
class Engine:
    """One entry of engines.json (see the module docstring)."""

    name: str
    summary: str
    command: tuple[str, ...] | None
    port: int | None
    health_path: str
    model_arg: str | None
    served_model: str
    prompt_format: str
    return_token_ids: bool
    sampling: Mapping[str, Any] = field(default_factory=dict)
    version_http: str | None = None
    version_field: str | None = None
    version_distribution: str | None = None
    devices: tuple[str, ...] = ()
    #: the requirement (PEP 508 name with extras, no version) the image must hold to run the engine
    requires: str | None = None
    source: str = ""

    @property
    def startable(self) -> bool:
        """mlrepro can start it (it has a command); ``openai`` is only ever an existing server."""
        return self.command is not None

    def argv(self, model: str, host: str, port: int, served_model: str) -> list[str]:
        """The engine's command line (the template of engines.json filled in)."""
        if self.command is None:
            raise EngineError(f"engine {self.name}: mlrepro cannot start it (an existing server: give --endpoint)")
        values = {"model": model, "host": host, "port": str(port), "served_model": served_model}
        return [part.format(**values) for part in self.command]

    def model_argument(self, directory: str, gguf_file: str | None) -> str:
        """How the engine is given the model: the directory or the .gguf file (``path``), or ``DIR:FILE.gguf``
        for a GGUF (``dir:file``, transformers' form)."""
        if gguf_file is None:
            return directory
        if self.model_arg == "dir:file":
            return f"{directory}:{gguf_file}"
        return str(Path(directory) / gguf_file)

    def served_model_name(self, name: str, model_argument: str) -> str:
        """The model name requests carry: ``name`` (given to the engine with --served-model-name) or the model
        argument as given (the engine pins it)."""
        return self.served_model.format(name=name, model=model_argument)

    def sampling_fields(self, min_tokens: int) -> dict[str, Any]:
        """The body fields every request sends (greedy, the reference's settings where the engine takes them)."""
        return {k: (min_tokens if v == "{min_tokens}" else v) for k, v in self.sampling.items()}


def _entry(name: str, d: Mapping[str, Any]) -> Engine:
    where = f"{DATA_FILE}: {name}"
    try:
        command = d["command"]
        if command is not None and (not isinstance(command, list) or not all(isinstance(a, str) for a in command)):
            raise EngineError(f"{where}.command: expected a list of strings or null")
        if command is not None:
            for part in command:
                try:
                    part.format(**{k: "" for k in PLACEHOLDERS})
                except (KeyError, IndexError, ValueError) as exc:
                    raise EngineError(f"{where}.command: {part!r} has an unknown field {exc}") from None
        if d["prompt_format"] not in PROMPT_FORMATS:
            raise EngineError(f"{where}.prompt_format: {d['prompt_format']!r} is not one of "
                              f"{', '.join(PROMPT_FORMATS)}")
        if command is not None and d["model_arg"] not in MODEL_ARGS:
            raise EngineError(f"{where}.model_arg: {d['model_arg']!r} is not one of {', '.join(MODEL_ARGS)}")
        version = d.get("version") or {}
        return Engine(name=name, summary=d.get("summary", ""), command=tuple(command) if command else None,
                      port=d["port"], health_path=d["health_path"], model_arg=d["model_arg"],
                      served_model=d["served_model"], prompt_format=d["prompt_format"],
                      return_token_ids=bool(d.get("return_token_ids")), sampling=dict(d.get("sampling") or {}),
                      version_http=version.get("http"), version_field=version.get("field"),
                      version_distribution=version.get("distribution"), devices=tuple(d.get("devices") or ()),
                      requires=d.get("requires"), source=d.get("source", ""))
    except KeyError as exc:
        raise EngineError(f"{where}: missing field {exc}") from None


@functools.lru_cache(maxsize=1)
def engines() -> dict[str, Engine]:
    """Every engine of engines.json, by name (keys starting with ``_`` are comments)."""
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    return {name: _entry(name, d) for name, d in data.items() if not name.startswith("_")}


#: the engine names (the profile's ``serve.engine``, ``--serve``)
ENGINE_NAMES: tuple[str, ...] = tuple(engines())
#: the engines mlrepro can start (``--serve``); the others are existing servers only (``--endpoint``)
STARTABLE: tuple[str, ...] = tuple(n for n, e in engines().items() if e.startable)
#: the engine of an ``--endpoint`` whose engine is not named
GENERIC = "openai"


def engine(name: str) -> Engine:
    """The engine ``name``. Raises EngineError naming the known ones."""
    found = engines().get(name)
    if found is None:
        raise EngineError(f"unknown server engine {name!r}: one of {', '.join(ENGINE_NAMES)}")
    return found


def describe_engines(names: Sequence[str] = STARTABLE) -> str:
    """``vllm (vLLM's ...), ...`` for help texts."""
    return ", ".join(f"{n} ({engines()[n].summary})" for n in names)
