"""Just enough BER (X.690) to encode search results fast (RFC 4511 section 4.5.2).

ldaptor encodes through a tree of Python objects per value; a snapshot
answers the same entries all day, so entries are encoded here once, as
plain bytes, and cached by the snapshot. Requests are still decoded by
ldaptor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def octets(value: bytes) -> bytes:
    return b"\x04" + _length(len(value)) + value


def integer(value: int) -> bytes:
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)
    return tlv(0x02, body)


def search_result_entry(dn: bytes, attrs: Iterable[tuple[bytes, Iterable[bytes]]]) -> bytes:
    """The protocolOp of a SearchResultEntry ([APPLICATION 4])."""
    parts = []
    for name, values in attrs:
        vals = b"".join([octets(v) for v in values])
        parts.append(tlv(0x30, octets(name) + tlv(0x31, vals)))
    return tlv(0x64, octets(dn) + tlv(0x30, b"".join(parts)))


def message(msgid: int, op: bytes) -> bytes:
    """Wrap a pre-encoded protocolOp in an LDAPMessage with its message ID."""
    body = integer(msgid) + op
    return b"\x30" + _length(len(body)) + body


# --- decoding what a remote server sends (a source's search results) ------


class BerError(ValueError):
    """Bytes that are not the BER we expect."""


def read_tlv(buf: bytes | bytearray | memoryview, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the TLV at `pos`."""
    if pos + 2 > end:
        raise BerError("truncated TLV")
    tag = buf[pos]
    first = buf[pos + 1]
    if first < 0x80:
        start, length = pos + 2, first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + 2 + n > end:
            raise BerError("bad length")
        start = pos + 2 + n
        length = int.from_bytes(buf[pos + 2:start], "big")
    if start + length > end:
        raise BerError("TLV runs past its container")
    return tag, start, start + length


def frame_size(buf: bytes | bytearray, pos: int = 0) -> int | None:
    """Size of the complete TLV at `pos`, or None when more bytes are needed."""
    if len(buf) - pos < 2:
        return None
    first = buf[pos + 1]
    if first < 0x80:
        size = 2 + first
    else:
        n = first & 0x7F
        if n == 0 or n > 4:
            raise BerError("bad length")
        if len(buf) - pos < 2 + n:
            return None
        size = 2 + n + int.from_bytes(buf[pos + 2:pos + 2 + n], "big")
    return size


def split_message(frame: bytes | bytearray | memoryview) -> tuple[int, int, int, int, int]:
    """An LDAPMessage -> (message ID, protocolOp tag, op TLV start, op content start, op end)."""
    tag, start, end = read_tlv(frame, 0, len(frame))
    if tag != 0x30:
        raise BerError("not an LDAPMessage")
    itag, istart, iend = read_tlv(frame, start, end)
    if itag != 0x02:
        raise BerError("no message ID")
    msgid = int.from_bytes(frame[istart:iend], "big")
    optag, ostart, oend = read_tlv(frame, iend, end)
    return msgid, optag, iend, ostart, oend


def result_code(frame: bytes | bytearray | memoryview, start: int, end: int) -> tuple[int, str]:
    """(resultCode, diagnosticMessage) of an LDAPResult's content (RFC 4511 4.1.9)."""
    tag, s, e = read_tlv(frame, start, end)
    if tag != 0x0A:
        raise BerError("no resultCode")
    code = int.from_bytes(frame[s:e], "big")
    _t, _s, e2 = read_tlv(frame, e, end)  # matchedDN
    _t, s3, e3 = read_tlv(frame, e2, end)  # diagnosticMessage
    return code, bytes(frame[s3:e3]).decode("utf-8", "replace")


def iter_ops(blob: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each SearchResultEntry protocolOp in `blob`: the
    bytes a refresh compares with the last cycle's before decoding them."""
    pos, n = 0, len(blob)
    while pos < n:
        tag, _start, end = read_tlv(blob, pos, n)
        if tag != 0x64:
            raise BerError(f"unexpected tag 0x{tag:02x} in search results")
        yield pos, end
        pos = end


def decode_entry(op: bytes) -> tuple[str, list[tuple[str, str]]]:
    """One SearchResultEntry protocolOp -> (dn, [(attribute, value), ...]).

    Values are read inline when their length fits the short form (nearly
    all do); anything else, and every error, goes through `read_tlv`."""
    _tag, start, end = read_tlv(op, 0, len(op))
    _t, s, e = read_tlv(op, start, end)
    dn = op[s:e].decode("utf-8", "surrogateescape")
    _t, s, e = read_tlv(op, e, end)  # the attribute list
    pairs: list[tuple[str, str]] = []
    append = pairs.append
    p = s
    while p < e:
        _t, as_, ae = read_tlv(op, p, e)
        _t, ts, te = read_tlv(op, as_, ae)
        name = op[ts:te].decode("ascii", "replace")
        _t, vs, ve = read_tlv(op, te, ae)
        q = vs
        while q < ve:
            if q + 2 <= ve and op[q + 1] < 0x80 and q + 2 + op[q + 1] <= ve:
                xs = q + 2
                xe = xs + op[q + 1]
            else:
                _t, xs, xe = read_tlv(op, q, ve)
            append((name, op[xs:xe].decode("utf-8", "surrogateescape")))
            q = xe
        p = ae
    return dn, pairs


def iter_entries(blob: bytes) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Decode concatenated SearchResultEntry protocolOps ([APPLICATION 4]),
    as a fetch stores them, into (dn, [(attribute, value), ...])."""
    for start, end in iter_ops(blob):
        yield decode_entry(blob[start:end])
