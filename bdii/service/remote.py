"""Remote LDAP sources: fetch a site's or resource's tree, asynchronously.

One small protocol per source, all in flight at once on the reactor: an
anonymous bind, one search per base (GLUE 1.3 and the matching GLUE 2.0
tree), unbind. What arrives is kept as the servers' own BER encoding of the
entries (decoded later, in the worker thread), so a fetch costs no parsing
on the reactor. Each source has a connect timeout, a deadline for the
searches and a cap on the bytes it may send; past either, the connection is
aborted and the source reported, and the cycle goes on with the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ldaptor import ldapfilter
from ldaptor.protocols import pureldap
from twisted.internet import defer, error, protocol
from twisted.logger import Logger

from bdii.core import ber
from bdii.core.pipeline import SourceResult
from bdii.core.urls import RemoteSource

log = Logger()

SUCCESS, NO_SUCH_OBJECT = 0, 32


class FetchFailed(Exception):
    def __init__(self, message: str, state: str = "failed") -> None:
        super().__init__(message)
        self.state = state


def search_filter(excluded: Sequence[str]) -> str:
    """Everything, or everything but the excluded object classes (Q22)."""
    if not excluded:
        return "(objectClass=*)"
    inner = "".join(f"(objectClass={c})" for c in excluded)
    return f"(!(|{inner}))" if len(excluded) > 1 else f"(!{inner})"


class _Fetch(protocol.Protocol):
    def __init__(self, source: RemoteSource, flt: str, max_bytes: int, done: defer.Deferred,
                 deadline: Callable[[], Any]) -> None:
        self.source = source
        self.filter = ldapfilter.parseFilter(flt)
        self.max_bytes = max_bytes
        self.done = done
        self.start_deadline = deadline
        self.buffer = bytearray()
        self.received = 0
        self.entries: list[bytes] = []
        self.pending: dict[int, str] = {}
        self.finished = False

    def connectionMade(self) -> None:
        self.start_deadline()
        out = [pureldap.LDAPMessage(pureldap.LDAPBindRequest(), id=1).toWire()]
        for i, base in enumerate(self.source.bases, start=2):
            req = pureldap.LDAPSearchRequest(baseObject=base, scope=pureldap.LDAP_SCOPE_wholeSubtree,
                                             filter=self.filter, attributes=[])
            out.append(pureldap.LDAPMessage(req, id=i).toWire())
            self.pending[i] = base
        self.transport.write(b"".join(out))

    def dataReceived(self, data: bytes) -> None:
        if self.finished:
            return
        self.received += len(data)
        if self.received > self.max_bytes:
            self.fail(FetchFailed(f"sent more than {self.max_bytes / 1e6:g} MB; fetch aborted", "too-large"))
            return
        self.buffer += data
        try:
            self._frames()
        except FetchFailed as exc:
            self.fail(exc)
        except ber.BerError as exc:
            self.fail(FetchFailed(f"malformed LDAP response: {exc}"))

    def _frames(self) -> None:
        buf = self.buffer
        pos = 0
        while not self.finished:
            size = ber.frame_size(buf, pos)
            if size is None or pos + size > len(buf):
                break
            frame = memoryview(buf)[pos:pos + size]
            msgid, tag, op_at, ostart, oend = ber.split_message(frame)
            if tag == 0x64:  # SearchResultEntry: keep the encoded op as is
                self.entries.append(bytes(frame[op_at:oend]))
            elif tag == 0x61:  # BindResponse
                code, msg = ber.result_code(frame, ostart, oend)
                if code != SUCCESS:
                    raise FetchFailed(f"anonymous bind refused (result {code}: {msg})")
            elif tag == 0x65:  # SearchResultDone
                code, msg = ber.result_code(frame, ostart, oend)
                base = self.pending.pop(msgid, "?")
                extra = base != self.source.bases[0]
                if code == NO_SUCH_OBJECT and extra:
                    pass  # no GLUE 2.0 tree next to this GLUE 1.3 one: fine
                elif code != SUCCESS:
                    raise FetchFailed(f"search of {base} failed (result {code}: {msg})")
                if not self.pending:
                    self.finish()
            frame.release()
            pos += size
        del buf[:pos]

    def finish(self) -> None:
        self.finished = True
        self.transport.write(pureldap.LDAPMessage(pureldap.LDAPUnbindRequest(), id=99).toWire())
        self.transport.loseConnection()
        self.done.callback((b"".join(self.entries), self.received))

    def fail(self, exc: Exception) -> None:
        if not self.finished:
            self.finished = True
            self.transport.abortConnection()
            self.done.errback(exc)

    def connectionLost(self, reason: Any = None) -> None:
        if not self.finished:
            self.finished = True
            self.done.errback(FetchFailed("connection closed before the searches finished"))


class _Factory(protocol.ClientFactory):
    def __init__(self, make: Callable[[], _Fetch], done: defer.Deferred) -> None:
        self.make = make
        self.done = done

    def buildProtocol(self, addr: Any) -> _Fetch:
        return self.make()

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        if not self.done.called:
            err = reason.value
            if isinstance(err, error.TimeoutError):
                msg = "connection timed out"
            elif isinstance(err, error.ConnectionRefusedError):
                msg = "connection refused"
            else:
                msg = f"cannot connect: {err}"
            self.done.errback(FetchFailed(msg))


@defer.inlineCallbacks
def fetch(reactor: Any, source: RemoteSource, timeout: float, max_bytes: int, excluded: Sequence[str] = (),
          now: Callable[[], float] = time.time):  # type: ignore[no-untyped-def]
    """Fetch one source; always returns a SourceResult (never raises)."""
    name = f"ldap/{source.name}"
    started = now()
    t0 = time.monotonic()
    done: defer.Deferred = defer.Deferred()
    timer: list[Any] = []
    holder: list[_Fetch] = []

    def on_deadline() -> None:
        if holder and not done.called:
            holder[0].fail(FetchFailed(f"search did not finish within {timeout:g}s"))

    def start_deadline() -> None:
        timer.append(reactor.callLater(timeout, on_deadline))

    def make() -> _Fetch:
        p = _Fetch(source, search_filter(excluded), max_bytes, done, start_deadline)
        holder.append(p)
        return p

    connector = reactor.connectTCP(source.host, source.port, _Factory(make, done), timeout=timeout)
    try:
        blob, size = yield done
        return SourceResult(name, "ldap", blob, started, time.monotonic() - t0, url=source.url)
    except FetchFailed as exc:
        return SourceResult(name, "ldap", None, started, time.monotonic() - t0, str(exc), source.url, exc.state)
    finally:
        for t in timer:
            if t.active():
                t.cancel()
        if not holder:
            connector.disconnect()


def fetch_all(reactor: Any, sources: Sequence[RemoteSource], timeout: float, max_bytes: int,
              excluded: Sequence[str] = (), now: Callable[[], float] = time.time) -> defer.Deferred:
    """Every source at once; fires with their SourceResults in order."""
    return defer.gatherResults([fetch(reactor, s, timeout, max_bytes, excluded, now) for s in sources],
                               consumeErrors=True)
