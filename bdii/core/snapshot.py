"""The immutable, indexed snapshot that every search reads.

Entries are kept in DN order with the suffix first (`DN.sort_key`), so
that any subtree is one contiguous run `[i, end[i])`; a subtree search is a
range, a one-level search a child list, and an indexed filter an ordered
list of entry numbers cut to that range with `bisect`. A refresh builds a
whole new `Snapshot` and the server swaps one reference: a search never
sees two generations.
"""

from __future__ import annotations

import time
from array import array
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .dn import DN
from .entry import Entry
from .filters import Compiled, Filter, compile_filter
from .matching import matcher

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


class Snapshot:
    """Entries by normalised DN with parent/child structure and indexes."""

    __slots__ = ("entries", "generation", "built_at", "_pos", "_end", "_parent", "_children",
                 "_index", "_created", "_modified", "_encoded", "_results", "_result_ids", "_suffixes")

    def __init__(self, entries: Sequence[Entry], created: Sequence[str], modified: Sequence[str],
                 generation: int, built_at: float) -> None:
        """Use `Snapshot.build`; this takes entries already in `sort_key` order."""
        self.entries = list(entries)  # a list only so that `release` can empty it in steps
        self.generation = generation
        self.built_at = built_at
        self._created = list(created)
        self._modified = list(modified)
        self._pos: dict[tuple, int] = {e.dn.key: i for i, e in enumerate(self.entries)}
        n = len(self.entries)
        pos = self._pos
        parent = [pos.get(e.dn.key[1:], -1) if len(e.dn.key) > 1 else -1 for e in self.entries]
        children: dict[int, list[int]] = {}
        for i, p in enumerate(parent):
            if p >= 0:
                children.setdefault(p, []).append(i)
        # Subtree ends, leaf-up: in suffix-first DN order a subtree is one
        # contiguous run, ending where its last descendant's run ends.
        end = list(range(1, n + 1))
        for i in range(n - 1, -1, -1):
            p = parent[i]
            if p >= 0 and end[i] > end[p]:
                end[p] = end[i]
        self._end = end
        self._parent = parent
        self._children = children
        index: dict[str, dict[Any, list[int]]] = {}
        plan: dict[str, Any] = {}  # attribute key -> its EQUALITY function, or None
        for i, e in enumerate(self.entries):
            for key, values in e.keyed_values():
                norm = plan.get(key, False)
                if norm is False:
                    norm = plan[key] = matcher(key).equality if is_indexed(key) else None
                if norm is None:
                    continue
                slot = index.get(key)
                if slot is None:
                    slot = index[key] = {}
                for v in values:
                    nv = norm(v)
                    if nv is None:
                        continue
                    lst = slot.get(nv)
                    if lst is None:
                        slot[nv] = [i]
                    elif lst[-1] != i:
                        lst.append(i)
        self._index = index
        self._encoded: dict[int, bytes] = {}
        self._results: OrderedDict[Hashable, array[int]] = OrderedDict()
        self._result_ids = 0
        self._suffixes: list[DN] | None = None

    @classmethod
    def build(cls, entries: Mapping[DN, Entry], times: Mapping[DN, Timestamps],
              generation: int = 0, now: float | None = None) -> Snapshot:
        """Order the entries suffix-first, depth-first, and index them.

        The order is built by sorting each entry's children separately,
        not by one global sort: many small sorts let the reactor thread
        take the GIL in between, where one sort of 100k keys would stall it.
        An entry whose parent is missing is placed as a root.
        """
        keys = {dn.key for dn in entries}
        by_parent: dict[tuple, list[DN]] = {}
        roots: list[DN] = []
        for dn in entries:
            if len(dn.key) > 1 and dn.key[1:] in keys:
                by_parent.setdefault(dn.key[1:], []).append(dn)
            else:
                roots.append(dn)
        roots.sort(key=lambda d: d.sort_key)
        order: list[DN] = []
        stack = roots[::-1]
        while stack:
            dn = stack.pop()
            order.append(dn)
            kids = by_parent.get(dn.key)
            if kids:
                kids.sort(key=_leaf_key)
                stack.extend(reversed(kids))
        now = time.time() if now is None else now
        default = Timestamps(gtime(now), gtime(now))
        ts = [times.get(dn, default) for dn in order]
        return cls([entries[dn] for dn in order], [t.created for t in ts], [t.modified for t in ts],
                   generation, now)

    @classmethod
    def empty(cls) -> Snapshot:
        return cls([], [], [], 0, 0.0)

    # --- the View the filter compiler uses -------------------------------
    def values(self, i: int, key: str) -> Sequence[str]:
        vals = self.entries[i].values_of(key)
        if vals is not None:
            return vals
        if key in OPERATIONAL:
            return self.operational(i).get(key, ((), ()))[1]
        return ()

    def dn_avas(self, i: int) -> Sequence[tuple[str, str]]:
        return [ava for rdn in self.entries[i].dn.rdns for ava in rdn]

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

    def children(self, i: int) -> list[int]:
        return self._children.get(i, [])

    def has_children(self, i: int) -> bool:
        return self._end[i] > i + 1

    def suffixes(self) -> list[DN]:
        """The entries without a parent (naming contexts), found once."""
        if self._suffixes is None:
            self._suffixes = [e.dn for i, e in enumerate(self.entries) if self._parent[i] < 0]
        return self._suffixes

    def operational(self, i: int) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {
            "createtimestamp": ("createTimestamp", (self._created[i],)),
            "modifytimestamp": ("modifyTimestamp", (self._modified[i],)),
            "entrydn": ("entryDN", (str(self.entries[i].dn),)),
            "hassubordinates": ("hasSubordinates", ("TRUE" if self.has_children(i) else "FALSE",)),
        }

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
        for container in (self._encoded, self._index, self._pos, self._children, self.entries,
                          self._parent, self._end, self._created, self._modified):
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
