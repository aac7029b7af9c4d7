"""The LDAP server, queried over a real socket by ldap3 and by ldapsearch."""

from __future__ import annotations

import socket

import ldap3
import pytest
import pytest_twisted
from twisted.internet import reactor

from bdii.service.ldapserver import SnapshotHolder

from support import SKELETON, in_thread, ldap3_search, ldapsearch, parse_ldapsearch, snapshot_from_ldif

DATA = SKELETON + """
dn: GlueServiceUniqueID=host.example.org_bdii,mds-vo-name=resource,o=grid
objectClass: GlueTop
objectClass: GlueService
GlueServiceUniqueID: host.example.org_bdii
GlueServiceType: bdii_site
GlueServiceEndpoint: ldap://host.example.org:2170/mds-vo-name=resource,o=grid
GlueServiceVersion: 6.0.0
GlueServiceAccessControlBaseRule: VO:atlas

dn: GlueServiceDataKey=a\\,b \\+c=d,GlueServiceUniqueID=host.example.org_bdii,mds-vo-name=resource,o=grid
objectClass: GlueTop
objectClass: GlueServiceData
GlueServiceDataKey: a,b +c=d
GlueServiceDataValue: special

dn: GlueCEUniqueID=ce.example.org:8443/cream-pbs-long,mds-vo-name=resource,o=grid
objectClass: GlueCETop
objectClass: GlueCE
GlueCEUniqueID: ce.example.org:8443/cream-pbs-long
GlueCEStateRunningJobs: 9
GlueCEAccessControlBaseRule: VO:atlas
GlueCEAccessControlBaseRule: VO:cms

dn: GlueCEUniqueID=ce.example.org:8443/cream-pbs-short,mds-vo-name=resource,o=grid
objectClass: GlueCETop
objectClass: GlueCE
GlueCEUniqueID: ce.example.org:8443/cream-pbs-short
GlueCEStateRunningJobs: 10
GlueCEAccessControlBaseRule: VO:ops

dn: GLUE2ServiceID=svc-1,GLUE2GroupID=resource,o=glue
objectClass: GLUE2Entity
objectClass: GLUE2Service
GLUE2ServiceID: svc-1
GLUE2ServiceType: org.glite.FileTransfer
GLUE2ServiceCapability: data.transfer
GLUE2ServiceQualityLevel: production
GLUE2ServiceDescription:: RMOpbW8gc2VydmljZSwgWsO8cmljaA==

dn: GLUE2EndpointID=svc-1-ep,GLUE2ServiceID=svc-1,GLUE2GroupID=resource,o=glue
objectClass: GLUE2Entity
objectClass: GLUE2Endpoint
GLUE2EndpointID: svc-1-ep
GLUE2EndpointURL: https://fts.example.org:8446
GLUE2EndpointInterfaceName: webdav
GLUE2EndpointServiceForeignKey: svc-1
GLUE2EndpointQualityLevel: production
GLUE2EndpointHealthState: ok
GLUE2EndpointServingState: production
"""


# 2000 services of ~600 bytes: a search over them streams in many batches.
BIG = SKELETON + "".join(
    f"\ndn: GLUE2ServiceID=s{i},GLUE2GroupID=resource,o=glue\nobjectClass: GLUE2Service\n"
    f"GLUE2ServiceID: s{i}\nGLUE2ServiceDescription: {'x' * 500}\n" for i in range(2000))


@pytest.fixture
def server(serve):  # type: ignore[no-untyped-def]
    return serve(snapshot_from_ldif(DATA))


@pytest_twisted.inlineCallbacks
def test_only_requested_attributes_come_back_in_schema_case(server):  # type: ignore[no-untyped-def]
    """gfal2 asks for three attributes by lower-case name and gets exactly those, spelt as in the schema."""
    result, entries = yield in_thread(ldap3_search, server.url, "o=grid", "(GlueServiceType=bdii_site)",
                                      attributes=["glueserviceversion", "GLUESERVICEENDPOINT", "GlueServiceType"])
    assert result["result"] == 0
    assert len(entries) == 1
    assert set(entries[0][1]) == {"GlueServiceVersion", "GlueServiceEndpoint", "GlueServiceType"}


@pytest_twisted.inlineCallbacks
def test_scopes_base_one_sub(server):  # type: ignore[no-untyped-def]
    """Base returns the entry itself, one its children only, sub the whole subtree."""
    base = "mds-vo-name=resource,o=grid"
    counts = {}
    for scope in ("BASE", "LEVEL", "SUBTREE"):
        _r, entries = yield in_thread(ldap3_search, server.url, base, scope=scope, attributes=["1.1"])
        counts[scope] = len(entries)
    assert counts == {"BASE": 1, "LEVEL": 3, "SUBTREE": 5}


@pytest_twisted.inlineCallbacks
def test_base_dn_is_matched_case_insensitively_with_spaces(server):  # type: ignore[no-untyped-def]
    """ARGO's mixed-case base `Mds-Vo-Name = resource, O=grid` finds the same subtree."""
    _r, entries = yield in_thread(ldap3_search, server.url, "Mds-Vo-Name=resource,O=grid",
                                  "(GlueServiceEndpoint=*host.example.org*)", attributes=["1.1"])
    assert [dn for dn, _ in entries] == ["GlueServiceUniqueID=host.example.org_bdii,Mds-Vo-name=resource,o=grid"]
    # ldap3 refuses spaces in a base DN; ldapsearch sends them as written.
    proc = yield in_thread(ldapsearch, server.url, "-b", "Mds-Vo-Name = resource , O=grid",
                           "(GlueServiceEndpoint=*host.example.org*)", "1.1")
    assert list(parse_ldapsearch(proc.stdout)) == [entries[0][0]]


@pytest_twisted.inlineCallbacks
def test_integer_filters_compare_as_integers(server):  # type: ignore[no-untyped-def]
    """`>=10` takes 10 and not 9, although '9' > '10' as strings."""
    _r, entries = yield in_thread(ldap3_search, server.url, "o=grid", "(GlueCEStateRunningJobs>=10)",
                                  attributes=["GlueCEUniqueID"])
    assert [e[1]["GlueCEUniqueID"] for e in entries] == [[b"ce.example.org:8443/cream-pbs-short"]]


@pytest_twisted.inlineCallbacks
def test_glue2_values_are_case_exact_and_glue13_case_insensitive(server):  # type: ignore[no-untyped-def]
    """`Webdav` misses the GLUE 2.0 value `webdav`; `vo:ATLAS` finds the GLUE 1.3 rule `VO:atlas`."""
    _r, glue2 = yield in_thread(ldap3_search, server.url, "o=glue", "(GLUE2EndpointInterfaceName=Webdav)")
    _r, glue2ok = yield in_thread(ldap3_search, server.url, "o=glue", "(GLUE2EndpointInterfaceName=webdav)")
    _r, glue13 = yield in_thread(ldap3_search, server.url, "o=grid",
                                 "(&(objectclass=gluece)(GlueCEAccessControlBaseRule=vo:ATLAS))")
    assert (len(glue2), len(glue2ok), len(glue13)) == (0, 1, 1)


@pytest_twisted.inlineCallbacks
def test_special_characters_in_dns_round_trip(server):  # type: ignore[no-untyped-def]
    """An escaped DN comes back escaped and can be used as a base again."""
    _r, entries = yield in_thread(ldap3_search, server.url, "o=grid", "(GlueServiceDataKey=a,b +c=d)", attributes=["1.1"])
    assert len(entries) == 1
    dn = entries[0][0]
    _r, again = yield in_thread(ldap3_search, server.url, dn, scope="BASE", attributes=["GlueServiceDataValue"])
    assert again[0][1]["GlueServiceDataValue"] == [b"special"]


@pytest_twisted.inlineCallbacks
def test_missing_base_gives_no_such_object_with_matched_dn(server):  # type: ignore[no-untyped-def]
    """A base below an existing entry that does not exist: 32 and the closest existing ancestor."""
    result, _ = yield in_thread(ldap3_search, server.url, "GlueSEUniqueID=nowhere,mds-vo-name=resource,o=grid")
    assert result["result"] == 32
    assert result["dn"] == "Mds-Vo-name=resource,o=grid"


@pytest_twisted.inlineCallbacks
def test_client_size_limit_returns_partial_results_and_code_4(server):  # type: ignore[no-untyped-def]
    """A size limit of 2 gives two entries then sizeLimitExceeded."""
    result, entries = yield in_thread(ldap3_search, server.url, "o=grid", size_limit=2, attributes=["1.1"])
    assert result["result"] == 4
    assert len(entries) == 2


@pytest_twisted.inlineCallbacks
def test_types_only_returns_names_without_values(server):  # type: ignore[no-untyped-def]
    """typesOnly returns attribute descriptions with empty value sets."""
    _r, entries = yield in_thread(ldap3_search, server.url, "GLUE2ServiceID=svc-1,GLUE2GroupID=resource,o=glue",
                                  scope="BASE", types_only=True)
    attrs = entries[0][1]
    assert "GLUE2ServiceType" in attrs
    assert all(not v for v in attrs.values())  # ldap3 shows an empty set as None


@pytest_twisted.inlineCallbacks
def test_operational_attributes_only_on_request(server):  # type: ignore[no-untyped-def]
    """`*` gives user attributes; `* modifyTimestamp` adds it; `+` gives the operational ones."""
    base = "GLUE2ServiceID=svc-1,GLUE2GroupID=resource,o=glue"
    _r, plain = yield in_thread(ldap3_search, server.url, base, scope="BASE")
    _r, stamped = yield in_thread(ldap3_search, server.url, base, scope="BASE", attributes=["*", "modifyTimestamp"])
    _r, oper = yield in_thread(ldap3_search, server.url, base, scope="BASE", attributes=["+"])
    assert "modifyTimestamp" not in plain[0][1]
    assert stamped[0][1]["modifyTimestamp"][0].endswith(b"Z") and "GLUE2ServiceID" in stamped[0][1]
    assert {"createTimestamp", "modifyTimestamp", "entryDN", "hasSubordinates"} <= set(oper[0][1])
    assert "GLUE2ServiceID" not in oper[0][1]


@pytest_twisted.inlineCallbacks
def test_root_dse_lists_naming_contexts(server):  # type: ignore[no-untyped-def]
    """The root DSE shows objectClass by default and the naming contexts with `+`, as slapd does."""
    _r, plain = yield in_thread(ldap3_search, server.url, "", scope="BASE")
    _r, oper = yield in_thread(ldap3_search, server.url, "", scope="BASE", attributes=["+"])
    assert plain[0][1] == {"objectClass": [b"top", b"OpenLDAProotDSE"]}
    assert oper[0][1]["namingContexts"] == [b"o=grid", b"o=glue", b"o=infosys"]


@pytest_twisted.inlineCallbacks
def test_empty_base_subtree_is_no_such_object(server):  # type: ignore[no-untyped-def]
    """Q24-style probes: an empty base with subtree scope answers 32 at once, like slapd."""
    result, entries = yield in_thread(ldap3_search, server.url, "", scope="SUBTREE")
    assert (result["result"], entries) == (32, [])


@pytest_twisted.inlineCallbacks
def test_writes_are_refused_with_stronger_auth_required(server):  # type: ignore[no-untyped-def]
    """add, modify, delete and modrdn all get 8, as slapd answers anonymous writers."""

    def write_all() -> list[int]:
        conn = ldap3.Connection(ldap3.Server(server.url, get_info=ldap3.NONE), auto_bind=True, raise_exceptions=False)
        codes = []
        conn.add("GlueSiteUniqueID=x,mds-vo-name=resource,o=grid", ["GlueSite"], {"GlueSiteUniqueID": "x"})
        codes.append(conn.result["result"])
        conn.modify("o=grid", {"o": [(ldap3.MODIFY_REPLACE, ["x"])]})
        codes.append(conn.result["result"])
        conn.delete("mds-vo-name=resource,o=grid")
        codes.append(conn.result["result"])
        conn.modify_dn("mds-vo-name=resource,o=grid", "mds-vo-name=other")
        codes.append(conn.result["result"])
        conn.unbind()
        return codes

    codes = yield in_thread(write_all)
    assert codes == [8, 8, 8, 8]


@pytest_twisted.inlineCallbacks
def test_password_bind_is_refused_but_anonymous_and_unauthenticated_work(server):  # type: ignore[no-untyped-def]
    """There are no accounts: a password bind gets 49; an empty password is anonymous."""

    def binds() -> tuple[bool, bool]:
        s = ldap3.Server(server.url, get_info=ldap3.NONE)
        bad = ldap3.Connection(s, user="cn=admin,o=grid", password="secret", raise_exceptions=False)
        good = ldap3.Connection(s, raise_exceptions=False)
        try:
            return bad.bind(), good.bind()
        finally:
            bad.unbind()
            good.unbind()

    bad, good = yield in_thread(binds)
    assert (bad, good) == (False, True)


@pytest_twisted.inlineCallbacks
def test_compare_uses_schema_matching(server):  # type: ignore[no-untyped-def]
    """compare answers compareTrue/compareFalse with the attribute's matching rule."""

    def compare() -> list[bool]:
        conn = ldap3.Connection(ldap3.Server(server.url, get_info=ldap3.NONE), auto_bind=True)
        dn = "GLUE2ServiceID=svc-1,GLUE2GroupID=resource,o=glue"
        out = [conn.compare(dn, "GLUE2ServiceType", "org.glite.FileTransfer"),
               conn.compare(dn, "GLUE2ServiceType", "ORG.glite.FileTransfer")]
        conn.unbind()
        return out

    assert (yield in_thread(compare)) == [True, False]


@pytest_twisted.inlineCallbacks
def test_ldapsearch_sees_the_same_tree(server):  # type: ignore[no-untyped-def]
    """OpenLDAP's ldapsearch decodes our answers: base64 values, escaped DNs, attribute selection."""
    proc = yield in_thread(ldapsearch, server.url, "-b", "o=glue", "(objectClass=GLUE2Service)",
                           "GLUE2ServiceDescription", "GLUE2ServiceID")
    assert proc.returncode == 0, proc.stderr
    got = parse_ldapsearch(proc.stdout)
    assert got == {"GLUE2ServiceID=svc-1,GLUE2GroupID=resource,o=glue": {
        "GLUE2ServiceID": ["svc-1"], "GLUE2ServiceDescription": ["Démo service, Zürich"]}}


@pytest_twisted.inlineCallbacks
def test_ldapsearch_ldapv2_and_filter_whitespace(server):  # type: ignore[no-untyped-def]
    """An LDAPv2 bind (-P 2) is accepted and a filter with spaces between components works (FTS3)."""
    proc = yield in_thread(ldapsearch, server.url, "-P", "2", "-b", "o=glue",
                           "(& (objectClass=GLUE2Endpoint) (GLUE2EndpointURL=*) )", "GLUE2EndpointURL")
    assert proc.returncode == 0, proc.stderr
    assert parse_ldapsearch(proc.stdout)["GLUE2EndpointID=svc-1-ep,GLUE2ServiceID=svc-1,GLUE2GroupID=resource,o=glue"] \
        == {"GLUE2EndpointURL": ["https://fts.example.org:8446"]}


@pytest_twisted.inlineCallbacks
def test_extensible_dn_match(server):  # type: ignore[no-untyped-def]
    """`(GLUE2GroupID:dn:=resource)` finds the group and everything named below it (Q20)."""
    proc = yield in_thread(ldapsearch, server.url, "-b", "o=glue", "(GLUE2GroupID:dn:=resource)", "1.1")
    assert proc.returncode == 0, proc.stderr
    assert len(parse_ldapsearch(proc.stdout)) == 3


def _raw_request(port: int, payload: bytes, until: bytes | None = None) -> bytes:
    """Send raw bytes; read until the server closes (or `until` shows up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
            if until is not None and until in b"".join(chunks[-2:]):
                break
        return b"".join(chunks)


@pytest_twisted.inlineCallbacks
def test_malformed_request_closes_only_that_connection(server):  # type: ignore[no-untyped-def]
    """Garbage bytes get the connection closed; another client is answered as before."""
    port = server.port.getHost().port
    reply = yield in_thread(_raw_request, port, b"\x30\x05\x02\x01\x01\xff\xff" + b"junk" * 10)
    assert reply == b""
    result, entries = yield in_thread(ldap3_search, server.url, "o=grid", attributes=["1.1"])
    assert result["result"] == 0 and len(entries) == 6


@pytest_twisted.inlineCallbacks
def test_time_limit_gives_partial_results_and_code_3(serve):  # type: ignore[no-untyped-def]
    """With a clock that runs past the client's time limit, the search stops with timeLimitExceeded."""
    from bdii.service import ldapserver

    srv = serve(snapshot_from_ldif(DATA))
    ticks = iter(range(0, 10_000, 1))
    original = srv.factory.buildProtocol

    def build(addr):  # type: ignore[no-untyped-def]
        p = original(addr)
        p.clock = lambda: float(next(ticks))  # one second per look at the clock
        return p

    srv.factory.buildProtocol = build
    result, entries = yield in_thread(ldap3_search, srv.url, "o=grid", time_limit=3, attributes=["1.1"])
    assert result["result"] == ldapserver.TIME_LIMIT
    assert 0 < len(entries) < 5


@pytest_twisted.inlineCallbacks
def test_search_in_flight_finishes_on_its_snapshot(serve):  # type: ignore[no-untyped-def]
    """A swap during a streamed search does not change what that search returns."""
    srv = serve(snapshot_from_ldif(BIG))
    replacement = snapshot_from_ldif(SKELETON)

    class SwapOnFirstRead(SnapshotHolder):
        """Swaps to `replacement` just after the first search takes its snapshot."""

        def __init__(self, snap):  # type: ignore[no-untyped-def]
            self.snap = snap
            self.call = None

        @property
        def current(self):  # type: ignore[no-untyped-def]
            snap = self.snap
            if self.call is None:
                self.call = reactor.callLater(0, self.swap, replacement)
            return snap

        def swap(self, snapshot):  # type: ignore[no-untyped-def]
            self.snap = snapshot

    srv.factory.holder = SwapOnFirstRead(srv.holder.current)
    d = in_thread(ldap3_search, srv.url, "o=glue", "(objectClass=GLUE2Service)", attributes=["GLUE2ServiceID"])
    result, entries = yield d
    assert result["result"] == 0
    assert len(entries) == 2000
    _r, after = yield in_thread(ldap3_search, srv.url, "o=glue", "(objectClass=GLUE2Service)")
    assert after == []


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(message ID, protocolOp tag) of each LDAPMessage in a byte stream."""
    out, pos = [], 0
    while pos < len(data):
        first = data[pos + 1]
        hdr = 2 if first < 0x80 else 2 + (first & 0x7F)
        length = first if first < 0x80 else int.from_bytes(data[pos + 2:pos + hdr], "big")
        idlen = data[pos + hdr + 1]
        msgid = int.from_bytes(data[pos + hdr + 2:pos + hdr + 2 + idlen], "big")
        out.append((msgid, data[pos + hdr + 2 + idlen]))
        pos += hdr + length
    return out


@pytest_twisted.inlineCallbacks
def test_abandoned_search_stops_and_the_connection_goes_on(serve):  # type: ignore[no-untyped-def]
    """An abandon stops a streaming search (no more entries, no result); the next request is answered."""
    from ldaptor import ldapfilter
    from ldaptor.protocols import pureldap

    srv = serve(snapshot_from_ldif(BIG))
    search = pureldap.LDAPSearchRequest(baseObject="o=glue", filter=ldapfilter.parseFilter("(objectClass=*)"))
    payload = (pureldap.LDAPMessage(pureldap.LDAPBindRequest(), id=1).toWire()
               + pureldap.LDAPMessage(search, id=2).toWire()
               + pureldap.LDAPMessage(pureldap.LDAPAbandonRequest(id=2), id=3).toWire()
               + pureldap.LDAPMessage(pureldap.LDAPSearchRequest(
                   baseObject="o=glue", scope=0, filter=ldapfilter.parseFilter("(objectClass=*)")), id=4).toWire())
    reply = yield in_thread(_raw_request, srv.port.getHost().port, payload, until=b"\x02\x01\x04\x65")
    frames = _frames(reply)
    entries_of_2 = [f for f in frames if f == (2, 0x64)]
    assert 0 < len(entries_of_2) < 2000
    assert (2, 0x65) not in frames  # an abandoned operation gets no result
    assert frames[-2:] == [(4, 0x64), (4, 0x65)]


@pytest_twisted.inlineCallbacks
def test_unbind_closes_even_with_output_pending(serve):  # type: ignore[no-untyped-def]
    """An unbind right after a large search closes the connection (outstanding operations are abandoned)."""
    from ldaptor import ldapfilter
    from ldaptor.protocols import pureldap

    srv = serve(snapshot_from_ldif(BIG))
    search = pureldap.LDAPSearchRequest(baseObject="o=glue", filter=ldapfilter.parseFilter("(objectClass=*)"))
    payload = (pureldap.LDAPMessage(search, id=1).toWire()
               + pureldap.LDAPMessage(pureldap.LDAPUnbindRequest(), id=2).toWire())
    reply = yield in_thread(_raw_request, srv.port.getHost().port, payload)
    assert (1, 0x65) not in _frames(reply)


@pytest_twisted.inlineCallbacks
def test_repeated_search_is_answered_from_the_snapshot_result_cache(serve):  # type: ignore[no-untyped-def]
    """A search that ran to its end is kept with its snapshot; a limited one is not, and a new snapshot starts afresh."""
    snap = snapshot_from_ldif(DATA)
    srv = serve(snap)
    flt = "(objectClass=GlueCE)"
    _r, limited = yield in_thread(ldap3_search, srv.url, "o=grid", flt, size_limit=1, attributes=["1.1"])
    assert len(limited) == 1 and not snap._results  # a partial result is never kept
    _r, first = yield in_thread(ldap3_search, srv.url, "o=grid", flt, attributes=["GlueCEUniqueID"])
    assert len(snap._results) == 1
    _r, again = yield in_thread(ldap3_search, srv.url, "o=grid", flt, attributes=["GlueCEUniqueID"])
    _r, limited_again = yield in_thread(ldap3_search, srv.url, "o=grid", flt, size_limit=1, attributes=["1.1"])
    assert again == first and len(first) == 2 and len(limited_again) == 1
    fresh = snapshot_from_ldif(SKELETON)
    srv.holder.swap(fresh)
    _r, after = yield in_thread(ldap3_search, srv.url, "o=grid", flt, attributes=["GlueCEUniqueID"])
    assert after == [] and len(fresh._results) == 1


def _connect_without_reading(port: int, payload: bytes) -> socket.socket:
    """A client with a tiny receive window that sends a request and reads nothing yet."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(payload)
    return s


def _read_until_done(s: socket.socket, msgid: int) -> bytes:
    # SearchResultDone(success) for a 1-byte message ID: 30 0c 02 01 ID 65 07 0a 01 00 04 00 04 00
    done = bytes((0x30, 0x0C, 0x02, 0x01, msgid, 0x65, 0x07, 0x0A, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00))
    s.settimeout(30)
    data = b""
    with s:
        while not data.endswith(done):
            chunk = s.recv(1 << 20)
            assert chunk, "the server closed before the end of the search"
            data += chunk
    return data


@pytest_twisted.inlineCallbacks
def test_a_client_that_does_not_read_holds_back_only_its_own_answer(serve):  # type: ignore[no-untyped-def]
    """A 12 MB answer to a client that does not read fills the socket; the rest
    waits in our buffer (answers are written straight to the socket while it
    takes them), other clients are answered meanwhile, and the slow client then
    gets every entry, framed whole, and the result."""
    from ldaptor import ldapfilter
    from ldaptor.protocols import pureldap

    many = SKELETON + "".join(
        f"\ndn: GLUE2ServiceID=s{i},GLUE2GroupID=resource,o=glue\nobjectClass: GLUE2Service\n"
        f"GLUE2ServiceID: s{i}\nGLUE2ServiceDescription: {'x' * 500}\n" for i in range(20000))
    srv = serve(snapshot_from_ldif(many))
    port = srv.port.getHost().port
    search = pureldap.LDAPSearchRequest(baseObject="o=glue", filter=ldapfilter.parseFilter("(objectClass=GLUE2Service)"))
    slow = yield in_thread(_connect_without_reading, port, pureldap.LDAPMessage(search, id=7).toWire())
    try:
        _r, other = yield in_thread(ldap3_search, srv.url, "o=glue", "(GLUE2ServiceID=s19999)",
                                    attributes=["GLUE2ServiceID"])
    except BaseException:
        slow.close()
        raise
    assert [a["GLUE2ServiceID"] for _dn, a in other] == [[b"s19999"]]
    data = yield in_thread(_read_until_done, slow, 7)
    frames = _frames(data)
    assert len(data) > 10_000_000
    assert frames.count((7, 0x64)) == 20000 and frames[-1] == (7, 0x65) and len(frames) == 20001


@pytest_twisted.inlineCallbacks
def test_a_request_read_as_the_connection_is_retired_is_answered_before_the_hand_over(serve):  # type: ignore[no-untyped-def]
    """The reactor hands out every event of one poll: a request whose read
    event came in the same poll as the order to retire is read after
    retire(). It is answered here, and the connection handed over after
    the answer (before, the hand-over went first and the answer was lost:
    the client waited for the rest forever)."""
    import os

    from ldaptor import ldapfilter
    from ldaptor.protocols import pureldap
    from twisted.internet.task import deferLater

    server = serve(snapshot_from_ldif(BIG))  # an answer that streams in many batches
    handed: list[int] = []
    server.factory.hand_off = lambda fd, _family: (handed.append(fd), os.close(fd))
    client = yield in_thread(socket.create_connection, ("127.0.0.1", server.port.getHost().port))
    while not server.factory.protocols:
        yield deferLater(reactor, 0, lambda: None)  # a turn of the reactor: it accepts
    (proto,) = server.factory.protocols
    search = pureldap.LDAPSearchRequest(baseObject="o=glue", filter=ldapfilter.parseFilter("(objectClass=GLUE2Service)"))
    server.factory.retire()
    proto.dataReceived(pureldap.LDAPMessage(search, id=5).toWire())  # as the reactor would, from that poll
    data = yield in_thread(_read_until_done, client, 5)
    assert _frames(data) == [(5, 0x64)] * 2000 + [(5, 0x65)]
    while not handed:
        yield deferLater(reactor, 0, lambda: None)
    assert len(handed) == 1 and not server.factory.protocols
