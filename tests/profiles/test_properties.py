"""Property tests: arbitrary user input never crashes resolution; it validates or fails with ProfileError."""

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrepro.profiles import ProfileError, resolve_profile

NASTY = st.sampled_from(["'", '"', "\n", "$(reboot)", "`id`", "{{ .Values.x }}", "# c", "\\", "é漢🙂", "\r", "\0",
                         "--", "RUN rm -rf /", ": x", "- y", "&anchor", "*alias", "!!python/object", ""])
TEXT = st.lists(st.one_of(NASTY, st.text(max_size=8)), max_size=5).map("".join)
KEYS = st.sampled_from(["name", "description", "platform", "image.base", "image.repository", "image.tag",
                        "image.python", "env.FOO", "env.bad-key", "packages.pip", "packages.apt",
                        "benchmark.workload", "benchmark.scenarios", "benchmark.user_conf",
                        "scheduling.node_selector.a/b", "accelerator.count", "resources.limits.cpu",
                        "results.storage_class", "job.retries", "benchmark.settings.min_query_count"])
VALUES = st.one_of(TEXT, st.integers(-5, 10**12), st.booleans(), st.none(), st.lists(TEXT, max_size=3),
                   st.dictionaries(TEXT, TEXT, max_size=2), st.floats(allow_nan=True))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(KEYS, VALUES), max_size=4))
def test_random_overlays_validate_or_fail_cleanly(tmp_path_factory, assignments):
    overlay: dict = {}
    for key, value in assignments:
        node = overlay
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[parts[-1]] = value
    path = tmp_path_factory.mktemp("o") / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay, allow_unicode=True), encoding="utf-8")
    try:
        r = resolve_profile("x86-cpu", [path])
    except ProfileError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)
        return
    # a valid profile always dumps to YAML that loads back to the same data
    assert yaml.safe_load(r.to_yaml()) == r.to_dict()


@settings(max_examples=100, deadline=None)
@given(TEXT, TEXT)
def test_free_text_fields_round_trip(description, env_value):
    try:
        r = resolve_profile("x86-cpu", sets=[f"env.X={env_value}"])
    except ProfileError:
        return
    r2 = resolve_profile("x86-cpu", sets=[])
    assert yaml.safe_load(r.to_yaml()) == r.to_dict()
    assert r.hash != r2.hash or r.profile == r2.profile
