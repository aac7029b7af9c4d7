"""The packed wire form the serving processes read (bdii.core.packed):
values, DNs and attributes read back from the bytes are the entry's own."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bdii.core.dn import DN
from bdii.core.entry import Entry
from bdii.core.packed import Packed, attribute, encode

# Values of every length class BER has: short form, one and two length bytes.
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300) | st.sampled_from(
    ["x" * 127, "x" * 128, "é" * 200, "y" * 70_000])
attrs = st.dictionaries(st.sampled_from(["objectClass", "GLUE2EntityName", "GlueSiteName", "description",
                                         "GLUE2ServiceType", "GlueCEUniqueID"]),
                        st.lists(values, min_size=1, max_size=4, unique=True), min_size=1)


def _entry(name: str, a: dict[str, list[str]]) -> Entry:
    return Entry.from_pairs(DN.parse(f"GLUE2ServiceID={name},o=glue"), [(k, v) for k, vs in a.items() for v in vs])


@settings(max_examples=150, deadline=None)
@given(st.lists(attrs, min_size=1, max_size=5))
def test_everything_reads_back(layouts: list[dict[str, list[str]]]) -> None:
    entries = [_entry(f"s{n}", a) for n, a in enumerate(layouts)]
    store, reused = Packed.build(entries)
    assert reused == 0 and len(store) == len(entries)
    for i, e in enumerate(entries):
        assert bytes(store.op(i)) == encode(e)[0]
        assert store.dn(i) == str(e.dn)
        assert store.shape(i) is e.shape
        assert store.object_classes(i) == tuple(e.values_of("objectclass") or ())
        for j, (name, vals) in enumerate(zip(e.shape.names, e.vals)):
            assert store.values(i, j) == vals
            assert store.attribute(i, j) == attribute(name, vals)
        # objectClass first, as slapd shows entries, then the entry's order
        assert store.attributes(i) == b"".join(attribute(n, v) for n, v in e.items())


def test_unchanged_entries_are_copied_not_encoded() -> None:
    a = _entry("a", {"objectClass": ["GLUE2Service"], "GLUE2ServiceType": ["x" * 200]})
    b = _entry("b", {"GLUE2ServiceType": ["y"], "objectClass": ["GLUE2Service"]})
    first, _ = Packed.build([a, b])
    c = b.replace({"GLUE2ServiceType": ("z",)})
    second, reused = Packed.build([a, c], first)
    assert reused == 1
    assert second.values(0, 1) == ("x" * 200,)
    assert second.values(1, b.shape.index["glue2servicetype"]) == ("z",)
    assert bytes(second.op(0)) == bytes(first.op(0)) and bytes(second.op(1)) == encode(c)[0]
    assert second.object_classes(0) == second.object_classes(1) == ("GLUE2Service",)
    assert second.classes == [("GLUE2Service",)]  # one list, kept once


@settings(max_examples=100, deadline=None)
@given(st.lists(attrs, min_size=1, max_size=12), st.lists(st.tuples(st.sampled_from("kkkkrdim"), st.integers(0, 11)),
                                                          max_size=24))
def test_a_refresh_copied_in_runs_equals_a_fresh_encoding(layouts: list[dict[str, list[str]]],
                                                          edits: list[tuple[str, int]]) -> None:
    """Entries kept (in runs at their old numbers or moved), replaced,
    inserted and deleted: the store made from the last one is byte for
    byte the one made from nothing, and reads back the same."""
    old = [_entry(f"s{n}", a) for n, a in enumerate(layouts)]
    first, _ = Packed.build(old)
    new = list(old)
    for op, at in edits:
        at %= len(new) + 1
        if op == "r" and at < len(new):  # replaced: same DN, other values
            new[at] = new[at].replace({"description": ("changed",)})
        elif op == "d" and at < len(new) and len(new) > 1:
            del new[at]
        elif op == "i":
            new.insert(at, _entry(f"new{at}", {"objectClass": ["GLUE2Endpoint"], "GLUE2EntityName": ["n"]}))
        elif op == "m" and at < len(new):  # moved: another number, the same object
            new.append(new.pop(at))
    again, reused = Packed.build(new, first)
    fresh, none = Packed.build(new)
    assert none == 0 and reused == sum(any(e is o for o in old) for e in new)
    assert bytes(again.buf) == bytes(fresh.buf)
    assert (list(again.starts), list(again.attr_at), list(again.attr_base)) == \
        (list(fresh.starts), list(fresh.attr_at), list(fresh.attr_base))
    for i, e in enumerate(new):
        assert again.shape(i) is e.shape
        assert again.object_classes(i) == tuple(e.values_of("objectclass") or ())
        assert again.values(i, 0) == e.vals[0]
