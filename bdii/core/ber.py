"""Just enough BER (X.690) to encode search results fast (RFC 4511 section 4.5.2).

ldaptor encodes through a tree of Python objects per value; a snapshot
answers the same entries all day, so entries are encoded here once, as
plain bytes, and cached by the snapshot. Requests are still decoded by
ldaptor.
"""

from __future__ import annotations

from collections.abc import Iterable


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
