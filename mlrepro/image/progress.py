"""Typed build progress: the engine's JSON stream -> events; and rich renderers for the CLI (build, push).

The classic builder (no BuildKit here) streams ``{"stream": "Step 3/17 : RUN ..."}``, ``" ---> Using cache"``,
``" ---> Running in <id>"``, command output, ``" ---> <image id>"``, ``{"aux": {"ID": "sha256:..."}}`` and on
failure ``{"errorDetail": {"message": ...}}``. :class:`BuildStreamParser` turns them into the events
below; the library hands them to a callback, and only the CLI renders them (:class:`BuildRenderer`).
A push streams :class:`mlrepro.image.registry.PushEvent` records the same way (:class:`PushRenderer`).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.image.registry import PushEvent

TAIL_LINES = 20
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_ARROW = re.compile(r"^ ---> (.*)$")
_IMAGE_ID = re.compile(r"^[0-9a-f]{12,64}$")


@dataclass(frozen=True)
class StepStarted:
    step: int
    total: int
    instruction: str


@dataclass(frozen=True)
class StepOutput:
    step: int
    line: str


@dataclass(frozen=True)
class StepFinished:
    step: int
    total: int
    instruction: str
    image_id: str
    cached: bool
    seconds: float


@dataclass(frozen=True)
class BuildNote:
    """Something mlrepro itself reports (wheelhouse, skipped build, buildx)."""

    message: str


@dataclass(frozen=True)
class ImageBuilt:
    image_id: str


@dataclass(frozen=True)
class BuildFailed:
    step: int | None
    total: int | None
    instruction: str | None
    message: str
    tail: tuple[str, ...] = field(default_factory=tuple)


BuildEvent = StepStarted | StepOutput | StepFinished | BuildNote | ImageBuilt | BuildFailed


class BuildStreamParser:
    """Feed it the decoded JSON objects of ``APIClient.build(decode=True)``; it returns events."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.total: int | None = None
        self.instruction: str | None = None
        self.cached = False
        self.started = time.monotonic()
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.finished: list[StepFinished] = []
        self.outputs: list[str] = []
        """Every output line of RUN steps (for callers that look for their own markers)."""
        self.image_id: str | None = None
        self.failure: BuildFailed | None = None
        self._partial = ""

    def feed(self, obj: Mapping[str, Any]) -> list[BuildEvent]:
        events: list[BuildEvent] = []
        if "errorDetail" in obj or "error" in obj:
            detail = obj.get("errorDetail") if isinstance(obj.get("errorDetail"), Mapping) else {}
            message = str(detail.get("message") or obj.get("error") or "build failed").strip()
            events += self._flush()
            self.failure = BuildFailed(self.step, self.total, self.instruction, message, tuple(self.tail))
            events.append(self.failure)
            return events
        aux = obj.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]
            events.append(ImageBuilt(aux["ID"]))
        text = obj.get("stream")
        if isinstance(text, str):
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
            for line in lines:
                events += self._line(line.rstrip("\r"))
        return events

    def close(self) -> list[BuildEvent]:
        events = self._flush()
        if self._partial:
            events += self._line(self._partial)
            self._partial = ""
        return events

    def _flush(self) -> list[BuildEvent]:
        if self._partial:
            line, self._partial = self._partial, ""
            return self._line(line)
        return []

    def _line(self, line: str) -> list[BuildEvent]:
        m = _STEP.match(line)
        if m:
            self.step, self.total, self.instruction = int(m.group(1)), int(m.group(2)), m.group(3).strip()
            self.cached, self.started = False, time.monotonic()
            self.tail.clear()
            return [StepStarted(self.step, self.total, self.instruction)]
        arrow = _ARROW.match(line)
        if arrow and self.step is not None:
            rest = arrow.group(1).strip()
            if rest == "Using cache":
                self.cached = True
                return []
            if rest.startswith("Running in "):
                return []
            if _IMAGE_ID.match(rest):
                done = StepFinished(self.step, self.total or 0, self.instruction or "", rest, self.cached,
                                    time.monotonic() - self.started)
                self.finished.append(done)
                return [done]
        if line.startswith(("Removing intermediate container ", "Successfully built ", "Successfully tagged ")):
            return []
        if not line.strip():
            return []
        self.tail.append(line)
        self.outputs.append(line)
        return [StepOutput(self.step or 0, line)]


class BuildRenderer:
    """Render events on a rich console: one line per step (cached steps dim), command output when verbose."""

    def __init__(self, verbose: bool = False, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True, highlight=False)
        self.verbose = verbose

    def __call__(self, event: BuildEvent) -> None:
        from rich.markup import escape

        c = self.console
        if isinstance(event, StepStarted):
            c.print(f"[bold]{event.step}/{event.total}[/] {escape(_short(event.instruction))}")
        elif isinstance(event, StepFinished):
            if event.cached:
                c.print("  [dim]cached[/]")
            elif event.seconds >= 1:
                c.print(f"  [dim]{event.seconds:.1f}s[/]")
        elif isinstance(event, StepOutput) and self.verbose:
            c.print(f"  [dim]{escape(event.line)}[/]")
        elif isinstance(event, BuildNote):
            c.print(f"[cyan]{escape(event.message)}[/]")
        elif isinstance(event, BuildFailed):
            where = f"step {event.step}/{event.total} {_short(event.instruction or '')}: " if event.step else ""
            c.print(f"[red]build failed[/] {escape(where + event.message)}")
            for line in event.tail:
                c.print(f"  [dim]{escape(line)}[/]")


class PushRenderer:
    """Render a push on a rich console: one line per layer and state change (Preparing, Waiting, Pushing with
    the layer's size, Pushed with size and seconds, Layer already exists, Mounted from ...), never one per
    byte tick; plus the engine's "The push refers to repository [...]" line."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True, highlight=False)
        self.states: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        self.started: dict[str, float] = {}

    def __call__(self, event: PushEvent) -> None:
        from rich.markup import escape

        state = event.layer_state
        if state is None:
            if event.status and not event.id and event.status.startswith("The push refers to"):
                self.console.print(f"[dim]{escape(event.status)}[/]")
            return
        layer = event.id or ""
        if event.total:
            self.sizes[layer] = event.total
        if self.states.get(layer) == state:
            return
        self.states[layer] = state
        text = event.status or state
        if state == "Pushing":
            self.started[layer] = time.monotonic()
            text = f"Pushing {_bytes(self.sizes[layer])}" if layer in self.sizes else "Pushing"
        elif state == "Pushed":
            took = f", {time.monotonic() - self.started[layer]:.1f} s" if layer in self.started else ""
            text = f"Pushed {_bytes(self.sizes[layer])}{took}" if layer in self.sizes else f"Pushed{took}"
        style = "green" if state in ("Pushed", "Layer already exists") or state.startswith("Mounted") else "dim"
        self.console.print(f"  {escape(layer)} [{style}]{escape(text)}[/]")


def _bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
