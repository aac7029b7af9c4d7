"""Schema-aware matching rules (RFC 4517, string preparation per RFC 4518).

Each attribute's EQUALITY, ORDERING and SUBSTR rules, as the GLUE schemas
declare them, decide how values compare: GLUE 2.0 strings are case-exact,
GLUE 1.3 IA5 strings case-insensitive, integers compare as integers. An
attribute with no rule of the needed kind gives Undefined (None) exactly
as OpenLDAP does; attributes the schema does not know fall back to
case-insensitive strings.

A `Matcher` bundles the prepared functions for one attribute so that a
filter compiles once and evaluates many times without schema lookups.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .schema import Schema

Norm = Callable[[str], Any]  # returns a comparable value, or None if invalid


def _space(value: str) -> str:
    # RFC 4518 section 2.6.1: leading/trailing spaces removed, runs of
    # inner spaces compared as one; section 2.2: tab, CR, LF and the other
    # separators map to space (all of them are non-printable for Python).
    if "  " in value or value[:1] == " " or value[-1:] == " " or not value.isprintable():
        return " ".join(value.split())
    return value


def case_ignore(value: str) -> str:
    v = _space(value)
    low = v.lower()
    # Hand back the value itself when it is already prepared, so that
    # index keys share the entries' strings instead of copying them.
    return v if low == v else low


def case_exact(value: str) -> str:
    return _space(value)


_INTEGER = re.compile(r"0|-?[1-9][0-9]*")


def integer(value: str) -> int | None:
    # RFC 4517 section 3.3.16: ASCII digits, no sign but '-', no leading
    # zero (slapd finds nothing for `(GlueCEStateRunningJobs=010)`); int()
    # alone would also take "+5", "010", "1_000" and digits such as "٣".
    v = value.strip()
    if not _INTEGER.fullmatch(v):
        return None
    try:
        return int(v)
    except ValueError:  # more digits than int() converts
        return None


def boolean(value: str) -> str | None:
    v = value.strip()
    return v if v in ("TRUE", "FALSE") else None


def numeric_string(value: str) -> str:
    return value.replace(" ", "")


def telephone(value: str) -> str:
    return re.sub(r"[\s-]", "", value).lower()


_GTIME = re.compile(
    r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{2}(?:\d{2})?)?\Z"
)


def generalized_time(value: str) -> datetime | None:
    """RFC 4517 section 3.3.13, normalised to an aware UTC datetime."""
    m = _GTIME.match(value.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        t = datetime(int(y), int(mo), int(d), int(h), int(mi or 0), int(s or 0))
    except ValueError:
        return None
    try:
        if frac:
            t += timedelta(seconds=float("0." + frac))
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            t -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5] or 0))
    except OverflowError:  # e.g. 99991231235959-2359 is past year 9999 in UTC
        return None
    return t.replace(tzinfo=timezone.utc)


@functools.lru_cache(maxsize=4096)
def object_class_key(value: str) -> str:
    # objectIdentifierMatch: names and OIDs of the same class are equal.
    name = value.strip()
    oc = Schema.default().object_class(name)
    return oc.oid if oc is not None else name.lower()


def _dn(value: str) -> Any:
    from .dn import DN  # dn imports this module

    try:
        return DN.parse(value).key
    except ValueError:
        return None


EQUALITY: dict[str, Norm] = {
    "caseignorematch": case_ignore,
    "caseignoreia5match": case_ignore,
    "caseignorelistmatch": case_ignore,
    "caseexactmatch": case_exact,
    "caseexactia5match": case_exact,
    "integermatch": integer,
    "booleanmatch": boolean,
    "numericstringmatch": numeric_string,
    "telephonenumbermatch": telephone,
    "generalizedtimematch": generalized_time,
    "objectidentifiermatch": object_class_key,
    "distinguishednamematch": _dn,
    "octetstringmatch": lambda v: v,
    "uniquemembermatch": _dn,
}
ORDERING: dict[str, Norm] = {
    "integerorderingmatch": integer,
    "generalizedtimeorderingmatch": generalized_time,
    "caseignoreorderingmatch": case_ignore,
    "caseexactorderingmatch": case_exact,
    "numericstringorderingmatch": numeric_string,
    "octetstringorderingmatch": lambda v: v,
}
SUBSTR: dict[str, Norm] = {
    "caseignoresubstringsmatch": case_ignore,
    "caseignoreia5substringsmatch": case_ignore,
    "caseexactsubstringsmatch": case_exact,
    "caseexactia5substringsmatch": case_exact,
    "numericstringsubstringsmatch": numeric_string,
    "telephonenumbersubstringsmatch": telephone,
    "caseignorelistsubstringsmatch": case_ignore,
}


@dataclass(frozen=True, slots=True)
class Matcher:
    """How one attribute type compares; None means "no such rule"."""

    key: str  # lower-cased canonical attribute name
    name: str  # the schema's spelling, what clients get back
    equality: Norm | None
    ordering: Norm | None
    substr: Norm | None
    known: bool
    approx: bool = False  # string syntax: `~=` compares words, see approx_match


_UNKNOWN = (case_ignore, case_ignore, case_ignore)

# Syntaxes whose values slapd compares word by word for `~=`
# (directoryStringApproxMatch, IA5StringApproxMatch).
_APPROX_SYNTAXES = frozenset({"1.3.6.1.4.1.1466.115.121.1.15", "1.3.6.1.4.1.1466.115.121.1.26",
                              "1.3.6.1.4.1.1466.115.121.1.44"})


def approx_words(value: str) -> tuple[str, ...]:
    return tuple(value.casefold().split())


def approx_match(value: str, assertion: tuple[str, ...]) -> bool:
    """slapd's approxMatch without the phonetic codes: every word of the
    assertion appears among the value's words, in the same order, compared
    case-insensitively. slapd also compares words by their metaphone code,
    so it can match more ("Smyth" ~= "Smith"); no client relies on that."""
    words = approx_words(value)
    j = 0
    for w in assertion:
        while j < len(words) and words[j] != w:
            j += 1
        if j >= len(words):
            return False
        j += 1
    return bool(assertion)


@functools.lru_cache(maxsize=16384)
def matcher(attr: str) -> Matcher:
    """The matcher of an attribute type given by name or OID (any case)."""
    at = Schema.default().attribute(attr)
    if at is None:
        eq, od, sb = _UNKNOWN
        return Matcher(attr.lower(), attr, eq, od, sb, known=False, approx=True)
    return Matcher(
        at.key,
        at.name,
        EQUALITY.get((at.equality or "").lower()),
        ORDERING.get((at.ordering or "").lower()),
        SUBSTR.get((at.substr or "").lower()),
        known=True,
        approx=at.equality is not None and (at.syntax or "") in _APPROX_SYNTAXES,
    )


def attr_key(attr: str) -> str:
    """Lower-cased canonical name: the key under which entries store values."""
    return matcher(attr).key


def ava_key(attr: str, value: str) -> tuple[str, Any]:
    """Normalised (type, value) of one RDN component, as slapd compares DNs.

    DN keys (`objectIdentifierMatch` aside) stay text so they always sort.
    """
    m = matcher(attr)
    norm = m.equality(value) if m.equality is not None else None
    return (m.key, value if norm is None else key_text(norm))


def key_text(norm: Any) -> str:
    """A prepared value as DN keys hold it: keys must sort against each
    other whatever the syntax, so ints and times become their canonical text."""
    if isinstance(norm, str):
        return norm
    return norm.isoformat() if isinstance(norm, datetime) else str(norm)
