"""Token latencies the way LoadGen computes them, from a :class:`~mlrepro.harness.serving.schema.GenerationResult`.

LoadGen (``use_token_latencies``; loadgen/logging.cc): TTFT = first-token time − issue time; latency =
completion time − issue time; TPOT = (latency − TTFT) / (n_tokens − 1), with n_tokens the count the SUT passed
to ``QuerySamplesComplete``. A single-token output has no TPOT here (None). All values are nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlrepro.harness.serving.schema import GenerationResult


@dataclass(frozen=True, slots=True)
class TokenLatencies:
    """``ttft_ns`` and ``latency_ns`` from the issue time; ``tpot_ns`` per LoadGen's formula (None: < 2 tokens)."""

    ttft_ns: int
    latency_ns: int
    tpot_ns: float | None


def token_latencies(issue_ns: int, first_token_ns: int, done_ns: int, n_tokens: int) -> TokenLatencies:
    """LoadGen's TTFT, latency and TPOT (see the module docstring). Raises ValueError for times out of order."""
    if not issue_ns <= first_token_ns <= done_ns:
        raise ValueError(f"times out of order: issue {issue_ns}, first token {first_token_ns}, done {done_ns}")
    ttft, latency = first_token_ns - issue_ns, done_ns - issue_ns
    tpot = (latency - ttft) / (n_tokens - 1) if n_tokens > 1 else None
    return TokenLatencies(ttft, latency, tpot)


def result_latencies(result: GenerationResult, issue_ns: int | None = None) -> TokenLatencies:
    """:func:`token_latencies` of a successful result, from ``issue_ns`` (default: its ``submit_ns``, the
    moment LoadGen issued it when the SUT submits at once). Raises ValueError for a failed result or one
    without a first token."""
    if result.error is not None or result.first_token_ns is None or result.n_tokens is None:
        raise ValueError(f"request {result.request_id} has no token latencies "
                         f"({result.error or 'no first token'})")
    return token_latencies(result.submit_ns if issue_ns is None else issue_ns, result.first_token_ns,
                           result.done_ns, result.n_tokens)
