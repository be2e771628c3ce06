"""``mlrepro report``: a submission tree's results as a table and as one self-contained HTML page with charts.

Built on the tree reader (:mod:`mlrepro.results.tree`) and the checker (:mod:`mlrepro.results.check`): the
report shows what the tree holds and every problem ``mlrepro check`` finds in it, never a traceback.

Public API::

    read_report(root, *, version=None, sidecar=None, compare=None, compare_version=None) -> TreeReport
    render_html(report) -> str ; write_html(report, path) -> Path
    charts_for(report) -> tuple[Chart, ...]
"""

from mlrepro.report.build import compare_rows, read_report
from mlrepro.report.charts import Chart, charts_for
from mlrepro.report.html import ReportWriteError, render_html, write_html
from mlrepro.report.model import Change, Comparison, Problem, ResultRow, TreeReport

__all__ = ["Change", "Chart", "Comparison", "Problem", "ReportWriteError", "ResultRow", "TreeReport", "charts_for",
           "compare_rows", "read_report", "render_html", "write_html"]
