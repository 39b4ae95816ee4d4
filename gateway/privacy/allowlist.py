"""Field allowlists compiled into plans that build a partner's record in one pass.

A plan is a tree of nodes, one per path segment. A node either keeps everything
below it (``keep_all``), keeps only its listed children, or replaces its value
through a transform (pseudonymise an identifier, truncate an IP). The output is
built directly from the input: nothing is deep-copied and then pruned, and the
input is never mutated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gateway.privacy.policy import PartnerPolicy


class _Removed:
    """The type of ``REMOVE``."""

    def __repr__(self) -> str:
        return "REMOVE"


# Returned by a transform (or the walker) when a field must not appear in the output.
REMOVE: Any = _Removed()

# A transform gets the field's value, the whole event and the policy, and returns
# the value to send or REMOVE.
Transform = Callable[[Any, Mapping[str, Any], PartnerPolicy], Any]


class PlanNode:
    """One path segment of a compiled allowlist."""

    __slots__ = ("children", "keep_all", "keeps_whole", "transform")

    def __init__(self) -> None:
        self.children: dict[str, PlanNode] = {}
        self.keep_all = False
        self.transform: Transform | None = None
        # keep_all with nothing to transform below: the value is copied as it is.
        # Set by compile_plan once the tree is final.
        self.keeps_whole = False

    def __repr__(self) -> str:
        return (
            f"PlanNode(keep_all={self.keep_all}, transform={self.transform}, "
            f"children={self.children})"
        )


def compile_plan(
    allowlist: Iterable[str], *, transforms: Iterable[tuple[str, Transform]] = ()
) -> PlanNode:
    """The plan for ``allowlist`` with ``transforms`` applied at their dotted paths.

    Invalid entries (not a string, empty, an empty segment as in "geo..country")
    are ignored: they allow nothing. A transform applies only where its path is
    allowlisted, itself or through an ancestor; it replaces the whole value, so
    entries below a transformed path allow nothing more.
    """
    root = PlanNode()
    for path in allowlist:
        segments = _segments(path)
        if segments:
            _allow(root, segments)
    for path, transform in transforms:
        _attach(root, path.split("."), transform)
    _mark_whole(root)
    return root


def _segments(path: object) -> list[str] | None:
    if not isinstance(path, str):
        return None
    segments = path.split(".")
    return segments if all(segments) else None


def _allow(root: PlanNode, segments: list[str]) -> None:
    node = root
    for segment in segments:
        if node.keep_all:
            return  # an ancestor already keeps everything below it
        node = node.children.setdefault(segment, PlanNode())
    node.keep_all = True
    node.children.clear()


def _attach(root: PlanNode, segments: list[str], transform: Transform) -> None:
    node = root
    for segment in segments:
        if node.keep_all:
            # Covered by an allowlisted ancestor: add the path, keeping everything
            # around it, so the transform still runs on the way through.
            child = node.children.setdefault(segment, PlanNode())
            child.keep_all = True
        else:
            child = node.children.get(segment)
            if child is None:
                return  # not allowlisted: the field is dropped, nothing to transform
        node = child
    node.transform = transform
    node.children.clear()


def _mark_whole(node: PlanNode) -> None:
    node.keeps_whole = node.keep_all and not node.children and node.transform is None
    for child in node.children.values():
        _mark_whole(child)


def apply_plan(value: Any, node: PlanNode, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
    """The part of ``value`` that ``node`` allows, transformed; REMOVE if nothing.

    Positional arguments on purpose: this recurses once per kept object on
    every event, and it is private to the filter.
    """
    if node.transform is not None:
        return node.transform(value, event, policy)
    if node.keeps_whole:
        return copy_json(value)
    # Below here a node selects keys: only an object has any. A kept subtree with a
    # transformed path inside it must be an object too, or the transform could
    # be bypassed (an identifier hidden in a list would be copied raw).
    if type(value) is not dict and not isinstance(value, Mapping):
        return REMOVE
    children = node.children
    keep_all = node.keep_all
    out: dict[str, Any] = {}
    for key, item in value.items():
        child = children.get(key)
        if child is None and not keep_all:
            continue
        if (child is None or child.keeps_whole) and type(item) in _SCALAR_TYPES:
            # Most kept fields are plain strings and numbers: skip the call.
            out[key] = item
            continue
        kept = copy_json(item) if child is None else apply_plan(item, child, event, policy)
        if kept is not REMOVE:
            out[key] = kept
    if not out and not keep_all:
        return REMOVE
    return out


_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)


def copy_json(value: Any) -> Any:
    """A copy of a JSON-like value; anything that is not JSON is REMOVEd rather than shared."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if isinstance(key, str):
                kept = copy_json(item)
                if kept is not REMOVE:
                    out[key] = kept
        return out
    if isinstance(value, list | tuple):
        return [kept for kept in map(copy_json, value) if kept is not REMOVE]
    return REMOVE
