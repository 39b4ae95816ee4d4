"""Field allowlists compiled into plans that build a partner's record in one pass.

A plan is a tree of nodes, one per path segment. A node either keeps everything
below it (``keep_all``), keeps only its listed children, or replaces its value
through a transform (pseudonymise an identifier, truncate an IP). The output is
built directly from the input: nothing is deep-copied and then pruned, and the
input is never mutated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gateway.privacy.policy import PartnerPolicy
from gateway.privacy.speedups import speedups_load

# The compiled versions of the hot paths, or None (see speedups.py).
_speedups = speedups_load()


class _Removed:
    """The type of ``REMOVE``."""

    def __repr__(self) -> str:
        return "REMOVE"


# Returned by a transform (or the walker) when a field must not appear in the output.
REMOVE: Any = _Removed()
# What dict.get gives for a key the object does not have (None is a JSON value).
_ABSENT: Any = object()

# A transform gets the field's value, the whole event and the policy, and returns
# the value to send or REMOVE.
Transform = Callable[[Any, Mapping[str, Any], PartnerPolicy], Any]


class CachedTransform:
    """A transform whose result depends only on the value, remembered per value.

    ``compute(value)`` gives what to send for any value, or None to leave the
    field out. Results for values of exactly ``key_type`` (str, float: types whose
    equal values are interchangeable) are kept in ``cache``, at most ``size`` of
    them: the cache starts over when full, which costs far less per miss than an
    LRU's bookkeeping. ``guard(event)``, when set, leaves the field out whatever
    its value (limit ad tracking removes the advertising id).

    Callable like any transform; the generated selectors (``_selector``) inline
    the cache lookup instead, which is the same thing without the call. They
    bind ``cache`` when a plan is compiled: share or replace it only before.
    The same goes for ``text_cache``: with the C speedups built, the row
    filter's byte path keeps there what the transform sends, as JSON text, per
    value as JSON text (``_speedups.TextCache``); None without them.
    """

    __slots__ = ("cache", "compute", "guard", "key_type", "size", "text_cache")

    def __init__(
        self,
        compute: Callable[[Any], Any],
        *,
        key_type: type,
        size: int,
        guard: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        self.compute = compute
        self.key_type = key_type
        self.size = size
        self.guard = guard
        self.cache: dict[Any, Any] = {}
        self.text_cache: Any = None if _speedups is None else _speedups.TextCache(size)

    def __call__(self, value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
        if self.guard is not None and self.guard(event):
            return REMOVE
        if type(value) is self.key_type:
            found = self.cache.get(value)
            if found is not None:
                return found
            return self.miss(value)
        return self.other(value)

    def miss(self, value: Any) -> Any:
        """The result for ``value`` (of ``key_type``, not in the cache), now kept."""
        result = self.compute(value)
        if result is None:
            result = REMOVE
        cache = self.cache
        if len(cache) >= self.size:
            cache.clear()
        cache[value] = result
        return result

    def other(self, value: Any) -> Any:
        """The result for a value of another type: computed, not kept."""
        result = self.compute(value)
        return REMOVE if result is None else result


def remove_field(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
    """The transform that leaves a field out whatever its value (a denied activity's fields)."""
    return REMOVE


class _Keep:
    """The type of ``KEEP``."""

    def __repr__(self) -> str:
        return "KEEP"


# A step that keeps a value as it is (a copy of it): a kept path with nothing
# to transform below it.
KEEP: Any = _Keep()


class PlanNode:
    """One path segment of a compiled allowlist."""

    __slots__ = (
        "children",
        "keep_all",
        "keeps_whole",
        "other",
        "select",
        "step_items",
        "steps",
        "transform",
    )

    def __init__(self) -> None:
        self.children: dict[str, PlanNode] = {}
        self.keep_all = False
        self.transform: Transform | None = None
        # Set by compile_plan once the tree is final:
        # keep_all with nothing to transform below: the value is copied as it is.
        self.keeps_whole = False
        # What to do with each key of an object: KEEP, or the child's node.
        self.steps: dict[str, Any] = {}
        # ... as (key, step, step's transform) in key order, for a node that keeps only them;
        self.step_items: tuple[tuple[str, Any, Transform | None], ...] = ()
        # ... and with a key that has no step: KEEP under keep_all, else None (drop).
        self.other: Any = None
        # ... and the function that selects them from an object (see ``_selector``).
        self.select: Callable[[Any, Mapping[str, Any], PartnerPolicy], Any] = _generic_select

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
        _attach(root, [sys.intern(segment) for segment in path.split(".")], transform)
    _finish(root)
    return root


def _segments(path: object) -> list[str] | None:
    if not isinstance(path, str):
        return None
    # Interned: an event whose keys are interned too (names in code) is read by identity.
    segments = [sys.intern(segment) for segment in path.split(".")]
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
            found = node.children.get(segment)
            if found is None:
                return  # not allowlisted: the field is dropped, nothing to transform
            child = found
        node = child
    node.transform = transform
    node.children.clear()


def _finish(node: PlanNode) -> None:
    for child in node.children.values():
        _finish(child)
    node.keeps_whole = node.keep_all and not node.children and node.transform is None
    node.steps = {key: KEEP if child.keeps_whole else child for key, child in node.children.items()}
    node.step_items = tuple(
        (key, step, None if step is KEEP else step.transform)
        for key, step in sorted(node.steps.items())
    )
    node.other = KEEP if node.keep_all else None
    node.select = _selector(node)


def apply_plan(value: Any, node: PlanNode, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
    """The part of ``value`` that ``node`` allows, transformed; REMOVE if nothing.

    Positional arguments on purpose: this runs once per kept object on every
    event, and it is private to the filter.
    """
    if node.transform is not None:
        return node.transform(value, event, policy)
    if node.keeps_whole:
        return copy_json(value)
    return node.select(value, event, policy)


def _select(value: Any, node: PlanNode, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
    # Below here a node selects keys: only an object has any. A kept subtree with a
    # transformed path inside it must be an object too, or the transform could
    # be bypassed (an identifier hidden in a list would be copied raw).
    if type(value) is not dict and not isinstance(value, Mapping):
        return REMOVE
    out: dict[str, Any] = {}
    if node.other is None:
        # Only the listed keys: look each one up rather than walk the whole object.
        get = value.get
        for key, step, transform in node.step_items:
            item = get(key, _ABSENT)
            if item is _ABSENT:
                continue
            if step is KEEP:
                if type(item) in _SCALAR_TYPES:
                    # Most kept fields are plain strings and numbers: no call at all.
                    out[key] = item
                    continue
                kept = copy_json(item)
            elif transform is not None:
                kept = transform(item, event, policy)
            else:
                kept = step.select(item, event, policy)
            if kept is not REMOVE:
                out[key] = kept
        return out or REMOVE
    # keep_all with a transformed path below: every key, the listed ones through their step.
    steps = node.steps
    for key, item in value.items():
        step = steps.get(key, KEEP)
        kept = copy_json(item) if step is KEEP else apply_plan(item, step, event, policy)
        if kept is not REMOVE:
            out[key] = kept
    return out


_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)


def _generic_select(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
    raise AssertionError("a plan node is used before compile_plan finished it")


def _selector(node: PlanNode) -> Callable[[Any, Mapping[str, Any], PartnerPolicy], Any]:
    """``_select`` for ``node``, specialised to its keys: the filter's hot path.

    For a node that keeps only listed keys, a function is generated that reads
    every key by subscript, checks the kept values are plain scalars, runs the
    transforms and child selections, and builds the output in one dict display,
    in the same key order as ``_select`` (a removed value is deleted after,
    which keeps that order). A ``CachedTransform`` is inlined: its cache is
    read directly and it is called only on a miss. A missing transformed or
    nested key is left out, as ``_select`` does; anything else (a missing kept
    key, a value that is not a plain dict, a kept value that is not a scalar)
    goes to ``_select`` itself. Only names bound in the namespace appear in the
    generated source: no key text.
    """
    if node.other is not None or not node.step_items:

        def generic(value: Any, event: Mapping[str, Any], policy: PartnerPolicy) -> Any:
            return _select(value, node, event, policy)

        return generic
    namespace: dict[str, Any] = {
        "_node": node,
        "_slow": _select,
        "_dict": dict,
        "_type": type,
        "_S": _SCALAR_TYPES,
        "_REMOVE": REMOVE,
        "_A": _ABSENT,
    }
    # Lines of source, per key: reads of kept and of other keys, reads that allow a
    # missing key, scalar checks, transform calls, removals, and the output display.
    keep_reads: list[str] = []
    other_reads: list[str] = []
    absent_reads: list[str] = []
    checks: list[str] = []
    calls: list[str] = []
    removals: list[str] = []
    display: list[str] = []
    for n, (key, step, transform) in enumerate(node.step_items):
        namespace[f"_k{n}"] = key
        display.append(f"_k{n}: v{n}")
        if step is KEEP:
            keep_reads.append(f"        v{n} = value[_k{n}]")
            checks.append(f"_type(v{n}) in _S")
            continue
        other_reads.append(f"        v{n} = value[_k{n}]")
        if isinstance(transform, CachedTransform):
            namespace.update(
                {
                    f"_t{n}": transform.key_type,
                    f"_c{n}": transform.cache.get,
                    f"_m{n}": transform.miss,
                    f"_o{n}": transform.other,
                }
            )
            lines = [
                f"if _type(v{n}) is _t{n}:",
                f"    r = _c{n}(v{n})",
                f"    v{n} = _m{n}(v{n}) if r is None else r",
                "else:",
                f"    v{n} = _o{n}(v{n})",
            ]
            if transform.guard is not None:
                namespace[f"_g{n}"] = transform.guard
                lines = [
                    f"if _g{n}(event):",
                    f"    v{n} = _REMOVE",
                    *(("el" + line) if line.startswith("if ") else line for line in lines),
                ]
        else:
            namespace[f"_f{n}"] = transform if transform is not None else step.select
            lines = [f"v{n} = _f{n}(v{n}, event, policy)"]
        calls.extend("    " + line for line in lines)
        absent_reads.append(
            f"    v{n} = _get(_k{n}, _A)\n    if v{n} is _A:\n        v{n} = _REMOVE"
        )
        absent_reads.append("    else:\n" + "\n".join("        " + line for line in lines))
        removals.append(f"    if v{n} is _REMOVE:\n        del out[_k{n}]")
    fallback = "        return _slow(value, _node, event, policy)"
    check = [f"    if not ({' and '.join(checks)}):", fallback] if checks else []
    build = [f"    out = {{{', '.join(display)}}}", *removals, "    return out or _REMOVE"]
    # Every key present (the usual case): subscripts only. A missing key goes to
    # select_sparse, where a missing transformed or nested key is simply left out,
    # as _select does; a missing kept key goes to _select.
    source = [
        "def select(value, event, policy):",
        "    if _type(value) is not _dict:",
        fallback,
        "    try:",
        *keep_reads,
        *other_reads,
        "    except KeyError:",
        "        return select_sparse(value, event, policy)",
        *check,
        *calls,
        *build,
        "",
        "def select_sparse(value, event, policy):",
    ]
    if keep_reads:
        source += ["    try:", *keep_reads, "    except KeyError:", fallback]
    source += [*check, "    _get = value.get", *absent_reads, *build]
    exec("\n".join(source), namespace)  # generated from names only, see above
    select: Callable[[Any, Mapping[str, Any], PartnerPolicy], Any] = namespace["select"]
    if _speedups is None:
        return select
    # The same selection in C for a plain dict with plain scalars; anything else goes
    # to the generated Python selector above.
    return _speedups.Selector(_speedup_steps(node), select, REMOVE)


def _speedup_steps(node: PlanNode) -> tuple[tuple[Any, ...], ...]:
    """``node``'s steps as ``_speedups.Selector`` reads them (see _speedups.c)."""
    steps: list[tuple[Any, ...]] = []
    for key, step, transform in node.step_items:
        if step is KEEP:
            steps.append((key, 0))
        elif transform is remove_field:
            steps.append((key, 3))
        elif isinstance(transform, CachedTransform):
            steps.append(
                (
                    key,
                    1,
                    transform.cache,
                    transform.key_type,
                    transform.miss,
                    transform.other,
                    transform.guard,
                    transform.compute,
                    transform.size,
                    transform.text_cache,
                )
            )
        else:
            steps.append((key, 2, transform if transform is not None else step.select))
    return tuple(steps)


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
