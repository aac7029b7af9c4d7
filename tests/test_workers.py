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
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import ldap3
from support import ldapsearch, parse_ldapsearch
from test_cli import _free_port, _wait_for_line
from test_service_signals import SERVICE, _config, _layout, _start, _stop_within_a_second


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(x) for x in f.read().split()}


def _started(lines: list[str], generation: int) -> set[int]:
    return {int(m.group(1)) for line in lines
            if (m := re.search(rf"LDAP worker (\d+) started \(generation {generation},", line))}


def _exited(proc: subprocess.Popen, pids: set[int]) -> list[str]:
    """Read the log until every worker of `pids` has said it handed over and exited."""
    seen: list[str] = []
    left = set(pids)
    while left:
        seen += _wait_for_line(proc, "has handed its connections over and exited")
        left -= {int(m.group(1)) for line in seen if (m := re.search(r"LDAP worker (\d+) \(generation", line))}
    return seen


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
    first: set[int] = set()
    try:
        # "cycle N:" is logged once the new generation serves and the old one no longer accepts.
        seen = _wait_for_line(proc, "cycle 1:")
        first = _started(seen, 2)
        assert len(first) == 2 and first <= _children(proc.pid)
        # Several long-lived connections, so that both workers hold some.
        conns += [ldap3.Connection(ldap3.Server(f"ldap://127.0.0.1:{port}"), auto_bind=True) for _ in range(6)]
        for c in conns:
            assert _ids(c) == ["first"]

        (tmp_path / "ldif" / "10-second.ldif").write_text(SERVICE.format(name="second"))
        proc.send_signal(signal.SIGHUP)
        seen = _wait_for_line(proc, "cycle 2:")
        second = _started(seen, 3)
        assert len(second) == 2
        for c in conns:  # the same sockets, handed to the new generation between two requests
            assert _ids(c) == ["first", "second"]
        _exited(proc, first)  # and the old generation is leaving
        assert second <= _children(proc.pid)
        out = ldapsearch(f"ldap://127.0.0.1:{port}", "-b", "o=glue", "(objectClass=GLUE2Service)", "GLUE2ServiceID")
        assert sorted(a["GLUE2ServiceID"][0] for a in parse_ldapsearch(out.stdout).values()) == ["first", "second"]

        # /metrics adds up the workers' counters (an exiting worker sends its last ones).
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        searches = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("bdii_ldap_requests_total{") and 'operation="search"' in line)
        assert searches >= 6
        accepted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("bdii_ldap_connections_total "))
        assert accepted >= 6
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/status", timeout=10) as r:
            assert json.load(r)["generation"] == 2

        # A worker that dies is replaced; its clients reconnect, the others never notice.
        victim = min(second)
        os.kill(victim, signal.SIGKILL)
        seen = _wait_for_line(proc, "exited unexpectedly")
        assert str(victim) in seen[-1]
        _wait_for_line(proc, "started (generation 3,")  # its replacement
        alive = 0
        for c in conns:
            try:
                alive += _ids(c) == ["first", "second"]
            except ldap3.core.exceptions.LDAPException:
                pass
        assert alive >= 1  # those on the surviving worker
    finally:
        for c in conns:
            try:
                c.unbind()
            except ldap3.core.exceptions.LDAPException:
                c.strategy.close()
        workers = (_children(proc.pid) | first) if proc.poll() is None else set()
        if proc.poll() is None:
            elapsed = _stop_within_a_second(proc)
            assert elapsed < 2.0
        proc.stderr.close()
    # SIGTERM took the workers with it (reaped by the main process, so not even zombies).
    assert not any(Path(f"/proc/{w}").exists() for w in workers)


def test_pre_encoded_entries_are_the_bytes_encode_entry_gives() -> None:
    """What the main process encodes for the workers is byte for byte what the
    server would encode itself, and an unchanged entry of the next snapshot
    (the same object) is copied, not encoded again."""
    from support import SKELETON, snapshot_from_ldif

    from bdii.core.dn import DN
    from bdii.core.entry import Entry
    from bdii.core.snapshot import Snapshot
    from bdii.service import ldapserver as L

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
    # The same entries encoded one by one from the objects, unpacked.
    assert names == [bytes(L.encode_entry(Snapshot.build(entries, {}, now=0), i, full)) for i in range(len(second))]
    assert any(b"org.example.B" in n for n in names) and not any(b"org.example.b" in n for n in names)
