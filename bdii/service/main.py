"""Entry points of the shell: `serve` (the daemon) and `update` (one cycle)."""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from bdii.core.config import Config
from bdii.core.dn import DN
from bdii.service.app import BdiiService, endpoint_string
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.logs import start_logging
from bdii.service.updater import Updater

log = Logger()
INFOSYS = DN.parse("o=infosys")


def _notices(config: Config) -> None:
    for n in config.notices:
        log.info("{notice}", notice=n)
    if config.user:
        log.info("BDII_USER={user}: run the service as that user (systemd User=); "
                 "this process does not switch users", user=config.user)


def serve(config: Config) -> int:
    from twisted.internet import reactor

    start_logging(config.python_log_level, config.log_file)
    _notices(config)
    service = BdiiService(config, reactor)
    try:
        service.startService()
    except Exception as exc:  # noqa: BLE001 - e.g. the port is taken
        log.critical("cannot start: {err}", err=exc)
        print(f"bdii: cannot listen on {endpoint_string(config)}: {exc}", file=sys.stderr)
        return 1
    if config.pid_file is not None:
        try:
            config.pid_file.parent.mkdir(parents=True, exist_ok=True)
            config.pid_file.write_text(f"{os.getpid()}\n")
        except OSError as exc:
            log.error("cannot write PID file {path}: {err}", path=str(config.pid_file), err=exc)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)  # type: ignore[attr-defined]
    log.info("serving LDAP on {ep} (mode {mode}, refresh every {t:g}s)", ep=endpoint_string(config),
             mode=config.mode, t=config.breathe_time)
    reactor.run()  # type: ignore[attr-defined]
    return 0


def update(config: Config, with_status: bool = False) -> int:
    """One cycle; the merged LDIF (parents first) goes to stdout."""
    start_logging("WARNING" if config.python_log_level in ("ERROR", "CRITICAL") else config.python_log_level)
    _notices(config)
    out: dict[str, Any] = {}

    @defer.inlineCallbacks
    def run(reactor: Any):  # type: ignore[no-untyped-def]
        # No StateStore: a dry run must not touch the daemon's delayed-delete state.
        updater = Updater(config, reactor, SnapshotHolder())
        out["result"] = yield updater.cycle()

    try:
        task.react(lambda r: run(r), [])
    except SystemExit as exc:
        if exc.code not in (0, None):
            return 1
    result = out.get("result")
    if result is None:
        return 1
    write = sys.stdout.write
    for e in result.snapshot.entries:
        if not with_status and e.dn.is_within(INFOSYS):
            continue
        write(e.to_ldif())
    sys.stdout.flush()
    return 0 if result.stats.failed_sources == 0 else 1
