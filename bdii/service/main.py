"""Entry points of the shell: `serve` (the daemon) and `update` (one cycle)."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from bdii.core.config import Config
from bdii.core.dn import DN
from bdii.core.errors import ConfigError
from bdii.service.app import BdiiService, endpoint_string, http_endpoint_string
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.logs import LogOutput, start_logging
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

    output = start_logging(config.python_log_level, config.log_file)
    _notices(config)
    def keep_fds() -> set[int]:
        stream = output.stream
        return {stream.fileno()} if stream is not sys.stderr else set()

    service = BdiiService(config, reactor, keep_fds)
    try:
        service.startService()
    except Exception as exc:  # noqa: BLE001 - e.g. the port is taken
        log.critical("cannot start: {err}", err=exc)
        print(f"bdii: cannot listen on {endpoint_string(config)}"
              f"{' or ' + str(http_endpoint_string(config)) if config.http_port else ''}: {exc}", file=sys.stderr)
        return 1
    if config.pid_file is not None:
        try:
            config.pid_file.parent.mkdir(parents=True, exist_ok=True)
            config.pid_file.write_text(f"{os.getpid()}\n")
        except OSError as exc:
            log.error("cannot write PID file {path}: {err}", path=str(config.pid_file), err=exc)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)  # type: ignore[attr-defined]
    # SIGTERM and SIGINT stop the reactor (Twisted's own handlers). SIGHUP:
    # the handler runs between bytecodes on this (the reactor's) thread and
    # only queues the work.
    signal.signal(signal.SIGHUP, lambda _sig, _frame: reactor.callFromThread(hangup, service, output))
    log.info("serving LDAP on {ep} (mode {mode}, refresh every {t:g}s)", ep=endpoint_string(config),
             mode=config.mode, t=config.breathe_time)
    if config.http_port:
        log.info("serving HTTP on {ep}", ep=http_endpoint_string(config))
    reactor.run()  # type: ignore[attr-defined]
    return 0


def hangup(service: BdiiService, output: LogOutput) -> None:
    """SIGHUP: reopen the log file, re-read the configuration, start a cycle.

    A configuration that does not read or has bad values is logged and the
    running one kept; settings that only a restart can change (listening
    addresses, the state directory...) are logged and kept too.
    """
    try:
        output.reopen()
    except OSError as exc:
        log.error("SIGHUP: cannot reopen the log file {path}: {err}; still writing to the old one",
                  path=str(output.path), err=exc.strerror)
    source = service.config.source_file
    if not source.startswith("<"):
        # The CLI owns how a file becomes a Config (the FQDN default, the
        # embedded demo's paths): the same reading as at start.
        from bdii.cli import load_config

        log.info("SIGHUP: reloading the configuration from {path}", path=source)
        try:
            new = load_config(source)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("SIGHUP: {problem}", problem=problem)
            log.error("SIGHUP: bad configuration in {path}; keeping the previous configuration", path=source)
        else:
            for note in service.reconfigure(new):
                log.warn("SIGHUP: {note}", note=note)
            _notices(new)
            try:
                output.configure(service.config.log_file, service.config.python_log_level)
            except OSError as exc:
                log.error("SIGHUP: cannot open the log file {path}: {err}; still writing to the old one",
                          path=str(service.config.log_file), err=exc.strerror)
    log.info("SIGHUP: starting a refresh cycle")
    service.refresh_now()


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
