"""The LDIF reader and writer (RFC 2849) as pure functions on bytes and text."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bdii.core.ldif import (
    ChangeRecord,
    EntryRecord,
    Modification,
    format_line,
    format_record,
    needs_base64,
    parse_ldif,
)

import strategies as s

FAST = settings(max_examples=100, deadline=None)


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def only_entry(text: str | bytes) -> EntryRecord:
    result = parse_ldif(text, "test.ldif")
    assert result.problems == ()
    [record] = result.records
    assert isinstance(record, EntryRecord)
    return record


# --- reading ------------------------------------------------------------------

def test_plain_record_keeps_dn_attributes_and_order() -> None:
    """A record gives its DN, its attribute lines in file order, and its first line number."""
    rec = only_entry("\ndn: o=grid\nobjectClass: organization\no: grid\n")
    assert rec == EntryRecord("o=grid", (("objectClass", "organization"), ("o", "grid")), 2)


def test_folded_value_is_unfolded() -> None:
    """A line starting with one space continues the previous line; that space is dropped."""
    rec = only_entry("dn: o=grid\ndescription: hello\n  world\n")
    assert rec.attrs == (("description", "hello world"),)


def test_fold_inside_dn() -> None:
    """A DN folded across lines is read whole."""
    rec = only_entry("dn: GlueCEUniqueID=ce.example.org:2119/jobmanager,mds-vo-na\n me=resource,o=grid\n"
                     "objectClass: GlueCE\n")
    assert rec.dn == "GlueCEUniqueID=ce.example.org:2119/jobmanager,mds-vo-name=resource,o=grid"


def test_fold_inside_base64_value() -> None:
    """A base64 value folded in the middle of its encoding decodes to the whole text."""
    enc = b64("Grille de calcul — données")
    rec = only_entry(f"dn: o=grid\ndescription:: {enc[:7]}\n {enc[7:]}\n")
    assert rec.attrs == (("description", "Grille de calcul — données"),)


def test_base64_values_are_utf8() -> None:
    """`::` values (DN and attributes) are base64 of UTF-8 text."""
    rec = only_entry(f"dn:: {b64('o=grille-é')}\ndescription:: {b64('  Zürich: ok ')}\n")
    assert rec.dn == "o=grille-é"
    assert rec.attrs == (("description", "  Zürich: ok "),)


def test_url_value_is_refused_and_other_records_kept() -> None:
    """A `:<` URL value skips its record with a problem naming source and line; the rest stay."""
    data = ("dn: o=a,o=grid\no: a\n\n"
            "dn: o=b,o=grid\nphoto:< file:///etc/passwd\n\n"
            "dn: o=c,o=grid\no: c\n")
    result = parse_ldif(data, "site.ldif")
    assert [r.dn for r in result.records] == ["o=a,o=grid", "o=c,o=grid"]
    [problem] = result.problems
    assert (problem.where, problem.line) == ("site.ldif", 5)
    assert "':<'" in problem.message or "URL" in problem.message
    assert str(problem).startswith("site.ldif:5: ")


def test_comments_are_ignored_even_when_folded() -> None:
    """`#` lines, and the continuation lines of a folded comment, are not data."""
    rec = only_entry("# a comment\ndn: o=grid\n# another one that is\n  folded: over two lines\n"
                     "o: grid\n")
    assert rec.attrs == (("o", "grid"),)


def test_version_line_is_accepted() -> None:
    """An initial `version: 1` line is not a record and raises no problem."""
    result = parse_ldif("version: 1\n\ndn: o=grid\no: grid\n", "v.ldif")
    assert result.problems == ()
    assert [r.dn for r in result.records] == ["o=grid"]
    assert only_entry("version: 1\ndn: o=grid\no: grid\n").dn == "o=grid"


def test_crlf_line_ends() -> None:
    """CRLF files read exactly like LF files, folding included."""
    lf = "dn: o=grid\ndescription: a\n  b\n\ndn: o=glue\no: glue\n"
    assert parse_ldif(lf.replace("\n", "\r\n").encode(), "x").records == parse_ldif(lf, "x").records
    assert only_entry("dn: o=grid\r\ndescription: a\r\n  b\r\n").attrs == (("description", "a b"),)


def test_several_blank_lines_separate_records() -> None:
    """Runs of blank lines (leading, between, trailing) are one separator."""
    result = parse_ldif("\n\n\ndn: o=a\no: a\n\n\n\n\ndn: o=b\no: b\n\n\n", "x")
    assert result.problems == ()
    assert [(r.dn, r.line) for r in result.records] == [("o=a", 4), ("o=b", 10)]


def test_changetype_modify_with_every_operation() -> None:
    """A modify record lists add, replace and delete modifications split by `-` lines."""
    data = ("dn: GlueCEUniqueID=ce1,mds-vo-name=resource,o=grid\nchangetype: modify\n"
            "add: GlueCEAccessControlBaseRule\nGlueCEAccessControlBaseRule: VO:atlas\n"
            "GlueCEAccessControlBaseRule: VO:cms\n-\n"
            "replace: GlueCEStateStatus\nGlueCEStateStatus: Draining\n-\n"
            "delete: GlueCEInfoContactString\nGlueCEInfoContactString: old\n-\n"
            "delete: GlueCEStateFreeCPUs\n-\n")
    [rec] = parse_ldif(data, "plugin").records
    assert rec == ChangeRecord(
        "GlueCEUniqueID=ce1,mds-vo-name=resource,o=grid", "modify", 1,
        mods=(Modification("add", "GlueCEAccessControlBaseRule", ("VO:atlas", "VO:cms")),
              Modification("replace", "GlueCEStateStatus", ("Draining",)),
              Modification("delete", "GlueCEInfoContactString", ("old",)),
              Modification("delete", "GlueCEStateFreeCPUs", ())))


def test_modify_without_trailing_separator() -> None:
    """The last modification of a modify record needs no closing `-`."""
    [rec] = parse_ldif("dn: o=grid\nchangetype: modify\nreplace: o\no: grid\n", "p").records
    assert rec.mods == (Modification("replace", "o", ("grid",)),)


def test_changetype_add_and_delete() -> None:
    """`changetype: add` carries attributes; `changetype: delete` carries none."""
    data = "dn: o=x,o=grid\nchangetype: add\no: x\n\ndn: o=y,o=grid\nchangetype: delete\n"
    add, delete = parse_ldif(data, "p").records
    assert add == ChangeRecord("o=x,o=grid", "add", 1, attrs=(("o", "x"),))
    assert delete == ChangeRecord("o=y,o=grid", "delete", 5)


def test_plain_plugin_form_is_an_entry_record() -> None:
    """A DN followed by attributes (the legacy plugin form) reads as a plain entry record."""
    rec = only_entry("dn: GlueCEUniqueID=ce1,mds-vo-name=resource,o=grid\nGlueCEStateStatus: Closed\n")
    assert rec.attrs == (("GlueCEStateStatus", "Closed"),)


def test_record_without_dn_is_skipped_with_its_line() -> None:
    """A record that does not start with `dn:` is reported at its first line; the rest are kept."""
    result = parse_ldif("dn: o=a\no: a\n\nobjectClass: top\no: b\n\ndn: o=c\no: c\n", "prov")
    assert [r.dn for r in result.records] == ["o=a", "o=c"]
    [problem] = result.problems
    assert (problem.where, problem.line) == ("prov", 4)
    assert "dn:" in problem.message


def test_bad_base64_and_bad_lines_are_problems() -> None:
    """Undecodable base64 and lines without a colon skip only their own record."""
    result = parse_ldif("dn: o=a\ndescription:: !!!\n\ndn: o=b\njust text\n\ndn: o=c\no: c\n", "p")
    assert [r.dn for r in result.records] == ["o=c"]
    assert [p.line for p in result.problems] == [2, 5]


def test_binary_file_is_refused_as_a_whole() -> None:
    """Binary data (NUL bytes) gives no records and one problem naming the source."""
    result = parse_ldif(b"dn: o=grid\no: grid\n\n\x00\x01\x02\xff" * 3, "core.dump")
    assert result.records == ()
    [problem] = result.problems
    assert problem.where == "core.dump"
    assert "binary" in problem.message


def test_invalid_utf8_skips_the_record() -> None:
    """Bytes that are not UTF-8 skip their record, not the file."""
    result = parse_ldif(b"dn: o=a\no: \xff\xfe\n\ndn: o=b\no: b\n", "p")
    assert [r.dn for r in result.records] == ["o=b"]
    assert [p.line for p in result.problems] == [2]


def test_continuation_line_of_spaces_is_not_a_separator() -> None:
    """A folded line holding only spaces continues the value (RFC 2849: only an empty line separates)."""
    rec = only_entry("dn: o=grid\ndescription: a\n      \n b\n")
    assert rec.attrs == (("description", "a     b"),)


# --- writing ------------------------------------------------------------------

@pytest.mark.parametrize("value", [" lead", ":colon", "<angle", "trail ", "café", "a\nb", "a\rb",
                                   "nul\x00", "漢字"])
def test_values_that_rfc2849_forbids_as_safe_strings_are_base64(value: str) -> None:
    """Leading space, ':' or '<', trailing space, non-ASCII, CR, LF and NUL force base64."""
    assert needs_base64(value)
    assert format_line("description", value) == f"description:: {b64(value)}"


@pytest.mark.parametrize("value", ["plain", "a:b", "a<b", "in ner", "#hash", "-", "", "x=y,z"])
def test_safe_strings_are_written_plain(value: str) -> None:
    """Safe strings, including ':' and '<' after the first character, are written as they are."""
    assert not needs_base64(value)
    assert format_line("description", value).rstrip() == f"description: {value}".rstrip()


def test_long_lines_fold_at_76() -> None:
    """No written line is longer than 76 characters, and unfolding gives the line back."""
    text = format_line("GLUE2EntityOtherInfo", "x" * 500)
    physical = text.split("\n")
    assert len(physical) > 1
    assert all(len(line) <= 76 for line in physical)
    assert len(physical[0]) == 76
    assert all(line.startswith(" ") for line in physical[1:])
    assert physical[0] + "".join(line[1:] for line in physical[1:]) == "GLUE2EntityOtherInfo: " + "x" * 500


def test_format_record_ends_with_blank_line() -> None:
    """A written record is its lines followed by one empty line."""
    assert format_record("o=grid", [("objectClass", ["organization"]), ("o", ["grid"])]) == \
        "dn: o=grid\nobjectClass: organization\no: grid\n\n"


# --- properties -----------------------------------------------------------------

@FAST
@given(st.lists(s.ldif_entries, min_size=1, max_size=4))
def test_parse_of_format_is_identity(records: list) -> None:
    """Writing entries and reading them back gives the same DNs and attribute values."""
    records = [(dn, [(a, v) for a, v in pairs if a.lower() not in ("dn", "changetype")] or [("o", "x")])
               for dn, pairs in records]
    text = "".join(format_record(dn, [(a, [v]) for a, v in pairs]) for dn, pairs in records)
    result = parse_ldif(text.encode("utf-8"), "roundtrip")
    assert result.problems == ()
    assert [(r.dn, list(r.attrs)) for r in result.records] == records
    assert all(len(line) <= 76 for line in text.split("\n"))


@FAST
@given(st.text(), st.integers(10, 100))
def test_any_value_survives_any_fold_width(value: str, width: int) -> None:
    """Every value, folded at any width, reads back unchanged."""
    [rec] = parse_ldif(format_record("o=grid", [("description", [value])], width=width), "w").records
    assert rec.attrs == (("description", value),)


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([b"dn: o=grid", b"dn:: bz1n", b" folded", b"-", b"#c", b"changetype: modify",
                              b"changetype: add", b"changetype: delete", b"changetype: x", b"add: o",
                              b"replace: o", b"delete: o", b"o: x", b"o:: \xff", b"o:< file:/x",
                              b"version: 1", b"", b"\r", b"\xc3", b"x"]), max_size=20).map(b"\n".join),
))
def test_any_bytes_give_records_or_problems_never_an_exception(data: bytes) -> None:
    """Whatever the bytes, the reader returns records and problems; it never raises."""
    result = parse_ldif(data, "fuzz")
    assert all(p.where == "fuzz" for p in result.problems)
    assert all(isinstance(r, (EntryRecord, ChangeRecord)) for r in result.records)


@FAST
@given(st.lists(s.ldif_entries, min_size=1, max_size=3), st.randoms(use_true_random=False))
def test_comment_lines_never_change_the_records(records: list, rnd) -> None:
    """Comment lines (folded or not) inserted between lines of records leave the records unchanged."""
    text = "".join(format_record(dn, [(a, [v]) for a, v in pairs if a.lower() not in ("dn", "changetype")])
                   for dn, pairs in records)
    lines = text.split("\n")
    commented = []
    for line in lines:
        # A comment may go before any line that is not a continuation or the blank separator.
        if line and not line.startswith(" ") and rnd.random() < 0.5:
            commented.append("# comment: " + "x" * rnd.randint(0, 80))
            if rnd.random() < 0.5:
                commented.append(" folded part of the comment")
        commented.append(line)
    plain, with_comments = parse_ldif(text, "a"), parse_ldif("\n".join(commented), "a")
    assert with_comments.problems == plain.problems == ()
    assert [(r.dn, r.attrs) for r in with_comments.records] == [(r.dn, r.attrs) for r in plain.records]
