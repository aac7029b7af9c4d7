"""`bdii check` / `check_bdii_entries` against our real server, and the `bdii-update` entry point.

The probe runs as a real subprocess from a thread (the server lives on the
reactor thread). Expected lines and statuses are those of the legacy
`check_bdii_entries` (nagios-plugins-bdii 1.0.14) for the same server state.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted

from bdii.check import Observation, Probe, Thresholds, evaluate
from bdii.core.dn import DN
from bdii.core.snapshot import Snapshot
from support import ROOT, SKELETON, in_thread, snapshot_from_ldif

SERVICE = """
dn: GlueServiceUniqueID={id},mds-vo-name=resource,o=grid
objectClass: GlueTop
objectClass: GlueService
GlueServiceUniqueID: {id}
GlueServiceType: bdii_site
"""
SITE = """
dn: GlueSiteUniqueID=TEST-SITE,mds-vo-name=resource,o=grid
objectClass: GlueTop
objectClass: GlueSite
GlueSiteUniqueID: TEST-SITE
GlueSiteName: TEST-SITE
"""
DATA = SKELETON + SITE + "".join(SERVICE.format(id=f"svc-{i}") for i in range(3))
ENTRIES_LINE = re.compile(r"^(OK|WARNING|CRITICAL): time=(\d+\.\d\d)s, entries=(\d+) \|time=\2s;entries=\3$")
FRESH_LINE = re.compile(r"^(OK|WARNING|CRITICAL): freshness=(-?\d+)s, entries=(\d+) \|freshness=\2s;entries=\3$")
ENTRY_POINT = "import sys; from bdii.check import check_bdii_entries_main as m; sys.exit(m())"
UPDATE_ENTRY_POINT = "import sys; from bdii.legacy_update import main; sys.exit(main())"


def bdii_check(*args: str) -> subprocess.CompletedProcess:
    """`bdii check ARGS` as a process."""
    return subprocess.run([sys.executable, "-m", "bdii.cli", "check", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def check_bdii_entries(*args: str) -> subprocess.CompletedProcess:
    """The `check_bdii_entries` entry point as a process."""
    return subprocess.run([sys.executable, "-c", ENTRY_POINT, *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def bdii_update(*args: str) -> subprocess.CompletedProcess:
    """The `bdii-update` entry point as a process."""
    return subprocess.run([sys.executable, "-c", UPDATE_ENTRY_POINT, *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def target(server) -> list[str]:  # type: ignore[no-untyped-def]
    return ["-H", "127.0.0.1", "-p", str(server.port.getHost().port)]


def aged(seconds: float) -> Snapshot:
    """A snapshot whose update statistics were written `seconds` ago."""
    return snapshot_from_ldif(DATA, now=time.time() - seconds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(serve):  # type: ignore[no-untyped-def]
    return serve(snapshot_from_ldif(DATA))


# --- entries mode ------------------------------------------------------------

@pytest_twisted.inlineCallbacks
def test_enough_entries_in_time_is_ok(server):  # type: ignore[no-untyped-def]
    """ARGO's org.bdii.Entries call (-w 20:1 -c 40:1) on a healthy BDII prints the legacy OK line and exits 0."""
    proc = yield in_thread(bdii_check, *target(server), "-b", "mds-vo-name=resource,o=grid", "-w", "20:1", "-c", "40:1")
    m = ENTRIES_LINE.match(proc.stdout.rstrip("\n"))
    assert m and m.group(1) == "OK" and m.group(3) == "3", proc.stdout
    assert proc.stdout.count("\n") == 1 and proc.returncode == 0


@pytest_twisted.inlineCallbacks
def test_filter_shortcuts_and_default_filter(server):  # type: ignore[no-untyped-def]
    """No -f counts GlueService entries, `-f site` GlueSite entries, and a literal filter is used as given."""
    default = yield in_thread(bdii_check, *target(server), "-w", "20:0", "-c", "40:0")
    site = yield in_thread(bdii_check, *target(server), "-f", "site", "-w", "20:0", "-c", "40:0")
    literal = yield in_thread(bdii_check, *target(server), "-f", "(GlueServiceUniqueID=svc-1)", "-w", "20:0", "-c", "40:0")
    counts = [ENTRIES_LINE.match(p.stdout).group(3) for p in (default, site, literal)]  # type: ignore[union-attr]
    assert counts == ["3", "1", "1"]


@pytest_twisted.inlineCallbacks
def test_too_few_entries_warns_then_goes_critical(server):  # type: ignore[no-untyped-def]
    """Fewer than N entries is WARNING (exit 1) against -w and CRITICAL (exit 2) against -c."""
    warn = yield in_thread(bdii_check, *target(server), "-w", "20:4", "-c", "40:1")
    crit = yield in_thread(bdii_check, *target(server), "-w", "20:4", "-c", "40:4")
    assert (ENTRIES_LINE.match(warn.stdout).group(1), warn.returncode) == ("WARNING", 1)  # type: ignore[union-attr]
    assert (ENTRIES_LINE.match(crit.stdout).group(1), crit.returncode) == ("CRITICAL", 2)  # type: ignore[union-attr]


@pytest_twisted.inlineCallbacks
def test_empty_bdii_is_critical(serve):  # type: ignore[no-untyped-def]
    """A BDII that publishes no service at all is CRITICAL with entries=0, as the legacy probe said."""
    server = serve(snapshot_from_ldif(SKELETON))
    proc = yield in_thread(bdii_check, *target(server), "-w", "20:1", "-c", "40:1")
    m = ENTRIES_LINE.match(proc.stdout)
    assert m and (m.group(1), m.group(3), proc.returncode) == ("CRITICAL", "0", 2)


@pytest_twisted.inlineCallbacks
def test_response_time_over_threshold_warns_or_is_critical(server):  # type: ignore[no-untyped-def]
    """Any exchange takes more than 0 seconds: T=0 in -w gives WARNING, in -c CRITICAL, whatever the entries."""
    warn = yield in_thread(bdii_check, *target(server), "-w", "0:1", "-c", "40:1")
    crit = yield in_thread(bdii_check, *target(server), "-w", "0:1", "-c", "0:1")
    assert (ENTRIES_LINE.match(warn.stdout).group(1), warn.returncode) == ("WARNING", 1)  # type: ignore[union-attr]
    assert (ENTRIES_LINE.match(crit.stdout).group(1), crit.returncode) == ("CRITICAL", 2)  # type: ignore[union-attr]


def test_thresholds_compare_as_the_legacy_probe_did() -> None:
    """Time must exceed T (not equal it) and entries fall below N to trip; CRITICAL wins over WARNING."""
    probe = Probe("h", warning=Thresholds(1, 5), critical=Thresholds(2, 2))
    line = lambda t, n: evaluate(probe, Observation(t, n, None, 0))  # noqa: E731
    assert line(1.0, 5) == (0, "OK: time=1.00s, entries=5 |time=1.00s;entries=5")
    assert line(1.004, 5)[0] == 1 and line(2.5, 5)[0] == 2
    assert line(0.1, 4)[0] == 1 and line(0.1, 1)[0] == 2 and line(2.5, 4)[0] == 2


# --- freshness mode ------------------------------------------------------------

@pytest_twisted.inlineCallbacks
def test_freshness_ok_warning_critical(serve):  # type: ignore[no-untyped-def]
    """`-f stats` reads the UpdateStats modifyTimestamp: fresh is OK, older than T in -w WARNING, in -c CRITICAL."""
    results = {}
    for name, age in (("fresh", 0), ("stale", 900), ("dead", 5000)):
        server = serve(aged(age))
        proc = yield in_thread(bdii_check, *target(server), "-f", "stats", "-w", "600:1", "-c", "1200:1")
        m = FRESH_LINE.match(proc.stdout)
        assert m and m.group(3) == "1", proc.stdout
        results[name] = (m.group(1), proc.returncode, int(m.group(2)))
    assert results["fresh"][:2] == ("OK", 0) and 0 <= results["fresh"][2] < 60
    assert results["stale"][:2] == ("WARNING", 1) and 900 <= results["stale"][2] < 960
    assert results["dead"][:2] == ("CRITICAL", 2) and 5000 <= results["dead"][2] < 5060


@pytest_twisted.inlineCallbacks
def test_stats_shortcut_forces_the_infosys_base(serve):  # type: ignore[no-untyped-def]
    """`-f stats` searches o=infosys even when -b names another base, as the legacy probe did."""
    server = serve(aged(0))
    proc = yield in_thread(bdii_check, *target(server), "-f", "stats", "-b", "o=glue", "-w", "600:1", "-c", "1200:1")
    assert FRESH_LINE.match(proc.stdout).group(1, 3) == ("OK", "1")  # type: ignore[union-attr]


def _without_stats() -> Snapshot:
    snap = snapshot_from_ldif(DATA)
    host = DN.parse("Hostname=test.example.org,o=infosys")
    kept = {e.dn: e for e in snap.entries if not e.dn.is_within(host)}
    assert DN.parse("o=infosys") in kept and len(kept) < len(snap.entries)
    return Snapshot.build(kept, {})


@pytest_twisted.inlineCallbacks
def test_missing_stats_entry_is_ok_by_default_and_critical_when_strict(serve):  # type: ignore[no-untyped-def]
    """No UpdateStats entry reads as freshness=-1s: OK like the legacy probe, CRITICAL with --strict-freshness."""
    server = serve(_without_stats())
    lax = yield in_thread(check_bdii_entries, *target(server), "-f", "stats", "-w", "600:1", "-c", "1200:1")
    strict = yield in_thread(check_bdii_entries, *target(server), "-f", "stats", "-w", "600:1", "-c", "1200:1",
                             "--strict-freshness")
    assert (lax.stdout, lax.returncode) == ("OK: freshness=-1s, entries=0 |freshness=-1s;entries=0\n", 0)
    assert strict.returncode == 2
    assert strict.stdout == ("CRITICAL: freshness=-1s, entries=0 (no UpdateStats entry with a modifyTimestamp) "
                             "|freshness=-1s;entries=0\n")


# --- failures ------------------------------------------------------------------

def test_server_down_is_critical() -> None:
    """A closed port gives the legacy bind failure line, CRITICAL (exit 2)."""
    proc = bdii_check("-H", "127.0.0.1", "-p", str(free_port()), "-w", "20:1", "-c", "40:1")
    assert (proc.stdout, proc.returncode) == ("CRITICAL: ldap_simple_bind_s: Can't contact LDAP server\n", 2)


@pytest_twisted.inlineCallbacks
def test_search_errors_are_critical_with_libldap_text(server):  # type: ignore[no-untyped-def]
    """A missing base and a bad filter fail the search: CRITICAL with libldap's words for the code."""
    nobase = yield in_thread(bdii_check, *target(server), "-b", "o=nowhere", "-w", "20:1", "-c", "40:1")
    badfilter = yield in_thread(bdii_check, *target(server), "-f", "(objectClass=", "-w", "20:1", "-c", "40:1")
    assert (nobase.stdout, nobase.returncode) == ("CRITICAL: ldap_search_ext_s: No such object\n", 2)
    assert (badfilter.stdout, badfilter.returncode) == ("CRITICAL: ldap_search_ext_s: Bad search filter\n", 2)


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A socket that accepts connections (in the kernel backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def test_timeout_on_a_server_that_never_answers_is_critical(silent_listener: int) -> None:
    """-t bounds the whole exchange: a server that accepts and stays silent gives CRITICAL ... Timed out."""
    start = time.monotonic()
    proc = bdii_check("-H", "127.0.0.1", "-p", str(silent_listener), "-w", "20:1", "-c", "40:1", "-t", "0.5")
    assert (proc.stdout, proc.returncode) == ("CRITICAL: ldap_simple_bind_s: Timed out\n", 2)
    assert time.monotonic() - start < 20


@pytest.fixture
def bind_only_server() -> Iterator[int]:
    """Answers the first bind request with success, then never answers again."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    conns: list[socket.socket] = []

    def answer() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conns.append(conn)
        request = conn.recv(4096)
        # LDAPMessage: 30 len 02 idlen id ... (RFC 4511 section 4.1.1); echo the id back
        # in a BindResponse (APPLICATION 1) with resultCode success and empty strings.
        idlen = request[3]
        msgid = request[2:4 + idlen]
        body = msgid + bytes([0x61, 0x07, 0x0A, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])
        conn.sendall(bytes([0x30, len(body)]) + body)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    for c in conns:
        c.close()


def test_timeout_during_the_search_names_the_search(bind_only_server: int) -> None:
    """A server that binds but never returns search results times out in ldap_search_ext_s."""
    proc = check_bdii_entries("-H", "127.0.0.1", "-p", str(bind_only_server), "-w", "20:1", "-c", "40:1",
                              "-t", "0.5")
    assert (proc.stdout, proc.returncode) == ("CRITICAL: ldap_search_ext_s: Timed out\n", 2)


@pytest.mark.parametrize(("args", "first_line"), [
    (["-w", "20:1", "-c", "40:1"], "UNKNOWN: hostname (-H option) not specified"),
    (["-H", "h", "-c", "40:1"], "UNKNOWN: warning levels (-w option) are not set"),
    (["-H", "h", "-w", "20:1"], "UNKNOWN: critical levels (-c option) are not set"),
    (["-H", "h", "-w", "20", "-c", "40:1"], "UNKNOWN: invalid format for warning levels, '20' (expected T:N, e.g. 20:1)"),
    (["-H", "h", "-w", "20:1", "-c", "40:1", "-p", "ldap"], "UNKNOWN: -p: 'ldap' is not a number"),
    (["-H", "h", "-w", "20:1", "-c", "40:1", "-x"], "UNKNOWN: unrecognized arguments: -x"),
    (["-H", "h", "-w", "20:1", "-c"], "UNKNOWN: argument -c: expected one argument"),
])
def test_bad_arguments_are_unknown_with_a_usage_line(args: list[str], first_line: str) -> None:
    """Every command-line mistake is UNKNOWN (exit 3): the reason, then the usage, on stdout for Nagios."""
    for proc, prog in ((bdii_check(*args), "bdii check"), (check_bdii_entries(*args), "check_bdii_entries")):
        lines = proc.stdout.splitlines()
        assert proc.returncode == 3 and lines[0] == first_line, proc.stdout + proc.stderr
        assert lines[1].startswith(f"usage: {prog} ") and "-w T:N" in proc.stdout
        assert "Traceback" not in proc.stderr


@pytest_twisted.inlineCallbacks
def test_installed_check_bdii_entries_script(server):  # type: ignore[no-untyped-def]
    """The `check_bdii_entries` console script is installed next to the interpreter and works as the probe."""
    script = Path(sys.executable).parent / "check_bdii_entries"
    assert script.is_file(), "run `pip install -e .` to install the console scripts"
    proc = yield in_thread(subprocess.run, [str(script), *target(server), "-w", "20:1", "-c", "40:1"],
                           capture_output=True, text=True, timeout=60)
    assert ENTRIES_LINE.match(proc.stdout).group(1, 3) == ("OK", "3") and proc.returncode == 0  # type: ignore[union-attr]


# --- bdii-update ---------------------------------------------------------------

def _layout(tmp: Path) -> None:
    for d in ("ldif", "provider", "plugin", "var"):
        (tmp / d).mkdir(exist_ok=True)
    (tmp / "ldif" / "default.ldif").write_text(DATA)


def _dns(ldif: str) -> list[str]:
    return [ln[4:] for ln in ldif.splitlines() if ln.startswith("dn: ")]


def test_bdii_update_prints_one_cycle_of_ldif(tmp_path: Path) -> None:
    """`bdii-update -c FILE` prints the merged LDIF (parents first, no o=infosys) and exits 0."""
    _layout(tmp_path)
    conf = tmp_path / "bdii.conf"
    conf.write_text("BDII_LDIF_DIR=ldif\nBDII_PROVIDER_DIR=provider\nBDII_PLUGIN_DIR=plugin\nBDII_VAR_DIR=var\n")
    proc = bdii_update("-c", str(conf))
    assert proc.returncode == 0, proc.stderr
    dns = _dns(proc.stdout)
    assert "GlueServiceUniqueID=svc-2,Mds-Vo-name=resource,o=grid" in dns
    assert dns.index("o=grid") < dns.index("Mds-Vo-name=resource,o=grid")
    assert not any("o=infosys" in dn for dn in dns)


ARC_CONF = """\
# This file was automatically generated by /usr/share/arc/create-bdii-config
# Do not modify

BDII_LOG_FILE={tmp}/log/bdii-update.log
BDII_PID_FILE={tmp}/run/bdii-update.pid
BDII_LOG_LEVEL=WARNING
BDII_LDIF_DIR=ldif
BDII_PROVIDER_DIR=provider
BDII_PLUGIN_DIR=plugin
BDII_PORT=2135
BDII_BREATHE_TIME=10
BDII_READ_TIMEOUT=21720
BDII_ARCHIVE_SIZE=0
BDII_DELETE_DELAY=0
BDII_USER=ldap
BDII_VAR_DIR=var
BDII_RUN_DIR={tmp}/run
BDII_BIND=o=grid
SLAPD_CONF={tmp}/bdii-slapd.conf
BDII_DIR=/usr
BDII_INFOSYS=no
FIX_GLUE=no
"""


def test_bdii_update_accepts_arc_generated_configuration(tmp_path: Path) -> None:
    """ARC's create-bdii-config keys (and the older grid-infosys ones) are accepted, never fatal."""
    _layout(tmp_path)
    conf = tmp_path / "bdii.conf"
    conf.write_text(ARC_CONF.format(tmp=tmp_path))
    proc = bdii_update("-c", str(conf))
    assert proc.returncode == 0, proc.stderr
    assert "GlueServiceUniqueID=svc-0,Mds-Vo-name=resource,o=grid" in _dns(proc.stdout)
    assert "Traceback" not in proc.stderr


def test_bdii_update_usage_errors_keep_the_legacy_statuses(tmp_path: Path) -> None:
    """No -c or a missing file exits 1 with the legacy message; an unknown option exits 2."""
    none = bdii_update()
    missing = bdii_update("-c", str(tmp_path / "absent.conf"))
    bad = bdii_update("--frobnicate")
    assert none.returncode == 1 and "Error: Configuration file not specified." in none.stderr
    assert missing.returncode == 1 and f"Error: Configuration file {tmp_path / 'absent.conf'} does not exist." \
        in missing.stderr
    assert bad.returncode == 2
    assert "Traceback" not in none.stderr + missing.stderr + bad.stderr


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 60) -> None:
    """Read the process's stderr until a line contains `needle` (no sleeping)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)  # type: ignore[arg-type]
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline and sel.select(timeout=deadline - time.monotonic()):
        line = proc.stderr.readline()  # type: ignore[union-attr]
        if not line:
            break
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"{needle!r} not seen; stderr was:\n{''.join(seen)}")


def test_bdii_update_daemon_mode_serves_and_passes_the_probe(tmp_path: Path) -> None:
    """`bdii-update -c FILE -d` runs the service in the foreground; the probe finds it OK and fresh."""
    _layout(tmp_path)
    port = free_port()
    conf = tmp_path / "bdii.conf"
    conf.write_text("BDII_LDIF_DIR=ldif\nBDII_PROVIDER_DIR=provider\nBDII_PLUGIN_DIR=plugin\nBDII_VAR_DIR=var\n"
                    f"BDII_PORT={port}\nBDII_BIND_ADDRESS=127.0.0.1\nBDII_LOG_LEVEL=INFO\nBDII_BIND=o=grid\n")
    proc = subprocess.Popen([sys.executable, "-c", UPDATE_ENTRY_POINT, "-c", str(conf), "-d"], cwd=ROOT,
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_line(proc, "cycle 1:")
        entries = check_bdii_entries("-H", "127.0.0.1", "-p", str(port), "-w", "20:3", "-c", "40:1")
        fresh = check_bdii_entries("-H", "127.0.0.1", "-p", str(port), "-f", "stats", "-w", "600:1",
                                   "-c", "1200:1", "--strict-freshness")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        proc.stderr.close()  # type: ignore[union-attr]
    assert rc == 0
    assert ENTRIES_LINE.match(entries.stdout).group(1, 3) == ("OK", "3")  # type: ignore[union-attr]
    assert FRESH_LINE.match(fresh.stdout).group(1, 3) == ("OK", "1")  # type: ignore[union-attr]
