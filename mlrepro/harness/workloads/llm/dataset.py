"""The MLPerf reference dataset format of the LLM benchmarks, read without pandas.

The reference reads it with ``pandas.read_json(path)`` (language/llama3.1-8b/dataset.py): a JSON document that is
either a list of records (``[{"input": ..., "tok_input": [...], "output": ...}, ...]``, pandas' ``orient="records"``)
or pandas' default ``orient="columns"`` (``{"input": {"0": ..., "1": ...}, "tok_input": {...}, ...}``). Both are
read here. Columns (per benchmark, :mod:`mlrepro.harness.workloads.llm` data): the prompt's token ids (``tok_input``;
``input_tokens`` for gpt-oss), the prompt text (``input``, optional) and the reference output (``output``, or
``ground_truth``).

Errors are WorkloadConfigError naming the file and the key: a missing file, a non-JSON file (a pickle or parquet
file of the reference must be converted once, see the benchmark's ``reference_file_format``), a missing column, a
prompt that is not a non-empty list of non-negative integers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrepro.harness.workloads.base import WorkloadConfigError

_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class LLMDataset:
    """The samples of one dataset file: prompt token ids, prompt texts ("" when absent) and references."""

    path: Path
    prompts: list[list[int]]
    texts: list[str]
    references: list[str]

    def __len__(self) -> int:
        return len(self.prompts)

    def max_token_id(self) -> int:
        return max((max(p) for p in self.prompts), default=-1)


def _records(data: Any, path: Path) -> list[dict[str, Any]]:
    if isinstance(data, list):
        if not all(isinstance(r, dict) for r in data):
            raise WorkloadConfigError(f"{path}: expected a list of records (objects), as pandas' to_json(orient='records') writes")
        return data
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        # orient="columns": {column: {row label: value}}; rows in the order of the first column's labels
        columns = list(data)
        labels = list(data[columns[0]])
        try:
            order = sorted(labels, key=int)
        except ValueError:
            order = labels
        return [{c: data[c].get(lab) for c in columns if lab in data[c]} for lab in order]
    raise WorkloadConfigError(f"{path}: not the reference dataset format (a JSON list of records or pandas' "
                              "column-oriented JSON)")


def _column(record: dict[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for n in names:
        if n in record:
            return n, record[n]
    return None, None


def read_dataset(path: str | Path, prompt_tokens: tuple[str, ...], reference: str, prompt_text: str | None = None,
                 conversion_hint: str = "") -> LLMDataset:
    """Read ``path``. ``prompt_tokens``: the accepted names of the token-id column (first found wins);
    ``reference``: the reference output column; ``prompt_text``: the prompt text column (optional). Raises
    WorkloadConfigError (one line naming the file and the key)."""
    p = Path(path)
    if p.is_dir():
        raise WorkloadConfigError(f"{p}: is a directory; benchmark.dataset_path names the dataset's JSON file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise WorkloadConfigError(f"{p}: cannot read the dataset ({exc.strerror or exc})") from None
    if raw.startswith(_PICKLE_MAGIC) or raw.startswith(_PARQUET_MAGIC):
        kind = "a pickle" if raw.startswith(_PICKLE_MAGIC) else "a parquet"
        hint = f" ({conversion_hint})" if conversion_hint else " (convert it once: pandas df.to_json(path, orient='records'))"
        raise WorkloadConfigError(f"{p}: {kind} file; mlrepro reads the reference's JSON format{hint}")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkloadConfigError(f"{p}: not valid JSON ({exc})") from None
    records = _records(data, p)
    if not records:
        raise WorkloadConfigError(f"{p}: the dataset has no samples")
    prompts: list[list[int]] = []
    texts: list[str] = []
    refs: list[str] = []
    for i, rec in enumerate(records):
        name, ids = _column(rec, prompt_tokens)
        if name is None:
            raise WorkloadConfigError(f"{p}: record {i} has no '{prompt_tokens[0]}' column (the prompt's token ids"
                                      + (f"; also accepted: {', '.join(prompt_tokens[1:])}" if len(prompt_tokens) > 1 else "")
                                      + ")")
        if (not isinstance(ids, list) or not ids
                or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ids)):
            raise WorkloadConfigError(f"{p}: record {i} key '{name}': expected a non-empty list of non-negative "
                                      "token ids")
        if reference not in rec:
            raise WorkloadConfigError(f"{p}: record {i} has no '{reference}' column (the reference output)")
        ref = rec[reference]
        if not isinstance(ref, str):
            raise WorkloadConfigError(f"{p}: record {i} key '{reference}': expected a string")
        text = rec.get(prompt_text, "") if prompt_text else ""
        prompts.append(ids)
        texts.append(text if isinstance(text, str) else "")
        refs.append(ref)
    return LLMDataset(path=p, prompts=prompts, texts=texts, references=refs)
