"""LDAP filters (RFC 4511 §4.5.1) evaluated on snapshots, checked against a brute-force oracle.

The oracle below is written independently of `bdii.core.filters` and
`bdii.core.matching`: it reads the matching-rule names from the schema, has
its own string preparation, and walks every entry without indexes. Any
result the indexed search adds or drops is a bug.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given, settings

import strategies as s
from bdii.core import filters as F
from bdii.core.dn import DN
from bdii.core.entry import Entry
from bdii.core.schema import Schema
from bdii.core.snapshot import BASE, ONE, SUB, Snapshot

SCHEMA = Schema.default()


# --- the oracle -------------------------------------------------------------------

def _fold(v: str) -> str:
    # RFC 4518: whitespace maps to space, outer spaces go, inner runs fold.
    return " ".join(v.split())


def _int(v: str) -> int | None:
    m = re.fullmatch(r"\s*(0|-?[1-9][0-9]*)\s*", v)
    return int(m.group(1)) if m else None


def _oid(v: str) -> str:
    oc = SCHEMA.object_class(v.strip())
    return oc.oid if oc is not None else v.strip().lower()


def _ignore(v: str) -> str:
    return _fold(v).lower()


_RULES: dict[str, Callable[[str], Any]] = {
    "caseexactmatch": _fold, "caseexactsubstringsmatch": _fold,
    "caseignorematch": _ignore, "caseignoreia5match": _ignore,
    "caseignoresubstringsmatch": _ignore, "caseignoreia5substringsmatch": _ignore,
    "integermatch": _int, "integerorderingmatch": _int, "objectidentifiermatch": _oid,
}


_EQUALITY_RULES = {k: v for k, v in _RULES.items() if "substrings" not in k and "ordering" not in k}


def _rule(attr: str, kind: str) -> Callable[[str], Any] | None:
    at = SCHEMA.attribute(attr)
    if at is None:
        return _ignore  # unknown attribute types: case-insensitive strings
    name = getattr(at, kind)
    if name is None:
        return None
    return _RULES[name.lower()]


def _same_type(a: str, b: str) -> bool:
    ta, tb = SCHEMA.attribute(a), SCHEMA.attribute(b)
    return ta is tb if ta is not None or tb is not None else a.lower() == b.lower()


def _values(entry: Entry, attr: str) -> list[str]:
    return [v for name, values in entry.attrs.values() if _same_type(name, attr) for v in values]


def _and(results: Iterable[bool | None]) -> bool | None:
    out: bool | None = True
    for r in results:
        if r is False:
            return False
        if r is None:
            out = None
    return out


def _or(results: Iterable[bool | None]) -> bool | None:
    out: bool | None = False
    for r in results:
        if r is True:
            return True
        if r is None:
            out = None
    return out


def _class_and_ancestors(name: str) -> set[str]:
    """OIDs of a class and of every class above it (all classes sit below top)."""
    out = {_oid("top")}
    todo = [name]
    while todo:
        oc = SCHEMA.object_class(todo.pop())
        if oc is None or oc.oid in out:
            continue
        out.add(oc.oid)
        todo.extend(oc.sup)
    return out


def _approx_syntax(attr: str) -> bool:
    at = SCHEMA.attribute(attr)
    if at is None:
        return True  # unknown attributes compare as case-insensitive strings
    return at.equality is not None and at.syntax in (
        "1.3.6.1.4.1.1466.115.121.1.15", "1.3.6.1.4.1.1466.115.121.1.26", "1.3.6.1.4.1.1466.115.121.1.44")


def oracle(entry: Entry, f: F.Filter) -> bool | None:
    """True, False or None (Undefined) for one entry, by brute force."""
    if isinstance(f, F.And):
        return _and(oracle(entry, x) for x in f.items)
    if isinstance(f, F.Or):
        return _or(oracle(entry, x) for x in f.items)
    if isinstance(f, F.Not):
        r = oracle(entry, f.item)
        return None if r is None else not r
    if isinstance(f, F.Present):
        # (objectClass=*) is every entry: clients use it as "match all".
        return SCHEMA.attribute(f.attr) is SCHEMA.attribute("objectClass") or bool(_values(entry, f.attr))
    if isinstance(f, F.Approx) and _approx_syntax(f.attr):
        # slapd's approxMatch for string syntaxes, less the phonetic codes:
        # the assertion's words, case-folded, appear in order in the value.
        want = f.value.casefold().split()
        if not want:
            return False
        for v in _values(entry, f.attr):
            words = iter(v.casefold().split())
            if all(any(w == x for x in words) for w in want):
                return True
        return False
    if isinstance(f, (F.Equality, F.Approx)) and _same_type(f.attr, "objectClass"):
        # objectSubClassMatch (also for `~=`, objectClass has no approximate
        # rule): an entry of class X matches (objectClass=Y)
        # for Y = X or any superclass of X.
        target = _oid(f.value)
        return any(target in _class_and_ancestors(v.strip()) or target == _oid(v) for v in _values(entry, f.attr))
    if isinstance(f, (F.Equality, F.Approx, F.Extensible)):
        rule = f.rule if isinstance(f, F.Extensible) else None
        norm = _rule(f.attr, "equality") if rule is None else _EQUALITY_RULES.get(rule.lower())
        if norm is None or norm(f.value) is None:
            return None
        pool = _values(entry, f.attr)
        if isinstance(f, F.Extensible) and f.dn_attributes:
            pool += [v for rdn in entry.dn.rdns for a, v in rdn if _same_type(a, f.attr)]
        return any(norm(v) == norm(f.value) for v in pool)
    if isinstance(f, (F.GreaterOrEqual, F.LessOrEqual)):
        norm = _rule(f.attr, "ordering")
        if norm is None or norm(f.value) is None:
            return None
        target = norm(f.value)
        normed = [norm(v) for v in _values(entry, f.attr)]
        ge = isinstance(f, F.GreaterOrEqual)
        if any(n is not None and (n >= target if ge else n <= target) for n in normed):
            return True
        # A stored value outside the syntax makes the comparison Undefined.
        return None if None in normed else False
    if isinstance(f, F.Substrings):
        norm = _rule(f.attr, "substr")
        if norm is None:
            return None
        pieces = [norm(f.initial or "")] + [".*"] + \
            [x for p in f.any for x in (norm(p), ".*")] + [norm(f.final or "")]
        pattern = "".join(p if p == ".*" else re.escape(p) for p in pieces)
        return any(re.fullmatch(pattern, norm(v), re.DOTALL) for v in _values(entry, f.attr))
    raise AssertionError(f)


def in_scope(dn: DN, base: DN, scope: int) -> bool:
    if scope == BASE:
        return dn == base
    if scope == ONE:
        return dn.parent() == base
    return dn.is_within(base)


def brute_force(snap: Snapshot, base: int, scope: int, f: F.Filter,
                verdicts: list[bool | None] | None = None) -> list[int]:
    if verdicts is None:
        verdicts = [oracle(e, f) for e in snap.entries]
    base_dn = snap.entries[base].dn
    return [i for i, e in enumerate(snap.entries)
            if verdicts[i] is True and in_scope(e.dn, base_dn, scope)]


@settings(max_examples=300, deadline=None)
@given(s.entry_trees(), s.filters)
def test_indexed_search_equals_brute_force(entries: dict[DN, Entry], f: F.Filter) -> None:
    """Match, index candidates and search for every base and scope all agree with brute force."""
    snap = Snapshot.build(entries, {}, now=0)
    compiled = snap.compile(f)
    verdicts = [oracle(e, f) for e in snap.entries]
    # The compiled predicate gives the oracle's True, False or Undefined on every entry.
    assert [compiled.match(i) for i in range(len(snap))] == verdicts
    # Index candidates, when given, are sorted, inside the range asked for,
    # and include every matching entry of that range.
    n = len(snap)
    for lo, hi in ((0, n), (n // 3, n), (0, n // 2)):
        cands = compiled.candidates(lo, hi)
        if cands is not None:
            assert cands == sorted(set(cands)) and all(lo <= i < hi for i in cands)
            assert {i for i, v in enumerate(verdicts) if v is True and lo <= i < hi} <= set(cands)
    # The search never drops or adds a result, whatever the base and scope.
    for base in range(len(snap)):
        for scope in (BASE, ONE, SUB):
            assert list(snap.search(base, scope, compiled)) == brute_force(snap, base, scope, f, verdicts), \
                (str(snap.entries[base].dn), scope)


# --- explicit cases ---------------------------------------------------------------

CE = "GlueCEUniqueID={},mds-vo-name=resource,o=grid"
SVC = "GLUE2ServiceID={},GLUE2GroupID=resource,o=glue"


def snapshot(*entries: tuple[str, list[tuple[str, str]]]) -> Snapshot:
    """A snapshot of the given entries plus the suffixes and GLUE containers above them."""
    base = [("o=grid", [("objectClass", "organization"), ("o", "grid")]),
            ("o=glue", [("objectClass", "organization"), ("o", "glue")]),
            ("mds-vo-name=resource,o=grid", [("objectClass", "MDS"), ("mds-vo-name", "resource")]),
            ("GLUE2GroupID=resource,o=glue", [("objectClass", "GLUE2Group"), ("GLUE2GroupID", "resource")])]
    out = {}
    for text, pairs in base + list(entries):
        dn = DN.parse(text)
        out[dn] = Entry.from_pairs(dn, pairs)
    return Snapshot.build(out, {}, now=0)


def search(snap: Snapshot, f: F.Filter, base: str = "o=grid", scope: int = SUB) -> list[str]:
    """The DNs found, each as its leaf RDN value, checked against the oracle on the way."""
    i = snap.find(DN.parse(base))
    assert i is not None
    found = list(snap.search(i, scope, snap.compile(f)))
    assert found == brute_force(snap, i, scope, f)
    return [snap.entries[j].dn.rdns[0][0][1] for j in found]


@pytest.fixture(scope="module")
def ces() -> Snapshot:
    return snapshot(*[(CE.format(name), [("objectClass", "GlueCE"), ("GlueCEUniqueID", name),
                                         ("GlueCEStateRunningJobs", jobs)])
                      for name, jobs in [("ce9", "9"), ("ce10", "10"), ("ce100", "100"), ("CE-x", "N/A")]])


@pytest.fixture(scope="module")
def services() -> Snapshot:
    return snapshot(
        (SVC.format("Svc"), [("objectClass", "GLUE2Service"), ("GLUE2ServiceID", "Svc"),
                             ("GLUE2EntityName", "abcbc"), ("fooAttr", "ABC")]),
        (SVC.format("svc"), [("objectClass", "GLUE2Service"), ("GLUE2ServiceID", "svc"),
                             ("GLUE2EntityName", "abc")]),
        ("GLUE2GroupID=Resource,o=glue", [("objectClass", "GLUE2Group"), ("GLUE2GroupID", "Resource")]),
        ("GLUE2ServiceID=other,GLUE2GroupID=Resource,o=glue",
         [("objectClass", "GLUE2Service"), ("GLUE2ServiceID", "other")]),
    )


def test_integers_compare_as_integers(ces: Snapshot) -> None:
    """`(GlueCEStateRunningJobs>=10)` matches 10 and 100 but not 9 (no string-order trap)."""
    assert search(ces, F.GreaterOrEqual("GlueCEStateRunningJobs", "10")) == ["ce10", "ce100"]
    assert search(ces, F.LessOrEqual("GlueCEStateRunningJobs", "9")) == ["ce9"]
    assert sorted(search(ces, F.LessOrEqual("GlueCEStateRunningJobs", "10"))) == ["ce10", "ce9"]
    assert search(ces, F.Equality("GlueCEStateRunningJobs", " 10 ")) == ["ce10"]


def test_invalid_integer_assertion_matches_nothing(ces: Snapshot) -> None:
    """An assertion that is not an RFC 4517 integer is Undefined: it matches nothing, negated or not."""
    for f in (F.Equality("GlueCEStateRunningJobs", "ten"), F.Equality("GlueCEStateRunningJobs", "010"),
              F.GreaterOrEqual("GlueCEStateRunningJobs", "1_0"), F.GreaterOrEqual("GlueCEStateRunningJobs", "+5"),
              F.LessOrEqual("GlueCEStateRunningJobs", "９")):
        assert search(ces, f) == []
        assert search(ces, F.Not(f)) == []


def test_stored_value_outside_the_syntax_is_undefined_for_ordering(ces: Snapshot) -> None:
    """A published `N/A` in an integer attribute neither matches `>=` nor its negation."""
    assert "CE-x" not in search(ces, F.Not(F.GreaterOrEqual("GlueCEStateRunningJobs", "0")))
    assert "CE-x" in search(ces, F.Not(F.Equality("GlueCEStateRunningJobs", "9")))


def test_glue13_values_are_case_insensitive(ces: Snapshot) -> None:
    """GLUE 1.3 equality and substrings ignore case."""
    assert search(ces, F.Equality("GlueCEUniqueID", "CE10")) == ["ce10"]
    assert search(ces, F.Substrings("GlueCEUniqueID", "C", (), "0")) == ["ce10", "ce100"]


def test_glue20_values_are_case_exact(services: Snapshot) -> None:
    """GLUE 2.0 equality and substrings respect case."""
    assert search(services, F.Equality("GLUE2ServiceID", "Svc"), "o=glue") == ["Svc"]
    assert search(services, F.Equality("GLUE2ServiceID", "SVC"), "o=glue") == []
    assert search(services, F.Substrings("GLUE2ServiceID", "S", (), None), "o=glue") == ["Svc"]
    assert search(services, F.Substrings("GLUE2ServiceID", None, ("V",), None), "o=glue") == []


def test_attribute_names_are_case_insensitive(services: Snapshot) -> None:
    """`glue2serviceid` and `GLUE2ServiceID` name the same attribute."""
    assert search(services, F.Equality("glue2SERVICEid", "svc"), "o=glue") == ["svc"]


def test_object_class_values_are_case_insensitive(services: Snapshot) -> None:
    """objectClass matches by name in any case, or by OID."""
    oid = SCHEMA.object_class("GLUE2Service").oid
    expected = ["Svc", "svc", "other"]
    assert sorted(search(services, F.Equality("objectclass", "glue2service"), "o=glue")) == sorted(expected)
    assert sorted(search(services, F.Equality("objectClass", oid), "o=glue")) == sorted(expected)


def test_substrings_with_initial_any_and_final(services: Snapshot) -> None:
    """initial, any and final must appear in order without overlapping (ldaptor gets this wrong)."""
    f = F.Substrings("GLUE2EntityName", "ab", ("c",), "bc")
    assert search(services, f, "o=glue") == ["Svc"]  # "abcbc" yes, "abc" no


def test_approx_compares_words_case_insensitively(services: Snapshot) -> None:
    """`~=` on a string attribute ignores case and matches whole words in order, as slapd's approxMatch."""
    assert search(services, F.Approx("GLUE2ServiceID", "OTHER"), "o=glue") == ["other"]
    assert search(services, F.Equality("GLUE2ServiceID", "OTHER"), "o=glue") == []
    assert search(services, F.Approx("GLUE2ServiceID", "sv"), "o=glue") == []


def test_approx_on_integers_is_equality(ces: Snapshot) -> None:
    """Integer syntax has no approximate rule: `~=` is integer equality there, as in slapd."""
    assert search(ces, F.Approx("GlueCEStateRunningJobs", " 10 ")) == ["ce10"]
    assert search(ces, F.Approx("GlueCEStateRunningJobs", "1")) == []


def test_not_of_undefined_is_undefined(services: Snapshot) -> None:
    """`(!(GLUE2ServiceID>=x))` matches nothing: GLUE2ServiceID has no ORDERING rule."""
    assert search(services, F.GreaterOrEqual("GLUE2ServiceID", "x"), "o=glue") == []
    assert search(services, F.Not(F.GreaterOrEqual("GLUE2ServiceID", "x")), "o=glue") == []
    assert search(services, F.Not(F.Equality("TotalEntries", "5")), "o=glue") == []
    assert search(services, F.Or((F.Not(F.Substrings("GlueCEStateRunningJobs", "1", (), None)),
                                  F.Equality("GLUE2ServiceID", "svc"))), "o=glue") == ["svc"]


def test_extensible_dn_match_finds_entries_below_the_rdn(services: Snapshot) -> None:
    """`(GLUE2GroupID:dn:=resource)` matches every entry whose DN has that RDN value, case-exact."""
    f = F.Extensible(None, "GLUE2GroupID", "resource", dn_attributes=True)
    assert sorted(search(services, f, "o=glue")) == ["Svc", "resource", "svc"]
    plain = F.Extensible(None, "GLUE2GroupID", "resource", dn_attributes=False)
    assert search(services, plain, "o=glue") == ["resource"]


def test_extensible_dn_match_reads_every_ava_of_a_multi_valued_rdn() -> None:
    """Each AVA of `GLUE2GroupID=g+GlueCEUniqueID=c` names the entry and its subtree,
    also when the entries do not carry the RDN values as attributes."""
    snap = snapshot(("GLUE2GroupID=g+GlueCEUniqueID=c,o=glue", [("objectClass", "GLUE2Group")]),
                    ("GLUE2ServiceID=s,GLUE2GroupID=g+GlueCEUniqueID=c,o=glue",
                     [("objectClass", "GLUE2Service")]),
                    ("GLUE2GroupID=g,o=glue", [("objectClass", "GLUE2Group")]))
    for attr, value in (("GLUE2GroupID", "g"), ("GlueCEUniqueID", "C"), ("gluceuniqueid", "c")):
        found = search(snap, F.Extensible(None, attr, value, dn_attributes=True), "o=glue")
        if attr == "gluceuniqueid":  # not a type the DN holds
            assert found == []
        elif attr == "GLUE2GroupID":
            assert sorted(found) == ["g", "g", "s"]
        else:
            assert sorted(found) == ["g", "s"]


def test_extensible_with_a_named_rule(services: Snapshot) -> None:
    """`(GLUE2ServiceID:caseIgnoreMatch:=SVC)` uses the named rule instead of case-exact."""
    f = F.Extensible("caseIgnoreMatch", "GLUE2ServiceID", "SVC", dn_attributes=False)
    assert sorted(search(services, f, "o=glue")) == ["Svc", "svc"]
    assert search(services, F.Extensible("noSuchMatch", "GLUE2ServiceID", "svc", False), "o=glue") == []


def test_unknown_attributes_compare_case_insensitively(services: Snapshot) -> None:
    """Attributes the schema does not know compare as case-insensitive strings."""
    assert search(services, F.Equality("FOOATTR", "abc"), "o=glue") == ["Svc"]


def test_presence(ces: Snapshot) -> None:
    """`(attr=*)` matches entries with a value; `(objectClass=*)` matches every entry."""
    assert sorted(search(ces, F.Present("GlueCEStateRunningJobs"))) == ["CE-x", "ce10", "ce100", "ce9"]
    assert len(search(ces, F.Present("objectClass"))) == 6
    assert search(ces, F.Present("GLUE2ServiceID")) == []


def test_scopes_base_one_and_sub(ces: Snapshot) -> None:
    """base is the entry itself, one its children, sub the entry and everything below."""
    everything = F.Present("objectClass")
    assert search(ces, everything, "o=grid", BASE) == ["grid"]
    assert search(ces, everything, "o=grid", ONE) == ["resource"]
    assert len(search(ces, everything, "mds-vo-name=resource,o=grid", ONE)) == 4
    assert len(search(ces, everything, "o=grid", SUB)) == 6
    assert search(ces, F.Equality("GlueCEUniqueID", "ce9"), CE.format("ce9"), BASE) == ["ce9"]
    assert search(ces, F.Equality("GlueCEUniqueID", "ce9"), CE.format("ce10"), BASE) == []


def test_indexed_and_filter_in_one_level_scope(ces: Snapshot) -> None:
    """An indexed AND narrows to candidates without losing matches in a one-level search."""
    f = F.And((F.Equality("objectClass", "GlueCE"), F.Equality("GlueCEUniqueID", "CE100")))
    assert search(ces, f, "mds-vo-name=resource,o=grid", ONE) == ["ce100"]
    assert search(ces, f, "o=grid", ONE) == []


def test_or_of_many_equalities_is_one_set_test(ces: Snapshot, services: Snapshot) -> None:
    """DIRAC-style ORs of many IDs are folded into one set lookup: same answers
    as branch by branch (the oracle), case rules, integers and invalid values included."""
    ids = ["CE9", "ce100", "nope", "ce-X", "also-missing"]
    assert sorted(search(ces, F.Or(tuple(F.Equality("GlueCEUniqueID", v) for v in ids)))) == ["CE-x", "ce100", "ce9"]
    jobs = ["010", "ten", "100", " 9 ", "N/A"]  # invalid assertions match nothing, even a stored "N/A"
    assert sorted(search(ces, F.Or(tuple(F.Equality("GlueCEStateRunningJobs", v) for v in jobs)))) == ["ce100", "ce9"]
    mixed = F.Or((*(F.Equality("GLUE2ServiceID", v) for v in ("svc", "SVC", "x", "y")), F.Present("fooAttr")))
    assert sorted(search(services, mixed, "o=glue")) == ["Svc", "svc"]
    negated = F.Not(F.Or(tuple(F.Equality("GlueCEUniqueID", v) for v in ids)))
    assert "ce10" in search(ces, negated) and "ce9" not in search(ces, negated)
