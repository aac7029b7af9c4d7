"""Serving processes: every core answers LDAP queries.

One Python process answers on one core (the GIL), while slapd's threads
use them all. So after every swap the main process forks `BDII_WORKERS`
serving processes that share its new snapshot copy-on-write (the snapshot
is immutable, nothing has to be copied or loaded) and all accept on the
one listening socket it opened at start. The main process keeps the
refresh loop, the sources and HTTP, and no longer answers LDAP itself,
so a refresh never competes with queries for the GIL.

A generation of workers retires when the next one is running: it stops
accepting, finishes what it is answering, and hands each open connection,
between two requests, to the new generation (the socket itself, passed
over a Unix socket; see `LDAPProtocol._maybe_hand_off`). A client on a
long-lived connection sees the new data on its next request and never
notices the change of process.

The channel between the main process and a worker carries lines, each
with at most one descriptor: `conn FAMILY` (a connection, with its
descriptor), `ack` (that descriptor arrived; the sender may close its
copy), `retire`, and from the worker `stats JSON` (its LDAP counters, for
/metrics).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, interfaces, tcp, threads
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from bdii.core.snapshot import Snapshot
from bdii.service.ldapserver import LDAPServerFactory, SnapshotHolder, pre_encode
from bdii.service.metrics import Histogram, Metrics

log = Logger()

STATS_INTERVAL = 1.0  # seconds between a worker's counter reports
RETIRE_GRACE = 300.0  # a retired worker still busy after this long exits anyway
RESPAWN_DELAY = 1.0  # before replacing a worker that died
RETIRE_ANSWER = 5.0  # the longest a swap waits for the old workers to stop accepting


BACKGROUND_NICE = 10  # the main process's refresh threads yield the CPU to the serving processes


def in_background_thread(reactor: Any) -> Callable[..., defer.Deferred]:
    """A runner (as the Updater takes) whose threads run at a lower CPU priority.

    With serving processes on every core, a refresh (parse, merge, index,
    encode) competes with them for the CPU; Linux sets a nice value per
    thread, so the refresh threads yield to queries and the main process's
    reactor thread keeps its own priority.
    """

    def niced(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        except OSError:
            pass
        return fn(*args)

    def run(fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), niced, fn, *args)

    return run


def listening_socket(address: str, port: int, ipv6: bool, backlog: int = 1024) -> socket.socket:
    """The LDAP listening socket, opened once by the main process for all workers."""
    if ipv6 and address in ("0.0.0.0", ""):
        address = "::"
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 clients too
    sock.bind((address, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


class _OneAtATimePort(tcp.Port):
    """Accept one connection per wake-up, so that every worker gets its share.

    Twisted accepts up to a hundred at once; with several processes waiting
    on one socket, the first to wake would take a whole burst of clients.
    """

    @property
    def numberAccepts(self) -> int:  # type: ignore[override]
        return 1

    @numberAccepts.setter
    def numberAccepts(self, _value: int) -> None:
        pass

    def _logConnectionLostMsg(self) -> None:
        pass  # every retiring worker would log "Port Closed": it only stops accepting


class _Lines(Protocol):
    """A channel end: lines in, descriptors kept in arrival order."""

    def __init__(self) -> None:
        self.buf = b""
        self.fds: deque[int] = deque()

    def fileDescriptorReceived(self, fd: int) -> None:
        self.fds.append(fd)

    def dataReceived(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            word, _, rest = line.partition(b" ")
            self.line(word.decode(), rest)

    def line(self, word: str, rest: bytes) -> None:
        raise NotImplementedError

    def send_fd(self, fd: int, family: int) -> None:
        self.transport.sendFileDescriptor(fd)
        self.transport.write(b"conn %d\n" % family)


# --- the main process's side ---------------------------------------------------


@implementer(interfaces.IFileDescriptorReceiver)
class _WorkerChannel(_Lines):
    def __init__(self, pool: WorkerPool, worker: Worker) -> None:
        super().__init__()
        self.pool = pool
        self.worker = worker
        self.unacked: deque[int] = deque()  # descriptors passed on, not yet confirmed

    def line(self, word: str, rest: bytes) -> None:
        if word == "conn":
            fd = self.fds.popleft()
            self.transport.write(b"ack\n")
            self.pool.pass_on(fd, int(rest))
        elif word == "ack":
            os.close(self.unacked.popleft())
        elif word == "stats":
            self.pool.stats(self.worker, json.loads(rest))
        elif word == "retired":
            self.worker.stopped_accepting()

    def connectionLost(self, reason: object = None) -> None:
        while self.fds:
            os.close(self.fds.popleft())
        while self.unacked:
            os.close(self.unacked.popleft())
        self.pool.gone(self.worker)


class Worker:
    """The main process's record of one serving process."""

    def __init__(self, pid: int, generation: int) -> None:
        self.pid = pid
        self.generation = generation
        self.channel: _WorkerChannel | None = None
        self.retiring = False
        self.stopped: defer.Deferred | None = None  # fires when it no longer accepts

    def stopped_accepting(self) -> None:
        d, self.stopped = self.stopped, None
        if d is not None and not d.called:
            d.callback(None)


class WorkerPool:
    """Forks a generation of serving processes per snapshot; retires the last one.

    @ivar metrics: the sum of every worker's counters (exited ones included),
        what /metrics shows.
    """

    def __init__(self, reactor: Any, sock: socket.socket, size: int, metrics: Metrics,
                 keep_fds: Callable[[], set[int]] = set) -> None:
        self.reactor = reactor
        self.sock = sock
        self.size = size
        self.metrics = metrics
        self.keep_fds = keep_fds
        self.snapshot: Snapshot | None = None
        self.workers: dict[int, Worker] = {}
        self.generation = 0
        self.stopping = False
        self._latest: dict[int, dict] = {}

        self._done = Metrics()  # counters of workers that have exited
        self._queue: defer.Deferred = defer.succeed(None)  # the last publish
        self._next = 0
        self._unreaped: set[int] = set()  # forked and not waited for yet

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def current(self) -> list[Worker]:
        return [w for w in self.workers.values() if not w.retiring]

    def publish(self, snapshot: Snapshot) -> defer.Deferred:
        """A new snapshot: encode it for the workers (in a thread), fork a new
        generation, retire the old one. Fires once the old generation has
        stopped accepting and handed its idle connections over: from then
        on every request is answered from `snapshot`. (The updater calls
        this one snapshot at a time.)"""
        if self.stopping:
            return defer.succeed(None)
        # One at a time, in order: a generation never replaces a newer one.
        done = defer.Deferred()
        previous, self._queue = self._queue, done
        previous.addBoth(lambda _: self._publish(snapshot)).chainDeferred(done)
        return done

    def _publish(self, snapshot: Snapshot) -> defer.Deferred:
        if self.stopping:
            return defer.succeed(None)
        t0 = time.monotonic()
        d = in_background_thread(self.reactor)(pre_encode, snapshot)

        def prepared(result: Any) -> defer.Deferred:
            if isinstance(result, Failure):
                log.failure("encoding snapshot {g} for the workers failed; they encode as they go", result,
                            g=snapshot.generation)
            else:
                log.info("snapshot {g} encoded for the workers in {secs:.2f}s ({new} entries encoded, "
                         "{reused} unchanged)", g=snapshot.generation, secs=time.monotonic() - t0,
                         new=result[0], reused=result[1])
            return self._fork_generation(snapshot)

        return d.addBoth(prepared)

    def _fork_generation(self, snapshot: Snapshot) -> defer.Deferred:
        if self.stopping:
            return defer.succeed(None)
        if self.snapshot is not None and self.snapshot is not snapshot:
            # The old generation has its own copy (it forked with it); here
            # it would only be inherited by the new one, and be left as
            # private memory in each new worker once this process lets go.
            self.snapshot.packed = None
        self.snapshot = snapshot
        self.generation += 1
        old = self.current()
        gc.freeze()  # what the children inherit stays out of their collector's sight
        for _ in range(self.size):
            self._spawn()
        waits = [self.retire(w) for w in old]
        return defer.DeferredList(waits)

    def retire(self, w: Worker) -> defer.Deferred:
        """Tell `w` to stop accepting; fires when it says it has (or is gone,
        or after RETIRE_ANSWER seconds)."""
        w.retiring = True
        if w.channel is None or w.channel.transport is None or not w.channel.transport.connected:
            return defer.succeed(None)
        d = w.stopped = defer.Deferred()
        d.addTimeout(RETIRE_ANSWER, self.reactor, onTimeoutCancel=lambda *_: None)
        w.channel.transport.write(b"retire\n")
        return d

    def pass_on(self, fd: int, family: int) -> None:
        """A connection handed over by a retiring worker goes to a current one."""
        targets = [w for w in self.current() if w.channel is not None]
        if not targets:
            os.close(fd)  # nobody to serve it: the client reconnects
            return
        self._next = (self._next + 1) % len(targets)
        ch = targets[self._next].channel
        ch.unacked.append(fd)
        ch.send_fd(fd, family)

    def stats(self, w: Worker, data: dict) -> None:
        self._latest[w.pid] = data
        self._sum()

    def gone(self, w: Worker) -> None:
        """A worker's channel closed: it exited (or is about to)."""
        w.stopped_accepting()
        self.workers.pop(w.pid, None)
        last = self._latest.pop(w.pid, None)
        if last is not None:
            last["connections_open"] = 0
            _add(self._done, last)
        self._sum()
        self._reap(w.pid, 0)
        if not w.retiring and not self.stopping:
            log.error("LDAP worker {pid} exited unexpectedly; starting another", pid=w.pid)
            self.reactor.callLater(RESPAWN_DELAY, self._respawn, w.generation)
        elif w.retiring:
            log.info("LDAP worker {pid} (generation {g}) has handed its connections over and exited",
                     pid=w.pid, g=w.generation)

    def _respawn(self, generation: int) -> None:
        if not self.stopping and generation == self.generation and len(self.current()) < self.size:
            self._spawn()

    def _reap(self, pid: int, tries: int) -> None:
        if pid not in self._unreaped:
            return
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            self._unreaped.discard(pid)
            return
        if done:
            self._unreaped.discard(pid)
            if os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM):
                log.warn("LDAP worker {pid} exit status {status}", pid=pid, status=os.waitstatus_to_exitcode(status))
        elif tries < 600:
            self.reactor.callLater(0.1, self._reap, pid, tries + 1)

    def _sum(self) -> None:
        m = self.metrics
        m.connections_open = m.connections_total = 0
        m.requests.clear()
        m.latency.clear()
        _add(m, _as_dict(self._done))
        for data in self._latest.values():
            _add(m, data)

    def _spawn(self) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        keep = {self.sock.fileno(), child_end.fileno(), *self.keep_fds()}
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                parent_end.close()
                code = _worker_main(self.sock, child_end, self.snapshot, keep)
            except BaseException:  # noqa: BLE001 - a child must never run the parent's code
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        child_end.close()
        self._unreaped.add(pid)
        w = Worker(pid, self.generation)
        self.workers[pid] = w
        w.channel = _WorkerChannel(self, w)
        factory = Factory.forProtocol(lambda: w.channel)
        self.reactor.adoptStreamConnection(parent_end.fileno(), socket.AF_UNIX, factory)
        parent_end.close()  # the reactor holds its own duplicate
        log.info("LDAP worker {pid} started (generation {g}, snapshot {s})", pid=pid, g=self.generation,
                 s=self.snapshot.generation if self.snapshot is not None else None)

    def stop(self) -> None:
        """Shut down: every worker not reaped yet (a retired one may still be
        finishing) is told to stop now (SIGTERM), then reaped: none is left
        behind, not even as a zombie."""
        self.stopping = True
        for pid in self._unreaped:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in list(self._unreaped):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self._unreaped.discard(pid)
        self.sock.close()


def _as_dict(m: Metrics) -> dict:
    return {
        "connections_open": m.connections_open,
        "connections_total": m.connections_total,
        "requests": [[op, code, n] for (op, code), n in m.requests.items()],
        "latency": {op: [h.buckets, h.total, h.count] for op, h in m.latency.items()},
    }


def _add(m: Metrics, data: dict) -> None:
    m.connections_open += data["connections_open"]
    m.connections_total += data["connections_total"]
    for op, code, n in data["requests"]:
        m.requests[(op, code)] += n
    for op, (buckets, total, count) in data["latency"].items():
        h = m.latency.get(op)
        if h is None:
            h = m.latency[op] = Histogram()
        h.buckets = [a + b for a, b in zip(h.buckets, buckets)]
        h.total += total
        h.count += count


# --- the worker's side -----------------------------------------------------------


@implementer(interfaces.IFileDescriptorReceiver)
class _MainChannel(_Lines):
    def __init__(self, worker: _Serving) -> None:
        super().__init__()
        self.serving = worker
        self.unacked: deque[int] = deque()

    def line(self, word: str, rest: bytes) -> None:
        if word == "conn":
            fd = self.fds.popleft()
            try:
                self.serving.adopt(fd, int(rest))
            finally:
                os.close(fd)
                self.transport.write(b"ack\n")
        elif word == "ack":
            os.close(self.unacked.popleft())
        elif word == "retire":
            self.serving.retire()

    def connectionLost(self, reason: object = None) -> None:
        self.serving.main_gone()


class _Serving:
    """One worker: a fresh reactor, the inherited snapshot, the shared socket."""

    def __init__(self, reactor: Any, sock: socket.socket, chan: socket.socket, snapshot: Snapshot) -> None:
        self.reactor = reactor
        self.metrics = Metrics()
        self.factory = LDAPServerFactory(SnapshotHolder(snapshot), reactor, self.metrics)
        self.factory.hand_off = self.hand_off
        self.port = _OneAtATimePort._fromListeningDescriptor(reactor, sock.fileno(), sock.family, self.factory)
        self.port.startListening()
        self.channel = _MainChannel(self)
        reactor.adoptStreamConnection(chan.fileno(), socket.AF_UNIX, Factory.forProtocol(lambda: self.channel))
        self.retired = False
        self.exiting = False
        self._sent: dict | None = None
        reactor.callLater(STATS_INTERVAL, self._report)

    def adopt(self, fd: int, family: int) -> None:
        """A connection handed over by the last generation (the caller closes `fd`)."""
        try:
            self.reactor.adoptStreamConnection(fd, family, self.factory)
        except OSError as exc:  # the client left meanwhile: nothing to serve
            log.info("a handed-over connection was already closed: {err}", err=exc)
        else:
            self.metrics.connections_total -= 1  # accepted once, by the last generation

    def hand_off(self, fd: int, family: int) -> None:
        t = self.channel.transport
        if t is None or not t.connected:
            os.close(fd)
            return
        self.channel.unacked.append(fd)
        self.channel.send_fd(fd, family)

    def retire(self) -> None:
        if self.retired:
            return
        self.retired = True
        self.port.stopListening()
        self.factory.retire()
        t = self.channel.transport
        if t is not None and t.connected:
            t.write(b"retired\n")
        self.reactor.callLater(RETIRE_GRACE, self._exit)
        self._check_done()

    def main_gone(self) -> None:
        """The channel closed: we asked for it (exiting), or the main process
        is gone: then finish what is being answered, and exit."""
        if self.exiting:
            self._exit()
            return
        self.factory.hand_off = lambda fd, _family: os.close(fd)
        self.retire()

    def _check_done(self) -> None:
        if self.exiting:
            return
        if self.factory.protocols or self.channel.unacked:
            self.reactor.callLater(0.05, self._check_done)
            return
        self.exiting = True
        self._report()  # the last counters, then a close that flushes them
        t = self.channel.transport
        if t is not None and t.connected:
            t.loseConnection()  # connectionLost (main_gone) stops the reactor
            self.reactor.callLater(5.0, self._exit)
        else:
            self._exit()

    def _exit(self) -> None:
        if self.reactor.running:
            self.reactor.stop()

    def _report(self) -> None:
        data = _as_dict(self.metrics)
        t = self.channel.transport
        if data != self._sent and t is not None and t.connected:
            self._sent = data
            t.write(b"stats " + json.dumps(data).encode() + b"\n")
        if not self.retired:
            self.reactor.callLater(STATS_INTERVAL, self._report)


def _fresh_reactor() -> Any:
    """A new reactor for a forked child; the parent's must never be touched here
    (its epoll set is shared with the parent)."""
    import twisted.internet
    from twisted.internet.epollreactor import EPollReactor

    reactor = EPollReactor()
    sys.modules["twisted.internet.reactor"] = reactor
    twisted.internet.reactor = reactor  # type: ignore[attr-defined]
    return reactor


def _worker_main(sock: socket.socket, chan: socket.socket, snapshot: Snapshot | None, keep: set[int]) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C reaches the whole group: the main process decides
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)  # the parent reactor's waker is not ours
    # Every inherited descriptor but ours now points at /dev/null: the
    # parent's sockets close when the parent closes them (not when we exit),
    # and Python objects that still own those numbers close nothing of ours.
    devnull = os.open(os.devnull, os.O_RDWR)
    keep = keep | {0, 1, 2, devnull}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.dup2(devnull, fd)
            except OSError:
                pass
    reactor = _fresh_reactor()
    _Serving(reactor, sock, chan, snapshot or Snapshot.empty())
    reactor.run(installSignalHandlers=False)
    return 0
