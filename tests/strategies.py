"""Hypothesis strategies shared by the core tests.

Names come from the schema the server loads, values are chosen to hit the
corners RFC 2849 and RFC 4514 care about (non-ASCII, leading and trailing
spaces, ':' and '<' first, the DN special characters), and the filter and
entry strategies draw from a small vocabulary so that generated filters
actually hit generated entries, in every case variant.
"""

from __future__ import annotations

from hypothesis import strategies as st

from bdii.core import filters as F
from bdii.core.dn import DN
from bdii.core.entry import Entry
from bdii.core.schema import Schema

SCHEMA = Schema.default()

# Every user attribute type name the schema knows, in its own spelling.
USER_ATTRIBUTE_NAMES = sorted(
    {n for at in SCHEMA.attributes if not at.operational for n in at.names})


def _any_case(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.lower(), name.upper(), name.swapcase()])


#: Attribute names from the schema, in any case (names compare case-insensitively).
schema_attribute_names = st.sampled_from(USER_ATTRIBUTE_NAMES).flatmap(_any_case)

#: Attribute names as they may appear in LDIF (schema names plus unknown ones).
ldif_attribute_names = st.one_of(
    schema_attribute_names,
    st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,12}\Z"),
)

# Characters that make RFC 2849 and RFC 4514 interesting, mixed with plain text.
_TRICKY = " :<#,+\"\\;=>-\t\r\n\x00éÉß漢😀"

#: Attribute values: plain, non-ASCII, and starting with space, ':' or '<', CR/LF inside.
ldif_values = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.sampled_from(_TRICKY + "aAz09"), max_size=12),
    st.sampled_from([" leading", "trailing ", ":colon", "<angle", "café", "line\r\nbreak",
                     "a" * 200, "a" + " " * 150 + "b", "x:y", "#hash", "-"]),
)

#: Values for DN components, heavy on the characters RFC 4514 escapes.
dn_values = st.one_of(
    st.text(alphabet=st.sampled_from(',+"\\<>;=# éÉaAbB0\u00e9\u3000'), max_size=8),
    st.text(max_size=10),
)

# RDN attribute types: GLUE 1.3 (case-insensitive), GLUE 2.0 (case-exact),
# LDAP core, an unknown name and an OID.
RDN_TYPES = ["GLUE2GroupID", "GLUE2ServiceID", "GlueCEUniqueID", "mds-vo-name", "o", "cn",
             "fooUnknown", "2.5.4.3"]


@st.composite
def rdns(draw: st.DrawFn, values: st.SearchStrategy[str] = dn_values) -> tuple:
    """One RDN of one to three AVAs (multi-valued RDNs joined by '+')."""
    count = draw(st.integers(1, 3) if draw(st.booleans()) else st.just(1))
    return tuple((draw(st.sampled_from(RDN_TYPES).flatmap(_any_case)), draw(values))
                 for _ in range(count))


#: Whole DNs built from RDN lists (leaf first), including the special characters.
dns = st.lists(rdns(), min_size=1, max_size=4).map(DN.from_rdns)


# --- entries and filters for the search oracle ------------------------------

#: The attributes generated entries carry, one or more of each matching kind:
#: case-exact (GLUE 2.0), case-insensitive IA5 (GLUE 1.3), integer, no EQUALITY
#: at all, unknown to the schema; indexed and not indexed.
FILTER_ATTRS = [
    "GLUE2ServiceID",            # caseExact, indexed (…id)
    "GLUE2EntityOtherInfo",      # caseExact, multi-valued, not indexed
    "GlueCEUniqueID",            # caseIgnoreIA5, indexed
    "GlueSiteDescription",       # caseIgnoreIA5, not indexed
    "GlueCEStateRunningJobs",    # integer with ordering
    "GLUE2ComputingShareRunningJobs",
    "TotalEntries",              # no matching rules at all
    "fooAttr",                   # unknown: case-insensitive strings
    "fooID",                     # unknown but indexed by name
]
OBJECT_CLASSES = ["GLUE2Service", "glue2service", "GlueCE", "GLUECE", "top", "unknownClass"]

#: A small vocabulary so that values collide, in every case and spacing, and
#: integers in every spelling (including ones that are not integers at all).
SMALL_VALUES = ["a", "A", "a b", "A  B", " a", "a\tb", "b", "B", "ab", "aB", "abc", "bab", "ba b",
                "10", "9", "010", "100", "-1", "0", "-0", "+5", "1_0", "\u0663", "x", "é", "É", "", "resource",
                "Resource"]
small_values = st.sampled_from(SMALL_VALUES)
_nonempty_values = st.sampled_from([v for v in SMALL_VALUES if v])


def _spellings(names: list[str]) -> list[str]:
    return [v for n in names for v in dict.fromkeys((n, n.lower(), n.upper()))]


_pair = st.tuples(st.sampled_from(_spellings(FILTER_ATTRS)), small_values)
_body = st.tuples(st.lists(st.sampled_from(OBJECT_CLASSES), min_size=1, max_size=2),
                  st.lists(_pair, max_size=6))
_rdn_type = st.sampled_from(["GLUE2GroupID", "GlueCEUniqueID", "fooAttr"])
_rdn_value = st.sampled_from(["a", "A", "b", "resource", "Resource", "a b"])
# Parent (by number), then one AVA or, now and then, two (a multi-valued RDN).
_child = st.tuples(st.integers(0, 15),
                   st.lists(st.tuples(_rdn_type, _rdn_value), min_size=1, max_size=2,
                            unique_by=lambda ava: ava[0].lower()))
_ROOTS = [DN.parse("o=glue"), DN.parse("o=grid")]


@st.composite
def entry_trees(draw: st.DrawFn) -> dict[DN, Entry]:
    """A directory tree under o=glue and o=grid, each entry with random attributes.

    Parents always exist, as after the pipeline's orphan check; an attribute
    drawn twice is multi-valued.
    """
    dns_: list[DN] = list(_ROOTS)
    for index, avas in draw(st.lists(_child, max_size=10)):
        child = dns_[index % len(dns_)].child(tuple(avas))
        if child not in dns_:
            dns_.append(child)
    bodies = draw(st.lists(_body, min_size=len(dns_), max_size=len(dns_)))
    return {dn: Entry.from_pairs(dn, [("objectClass", oc) for oc in classes] + pairs)
            for dn, (classes, pairs) in zip(dns_, bodies)}


_filter_attr = st.sampled_from(_spellings([*FILTER_ATTRS, "objectClass", "GLUE2GroupID"]))
_filter_value = st.sampled_from(SMALL_VALUES + OBJECT_CLASSES)

_leaves = st.one_of(
    st.builds(F.Equality, _filter_attr, _filter_value),
    st.builds(F.Approx, _filter_attr, _filter_value),
    st.builds(F.GreaterOrEqual, _filter_attr, _filter_value),
    st.builds(F.LessOrEqual, _filter_attr, _filter_value),
    st.builds(F.Present, _filter_attr),
    st.builds(F.Substrings, _filter_attr, st.none() | _nonempty_values,
              st.lists(_nonempty_values, max_size=2).map(tuple), st.none() | _nonempty_values),
    st.builds(F.Extensible,
              st.sampled_from([None, None, "caseIgnoreMatch", "caseExactMatch", "integerMatch",
                               "caseIgnoreIA5Match", "noSuchMatch"]),
              _filter_attr, _filter_value, st.booleans()),
)

#: Filters of every kind, nested with AND, OR and NOT.
filters = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: F.And(tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: F.Or(tuple(xs))),
        inner.map(F.Not),
    ),
    max_leaves=6,
)

#: Entries (DN and attribute pairs) for LDIF round trips.
ldif_entries = st.tuples(
    dns.map(str),
    st.lists(st.tuples(ldif_attribute_names, ldif_values), min_size=1, max_size=6),
)
