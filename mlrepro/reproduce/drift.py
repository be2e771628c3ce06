"""The drift report: what differs between a recorded result and its reproduction, and whether they match.

Facts of each side come from its submission tree (tree reader: LoadGen logs, accuracy.txt, systems json) and
mlrepro's record of the performance run (record.json). Rules of a match (a ``mismatch`` item each):

- accuracy: every metric of accuracy.txt equal, as written (exactly);
- performance: the result metric within ``tolerance`` (relative, default 5 %);
- validity: LoadGen says VALID on both sides;
- what defines the run: profile hash, LoadGen settings in effect (from the detail logs), RNG seeds, the image
  (digest, or the content hash of an image rebuilt from the recorded profile), the recorded user.conf being
  the one the run loaded, and no ``mlrepro check`` error on the original result folder (a tampered log);
- a network SUT's model server (record.json ``server``): the same engine, started with the same command line
  (its loopback port aside: a native server gets a free one each time), on a model with the same sha256.

Environment differences (hardware, OS and kernel, framework, LoadGen, Python, harness versions) are listed as
``differs``: they explain a drift, they are not one.

Public API::

    RunFacts, DriftItem, DriftReport       (frozen dataclasses)
    facts_of(tree, result, record, user_conf_text) -> RunFacts
    compare(old, new, *, tolerance, image_note=None, image_equivalent=False, original_errors=()) -> DriftReport
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlrepro.results.tree import ResultEntry, SubmissionTree

MISMATCH, DIFFERS, SAME = "mismatch", "differs", "same"
DEFAULT_TOLERANCE = 0.05
#: detail-log settings that define a run (LoadGen ``effective_*`` keys, without the prefix)
SETTING_KEYS = ("scenario", "test_mode", "min_duration_ms", "min_query_count", "target_qps", "target_latency_ns",
                "samples_per_query", "performance_sample_count", "accuracy_sample_count",
                "sample_concatenate_permutation", "performance_issue_same", "performance_issue_unique")
SEED_KEYS = ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")
#: latency percentiles listed (informative: the metric and the tolerance decide)
INFO_PERCENTILES = ("50.00", "90.00", "99.00")
#: systems json fields that describe hardware and software (MLPerf systems description)
SYSTEM_KEYS = (("hardware", "host_processor_model_name"), ("hardware", "host_processor_core_count"),
               ("hardware", "host_memory_capacity"), ("hardware", "accelerator_model_name"),
               ("hardware", "accelerators_per_node"), ("OS/kernel", "operating_system"),
               ("framework", "framework"), ("software", "other_software_stack"))


@dataclass(frozen=True)
class RunFacts:
    """One side of the comparison."""

    tree_result: str                         # the result folder (tree root / rel)
    run_id: str | None
    profile_hash: str | None
    image_reference: str | None
    image_digest: str | None
    environment: Mapping[str, str | None]    # "<group>: <field>" -> value
    settings: Mapping[str, Any]              # effective LoadGen settings of the performance run
    seeds: Mapping[str, Any]
    metric: str | None
    value: float | None
    unit: str
    latency_ms: Mapping[str, float]
    accuracy: Mapping[str, str]
    validity: str | None
    user_conf_sha256: str | None             # of the result folder's user.conf
    recorded_user_conf_sha256: str | None    # what the run's record says it loaded
    server: Mapping[str, str | None] = field(default_factory=dict)   # a network SUT's model server (record)


@dataclass(frozen=True)
class DriftItem:
    group: str            # image | profile | environment | server | settings | seeds | user.conf | result | check
    name: str
    recorded: str
    reproduced: str
    verdict: str          # mismatch | differs | same
    note: str = ""


@dataclass(frozen=True)
class DriftReport:
    items: tuple[DriftItem, ...]
    tolerance: float
    notes: tuple[str, ...] = field(default=())

    @property
    def mismatches(self) -> tuple[DriftItem, ...]:
        return tuple(i for i in self.items if i.verdict == MISMATCH)

    @property
    def match(self) -> bool:
        return not self.mismatches


def _s(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _sha(text: str | None) -> str | None:
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text is not None else None


def facts_of(tree: SubmissionTree, result: ResultEntry, record: Mapping[str, Any] | None,
             user_conf_text: str | None) -> RunFacts:
    """The facts of one result folder and its performance run's record (``record.json``, may be None)."""
    rec = record or {}
    detail = result.performance.detail if result.performance is not None else None
    effective = detail.effective if detail is not None else {}
    system = tree.system(result)
    sysdata = system.data if system is not None and system.data is not None else {}
    env: dict[str, str | None] = {f"{g}: {k}": (str(sysdata[k]) if k in sysdata else None) for g, k in SYSTEM_KEYS}
    framework = rec.get("framework") if isinstance(rec.get("framework"), dict) else {}
    loadgen = rec.get("loadgen") if isinstance(rec.get("loadgen"), dict) else {}
    harness = rec.get("harness") if isinstance(rec.get("harness"), dict) else {}
    env["framework: imported"] = f"{framework.get('package')} {framework.get('installed')}" if framework else None
    env["LoadGen: version"] = loadgen.get("version") or (detail.loadgen_version if detail is not None else None)
    env["Python"] = harness.get("python")
    env["machine"] = harness.get("machine")
    env["mlrepro harness"] = harness.get("version")
    image = rec.get("image") if isinstance(rec.get("image"), dict) else {}
    settings = rec.get("settings") if isinstance(rec.get("settings"), dict) else {}
    server = rec.get("server") if isinstance(rec.get("server"), dict) else {}
    return RunFacts(
        tree_result=f"{tree.root}/{result.rel}", run_id=rec.get("run_id"), profile_hash=rec.get("profile_hash"),
        image_reference=image.get("reference"), image_digest=image.get("digest"), environment=env,
        settings={k: effective.get(f"effective_{k}") for k in SETTING_KEYS if f"effective_{k}" in effective},
        seeds={k: effective.get(f"effective_{k}") for k in SEED_KEYS if f"effective_{k}" in effective},
        metric=result.metric.name if result.metric else None, value=result.metric.value if result.metric else None,
        unit=result.metric.unit if result.metric else "",
        latency_ms={p: ns / 1e6 for p, ns in result.latency_ns.items()}, accuracy=dict(result.accuracy_values),
        validity=result.validity, user_conf_sha256=_sha(user_conf_text),
        recorded_user_conf_sha256=settings.get("user_conf_sha256"), server=server_facts(server))


#: a model server's facts that define the run (mismatch when they differ) and that explain a drift (differs)
SERVER_DEFINING = ("engine", "engine command", "model sha256", "served model")
SERVER_INFORMATIVE = ("version",)


def _mask_listen(argv: Any) -> str | None:
    """The engine's command line with its --host/--port values masked (a native server gets a free port)."""
    if not isinstance(argv, list):
        return None
    out, mask = [], False
    for part in argv:
        out.append("*" if mask else str(part))
        mask = part in ("--host", "--port")
    return " ".join(out)


def server_facts(server: Mapping[str, Any]) -> dict[str, str | None]:
    """The compared facts of a record's ``server`` ({} for an in-process SUT)."""
    if not server:
        return {}
    return {"engine": server.get("engine"), "version": server.get("version"),
            "engine command": _mask_listen(server.get("engine_command")),
            "model sha256": server.get("model_sha256"), "served model": server.get("served_model")}


def _pairs(group: str, old: Mapping[str, Any], new: Mapping[str, Any], verdict_if_differs: str) -> list[DriftItem]:
    out = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key), new.get(key)
        out.append(DriftItem(group, key, _s(a), _s(b), SAME if a == b else verdict_if_differs))
    return out


def _image(old: RunFacts, new: RunFacts, note: str | None, equivalent: bool) -> list[DriftItem]:
    if old.image_digest is None and new.image_digest is None:
        return [DriftItem("image", "digest", "-", "-", SAME, "no container image (native runs)")]
    same = old.image_digest == new.image_digest
    verdict = SAME if same else (DIFFERS if equivalent else MISMATCH)
    return [DriftItem("image", "reference", _s(old.image_reference), _s(new.image_reference),
                      SAME if old.image_reference == new.image_reference else DIFFERS),
            DriftItem("image", "digest", _s(old.image_digest), _s(new.image_digest), verdict, note or "")]


def compare(old: RunFacts, new: RunFacts, *, tolerance: float = DEFAULT_TOLERANCE, image_note: str | None = None,
            image_equivalent: bool = False, original_errors: Sequence[str] = (),
            notes: Sequence[str] = ()) -> DriftReport:
    """The drift report of ``new`` (the reproduction) against ``old`` (the record). ``image_equivalent``: the
    reproduction's image was rebuilt from the recorded profile with the recorded content hash (another digest
    is then a difference, not a mismatch). ``original_errors``: ``mlrepro check`` errors on the original."""
    items: list[DriftItem] = []
    items.append(DriftItem("profile", "profile hash", _s(old.profile_hash), _s(new.profile_hash),
                           SAME if old.profile_hash == new.profile_hash else MISMATCH))
    items += _image(old, new, image_note, image_equivalent)
    items += _pairs("environment", old.environment, new.environment, DIFFERS)
    if old.server or new.server:
        items += _pairs("server", {k: old.server.get(k) for k in SERVER_DEFINING},
                        {k: new.server.get(k) for k in SERVER_DEFINING}, MISMATCH)
        items += _pairs("server", {k: old.server.get(k) for k in SERVER_INFORMATIVE},
                        {k: new.server.get(k) for k in SERVER_INFORMATIVE}, DIFFERS)
    items += _pairs("settings", old.settings, new.settings, MISMATCH)
    items += _pairs("seeds", old.seeds, new.seeds, MISMATCH)
    if old.recorded_user_conf_sha256 and old.user_conf_sha256 != old.recorded_user_conf_sha256:
        items.append(DriftItem("user.conf", "sha256 of the tree's user.conf", _s(old.recorded_user_conf_sha256),
                               _s(old.user_conf_sha256), MISMATCH,
                               "the user.conf in the tree is not the one the recorded run loaded"))
    for message in original_errors:
        items.append(DriftItem("check", "original result", "error", "-", MISMATCH, message))
    # measured figures
    items.append(DriftItem("result", "validity", _s(old.validity), _s(new.validity),
                           SAME if old.validity == new.validity == "VALID" else MISMATCH))
    if old.value is not None and new.value is not None and old.value != 0:
        change = (new.value - old.value) / old.value
        items.append(DriftItem("result", f"{old.metric} ({old.unit})", _s(old.value), _s(new.value),
                               SAME if abs(change) <= tolerance else MISMATCH,
                               f"{change * 100:+.2f} % (tolerance ±{tolerance * 100:g} %)"))
    else:
        items.append(DriftItem("result", f"{old.metric or 'metric'}", _s(old.value), _s(new.value), MISMATCH,
                               "no value to compare"))
    for key in dict.fromkeys([*old.accuracy, *new.accuracy]):
        a, b = old.accuracy.get(key), new.accuracy.get(key)
        items.append(DriftItem("result", f"accuracy {key}", _s(a), _s(b), SAME if a == b else MISMATCH,
                               "compared exactly"))
    if not old.accuracy:
        items.append(DriftItem("result", "accuracy", "-", _s(dict(new.accuracy) or None), MISMATCH,
                               "the original has no accuracy value"))
    for p in [p for p in dict.fromkeys([*old.latency_ms, *new.latency_ms]) if p in INFO_PERCENTILES]:
        a, b = old.latency_ms.get(p), new.latency_ms.get(p)
        items.append(DriftItem("result", f"latency p{p.rstrip('0').rstrip('.')} (ms)", _s(a), _s(b),
                               SAME if a == b else DIFFERS, "informative"))
    return DriftReport(items=tuple(items), tolerance=tolerance, notes=tuple(notes))
