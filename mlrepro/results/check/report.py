"""Findings, the per-result summary table and the report of ``mlrepro check``.

Public API::

    Finding(severity, code, path, message, scope="")      .to_dict() -> {"severity", "code", "path", "message"}
    SummaryRow(...)                                        one row per result folder
    CheckReport(...)                                       .ok .errors .warnings .to_dict() .write_csv(path)
    Findings                                               the collector rule modules add to
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mlrepro.results.check.codes import CODES

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem: ``path`` is relative to the tree root; ``scope`` is the folder whose results it rejects
    (a result folder, ``<division>/<submitter>/results/<system>``, a submitter, or "" for the whole tree)."""

    severity: str          # error | warning
    code: str              # a key of mlrepro.results.check.codes.CODES
    path: str
    message: str
    scope: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "code": self.code, "path": self.path, "message": self.message}

    def covers(self, result_rel: str) -> bool:
        """Whether this finding is about the result folder ``result_rel``."""
        return not self.scope or result_rel == self.scope or result_rel.startswith(self.scope + "/")

    def __str__(self) -> str:
        return f"{self.severity:<7} {self.code:<22} {self.path}: {self.message}"


@dataclass(frozen=True)
class SummaryRow:
    """One result folder, as the summary table and the CSV show it."""

    division: str
    submitter: str
    system: str
    benchmark: str         # the folder name
    mlperf_benchmark: str  # what it maps to
    scenario: str
    metric: str
    value: float | None
    unit: str
    validity: str
    accuracy: str
    errors: int
    warnings: int
    path: str

    @staticmethod
    def columns() -> tuple[str, ...]:
        return tuple(f.name for f in fields(SummaryRow))


@dataclass(frozen=True)
class CheckReport:
    tree: Path
    version: str
    findings: tuple[Finding, ...]
    rows: tuple[SummaryRow, ...]
    results_checked: int
    systems_checked: int

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == WARNING)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The ``--output json`` document: {"ok", "version", "results", "systems", "errors", "warnings",
        "findings", "rows"}: ``results``/``systems``/``errors``/``warnings`` are counts; ``rows`` holds one object
        per result folder with the CSV's columns (:meth:`SummaryRow.columns`; ``value`` a number or null)."""
        return {"ok": self.ok, "version": self.version, "results": self.results_checked,
                "systems": self.systems_checked, "errors": len(self.errors), "warnings": len(self.warnings),
                "findings": [f.to_dict() for f in self.findings],
                "rows": [{c: getattr(row, c) for c in SummaryRow.columns()} for row in self.rows]}

    def write_csv(self, path: str | Path) -> None:
        """The summary table as CSV (one row per result folder, header = SummaryRow.columns())."""
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(SummaryRow.columns())
            for row in self.rows:
                w.writerow(["" if getattr(row, c) is None else getattr(row, c) for c in SummaryRow.columns()])


class Findings:
    """What rule modules add findings to (in order)."""

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(self, severity: str, code: str, path: str, message: str, scope: str = "") -> None:
        if code not in CODES:
            raise ValueError(f"unknown rule code {code}")   # a bug in mlrepro, not in the tree
        self.items.append(Finding(severity, code, path, message, scope))

    def error(self, code: str, path: str, message: str, scope: str = "") -> None:
        self.add(ERROR, code, path, message, scope)

    def warn(self, code: str, path: str, message: str, scope: str = "") -> None:
        self.add(WARNING, code, path, message, scope)
