"""Gathering: static LDIF files and provider/plugin executables.

Every executable runs as a subprocess in its own process group (so a
provider that forks cannot leave children behind), all of them in
parallel, each with its own timeout: on expiry the whole group gets
SIGTERM, then SIGKILL after a grace period, the failure is logged with the
provider's name, and the cycle goes on without it.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

from twisted.internet import defer, error, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from bdii.core.pipeline import SourceResult

log = Logger()

KILL_GRACE = 2.0
# Put the child in its own process group before exec, without a shell.
# A script without a "#!" line is run by /bin/sh, as the legacy BDII's
# os.popen did.
_SETPGRP = (
    "import os,sys\n"
    "os.setpgrp()\n"
    "try:\n os.execv(sys.argv[1], sys.argv[1:])\n"
    "except OSError as e:\n"
    " if e.errno != 8: raise\n"
    " os.execv('/bin/sh', ['/bin/sh'] + sys.argv[1:])\n"
)


def is_candidate(name: str) -> bool:
    """The one rule for which directory entries are sources (legacy BDII):
    not hidden, not an editor backup (`#...`, `.swp`, `...~`)."""
    return not (name.startswith(("#", ".")) or name.endswith("~"))


def list_ldif_files(directory: Path) -> list[Path]:
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        log.error("cannot read LDIF directory {dir}: {err}", dir=str(directory), err=exc.strerror)
        return []
    return [directory / n for n in names if is_candidate(n) and n.endswith(".ldif")
            and (directory / n).is_file()]


def read_ldif_files(directory: Path, now: Callable[[], float] = time.time) -> list[SourceResult]:
    """Read every static LDIF file (blocking: call it from a thread)."""
    out = []
    for path in list_ldif_files(directory):
        started = now()
        t0 = time.monotonic()
        try:
            data: bytes | None = path.read_bytes()
            err = None
        except OSError as exc:
            data, err = None, f"cannot read: {exc.strerror}"
        out.append(SourceResult(f"ldif/{path.name}", "ldif", data, started, time.monotonic() - t0, err))
    return out


def list_executables(directory: Path, kind: str) -> list[Path]:
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        log.error("cannot read {kind} directory {dir}: {err}", kind=kind, dir=str(directory), err=exc.strerror)
        return []
    out = []
    for n in names:
        if not is_candidate(n):
            continue
        path = directory / n
        try:
            st = path.stat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if not os.access(path, os.X_OK):
            log.info("{kind} {path} is not executable; ignored", kind=kind, path=str(path))
            continue
        out.append(path)
    return out


class _Collect(protocol.ProcessProtocol):
    def __init__(self, name: str, done: defer.Deferred) -> None:
        self.name = name
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.done = done
        self.timed_out = False

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:
        if sum(map(len, self.err)) < 65536:
            self.err.append(data)

    def processEnded(self, reason: Failure) -> None:
        # Hand on the exception, not the Failure (which would errback).
        self.done.callback(reason.value)


def _killpg(pid: int | None, sig: int) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@defer.inlineCallbacks
def run_executable(reactor: object, path: Path, kind: str, timeout: float,
                   now: Callable[[], float] = time.time):  # type: ignore[no-untyped-def]
    """Run one provider or plugin; always returns a SourceResult."""
    name = f"{kind}/{path.name}"
    started = now()
    t0 = time.monotonic()
    done: defer.Deferred = defer.Deferred()
    proto = _Collect(name, done)
    try:
        transport = reactor.spawnProcess(  # type: ignore[attr-defined]
            proto, sys.executable, [sys.executable, "-S", "-c", _SETPGRP, str(path)],
            env=dict(os.environ), path=str(path.parent))
    except OSError as exc:
        return SourceResult(name, kind, None, started, 0.0, f"cannot start: {exc}")
    pid = transport.pid

    def expire() -> None:
        proto.timed_out = True
        log.warn("{name} did not finish within {timeout}s: killing its process group", name=name, timeout=timeout)
        _killpg(pid, signal.SIGTERM)
        killer.append(reactor.callLater(KILL_GRACE, _killpg, pid, signal.SIGKILL))  # type: ignore[attr-defined]

    killer: list = []
    timer = reactor.callLater(timeout, expire)  # type: ignore[attr-defined]
    reason = yield done
    if timer.active():
        timer.cancel()
    for k in killer:
        if k.active():
            k.cancel()
    duration = time.monotonic() - t0
    stderr = b"".join(proto.err).decode("utf-8", "replace").strip()
    if stderr:
        for line in stderr.splitlines()[:20]:
            log.warn("{name} stderr: {line}", name=name, line=line)
    if proto.timed_out:
        return SourceResult(name, kind, None, started, duration, f"timed out after {timeout:g}s and was killed")
    value = reason
    if isinstance(value, error.ProcessTerminated):
        if value.signal is not None:
            why = f"killed by signal {value.signal}"
        else:
            why = f"exited with status {value.exitCode}"
        if stderr:
            why += f": {stderr.splitlines()[-1][:200]}"
        return SourceResult(name, kind, None, started, duration, why)
    return SourceResult(name, kind, b"".join(proto.out), started, duration)


def run_directory(reactor: object, directory: Path, kind: str, timeout: float,
                  now: Callable[[], float] = time.time) -> defer.Deferred:
    """Run every executable of a directory in parallel; fires with results."""
    paths = list_executables(directory, kind)
    ds = [run_executable(reactor, p, kind, timeout, now) for p in paths]
    d = defer.gatherResults(ds, consumeErrors=True)
    return d
