"""The schema file parser, the JSON renderings in glue/ and the Schema model."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bdii.glue.render import TARGETS
from hypothesis import given, settings
from hypothesis import strategies as st

from bdii.core.schema import AttributeType, Schema, SchemaError
from bdii.core.schemafile import (
    SchemaSyntaxError,
    parse_schema_text,
    render_json,
)

ROOT = Path(__file__).resolve().parents[1]

DSTRING = "1.3.6.1.4.1.1466.115.121.1.15"
IA5 = "1.3.6.1.4.1.1466.115.121.1.26"
INTEGER = "1.3.6.1.4.1.1466.115.121.1.27"


def parse(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return parse_schema_text(text, "test.schema")


def schema_of(text: str) -> Schema:
    return Schema.from_json_texts([render_json([("test.schema", text)])])


# --- the parser ---------------------------------------------------------------

def test_attribute_type_fields_are_all_read() -> None:
    """Every RFC 4512 attribute type field is read; SYNTAX loses its {len} bound."""
    [at], [] = parse(
        "attributetype ( 1.2.3.4 NAME ( 'fooBar' 'fb' ) DESC 'a foo'"
        " SUP name EQUALITY caseExactMatch ORDERING caseExactOrderingMatch"
        " SUBSTR caseExactSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{256}"
        " SINGLE-VALUE NO-USER-MODIFICATION USAGE dSAOperation X-ORIGIN 'test' )")
    assert at == {
        "oid": "1.2.3.4", "names": ["fooBar", "fb"], "desc": "a foo", "sup": "name",
        "equality": "caseExactMatch", "ordering": "caseExactOrderingMatch",
        "substr": "caseExactSubstringsMatch", "syntax": DSTRING, "single_value": True,
        "usage": "dSAOperation"}


def test_object_class_lists_and_default_kind() -> None:
    """SUP/MUST/MAY take one name or a $-list; a class without a kind is STRUCTURAL."""
    [], [a, b] = parse(
        "objectclass ( 1.2.3 NAME 'a' SUP (top $ 'other') AUXILIARY MUST x MAY ( y $ z ) )\n"
        "objectclass ( 1.2.4 NAME 'b' MAY (y) )\n")
    assert a == {"oid": "1.2.3", "names": ["a"], "desc": None, "sup": ["top", "other"],
                 "kind": "AUXILIARY", "must": ["x"], "may": ["y", "z"]}
    assert (b["kind"], b["sup"], b["must"], b["may"]) == ("STRUCTURAL", [], [], ["y"])


def test_continuation_lines_join_as_slapd_does() -> None:
    """A line starting with whitespace continues the last; that first character becomes a space."""
    [at], _ = parse("attributetype ( 1.2.3\n\tNAME 'x'\n    DESC 'two\n\tlines'\n"
                    "\tSYNTAX 1.3.6.1.4.1.1466.115.121.1.15\n )\n")
    assert (at["names"], at["desc"]) == (["x"], "two lines")


def test_comments_and_blank_lines_are_skipped() -> None:
    """'#' lines, and continuation lines under them, are comments; blank lines separate."""
    ats, _ = parse("# header\n\n#attributetype ( 1.2.1 NAME 'gone'\n#\tSYNTAX 1.2 )\n"
                   "# commented out\n\tattributetype ( 1.2.9 NAME 'gone2' SUP x )\n\n"
                   "attributetype ( 1.2.2 NAME 'kept' SUP name )\n\n\n")
    assert [a["names"] for a in ats] == [["kept"]]


def test_keywords_are_case_insensitive_and_in_any_order() -> None:
    """slapd accepts any case for directives and keywords, and fields in any order."""
    [at], [oc] = parse("AttributeType ( 1.2.3 single-value syntax 1.2.5 name 'x' )\n"
                       "OBJECTCLASS ( 1.2.4 may x abstract name 'c' )\n")
    assert (at["names"], at["syntax"], at["single_value"]) == (["x"], "1.2.5", True)
    assert (oc["kind"], oc["may"]) == ("ABSTRACT", ["x"])


def test_objectidentifier_macros_expand() -> None:
    """objectidentifier names expand in the OID and SYNTAX positions, alone or with :suffix."""
    [at], [oc] = parse("objectidentifier base 1.3.6.1.4.1.99999\n"
                       "objectIdentifier attrs base:1\n"
                       "attributetype ( attrs:7 NAME 'x' SYNTAX base:0.2 )\n"
                       "objectclass ( base NAME 'c' MAY x )\n")
    assert (at["oid"], at["syntax"], oc["oid"]) == ("1.3.6.1.4.1.99999.1.7",
                                                    "1.3.6.1.4.1.99999.0.2", "1.3.6.1.4.1.99999")


def test_desc_escapes_are_decoded() -> None:
    """RFC 4512 §4.1: \\27 in a qdstring is a quote and \\5C a backslash."""
    [at], _ = parse(r"attributetype ( 1.2.3 NAME 'x' DESC 'it\27s a \5C' SUP name )")
    assert at["desc"] == "it's a \\"


@pytest.mark.parametrize(("text", "line", "message"), [
    ("# ok\nobjectclasses ( 1.2.3 )\n", 2, "unknown schema directive"),
    ("  NAME 'x'\n", 1, "continuation line"),
    ("ldapsyntax ( 1.2.3 DESC 'x' )\n", 1, "unknown schema directive"),
    ("attributetype ( 1.2.3 NAME 'x'\n\n SYNTAX 1.2.3 )\n", 1, "definition ends"),
    ("attributetype ( 1.2.3 NAME 'x'\n\tSYNTAX 1.2.3\n", 2, "definition ends"),
    ("attributetype ( 1.2.3 NAME 'x'\n\tFOO bar )\n", 2, "unexpected 'FOO'"),
    ("attributetype ( cn NAME 'x' )\n", 1, "numeric OID"),
    ("attributetype ( 1.2.3 NAME x )\n", 1, "quoted name"),
    ("attributetype ( 1.2.3\n NAME 'x\n SUP y )\n", 2, "unterminated quoted string"),
    ("attributetype ( 1.2.3 NAME 'x' SUP y ) trailing\n", 1, "text after the end"),
    ("attributetype ( 1.2.3 NAME 'x' SUP y SUP z )\n", 1, "repeats"),
    ("objectclass ( 1.2.3 NAME 'x' ABSTRACT\n AUXILIARY )\n", 2, "repeats"),
    ("objectclass ( 1.2.3 NAME 'x' MAY ( a b ) )\n", 1, "expected ')'"),
    ("attributetype ( 1.2.3 NAME 'x' SYNTAX 1.2{x} )\n", 1, "syntax OID"),
    ("attributetype ( 1.2.3 NAME 'x' SUP y USAGE sometimes )\n", 1, "unknown USAGE"),
    ("objectidentifier onlyname\n", 1, "objectidentifier"),
])
def test_junk_raises_schema_syntax_error_naming_the_line(text: str, line: int,
                                                         message: str) -> None:
    """Text slapd would refuse raises SchemaSyntaxError with the source and the offending line."""
    with pytest.raises(SchemaSyntaxError, match=re.escape(message)) as info:
        parse(text)
    assert info.value.line == line
    assert str(info.value).startswith(f"test.schema:{line}: ")
    assert isinstance(info.value, ValueError)


_PIECES = [*"()$'{} \t\n#:.0123abAZ-\\", "attributetype", "objectclass", "objectidentifier",
           " NAME ", " SUP ", " MAY ", " SYNTAX ", " USAGE ", "1.2.3", " X-A ", "\n\t"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_any_text_parses_or_raises_our_error(text: str) -> None:
    """Whatever the text, the parser returns definitions or raises SchemaSyntaxError."""
    with contextlib.suppress(SchemaSyntaxError):
        parse(text)


def test_render_json_keeps_file_order_and_names_sources() -> None:
    """The JSON rendering lists sources and definitions in file order, indented by one."""
    text = render_json([("a.schema", "attributetype ( 1.2.2 NAME 'b' SUP name )\n"),
                        ("b.schema", "attributetype ( 1.2.1 NAME 'a' SUP name )\n")],
                       note="n")
    doc = json.loads(text)
    assert (doc["source"], doc["note"]) == (["a.schema", "b.schema"], "n")
    assert [a["oid"] for a in doc["attributes"]] == ["1.2.2", "1.2.1"]
    assert text.startswith('{\n "source"')


def test_render_json_only_keeps_dependencies() -> None:
    """With `only`, a class keeps its superclasses and attributes, and an attribute its SUP."""
    files = [("x", "attributetype ( 1.1.1 NAME 'base' SYNTAX 1.2.3 )\n"
                   "attributetype ( 1.1.2 NAME 'sub' SUP base )\n"
                   "attributetype ( 1.1.3 NAME 'unused' SYNTAX 1.2.3 )\n"
                   "objectclass ( 1.1.4 NAME 'top' MUST sub )\n"
                   "objectclass ( 1.1.5 NAME 'leaf' SUP top )\n")]
    doc = json.loads(render_json(files, only=["leaf"]))
    assert [a["names"][0] for a in doc["attributes"]] == ["base", "sub"]
    assert [o["names"][0] for o in doc["objectclasses"]] == ["top", "leaf"]
    with pytest.raises(ValueError, match="nothere"):
        render_json(files, only=["nothere"])


# --- the model ----------------------------------------------------------------

def test_subtype_inherits_syntax_and_matching_rules() -> None:
    """An attribute with SUP takes the missing syntax and rules from its supertype chain."""
    schema = schema_of(
        "attributetype ( 1.1.1 NAME 'base' EQUALITY caseIgnoreMatch ORDERING o"
        f" SUBSTR caseIgnoreSubstringsMatch SYNTAX {DSTRING} )\n"
        "attributetype ( 1.1.2 NAME 'mid' SUP base EQUALITY caseExactMatch )\n"
        "attributetype ( 1.1.3 NAME ( 'leaf' 'alias' ) SUP mid SINGLE-VALUE )\n")
    leaf = schema.attribute("ALIAS")
    assert leaf is not None
    assert (leaf.name, leaf.sup, leaf.syntax, leaf.equality, leaf.ordering, leaf.substr,
            leaf.single_value) == ("leaf", "mid", DSTRING, "caseExactMatch", "o",
                                   "caseIgnoreSubstringsMatch", True)


@pytest.mark.parametrize(("text", "message"), [
    ("attributetype ( 1.1.1 NAME 'a' SUP missing )\n", "unknown SUP 'missing'"),
    ("attributetype ( 1.1.1 NAME 'a' SUP b )\nattributetype ( 1.1.2 NAME 'b' SUP a )\n",
     "SUP loop"),
    ("attributetype ( 1.1.1 NAME 'a' )\n", "no SYNTAX"),
    (f"attributetype ( 1.1.1 NAME 'a' SYNTAX {DSTRING} )\n"
     f"attributetype ( 1.1.2 NAME 'A' SYNTAX {DSTRING} )\n", "defined twice"),
    ("objectclass ( 1.1.1 NAME 'c' MUST nothere )\n", "unknown attribute type 'nothere'"),
    ("objectclass ( 1.1.1 NAME 'c' SUP nothere )\n", "unknown superclass 'nothere'"),
])
def test_inconsistent_schema_raises_schema_error(text: str, message: str) -> None:
    """References that do not resolve, loops and duplicate names raise SchemaError."""
    with pytest.raises(SchemaError, match=re.escape(message)):
        schema_of(text)


def test_malformed_json_raises_schema_error() -> None:
    """A text that is not a schema rendering raises SchemaError, not a JSON or key error."""
    with pytest.raises(SchemaError, match="#2"):
        Schema.from_json_texts([render_json([]), "{}"])


def test_glue2_ids_match_case_exactly() -> None:
    """GLUE 2.0 strings such as GLUE2ServiceID are caseExactMatch with caseExactSubstringsMatch."""
    at = Schema.default().attribute("glue2serviceid")
    assert at is not None
    assert (at.name, at.equality, at.ordering, at.substr, at.syntax, at.single_value) == (
        "GLUE2ServiceID", "caseExactMatch", None, "caseExactSubstringsMatch", DSTRING, True)


def test_glue13_counters_are_ordered_integers() -> None:
    """GLUE 1.3 counters such as GlueCEStateRunningJobs are integerMatch, integerOrderingMatch."""
    at = Schema.default().attribute("GlueCEStateRunningJobs")
    assert at is not None
    assert (at.syntax, at.equality, at.ordering) == (INTEGER, "integerMatch",
                                                     "integerOrderingMatch")


def test_glue13_ids_are_case_ignore_ia5() -> None:
    """GLUE 1.3 identifiers such as GlueCEUniqueID compare with caseIgnoreIA5Match."""
    at = Schema.default().attribute("GLUECEUNIQUEID")
    assert at is not None
    assert (at.syntax, at.equality, at.substr) == (IA5, "caseIgnoreIA5Match",
                                                   "caseIgnoreIA5SubstringsMatch")


def test_lookups_ignore_case_and_accept_aliases_and_oids() -> None:
    """Attribute and class lookups ignore case and accept any alias or the OID."""
    schema = Schema.default()
    assert schema.attribute("OBJECTCLASS") is schema.attribute("2.5.4.0") is not None
    assert schema.object_class("gluece") is schema.object_class("GlueCE") is not None
    assert schema.object_class("mdsvo") is schema.object_class("Mds") is not None
    assert schema.attribute("Mds-Vo-name") is schema.attribute("mds-vo-NAME") is not None
    assert schema.attribute("commonName") is schema.attribute("cn")
    assert schema.attribute("GLUE2GroupName") is schema.attribute("GLUE2GroupID")
    assert schema.attribute("noSuchAttribute") is None
    assert schema.object_class("noSuchClass") is None


def test_o_inherits_case_ignore_match_from_name() -> None:
    """'o' has no rules of its own and takes caseIgnoreMatch from its supertype 'name'."""
    o = Schema.default().attribute("o")
    assert o is not None
    assert (o.sup, o.equality, o.substr, o.syntax) == ("name", "caseIgnoreMatch",
                                                       "caseIgnoreSubstringsMatch", DSTRING)


def test_canonical_name_gives_the_schema_spelling() -> None:
    """canonical_name returns the primary name in schema case, keeps options, passes unknowns."""
    schema = Schema.default()
    assert schema.canonical_name("glue2serviceid") == "GLUE2ServiceID"
    assert schema.canonical_name("commonname") == "cn"
    assert schema.canonical_name("GLUE2GROUPNAME") == "GLUE2GroupID"
    assert schema.canonical_name("description;lang-en") == "description;lang-en"
    assert schema.canonical_name("madeUpAttr") == "madeUpAttr"


def test_all_must_and_may_follow_the_superclass_chain() -> None:
    """all_must/all_may collect the class's and every superclass's attributes once."""
    schema = Schema.default()
    assert set(schema.all_must("GlueCE")) == {"GlueCEUniqueID", "objectClass"}
    may = schema.all_may("glue2computingservice")
    assert "GLUE2ComputingServiceRunningJobs" in may and "GLUE2EntityName" in may
    assert set(schema.all_must("GLUE2ComputingService")) >= {"GLUE2ServiceID",
                                                              "GLUE2ServiceType"}
    with pytest.raises(KeyError):
        schema.all_must("noSuchClass")


def test_operational_attributes_are_marked() -> None:
    """Attributes with a USAGE other than userApplications are operational."""
    schema = Schema.default()
    operational = {a.name for a in schema.attributes if a.operational}
    assert {"createTimestamp", "modifyTimestamp", "entryDN", "hasSubordinates",
            "structuralObjectClass", "subschemaSubentry", "namingContexts",
            "supportedLDAPVersion", "supportedControl", "supportedExtension"} <= operational
    assert not {"objectClass", "GLUE2ServiceID", "GlueCEUniqueID"} & operational
    nc = schema.attribute("namingContexts")
    assert nc is not None and nc.usage == "dSAOperation"


def test_bdii_source_status_class_uses_the_placeholder_arc() -> None:
    """bdiiSource needs bdiiSourceName; its OIDs sit under the placeholder arc the note flags."""
    schema = Schema.default()
    oc = schema.object_class("bdiisource")
    assert oc is not None and oc.must == ("bdiiSourceName",) and oc.kind == "STRUCTURAL"
    when = schema.attribute("bdiiSourceLastSuccess")
    assert when is not None and when.ordering == "generalizedTimeOrderingMatch"
    assert all(schema.attribute(n).oid.startswith("1.3.6.1.4.1.99999.2.")  # type: ignore[union-attr]
               for n in (*oc.must, *oc.may))
    assert "PLACEHOLDER" in json.loads((ROOT / "glue" / "bdii.json").read_text())["note"]
    assert schema.object_class("UpdateStats") is not None  # the legacy BDII's own class


def test_default_schema_is_cached_and_values_are_frozen() -> None:
    """Schema.default() is built once, and its values cannot be changed."""
    schema = Schema.default()
    assert Schema.default() is schema
    at = schema.attribute("cn")
    assert isinstance(at, AttributeType)
    with pytest.raises(dataclasses.FrozenInstanceError):
        at.equality = "caseExactMatch"  # type: ignore[misc]
    assert isinstance(schema.attributes, tuple) and isinstance(schema.object_classes, tuple)


def test_schema_modules_do_not_import_twisted() -> None:
    """The schema parser and model are sans-I/O core modules: no Twisted."""
    code = ("import sys, bdii.core.schema, bdii.core.schemafile; "
            "sys.exit('twisted' in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- agreement with the published schema files --------------------------------

def _definitions(text: str) -> list[tuple[str, str]]:
    """Split a .schema file by parenthesis balance (an independent reading of the format)."""
    text = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    found = []
    for m in re.finditer(r"(?im)^(attributetype|objectclass)\s*\(", text):
        depth, quoted, i = 0, False, m.end() - 1
        while True:
            c = text[i]
            quoted = quoted != (c == "'")
            depth += (not quoted) * ((c == "(") - (c == ")"))
            i += 1
            if depth == 0:
                break
        body = re.sub(r"\s+", " ", text[m.end() - 1:i])
        found.append((m.group(1).lower(), "( " + body[1:-1].strip() + " )"))
    return found


def _oracle(paths: list[Path]) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """What ldap3's RFC 4512 parser reads from the files, keyed by OID."""
    from ldap3.protocol.rfc4512 import AttributeTypeInfo, ObjectClassInfo

    def first(v: Any) -> Any:
        return v[0] if isinstance(v, list) else v

    def names(v: Any) -> list[str]:
        return [n.strip("'") for n in (v or [])]

    ats: dict[str, tuple[Any, ...]] = {}
    ocs: dict[str, tuple[Any, ...]] = {}
    kinds = {0: "STRUCTURAL", 1: "ABSTRACT", 2: "AUXILIARY", None: "STRUCTURAL"}
    for path in paths:
        for kind, definition in _definitions(path.read_text(encoding="utf-8")):
            if kind == "attributetype":
                [at] = set(AttributeTypeInfo.from_definition([definition]).values())
                ats[at.oid] = (names(at.name), first(at.equality), first(at.ordering),
                               first(getattr(at, "substr", None)),  # ldap3 stores SUBSTR there
                               at.syntax, bool(at.single_value))
            else:
                [oc] = set(ObjectClassInfo.from_definition([definition]).values())
                ocs[oc.oid] = (names(oc.name), kinds.get(oc.kind, oc.kind),
                               names(oc.superior), names(oc.must_contain),
                               names(oc.may_contain))
    return ats, ocs


def _installed_sources(target: str) -> list[Path]:
    paths = [Path(f) for f in TARGETS[target].files if not f.startswith("@")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the committed glue/{target} is checked "
                    "against Debian's published schema; run `apt-get install glue-schema`",
                    pytrace=False)
    return paths


@pytest.mark.parametrize("target", ["glue13.json", "glue20.json"])
def test_committed_glue_json_agrees_with_published_schema(target: str) -> None:
    """Every attribute and class in glue/*.json has the published OID, names, rules and lists."""
    paths = _installed_sources(target)
    want_ats, want_ocs = _oracle(paths)
    doc = json.loads((ROOT / "glue" / target).read_text(encoding="utf-8"))
    got_ats = {a["oid"]: (a["names"], a["equality"], a["ordering"], a["substr"], a["syntax"],
                          a["single_value"]) for a in doc["attributes"]}
    got_ocs = {o["oid"]: (o["names"], o["kind"], o["sup"], o["must"], o["may"])
               for o in doc["objectclasses"]}
    assert len(got_ats) == len(doc["attributes"]) and len(got_ocs) == len(doc["objectclasses"])
    assert got_ats == want_ats
    assert got_ocs == want_ocs


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_committed_json_is_what_render_makes(target: str) -> None:
    """Re-rendering from the installed schema files reproduces each committed JSON exactly."""
    from bdii.glue import render

    if target.startswith("glue"):
        _installed_sources(target)
    else:
        missing = [f for f in TARGETS[target].files if not f.startswith("@") and not Path(f).exists()]
        assert not missing, f"sources of {target} not installed: apt-get install bdii slapd ({missing})"
    files = [render._read(f) for f in TARGETS[target].files]
    expected = render_json(files, note=TARGETS[target].note, only=TARGETS[target].only)
    assert (ROOT / "glue" / target).read_text(encoding="utf-8") == expected
