"""A refresh that reuses the last cycle's work gives exactly what a fresh build gives.

A cycle keeps each source's records (their exact bytes) and the entries
made from them (`State.memos`), and the snapshot it built (`State.snapshot`,
weakly). The next cycle takes unchanged records' entries from there instead
of parsing them (a source that comes back whole is taken whole), compares
its tree with the last one in place, and starts its snapshot from the last
one (same tree, index patched). Here every such refresh is compared, entry by entry, index
by index, problem by problem, with a build of the same input from the same
state minus those two fields.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import re
import sys
from pathlib import Path
from unittest import mock

import pytest

from bdii.core import ber, pipeline
from bdii.core.config import Config
from bdii.core.dn import DN
from bdii.core.ldif import EntryRecord, iter_records
from bdii.core.pipeline import BuildResult, SourceResult, State, build
from bdii.core.snapshot import Snapshot

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_000_000
CONFIG = dataclasses.replace(Config(), hostname="bdii.example.org", delete_delay=300)


def _gridgen():
    spec = importlib.util.spec_from_file_location("gridgen", ROOT / "bench" / "gridgen.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gridgen", mod)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


GRIDGEN = _gridgen()


def _records(form: str = "top") -> list[str]:
    """One site's LDIF records, as text."""
    return list(GRIDGEN.to_ldif(GRIDGEN.generate_records(1, 3, form)))


def _dump(snap: Snapshot) -> list[tuple]:
    """Everything a client can see, and the structure searches use."""
    out = []
    for i, e in enumerate(snap.entries):
        lo, hi = snap.subtree_range(i)
        out.append((str(e.dn), list(e.items()), snap.created(i), snap.modified(i), hi - lo,
                    snap.children(i), snap._parent[i]))
    return out


def _index(snap: Snapshot) -> dict:
    """The equality index, without empty tables (the same to every search)."""
    return {key: {v: list(ids) for v, ids in slot.items()} for key, slot in snap._index.items() if slot}


def _fresh(results: list[SourceResult], state: State, config: Config, now: int) -> BuildResult:
    """The reference: no memos, no snapshot to start from, and the last
    cycle's entries looked up one by one rather than compared in place."""
    with mock.patch.object(pipeline, "_changed_in_place", lambda merged, last: None):
        return build(results, dataclasses.replace(state, memos={}, snapshot=None), config, now)


def _same(a: BuildResult, b: BuildResult) -> None:
    assert _dump(a.snapshot) == _dump(b.snapshot)
    assert _index(a.snapshot) == _index(b.snapshot)
    assert a.snapshot._tree.pos == b.snapshot._tree.pos
    for e in a.snapshot.entries:
        assert a.snapshot.find(e.dn) == b.snapshot.find(e.dn)
    assert a.problems == b.problems
    assert a.debug == b.debug
    assert a.stats == b.stats
    assert _content(a.state.entries) == _content(b.state.entries)
    assert _content(a.state.pending.entries) == _content(b.state.pending.entries)
    assert dict(a.state.times) == dict(b.state.times)
    assert a.state.pending.since == b.state.pending.since


def _content(entries) -> list[tuple]:
    """Entries have no equality of their own: what they hold, in order."""
    return [(str(dn), str(e.dn), list(e.items())) for dn, e in entries.items()]


_NUMBER = re.compile(r"^((?:GlueCEState|GLUE2ComputingShare)\w*Jobs): (\d+)$", re.MULTILINE)


def _mutate(texts: list[str], rnd: random.Random) -> list[str]:
    """Change values in some records (dynamic and indexed ones, the DN's
    case), delete some, add some, add a duplicate and a bad record."""
    out = []
    for text in texts:
        r = rnd.random()
        if r < 0.08 and not text.startswith(("dn: o=", "dn: mds-vo-name=local", "dn: GLUE2GroupID=grid")):
            continue  # deleted (its subtree goes too, with a problem each)
        if r < 0.3:
            text = _NUMBER.sub(lambda m: f"{m.group(1)}: {int(m.group(2)) + 1}", text)
        elif r < 0.35:
            # an indexed value changes: the index must follow
            text = re.sub(r"^(GLUE2\w*ForeignKey|GlueForeignKey): (.*)$", r"\1: \2-x", text, count=1, flags=re.MULTILINE)
        elif r < 0.37:
            text = text.replace("objectClass: GlueKey\n", "objectClass: GlueKey\nobjectClass: extensibleObject\n")
        elif r < 0.38 and text.startswith("dn: Glue"):
            text = "dn: glue" + text[len("dn: Glue"):]  # the DN as written changes case only
        out.append(text)
    sites = [t for t in texts if t.startswith("dn: mds-vo-name=") and not t.startswith("dn: mds-vo-name=local,")]
    parent = (sites or texts)[0].split("\n")[0][4:]  # a site, or a DN of this source's
    out.append(f"dn: GlueServiceUniqueID=new-{rnd.random()},{parent}\nobjectClass: GlueService\n"
               f"GlueServiceUniqueID: new\nGlueServiceType: org.example\n\n")
    out.append(out[-1].replace("GlueServiceType: org.example", "GlueServiceName: dup"))  # duplicate DN
    out.append("dn: o=elsewhere\no: elsewhere\n\n")  # outside the served suffixes: a problem
    return out


def _ldif(texts: list[str], name: str = "ldif/grid.ldif", kind: str = "ldif") -> SourceResult:
    return SourceResult(name, kind, "".join(texts).encode(), T0, 0.1)


@pytest.mark.parametrize("seed", range(4))
def test_ldif_refresh_equals_a_fresh_build(seed: int) -> None:
    rnd = random.Random(seed)
    texts = _records()
    first = build([_ldif(texts)], State(), CONFIG, T0)
    # Unchanged: every entry is the last cycle's object, the tree is shared.
    again = build([_ldif(texts)], first.state, CONFIG, T0 + 60)
    _same(again, _fresh([_ldif(texts)], first.state, CONFIG, T0 + 60))
    assert all(a is b for a, b in zip(again.snapshot.entries, first.snapshot.entries)
               if not str(a.dn).endswith("o=infosys"))
    assert again.snapshot._tree is first.snapshot._tree
    state, served = again.state, again.snapshot
    for step in range(3):  # changes, adds and deletes, then the same again, then back
        now = T0 + 120 * (step + 1)
        changed = _mutate(texts, rnd) if step != 2 else texts
        results = [_ldif(changed)]
        result = build(results, state, CONFIG, now)
        _same(result, _fresh(results, state, CONFIG, now))
        state, served = result.state, result.snapshot
    del served


def test_ldif_refresh_with_the_same_dns_patches_the_index() -> None:
    """Only values change (indexed ones too): the tree is shared, the index patched."""
    texts = _records()
    first = build([_ldif(texts)], State(), CONFIG, T0)
    changed = [re.sub(r"^(GLUE2\w*ForeignKey): (.*)$", r"\1: \2-x", t, count=1, flags=re.MULTILINE)
               if i % 6 == 0 else t for i, t in enumerate(texts)]
    changed = [_NUMBER.sub(lambda m: f"{m.group(1)}: 7", t) if i % 6 == 1 else t for i, t in enumerate(changed)]
    result = build([_ldif(changed)], first.state, CONFIG, T0 + 60)
    assert result.snapshot._tree is first.snapshot._tree
    assert 50 < result.stats.modified < len(texts) // 4
    _same(result, _fresh([_ldif(changed)], first.state, CONFIG, T0 + 60))
    # The old snapshot is intact until it is released (it is still served).
    fresh_first = build([_ldif(texts)], State(), CONFIG, T0)
    assert _index(first.snapshot) == _index(fresh_first.snapshot)
    assert first.snapshot._shared == ("tree", "index")
    for _ in first.snapshot.release():
        pass
    assert _index(result.snapshot) == _index(_fresh([_ldif(changed)], first.state, CONFIG, T0 + 60).snapshot)
    # Most entries change: the tree is still shared, the index made anew.
    every = [t.replace("\nobjectClass:", "\ndescription: x\nobjectClass:", 1) for t in changed]
    again = build([_ldif(every)], result.state, CONFIG, T0 + 120)
    assert again.snapshot._tree is first.snapshot._tree
    assert result.snapshot._shared == ("tree",)
    _same(again, _fresh([_ldif(every)], result.state, CONFIG, T0 + 120))


def _ber(texts: list[str]) -> bytes:
    ops = []
    for text in texts:
        for rec in iter_records(text, "t"):
            assert isinstance(rec, EntryRecord)
            grouped: dict[str, list[bytes]] = {}
            for a, v in rec.attrs:
                grouped.setdefault(a, []).append(v.encode())
            ops.append(ber.search_result_entry(rec.dn.encode(), [(a.encode(), vs) for a, vs in grouped.items()]))
    return b"".join(ops)


@pytest.mark.parametrize("seed", range(3))
def test_remote_refresh_equals_a_fresh_build(seed: int) -> None:
    """Fetched sources at top level: rewritten, recursive entries dropped,
    excluded classes left out; a failed source served from its last output."""
    rnd = random.Random(seed)
    cfg = dataclasses.replace(CONFIG, mode="top", exclude_classes=("GlueSE",))
    texts = [t for t in _records("site") if not t.startswith("dn: o=")]
    own = "dn: GlueServiceUniqueID=own,mds-vo-name=local,o=grid\nobjectClass: GlueService\n" \
          "GlueServiceUniqueID: own\n\n"  # already in our tree: recursive
    half = len(texts) // 2
    a, b = texts[:half], texts[half:] + [own]

    def sources(x: list[str], y: list[str] | None, now: int) -> list[SourceResult]:
        return [SourceResult("site-a", "ldap", _ber(x), now, 0.1),
                SourceResult("site-b", "ldap", None if y is None else _ber(y), now, 0.1, "down")]

    state = State()
    served = None
    for step in range(4):
        now = T0 + 60 * step
        x = a if step in (0, 3) else _mutate(a, rnd)
        y = None if step == 2 else (b if step != 1 else _mutate(b, rnd))
        results = sources(x, y, now)
        result = build(results, state, cfg, now)
        _same(result, _fresh(results, state, cfg, now))
        if served is not None:  # most records came back: their entries are shared
            before = {id(e) for e in served.entries}
            assert sum(id(e) in before for e in result.snapshot.entries) > len(result.snapshot) // 2
        state, served = result.state, result.snapshot
    del served
    # Other settings, other entries: a memo made under others is not used.
    other = dataclasses.replace(cfg, exclude_classes=())
    results = sources(a, b, T0 + 600)
    result = build(results, state, other, T0 + 600)
    _same(result, _fresh(results, state, other, T0 + 600))


def test_sources_that_come_back_whole_are_taken_whole_and_equal_a_fresh_build() -> None:
    """Several sources, most of them byte for byte what they were: their
    records are taken as a whole (the last Memo itself), the tree and the
    times are copied rather than rebuilt, and yet every cycle is what a
    fresh build gives. Along the way: a DN published by two sources, an
    MDS/GlueTop entry to reduce, a plugin, delayed delete, a source that
    comes and goes (status entries change)."""
    texts = _records()
    half = len(texts) // 2
    a, b = texts[:half], texts[half:]
    top = ("dn: mds-vo-name=extra,o=grid\nobjectClass: MDS\nobjectClass: GlueTop\nmds-vo-name: extra\n"
           "GlueSchemaVersionMajor: 1\n\n")
    shared = b[0]  # also published by source "c": a duplicate DN across sources
    plugin = "dn: mds-vo-name=extra,o=grid\nchangetype: modify\nadd: objectClass\nobjectClass: GlueTop\n\n"

    def sources(x: list[str], extra: bool, with_plugin: bool, now: int) -> list[SourceResult]:
        out = [SourceResult("ldif/a.ldif", "ldif", "".join(x).encode(), now, 0.1),
               SourceResult("ldif/b.ldif", "ldif", "".join(b).encode(), now, 0.1),
               SourceResult("ldif/c.ldif", "ldif", (shared.replace("\n\n", "\ndescription: from c\n\n")
                                                      + top).encode(), now, 0.1)]
        if extra:
            out.append(SourceResult("prov/extra", "provider", top.encode(), now, 0.1))
        if with_plugin:
            out.append(SourceResult("plugin/p", "plugin", plugin.encode(), now, 0.1))
        return out

    changed = [_NUMBER.sub(lambda m: f"{m.group(1)}: 99", t) for t in a]
    gone = a[:-1]  # the last record vanishes: kept by delayed delete for 300 s
    steps = [  # (now, records of "a", extra source, plugin)
        (T0, a, False, False), (T0 + 60, a, False, False), (T0 + 120, changed, False, False),
        (T0 + 180, changed, True, False), (T0 + 240, changed, True, False), (T0 + 300, gone, True, False),
        (T0 + 360, gone, True, False), (T0 + 700, gone, True, False), (T0 + 760, gone, True, True),
        (T0 + 820, gone, False, True), (T0 + 880, gone, False, False), (T0 + 940, gone, False, False)]
    state, served = State(), None
    for now, x, extra, with_plugin in steps:
        results = sources(x, extra, with_plugin, now)
        result = build(results, state, CONFIG, now)
        _same(result, _fresh(results, state, CONFIG, now))
        if state.memos and x is not changed or now == T0 + 240:
            # b's bytes came back: its Memo is taken as it is
            assert result.state.memos["ldif/b.ldif"] is state.memos["ldif/b.ldif"]
        state, served = result.state, result.snapshot
        mds = served.entries[served.find(DN.parse("mds-vo-name=extra,o=grid"))]
        assert mds.get("objectClass") == ("MDS",)
    assert state.sources["ldif/c.ldif"].entries == 2
    del served


def test_a_blacklist_that_changes_over_unchanged_sources_equals_a_fresh_build() -> None:
    """The sources give the same bytes every cycle while the FCR blacklist comes,
    changes and goes: the entries it rewrites are new objects after the
    in-place comparison was first made, and each cycle is what a fresh build gives."""
    from bdii.core.policy import FcrInput
    from test_fcr import SITES, site_ldif

    results = [SourceResult(f"ldif/{s}.ldif", "ldif", site_ldif(s).encode(), T0, 0.0) for s in SITES]
    lists = [None, b"atlas se se.b.org\n", b"atlas se se.b.org\n", b"atlas se se.c.org\n", None, None]
    state = State()
    seen = []
    for n, text in enumerate(lists):
        now = T0 + 60 * n
        fcr = [FcrInput("file", "fcr.conf", text, now - 1)] if text is not None else None
        result = build(results, state, CONFIG, now, fcr=fcr)
        with mock.patch.object(pipeline, "_changed_in_place", lambda merged, last: None):
            fresh = build(results, dataclasses.replace(state, memos={}, snapshot=None), CONFIG, now, fcr=fcr)
        _same(result, fresh)
        seen.append(_content(result.state.entries))
        state = result.state
    # The blacklist did change what is served, and its end brought the data back.
    assert seen[1] != seen[0] and seen[3] not in (seen[0], seen[1]) and seen[4] == seen[0]
