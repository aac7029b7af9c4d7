"""The LDAP front end: ldaptor decodes requests, our snapshot answers them.

Read-only and anonymous, like a BDII's slapd: binds are accepted for LDAPv2
and v3 (anonymous or unauthenticated simple), searches run on the snapshot
current when they arrive (a refresh swaps the reference; a search in flight
keeps its own), and every write is refused with strongerAuthRequired, as
slapd answers an anonymous client. Results stream with backpressure in
batches so that a full dump neither blocks other clients nor makes us
buffer the whole tree for a slow reader.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ldaptor.protocols import pureber, pureldap
from ldaptor.protocols.ldap.ldapserver import BaseLDAPServer
from twisted.internet import defer, interfaces
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from zope.interface import implementer

from bdii.core import ber, packed
from bdii.core import filters as F
from bdii.core.dn import DN
from bdii.core.errors import DNError
from bdii.core.ldapreq import RequestError, SearchRequest, decode_search
from bdii.core.matching import matcher
from bdii.core.packed import Packed
from bdii.core.snapshot import BASE, ONE, OPERATIONAL, SUB, SearchLimit, Snapshot
from bdii.service.metrics import Metrics

log = Logger()

# RFC 4511 appendix A result codes used here.
SUCCESS, OPERATIONS_ERROR, PROTOCOL_ERROR, TIME_LIMIT, SIZE_LIMIT = 0, 1, 2, 3, 4
COMPARE_FALSE, COMPARE_TRUE, AUTH_METHOD_NOT_SUPPORTED, STRONGER_AUTH = 5, 6, 7, 8
UNAVAILABLE_CRITICAL_EXTENSION, NO_SUCH_OBJECT, INVALID_DN = 12, 32, 34
INVALID_CREDENTIALS, UNWILLING = 49, 53

# The response type of each request type (RFC 4511 section 4.2-4.10).
_RESPONSE_OF = {
    pureldap.LDAPSearchRequest: pureldap.LDAPSearchResultDone,
    pureldap.LDAPBindRequest: pureldap.LDAPBindResponse,
    pureldap.LDAPModifyRequest: pureldap.LDAPModifyResponse,
    pureldap.LDAPAddRequest: pureldap.LDAPAddResponse,
    pureldap.LDAPDelRequest: pureldap.LDAPDelResponse,
    pureldap.LDAPModifyDNRequest: pureldap.LDAPModifyDNResponse,
    pureldap.LDAPCompareRequest: pureldap.LDAPCompareResponse,
}

BATCH_BYTES = 64 * 1024
MAX_REQUEST = 4 * 1024 * 1024  # DIRAC's 1000-ID OR filters are ~100 kB
WHOAMI_OID = b"1.3.6.1.4.1.4203.1.11.3"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def to_filter(f: pureldap.LDAPFilter) -> F.Filter:
    """ldaptor's decoded filter objects to our own AST."""
    if isinstance(f, pureldap.LDAPFilter_and):
        return F.And(tuple(to_filter(x) for x in f))
    if isinstance(f, pureldap.LDAPFilter_or):
        return F.Or(tuple(to_filter(x) for x in f))
    if isinstance(f, pureldap.LDAPFilter_not):
        return F.Not(to_filter(f.value))
    if isinstance(f, pureldap.LDAPFilter_present):
        return F.Present(_text(f.value))
    if isinstance(f, pureldap.LDAPFilter_substrings):
        initial = final = None
        parts = []
        for s in f.substrings:
            if isinstance(s, pureldap.LDAPFilter_substrings_initial):
                initial = _text(s.value)
            elif isinstance(s, pureldap.LDAPFilter_substrings_final):
                final = _text(s.value)
            else:
                parts.append(_text(s.value))
        return F.Substrings(_text(f.type), initial, tuple(parts), final)
    if isinstance(f, pureldap.LDAPFilter_extensibleMatch):
        return F.Extensible(
            _text(f.matchingRule.value) if f.matchingRule is not None else None,
            _text(f.type.value) if f.type is not None else None,
            _text(f.matchValue.value),
            bool(f.dnAttributes and f.dnAttributes.value),
        )
    kinds = {
        pureldap.LDAPFilter_equalityMatch: F.Equality,
        pureldap.LDAPFilter_approxMatch: F.Approx,
        pureldap.LDAPFilter_greaterOrEqual: F.GreaterOrEqual,
        pureldap.LDAPFilter_lessOrEqual: F.LessOrEqual,
    }
    kind = kinds.get(type(f))
    if kind is None:
        raise ValueError(f"unsupported filter {type(f).__name__}")
    return kind(_text(f.attributeDesc.value), _text(f.assertionValue.value))


@dataclass(frozen=True, slots=True)
class Selection:
    """Which attributes a search asked for (RFC 4511 section 4.5.1.8)."""

    all_user: bool
    all_operational: bool
    keys: frozenset[str]
    types_only: bool

    @classmethod
    def parse(cls, attributes: list[bytes], types_only: bool) -> Selection:
        names = [_text(a).strip() for a in attributes]
        names = [n for n in names if n]
        keys = frozenset(matcher(n.split(";")[0]).key for n in names if n not in ("*", "+", "1.1"))
        all_user = not names or "*" in names
        return cls(all_user, "+" in names, keys, bool(types_only))

    @property
    def cacheable(self) -> bool:
        return self.all_user and not self.keys - {"objectclass"} and not self.all_operational and not self.types_only

    @property
    def operational(self) -> bool:
        """Whether any operational attribute is wanted (they are built per entry)."""
        return self.all_operational or not self.keys.isdisjoint(OPERATIONAL)


_blen = packed.blen
_attribute = packed.attribute


class _SelectionCache:
    """Entries encoded for a named attribute list, for one snapshot's life.

    Clients ask for the same few attribute lists all day (gfal2, FTS,
    lcg-infosites each have theirs) with ever different filters, so the
    same entries come back with the same attributes under many requests.
    Bounded: once full, nothing more is kept until the next snapshot.
    """

    LIMIT = 32 * 1024 * 1024  # bytes of encoded entries per serving process

    def __init__(self) -> None:
        self.source: Any = None  # the entry list of the snapshot these belong to
        self.by_selection: dict[Selection, dict[int, bytes]] = {}
        self.size = 0

    def table(self, snap: Snapshot, sel: Selection) -> dict[int, bytes] | None:
        if snap.entries is not self.source:
            self.source, self.by_selection, self.size = snap.entries, {}, 0
        if self.size > self.LIMIT:
            return None
        t = self.by_selection.get(sel)
        if t is None:
            t = self.by_selection[sel] = {}
        return t


_BY_SELECTION = _SelectionCache()


_LAST: Packed | None = None  # what the last snapshot was packed into: the next one copies from it


def pre_encode(snap: Snapshot) -> tuple[int, int]:
    """Pack `snap` for the serving processes (see bdii.core.packed), reusing
    the bytes of the entries it shares with the last snapshot packed;
    (entries encoded, reused)."""
    global _LAST
    store, reused = Packed.build(snap.entries, _LAST)
    snap.packed = store
    _LAST = store
    return len(store) - reused, reused


_POSITIONS: dict[tuple[Any, frozenset[str]], tuple[int, ...]] = {}


def _positions(shape: Any, keys: frozenset[str]) -> tuple[int, ...]:
    """Where the named attributes are in a layout, objectClass first as
    slapd shows it: once per layout and attribute list, not per entry."""
    found = _POSITIONS.get((shape, keys))
    if found is None:
        if len(_POSITIONS) > 100_000:
            _POSITIONS.clear()
        at = [(-1 if key == "objectclass" else j, j) for key in keys if (j := shape.index.get(key)) is not None]
        found = _POSITIONS[(shape, keys)] = tuple(j for _order, j in sorted(at))
    return found


def encode_entry(snap: Snapshot, i: int, sel: Selection) -> bytes:
    """The SearchResultEntry protocolOp of entry `i` with the attributes `sel` asks for.

    From the packed snapshot when the main process made one for the
    workers (slices of its bytes: no entry object touched), else from the
    entry. Full entries are cached per snapshot, named selections per
    snapshot and selection.
    """
    store = snap.packed if not sel.types_only else None
    table = None
    if sel.cacheable:
        if store is not None:
            return store.op(i)  # type: ignore[return-value]  # a buffer: joined, never kept
        cached = snap.encoded(i)
        if cached is not None:
            return cached
    else:
        table = _BY_SELECTION.table(snap, sel)
        if table is not None:
            cached = table.get(i)
            if cached is not None:
                return cached
    if store is not None:
        if sel.all_user:
            parts = [store.attributes(i)]
        else:
            parts = [store.attribute(i, j) for j in _positions(store.shape(i), sel.keys)]
        dn = store.dn_tlv(i)
    else:
        entry = snap.entries[i]
        if sel.all_user:
            parts = [_attribute(name, values, sel.types_only) for name, values in entry.items()]
        else:
            names, vals = entry.shape.names, entry.vals
            parts = [_attribute(names[j], vals[j], sel.types_only) for j in _positions(entry.shape, sel.keys)]
        dn = ber.octets(str(entry.dn).encode("utf-8", "surrogateescape"))
    if sel.operational:
        for key, (name, values) in snap.operational(i).items():
            if sel.all_operational or key in sel.keys:
                parts.append(_attribute(name, values, sel.types_only))
    attrs = b"".join(parts)
    body = dn + b"\x30" + _blen(len(attrs)) + attrs
    op = b"\x64" + _blen(len(body)) + body
    if sel.cacheable:
        snap.remember_encoded(i, op)
    elif table is not None:
        table[i] = op
        _BY_SELECTION.size += len(op) + 100
    return op


def root_dse(snap: Snapshot, sel: Selection) -> bytes:
    """The root DSE: user attributes as slapd shows them, the rest with `+`."""
    user = [(b"objectClass", [b"top", b"OpenLDAProotDSE"])]
    oper = [
        (b"namingContexts", [str(dn).encode() for dn in sorted(snap.suffixes(), key=_context_order)]),
        (b"supportedLDAPVersion", [b"2", b"3"]),
        (b"supportedExtension", [WHOAMI_OID]),
        (b"supportedControl", []),
        (b"structuralObjectClass", [b"OpenLDAProotDSE"]),
    ]
    attrs = [a for a in user if sel.all_user or a[0].decode().lower() in sel.keys]
    attrs += [a for a in oper if a[1] and (sel.all_operational or a[0].decode().lower() in sel.keys)]
    if sel.types_only:
        attrs = [(n, []) for n, _ in attrs]
    return ber.search_result_entry(b"", attrs)


_CONTEXTS = ("o=grid", "o=glue", "o=infosys")


def _context_order(dn: DN) -> tuple[int, str]:
    """Naming contexts in the order the legacy slapd configuration lists them."""
    text = str(dn).lower()
    return (_CONTEXTS.index(text) if text in _CONTEXTS else len(_CONTEXTS), text)


class SnapshotHolder:
    """The one reference a refresh swaps; every search reads it once."""

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self.current = snapshot or Snapshot.empty()
        self.listeners: list[Callable[[Snapshot], None]] = []

    def swap(self, snapshot: Snapshot) -> defer.Deferred:
        """Fires when every listener (the worker pool: a new serving
        generation) has taken the snapshot in."""
        self.current = snapshot
        return defer.gatherResults([defer.maybeDeferred(listener, snapshot) for listener in self.listeners],
                                   consumeErrors=True)


class _Search:
    """One search being streamed: an iterator of encoded messages."""

    def __init__(self, msgid: int, messages: Iterator[bytes]) -> None:
        self.msgid = msgid
        self.messages = messages
        self.abandoned = False


@implementer(interfaces.IPushProducer)
class LDAPProtocol(BaseLDAPServer):
    """One client connection."""

    def __init__(self, holder: SnapshotHolder, clock: Callable[[], float] = time.monotonic,
                 scheduler: Callable[..., object] | None = None, metrics: Metrics | None = None) -> None:
        super().__init__()
        self.holder = holder
        self.clock = clock
        self.scheduler = scheduler
        self.metrics = metrics if metrics is not None else Metrics()
        self.started_at: dict[int, float] = {}  # message id -> clock() when it came in
        self.queue_: deque[_Search] = deque()
        self.paused = False
        self.running = False
        self.peer = "?"
        self.retiring = False  # this process is handing its connections over
        self.handed_off: tuple[int, int] | None = None  # (dup'ed descriptor, address family)
        self._handoff_due = False

    # --- connection --------------------------------------------------------
    def connectionMade(self) -> None:
        super().connectionMade()
        peer = self.transport.getPeer()
        self.peer = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        self.transport.registerProducer(self, True)
        set_nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            # Small answers go out at once, as slapd's do (no Nagle delay
            # behind a client's delayed ACK).
            set_nodelay(True)
        self.metrics.connection_opened()
        factory = getattr(self, "factory", None)
        if factory is not None:
            factory.protocols.add(self)
            self.retiring = factory.retiring

    def connectionLost(self, reason: object = None) -> None:
        super().connectionLost(reason)
        self.metrics.connection_closed()
        for s in self.queue_:
            s.abandoned = True
        self.queue_.clear()
        factory = getattr(self, "factory", None)
        if factory is not None:
            factory.protocols.discard(self)
            if self.handed_off is not None:
                factory.hand_off(*self.handed_off)

    # --- handing the connection to the next generation of workers -----------
    def retire(self) -> None:
        self.retiring = True
        self._maybe_hand_off()

    def _maybe_hand_off(self) -> None:
        """Between two requests, give the socket to the next serving process.

        Only when nothing is half-read or still to answer: the next owner
        then reads the client's next request from the kernel, and the client
        never notices. Our descriptor is closed without a TCP shutdown; the
        dup'ed one goes to the new process once our last bytes are flushed
        (from connectionLost), so answers never overtake each other.

        Done from a timed call, never from an I/O event: the reactor hands
        out every event of one poll, and a read event polled before
        stopReading() is still delivered. The old process then read a
        request as it was closing, and the close cut its answer short: the
        client waited forever (2-8 clients in 30 s of 16 connections with a
        refresh every 1.5 s).
        """
        if self._handoff_due or not self._can_hand_off():
            return
        self._handoff_due = True
        (self.scheduler or _call_soon)(0, self._hand_off_now)

    def _can_hand_off(self) -> bool:
        return (self.retiring and bool(self.connected) and self.handed_off is None and not self.buffer
                and not self.queue_ and not self.running and not self.started_at)

    def _hand_off_now(self) -> None:
        self._handoff_due = False
        if not self._can_hand_off():
            return  # a request came in meanwhile: after its answer, again
        t = self.transport
        sock = getattr(t, "socket", None)
        if sock is None:
            return
        t.stopReading()
        self.handed_off = (os.dup(sock.fileno()), sock.family)
        t._shouldShutdown = False
        t.unregisterProducer()
        t.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while self.connected and self.buffer:
            size = _message_size(self.buffer)
            if size is None:
                return  # the outer length is not complete yet
            if size < 0 or size > MAX_REQUEST:
                self._drop("malformed or oversized request")
                return
            if len(self.buffer) < size:
                return
            frame, self.buffer = self.buffer[:size], self.buffer[size:]
            try:
                fast = decode_search(frame)
            except RequestError as exc:
                self._drop(f"undecodable request ({exc})")
                return
            if fast is not None:  # searches: our decoder, 10x faster than ldaptor's
                if not self._guarded(self._search_request, fast):
                    return
                continue
            try:
                # The frame is complete: "insufficient data" now means junk.
                msg, used = pureber.berDecodeObject(self.berdecoder, frame)
            except Exception as exc:  # noqa: BLE001 - any decoding failure
                self._drop(f"undecodable request ({type(exc).__name__})")
                return
            if used != size or not isinstance(msg, pureldap.LDAPMessage) \
                    or not isinstance(msg.value, pureldap.LDAPProtocolRequest):
                self._drop("not an LDAP request")
                return
            if not self._guarded(self.handle, msg):
                return
        if self.retiring:
            self._maybe_hand_off()

    def _guarded(self, handler: Callable[[Any], None], request: Any) -> bool:
        """Answer one request; a failure closes this connection, not the server."""
        try:
            handler(request)
        except Exception:  # noqa: BLE001 - one bad request must not kill the server
            log.failure("request from {peer} failed", peer=self.peer)
            self._drop("internal error")
            return False
        return True

    def _drop(self, why: str) -> None:
        log.warn("closing connection from {peer}: {why}", peer=self.peer, why=why)
        self._close()

    def _close(self) -> None:
        """Stop every search of this connection and close it.

        The producer is unregistered first: a transport whose producer is
        paused resumes it when its buffer drains instead of closing.
        """
        self.buffer = b""
        self.connected = 0
        self.stopProducing()
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def handle(self, msg: pureldap.LDAPMessage) -> None:
        req = msg.value
        name = type(req).__name__
        handler = getattr(self, "do_" + name, None)
        if handler is None:
            self._drop(f"unsupported request {name}")
            return
        if not isinstance(req, (pureldap.LDAPUnbindRequest, pureldap.LDAPAbandonRequest)):
            self.started_at[msg.id] = self.clock()
            for control in msg.controls or ():
                if control[1]:
                    self._result(msg.id, req, UNAVAILABLE_CRITICAL_EXTENSION,
                                 message=f"critical control {_text(control[0])} not supported")
                    return
        handler(msg.id, req)

    def _search_request(self, req: SearchRequest) -> None:
        self.started_at[req.msgid] = self.clock()
        for oid, critical in req.controls:
            if critical:
                self._send(self._done(req.msgid, UNAVAILABLE_CRITICAL_EXTENSION,
                                      f"critical control {oid} not supported"))
                return
        self.search(req)

    def _send(self, data: bytes) -> None:
        if self.connected:
            self._write([data])

    def _write(self, chunks: list[bytes]) -> None:
        """Send now when nothing is queued before us, else queue in the transport.

        Twisted always queues, then asks epoll to say when the socket is
        writable and sends on the next loop turn: two epoll_ctl calls and a
        turn per answer, a tenth of the cost of a small search. An idle
        socket can nearly always take a small answer at once; what it does
        not take is queued as before (and Twisted reports any error).
        """
        t = self.transport
        sock = getattr(t, "socket", None)
        if sock is None or t.dataBuffer or getattr(t, "_tempDataLen", 1) or t.disconnecting:
            t.writeSequence(chunks)
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            sent = sock.send(data)
        except OSError:  # EAGAIN, or an error Twisted will find and report on its own write
            sent = 0
        if sent < len(data):
            t.write(data[sent:])

    def _result(self, msgid: int, req: object, code: int, matched: str = "", message: str = "") -> None:
        kind = _RESPONSE_OF.get(type(req))
        if kind is None:
            op = pureldap.LDAPExtendedResponse(resultCode=code, matchedDN=matched, errorMessage=message)
        else:
            op = kind(resultCode=code, matchedDN=matched, errorMessage=message)
        self._counted(msgid, type(req).__name__, code)
        self._send(pureldap.LDAPMessage(op, id=msgid).toWire())

    def _counted(self, msgid: int, request_type: str, code: int) -> None:
        """Metrics: one request answered with `code` (its final response)."""
        t0 = self.started_at.pop(msgid, None)
        self.metrics.request_done(request_type, code, 0.0 if t0 is None else self.clock() - t0)

    # --- operations ----------------------------------------------------------
    def do_LDAPBindRequest(self, msgid: int, req: pureldap.LDAPBindRequest) -> None:
        if req.version not in (2, 3):
            self._result(msgid, req, PROTOCOL_ERROR, message=f"LDAP version {req.version} not supported")
        elif req.sasl:
            self._result(msgid, req, AUTH_METHOD_NOT_SUPPORTED, message="SASL is not supported; bind anonymously")
        elif req.auth:
            # There are no accounts: a password can never be right.
            self._result(msgid, req, INVALID_CREDENTIALS, message="this server only accepts anonymous binds")
        else:
            self._result(msgid, req, SUCCESS)

    def do_LDAPUnbindRequest(self, msgid: int, req: object) -> None:
        # RFC 4511 section 4.3: outstanding operations are abandoned.
        self._close()

    def do_LDAPAbandonRequest(self, msgid: int, req: pureldap.LDAPAbandonRequest) -> None:
        for s in self.queue_:
            if s.msgid == req.value:
                s.abandoned = True
        self.started_at.pop(req.value, None)

    def _refuse(self, msgid: int, req: object) -> None:
        self._result(msgid, req, STRONGER_AUTH, message="modifications require authentication")

    do_LDAPAddRequest = do_LDAPModifyRequest = do_LDAPDelRequest = do_LDAPModifyDNRequest = _refuse

    def do_LDAPExtendedRequest(self, msgid: int, req: pureldap.LDAPExtendedRequest) -> None:
        name = getattr(req.requestName, "value", req.requestName)
        if name == WHOAMI_OID:
            self._counted(msgid, type(req).__name__, SUCCESS)
            self._send(pureldap.LDAPMessage(pureldap.LDAPExtendedResponse(resultCode=SUCCESS), id=msgid).toWire())
        else:
            self._result(msgid, req, PROTOCOL_ERROR, message="unsupported extended operation")

    def do_LDAPCompareRequest(self, msgid: int, req: pureldap.LDAPCompareRequest) -> None:
        snap = self.holder.current
        try:
            dn = DN.parse(_text(req.entry))
        except DNError as exc:
            self._result(msgid, req, INVALID_DN, message=str(exc))
            return
        i = snap.find(dn)
        if i is None:
            matched = snap.matched_dn(dn)
            self._result(msgid, req, NO_SUCH_OBJECT, matched=str(matched) if matched else "")
            return
        attr, value = _text(req.ava.attributeDesc.value), _text(req.ava.assertionValue.value)
        r = snap.compile(F.Equality(attr, value)).match(i)
        code = COMPARE_TRUE if r is True else COMPARE_FALSE
        self._result(msgid, req, code)

    def do_LDAPSearchRequest(self, msgid: int, req: pureldap.LDAPSearchRequest) -> None:
        """A search ldaptor decoded (the fast decoder normally takes them all)."""
        try:
            flt = to_filter(req.filter)
        except (ValueError, AttributeError) as exc:
            self._send(self._done(msgid, PROTOCOL_ERROR, f"bad filter: {exc}"))
            return
        self.search(SearchRequest(msgid, _text(req.baseObject), req.scope, req.derefAliases, req.sizeLimit,
                                  req.timeLimit, bool(req.typesOnly), flt,
                                  tuple(_text(a) for a in req.attributes), ()))

    def search(self, req: SearchRequest) -> None:
        msgid = req.msgid
        snap = self.holder.current  # read once: this search never sees another generation
        started = self.clock()
        try:
            base = DN.parse(req.base)
        except DNError as exc:
            self._send(self._done(msgid, INVALID_DN, str(exc)))
            return
        flt = req.filter
        sel = Selection.parse(req.attributes, req.types_only)
        if not base:
            if req.scope == BASE:
                match = _root_dse_matches(flt)
                msgs = [ber.message(msgid, root_dse(snap, sel))] if match else []
                self._enqueue(_Search(msgid, iter(msgs + [self._done(msgid, SUCCESS)])))
            else:
                self._send(self._done(msgid, NO_SUCH_OBJECT))
            return
        i = snap.find(base)
        if i is None:
            matched = snap.matched_dn(base)
            self._send(self._done(msgid, NO_SUCH_OBJECT, matched=str(matched) if matched else ""))
            return
        if req.scope not in (BASE, ONE, SUB):
            self._send(self._done(msgid, PROTOCOL_ERROR, "invalid scope"))
            return
        deadline = started + req.time_limit if req.time_limit else None
        key = (i, req.scope, flt)
        hit = snap.cached_result(key)
        if hit is not None:
            self._enqueue(_Search(msgid, self._results(snap, msgid, iter(hit), req.size_limit, sel, deadline)))
            return
        ids = snap.search(i, req.scope, snap.compile(flt), deadline, self.clock)

        def remember(found: list[int]) -> None:
            snap.remember_result(key, found)

        self._enqueue(_Search(msgid, self._results(snap, msgid, ids, req.size_limit, sel, deadline, remember)))

    def _done(self, msgid: int, code: int, message: str = "", matched: str = "") -> bytes:
        """A SearchResultDone, counted (encoded here: ldaptor's encoder is slow)."""
        self._counted(msgid, "LDAPSearchRequest", code)
        m, d = matched.encode("utf-8", "surrogateescape"), message.encode("utf-8", "surrogateescape")
        body = b"\x0a\x01" + bytes((code,)) + b"\x04" + _blen(len(m)) + m + b"\x04" + _blen(len(d)) + d
        return ber.message(msgid, b"\x65" + _blen(len(body)) + body)

    def _results(self, snap: Snapshot, msgid: int, ids: Iterator[int], limit: int,
                 sel: Selection, deadline: float | None,
                 remember: Callable[[list[int]], None] | None = None) -> Iterator[bytes]:
        """Encoded messages for the matching entries `ids`, then the result.

        Only a search that ran to its end (no size or time limit hit, not
        abandoned) hands its entries to `remember`.
        """
        found: list[int] = []
        mid = ber.integer(msgid)  # once, not per entry
        try:
            for i in ids:
                if limit and len(found) >= limit:
                    yield self._done(msgid, SIZE_LIMIT)
                    return
                op = encode_entry(snap, i, sel)
                yield b"\x30" + _blen(len(mid) + len(op)) + mid + op
                found.append(i)
                if deadline is not None and self.clock() > deadline:
                    raise SearchLimit()
        except SearchLimit:
            yield self._done(msgid, TIME_LIMIT)
            return
        if remember is not None:
            remember(found)
        yield self._done(msgid, SUCCESS)

    # --- streaming with backpressure -------------------------------------
    def _enqueue(self, search: _Search) -> None:
        self.queue_.append(search)
        if not self.running:
            self._pump()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        if not self.running:
            self._pump()

    def stopProducing(self) -> None:
        for s in self.queue_:
            s.abandoned = True
        self.queue_.clear()

    def _pump(self) -> None:
        """Write up to one batch, then yield to the reactor if more remains."""
        self.running = True
        try:
            budget = BATCH_BYTES
            chunks: list[bytes] = []
            while self.queue_ and not self.paused and self.connected:
                s = self.queue_[0]
                if s.abandoned:
                    self.queue_.popleft()
                    continue
                for data in s.messages:
                    chunks.append(data)
                    budget -= len(data)
                    if budget <= 0:
                        break
                else:
                    self.queue_.popleft()
                    continue
                break
            if chunks and self.connected:
                self._write(chunks)
        finally:
            self.running = False
        if self.queue_ and not self.paused and self.connected:
            self.running = True
            (self.scheduler or _call_soon)(0, self._continue)
        elif self.retiring:
            self._maybe_hand_off()

    def _continue(self) -> None:
        self.running = False
        self._pump()


def _call_soon(delay: float, fn: Callable[[], None]) -> object:
    from twisted.internet import reactor

    return reactor.callLater(delay, fn)  # type: ignore[attr-defined]


_ROOT_DSE: Snapshot | None = None


def _root_dse_matches(flt: F.Filter) -> bool:
    """Whether the filter matches the root DSE (objectClass top and
    OpenLDAProotDSE), evaluated by the same filter code as any entry."""
    global _ROOT_DSE
    if _ROOT_DSE is None:
        from bdii.core.entry import Entry

        root = DN.parse("")
        entry = Entry.from_pairs(root, [("objectClass", "top"), ("objectClass", "OpenLDAProotDSE"),
                                        ("supportedLDAPVersion", "2"), ("supportedLDAPVersion", "3")])
        _ROOT_DSE = Snapshot.build({root: entry}, {}, now=0)
    return _ROOT_DSE.compile(flt).match(0) is True


def _message_size(buf: bytes) -> int | None:
    """Total size of the BER TLV at the start of `buf`; None if the header
    is incomplete, -1 if it cannot be an LDAPMessage (X.690 8.1)."""
    if buf[0] != 0x30:
        return -1
    if len(buf) < 2:
        return None
    first = buf[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 4:
        return -1
    if len(buf) < 2 + n:
        return None
    return 2 + n + int.from_bytes(buf[2:2 + n], "big")


class LDAPServerFactory(Factory):
    """Builds one `LDAPProtocol` per connection, all reading `holder`."""

    noisy = False

    def __init__(self, holder: SnapshotHolder, reactor: object | None = None,
                 metrics: Metrics | None = None) -> None:
        self.holder = holder
        self.reactor = reactor
        self.metrics = metrics if metrics is not None else Metrics()
        self.protocols: set[LDAPProtocol] = set()
        self.retiring = False
        # (descriptor, address family) -> None: where retired connections go.
        self.hand_off: Callable[[int, int], None] = lambda fd, _family: os.close(fd)

    def retire(self) -> None:
        """Hand every connection over as soon as it is between requests."""
        self.retiring = True
        for p in list(self.protocols):
            p.retire()

    def buildProtocol(self, addr: object) -> LDAPProtocol:
        sched = getattr(self.reactor, "callLater", None)
        p = LDAPProtocol(self.holder, scheduler=sched, metrics=self.metrics)
        p.factory = self
        return p
