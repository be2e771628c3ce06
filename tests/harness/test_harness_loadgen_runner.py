"""LoadGen settings and dispatch details."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mlrepro.harness import loadgen_runner as lr


def test_import_loadgen_survives_the_mlcommons_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    real = lr.import_loadgen()
    assert hasattr(real, "TestSettings")
    monkeypatch.setitem(sys.modules, "mlperf_loadgen", types.ModuleType("mlperf_loadgen"))  # the empty alias
    again = lr.import_loadgen()
    assert hasattr(again, "TestSettings")


def test_build_settings_reads_every_setting_from_the_user_conf(tmp_path: Path) -> None:
    """A pinning test: what the composed user.conf says is what LoadGen uses, nothing set afterwards."""
    from mlrepro.harness.userconf import compose_user_conf

    lg = lr.import_loadgen()
    conf = tmp_path / "user.conf"
    conf.write_text(compose_user_conf("*.Offline.min_query_count = 7\n", "resnet50", "Offline",
                                      {"offline_expected_qps": 1234.5, "min_duration_ms": 250}))
    built = lr.build_settings(lg, conf, "resnet50", "Offline", official=False)
    s = built.settings
    assert s.scenario == lg.TestScenario.Offline
    assert s.offline_expected_qps == 1234.5 and s.min_duration_ms == 250 and s.min_query_count == 7
    assert s.qsl_rng_seed != 0 and s.sample_index_rng_seed != 0 and s.schedule_rng_seed != 0
    assert built.conf.method == "explicit" and set(built.conf.return_codes) == {0}
    assert lr.read_settings(built)["offline_expected_qps"] == 1234.5
    lr.set_mode(lg, s, "accuracy")
    assert s.mode == lg.TestMode.AccuracyOnly
    lr.set_mode(lg, s, "performance")
    assert s.mode == lg.TestMode.PerformanceOnly


def test_build_settings_rejects_a_bad_user_conf(tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text("resnet50.Offline.target_qps = lots\n")
    with pytest.raises(lr.UserConfError, match="rejected the user.conf"):
        lr.build_settings(lr.import_loadgen(), conf, "resnet50", "Offline", official=False)


def test_server_dispatch_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lr.DISPATCH_ENV, raising=False)
    assert lr.choose_server_dispatch(5e-6) == "inline"
    assert lr.choose_server_dispatch(5e-3) == "worker"
    assert lr.choose_server_dispatch(None) == "worker"
    monkeypatch.setenv(lr.DISPATCH_ENV, "worker")
    assert lr.choose_server_dispatch(5e-6) == "worker"
    monkeypatch.setenv(lr.DISPATCH_ENV, "inline")
    assert lr.choose_server_dispatch(5e-3) == "inline"


def test_gc_paused_restores_state() -> None:
    import gc

    assert gc.isenabled()
    with lr.gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == 0


class _FakeLG:
    class QuerySampleResponse:
        def __init__(self, id: int, data: int, size: int) -> None:
            self.id, self.data, self.size = id, data, size

    def __init__(self) -> None:
        self.completed: list[tuple[int, bytes]] = []

    def QuerySamplesComplete(self, responses: list[_FakeLG.QuerySampleResponse]) -> None:
        import ctypes

        for r in responses:
            self.completed.append((r.id, ctypes.string_at(r.data, r.size) if r.size else b""))


@pytest.mark.parametrize("payloads", [
    [b"abcd"], [b"abcd", b"efgh", b"ijkl"], [b"a", b"bcd", b"", b"ef"], [b"x" * 100_000, b"y"],
    [bytearray(b"zz"), memoryview(b"qq")],
    [np.arange(3, dtype=np.int16)], [np.arange(3, dtype=np.int16), np.ones((2, 2), dtype=np.float32)],
    [np.arange(2, dtype=np.int64), np.arange(2, dtype=np.int64)],
    [b"same"] * 5, [b"same", b"same", bytearray(b"same")], [b"ab", np.arange(3, dtype=np.int16)],
    [b"", b""], [b"", b"x", b""],
])
def test_responder_addresses_each_payload(payloads: list[bytes]) -> None:
    lg = _FakeLG()
    state = lr._RunState()
    respond = lr._Responder(lg, lambda idx: list(payloads), state)  # type: ignore[arg-type]
    ids = list(range(100, 100 + len(payloads)))
    respond(ids, list(range(len(payloads))))
    assert not state.failed, state.failure
    assert lg.completed == [(i, memoryview(p).tobytes()) for i, p in zip(ids, payloads)]


def test_responder_failure_completes_empty_and_latches() -> None:
    lg = _FakeLG()
    state = lr._RunState()
    calls = []

    def predict(idx: list[int]) -> list[bytes]:
        calls.append(idx)
        return [b"only-one"]

    respond = lr._Responder(lg, predict, state)  # type: ignore[arg-type]
    respond([1, 2], [0, 1])
    assert state.failed and "returned 1 payloads for 2 samples" in str(state.failure)
    respond([3], [2])
    assert len(calls) == 1  # no more predictions after a failure
    assert lg.completed == [(1, b""), (2, b""), (3, b"")]


def test_inline_dispatcher_batches() -> None:
    seen: list[list[int]] = []

    class R:
        def __call__(self, ids: list[int], idx: list[int]) -> None:
            seen.append(idx)

    d = lr._InlineDispatcher(R(), 4)  # type: ignore[arg-type]
    d.issue(list(range(10)), list(range(10)))
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


class _CountingLG(_FakeLG):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def QuerySamplesComplete(self, responses: list[_FakeLG.QuerySampleResponse]) -> None:
        self.calls += 1
        super().QuerySamplesComplete(responses)


def test_offline_dispatcher_coalesces_and_survives_buffer_reuse() -> None:
    """Completions are coalesced; payloads that overflow the scratch buffer flush what is pending first."""
    lg = _CountingLG()
    state = lr._RunState()

    def predict(idx: list[int]) -> list[bytes]:
        return [bytes([i % 251]) * (1 + (i * 37) % 3000) for i in idx]   # up to 3 KB, varying

    d = lr._OfflineDispatcher(lr._Responder(lg, predict, state), 16)  # type: ignore[arg-type]
    n = 5000
    d.issue(list(range(10_000, 10_000 + n)), list(range(n)))
    assert not state.failed, state.failure
    assert lg.completed == [(10_000 + i, p) for i, p in zip(range(n), predict(list(range(n))))]
    assert 1 < lg.calls < n // 16   # fewer calls than batches


def test_offline_dispatcher_coalesces_small_payloads() -> None:
    lg = _CountingLG()
    d = lr._OfflineDispatcher(lr._Responder(lg, lambda idx: [b"\x01"] * len(idx), lr._RunState()), 32)  # type: ignore[arg-type]
    d.issue(list(range(4096)), list(range(4096)))
    assert len(lg.completed) == 4096 and lg.calls <= 4096 // lr.COALESCE_SAMPLES + 1


def test_single_sample_path_failure() -> None:
    lg = _FakeLG()
    state = lr._RunState()

    def predict(idx: list[int]) -> list[bytes]:
        raise RuntimeError("boom")

    respond = lr._Responder(lg, predict, state)  # type: ignore[arg-type]
    respond([7], [0])
    respond([8], [1])
    assert state.failed and isinstance(state.failure, RuntimeError)
    assert lg.completed == [(7, b""), (8, b"")]
