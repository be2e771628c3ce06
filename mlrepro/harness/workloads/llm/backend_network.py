"""The ``openai`` LLM backend: a model server over its OpenAI-compatible API (the network SUT).

The model runs in a server apart (a Deployment, a container, a local process: :mod:`mlrepro.harness.serve`, or
an existing endpoint); this backend streams the benchmark's queries to it with the harness's client
(:mod:`mlrepro.harness.serving`: asyncio, bounded concurrency, no thread per query) and reports to LoadGen
through the workload's token callbacks:

* first token: at the first chunk with content (``FirstTokenComplete``); its payload is the chunk's token ids
  where the server sends them, else the chunk's text tokenized;
* end: ``QuerySamplesComplete`` with the **server's** token count (its token ids, or ``usage.completion_tokens``;
  never a re-tokenization of chunks); the payload (the output tokens, for accuracy) is the server's token ids
  where it sends them (vLLM ``return_token_ids``), else the final text tokenized once here -- the record says
  which (``describe()["output_tokens"]``);
* prompts: token ids where the engine takes them (vLLM, SGLang), text where not (``transformers serve``): the
  dataset's prompt text, else the prompt's token ids decoded;
* failures: a request that fails (HTTP 4xx/5xx, 429, a dropped or malformed stream, a timeout) ends its query
  at once (``on_failed``: completed empty, counted by kind); nothing is retried; the harness ends the run
  failed with the counts and the first reason.

Configuration: ``workload.options.server`` (written by mlrepro from the profile's ``serve`` block; docs/
llm-serving.md): ``engine``, ``base_url``, ``served_model``, ``model`` (the server's model as the client finds it:
the same image, claim or path), ``command`` (how mlrepro starts it), ``started_by`` (``mlrepro`` | ``existing``),
``api``, ``max_concurrency``, ``ready_timeout_s``, ``timeouts``. The tokenizer comes from ``model_path`` (or the
benchmark's packaged model). Before the first query the backend waits for the server's health path
(``ready_timeout_s``) and records the server's facts: engine, version (the server's version endpoint where the
engine has one, else its distribution in this image, which the server runs too), command line, model sha256.

Errors: options that do not make a client -> WorkloadConfigError; a server that does not get ready in time or a
tokenizer that cannot load -> WorkloadError / WorkloadConfigError naming it.
"""

from __future__ import annotations

import collections
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mlrepro.harness.workloads.base import WorkloadConfigError, WorkloadError
from mlrepro.harness.workloads.llm.model import ModelRef

#: option keys of ``workload.options.server``
SERVER_KEYS = ("engine", "base_url", "served_model", "model", "command", "started_by", "image", "api",
               "max_concurrency", "ready_timeout_s", "timeouts", "host", "port", "engine_args")
STARTED_BY = ("mlrepro", "existing")
HEALTH_POLL_S = 0.5
#: the last tokenizer loaded, by model path: one process (calibration probes, several runs, tests) reads it once
_TOKENIZERS: dict[str, Any] = {}

OnFirst = Callable[[int, np.ndarray], None]
OnDone = Callable[..., None]
OnFailed = Callable[[int, str, str], None]


def _root(base_url: str) -> str:
    """``http://h:8000/v1`` -> ``http://h:8000`` (health and version paths hang off the server's root)."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _get_json(url: str, timeout_s: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - the run spec's http(s) server
        return json.loads(resp.read() or b"null")


class NetworkBackend:
    """See the module docstring. ``submit`` streams one request per prompt and returns at once; callbacks run
    on the client's loop thread."""

    name = "openai"
    #: the harness hands it samples one by one as LoadGen issues them, Offline included
    concurrent = True
    submits_offline = True
    takes_text = True

    def __init__(self, options: Mapping[str, Any], scenario: str = "Offline") -> None:
        from mlrepro.harness.serving import ClientConfig, Timeouts
        from mlrepro.harness.serving.engines import GENERIC, EngineError, engine

        unknown = sorted(set(options) - set(SERVER_KEYS))
        if unknown:
            raise WorkloadConfigError(f"workload.options.server.{unknown[0]}: unknown (known: {', '.join(SERVER_KEYS)})")
        self.options = dict(options)
        try:
            self.engine = engine(str(options.get("engine") or GENERIC))
        except EngineError as exc:
            raise WorkloadConfigError(f"workload.options.server.engine: {exc}") from None
        base_url = options.get("base_url")
        if not isinstance(base_url, str) or not base_url:
            raise WorkloadConfigError("workload.options.server.base_url: the server's URL (http://host:port/v1) is "
                                      "required")
        self.started_by = str(options.get("started_by") or "existing")
        if self.started_by not in STARTED_BY:
            raise WorkloadConfigError(f"workload.options.server.started_by: {self.started_by!r} is not one of "
                                      f"{', '.join(STARTED_BY)}")
        t = options.get("timeouts") or {}
        try:
            timeouts = Timeouts(**{k: float(v) if v is not None else None for k, v in dict(t).items()})
            self.config = ClientConfig.for_engine(self.engine.name, base_url, str(options.get("served_model") or ""),
                                                  api=options.get("api") or "completions",
                                                  max_concurrency=int(options.get("max_concurrency") or 64),
                                                  timeouts=timeouts)
        except (TypeError, ValueError) as exc:
            raise WorkloadConfigError(f"workload.options.server: {exc}") from None
        self.ready_timeout_s = float(options.get("ready_timeout_s") or 600)
        self.scenario = scenario
        self.tokenizer: Any = None
        self.client: Any = None
        self.eos: frozenset[int] = frozenset()
        self.vocab_size = 0
        self.load_s: float | None = None
        self.facts: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.output_sources: collections.Counter[str] = collections.Counter()
        self.count_sources: collections.Counter[str] = collections.Counter()
        self._ids = 0

    # ------------------------------------------------------------------ loading
    def load(self, ref: ModelRef) -> None:
        t0 = time.perf_counter()
        self._load_tokenizer(ref)
        self._wait_ready()
        self.facts = self._server_facts()
        if not self.config.model:                # the served model: the same name the server's command gives it
            from dataclasses import replace
            self.config = replace(self.config, model=str(self.facts.get("served_model") or ""))
        if not self.config.model:
            raise WorkloadConfigError("workload.options.server.served_model: the model name the server answers to "
                                      "is required for an existing server (--served-model NAME)")
        from mlrepro.harness.serving import StreamingClient
        self.client = StreamingClient(self.config).start()
        self.load_s = time.perf_counter() - t0

    def _load_tokenizer(self, ref: ModelRef) -> None:
        try:
            import transformers
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise WorkloadConfigError(f"backend openai: the tokenizer needs transformers ({exc}; pip install "
                                      "'mlrepro[llm]')") from None
        transformers.utils.logging.set_verbosity_error()
        kw: dict[str, Any] = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
        key = str(ref.path.resolve())
        if key not in _TOKENIZERS:
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(ref.directory), **kw)
            except Exception as exc:  # noqa: BLE001 - any reader failure is this file's problem
                raise WorkloadConfigError(f"{ref.path}: transformers {transformers.__version__} cannot read this "
                                          f"{ref.format.upper()} tokenizer ({type(exc).__name__}: "
                                          f"{' '.join(str(exc).split())[:300]})") from None
            _TOKENIZERS.clear()
            _TOKENIZERS[key] = tokenizer
        self.tokenizer = _TOKENIZERS[key]
        eos = self.tokenizer.eos_token_id
        self.eos = frozenset([eos] if isinstance(eos, int) else [])
        self.vocab_size = int(len(self.tokenizer))

    def _wait_ready(self) -> None:
        """Poll the server's health path until it answers 200 (``ready_timeout_s``)."""
        from mlrepro.harness.serve import check

        url = _root(self.config.base_url) + self.engine.health_path
        deadline = time.monotonic() + self.ready_timeout_s
        while not check(url, timeout_s=min(5.0, self.ready_timeout_s)):
            if time.monotonic() >= deadline:
                raise WorkloadError(f"the model server at {self.config.base_url} is not ready: {url} did not answer "
                                    f"200 within {self.ready_timeout_s:g} s")
            time.sleep(HEALTH_POLL_S)

    def _server_facts(self) -> dict[str, Any]:
        """Engine, version, command line and model digest of the server (see the module docstring)."""
        from mlrepro.harness.serve import engine_version, model_sha256, server_command

        e, o = self.engine, self.options
        facts: dict[str, Any] = {"engine": e.name, "started_by": self.started_by, "base_url": self.config.base_url,
                                 "image": o.get("image") or None, "command": o.get("command") or None,
                                 "version": None, "version_source": None, "engine_command": None,
                                 "served_model": self.config.model or None, "model": o.get("model") or None,
                                 "model_path": None, "model_sha256": None, "model_sha256_source": None,
                                 "sut": "model server + LoadGen client"}
        if e.version_http:
            try:
                doc = _get_json(_root(self.config.base_url) + e.version_http)
                version = doc.get(e.version_field or "version") if isinstance(doc, dict) else None
                if version:
                    facts.update(version=str(version), version_source=f"GET {e.version_http} of the server")
            except (urllib.error.URLError, OSError, ValueError):
                pass
        if self.started_by == "mlrepro" and o.get("model") and e.startable:
            cmd = server_command(e.name, str(o["model"]), str(o.get("host") or "0.0.0.0"),  # noqa: S104
                                 int(o.get("port") or e.port or 8000), str(o.get("served_model") or ""),
                                 [str(a) for a in o.get("engine_args") or ()])
            facts.update(engine_command=list(cmd.argv), model_path=cmd.model_path,
                         served_model=self.config.model or cmd.served_model)
            if facts["version"] is None:
                v = engine_version(e)
                if v:
                    facts.update(version=v, version_source=f"{e.version_distribution} in the image (or environment) "
                                                           "the server runs too")
            try:
                facts.update(model_sha256=model_sha256(cmd.model_path),
                             model_sha256_source="the server's model as this client finds it (the same image, "
                                                 "claim or host path)")
            except OSError as exc:
                facts["model_sha256_source"] = f"not readable here: {exc.strerror or exc}"
        elif self.started_by == "existing":
            facts["note"] = ("an existing server (--endpoint): mlrepro did not start it, so its command line and "
                             "model are not known")
        return facts

    # ------------------------------------------------------------------ generation
    def _tokens_of_text(self, text: str) -> np.ndarray:
        return np.asarray(self.tokenizer.encode(text, add_special_tokens=False), dtype=np.int64)

    def prompt_text(self, ids: Sequence[int], text: str | None) -> str:
        return text if text else str(self.tokenizer.decode(list(ids), skip_special_tokens=False))

    def submit(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, min_new_tokens: int,
               on_first: OnFirst | None, on_done: OnDone, on_error: Callable[[BaseException], None],
               on_failed: OnFailed | None = None, texts: Sequence[str] | None = None) -> None:
        """One streamed request per prompt, at once (at most ``max_concurrency`` in flight); returns at once.
        ``on_failed(row, kind, reason)`` ends a failed query (``on_error`` when None: the run fails)."""
        from mlrepro.harness.serving import GenerationRequest

        if self.client is None:
            raise WorkloadError("backend openai: the client is not started (load() first)")
        extra = self.engine.sampling_fields(min_new_tokens)
        text_prompts = self.config.prompt_format == "text"
        items = []
        for row, ids in enumerate(prompts):
            with self._lock:
                self._ids += 1
                rid = self._ids
            text = self.prompt_text(ids, texts[row] if texts else None) if text_prompts else None
            req = GenerationRequest(id=rid, max_tokens=max_new_tokens, prompt_text=text,
                                    prompt_token_ids=None if text_prompts else list(ids), extra=extra)
            items.append((req, self._first_cb(row, on_first) if on_first is not None else None,
                          self._done_cb(row, on_done, on_error, on_failed)))
        self.client.submit_many(items)

    def _first_cb(self, row: int, on_first: OnFirst) -> Callable[[Any, Any], None]:
        def cb(_req: Any, first: Any) -> None:
            ids = first.token_ids
            on_first(row, np.asarray(ids, dtype=np.int64) if ids is not None else self._tokens_of_text(first.text))
        return cb

    def _done_cb(self, row: int, on_done: OnDone, on_error: Callable[[BaseException], None],
                 on_failed: OnFailed | None) -> Callable[[Any], None]:
        def cb(result: Any) -> None:
            if result.error is not None:
                if on_failed is not None:
                    on_failed(row, result.error.kind.value, result.error.reason)
                else:
                    on_error(WorkloadError(f"the model server failed a request: {result.error}"))
                return
            tokens = (np.asarray(result.token_ids, dtype=np.int64) if result.token_ids is not None
                      else self._tokens_of_text(result.text))
            with self._lock:
                self.output_sources[result.output_source] += 1
                self.count_sources[str(result.count_source)] += 1
            on_done(row, tokens, int(result.n_tokens))
        return cb

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, min_new_tokens: int,
                 on_first: OnFirst | None, on_done: OnDone, texts: Sequence[str] | None = None) -> None:
        """A batch, blocking: every prompt submitted, then waited for (warm-up, probes). A failed request raises
        WorkloadError after the batch."""
        failures: list[str] = []
        done = threading.Event()
        left = [len(prompts)]

        def finish() -> None:
            with self._lock:
                left[0] -= 1
                if left[0] == 0:
                    done.set()

        def ok(row: int, tokens: np.ndarray, n: int | None = None) -> None:
            try:
                on_done(row, tokens, n) if n is not None else on_done(row, tokens)
            finally:
                finish()

        def failed(row: int, kind: str, reason: str) -> None:
            failures.append(f"{kind}: {reason}")
            finish()

        if not prompts:
            return
        self.submit(prompts, max_new_tokens, min_new_tokens, on_first, ok, lambda exc: failed(-1, "internal", str(exc)),
                    failed, texts)
        done.wait()
        if failures:
            raise WorkloadError(f"the model server failed {len(failures)} of {len(prompts)} requests: {failures[0]}")

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    def describe(self) -> dict[str, Any]:
        import transformers

        with self._lock:
            outputs, counts = dict(self.output_sources), dict(self.count_sources)
        how = {"token_ids": "the server's token ids", "text": "the final text, tokenized once by the client"}
        cfg = self.config
        return {"framework": "openai-api", "server": dict(self.facts),
                "client": {"api": cfg.api, "prompt_format": cfg.prompt_format, "return_token_ids":
                           cfg.return_token_ids, "max_concurrency": cfg.max_concurrency,
                           "timeouts": {"connect_s": cfg.timeouts.connect_s,
                                        "between_chunks_s": cfg.timeouts.between_chunks_s,
                                        "total_s": cfg.timeouts.total_s},
                           "sampling": dict(self.engine.sampling),
                           "retries": 0},
                "output_tokens": {"expected": how["token_ids" if cfg.return_token_ids else "text"],
                                  "results_by_source": outputs},
                "token_count": {"expected": "the server's token ids" if cfg.return_token_ids else
                                "usage.completion_tokens of the server", "results_by_source": counts},
                "tokenizer": "transformers " + transformers.__version__, "vocab_size": self.vocab_size,
                "eos_token_ids": sorted(self.eos), "load_s": round(self.load_s, 3) if self.load_s else None}

    def failure_counts(self) -> dict[str, int]:
        return self.client.failure_counts() if self.client is not None else {}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
