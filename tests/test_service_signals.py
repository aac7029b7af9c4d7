"""`bdii serve` under a service manager: SIGHUP reloads the configuration, starts a
cycle and reopens the log file (logrotate without copytruncate); SIGTERM stops it
within a second. Real processes; progress is read from their log, never slept for."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support import ROOT, SKELETON, ldapsearch, parse_ldapsearch
from test_cli import _free_port, _wait_for_line

SERVICE = """
dn: GLUE2ServiceID={name},GLUE2GroupID=resource,o=glue
objectClass: GLUE2Service
GLUE2ServiceID: {name}
GLUE2ServiceType: org.example.{name}
"""


def _config(tmp: Path, port: int, **extra: str) -> str:
    lines = {
        "BDII_LDIF_DIR": "ldif", "BDII_PROVIDER_DIR": "provider", "BDII_PLUGIN_DIR": "plugin",
        "BDII_VAR_DIR": "var", "BDII_PORT": str(port), "BDII_BIND_ADDRESS": "127.0.0.1",
        "BDII_BREATHE_TIME": "3600", "BDII_LOG_LEVEL": "INFO", "BDII_HOSTNAME": "test.example.org",
        **extra,
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def _layout(tmp: Path) -> None:
    for sub in ("ldif", "provider", "plugin", "var"):
        (tmp / sub).mkdir()
    (tmp / "ldif" / "00-skeleton.ldif").write_text(SKELETON + SERVICE.format(name="first"))


def _start(conf: Path, **kw: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bdii.cli", "serve", "-c", str(conf)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, text=True, **kw)  # type: ignore[call-overload]


def _stop_within_a_second(proc: subprocess.Popen) -> float:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    elapsed = time.monotonic() - t0
    assert rc == 0
    return elapsed


def _services(port: int) -> list[str]:
    out = ldapsearch(f"ldap://127.0.0.1:{port}", "-b", "o=glue", "(objectClass=GLUE2Service)", "GLUE2ServiceID")
    return sorted(a["GLUE2ServiceID"][0] for a in parse_ldapsearch(out.stdout).values())


def test_sighup_reloads_and_refreshes_sigterm_stops_fast(tmp_path: Path) -> None:
    """SIGHUP: the new configuration is read and a cycle runs at once; a bad file is
    reported and the running configuration kept; listening settings wait for a restart."""
    _layout(tmp_path)
    port, http_port = _free_port(), _free_port()
    conf = tmp_path / "bdii.conf"
    conf.write_text(_config(tmp_path, port, BDII_HTTP_PORT=str(http_port)))
    proc = _start(conf, stderr=subprocess.PIPE)
    try:
        _wait_for_line(proc, "cycle 1:")
        assert _services(port) == ["first"]
        # A new source and a new timer; a new port only takes effect at restart.
        (tmp_path / "ldif" / "10-second.ldif").write_text(SERVICE.format(name="second"))
        conf.write_text(_config(tmp_path, _free_port(), BDII_HTTP_PORT=str(http_port), BDII_BREATHE_TIME="1800"))
        proc.send_signal(signal.SIGHUP)
        seen = "".join(_wait_for_line(proc, "cycle 2:"))
        assert "SIGHUP: reloading the configuration from" in seen
        assert "BDII_PORT changed from" in seen and "takes effect when the service is restarted" in seen
        assert _services(port) == ["first", "second"]  # still on the old port, with the new data

        conf.write_text(_config(tmp_path, port, BDII_BREATHE_TIME="soon"))
        proc.send_signal(signal.SIGHUP)
        seen = "".join(_wait_for_line(proc, "cycle 3:"))
        assert f"{conf}:7: BDII_BREATHE_TIME='soon': not a number of seconds" in seen
        assert "keeping the previous configuration" in seen
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/status", timeout=30) as r:
            assert json.load(r)["generation"] == 3  # HTTP still on, as configured at start
    finally:
        if proc.poll() is None:
            elapsed = _stop_within_a_second(proc)
        proc.stderr.close()
    assert elapsed < 1.0


class Fifo:
    """A named pipe standing in for the log file, read without blocking or sleeping.

    Opened read-write, so that the daemon's open never waits for a reader and
    a closed writer is not an end of file.
    """

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.data = b""

    def wait_for(self, needle: str, timeout: float = 60) -> str:
        sel = selectors.DefaultSelector()
        sel.register(self.fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.data:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                raise AssertionError(f"{needle!r} not logged; log was:\n{self.data.decode()}")
            self.data += os.read(self.fd, 65536)
        sel.close()
        return self.data.decode()

    def pending(self) -> bytes:
        try:
            return os.read(self.fd, 65536)
        except BlockingIOError:
            return b""


def _open_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            inodes.add(os.stat(f"/proc/{pid}/fd/{fd}").st_ino)
        except OSError:
            pass
    return inodes


def test_sighup_reopens_the_log_file_for_logrotate(tmp_path: Path) -> None:
    """logrotate renames BDII_LOG_FILE and sends SIGHUP: the daemon closes the old
    file and writes on in a new one under the configured name."""
    _layout(tmp_path)
    port = _free_port()
    log = tmp_path / "bdii.log"
    first = Fifo(log)
    conf = tmp_path / "bdii.conf"
    conf.write_text(_config(tmp_path, port, BDII_LOG_FILE=str(log)))
    proc = _start(conf, stderr=subprocess.DEVNULL)
    try:
        first.wait_for("cycle 1:")
        rotated = tmp_path / "bdii.log.1"
        os.rename(log, rotated)
        second = Fifo(log)
        proc.send_signal(signal.SIGHUP)
        text = second.wait_for("cycle 2:")
        assert "SIGHUP: reloading the configuration" in text
        assert b"cycle 2:" not in first.pending()
        open_now = _open_inodes(proc.pid)
        assert os.stat(log).st_ino in open_now and os.stat(rotated).st_ino not in open_now
    finally:
        if proc.poll() is None:
            elapsed = _stop_within_a_second(proc)
    assert elapsed < 1.0


def test_a_reload_during_a_cycle_waits_for_it() -> None:
    """Cycles never overlap: SIGHUP during a cycle starts the next one when it ends,
    and the timer restarts with the reloaded BDII_BREATHE_TIME."""
    from dataclasses import replace
    from types import SimpleNamespace

    from twisted.internet import defer
    from twisted.internet.task import Clock

    from bdii.core.config import Config
    from bdii.service.app import BdiiService
    from bdii.service.ldapserver import SnapshotHolder
    from bdii.service.updater import Updater, in_line

    clock = Clock()
    running: list[defer.Deferred] = []
    updater = Updater(Config(breathe_time=100), clock, SnapshotHolder(), run=in_line)
    updater.guarded_cycle = lambda: running.append(defer.Deferred()) or running[-1]  # type: ignore[method-assign]
    svc = SimpleNamespace(running=True, updater=updater, reactor=clock)
    svc.refresh_now = lambda: BdiiService.refresh_now(svc)  # type: ignore[arg-type]
    updater.startService()
    assert len(running) == 1  # the first cycle, still gathering
    updater.config = replace(updater.config, breathe_time=30)
    svc.refresh_now()
    clock.advance(0.5)
    assert len(running) == 1  # no second cycle while the first runs
    running[0].callback(None)
    clock.advance(0.5)
    assert len(running) == 2  # right after the first one
    running[1].callback(None)
    clock.advance(29.9)
    assert len(running) == 2
    clock.advance(0.1)
    assert len(running) == 3  # the new interval
    running[2].callback(None)
    updater.stopService()


def test_log_output_follows_a_reloaded_configuration(tmp_path: Path) -> None:
    """A reload can move the log to another file and change its level; reopen() reopens by name."""
    from twisted.logger import LogLevel, LogLevelFilterPredicate

    from bdii.service.logs import LogOutput

    predicate = LogLevelFilterPredicate(LogLevel.error)
    out = LogOutput(tmp_path / "a.log", predicate)
    out.write("one\n")
    os.rename(tmp_path / "a.log", tmp_path / "a.log.1")
    out.reopen()
    out.write("two\n")
    out.configure(tmp_path / "b.log", "DEBUG")
    out.write("three\n")
    out.flush()
    assert (tmp_path / "a.log.1").read_text() == "one\n"
    assert (tmp_path / "a.log").read_text() == "two\n"
    assert (tmp_path / "b.log").read_text() == "three\n"
    assert predicate.logLevelForNamespace("bdii.service") == LogLevel.debug
    out.configure(None, "ERROR")  # BDII_LOG_FILE removed: back to stderr (the journal); b.log closed
    assert out.stream is sys.stderr and out.path is None
