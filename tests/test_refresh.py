"""Gathering and the refresh cycle: real files, real provider processes."""

from __future__ import annotations

import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.testing import MemoryReactorClock

from bdii.core.config import Config
from bdii.core.dn import DN
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.sources import is_candidate, run_executable
from bdii.service.store import StateStore
from bdii.service.updater import Updater, in_line
from support import ROOT, SKELETON, in_thread, ldap3_search

SERVICE = """\
dn: GlueServiceUniqueID={id},mds-vo-name=resource,o=grid
objectClass: GlueTop
objectClass: GlueService
GlueServiceUniqueID: {id}
GlueServiceType: {type}
"""


def _exe(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _config(tmp: Path, **kw: object) -> Config:
    for d in ("ldif", "provider", "plugin", "var"):
        (tmp / d).mkdir(exist_ok=True)
    base = Config(ldif_dir=tmp / "ldif", provider_dir=tmp / "provider", plugin_dir=tmp / "plugin",
                  var_dir=tmp / "var", hostname="test.example.org", read_timeout=20)
    return replace(base, **kw)


def _dns(holder: SnapshotHolder) -> set[str]:
    return {str(e.dn) for e in holder.current.entries}


def test_candidate_rule_skips_hidden_and_backup_files() -> None:
    """The legacy rule: names starting with '#' or '.', or ending with '~', are not sources."""
    assert [n for n in ("a.ldif", ".a.ldif", "#a.ldif#", "a.ldif~", "provider") if is_candidate(n)] == \
        ["a.ldif", "provider"]


class ClockedSpawner:
    """Real processes, fake time: timeouts are driven by `clock.advance`."""

    def __init__(self) -> None:
        self.clock = task.Clock()

    def spawnProcess(self, *a, **kw):  # type: ignore[no-untyped-def]  # noqa: N802
        return reactor.spawnProcess(*a, **kw)

    def callLater(self, *a, **kw):  # type: ignore[no-untyped-def]  # noqa: N802
        return self.clock.callLater(*a, **kw)


@defer.inlineCallbacks
def _wait_for(path: Path):  # type: ignore[no-untyped-def]
    """Let the reactor run until a file written by a child process appears."""
    for _ in range(500):
        if path.exists() and path.read_text().strip():
            return
        yield task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"{path} never appeared")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest_twisted.inlineCallbacks
def test_hanging_provider_is_killed_with_its_process_group(tmp_path):  # type: ignore[no-untyped-def]
    """At the timeout the provider and the child it forked are both killed and the failure is named."""
    pidfile = tmp_path / "child.pid"
    prov = _exe(tmp_path / "hang", f"#!/bin/sh\nsleep 300 &\necho $! > {pidfile}\nwait\n")
    spawner = ClockedSpawner()
    d = run_executable(spawner, prov, "provider", timeout=30)
    yield _wait_for(pidfile)
    child = int(pidfile.read_text())
    assert _alive(child)
    spawner.clock.advance(30)
    result = yield d
    assert result.data is None
    assert result.error == "timed out after 30s and was killed"
    assert not _alive(child)


@pytest_twisted.inlineCallbacks
def test_provider_exit_status_and_stderr_are_reported(tmp_path):  # type: ignore[no-untyped-def]
    """A provider that fails gives no data and an error naming its status and last stderr line."""
    prov = _exe(tmp_path / "broken", "#!/bin/sh\necho 'dn: o=grid'\necho 'cannot reach batch system' >&2\nexit 3\n")
    result = yield run_executable(reactor, prov, "provider", timeout=20)
    assert result.data is None
    assert result.error == "exited with status 3: cannot reach batch system"


@pytest_twisted.inlineCallbacks
def test_script_without_shebang_runs_under_sh(tmp_path):  # type: ignore[no-untyped-def]
    """A provider without '#!' runs with /bin/sh, as the legacy BDII's popen did."""
    prov = _exe(tmp_path / "plain", "echo 'dn: o=grid'\n")
    result = yield run_executable(reactor, prov, "provider", timeout=20)
    assert result.data == b"dn: o=grid\n"


@pytest_twisted.inlineCallbacks
def test_cycle_gathers_ldif_providers_and_plugins(tmp_path):  # type: ignore[no-untyped-def]
    """Static LDIF, providers in parallel and plugins after them; junk, backups and non-executables are left out."""
    cfg = _config(tmp_path)
    (tmp_path / "ldif" / "default.ldif").write_text(SKELETON)
    (tmp_path / "ldif" / "old.ldif~").write_text(SERVICE.format(id="backup", type="x"))
    (tmp_path / "ldif" / "junk.ldif").write_bytes(b"\x00\x01binary\x00")
    _exe(tmp_path / "provider" / "a", "#!/bin/sh\ncat <<'X'\n" + SERVICE.format(id="a", type="bdii_site")
         + "\nthis is junk\n\n" + SERVICE.format(id="b", type="srm") + "X\n")
    (tmp_path / "provider" / "notexec").write_text("#!/bin/sh\necho 'dn: o=grid'\n")
    _exe(tmp_path / "provider" / ".hidden", "#!/bin/sh\nexit 1\n")
    for name, vo in (("10-atlas", "atlas"), ("20-cms", "cms")):
        _exe(tmp_path / "plugin" / name, "#!/bin/sh\ncat <<'X'\n"
             "dn: GlueServiceUniqueID=a,mds-vo-name=resource,o=grid\nchangetype: modify\n"
             f"add: GlueServiceAccessControlBaseRule\nGlueServiceAccessControlBaseRule: VO:{vo}\n-\nX\n")
    holder = SnapshotHolder()
    updater = Updater(cfg, reactor, holder)
    result = yield updater.cycle()
    a = holder.current.entries[holder.current.find(DN.parse("GlueServiceUniqueID=a,mds-vo-name=resource,o=grid"))]
    assert a.get("GlueServiceAccessControlBaseRule") == ("VO:atlas", "VO:cms")
    assert "GlueServiceUniqueID=b,Mds-Vo-name=resource,o=grid" in _dns(holder)
    assert not any("backup" in dn for dn in _dns(holder))
    problems = [str(p) for p in result.problems]
    assert any(p.startswith("ldif/junk.ldif:1: binary data") for p in problems)
    assert any(p.startswith("provider/a:7: record skipped") for p in problems)
    assert {s.name for s in result.state.sources.values()} == {
        "ldif/default.ldif", "ldif/junk.ldif", "provider/a", "plugin/10-atlas", "plugin/20-cms"}


@pytest_twisted.inlineCallbacks
def test_the_previous_state_is_let_go_before_the_serving_processes_take_the_new_snapshot(tmp_path):  # type: ignore[no-untyped-def]
    """The old state shares its DNs and entries with the new one: dropping it writes
    their reference counts, which after a fork would copy every page written. So it
    is emptied before the swap, which is where the worker pool forks."""
    cfg = _config(tmp_path)
    (tmp_path / "ldif" / "default.ldif").write_text(SKELETON + "\n" + SERVICE.format(id="a", type="srm"))
    holder = SnapshotHolder()
    updater = Updater(cfg, reactor, holder)
    yield updater.cycle()
    previous = updater.state
    assert len(previous.entries) > 0 and len(previous.times) > 0
    seen: list[tuple[int, int, int]] = []
    holder.listeners.append(lambda snap: seen.append((len(previous.entries), len(previous.times), len(snap))))
    yield updater.cycle()
    assert seen == [(0, 0, len(holder.current))]
    assert updater.state is not previous and len(updater.state.entries) > 0


@pytest_twisted.inlineCallbacks
def test_modification_is_seen_on_the_next_cycle(tmp_path, serve):  # type: ignore[no-untyped-def]
    """A provider's new output is served after the next cycle, with a new modifyTimestamp."""
    cfg = _config(tmp_path)
    (tmp_path / "ldif" / "default.ldif").write_text(SKELETON)
    data = tmp_path / "type.txt"
    data.write_text("bdii_site")
    _exe(tmp_path / "provider" / "svc", "#!/bin/sh\nT=$(cat " + str(data) + ")\ncat <<X\n"
         + SERVICE.format(id="svc", type="$T") + "X\n")
    times = iter([1_800_000_000.0 + 60 * i for i in range(100)])
    holder = SnapshotHolder()
    updater = Updater(cfg, reactor, holder, wall=lambda: next(times))
    yield updater.cycle()
    srv = serve(holder.current)
    srv.holder = holder
    srv.factory.holder = holder
    _r, before = yield in_thread(ldap3_search, srv.url, "o=grid", "(GlueServiceUniqueID=svc)",
                                 attributes=["GlueServiceType", "modifyTimestamp", "createTimestamp"])
    data.write_text("bdii_top")
    result = yield updater.cycle()
    _r, after = yield in_thread(ldap3_search, srv.url, "o=grid", "(GlueServiceUniqueID=svc)",
                                attributes=["GlueServiceType", "modifyTimestamp", "createTimestamp"])
    assert before[0][1]["GlueServiceType"] == [b"bdii_site"]
    assert after[0][1]["GlueServiceType"] == [b"bdii_top"]
    assert after[0][1]["modifyTimestamp"] > before[0][1]["modifyTimestamp"]
    assert after[0][1]["createTimestamp"] == before[0][1]["createTimestamp"]
    assert (result.stats.new, result.stats.modified, result.stats.deleted) == (0, 1, 0)


@pytest_twisted.inlineCallbacks
def test_delayed_delete_survives_a_restart(tmp_path):  # type: ignore[no-untyped-def]
    """A vanished entry stays for BDII_DELETE_DELAY, across a restart, then goes; the state is readable JSON."""
    cfg = _config(tmp_path, delete_delay=300)
    (tmp_path / "ldif" / "default.ldif").write_text(SKELETON)
    svc = tmp_path / "ldif" / "svc.ldif"
    svc.write_text(SERVICE.format(id="gone", type="srm"))
    dn = "GlueServiceUniqueID=gone,Mds-Vo-name=resource,o=grid"
    now = [1_800_000_000.0]
    holder = SnapshotHolder()
    first = Updater(cfg, reactor, holder, StateStore(cfg.var_dir), wall=lambda: now[0])
    yield first.cycle()
    svc.unlink()
    now[0] += 10
    yield first.cycle()
    assert dn in _dns(holder)
    state = (cfg.var_dir / "delayed-delete.json").read_text()
    assert '"GlueServiceType": [\n' in state and dn in state
    # Restart: a new process has no previous snapshot, only the state file.
    holder2 = SnapshotHolder()
    second = Updater(cfg, reactor, holder2, StateStore(cfg.var_dir), wall=lambda: now[0])
    now[0] += 300  # exactly BDII_DELETE_DELAY after it vanished: still served
    yield second.cycle()
    assert dn in _dns(holder2)
    now[0] += 1  # one second past the delay
    yield second.cycle()
    assert dn not in _dns(holder2)


def test_loop_refreshes_every_breathe_time_and_survives_a_failed_cycle(tmp_path) -> None:
    """On a fake clock: one cycle at start, one per BDII_BREATHE_TIME, and a failing cycle keeps the old snapshot."""
    cfg = _config(tmp_path, breathe_time=120)
    (tmp_path / "ldif" / "default.ldif").write_text(SKELETON)
    clock = MemoryReactorClock()
    fail = [False]

    def run(fn, *args):  # type: ignore[no-untyped-def]
        if fail[0] and fn.__name__ == "build_quietly":
            return defer.fail(RuntimeError("simulated failure in the build"))
        return in_line(fn, *args)

    holder = SnapshotHolder()
    updater = Updater(cfg, clock, holder, run=run, wall=lambda: clock.seconds())
    updater.startService()
    assert holder.current.generation == 1
    clock.advance(119)
    assert holder.current.generation == 1
    clock.advance(1)
    assert holder.current.generation == 2
    fail[0] = True
    clock.advance(120)
    assert holder.current.generation == 2 and len(holder.current) > 0
    fail[0] = False
    clock.advance(120)
    assert holder.current.generation == 3
    updater.stopService()


def test_bdii_update_prints_merged_ldif_parents_first(tmp_path) -> None:
    """`bdii update -c FILE` runs one cycle and prints LDIF with every parent before its children."""
    cfg_dir = tmp_path
    _config(cfg_dir)
    (cfg_dir / "ldif" / "default.ldif").write_text(SKELETON)
    _exe(cfg_dir / "provider" / "p", "#!/bin/sh\ncat <<'X'\n" + SERVICE.format(id="p", type="srm") + "X\n")
    conf = cfg_dir / "bdii.conf"
    conf.write_text("BDII_LDIF_DIR=ldif\nBDII_PROVIDER_DIR=provider\nBDII_PLUGIN_DIR=plugin\n"
                    "BDII_VAR_DIR=var\nSLAPD_CONF=/etc/bdii/bdii-slapd.conf\n")
    proc = subprocess.run([sys.executable, "-m", "bdii.cli", "update", "-c", str(conf)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    dns = [ln[4:] for ln in proc.stdout.splitlines() if ln.startswith("dn: ")]
    assert "GlueServiceUniqueID=p,Mds-Vo-name=resource,o=grid" in dns
    seen: set[str] = set()
    for dn in dns:
        parent = dn.split(",", 1)[1] if "," in dn else None
        assert parent is None or parent in seen, f"{dn} printed before its parent"
        seen.add(dn)
    assert not any("o=infosys" in dn for dn in dns)


def test_bad_configuration_is_one_clear_error(tmp_path) -> None:
    """Bad values are all listed with file and line, without a traceback, exit status 2."""
    conf = tmp_path / "bdii.conf"
    conf.write_text("BDII_PORT=twenty\nBDII_BREATHE_TIME=-3\nBDII_COLOUR=blue\n")
    proc = subprocess.run([sys.executable, "-m", "bdii.cli", "update", "-c", str(conf)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2
    assert f"{conf}:1: BDII_PORT='twenty': not an integer" in proc.stderr
    assert f"{conf}:2: BDII_BREATHE_TIME='-3'" in proc.stderr
    assert "Traceback" not in proc.stderr
