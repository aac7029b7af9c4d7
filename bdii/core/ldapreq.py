"""A fast decoder for LDAP search requests (RFC 4511 section 4.5.1).

ldaptor decodes BER through a tree of Python objects, one class lookup and
several copies of the remaining bytes per element: about 50 µs for a typical
search request, before we even convert its filter to our own AST. Searches
are the server's hot path, so they are decoded here straight from the frame
into `SearchRequest` and `bdii.core.filters` nodes. Every other request
(bind, unbind, abandon, extended, writes) is left to ldaptor:
`decode_search` returns None for them.

Text is decoded as UTF-8 with surrogateescape, as the ldaptor path does, so
the result is the same as ldaptor's decoding followed by our conversions.
Where ldaptor is lenient about structure (unknown tags skipped, any tag
accepted where a string is expected, the constructed bit ignored) this
decoder is strict and raises `RequestError`; where ldaptor accepts what the
filter conversion then interprets (substring parts in any order, the last
initial or final winning), it does the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from .filters import (
    And,
    Approx,
    Equality,
    Extensible,
    Filter,
    GreaterOrEqual,
    LessOrEqual,
    Not,
    Or,
    Present,
    Substrings,
)

SEARCH_REQUEST = 0x63  # [APPLICATION 3], constructed

# Filters nest by recursion, here and in the compiler: deeper ones are
# refused rather than left to hit the interpreter's limit. (ldaptor gets to
# about 330 levels of AND/OR, 490 of NOT, before its RecursionError; real
# clients nest a handful.)
MAX_DEPTH = 256


class RequestError(ValueError):
    """Bytes that are not a well-formed LDAP request."""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    msgid: int
    base: str
    scope: int  # passed through: the server answers protocolError for a bad one
    deref: int
    size_limit: int
    time_limit: int
    types_only: bool
    filter: Filter
    attributes: tuple[str, ...]
    controls: tuple[tuple[str, bool], ...]  # (OID, criticality)


def _read(buf: bytes, pos: int, end: int, want: int) -> tuple[int, int]:
    """(start, end) of the content of the element at `pos`, which must have
    tag `want` and end within `end`."""
    if pos + 2 > end:
        raise RequestError(f"truncated element (expected tag 0x{want:02x})")
    tag = buf[pos]
    if tag != want:
        raise RequestError(f"expected tag 0x{want:02x}, got 0x{tag:02x}")
    n = buf[pos + 1]
    pos += 2
    if n > 0x7F:
        k = n - 0x80
        if not k or pos + k > end:
            raise RequestError("bad length")
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > end:
        raise RequestError(f"element 0x{tag:02x} runs past its container")
    return pos, pos + n


# _string and _int read the usual short forms inline (a function call is a
# good part of the cost of an element); anything else goes through _read.


def _string(buf: bytes, pos: int, end: int, want: int = 0x04) -> tuple[str, int]:
    if pos + 2 <= end and buf[pos] == want:
        e = pos + 2 + buf[pos + 1]
        if e <= end and buf[pos + 1] < 0x80:
            return buf[pos + 2:e].decode("utf-8", "surrogateescape"), e
    s, e = _read(buf, pos, end, want)
    return buf[s:e].decode("utf-8", "surrogateescape"), e


def _int(buf: bytes, pos: int, end: int, want: int) -> tuple[int, int]:
    if pos + 3 <= end and buf[pos] == want and buf[pos + 1] == 1:
        v = buf[pos + 2]
        return (v - 256 if v > 0x7F else v), pos + 3
    s, e = _read(buf, pos, end, want)
    if s == e:
        raise RequestError("empty integer")
    return int.from_bytes(buf[s:e], "big", signed=True), e


def _bool(buf: bytes, pos: int, end: int, want: int) -> tuple[bool, int]:
    s, e = _read(buf, pos, end, want)
    if s == e:
        raise RequestError("empty boolean")
    return int.from_bytes(buf[s:e], "big") != 0, e  # any non-zero content is TRUE (X.690 8.2.2)


_AVA = {0xA3: Equality, 0xA5: GreaterOrEqual, 0xA6: LessOrEqual, 0xA8: Approx}


def _filter(buf: bytes, pos: int, end: int, depth: int = 0) -> tuple[Filter, int]:
    """The filter at `pos` and where it ends."""
    if pos >= end:
        raise RequestError("missing filter")
    if depth > MAX_DEPTH:
        raise RequestError("filter nested too deeply")
    tag = buf[pos]
    s, e = _read(buf, pos, end, tag)
    kind = _AVA.get(tag)
    if kind is not None:
        attr, p = _string(buf, s, e)
        value, p = _string(buf, p, e)
        if p != e:
            raise RequestError("trailing data in attribute value assertion")
        return kind(attr, value), e
    if tag == 0xA0 or tag == 0xA1:  # and, or: possibly empty (RFC 4526)
        items = []
        while s < e:
            item, s = _filter(buf, s, e, depth + 1)
            items.append(item)
        return (And if tag == 0xA0 else Or)(tuple(items)), e
    if tag == 0x87:
        return Present(buf[s:e].decode("utf-8", "surrogateescape")), e
    if tag == 0xA2:
        item, p = _filter(buf, s, e, depth + 1)
        if p != e:
            raise RequestError("trailing data in not filter")
        return Not(item), e
    if tag == 0xA4:
        return _substrings(buf, s, e), e
    if tag == 0xA9:
        return _extensible(buf, s, e), e
    raise RequestError(f"unknown filter tag 0x{tag:02x}")


def _substrings(buf: bytes, pos: int, end: int) -> Substrings:
    attr, p = _string(buf, pos, end)
    s, e = _read(buf, p, end, 0x30)
    if e != end:
        raise RequestError("trailing data in substrings filter")
    if s == e:
        raise RequestError("substrings filter without substrings")
    # Like the ldaptor path: parts in any order, the last initial/final wins.
    initial = final = None
    parts = []
    while s < e:
        tag = buf[s]
        if tag < 0x80 or tag > 0x82:
            raise RequestError(f"unknown substring tag 0x{tag:02x}")
        value, s = _string(buf, s, e, tag)
        if tag == 0x81:
            parts.append(value)
        elif tag == 0x80:
            initial = value
        else:
            final = value
    return Substrings(attr, initial, tuple(parts), final)


def _extensible(buf: bytes, pos: int, end: int) -> Extensible:
    rule = attr = None
    if pos < end and buf[pos] == 0x81:
        rule, pos = _string(buf, pos, end, 0x81)
    if pos < end and buf[pos] == 0x82:
        attr, pos = _string(buf, pos, end, 0x82)
    value, pos = _string(buf, pos, end, 0x83)
    dn_attributes = False
    if pos < end:
        dn_attributes, pos = _bool(buf, pos, end, 0x84)
    if pos != end:
        raise RequestError("trailing data in extensible match")
    return Extensible(rule, attr, value, dn_attributes)


def _controls(buf: bytes, pos: int, end: int) -> tuple[tuple[str, bool], ...]:
    out = []
    while pos < end:
        s, e = _read(buf, pos, end, 0x30)
        oid, p = _string(buf, s, e)
        critical = False
        if p < e and buf[p] == 0x01:
            critical, p = _bool(buf, p, e, 0x01)
        if p < e:
            _s, p = _read(buf, p, e, 0x04)  # controlValue: no control is supported
        if p != e:
            raise RequestError("trailing data in control")
        out.append((oid, critical))
        pos = e
    return tuple(out)


def decode_search(frame: bytes) -> SearchRequest | None:
    """Decode one complete LDAPMessage; None when it is not a SearchRequest."""
    end = len(frame)
    s, e = _read(frame, 0, end, 0x30)
    if e != end:
        raise RequestError("trailing bytes after the LDAPMessage")
    msgid, pos = _int(frame, s, end, 0x02)
    if pos >= end:
        raise RequestError("no protocolOp")
    if frame[pos] != SEARCH_REQUEST:
        return None
    s, op_end = _read(frame, pos, end, SEARCH_REQUEST)
    base, p = _string(frame, s, op_end)
    scope, p = _int(frame, p, op_end, 0x0A)
    deref, p = _int(frame, p, op_end, 0x0A)
    size_limit, p = _int(frame, p, op_end, 0x02)
    time_limit, p = _int(frame, p, op_end, 0x02)
    types_only, p = _bool(frame, p, op_end, 0x01)
    flt, p = _filter(frame, p, op_end)
    s, p = _read(frame, p, op_end, 0x30)
    if p != op_end:
        raise RequestError("trailing data in SearchRequest")
    attributes = []
    while s < p:
        name, s = _string(frame, s, p)
        attributes.append(name)
    controls: tuple[tuple[str, bool], ...] = ()
    if op_end < end:
        s, e = _read(frame, op_end, end, 0xA0)
        if e != end:
            raise RequestError("trailing data after controls")
        controls = _controls(frame, s, e)
    return SearchRequest(msgid, base, scope, deref, size_limit, time_limit, types_only, flt,
                         tuple(attributes), controls)
