"""The report's charts as Vega-Lite specifications (data inlined; rendered in the page by vega-embed).

Every chart says its units (axis title and caption) and the runs it comes from (caption, and each mark's
tooltip). Charts:

- throughput per result (one bar each, labelled submitter · system · profile), one chart per (benchmark,
  scenario) whose metric is a throughput;
- latency percentiles per result, one chart per (benchmark, scenario) of SingleStream, MultiStream,
  Server and Interactive; for LLM results (tokens/s in the throughput chart) the time to first token (TTFT) and
  time per output token (TPOT) percentiles beside it, one chart each;
- with a comparison: the change of each paired result's metric, in %.

Public API::

    Chart(id, kind, title, units, sources, spec)
    charts_for(report: TreeReport) -> tuple[Chart, ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlrepro.report.model import LATENCY_SCENARIOS, Comparison, ResultRow, TreeReport

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"   # an identifier: vega-embed fetches nothing
_WIDTH = 520


@dataclass(frozen=True)
class Chart:
    id: str                        # unique in the page (an HTML id)
    kind: str                      # throughput | latency | change
    title: str
    units: str                     # what the value axis measures
    sources: tuple[str, ...]       # the runs (or result folders) behind the marks
    spec: dict[str, Any]           # the Vega-Lite specification


def _groups(rows: Sequence[ResultRow], keep) -> dict[tuple[str, str], list[ResultRow]]:  # type: ignore[no-untyped-def]
    out: dict[tuple[str, str], list[ResultRow]] = {}
    for r in rows:
        if keep(r):
            out.setdefault((r.benchmark, r.scenario), []).append(r)
    return out


def unique_labels(rows: Sequence[ResultRow]) -> list[str]:
    """The label of each row in one chart, all distinct: :attr:`ResultRow.label` (submitter · system ·
    profile), with the division in front where that label is not unique, and the result folder after it where
    it still is not (a chart's marks are keyed by label: two equal labels would be drawn as one mark)."""
    labels = [r.label for r in rows]
    for extend in (lambda r, lab: f"{r.division} · {lab}", lambda r, lab: f"{lab} ({r.path})"):
        seen = [labels.count(lab) > 1 for lab in labels]
        labels = [extend(r, lab) if dup else lab for r, lab, dup in zip(rows, labels, seen)]
    return labels


def _slug(*parts: str) -> str:
    return "-".join("".join(c if c.isalnum() else "-" for c in p.lower()) for p in parts)


def _base(title: str, subtitle: str, values: list[dict[str, Any]]) -> dict[str, Any]:
    return {"$schema": SCHEMA, "title": {"text": title, "subtitle": subtitle, "anchor": "start"},
            "width": _WIDTH, "data": {"values": values}}


def _throughput(key: tuple[str, str], rows: list[ResultRow]) -> Chart:
    benchmark, scenario = key
    unit = rows[0].unit
    values = [{"label": label, "value": r.value, "unit": r.unit, "validity": r.validity or "-",
               "source": r.source, "date": r.run_date or "-", "profile_hash": (r.profile_hash or "-")[:12]}
              for r, label in zip(rows, unique_labels(rows))]
    spec = _base(f"{benchmark} · {scenario}: throughput",
                 f"{unit} per result (submitter · system · profile); source: "
                 + (rows[0].source if len(rows) == 1 else f"{len(rows)} runs (see caption)"), values)
    spec.update({
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "label", "type": "nominal", "title": "submitter · system · profile", "sort": "-x",
                  "axis": {"labelLimit": 320}},
            "x": {"field": "value", "type": "quantitative", "title": unit, "stack": None},  # never a sum
            "color": {"field": "validity", "type": "nominal", "title": "validity",
                      "scale": {"domain": ["VALID", "INVALID", "-"], "range": ["#4c78a8", "#e45756", "#9d9d9d"]}},
            "tooltip": [{"field": "label", "title": "submitter · system · profile"},
                        {"field": "value", "title": unit, "format": ",.6~g"},
                        {"field": "validity"}, {"field": "source", "title": "source run"},
                        {"field": "date", "title": "run date"}, {"field": "profile_hash", "title": "profile hash"}],
        },
    })
    return Chart(id=_slug("throughput", benchmark, scenario), kind="throughput",
                 title=spec["title"]["text"], units=unit, sources=tuple(r.source for r in rows), spec=spec)


def _latency(key: tuple[str, str], rows: list[ResultRow]) -> Chart:
    benchmark, scenario = key
    values = [{"label": label, "percentile": float(p), "latency_ms": ms, "source": r.source,
               "date": r.run_date or "-"}
              for r, label in zip(rows, unique_labels(rows)) for p, ms in r.latency_ms.items()]
    spec = _base(f"{benchmark} · {scenario}: latency percentiles",
                 "ms per query, by percentile; source: "
                 + (rows[0].source if len(rows) == 1 else f"{len(rows)} runs (see caption)"), values)
    spec.update({
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "percentile", "type": "ordinal", "title": "percentile (%)", "axis": {"labelAngle": 0}},
            "y": {"field": "latency_ms", "type": "quantitative", "title": "latency (ms)"},
            "color": {"field": "label", "type": "nominal", "title": "submitter · system · profile",
                      "legend": {"labelLimit": 320, "orient": "bottom", "direction": "vertical"}},
            "tooltip": [{"field": "label", "title": "submitter · system · profile"}, {"field": "percentile"},
                        {"field": "latency_ms", "title": "latency (ms)", "format": ",.6~g"},
                        {"field": "source", "title": "source run"}, {"field": "date", "title": "run date"}],
        },
    })
    return Chart(id=_slug("latency", benchmark, scenario), kind="latency", title=spec["title"]["text"],
                 units="ms", sources=tuple(r.source for r in rows), spec=spec)


#: the LLM token latencies charted beside the latency percentiles: kind -> (ResultRow field, title, what)
TOKEN_CHARTS = {
    "ttft": ("ttft_ms", "time to first token (TTFT)", "TTFT"),
    "tpot": ("tpot_ms", "time per output token (TPOT)", "TPOT"),
}


def _token_latency(key: tuple[str, str], rows: list[ResultRow], kind: str) -> Chart:
    """TTFT or TPOT percentiles (ms) per result of an LLM's Server or Interactive results."""
    benchmark, scenario = key
    attr, title, short = TOKEN_CHARTS[kind]
    values = [{"label": label, "percentile": float(p), "ms": ms, "source": r.source, "date": r.run_date or "-"}
              for r, label in zip(rows, unique_labels(rows)) for p, ms in getattr(r, attr).items()]
    spec = _base(f"{benchmark} · {scenario}: {title}",
                 f"ms per token, by percentile ({short}, as LoadGen logs it); source: "
                 + (rows[0].source if len(rows) == 1 else f"{len(rows)} runs (see caption)"), values)
    spec.update({
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "percentile", "type": "ordinal", "title": "percentile (%)", "axis": {"labelAngle": 0}},
            "y": {"field": "ms", "type": "quantitative", "title": f"{short} (ms)"},
            "color": {"field": "label", "type": "nominal", "title": "submitter · system · profile",
                      "legend": {"labelLimit": 320, "orient": "bottom", "direction": "vertical"}},
            "tooltip": [{"field": "label", "title": "submitter · system · profile"}, {"field": "percentile"},
                        {"field": "ms", "title": f"{short} (ms)", "format": ",.6~g"},
                        {"field": "source", "title": "source run"}, {"field": "date", "title": "run date"}],
        },
    })
    return Chart(id=_slug(kind, benchmark, scenario), kind=kind, title=spec["title"]["text"], units="ms",
                 sources=tuple(r.source for r in rows), spec=spec)


def _change(cmp: Comparison) -> Chart | None:
    values = []
    sources: list[str] = []
    for c in cmp.changes:
        pct = c.change_pct
        if pct is None:
            continue
        better = pct < 0 if c.lower_is_better else pct > 0
        values.append({"result": c.key, "change_pct": round(pct, 4), "unit": c.base.unit,
                       "verdict": "better" if better else ("same" if pct == 0 else "worse"),
                       "base": c.base.value, "other": c.other.value, "base_source": c.base.source,
                       "other_source": c.other.source})
        sources += [c.base.source, c.other.source]
    if not values:
        return None
    base, other = cmp.names
    spec = _base(f"change of each result: {other} against {base}", f"% of the value in {base}; green: better "
                 "(more throughput, or less latency), red: worse", values)
    spec.update({
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "result", "type": "nominal", "title": None, "axis": {"labelLimit": 420}},
            "x": {"field": "change_pct", "type": "quantitative", "title": "change (%)"},
            "color": {"field": "verdict", "type": "nominal", "title": None,
                      "scale": {"domain": ["better", "same", "worse"], "range": ["#54a24b", "#9d9d9d", "#e45756"]}},
            "tooltip": [{"field": "result"}, {"field": "change_pct", "title": "change (%)", "format": "+.2f"},
                        {"field": "verdict"}, {"field": "unit"}, {"field": "base", "title": base, "format": ",.6~g"},
                        {"field": "other", "title": other, "format": ",.6~g"},
                        {"field": "base_source", "title": "base run"},
                        {"field": "other_source", "title": "compared run"}],
        },
    })
    return Chart(id="change", kind="change", title=spec["title"]["text"], units="%", sources=tuple(sources),
                 spec=spec)


def charts_for(report: TreeReport) -> tuple[Chart, ...]:
    """Every chart of the report, in page order (throughput; latency with TTFT and TPOT after it; change)."""
    out: list[Chart] = []
    for key, rows in sorted(_groups(report.rows, lambda r: r.is_throughput).items()):
        out.append(_throughput(key, rows))
    latency = _groups(report.rows, lambda r: r.scenario in LATENCY_SCENARIOS and bool(r.latency_ms))
    tokens = {kind: _groups(report.rows, lambda r, a=attr: bool(getattr(r, a)))
              for kind, (attr, _, _) in TOKEN_CHARTS.items()}
    for key in sorted(set(latency).union(*tokens.values())):
        if key in latency:
            out.append(_latency(key, latency[key]))
        for kind, groups in tokens.items():       # beside the latency chart of the same results
            if key in groups:
                out.append(_token_latency(key, groups[key], kind))
    if report.comparison is not None:
        change = _change(report.comparison)
        if change is not None:
            out.append(change)
    return tuple(out)
