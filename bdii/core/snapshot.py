"""The immutable, indexed snapshot that every search reads.

Entries are kept in DN order with the suffix first (`DN.sort_key`), so
that any subtree is one contiguous run `[i, end[i])`; a subtree search is a
range, a one-level search a child list, and an indexed filter an ordered
list of entry numbers cut to that range with `bisect`. A refresh builds a
whole new `Snapshot` and the server swaps one reference: a search never
sees two generations. The new one shares what did not change with the one
it replaces (entries, the DN tree, most of the index), read-only.
"""

from __future__ import annotations

import time
from array import array
from collections import OrderedDict
from collections.abc import Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .dn import DN
from .entry import Entry
from .filters import Compiled, Filter, compile_filter
from .matching import key_text, matcher
from .packed import Packed

BASE, ONE, SUB = 0, 1, 2  # RFC 4511 scope values

# Attributes clients filter on by equality (the legacy BDII's slapd indexes,
# plus the GLUE 2.0 IDs and foreign keys brokers look up).
INDEXED_SUFFIXES = ("id", "uniqueid", "foreignkey", "localid", "chunkkey", "accesscontrolbaserule",
                    "accesscontrolrule", "policyrule", "interfacename", "servicetype", "name")
INDEXED = frozenset({"objectclass", "mds-vo-name", "gluechunkkey", "glueserviceendpoint",
                     "glue2endpointurl", "glueservicetype"})

OPERATIONAL = ("createtimestamp", "modifytimestamp", "entrydn", "hasSubordinates".lower())


def is_indexed(key: str) -> bool:
    return key in INDEXED or key.endswith(INDEXED_SUFFIXES)


class SearchLimit(Exception):
    """The search stopped at a limit; carries the code to return."""


@dataclass(frozen=True, slots=True)
class Timestamps:
    created: str  # generalized time, e.g. 20261122104500Z
    modified: str


class _Tree:
    """The DN structure of a snapshot, by entry number: position by DN key,
    parent, children, subtree ends and who is named by what. Immutable once
    built, so that a refresh whose DNs are those of the snapshot it replaces
    (the common case: values change, the tree does not) shares it."""

    __slots__ = ("children", "end", "named", "parent", "pos")

    def __init__(self, pos: dict[tuple, int], parent: list[int]) -> None:
        self.pos = pos
        # Numbers in arrays, not lists of int objects: a quarter of the
        # memory, and a serving process that reads them writes no reference
        # count, so their pages stay shared with the main process.
        self.parent = array("i", parent)
        children: dict[int, array[int]] = {}
        for i, p in enumerate(parent):
            if p >= 0:
                kids = children.get(p)
                if kids is None:
                    kids = children[p] = array("I")
                kids.append(i)
        # Subtree ends, leaf-up: in suffix-first DN order a subtree is one
        # contiguous run, ending where its last descendant's run ends.
        n = len(parent)
        end = list(range(1, n + 1))
        for i in range(n - 1, -1, -1):
            p = parent[i]
            if p >= 0 and end[i] > end[p]:
                end[p] = end[i]
        self.children = children
        self.end = array("I", end)
        # Normalised AVA (as in DN keys) -> the entries whose own RDN holds
        # it: an int when one (most leaf RDNs are unique), else an array.
        # A `:dn` extensible match reads its subtrees from here instead of
        # walking every DN object in scope, which in a serving process made
        # each of those objects' pages its own copy (140 MB per worker).
        named: dict[tuple, Any] = {}
        for key, i in pos.items():
            for ava in key[0] if key else ():
                had = named.get(ava)
                if had is None:
                    named[ava] = i
                elif isinstance(had, int):
                    named[ava] = array("I", sorted((had, i)))
                else:
                    had.append(i)
        for ava, had in named.items():
            if not isinstance(had, int):
                named[ava] = array("I", sorted(had))
        self.named = named

    @classmethod
    def of(cls, entries: Sequence[Entry]) -> _Tree:
        """The tree of entries already in `sort_key` order."""
        pos = {e.dn.key: i for i, e in enumerate(entries)}
        return cls(pos, [pos.get(e.dn.key[1:], -1) if len(e.dn.key) > 1 else -1 for e in entries])


# Per attribute layout (entry.Shape), the attributes the index takes: (their
# position in the entry's values, key, EQUALITY preparation). A few hundred
# layouts serve 100k+ entries, so the schema is asked once per layout.
_PLANS: dict[Any, tuple[tuple[int, str, Any], ...]] = {}


def _plan(shape: Any) -> tuple[tuple[int, str, Any], ...]:
    plan = _PLANS.get(shape)
    if plan is None:
        if len(_PLANS) > 100_000:
            _PLANS.clear()
        out = []
        for j, key in enumerate(shape.keys):
            if is_indexed(key):
                norm = matcher(key).equality
                if norm is not None:
                    out.append((j, key, norm))
        plan = _PLANS[shape] = tuple(out)
    return plan


def _build_index(entries: Sequence[Entry]) -> dict[str, dict[Any, array[int]]]:
    """Equality index: key -> prepared value -> sorted entry numbers (an
    array, as the tree's numbers are, see `_Tree`)."""
    index: dict[str, dict[Any, array[int]]] = {}
    slots: dict[Any, tuple[tuple[int, dict[Any, array[int]], Any], ...]] = {}  # per layout
    for i, e in enumerate(entries):
        plan = slots.get(e.shape)
        if plan is None:
            plan = slots[e.shape] = tuple((j, index.setdefault(key, {}), norm)
                                          for j, key, norm in _plan(e.shape))
        vals = e.vals
        for j, slot, norm in plan:
            for v in vals[j]:
                nv = norm(v)
                if nv is None:
                    continue
                lst = slot.get(nv)
                if lst is None:
                    slot[nv] = array("I", (i,))
                elif lst[-1] != i:
                    lst.append(i)
    return index


def _postings(e: Entry) -> set[tuple[str, Any]]:
    """What one entry puts in the index: (key, prepared value) pairs."""
    vals = e.vals
    return {(key, nv) for j, key, norm in _plan(e.shape) for v in vals[j] if (nv := norm(v)) is not None}


# Past this share of changed entries a refresh indexes from scratch.
PATCH_LIMIT = 0.25


def _patch_index(old: Snapshot, entries: Sequence[Entry],
                 changed: Sequence[int] | None = None) -> dict[str, dict[Any, array[int]]] | None:
    """The index of `entries` (same DNs at the same numbers as `old`), made
    from `old`'s: only the values of entries that are not the very same
    objects are looked at. Copy on write: the per-attribute tables and
    posting lists that do not change are shared with `old` (which must then
    not take them apart, see `release`). None when too much changed."""
    olds = old.entries
    if changed is None:
        changed = [i for i, e in enumerate(entries) if e is not olds[i]]
    else:
        changed = [i for i in changed if entries[i] is not olds[i]]
    if len(changed) > PATCH_LIMIT * len(entries):
        return None
    edits: dict[str, dict[Any, tuple[set[int], set[int]]]] = {}
    for i in changed:
        before, after = _postings(olds[i]), _postings(entries[i])
        if before == after:
            continue  # the usual change: running jobs, free space... not indexed
        for key, nv in before - after:
            edits.setdefault(key, {}).setdefault(nv, (set(), set()))[0].add(i)
        for key, nv in after - before:
            edits.setdefault(key, {}).setdefault(nv, (set(), set()))[1].add(i)
    index = dict(old._index)
    for key, values in edits.items():
        slot = index[key] = dict(index.get(key, {}))
        for nv, (gone, added) in values.items():
            ids = [i for i in slot.get(nv, ()) if i not in gone]
            if added:
                ids = sorted(set(ids).union(added))
            if ids:
                slot[nv] = array("I", ids)
            else:
                slot.pop(nv, None)
    return index


class Snapshot:
    """Entries by normalised DN with parent/child structure and indexes."""

    __slots__ = (
        "__weakref__",
        "_children",
        "_created",
        "_encoded",
        "_end",
        "_index",
        "_modified",
        "_parent",
        "_pos",
        "_result_ids",
        "_results",
        "_shared",
        "_suffixes",
        "_tree",
        "built_at",
        "entries",
        "generation",
        "packed",
    )

    def __init__(self, entries: Sequence[Entry], created: Sequence[str], modified: Sequence[str],
                 generation: int, built_at: float, tree: _Tree | None = None,
                 index: dict[str, dict[Any, array[int]]] | None = None) -> None:
        """Use `Snapshot.build`; this takes entries already in `sort_key` order
        (and their tree and index when the caller has them)."""
        self.entries = list(entries)  # a list only so that `release` can empty it in steps
        self.generation = generation
        self.built_at = built_at
        self._created = list(created)
        self._modified = list(modified)
        tree = tree if tree is not None else _Tree.of(self.entries)
        self._tree = tree
        self._pos = tree.pos
        self._parent = tree.parent
        self._children = tree.children
        self._end = tree.end
        self._index = index if index is not None else _build_index(self.entries)
        self._encoded: dict[int, bytes] = {}
        self._results: OrderedDict[Hashable, array[int]] = OrderedDict()
        self._result_ids = 0
        self._suffixes: list[DN] | None = None
        self._shared: tuple[str, ...] = ()  # what the next snapshot took over: "tree", "index"
        # The entries in wire form, once the main process has packed them
        # for the serving processes: from then on values, DNs and answers
        # are read from it, so that a worker touches no entry object.
        self.packed: Packed | None = None

    @classmethod
    def build(cls, entries: Mapping[DN, Entry], times: Mapping[DN, Timestamps],
              generation: int = 0, now: float | None = None, previous: Snapshot | None = None,
              changed: Collection[DN] | None = None) -> Snapshot:
        """Order the entries suffix-first, depth-first, and index them.

        With `previous` (the snapshot this one replaces, still whole) and
        the same DNs, its order and tree are kept and its index patched for
        the entries that are not the same objects (indexed anew when more
        than PATCH_LIMIT of them changed): a refresh that shares its
        unchanged entries with the last cycle costs little more than a pass
        over them. With other DNs, all from scratch.

        The order is built by sorting each entry's children separately,
        not by one global sort: many small sorts let the reactor thread
        take the GIL in between, where one sort of 100k keys would stall it.
        An entry whose parent is missing is placed as a root.

        `changed` is the caller's word that `entries` has the DNs of
        `previous` and, but for these DNs, its very entry objects with the
        same times: only they are looked up, the rest is copied as is.
        """
        now = time.time() if now is None else now
        default = Timestamps(gtime(now), gtime(now))
        if changed is not None and previous is not None and previous.entries \
                and len(previous.entries) == len(entries):
            ordered = list(previous.entries)
            created, modified = list(previous._created), list(previous._modified)
            pos = previous._pos
            at = []
            try:
                for dn in changed:
                    i = pos[dn.key]
                    ordered[i] = entries[dn]
                    t = times.get(dn, default)
                    created[i], modified[i] = t.created, t.modified
                    at.append(i)
            except KeyError:
                pass  # not the same DNs after all: as without the hint
            else:
                at.sort()
                index = _patch_index(previous, ordered, at)
                snap = cls(ordered, created, modified, generation, now, tree=previous._tree, index=index)
                previous._shared = ("tree", "index") if index is not None else ("tree",)
                return snap
        if previous is not None and previous.entries and len(previous.entries) == len(entries):
            try:
                ordered = [entries[e.dn] for e in previous.entries]
            except KeyError:
                pass  # other DNs
            else:
                index = _patch_index(previous, ordered)
                ts = [times.get(e.dn, default) for e in ordered]
                snap = cls(ordered, [t.created for t in ts], [t.modified for t in ts], generation, now,
                           tree=previous._tree, index=index)
                previous._shared = ("tree", "index") if index is not None else ("tree",)
                return snap
        keys = {dn.key for dn in entries}
        by_parent: dict[tuple, list[DN]] = {}
        roots: list[DN] = []
        for dn in entries:
            pk = dn.key[1:]
            if pk and pk in keys:
                by_parent.setdefault(pk, []).append(dn)
            else:
                roots.append(dn)
        roots.sort(key=lambda d: d.sort_key)
        order: list[DN] = []
        parent: list[int] = []
        stack = [(dn, -1) for dn in reversed(roots)]
        while stack:
            dn, up = stack.pop()
            here = len(order)
            order.append(dn)
            parent.append(up)
            kids = by_parent.get(dn.key)
            if kids:
                kids.sort(key=_leaf_key)
                stack.extend([(k, here) for k in reversed(kids)])
        tree = _Tree({dn.key: i for i, dn in enumerate(order)}, parent)
        ts = [times.get(dn, default) for dn in order]
        return cls([entries[dn] for dn in order], [t.created for t in ts], [t.modified for t in ts],
                   generation, now, tree=tree)

    @classmethod
    def empty(cls) -> Snapshot:
        return cls([], [], [], 0, 0.0)

    # --- the View the filter compiler uses -------------------------------
    def values(self, i: int, key: str) -> Sequence[str]:
        p = self.packed
        if p is not None:
            if key == "objectclass":
                return p.classes[p.class_of[i]]
            j = p.shapes[p.shape_of[i]].index.get(key)
            if j is not None:
                return p.values(i, j)
        else:
            vals = self.entries[i].values_of(key)
            if vals is not None:
                return vals
        if key in OPERATIONAL:
            return self.operational(i).get(key, ((), ()))[1]
        return ()

    def has(self, i: int, key: str) -> bool:
        p = self.packed
        if p is not None:
            if key in p.shapes[p.shape_of[i]].index:
                return True
        elif self.entries[i].values_of(key):
            return True
        return key in OPERATIONAL

    def dn_avas(self, i: int) -> Sequence[tuple[str, str]]:
        # The DN object, even with the entries packed: parsing the text
        # again for every entry in scope costs more than the pages it shares.
        return [ava for rdn in self.entries[i].dn.rdns for ava in rdn]

    def named_by(self, key: str, norm: Any) -> Sequence[int]:
        hit = self._tree.named.get((key, key_text(norm)))
        if hit is None:
            return ()
        return (hit,) if isinstance(hit, int) else hit

    def parent(self, i: int) -> int:
        return self._parent[i]

    def lookup(self, key: str, norm: Any) -> Sequence[int] | None:
        slot = self._index.get(key)
        if slot is None:
            return None
        return slot.get(norm, ())

    def index_items(self, key: str) -> Iterable[tuple[Any, Sequence[int]]] | None:
        slot = self._index.get(key)
        return None if slot is None else slot.items()

    def is_indexed(self, key: str) -> bool:
        return key in self._index or is_indexed(key)

    # --- structure ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def find(self, dn: DN) -> int | None:
        return self._pos.get(dn.key)

    def matched_dn(self, dn: DN) -> DN | None:
        """The closest existing ancestor, for a noSuchObject result."""
        for anc in dn.ancestors():
            i = self._pos.get(anc.key)
            if i is not None:
                return self.entries[i].dn
        return None

    def subtree_range(self, i: int) -> tuple[int, int]:
        return i, self._end[i]

    def children(self, i: int) -> Sequence[int]:
        return self._children.get(i, ())

    def has_children(self, i: int) -> bool:
        return self._end[i] > i + 1

    def suffixes(self) -> list[DN]:
        """The entries without a parent (naming contexts), found once."""
        if self._suffixes is None:
            # By the parent list: walking the entry objects would touch every one.
            self._suffixes = [self.entries[i].dn for i, p in enumerate(self._parent) if p < 0]
        return self._suffixes

    def operational(self, i: int) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {
            "createtimestamp": ("createTimestamp", (self._created[i],)),
            "modifytimestamp": ("modifyTimestamp", (self._modified[i],)),
            "entrydn": ("entryDN", (self.dn_text(i),)),
            "hassubordinates": ("hasSubordinates", ("TRUE" if self.has_children(i) else "FALSE",)),
        }

    def dn_text(self, i: int) -> str:
        return self.packed.dn(i) if self.packed is not None else str(self.entries[i].dn)

    def created(self, i: int) -> str:
        return self._created[i]

    def modified(self, i: int) -> str:
        return self._modified[i]

    # --- search --------------------------------------------------------------
    def compile(self, f: Filter) -> Compiled:
        return compile_filter(f, self)

    def search(self, base: int, scope: int, compiled: Compiled, deadline: float | None = None,
               clock: Any = time.monotonic) -> Iterator[int]:
        """Entry numbers in scope that match, in DN order.

        With a `deadline` (a `clock()` value) raises SearchLimit when it
        passes; the caller has already sent what was yielded.
        """
        match = compiled.match
        if scope == BASE:
            if match(base) is True:
                yield base
            return
        lo, hi = self.subtree_range(base)
        cands = compiled.candidates(lo, hi)
        if scope == ONE:
            pool: Sequence[int] = self.children(base)
            if cands is not None and len(cands) < len(pool):
                p = self._parent
                pool = [i for i in cands if p[i] == base]
        else:
            pool = cands if cands is not None else range(lo, hi)
        for n, i in enumerate(pool):
            if deadline is not None and n & 255 == 0 and clock() > deadline:
                raise SearchLimit()
            if match(i) is True:
                yield i

    def release(self) -> Iterator[None]:
        """Take a retired snapshot apart in small steps, yielding between them.

        Freeing 100k entries in one reference drop is one long C call that
        holds the GIL (a reactor stall of a second, measured); freeing them
        a slice at a time from a worker thread lets the reactor run between
        slices. Only for a snapshot no search uses any more.
        """
        self._results.clear()  # a few thousand small lists at most
        self.packed = None  # a few large buffers: each one free() call
        containers: tuple[Any, ...] = (self._encoded, self.entries, self._created, self._modified)
        # What the next snapshot shares is left to it; what it replaced in
        # a shared index goes with this object.
        if "index" in self._shared:
            self._index = {}
        else:
            containers += (self._index,)
        if "tree" not in self._shared:
            containers += (self._pos, self._children, self._parent, self._end, self._tree.named)
        for container in containers:
            yield from _drain(container)

    # Clients repeat the same searches all day and the answer to a search is
    # fixed for the life of a snapshot: complete results (entry numbers) are
    # kept, least recently used first out, within a bound on their total size.
    RESULT_CACHE_QUERIES = 4096
    RESULT_CACHE_IDS = 2_000_000

    def cached_result(self, key: Hashable) -> array[int] | None:
        hit = self._results.get(key)
        if hit is not None:
            self._results.move_to_end(key)
        return hit

    def remember_result(self, key: Hashable, ids: list[int]) -> None:
        """Keep the complete result of a search (base, scope, filter) for reuse."""
        if len(ids) > self.RESULT_CACHE_IDS // 4 or key in self._results:
            return
        self._results[key] = array("I", ids)  # 4 bytes an entry, not 36
        self._result_ids += len(ids)
        while len(self._results) > self.RESULT_CACHE_QUERIES or self._result_ids > self.RESULT_CACHE_IDS:
            _k, old = self._results.popitem(last=False)
            self._result_ids -= len(old)

    def encoded(self, i: int) -> bytes | None:
        return self._encoded.get(i)

    def remember_encoded(self, i: int, data: bytes) -> None:
        """Cache the wire form of a full entry; valid for this snapshot's life."""
        self._encoded[i] = data


def _leaf_key(dn: DN) -> tuple:
    return dn.key[0]


def _drain(obj: Any) -> Iterator[None]:
    """Empty a container (and the dicts and lists in it) a slice at a time."""
    if isinstance(obj, dict):
        while obj:
            for _ in range(512):
                if not obj:
                    break
                _k, v = obj.popitem()
                if isinstance(v, (dict, list)) and len(v) > 512:
                    yield from _drain(v)
            yield
    elif isinstance(obj, list):
        while obj:
            del obj[-512:]
            yield


def gtime(t: float) -> str:
    """Seconds since the epoch as an LDAP generalized time in UTC."""
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))
