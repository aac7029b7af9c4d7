"""Every entry of a snapshot in its wire form, in one buffer: what the
serving processes read instead of the entry objects.

A forked serving process shares its parent's memory only for as long as
neither writes to it, and reading a Python object writes its reference
count: a worker that evaluates filters over entry objects ends up with its
own copy of every page it touched (measured: ~300 MB per worker at 122k
entries under cold queries). One buffer and a few arrays are a handful of
objects, whatever their size, so their pages stay shared. Values are read
back out of the encoded entries when a filter asks for them; answers are
slices of it, whole entries or the attributes a search names.

An entry's bytes are a SearchResultEntry protocolOp (RFC 4511 4.5.2),
objectClass first as slapd shows it, then the other attributes in the
entry's own order. For each attribute, the offset of its PartialAttribute
from the start of the entry is kept in the order of the entry's `Shape`,
so that `values(i, j)` goes straight to attribute `j`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from . import ber

_LEN = [bytes((n,)) for n in range(128)]
_NAME_TLV: dict[str, bytes] = {}  # attribute name -> its encoded AttributeDescription


def blen(n: int) -> bytes:
    """A BER length; the short ones from a table (the hot case)."""
    return _LEN[n] if n < 0x80 else ber._length(n)


def attribute(name: str, values: Iterable[str], types_only: bool = False) -> bytes:
    """One PartialAttribute (RFC 4511 4.1.7): the hot loop of every encoding."""
    head = _NAME_TLV.get(name)
    if head is None:
        raw = name.encode()
        head = _NAME_TLV[name] = b"\x04" + blen(len(raw)) + raw
    if types_only:
        vals = b""
    else:
        vals = b"".join([b"\x04" + blen(len(b)) + b for b in [v.encode("utf-8", "surrogateescape")
                                                             for v in values]])
    body = head + b"\x31" + blen(len(vals)) + vals
    return b"\x30" + blen(len(body)) + body


def search_result_entry(dn: bytes, attrs: bytes) -> bytes:
    """The protocolOp around an encoded DN and attribute list."""
    body = b"\x04" + blen(len(dn)) + dn + b"\x30" + blen(len(attrs)) + attrs
    return b"\x64" + blen(len(body)) + body


# Encoded attributes longer than this are not kept for reuse: long values
# (descriptions, URLs, unique IDs) rarely repeat.
CACHED_SIZE = 48

# Per attribute layout: the order its attributes are written in
# (objectClass first, as slapd shows entries).
_ORDER: dict[Any, tuple[int, ...]] = {}


def _order(shape: Any) -> tuple[int, ...]:
    order = _ORDER.get(shape)
    if order is None:
        if len(_ORDER) > 100_000:
            _ORDER.clear()
        first = shape.index.get("objectclass")
        rest = [j for j in range(len(shape.keys)) if j != first]
        order = _ORDER[shape] = tuple(rest if first is None else [first, *rest])
    return order


def encode(entry: Any, made: dict[tuple[str, tuple[str, ...]], bytes] | None = None) -> tuple[bytes, list[int]]:
    """An entry's protocolOp and, in its shape's order, where each attribute starts in it.

    `made`: attributes encoded so far in this pass, by name and values. In a
    grid tree 84% of them repeat (object classes, VOs, states, versions,
    the site's own keys): a lookup instead of an encoding."""
    names, vals = entry.shape.names, entry.vals
    order = _order(entry.shape)
    if made is None:
        parts = [attribute(names[j], vals[j]) for j in order]
    else:
        parts = []
        for j in order:
            key = (names[j], vals[j])
            part = made.get(key)
            if part is None:
                part = attribute(*key)
                if len(part) <= CACHED_SIZE:
                    made[key] = part
            parts.append(part)
    attrs = b"".join(parts)
    dn = str(entry.dn).encode("utf-8", "surrogateescape")
    op = search_result_entry(dn, attrs)
    at = [0] * len(parts)
    p = len(op) - len(attrs)
    for j, part in zip(order, parts):
        at[j] = p
        p += len(part)
    return op, at


def _skip_head(buf: Any, p: int) -> int:
    """Where the content of the TLV at `p` starts."""
    n = buf[p + 1]
    return p + 2 if n < 0x80 else p + 2 + (n & 0x7F)


def _content(buf: Any, p: int) -> tuple[int, int]:
    """(start, end) of the content of the TLV at `p`."""
    n = buf[p + 1]
    if n < 0x80:
        return p + 2, p + 2 + n
    k = n & 0x7F
    s = p + 2 + k
    return s, s + int.from_bytes(buf[p + 2:s], "big")


# Layouts and objectClass lists carried from one snapshot's tables to the
# next; past this many (layouts that came and went) the tables start afresh.
TABLES_CARRIED = 20_000


def _copy_run(old: Packed, i: int, k: int, buf: bytearray, starts: array[int], attr_at: array[int],
              attr_base: array[int]) -> None:
    """Append `old`'s entries i..k-1: their bytes and attribute offsets as
    they are (relative to the entry), their start positions shifted."""
    p0, a0 = old.starts[i], old.attr_base[i]
    shift, ashift = len(buf) - p0, len(attr_at) - a0
    buf += memoryview(old.buf)[p0:old.starts[k]]
    attr_at += old.attr_at[a0:old.attr_base[k]]
    if shift:
        starts.extend([x + shift for x in old.starts[i + 1:k + 1]])
    else:
        starts += old.starts[i + 1:k + 1]
    if ashift:
        attr_base.extend([x + ashift for x in old.attr_base[i + 1:k + 1]])
    else:
        attr_base += old.attr_base[i + 1:k + 1]


class Packed:
    """The encoded entries of one snapshot, by entry number. Immutable."""

    __slots__ = ("attr_at", "attr_base", "buf", "class_of", "classes", "entries", "shape_of", "shapes", "starts")

    def __init__(self, entries: tuple[Any, ...], buf: bytearray, starts: array[int], attr_at: array[int],
                 attr_base: array[int], shapes: list[Any], shape_of: array[int],
                 classes: list[tuple[str, ...]], class_of: array[int]) -> None:
        """Use `Packed.build`."""
        self.entries = entries  # whose bytes these are: object identity is the reuse key
        self.buf = buf  # never written once built
        self.starts = starts  # entry i is buf[starts[i]:starts[i + 1]]
        self.attr_at = attr_at  # attribute j of entry i starts at starts[i] + attr_at[attr_base[i] + j]
        self.attr_base = attr_base
        self.shapes = shapes
        self.shape_of = shape_of  # entry i has layout shapes[shape_of[i]]
        # objectClass is in nearly every filter, and a few hundred distinct
        # lists cover all entries: kept decoded, by number.
        self.classes = classes
        self.class_of = class_of  # entry i has objectClass values classes[class_of[i]]

    @classmethod
    def build(cls, entries: Sequence[Any], previous: Packed | None = None) -> tuple[Packed, int]:
        """Encode `entries`; those that are the very objects of `previous`
        (the pipeline reuses unchanged entries) are copied, not encoded.
        Returns the store and how many entries were copied.

        A refresh keeps the last snapshot's order, so unchanged entries
        come in runs at the same numbers: a run is copied with one slice
        per array (the layout and objectClass tables are carried over, so
        their numbers stay valid), not entry by entry."""
        ents = tuple(entries)
        buf = bytearray()
        starts = array("Q", [0])
        attr_at = array("I")
        attr_base = array("Q", [0])
        shape_of = array("I")
        class_of = array("I")
        carry = previous is not None and len(previous.shapes) + len(previous.classes) <= TABLES_CARRIED
        shapes: list[Any] = list(previous.shapes) if carry and previous is not None else []
        classes: list[tuple[str, ...]] = list(previous.classes) if carry and previous is not None else []
        sid = {id(shape): k for k, shape in enumerate(shapes)}  # the list keeps them alive: ids stay valid
        cid = {oc: k for k, oc in enumerate(classes)}
        olds: tuple[Any, ...] = previous.entries if previous is not None else ()
        old_at: dict[int, int] | None = None
        made: dict[tuple[str, tuple[str, ...]], bytes] = {}
        reused = 0
        i, n, m = 0, len(ents), len(olds) if carry else 0
        while i < n:
            e = ents[i]
            if i < m and olds[i] is e:
                k = i + 1
                while k < m and k < n and ents[k] is olds[k]:
                    k += 1
                assert previous is not None
                _copy_run(previous, i, k, buf, starts, attr_at, attr_base)
                shape_of += previous.shape_of[i:k]
                class_of += previous.class_of[i:k]
                reused += k - i
                i = k
                continue
            if old_at is None:
                old_at = {id(x): j for j, x in enumerate(olds)}
            j = old_at.get(id(e))
            if j is not None and previous is not None and olds[j] is e:
                _copy_run(previous, j, j + 1, buf, starts, attr_at, attr_base)
                oc = previous.classes[previous.class_of[j]]
                reused += 1
            else:
                op, at = encode(e, made)
                buf += op
                attr_at.extend(at)
                starts.append(len(buf))
                attr_base.append(len(attr_at))
                oc = tuple(e.values_of("objectclass") or ())
            c = cid.get(oc)
            if c is None:
                c = cid[oc] = len(classes)
                classes.append(oc)
            class_of.append(c)
            s = sid.get(id(e.shape))
            if s is None:
                s = sid[id(e.shape)] = len(shapes)
                shapes.append(e.shape)
            shape_of.append(s)
            i += 1
        return cls(ents, buf, starts, attr_at, attr_base, shapes, shape_of, classes, class_of), reused

    def __len__(self) -> int:
        return len(self.shape_of)

    def op(self, i: int) -> memoryview:
        """Entry `i`'s protocolOp, without a copy."""
        return memoryview(self.buf)[self.starts[i]:self.starts[i + 1]]

    def object_classes(self, i: int) -> tuple[str, ...]:
        return self.classes[self.class_of[i]]

    def shape(self, i: int) -> Any:
        return self.shapes[self.shape_of[i]]

    def dn_tlv(self, i: int) -> bytes:
        """The LDAPDN element of entry `i`, encoded."""
        buf = self.buf
        p = _skip_head(buf, self.starts[i])
        return bytes(buf[p:_content(buf, p)[1]])

    def dn(self, i: int) -> str:
        buf = self.buf
        s, e = _content(buf, _skip_head(buf, self.starts[i]))
        return buf[s:e].decode("utf-8", "surrogateescape")

    def attributes(self, i: int) -> bytes:
        """Every PartialAttribute of entry `i`, encoded (the content of its attribute list)."""
        buf = self.buf
        p = _skip_head(buf, self.starts[i])
        p = _content(buf, p)[1]  # past the DN
        s, e = _content(buf, p)
        return bytes(buf[s:e])

    def attribute(self, i: int, j: int) -> bytes:
        """The PartialAttribute at position `j` of entry `i`'s shape, encoded."""
        buf = self.buf
        p = self.starts[i] + self.attr_at[self.attr_base[i] + j]
        return bytes(buf[p:_content(buf, p)[1]])

    def values(self, i: int, j: int) -> tuple[str, ...]:
        """The values of attribute `j` of entry `i`, decoded from its bytes."""
        buf = self.buf
        p = self.starts[i] + self.attr_at[self.attr_base[i] + j]
        # PartialAttribute: SEQUENCE { type OCTET STRING, vals SET OF OCTET STRING }
        p = _skip_head(buf, p)
        n = buf[p + 1]
        p += 2 + n if n < 0x80 else _content(buf, p)[1] - p
        n = buf[p + 1]
        if n < 0x80:
            s, end = p + 2, p + 2 + n
        else:
            s, end = _content(buf, p)
        out = []
        while s < end:
            n = buf[s + 1]
            if n < 0x80:
                e = s + 2 + n
                out.append(buf[s + 2:e].decode("utf-8", "surrogateescape"))
            else:
                vs, e = _content(buf, s)
                out.append(buf[vs:e].decode("utf-8", "surrogateescape"))
            s = e
        return tuple(out)
