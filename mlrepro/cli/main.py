"""Entry point of the ``mlrepro`` command.

Exit codes: 0 success, 1 runtime failure (engine, registry, cluster, I/O), 2 bad input (profile, flags, files),
130 interrupted.
"""

from __future__ import annotations

import typer

from mlrepro import __version__
from mlrepro.cli import (
    build,
    check,
    collect,
    compliance,
    generate,
    launch,
    profiles,
    prune,
    reproduce,
    run,
    runs,
    tree_report,
)

app = typer.Typer(
    name="mlrepro",
    help="Reproducible MLPerf-style benchmark runs from a hardware/software profile.\n\n"
         "Example: mlrepro run -p x86-cpu",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: importing typer.rich_utils alone costs ~0.1 s of start-up
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 ok, 1 runtime failure, 2 bad input, 130 interrupted.",
)
app.add_typer(profiles.app, name="profiles")
generate.register(app)
build.register(app)
run.register(app)
launch.register(app)
runs.register(app)
collect.register(app)
check.register(app)
compliance.register(app)
tree_report.register(app)
reproduce.register(app)
prune.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlrepro {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Reproducible MLPerf-style benchmark runs from a hardware/software profile."""


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (``kill``, a CI job's timeout, a closing terminal's session) ends a command as Ctrl-C does:
    every run it started is stopped and marked cancelled, exit 130."""
    raise KeyboardInterrupt


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
