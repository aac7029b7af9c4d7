"""Distinguished names (RFC 4514): parsing, equality per the schema, rendering, RDN-list rewriting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import strategies as s
from bdii.core.dn import DN
from bdii.core.errors import DNError

FAST = settings(max_examples=150, deadline=None)


def test_spaces_around_separators_are_insignificant() -> None:
    """Spaces around `=`, `,` and `+` and at both ends do not change the DN."""
    assert DN.parse("  mds-vo-name = local , o = grid ") == DN.parse("mds-vo-name=local,o=grid")
    assert DN.parse("cn = a + o = b , o=grid") == DN.parse("cn=a+o=b,o=grid")


def test_attribute_type_case_is_insignificant() -> None:
    """Attribute types compare case-insensitively, and render in the schema's spelling."""
    dn = DN.parse("MDS-VO-NAME=local,O=grid")
    assert dn == DN.parse("mds-vo-name=local,o=grid")
    assert str(dn) == "Mds-Vo-name=local,o=grid"


def test_oid_and_alias_attribute_types() -> None:
    """An attribute type given by OID (with or without `OID.`) or by alias is the same type."""
    assert DN.parse("2.5.4.3=x,o=grid") == DN.parse("cn=x,o=grid")
    assert DN.parse("OID.2.5.4.3=x,o=grid") == DN.parse("commonName=x,o=grid")


@pytest.mark.parametrize(("escaped", "value"), [
    (r"a\,b", "a,b"), (r"a\=b", "a=b"), (r"a\+b", "a+b"), (r"a\;b", "a;b"), (r"a\"b", 'a"b'),
    (r"a\<b", "a<b"), (r"a\>b", "a>b"), (r"a\\b", "a\\b"), (r"\#a", "#a"), (r"\ a\ ", " a "),
    (r"a\2cb", "a,b"), (r"caf\c3\a9", "café"), (r"\e6\bc\a2", "漢"), (r"\5C", "\\"),
])
def test_every_escape_is_read(escaped: str, value: str) -> None:
    """`\\` before a special character or two hex digits (UTF-8 bytes) gives that character."""
    dn = DN.parse(f"cn={escaped},o=grid")
    assert dn.rdns[0] == (("cn", value),)
    assert dn == DN.from_rdns([(("cn", value),), (("o", "grid"),)])


def test_hex_escape_equals_the_character() -> None:
    """`caf\\c3\\a9` and `café` are the same value."""
    assert DN.parse(r"GLUE2GroupID=caf\c3\a9,o=glue") == DN.parse("GLUE2GroupID=café,o=glue")


def test_quoted_value_is_read() -> None:
    """A quoted value (RFC 1779, still seen in the wild) may hold separators."""
    assert DN.parse('cn="a, b",o=grid').rdns[0] == (("cn", "a, b"),)


def test_multi_valued_rdn_order_is_insignificant() -> None:
    """`a=1+b=2` and `b=2+a=1` are the same RDN."""
    assert DN.parse("cn=x+GlueCEUniqueID=ce1,o=grid") == DN.parse("GlueCEUniqueID=CE1 + cn=X,o=grid")
    assert hash(DN.parse("cn=x+o=y,o=grid")) == hash(DN.parse("o=y+cn=x,o=grid"))


def test_glue13_values_are_case_insensitive() -> None:
    """GLUE 1.3 names (`GlueCEUniqueID`, `mds-vo-name`) compare case-insensitively."""
    assert DN.parse("GlueCEUniqueID=CE.Example.ORG:2119,Mds-Vo-Name=Resource,o=grid") == \
        DN.parse("glueceuniqueid=ce.example.org:2119,mds-vo-name=resource,o=grid")


def test_glue20_values_are_case_exact() -> None:
    """GLUE 2.0 IDs are case-exact: `GLUE2GroupID=Resource` is not `GLUE2GroupID=resource`."""
    assert DN.parse("GLUE2GroupID=Resource,o=glue") != DN.parse("GLUE2GroupID=resource,o=glue")
    assert DN.parse("GLUE2ServiceID=Svc,GLUE2GroupID=resource,o=glue") != \
        DN.parse("GLUE2ServiceID=svc,GLUE2GroupID=resource,o=glue")
    assert DN.parse("glue2groupid=resource,O=GLUE") == DN.parse("GLUE2GroupID=resource,o=glue")


def test_unknown_attribute_types_compare_case_insensitively() -> None:
    """Values of attribute types the schema does not know compare case-insensitively."""
    assert DN.parse("fooBar=ABC,o=grid") == DN.parse("FOOBAR=abc,o=grid")


def test_inner_space_runs_fold_and_whitespace_maps_to_space() -> None:
    """Runs of inner spaces compare as one, and tabs or newlines as a space (RFC 4518)."""
    assert DN.parse("cn=a   b,o=grid") == DN.parse("cn=a b,o=grid")
    assert DN.from_rdns([(("cn", "a\nb"),)]) == DN.from_rdns([(("cn", "a b"),)])


def test_rendering_escapes_special_characters() -> None:
    """Rendering escapes RFC 4514 specials, a leading `#` or space and a trailing space, so they read back."""
    value = ' #a,b+c"d\\e<f>g;h=i '
    text = str(DN.from_rdns([(("cn", value),), (("o", "grid"),)]))
    assert text.startswith("cn=\\") and text.endswith(",o=grid")
    assert DN.parse(text).rdns == ((("cn", value),), (("o", "grid"),))
    assert DN.parse(str(DN.from_rdns([(("cn", "#x"),)]))).rdns == ((("cn", "#x"),),)
    assert str(DN.from_rdns([(("cn", "plain value"),)])) == "cn=plain value"


@pytest.mark.parametrize("text", [
    "o", "=grid", "o=grid,", "o=grid,,o=x", "o=grid+", "cn=a\\", "cn=a\\zz", "cn=\\c3", 'cn="open',
    'cn="a"b', "c n=x", "1cn=x", "cn=<x+o=y", "cn=x,=y", "cn=\\41\ud800",
])
def test_invalid_dns_raise_dnerror(text: str) -> None:
    """Malformed DNs raise DNError with the DN in the message."""
    with pytest.raises(DNError):
        DN.parse(text)


def test_empty_dn_is_the_root() -> None:
    """The empty DN (the root DSE) parses to no RDNs and contains every DN."""
    root = DN.parse("")
    assert len(root) == 0 and not root
    assert DN.parse("o=grid").is_within(root)


def test_is_within() -> None:
    """A DN is within itself and its ancestors, by key, not within siblings or children."""
    suffix = DN.parse("mds-vo-name=local,o=grid")
    assert DN.parse("GlueSiteUniqueID=x,Mds-Vo-Name=LOCAL,o=grid").is_within(suffix)
    assert suffix.is_within(suffix)
    assert not suffix.is_within(DN.parse("GlueSiteUniqueID=x,mds-vo-name=local,o=grid"))
    assert not DN.parse("mds-vo-name=local,o=glue").is_within(suffix)
    assert not DN.parse("GLUE2GroupID=Grid,o=glue").is_within(DN.parse("GLUE2GroupID=grid,o=glue"))


def test_parent_and_ancestors() -> None:
    """`parent()` drops the leaf RDN; `ancestors()` runs up to the one-RDN suffix."""
    dn = DN.parse("a=1,b=2,o=grid")
    assert dn.parent() == DN.parse("b=2,o=grid")
    assert list(dn.ancestors()) == [DN.parse("b=2,o=grid"), DN.parse("o=grid")]
    assert DN.parse("o=grid").parent() == DN.parse("")
    assert DN.parse("").parent() is None


def test_replace_suffix_rewrites_rdn_lists() -> None:
    """`X,old` becomes `X,new`, keeping X as written; a DN outside `old` is refused."""
    dn = DN.parse(r"GLUE2ServiceID=svc\,1,GLUE2GroupID=resource,o=glue")
    new = dn.replace_suffix(DN.parse("o=glue"), DN.parse("GLUE2DomainID=SITE,o=glue"))
    assert new == DN.parse(r"GLUE2ServiceID=svc\,1,GLUE2GroupID=resource,GLUE2DomainID=SITE,o=glue")
    assert new.rdns[0] == (("GLUE2ServiceID", "svc,1"),)
    assert str(new).endswith(",GLUE2GroupID=resource,GLUE2DomainID=SITE,o=glue")
    with pytest.raises(ValueError):
        dn.replace_suffix(DN.parse("o=grid"), DN.parse("o=x"))


def test_child_builds_below() -> None:
    """`child(rdn)` is the DN with one more RDN at the leaf."""
    child = DN.parse("o=glue").child((("GLUE2GroupID", "resource"),))
    assert child == DN.parse("GLUE2GroupID=resource,o=glue")


def test_sort_order_keeps_subtrees_contiguous() -> None:
    """Sorting by DN puts every subtree in one run, parents first."""
    names = ["o=grid", "b=1,o=grid", "c=1,b=1,o=grid", "a=1,o=grid", "o=glue", "z=1,a=1,o=grid"]
    ordered = [str(d) for d in sorted(DN.parse(n) for n in names)]
    assert ordered.index("b=1,o=grid") + 1 == ordered.index("c=1,b=1,o=grid")
    assert ordered.index("a=1,o=grid") + 1 == ordered.index("z=1,a=1,o=grid")
    assert ordered.index("o=grid") < ordered.index("a=1,o=grid")


@FAST
@given(s.dns)
def test_render_then_parse_is_identity(dn: DN) -> None:
    """Parsing the rendered form of any DN gives an equal DN."""
    again = DN.parse(str(dn))
    assert again == dn
    assert hash(again) == hash(dn)
    assert len(again) == len(dn)


@FAST
@given(s.dns, s.dns)
def test_replace_suffix_then_back_is_identity(dn: DN, new: DN) -> None:
    """Moving a DN to another suffix and back gives it back."""
    old = DN.from_rdns(dn.rdns[-1:])
    moved = dn.replace_suffix(old, new)
    assert moved.is_within(new)
    assert moved.replace_suffix(new, old) == dn


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(),
    st.text(alphabet=',+"\\<>;= #=a0cC3éOo.\ud800', max_size=20),
    st.lists(st.sampled_from(["cn=", "o=grid", ",", "+", "\\", "\\2c", "\"", "x", " ", "OID.2.5.4.3=",
                              "Mds-validto=99991231235959-2359", "member=\\", "\ud800"]),
             max_size=8).map("".join),
))
def test_any_text_gives_a_dn_or_dnerror(text: str) -> None:
    """Parsing never raises anything but DNError, whatever the text."""
    try:
        dn = DN.parse(text)
    except DNError:
        return
    assert DN.parse(str(dn)) == dn


@FAST
@given(s.dns)
def test_every_character_may_be_hex_escaped(dn: DN) -> None:
    """Writing every value byte as a `\\XX` escape gives the same DN (RFC 4514 section 2.4)."""
    text = ",".join("+".join(a + "=" + "".join(f"\\{b:02x}" for b in v.encode("utf-8")) for a, v in rdn)
                    for rdn in dn.rdns)
    assert DN.parse(text) == dn
    assert DN.parse(text).rdns == tuple(tuple((a, v) for a, v in rdn) for rdn in dn.rdns)
