"""The fast search request decoder against ldaptor's decoding.

`decode_search` must give exactly what the ldaptor path gives (its BER
decoding, then `to_filter` and `_text` as the server applies them) for every
search request ldaptor can encode, None for every other request, and only
ever `RequestError` for bytes that are not a well-formed request.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ldaptor.protocols import pureber, pureldap

from bdii.core.ber import integer, octets, tlv
from bdii.core.filters import And, Equality, Extensible, Not, Or, Present, Substrings
from bdii.core.ldapreq import RequestError, SearchRequest, decode_search
from bdii.service.ldapserver import WHOAMI_OID, LDAPProtocol, _text, to_filter

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ldaptor_expected(frame: bytes) -> SearchRequest | None:
    """What the server gets today: ldaptor's decoding plus our conversions."""
    msg, used = pureber.berDecodeObject(LDAPProtocol.berdecoder, frame)
    assert used == len(frame) and isinstance(msg, pureldap.LDAPMessage)
    req = msg.value
    if not isinstance(req, pureldap.LDAPSearchRequest):
        return None
    return SearchRequest(
        msgid=msg.id, base=_text(req.baseObject), scope=req.scope, deref=req.derefAliases,
        size_limit=req.sizeLimit, time_limit=req.timeLimit, types_only=bool(req.typesOnly),
        filter=to_filter(req.filter), attributes=tuple(_text(a) for a in req.attributes),
        controls=tuple((_text(c[0]), bool(c[1])) for c in msg.controls or ()),
    )


# --- strategies: ldaptor objects -------------------------------------------------

_texts = st.one_of(
    st.text(max_size=10),
    st.binary(max_size=6),  # not UTF-8: surrogateescape
    st.sampled_from(["", "GlueCE", "café", "漢字", " spaced ", "x" * 200,
                     "ce.example.org:8443/cream-pbs-atlas"]),
)
_names = st.one_of(
    st.sampled_from(["objectClass", "GlueCEUniqueID", "GLUE2EndpointURL", "cn", "2.5.4.3",
                     "cn;lang-de", ""]),
    st.text(max_size=6),
    st.binary(max_size=4),
)


def _ava(kind: type) -> st.SearchStrategy[pureldap.LDAPFilter]:
    return st.builds(lambda a, v: kind(attributeDesc=pureldap.LDAPAttributeDescription(a),
                                       assertionValue=pureldap.LDAPAttributeValue(v)), _names, _texts)


_substring_part = st.one_of(
    st.builds(pureldap.LDAPFilter_substrings_initial, _texts),
    st.builds(pureldap.LDAPFilter_substrings_any, _texts),
    st.builds(pureldap.LDAPFilter_substrings_final, _texts),
)
_well_ordered_substrings = st.builds(
    lambda i, a, f: [x for x in (i, *a, f) if x is not None],
    st.none() | st.builds(pureldap.LDAPFilter_substrings_initial, _texts),
    st.lists(st.builds(pureldap.LDAPFilter_substrings_any, _texts), max_size=3),
    st.none() | st.builds(pureldap.LDAPFilter_substrings_final, _texts),
).filter(bool)

_leaves = st.one_of(
    _ava(pureldap.LDAPFilter_equalityMatch),
    _ava(pureldap.LDAPFilter_approxMatch),
    _ava(pureldap.LDAPFilter_greaterOrEqual),
    _ava(pureldap.LDAPFilter_lessOrEqual),
    st.builds(pureldap.LDAPFilter_present, _names),
    st.builds(lambda t, parts: pureldap.LDAPFilter_substrings(type=t, substrings=parts), _names,
              # ldaptor also accepts parts in any order, repeated: so must we.
              _well_ordered_substrings | st.lists(_substring_part, min_size=1, max_size=4)),
    st.builds(lambda r, t, v, dn: pureldap.LDAPFilter_extensibleMatch(
        matchingRule=r, type=t, matchValue=v, dnAttributes=dn),
        st.none() | st.sampled_from(["caseIgnoreMatch", "2.5.13.2"]) | _names,
        st.none() | _names, _texts, st.none() | st.booleans()),
)

_filters = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(pureldap.LDAPFilter_and),  # empty too (RFC 4526)
        st.lists(inner, max_size=4).map(pureldap.LDAPFilter_or),
        inner.map(pureldap.LDAPFilter_not),
    ),
    max_leaves=12,
)

_ints = st.one_of(st.integers(0, 10), st.integers(-(2**31), 2**31 - 1))

_searches = st.builds(
    lambda base, scope, deref, size, time, types, flt, attrs: pureldap.LDAPSearchRequest(
        baseObject=base, scope=scope, derefAliases=deref, sizeLimit=size, timeLimit=time,
        typesOnly=types, filter=flt, attributes=attrs),
    st.one_of(_texts, st.sampled_from(["o=grid", "Mds-Vo-name=local,o=grid", "GLUE2GroupID=grid,o=glue",
                                       "o=Ünïcødé,o=grid"])),
    _ints, _ints, _ints, _ints, st.booleans(),
    _filters,
    st.lists(st.one_of(st.sampled_from(["*", "+", "1.1", "objectClass", " cn ", ""]), _names), max_size=5),
)

_controls = st.none() | st.lists(
    st.tuples(st.sampled_from([b"1.2.840.113556.1.4.319", b"2.16.840.1.113730.3.4.2",
                               "1.3.6.1.4.1.42.2.27.8.5.1"]),
              st.none() | st.booleans(), st.none() | st.binary(max_size=8)),
    max_size=3)

_msgids = st.integers(0, 2**31 - 1) | st.integers(-1000, 1000)


@st.composite
def search_frames(draw: st.DrawFn) -> bytes:
    return pureldap.LDAPMessage(draw(_searches), id=draw(_msgids), controls=draw(_controls)).toWire()


# --- agreement with ldaptor ----------------------------------------------------------

@FAST
@given(search_frames())
def test_search_requests_decode_as_through_ldaptor(frame: bytes) -> None:
    got = decode_search(frame)
    assert got is not None
    assert got == ldaptor_expected(frame)


def _search_op(base: bytes = b"o=grid", flt: bytes = b"\x87\x0bobjectClass", attrs: bytes = b"\x30\x00",
               scope: bytes = b"\x0a\x01\x02", types: bytes = b"\x01\x01\x00") -> bytes:
    return tlv(0x63, octets(base) + scope + b"\x0a\x01\x00" + integer(0) + integer(0) + types + flt + attrs)


def _frame(op: bytes, extra: bytes = b"", msgid: int = 1) -> bytes:
    return tlv(0x30, integer(msgid) + op + extra)


def _long(tag: int, content: bytes, k: int = 4) -> bytes:
    """A TLV with a needlessly long length (BER allows it)."""
    return bytes((tag, 0x80 | k)) + len(content).to_bytes(k, "big") + content


def test_realistic_search() -> None:
    flt = pureldap.LDAPFilter_and([
        pureldap.LDAPFilter_equalityMatch(attributeDesc=pureldap.LDAPAttributeDescription("objectClass"),
                                          assertionValue=pureldap.LDAPAttributeValue("GlueCE")),
        pureldap.LDAPFilter_substrings(type="GlueCEUniqueID", substrings=[
            pureldap.LDAPFilter_substrings_initial("ce"), pureldap.LDAPFilter_substrings_any("example"),
            pureldap.LDAPFilter_substrings_any("org"), pureldap.LDAPFilter_substrings_final("atlas")]),
    ])
    req = pureldap.LDAPSearchRequest(baseObject="Mds-Vo-name=local,o=grid", scope=2, filter=flt,
                                     sizeLimit=10, attributes=["GlueCEUniqueID", "*", "+"])
    frame = pureldap.LDAPMessage(req, id=7, controls=[(b"1.2.3", True, b"\x01")]).toWire()
    assert decode_search(frame) == SearchRequest(
        7, "Mds-Vo-name=local,o=grid", 2, 0, 10, 0, False,
        And((Equality("objectClass", "GlueCE"), Substrings("GlueCEUniqueID", "ce", ("example", "org"), "atlas"))),
        ("GlueCEUniqueID", "*", "+"), (("1.2.3", True),))


@pytest.mark.parametrize("frame", [
    # Long-form lengths everywhere, including where a short form would do.
    _long(0x30, integer(5) + _long(0x63, _long(0x04, b"o=grid") + b"\x0a\x01\x00\x0a\x01\x00"
                                   + _long(0x02, b"\x00", 1) + b"\x02\x01\x00\x01\x01\xff"
                                   + _long(0xA1, _long(0xA3, octets(b"cn") + _long(0x04, b"x", 2)))
                                   + _long(0x30, _long(0x04, b"1.1", 1)))
          + _long(0xA0, _long(0x30, octets(b"1.2.3"), 2))),
    # Empty AND and OR, nested NOT, extensible match with and without parts.
    _frame(_search_op(flt=b"\xa0\x00")),
    _frame(_search_op(flt=b"\xa1\x00")),
    _frame(_search_op(flt=b"\xa2\x04\xa2\x02\xa0\x00")),
    _frame(_search_op(flt=tlv(0xA9, tlv(0x83, b"v")))),
    _frame(_search_op(flt=tlv(0xA9, tlv(0x81, b"caseExactMatch") + tlv(0x82, b"cn") + tlv(0x83, b"v")
                              + b"\x84\x01\x00"))),
    _frame(_search_op(flt=tlv(0xA9, tlv(0x82, b"cn") + tlv(0x83, b"\xff\xfe") + b"\x84\x01\x01"))),
    # A multi-byte, non-canonical boolean and a 5-byte integer.
    _frame(_search_op(types=b"\x01\x02\x00\x01", scope=b"\x0a\x05\x00\x00\x00\x00\x02")),
    # Controls: empty list, without criticality, with a value only, critical FALSE.
    _frame(_search_op(), tlv(0xA0, b"")),
    _frame(_search_op(), tlv(0xA0, tlv(0x30, octets(b"1.2.3") + octets(b"v")))),
    _frame(_search_op(), tlv(0xA0, tlv(0x30, octets(b"1.2.3") + b"\x01\x01\x00")
                             + tlv(0x30, octets(b"1.2.4") + b"\x01\x01\xff" + octets(b"")))),
])
def test_odd_but_valid_frames(frame: bytes) -> None:
    got = decode_search(frame)
    assert got is not None
    assert got == ldaptor_expected(frame)


def test_filter_shapes() -> None:
    got = decode_search(_frame(_search_op(flt=b"\xa2\x04\xa2\x02\xa0\x00")))
    assert got is not None and got.filter == Not(Not(And(())))
    got = decode_search(_frame(_search_op(flt=b"\xa1\x00")))
    assert got is not None and got.filter == Or(())
    got = decode_search(_frame(_search_op(flt=tlv(0xA9, tlv(0x83, b"v")))))
    assert got is not None and got.filter == Extensible(None, None, "v", False)
    got = decode_search(_frame(_search_op(flt=b"\x87\x02\xc3\xa9", base=b"o=\xff")))
    assert got is not None and got.filter == Present("é") and got.base == "o=\udcff"


# --- everything else goes to ldaptor -----------------------------------------------------

@pytest.mark.parametrize("op", [
    pureldap.LDAPBindRequest(dn="", auth=""),
    pureldap.LDAPBindRequest(version=2, dn="cn=x", auth="secret"),
    pureldap.LDAPUnbindRequest(),
    pureldap.LDAPAbandonRequest(id=3),
    pureldap.LDAPExtendedRequest(requestName=WHOAMI_OID),
    pureldap.LDAPDelRequest(entry="cn=x,o=grid"),
    pureldap.LDAPCompareRequest(entry="o=grid", ava=pureldap.LDAPAttributeValueAssertion(
        pureldap.LDAPAttributeDescription("o"), pureldap.LDAPAttributeValue("grid"))),
])
def test_other_requests_are_left_to_ldaptor(op: object) -> None:
    frame = pureldap.LDAPMessage(op, id=9).toWire()
    assert decode_search(frame) is None
    assert ldaptor_expected(frame) is None


def test_primitive_search_tag_is_left_to_ldaptor() -> None:
    # ldaptor ignores the constructed bit and would take 0x43 as a search.
    frame = _frame(b"\x43" + _search_op()[1:])
    assert decode_search(frame) is None


# --- malformed input ---------------------------------------------------------------

_GOOD = _frame(_search_op(flt=b"\xa3\x09\x04\x02cn\x04\x03abc"), tlv(0xA0, tlv(0x30, octets(b"1.2.3"))))


@pytest.mark.parametrize("frame", [
    b"",
    b"\x30",
    _GOOD[:-1],  # truncated: the outer length runs past the end
    _GOOD + b"\x00",  # trailing bytes
    b"\x31" + _GOOD[1:],  # not a SEQUENCE
    b"\x30\x80" + _GOOD[2:],  # indefinite length
    _frame(b""),  # no protocolOp
    tlv(0x30, b"\x02\x00" + _search_op()),  # empty message ID
    tlv(0x30, octets(b"1") + _search_op()),  # message ID not an INTEGER
    _frame(_search_op(base=b"")[:2] + b"\x05\x00" + _search_op(base=b"")[4:]),  # base DN tag
    _frame(_search_op(scope=b"\x02\x01\x02")),  # scope not ENUMERATED
    _frame(_search_op(scope=b"\x0a\x00")),  # empty scope
    _frame(_search_op(types=b"\x01\x00")),  # empty boolean
    _frame(_search_op(flt=b"\xaa\x00")),  # no such filter
    _frame(_search_op(flt=b"\x04\x02cn")),  # a string where a filter goes
    _frame(_search_op(flt=b"\xa3\x07\x04\x02cn\x04\x00\x00")),  # AVA content longer than its parts
    _frame(_search_op(flt=b"\xa3\x04\x04\x02cn")),  # AVA without value
    _frame(_search_op(flt=b"\xa3\x04\x04\x09cn")),  # string runs past its AVA
    _frame(_search_op(flt=b"\xa2\x00")),  # empty NOT
    _frame(_search_op(flt=b"\xa2\x04\x87\x00\x87\x00")),  # NOT of two filters
    _frame(_search_op(flt=tlv(0xA4, octets(b"cn") + b"\x30\x00"))),  # no substrings
    _frame(_search_op(flt=tlv(0xA4, octets(b"cn") + tlv(0x30, octets(b"x"))))),  # substring tag
    _frame(_search_op(flt=tlv(0xA9, tlv(0x82, b"cn")))),  # extensible without value
    _frame(_search_op(flt=tlv(0xA9, tlv(0x82, b"cn") + tlv(0x81, b"r") + tlv(0x83, b"v")))),  # order
    _frame(_search_op(flt=tlv(0xA9, tlv(0x83, b"v") + tlv(0x83, b"v")))),  # two values
    _frame(_search_op(attrs=b"\x31\x00")),  # attribute list not a SEQUENCE
    _frame(_search_op(attrs=b"\x30\x02\x02\x00")),  # attribute not a string
    _frame(_search_op(attrs=b"")),  # no attribute list
    _frame(_search_op(attrs=b"\x30\x00\x04\x00")),  # an extra element (ldaptor skips unknown ones)
    _frame(_search_op(), b"\x30\x00"),  # not controls
    _frame(_search_op(), tlv(0xA0, b"\x04\x00")),  # a control that is not a SEQUENCE
    _frame(_search_op(), tlv(0xA0, b"\x30\x00")),  # a control without OID
    _frame(_search_op(), tlv(0xA0, tlv(0x30, octets(b"1") + octets(b"v") + octets(b"w")))),
    _frame(_search_op(), tlv(0xA0, b"") + tlv(0xA0, b"")),  # two control lists
])
def test_malformed_frames_raise_request_error(frame: bytes) -> None:
    with pytest.raises(RequestError):
        decode_search(frame)


def test_deep_nesting_is_refused() -> None:
    flt = b"\x87\x00"
    for _ in range(2000):
        flt = tlv(0xA2, flt)
    with pytest.raises(RequestError, match="deeply"):
        decode_search(_frame(_search_op(flt=flt)))


def _rewrap(frame: bytes, content: bytes) -> bytes:
    """`frame` with its outer content replaced, outer length fixed."""
    return tlv(frame[0], content)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(search_frames(), st.data())
def test_mutated_frames_raise_only_request_error(frame: bytes, data: st.DataObject) -> None:
    head = 2 if frame[1] < 0x80 else 2 + (frame[1] & 0x7F)
    body = bytearray(frame[head:])
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(body)))
        how = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "cut"]))
        if how == "insert":
            body[i:i] = bytes((data.draw(st.integers(0, 255)),))
        elif i == len(body):
            continue
        elif how == "flip":
            body[i] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "set":
            body[i] = data.draw(st.sampled_from([0x00, 0x04, 0x30, 0x7F, 0x80, 0x81, 0x84, 0xA0, 0xFF]))
        elif how == "delete":
            del body[i]
        else:
            del body[i:]
    # Mostly keep the outer length right, to reach the inner structure.
    mutated = _rewrap(frame, bytes(body)) if data.draw(st.booleans()) else frame[:head] + bytes(body)
    try:
        got = decode_search(mutated)
    except RequestError:
        return
    if got is not None:
        # What we accept, ldaptor reads the same way.
        assert got == ldaptor_expected(mutated)
