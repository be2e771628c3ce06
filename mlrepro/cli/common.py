"""Shared CLI plumbing: option types, error → exit code mapping, output formats."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, List, Optional

import typer

from mlrepro.harness.scenarios import SCENARIOS
from mlrepro.harness.spec import MODES
from mlrepro.results.rounds import ROUNDS
from mlrepro.runners import targets
from mlrepro.runners.base import DEFAULT_PENDING_TIMEOUT_S

if TYPE_CHECKING:
    from rich.console import Console

    from mlrepro.profiles.loader import ResolvedProfile
    from mlrepro.runners.base import KubeTarget

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class Division(str, Enum):
    """The divisions ``collect`` writes (the network division needs a networked SUT mlrepro does not run)."""

    closed = "closed"
    open = "open"


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


def _choice(name: str, values: "tuple[str, ...]") -> type[Enum]:
    """A str Enum of ``values`` for a Typer option whose choices are stated once elsewhere."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


#: ``--target`` of run/calibrate (auto allowed) and of launch/reproduce/compliance: the runner table's names
AutoTarget = _choice("AutoTarget", targets.choices(auto=True))
Target = _choice("Target", targets.choices())
#: ``--scenario`` / ``--mode`` of run, launch, calibrate: comma-separated, checked against the harness's table
ScenariosOpt = typer.Option(None, "--scenario", help=f"Scenario(s), comma-separated: {', '.join(SCENARIOS)}; "
                                                      "default: the profile's.")
ModesOpt = typer.Option(None, "--mode", help=f"Mode(s), comma-separated: {', '.join(MODES)}; default: the "
                                              "profile's.")
#: the rounds mlrepro has rules for (``--version`` help)
ROUNDS_HELP = f"{', '.join(ROUNDS)} (default: the newest)"


ProfileOpt = typer.Option(..., "--profile", "-p", help="Built-in profile name or path of a profile YAML file.")
OverlayOpt = typer.Option(None, "--file", "-f", help="Overlay YAML applied on top (repeatable, in order); "
                                                     "also a built-in overlay name: quick, air-gapped.")
SetOpt = typer.Option(None, "--set", help="dotted.key=value applied last (repeatable), e.g. benchmark.scenarios=[Offline,Server].")
OutputOpt = typer.Option(OutputFormat.table, "--output", help="Output format.")
ContextOpt = typer.Option(None, "--context", help="Kubernetes: kubeconfig context (default: the current one).")
NamespaceOpt = typer.Option(None, "--namespace", "-n", help="Kubernetes: namespace (default: the context's).")
KubeconfigOpt = typer.Option(None, "--kubeconfig", help="Kubernetes: kubeconfig file (default: $KUBECONFIG, "
                                                        "~/.kube/config, or the in-cluster configuration).")
ContactOpt = typer.Option(None, "--contact", help="Submitter contact (e-mail) for the systems json "
                                                 "(submitter_contact).")
SystemNotesOpt = typer.Option(None, "--system-notes", help="YAML of systems-json fields no probe can see (cooling, "
                                                          "hw_notes, sw_notes, ...); mlperf-sysinfo's config file "
                                                          "works too.")
DivisionOpt = typer.Option(Division.open, "--division", help="closed (full-length runs with compliance tests) or "
                                                          "open.")
KeepVolumeOpt = typer.Option(False, "--keep-volume", help="Keep each Docker run's results volume after its results "
                                                          "are fetched and verified (a Kubernetes claim always "
                                                          "stays).")
RecalibrateOpt = typer.Option(False, "--recalibrate", help="Measure the LoadGen targets again instead of using "
                                                           "the cached calibration of this profile and system.")
PendingTimeoutOpt = typer.Option(DEFAULT_PENDING_TIMEOUT_S, "--pending-timeout", help="kubernetes: seconds a pod "
                                 "may stay unschedulable or unable to pull its image before the run fails.")
FindPeakOpt = typer.Option(False, "--find-peak", help="Server: search the highest VALID target QPS more finely "
                                                      "(smaller margin, tighter tolerance, longer probes).")


ServeOpt = typer.Option(None, "--serve", help="Run the LLM on a model server of this engine, started from the "
                                                "profile (its image; the server gets the accelerator) with the "
                                                "LoadGen client apart: vllm, sglang or transformers "
                                                "(= --set serve.engine=ENGINE).")
EndpointOpt = typer.Option(None, "--endpoint", help="Run against an existing OpenAI-compatible server at this API "
                                                    "root, e.g. http://vllm.bench:8000/v1: no server is started "
                                                    "(= --set serve.endpoint=URL).")
ServedModelOpt = typer.Option(None, "--served-model", help="The model name the server answers to (needed with "
                                                           "--endpoint; = --set serve.served_model=NAME).")
KeepServerOpt = typer.Option(False, "--keep-server", help="Leave each run's model server running when the run ends "
                                                          "(its address is printed; remove it yourself).")


def serving_sets(sets: Optional[List[str]], serve: Optional[str], endpoint: Optional[str],
                 served_model: Optional[str]) -> list[str]:
    """``--set`` with the serving flags appended as the profile keys they stand for (so the run's recorded
    command line, which ``reproduce`` resolves again, names the same server). Values are written as YAML
    double-quoted strings: a model named ``true`` or ``8`` stays a string."""
    import json

    out = list(sets or [])
    for key, value in (("serve.engine", serve), ("serve.endpoint", endpoint), ("serve.served_model", served_model)):
        if value is not None:
            out.append(f"{key}={json.dumps(value)}")
    return out


def console(stderr: bool = False) -> "Console":
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # A terminal gets its own width (COLUMNS wins when set); a pipe or file gets wide lines rather than folded cells.
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def table(*columns: str, title: str | None = None, right: tuple[str, ...] = ()):
    """A rich table whose cells wrap instead of being cut off (run ids and hashes must stay readable)."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold", justify="right" if col in right else "left")
    return t


@dataclass(frozen=True)
class Column:
    """A column of a :func:`fitted_table`: ``keep`` orders what stays when the console is narrow (0 always
    stays; the highest goes first). Cells are never folded (ids, tags, names stay whole), except in a ``wrap``
    column: free text (a description, a reason) that may wrap at spaces to fit."""

    header: str
    keep: int = 0
    right: bool = False
    nowrap: bool = False
    wrap: bool = False


def fitted_table(console: "Console", columns: list[Column], rows: list[list[str]], title: str | None = None):
    """A table that fits ``console``'s width: columns are left out, least needed first, until the rest fits
    unfolded; ids stay whole (only ``wrap`` columns wrap, at spaces). Cells may hold rich markup (widths are
    measured on the plain text). ``--output json`` is where every field stays: this is only the terminal view."""
    from rich import box
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    plain = [[Text.from_markup(cell).plain for cell in row] for row in rows]
    widths = [max([len(c.header)] + [len(r[i]) for r in plain]) for i, c in enumerate(columns)]

    def build(shown: list[int]) -> Table:
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for i in shown:
            c = columns[i]
            if c.wrap:   # may shrink down to its longest word (a word longer than the room left is folded)
                t.add_column(c.header, justify="right" if c.right else "left", overflow="fold")
            else:
                t.add_column(c.header, justify="right" if c.right else "left", no_wrap=True, min_width=widths[i])
        for row in rows:
            t.add_row(*(row[i] for i in shown))
        return t

    def needed(t: Table) -> int:
        # the minimum: fixed columns at their widest cell, wrap columns at their longest word
        return Measurement.get(console, console.options.update_width(100_000), t).minimum

    shown = list(range(len(columns)))
    table = build(shown)
    # leave out the least needed column until the table fits unfolded (measured as rich lays it out)
    while needed(table) > console.width and any(columns[i].keep for i in shown):
        shown.remove(max((i for i in shown if columns[i].keep), key=lambda i: (columns[i].keep, i)))
        table = build(shown)
    return table


def fail(message: str, code: int) -> "typer.Exit":
    """Print ``message`` (one line per problem) to stderr as ``mlrepro: error: ...`` and return typer.Exit."""
    for line in message.splitlines() or [message]:
        sys.stderr.write(f"mlrepro: error: {line}\n")
    sys.stderr.flush()
    return typer.Exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn library errors into one-line messages and exit codes; never a traceback."""
    from mlrepro.errors import MlreproError

    try:
        yield
    except MlreproError as exc:
        raise fail(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", EXIT_INTERRUPTED) from None


def resolve(profile: str, overlays: Optional[List[str]], sets: Optional[List[str]]) -> "ResolvedProfile":
    from mlrepro.profiles.loader import resolve_profile

    return resolve_profile(profile, overlays or [], sets or [])


def resolve_many(profiles: str, overlays: Optional[List[str]], sets: Optional[List[str]]) -> "list[ResolvedProfile]":
    """``-p x86-cpu,arm64-cpu``: each profile resolved with the same overlays and --set (a sweep)."""
    names = split_csv([profiles])
    if not names:
        raise fail("--profile: no profile given", EXIT_BAD_INPUT)
    return [resolve(name, overlays, sets) for name in dict.fromkeys(names)]


def kube_target(context: Optional[str], namespace: Optional[str], kubeconfig: Optional[Path]) -> "KubeTarget":
    from mlrepro.runners.base import KubeTarget

    return KubeTarget(context=context, namespace=namespace, kubeconfig=kubeconfig)


def kube_target_if_given(context: Optional[str], namespace: Optional[str],
                         kubeconfig: Optional[Path]) -> "KubeTarget | None":
    """The cluster to look for unrecorded runs in, when any of --context, --namespace, --kubeconfig is given."""
    return kube_target(context, namespace, kubeconfig) if (context or namespace or kubeconfig) else None



def print_data(data: Any, fmt: OutputFormat) -> None:
    if fmt == OutputFormat.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def split_csv(values: Optional[List[str]]) -> list[str]:
    """``--scenario Offline,Server --scenario SingleStream`` → [Offline, Server, SingleStream]."""
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"{path}: cannot create directory ({exc.strerror})", EXIT_BAD_INPUT) from None
    return path
