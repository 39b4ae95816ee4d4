from __future__ import annotations

from typing import Any

from gateway.privacy.allowlist import REMOVE, apply_plan, compile_plan, copy_json

from .builders import policy

POLICY = policy()


def _redact(value: Any, event: Any, policy: Any) -> Any:
    return "<redacted>"


def _drop(value: Any, event: Any, policy: Any) -> Any:
    return REMOVE


def _apply(value: Any, allowlist: set[Any], **transforms: Any) -> Any:
    plan = compile_plan(allowlist, transforms=list(transforms.items()))
    return apply_plan(value, plan, value, POLICY)


def test_a_leaf_path_keeps_one_value_and_its_parents() -> None:
    assert _apply({"a": {"b": 1, "c": 2}, "d": 3}, {"a.b"}) == {"a": {"b": 1}}


def test_a_parent_listed_before_or_after_a_child_keeps_the_whole_parent() -> None:
    value = {"a": {"b": 1, "c": 2}}

    assert _apply(value, {"a", "a.b"}) == value
    assert _apply(value, {"a.b", "a"}) == value


def test_invalid_entries_allow_nothing() -> None:
    value = {"a": {"b": 1}, "": 2}

    assert _apply(value, {"", ".", "a.", ".a", "a..b", 5, None}) is REMOVE


def test_a_path_into_a_scalar_or_a_list_finds_nothing() -> None:
    assert _apply({"a": 1, "b": [{"c": 1}]}, {"a.x", "b.c"}) is REMOVE


def test_a_transform_replaces_the_value_at_its_path() -> None:
    out = _apply({"id": "raw", "x": 1}, {"id", "x"}, id=_redact)

    assert out == {"id": "<redacted>", "x": 1}


def test_a_transform_runs_inside_an_allowlisted_parent() -> None:
    out = _apply({"d": {"ifa": "raw", "os": "ios"}}, {"d"}, **{"d.ifa": _redact})

    assert out == {"d": {"ifa": "<redacted>", "os": "ios"}}


def test_a_transform_that_removes_leaves_the_siblings() -> None:
    out = _apply({"d": {"ifa": "raw", "os": "ios"}}, {"d"}, **{"d.ifa": _drop})

    assert out == {"d": {"os": "ios"}}


def test_a_transformed_path_that_is_not_allowlisted_is_dropped() -> None:
    assert _apply({"id": "raw", "x": 1}, {"x"}, id=_redact) == {"x": 1}


def test_a_kept_parent_that_hides_a_transformed_path_in_a_list_is_dropped() -> None:
    # Copying the list would bypass the transform on the identifier inside it.
    out = _apply({"d": [{"ifa": "raw"}], "x": 1}, {"d", "x"}, **{"d.ifa": _redact})

    assert out == {"x": 1}


def test_copy_json_drops_values_that_are_not_json() -> None:
    value = {"a": [1, (2, 3), {4}], "b": object(), 5: "non-string key", "c": {"d": None}}

    assert copy_json(value) == {"a": [1, [2, 3]], "c": {"d": None}}
