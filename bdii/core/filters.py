"""LDAP search filters (RFC 4511 section 4.5.1, RFC 4515): a small AST and
a compiler to Python closures, with three-valued logic.

A filter compiles once per request into `Compiled`: `match(i)` evaluates
entry number `i` of a snapshot to True, False or None (Undefined), and
`candidates()` narrows the search to the entries an index can name, or
returns None when the whole scope must be scanned. Matching follows the
schema (see `matching`); ldaptor's own matcher is not used because it
lower-cases everything and compares integers as strings.
"""

from __future__ import annotations

import functools
import heapq
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .matching import EQUALITY, Matcher, approx_match, approx_words, case_exact, case_ignore, matcher, object_class_key
from .schema import Schema

Tri = bool | None  # True, False or Undefined


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Filter


@dataclass(frozen=True, slots=True)
class Equality:
    attr: str
    value: str


@dataclass(frozen=True, slots=True)
class Approx:
    attr: str
    value: str


@dataclass(frozen=True, slots=True)
class GreaterOrEqual:
    attr: str
    value: str


@dataclass(frozen=True, slots=True)
class LessOrEqual:
    attr: str
    value: str


@dataclass(frozen=True, slots=True)
class Present:
    attr: str


@dataclass(frozen=True, slots=True)
class Substrings:
    attr: str
    initial: str | None
    any: tuple[str, ...]
    final: str | None


@dataclass(frozen=True, slots=True)
class Extensible:
    rule: str | None
    attr: str | None
    value: str
    dn_attributes: bool


Filter = And | Or | Not | Equality | Approx | GreaterOrEqual | LessOrEqual | Present | Substrings | Extensible


class View(Protocol):
    """What the compiler needs from a snapshot."""

    def values(self, i: int, key: str) -> Sequence[str]: ...

    def has(self, i: int, key: str) -> bool: ...

    def dn_avas(self, i: int) -> Sequence[tuple[str, str]]: ...

    def named_by(self, key: str, norm: Any) -> Sequence[int]: ...

    def parent(self, i: int) -> int: ...

    def subtree_range(self, i: int) -> tuple[int, int]: ...

    def lookup(self, key: str, norm: Any) -> Sequence[int] | None: ...

    def is_indexed(self, key: str) -> bool: ...

    def index_items(self, key: str) -> Iterable[tuple[Any, Sequence[int]]] | None: ...


Pred = Callable[[int], Tri]


@dataclass(frozen=True, slots=True)
class Compiled:
    match: Pred
    # candidates(lo, hi): the entry numbers in [lo, hi) an index names as
    # possible matches (sorted), or None when the range must be scanned.
    candidates: Callable[[int, int], list[int] | None]


def _never(_i: int) -> Tri:
    return None


def _none(lo: int = 0, hi: int = 0) -> list[int] | None:
    return None


def _empty(lo: int = 0, hi: int = 0) -> list[int]:
    return []


def _substr_match(value: str, initial: str | None, parts: tuple[str, ...], final: str | None) -> bool:
    # RFC 4517 section 4.2.x: initial, then each `any` in order, then final,
    # none of them overlapping.
    pos = 0
    end = len(value)
    if initial is not None:
        if not value.startswith(initial):
            return False
        pos = len(initial)
    if final is not None:
        if len(value) - len(final) < pos or not value.endswith(final):
            return False
        end = len(value) - len(final)
    for part in parts:
        j = value.find(part, pos, end)
        if j < 0:
            return False
        pos = j + len(part)
    return True


# EQUALITY preparation -> the SUBSTR preparation that gives the same text.
_SAME_PREP = {case_ignore: case_ignore, case_exact: case_exact}


def _within(ids: Sequence[int], lo: int, hi: int) -> list[int]:
    """The part of a sorted posting list inside [lo, hi): a search under one
    CE or one site copies a few entries, not the whole grid's posting list."""
    return list(ids[bisect_left(ids, lo):bisect_left(ids, hi)])


def _union(lists: list[list[int]]) -> list[int]:
    out: list[int] = []
    last = -1
    for i in heapq.merge(*lists):
        if i != last:
            out.append(i)
            last = i
    return out


def compile_filter(f: Filter, view: View) -> Compiled:
    """Compile `f` against one snapshot view."""
    if isinstance(f, And):
        parts = [compile_filter(x, view) for x in f.items]
        preds = [p.match for p in parts]

        def and_(i: int) -> Tri:
            result: Tri = True
            for p in preds:
                r = p(i)
                if r is False:
                    return False
                if r is None:
                    result = None
            return result

        def and_cands(lo: int, hi: int) -> list[int] | None:
            best: list[int] | None = None
            for p in parts:
                c = p.candidates(lo, hi)
                if c is not None and (best is None or len(c) < len(best)):
                    best = c
                    if not best:
                        break
            return best

        return Compiled(and_, and_cands)
    if isinstance(f, Or):
        parts = _or_parts(f.items, view)
        preds = [p.match for p in parts]

        def or_(i: int) -> Tri:
            result: Tri = False
            for p in preds:
                r = p(i)
                if r is True:
                    return True
                if r is None:
                    result = None
            return result

        def or_cands(lo: int, hi: int) -> list[int] | None:
            lists = []
            for p in parts:
                c = p.candidates(lo, hi)
                if c is None:
                    return None
                lists.append(c)
            return _union(lists)

        return Compiled(or_, or_cands)
    if isinstance(f, Not):
        inner = compile_filter(f.item, view).match

        def not_(i: int) -> Tri:
            r = inner(i)
            return None if r is None else not r

        return Compiled(not_, _none)
    if isinstance(f, Present):
        m = matcher(f.attr)
        key = m.key
        if key == "objectclass":
            return Compiled(lambda i: True, _none)
        has = view.has
        return Compiled(lambda i: has(i, key), _none)
    if isinstance(f, Equality):
        m = matcher(f.attr)
        return _equality(m, m.equality, f.value, view, dn_attrs=False)
    if isinstance(f, Approx):
        m = matcher(f.attr)
        if not m.approx:
            # No approximate rule for the syntax: slapd uses equality.
            return _equality(m, m.equality, f.value, view, dn_attrs=False)
        words = approx_words(f.value)
        key, values = m.key, view.values
        return Compiled(lambda i: any(approx_match(v, words) for v in values(i, key)), _none)
    if isinstance(f, (GreaterOrEqual, LessOrEqual)):
        m = matcher(f.attr)
        if m.ordering is None:
            return Compiled(_never, _empty)
        norm = m.ordering
        target = norm(f.value)
        if target is None:
            return Compiled(_never, _empty)
        key, values = m.key, view.values
        ge = isinstance(f, GreaterOrEqual)

        def order(i: int) -> Tri:
            vals = values(i, key)
            if not vals:
                return False
            undefined = False
            for v in vals:
                n = norm(v)
                if n is None:
                    undefined = True
                elif (n >= target) if ge else (n <= target):
                    return True
            return None if undefined else False

        return Compiled(order, _none)
    if isinstance(f, Substrings):
        m = matcher(f.attr)
        if m.substr is None:
            return Compiled(_never, _empty)
        norm = m.substr
        initial = norm(f.initial) if f.initial is not None else None
        final = norm(f.final) if f.final is not None else None
        # Each piece is prepared like a value (RFC 4518: case, runs of spaces).
        parts = tuple(norm(p) for p in f.any)
        key, values = m.key, view.values

        def substr(i: int) -> Tri:
            for v in values(i, key):
                if _substr_match(norm(v), initial, parts, final):
                    return True
            return False

        if m.equality is not None and _SAME_PREP.get(m.equality) is norm and view.is_indexed(key):
            # The equality index holds each distinct value once, prepared the
            # same way: test the pattern on those (hundreds) rather than on
            # every entry in scope (tens of thousands).
            def substr_cands(lo: int, hi: int) -> list[int] | None:
                items = view.index_items(key)
                if items is None:
                    return None
                return _union([_within(ids, lo, hi) for value, ids in items
                                if isinstance(value, str) and _substr_match(value, initial, parts, final)])

            return Compiled(substr, substr_cands)
        return Compiled(substr, _none)
    if isinstance(f, Extensible):
        return _extensible(f, view)
    raise TypeError(f"not a filter: {f!r}")


def _or_parts(items: tuple[Filter, ...], view: View) -> list[Compiled]:
    """The branches of an OR, equalities on one attribute folded into one set test.

    DIRAC and the brokers send ORs of hundreds of IDs (Q8, Q9): one set
    lookup per value of an entry instead of a comparison per branch.
    """
    groups: dict[str, list[str]] = {}
    rest: list[Filter] = []
    for x in items:
        if isinstance(x, Equality):
            m = matcher(x.attr)
            if m.equality is not None and m.key != "objectclass":
                groups.setdefault(m.key, []).append(x.value)
                continue
        rest.append(x)
    parts = [compile_filter(x, view) for x in rest]
    for key, values in groups.items():
        m = matcher(key)
        if len(values) < 4:
            parts += [_equality(m, m.equality, v, view, dn_attrs=False) for v in values]
        else:
            parts.append(_equality_set(m, values, view))
    return parts


def _equality_set(m: Matcher, values: list[str], view: View) -> Compiled:
    """`(|(a=v1)(a=v2)...)` as one set membership test (same semantics as
    the OR of `_equality` branches: values that do not normalise never match)."""
    norm = m.equality
    normed = [(v, norm(v)) for v in values]
    targets = {t for _v, t in normed if t is not None}
    raw = frozenset(v for v, t in normed if t is not None)
    key, vals_of = m.key, view.values

    def eq_any(i: int) -> Tri:
        for v in vals_of(i, key):
            if v in raw or norm(v) in targets:
                return True
        return False

    if view.is_indexed(key):

        def cands(lo: int, hi: int) -> list[int] | None:
            lists = []
            for t in targets:
                hit = view.lookup(key, t)
                if hit:
                    lists.append(_within(hit, lo, hi))
            return _union(lists)

        return Compiled(eq_any, cands)
    return Compiled(eq_any, _none)


def _equality(m: Matcher, norm: Callable[[str], Any] | None, value: str, view: View, dn_attrs: bool) -> Compiled:
    if norm is None:
        return Compiled(_never, _empty)
    target = norm(value)
    if target is None:
        return Compiled(_never, _empty)
    key, values = m.key, view.values
    dn_avas = view.dn_avas
    if key == "objectclass" and norm is m.equality and not dn_attrs:
        return _object_class_equality(_with_subclasses(target), norm, view)

    def in_values(i: int) -> bool:
        for v in values(i, key):
            if v == value or norm(v) == target:
                return True
        return False

    # The index and the DN keys hold values prepared with the attribute's
    # own EQUALITY rule; an extensible match naming another rule must scan.
    own_rule = norm is m.equality
    indexed = own_rule and view.is_indexed(key)

    def in_index(lo: int, hi: int) -> list[int]:
        hit = view.lookup(key, target)
        return _within(hit, lo, hi) if hit is not None else []

    if not dn_attrs:
        return Compiled(in_values, in_index if indexed else _none)
    if not own_rule:

        def eq_dn_scan(i: int) -> Tri:
            if in_values(i):
                return True
            return any(matcher(a).key == key and norm(v) == target for a, v in dn_avas(i))

        return Compiled(eq_dn_scan, _none)
    # `:dn`: an entry matches when it or an ancestor is named by key=value,
    # which is a union of subtrees, read from the tree.
    named = view.named_by(key, target)
    holders = frozenset(named)
    parent = view.parent

    def eq_dn(i: int) -> Tri:
        if in_values(i):
            return True
        while i >= 0:
            if i in holders:
                return True
            i = parent(i)
        return False

    def cands(lo: int, hi: int) -> list[int] | None:
        if not indexed:
            return None
        runs: list[list[int]] = [in_index(lo, hi)]
        reached = lo
        for h in named:  # in DN order: a nested subtree starts before its holder's run ends
            start, end = view.subtree_range(h)
            start, end = max(start, reached), min(end, hi)
            if start < end:
                runs.append(list(range(start, end)))
                reached = end
        return _union(runs)

    return Compiled(eq_dn, cands)


@functools.lru_cache(maxsize=1024)
def _with_subclasses(oid: Any) -> frozenset[Any]:
    """A class (as `object_class_key` normalises it) and every class derived from it."""
    schema = Schema.default()
    if oid not in _known_classes(schema):
        return frozenset((oid,))  # no class of the schema can derive from one it does not define
    out = {oid}
    grown = True
    while grown:
        grown = False
        for oc in schema.object_classes:
            if oc.oid in out:
                continue
            # RFC 4512 section 2.4.1: a class without SUP derives from top.
            sups = (schema.object_class(s) for s in oc.sup or ("top",))
            if any(s is not None and s.oid in out for s in sups):
                out.add(oc.oid)
                grown = True
    return frozenset(out)


@functools.lru_cache(maxsize=4)
def _known_classes(schema: Schema) -> frozenset[Any]:
    return frozenset(oc.oid for oc in schema.object_classes)


def _object_class_equality(targets: frozenset[Any], norm: Callable[[str], Any], view: View) -> Compiled:
    """slapd matches objectClass with objectSubClassMatch: `(objectClass=GlueTop)`
    also takes an entry that lists only GlueCETop, a subclass of GlueTop."""
    values = view.values
    if object_class_key("top") in targets:
        # Every class derives from top, even one the schema does not know.
        return Compiled(lambda i: bool(values(i, "objectclass")), _none)
    memo: dict[str, bool] = {}  # the same few spellings repeat in every entry

    def eq(i: int) -> Tri:
        for v in values(i, "objectclass"):
            hit = memo.get(v)
            if hit is None:
                hit = memo[v] = norm(v) in targets
            if hit:
                return True
        return False

    def cands(lo: int, hi: int) -> list[int] | None:
        lists = []
        for t in targets:
            hit = view.lookup("objectclass", t)
            if hit:
                lists.append(_within(hit, lo, hi))
        return _union(lists)

    return Compiled(eq, cands if view.is_indexed("objectclass") else _none)


def _extensible(f: Extensible, view: View) -> Compiled:
    """RFC 4511 extensibleMatch: a named equality rule and/or `:dn`."""
    norm: Callable[[str], Any] | None
    if f.rule is not None:
        norm = EQUALITY.get(f.rule.lower())
        if norm is None:
            return Compiled(_never, _empty)
    else:
        norm = None
    if f.attr is None:
        if norm is None:
            return Compiled(_never, _empty)
        # Any attribute with a value matching under the rule: rarely used;
        # evaluated over the DN components only when `:dn` is asked for.
        if not f.dn_attributes:
            return Compiled(_never, _empty)
        target = norm(f.value)
        dn_avas = view.dn_avas
        return Compiled(lambda i: any(norm(v) == target for _a, v in dn_avas(i)), _none)
    m = matcher(f.attr)
    return _equality(m, norm or m.equality, f.value, view, dn_attrs=f.dn_attributes)
