"""The report as one self-contained HTML file: the Jinja2 template ``templates/report.html.j2`` with the
results table, the problems, the comparison, and Vega-Lite charts drawn in the page by the vendored Vega
libraries (``assets/``, fetched by scripts/vendor_report_assets.py), all inlined: the file needs no network.

Public API::

    render_html(report, *, generated_at=None) -> str
    write_html(report, path) -> Path            ReportWriteError (RuntimeFailure): the file cannot be written
    format_value(value) -> str                  a figure as the table shows it
    ASSET_FILES                                 the vendored scripts, in load order
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from mlrepro import __version__
from mlrepro.errors import RuntimeFailure
from mlrepro.report.charts import charts_for
from mlrepro.report.model import TreeReport, has_tokens

#: vendored scripts inlined in this order (vega-lite and vega-embed need vega; tablesort's number sort needs it)
ASSET_FILES = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "tablesort.min.js",
               "tablesort.number.min.js")
#: latency percentiles shown as table columns (LoadGen's summary reports these)
PERCENTILES = ("50.00", "90.00", "99.00", "99.90")


class ReportWriteError(RuntimeFailure):
    """The report file cannot be written."""


def _package_file(*parts: str) -> str:
    return resources.files("mlrepro.report").joinpath(*parts).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _assets() -> tuple[tuple[tuple[str, str], ...], dict[str, str]]:
    manifest = json.loads(_package_file("assets", "manifest.json"))
    versions = {e["package"]: e["version"] for e in manifest}
    scripts = tuple((name, _package_file("assets", name)) for name in ASSET_FILES)
    scripts += (("report.js", _package_file("templates", "report.js")),)
    for name, code in scripts:
        if "</script" in code.lower():     # would end the inline <script> early
            raise RuntimeFailure(f"mlrepro/report asset {name} cannot be inlined (it holds '</script')")
    return scripts, versions


def _script_json(data: Any) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' that could end the element."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c") \
        .replace(">", "\\u003e").replace("&", "\\u0026")


def format_value(value: float | None) -> str:
    """A figure as the table shows it: ``116,583``, ``636.8``, ``0.02067``; ``-`` for None."""
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 1000 else f"{value:,.1f}"
    return f"{value:.4g}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _pct(p: str) -> str:
    return p.rstrip("0").rstrip(".")


def _environment():  # type: ignore[no-untyped-def]
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("mlrepro.report", "templates"), autoescape=select_autoescape(["j2"]),
                      undefined=StrictUndefined, trim_blocks=False, lstrip_blocks=False)
    env.filters.update(num=format_value, signed=_signed, pct=_pct)
    return env


def render_html(report: TreeReport, *, generated_at: str | None = None) -> str:
    """The whole page as text (UTF-8). ``generated_at``: the time stamp it shows (default: now, UTC)."""
    from markupsafe import Markup

    scripts, versions = _assets()
    charts = charts_for(report)
    specs = [{"id": c.id, "spec": c.spec} for c in charts]
    stamp = generated_at or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    scenarios = sorted({r.scenario for r in report.rows})
    validities = sorted({r.validity or "-" for r in report.rows})
    return _environment().get_template("report.html.j2").render(
        report=report, charts=charts, specs_json=Markup(_script_json(specs)),
        scripts=[(n, Markup(code)) for n, code in scripts], versions=versions, percentiles=PERCENTILES,
        tokens=has_tokens(report.rows),
        scenarios=scenarios, validities=validities, generated_at=stamp, mlrepro_version=__version__)


def write_html(report: TreeReport, path: str | Path) -> Path:
    """Write the page to ``path`` atomically (a partial file never replaces an earlier report)."""
    dest = Path(path)
    text = render_html(report)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes it 0600: a report is for people to read
        os.replace(tmp, dest)
    except OSError as exc:
        raise ReportWriteError(f"{dest}: cannot write the report ({exc.strerror or exc})") from None
    return dest
