"""The client's data: what a caller asks for (:class:`GenerationRequest`), what one stream chunk says
(:class:`ChunkDelta`), what a request ended with (:class:`GenerationResult`), and :class:`FirstToken`.

Times are ``time.monotonic_ns()`` integers (the CLOCK_MONOTONIC clock LoadGen's steady clock also reads on
Linux), so they compare across threads and processes of one machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlrepro.harness.serving.errors import ErrorKind, RequestError

#: where a result's token count came from: the server's token ids, or ``usage.completion_tokens``
CountSource = Literal["token_ids", "usage"]
#: where a result's output for accuracy is: the server's token ids, or the text (the caller tokenizes it once)
OutputSource = Literal["token_ids", "text"]


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One query. ``id`` is the caller's (LoadGen's query id: any hashable int).

    Give ``prompt_text``, ``prompt_token_ids`` or both; the client sends the form its
    :class:`~mlrepro.harness.serving.client.ClientConfig` asks for (token ids where the server takes them:
    vLLM, SGLang; text where it does not: ``transformers serve``; chat always sends text).
    ``max_tokens`` is the output limit; ``extra`` is merged into the JSON body last (sampling: ``temperature``,
    ``top_k``, vLLM's ``min_tokens``/``ignore_eos``, ...).
    """

    id: int
    max_tokens: int
    prompt_text: str | None = None
    prompt_token_ids: Sequence[int] | None = None
    extra: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChunkDelta:
    """What one streamed chunk adds. ``text``: new output text; ``token_ids``: the new tokens' ids where the
    server sends them (vLLM ``return_token_ids``), else None; ``finish_reason`` once, at the end;
    ``completion_tokens``: ``usage.completion_tokens`` where the chunk has usage (the last, usage-only chunk
    with ``stream_options.include_usage``). ``has_content``: the chunk carries output (text or token ids);
    a role-only or usage-only chunk does not."""

    text: str = ""
    token_ids: Sequence[int] | None = None
    finish_reason: str | None = None
    completion_tokens: int | None = None
    has_content: bool = False


@dataclass(frozen=True, slots=True)
class FirstToken:
    """The first chunk with content: its arrival time, text and token ids (None where the server sends none)."""

    time_ns: int
    text: str
    token_ids: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """How one request ended; exactly one per submitted request, success or not.

    ``submit_ns``: :meth:`submit` was called; ``sent_ns``: the request went out (after waiting for a
    concurrency slot); ``first_token_ns``: the first chunk with content arrived (None if none did);
    ``done_ns``: the stream ended or failed. ``n_tokens`` is the server's count and ``count_source`` says
    which (token ids win over usage; both present and different is a malformed stream). ``token_ids`` are the
    output ids where the server sent them; ``text`` is the output text always; ``output_source`` says which
    the accuracy record should use. ``error`` is None on success, else the typed failure (what arrived before
    it is kept: ``first_token_ns`` may be set on a failed request).
    """

    request_id: int
    submit_ns: int
    sent_ns: int | None
    first_token_ns: int | None
    done_ns: int
    n_tokens: int | None = None
    count_source: CountSource | None = None
    token_ids: tuple[int, ...] | None = None
    text: str = ""
    finish_reason: str | None = None
    content_chunks: int = 0
    error: RequestError | None = None
    usage_completion_tokens: int | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_kind(self) -> ErrorKind | None:
        return self.error.kind if self.error is not None else None

    @property
    def output_source(self) -> OutputSource:
        return "token_ids" if self.token_ids is not None else "text"
