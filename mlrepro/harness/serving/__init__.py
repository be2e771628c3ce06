"""A streaming client of OpenAI-compatible LLM servers (vLLM, SGLang, ``transformers serve``) for the
harness's network SUT. Imports nothing outside ``mlrepro.harness``; its one third-party need is ``aiohttp``.

The interface an LLM SUT drives (a thin adapter from LoadGen)::

    from mlrepro.harness.serving import ClientConfig, GenerationRequest, StreamingClient

    cfg = ClientConfig.for_engine("vllm", "http://server:8000/v1", model="llama3.1-8b",
                                  max_concurrency=256)                 # or ClientConfig(...) field by field
    client = StreamingClient(cfg).start()                               # one loop thread; close() at the end

    # LoadGen's issue callback (any thread): returns at once
    client.submit(GenerationRequest(id=q.id, max_tokens=128, prompt_token_ids=tok_input, prompt_text=text),
                  on_first_token=lambda req, first: ...,   # FirstTokenComplete: first.time_ns, first.token_ids
                  on_done=lambda result: ...)              # QuerySamplesComplete: result.n_tokens, token_ids
    client.submit_many([(req, on_first, on_done), ...])     # Offline: one wake-up for many
    client.wait_idle(timeout_s)                             # flush: every on_done has returned
    client.failure_counts()                                 # {"http_429": 3, "timeout_stall": 1, ...}
    client.close()                                          # in-flight requests end "cancelled"

Callbacks run on the client's loop thread, exactly one ``on_done`` per request. A failed request's
``GenerationResult.error`` is a :class:`RequestError` with ``kind`` (:class:`ErrorKind`) and a one-line
``reason``; there are no retries, so the SUT must still complete the query with LoadGen and mark the run
failed/INVALID with :meth:`StreamingClient.failure_counts`. Token counts come from the server
(``result.count_source``: ``token_ids`` or ``usage``); output for accuracy is ``result.token_ids`` where the
server sent them, else ``result.text`` (``result.output_source`` says which; tokenize the text once).
:func:`result_latencies` gives TTFT/latency/TPOT as LoadGen computes them.

Modules: :mod:`.engines` (model-server engines as data, engines.json), :mod:`.sse` (SSE framing), :mod:`.errors` (typed failures), :mod:`.completions` and :mod:`.chat`
(request bodies, chunk decoding per API), :mod:`.schema` (the data), :mod:`.client` (the engine),
:mod:`.metrics` (LoadGen's token latencies).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.harness.serving.client import (
        ENGINE_DEFAULTS,
        ClientConfig,
        OnDone,
        OnFirstToken,
        StreamingClient,
        Timeouts,
    )
    from mlrepro.harness.serving.errors import ErrorKind, RequestError
    from mlrepro.harness.serving.metrics import TokenLatencies, result_latencies, token_latencies
    from mlrepro.harness.serving.schema import FirstToken, GenerationRequest, GenerationResult

#: where each public name lives: imported on first use, so that reading the engines (engines.py: the profile
#: schema does, on every CLI command) does not import aiohttp
_EXPORTS = {
    "ENGINE_DEFAULTS": "client", "ClientConfig": "client", "OnDone": "client", "OnFirstToken": "client",
    "StreamingClient": "client", "Timeouts": "client", "ErrorKind": "errors", "RequestError": "errors",
    "TokenLatencies": "metrics", "result_latencies": "metrics", "token_latencies": "metrics",
    "FirstToken": "schema", "GenerationRequest": "schema", "GenerationResult": "schema",
}

__all__ = [
    "ENGINE_DEFAULTS", "ClientConfig", "ErrorKind", "FirstToken", "GenerationRequest", "GenerationResult",
    "OnDone", "OnFirstToken", "RequestError", "StreamingClient", "Timeouts", "TokenLatencies",
    "result_latencies", "token_latencies",
]
assert sorted(__all__) == sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
