"""Serving processes (BDII_WORKERS): real `bdii serve` processes, real clients.

A refresh forks a new generation of workers and the old one hands its
open connections over between two requests: a client on a long-lived
connection sees the new data and never a closed connection. A worker that
dies is replaced; SIGTERM stops them all. Progress is read from the log,
never slept for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import ldap3
from support import ldapsearch, parse_ldapsearch
from test_cli import _free_port, _wait_for_line
from test_service_signals import SERVICE, _config, _layout, _start, _stop_within_a_second


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(x) for x in f.read().split()}
    except OSError:
        return set()


def _until(what: str, check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    """Poll `check` (a real process's state) until it is true; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _ids(conn: ldap3.Connection) -> list[str]:
    assert conn.search("o=glue", "(objectClass=GLUE2Service)", attributes=["GLUE2ServiceID"])
    return sorted(str(e.GLUE2ServiceID) for e in conn.entries)


def test_workers_serve_hand_connections_over_and_are_replaced(tmp_path: Path) -> None:
    _layout(tmp_path)
    port, http_port = _free_port(), _free_port()
    conf = tmp_path / "bdii.conf"
    conf.write_text(_config(tmp_path, port, BDII_WORKERS="2", BDII_HTTP_PORT=str(http_port)))
    proc = _start(conf, stderr=subprocess.PIPE)
    conns: list[ldap3.Connection] = []
    try:
        _wait_for_line(proc, "cycle 1:")
        first = _until("two workers", lambda: len(_children(proc.pid)) == 2 and _children(proc.pid))
        # Several long-lived connections, so that both workers hold some.
        conns += [ldap3.Connection(ldap3.Server(f"ldap://127.0.0.1:{port}"), auto_bind=True) for _ in range(6)]
        for c in conns:
            assert _ids(c) == ["first"]

        (tmp_path / "ldif" / "10-second.ldif").write_text(SERVICE.format(name="second"))
        proc.send_signal(signal.SIGHUP)
        _wait_for_line(proc, "cycle 2:")
        # The old generation exits once it has handed every connection over.
        def new_generation() -> set[int]:
            kids = _children(proc.pid)
            return kids if len(kids) == 2 and not kids & first else set()

        second = _until("the old workers to exit", new_generation)
        for c in conns:  # the same sockets, now answered by the new generation
            assert _ids(c) == ["first", "second"]
        out = ldapsearch(f"ldap://127.0.0.1:{port}", "-b", "o=glue", "(objectClass=GLUE2Service)", "GLUE2ServiceID")
        assert sorted(a["GLUE2ServiceID"][0] for a in parse_ldapsearch(out.stdout).values()) == ["first", "second"]

        # A worker that dies is replaced; its clients reconnect, the others never notice.
        victim = min(second)
        os.kill(victim, signal.SIGKILL)
        seen = "".join(_wait_for_line(proc, "exited unexpectedly"))
        assert str(victim) in seen
        _until("a replacement", lambda: len(_children(proc.pid) - {victim}) == 2)
        alive = 0
        for c in conns:
            try:
                alive += _ids(c) == ["first", "second"]
            except ldap3.core.exceptions.LDAPException:
                pass
        assert alive >= 1  # those on the surviving worker

        # /metrics adds up the workers' counters (reported every second).
        def searches() -> float:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
                text = r.read().decode()
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("bdii_ldap_requests_total{") and 'operation="search"' in line)

        assert _until("search counts in /metrics", lambda: searches() >= 12)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/status", timeout=10) as r:
            assert json.load(r)["generation"] == 2
    finally:
        for c in conns:
            try:
                c.unbind()
            except ldap3.core.exceptions.LDAPException:
                c.strategy.close()
        workers = _children(proc.pid)
        if proc.poll() is None:
            elapsed = _stop_within_a_second(proc)
            assert elapsed < 2.0
        proc.stderr.close()
    assert not any(Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]
                   for w in workers)


def test_pre_encoded_entries_are_the_bytes_encode_entry_gives() -> None:
    """What the main process encodes for the workers is byte for byte what the
    server would encode itself, and an unchanged entry of the next snapshot
    (the same object) is copied, not encoded again."""
    from bdii.core.dn import DN
    from bdii.core.entry import Entry
    from bdii.core.snapshot import Snapshot
    from bdii.service import ldapserver as L
    from support import SKELETON, snapshot_from_ldif

    first = snapshot_from_ldif(SKELETON + SERVICE.format(name="a") + SERVICE.format(name="b"))
    full = L.Selection.parse([], False)
    expected = [bytes(L.encode_entry(first, i, full)) for i in range(len(first))]
    assert L.pre_encode(first) == (len(first), 0)
    assert [bytes(L.encode_entry(first, i, full)) for i in range(len(first))] == expected
    # The next snapshot keeps every entry object but one, and adds one.
    entries = {e.dn: e for e in first.entries}
    b = next(e for e in first.entries if e.dn.rdns[0][0][1] == "b")
    entries[b.dn] = b.replace({"GLUE2ServiceType": ("org.example.B",)})
    a = next(e for e in first.entries if e.dn.rdns[0][0][1] == "a")
    c = Entry(DN.parse(str(a.dn).replace("=a,", "=c,")), a.attrs)
    entries[c.dn] = c
    second = Snapshot.build(entries, {}, now=0)
    assert L.pre_encode(second) == (2, len(first) - 1)
    names = [bytes(L.encode_entry(second, i, full)) for i in range(len(second))]
    L._PRE = None  # noqa: SLF001 - the same entries encoded from scratch
    assert names == [bytes(L.encode_entry(second, i, full)) for i in range(len(second))]
    assert any(b"org.example.B" in n for n in names) and not any(b"org.example.b" in n for n in names)
