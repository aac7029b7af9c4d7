"""`bdii serve` as a user starts it: a real process on the embedded default configuration."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bdii.core.config import Config
from bdii.service.app import endpoint_string
from support import ROOT, ldapsearch, parse_ldapsearch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 60) -> list[str]:
    """Read the process's stderr until a line contains `needle` (no sleeping).

    Reads the descriptor itself: a buffered readline() can pull several
    lines at once, and select() then waits for more while the one wanted
    sits in the buffer. What follows the line is kept for the next call.
    """
    seen: list[str] = []
    fd = proc.stderr.fileno()
    buf: bytes = getattr(proc, "_stderr_rest", b"")
    deadline = time.monotonic() + timeout
    try:
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                seen.append(line.decode("utf-8", "replace") + "\n")
                if needle in seen[-1]:
                    return seen
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
    finally:
        proc._stderr_rest = buf  # type: ignore[attr-defined]
    raise AssertionError(f"{needle!r} not seen; stderr was:\n{''.join(seen)}")


def test_serve_on_the_default_configuration(tmp_path: Path) -> None:
    """`bdii serve` lays out its demo state, serves GLUE 1.3 and 2.0, and stops cleanly on SIGTERM."""
    port = _free_port()
    env = dict(os.environ, BDII_STATE_DIR=str(tmp_path / "state"))
    proc = subprocess.Popen([sys.executable, "-m", "bdii.cli", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_line(proc, "cycle 1:")
        url = f"ldap://127.0.0.1:{port}"
        glue2 = ldapsearch(url, "-b", "o=glue", "(objectClass=GLUE2Endpoint)", "GLUE2EndpointURL")
        glue13 = ldapsearch(url, "-b", "mds-vo-name=resource,o=grid", "(objectClass=GlueSite)", "GlueSiteName")
        stats = ldapsearch(url, "-b", "o=infosys", "(objectClass=UpdateStats)", "TotalEntries", "modifyTimestamp")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        proc.stderr.close()
    assert rc == 0
    assert len(parse_ldapsearch(glue2.stdout)) >= 2
    assert len(parse_ldapsearch(glue13.stdout)) == 1
    (stat_entry,) = parse_ldapsearch(stats.stdout).values()
    assert int(stat_entry["TotalEntries"][0]) > 50
    state = tmp_path / "state"
    assert (state / "bdii.conf").is_file() and (state / "ldif" / "default.ldif").is_file()
    # The demo is the resource-level providers run on the packaged demo configurations.
    wrappers = sorted(p.name for p in (state / "provider").iterdir() if os.access(p, os.X_OK))
    assert wrappers == ["bdii-provider-bdii", "bdii-provider-ce", "bdii-provider-se",
                        "bdii-provider-service-fts", "bdii-provider-service-voms", "bdii-provider-site"]
    assert str(state.resolve()) in (state / "provider-config" / "se.conf").read_text()


def test_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    """A taken port gives one line naming the endpoint and a non-zero exit, not a traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = dict(os.environ, BDII_STATE_DIR=str(tmp_path / "state"))
        proc = subprocess.run([sys.executable, "-m", "bdii.cli", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"bdii: cannot listen on tcp:port={port}:interface=127.0.0.1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ipv6_support_listens_on_both_families() -> None:
    """BDII_IPV6_SUPPORT=yes with the default address listens on `::`; an explicit address is kept."""
    assert endpoint_string(Config(ipv6=True)).startswith("tcp6:port=2170:interface=\\:\\:")
    assert endpoint_string(Config(bind_address="127.0.0.1")).startswith("tcp:port=2170:interface=127.0.0.1")
    assert endpoint_string(Config(bind_address="::1")).startswith("tcp6:port=2170:interface=\\:\\:1")
