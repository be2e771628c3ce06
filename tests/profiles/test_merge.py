"""Deep-merge semantics: mappings merge, lists and scalars replace, `key+` appends, null resets."""

import pytest

from mlrepro.profiles.merge import deep_merge, dotted_overlay, source_of


def test_mappings_merge_recursively_and_scalars_replace():
    prov: dict[str, str] = {}
    base = deep_merge({}, {"a": {"x": 1, "y": 2}, "b": 1}, "base", prov)
    merged = deep_merge(base, {"a": {"y": 3}}, "over", prov)
    assert merged == {"a": {"x": 1, "y": 3}, "b": 1}
    assert source_of(prov, "a.y", "?") == "over"
    assert source_of(prov, "a.x", "?") == "base"


def test_lists_replace_by_default():
    prov: dict[str, str] = {}
    merged = deep_merge({"pip": ["a", "b"]}, {"pip": ["c"]}, "over", prov)
    assert merged == {"pip": ["c"]}


def test_plus_suffix_appends():
    prov: dict[str, str] = {}
    merged = deep_merge({"packages": {"pip": ["a"]}}, {"packages": {"pip+": ["b"]}}, "over", prov)
    assert merged == {"packages": {"pip": ["a", "b"]}}
    assert deep_merge({}, {"apt+": ["x"]}, "o", prov) == {"apt": ["x"]}


def test_plus_on_non_list_is_an_error():
    with pytest.raises(TypeError, match=r"a\+: appending needs a list"):
        deep_merge({"a": []}, {"a+": "x"}, "o", {})
    with pytest.raises(TypeError, match="cannot append to a str"):
        deep_merge({"a": "s"}, {"a+": ["x"]}, "o", {})


def test_null_removes_key_so_default_applies():
    prov: dict[str, str] = {}
    merged = deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}, "o", prov)
    assert merged == {"a": {"c": 2}}


def test_inputs_are_not_mutated():
    base = {"a": {"b": [1]}}
    over = {"a": {"b+": [2]}}
    deep_merge(base, over, "o", {})
    assert base == {"a": {"b": [1]}} and over == {"a": {"b+": [2]}}


def test_dotted_overlay():
    assert dotted_overlay("a.b.c", 1) == {"a": {"b": {"c": 1}}}
    assert dotted_overlay("x", [1]) == {"x": [1]}
