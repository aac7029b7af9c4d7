"""Distinguished names (RFC 4514), parsed once into RDN lists.

A `DN` keeps the attribute types and values as the source wrote them (that is
what clients get back) and a normalised `key` that drives equality, hashing
and ordering: attribute types resolved through the schema and lower-cased,
values prepared with the attribute's EQUALITY rule (RFC 4517/4518). So
`Mds-Vo-Name = local , O=grid` and `mds-vo-name=local,o=grid` are the same
DN, while `GLUE2GroupID=Resource` and `GLUE2GroupID=resource` are not
(GLUE 2.0 IDs are case-exact), exactly as OpenLDAP decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import DNError
from .matching import ava_key, matcher

# RFC 4514 section 2.4: characters escaped when rendering a value.
_SPECIAL = frozenset(',+"\\<>;=')
_HEX = frozenset("0123456789abcdefABCDEF")
_DESCR = re.compile(r"[A-Za-z][A-Za-z0-9-]*\Z|[0-9]+(\.[0-9]+)*\Z")

AVA = tuple[str, str]  # (attribute type as written, value)
RDN = tuple[AVA, ...]


_GOOD_TYPES: set[str] = set()


def _check_type(attr: str, text: str) -> str:
    if attr in _GOOD_TYPES:
        return attr
    raw = attr
    attr = attr.strip()
    if attr[:4].lower() == "oid.":  # RFC 2253 allowed an "OID." prefix
        attr = attr[4:]
    if not _DESCR.match(attr):
        raise DNError(f"invalid attribute type {attr!r} in DN {text!r}")
    if raw == attr and len(_GOOD_TYPES) < 10_000:
        _GOOD_TYPES.add(attr)
    return attr


def _parse_value(text: str, i: int, whole: str) -> tuple[str, int]:
    """Read one attribute value starting at `i`; return it and the end index.

    Handles `\\` + special character, `\\` + two hex digits (collected as
    UTF-8 bytes), quoted values (RFC 1779, still seen in the wild) and the
    insignificant spaces around the value.
    """
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    if i < n and text[i] == '"':
        j = i + 1
        out: list[str] = []
        while j < n and text[j] != '"':
            if text[j] == "\\" and j + 1 < n:
                j += 1
            out.append(text[j])
            j += 1
        if j >= n:
            raise DNError(f"unterminated quoted value in DN {whole!r}")
        j += 1
        while j < n and text[j] == " ":
            j += 1
        if j < n and text[j] not in ",+;":
            raise DNError(f"text after quoted value in DN {whole!r}")
        return "".join(out), j
    buf = bytearray()
    last_significant = 0  # length of buf up to the last escaped/non-space char
    while i < n:
        c = text[i]
        if c in ",+;":
            break
        if c == "\\":
            if i + 1 >= n:
                raise DNError(f"DN ends with a lone backslash: {whole!r}")
            nxt = text[i + 1]
            if nxt in _HEX and i + 2 < n and text[i + 2] in _HEX:
                buf.append(int(text[i + 1 : i + 3], 16))
                i += 3
            elif nxt in _SPECIAL or nxt in " #":
                buf += nxt.encode()
                i += 2
            else:
                raise DNError(f"invalid escape \\{nxt} in DN {whole!r}")
            last_significant = len(buf)
            continue
        if c in '"<>' and not buf:
            raise DNError(f"unescaped {c!r} in DN {whole!r}")
        buf += c.encode()
        if c != " ":
            last_significant = len(buf)
        i += 1
    try:
        value = bytes(buf[:last_significant]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DNError(f"hex escapes are not valid UTF-8 in DN {whole!r}") from exc
    return value, i


def _parse(text: str) -> tuple[RDN, ...]:
    s = text.strip()
    if s.endswith("\\") and (len(s) - len(s.rstrip("\\"))) % 2:
        # An escaped trailing space (`cn=a\ `) belongs to the value.
        s = text.lstrip()[: len(s) + 1]
    if not s:
        return ()
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: not text at all
            raise DNError(f"DN is not valid Unicode text: {text!r}") from exc
    if "\\" not in s and '"' not in s and "+" not in s and ";" not in s:
        # Fast path: the overwhelming majority of GLUE DNs need no unescaping.
        rdns = []
        for part in s.split(","):
            attr, sep, value = part.partition("=")
            if not sep:
                raise DNError(f"RDN {part.strip()!r} has no '=' in DN {text!r}")
            rdns.append(((_check_type(attr, text), value.strip()),))
        return tuple(rdns)
    rdns_l: list[RDN] = []
    avas: list[AVA] = []
    i, n = 0, len(s)
    while True:
        eq = s.find("=", i)
        if eq < 0:
            raise DNError(f"RDN {s[i:].strip()!r} has no '=' in DN {text!r}")
        attr = _check_type(s[i:eq], text)
        value, i = _parse_value(s, eq + 1, text)
        avas.append((attr, value))
        if i >= n:
            rdns_l.append(tuple(avas))
            break
        sep = s[i]
        i += 1
        if sep in ",;":
            rdns_l.append(tuple(avas))
            avas = []
        if i >= n:
            raise DNError(f"DN ends with a separator: {text!r}")
    return tuple(rdns_l)


_NEEDS_ESCAPE = re.compile(r'[,+"\\<>;=\x00]|^[ #]| $')


_HEX_ESCAPES = {c: f"\\{ord(c):02X}" for c in ',+"\\<>;=\x00'}


def escape_value(value: str) -> str:
    """Render a value for a DN string (RFC 4514 section 2.4) as slapd does:
    special characters as upper-case hex pairs (`a\\2Cb`), so DNs we
    return are byte for byte the ones an OpenLDAP BDII returns."""
    if not value or not _NEEDS_ESCAPE.search(value):
        return value
    out = "".join(_HEX_ESCAPES.get(ch, ch) for ch in value)
    if out[0] in " #":
        out = f"\\{ord(out[0]):02X}" + out[1:]
    if out[-1] == " ":
        out = out[:-1] + "\\20"
    return out


def _render(rdns: tuple[RDN, ...]) -> str:
    # As slapd shows DNs: attribute types in schema spelling, no spaces,
    # values escaped per RFC 4514.
    return ",".join(
        "+".join(f"{matcher(a).name}={escape_value(v)}" for a, v in rdn) for rdn in rdns
    )


# RDNs near the root repeat in every DN of a tree (`o=glue`,
# `GLUE2GroupID=grid`, a site's name...): their parsed form and key are
# computed once and the same tuples shared by every DN (time and memory).
_RDN_CACHE: dict[RDN, tuple[RDN, tuple]] = {}
_RDN_CACHE_MAX = 500_000


def _shared(rdns: tuple[RDN, ...]) -> tuple[tuple[RDN, ...], tuple]:
    cache = _RDN_CACHE
    out_rdns = []
    out_key = []
    for i, r in enumerate(rdns):
        hit = cache.get(r) if i else None
        if hit is None and not i:
            hit = (r, _rdn_key(r))  # the leaf is unique: not worth caching
        elif hit is None:
            if len(cache) >= _RDN_CACHE_MAX:
                cache.clear()
            hit = cache[r] = (r, _rdn_key(r))
        out_rdns.append(hit[0])
        out_key.append(hit[1])
    return tuple(out_rdns), tuple(out_key)


# The parent part of a DN as written (what follows the first comma) -> its
# parsed RDNs and key: the DNs of a tree repeat their parents' text, so a
# load parses the leaf RDN only. Kept only for text the fast path of
# `_parse` reads (no escapes, quotes, multi-valued or ';'-separated RDNs),
# where each comma-separated part is read on its own.
_TAILS: dict[str, tuple[tuple[RDN, ...], tuple]] = {}
_SPECIAL_IN = re.compile(r'[\\"+;]').search


def _rdn_key(rdn: RDN) -> tuple:
    return tuple(sorted(ava_key(a, v) for a, v in rdn))


@dataclass(frozen=True, slots=True, eq=False)
class DN:
    """An immutable DN; equality, hashing and ordering come from `key`.

    `rdns` run from the leaf to the suffix, as in the string form.
    """

    rdns: tuple[RDN, ...]
    key: tuple = field(repr=False)
    text: str = field(default="", repr=False)
    # hash(key), kept on first use: a refresh looks DNs up in dicts a dozen
    # times each, and hashing the nested key tuples dominated those lookups.
    hashed: int = field(default=0, repr=False)

    @classmethod
    def parse(cls, text: str) -> DN:
        """Parse RFC 4514 text; raise `DNError` with the reason otherwise."""
        s = text.strip()
        head, comma, tail = s.partition(",")
        if comma:
            hit = _TAILS.get(tail)
            if hit is not None and head.isascii() and not _SPECIAL_IN(head):
                attr, eq, value = head.partition("=")
                if eq:
                    leaf = ((_check_type(attr, text), value.strip()),)
                    return cls((leaf, *hit[0]), (_rdn_key(leaf), *hit[1]))
        rdns, key = _shared(_parse(text))
        if comma and len(rdns) > 1 and not _SPECIAL_IN(s):
            if len(_TAILS) >= _RDN_CACHE_MAX:
                _TAILS.clear()
            _TAILS[tail] = (rdns[1:], key[1:])
        return cls(rdns, key)

    @classmethod
    def from_rdns(cls, rdns: Iterable[RDN]) -> DN:
        return cls(*_shared(tuple(rdns)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DN) and self.key == other.key

    def __hash__(self) -> int:
        h = self.hashed
        if not h:
            h = hash(self.key)
            object.__setattr__(self, "hashed", h)
        return h

    def __lt__(self, other: DN) -> bool:
        return self.sort_key < other.sort_key

    def __len__(self) -> int:
        return len(self.rdns)

    def __bool__(self) -> bool:
        return bool(self.rdns)

    def __str__(self) -> str:
        # Rendered on first use only: most DNs built while merging are
        # never shown to a client.
        if not self.text and self.rdns:
            object.__setattr__(self, "text", _render(self.rdns))
        return self.text

    @property
    def sort_key(self) -> tuple:
        """Suffix first, so a subtree is a contiguous run in sorted order."""
        return self.key[::-1]

    @property
    def rdn_values(self) -> RDN:
        return self.rdns[0] if self.rdns else ()

    def parent(self) -> DN | None:
        if not self.rdns:
            return None
        return DN(self.rdns[1:], self.key[1:])

    def ancestors(self) -> Iterator[DN]:
        """Parent, grandparent, ... up to (and including) the one-RDN suffix."""
        for i in range(1, len(self.rdns)):
            yield DN(self.rdns[i:], self.key[i:])

    def is_within(self, base: DN) -> bool:
        """True if self is `base` or below it."""
        n = len(base.key)
        return n <= len(self.key) and (n == 0 or self.key[-n:] == base.key)

    def child(self, rdn: RDN) -> DN:
        return DN((rdn, *self.rdns), (_rdn_key(rdn), *self.key))

    def replace_suffix(self, old: DN, new: DN) -> DN:
        """Rewrite on RDN lists: `X,old` becomes `X,new`."""
        if not self.is_within(old):
            raise ValueError(f"{self} is not under {old}")
        keep = len(self.rdns) - len(old.rdns)
        return DN(self.rdns[:keep] + new.rdns, self.key[:keep] + new.key)
