"""Wiring: the LDAP listener, the refresh loop and (optionally) HTTP in one MultiService."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString

from bdii.core.config import _KEYS, Config
from bdii.service.http import make_site
from bdii.service.ldapserver import LDAPServerFactory, SnapshotHolder
from bdii.service.metrics import Metrics
from bdii.service.store import StateStore
from bdii.service.updater import Updater
from bdii.service.workers import WorkerPool, in_background_thread, listening_socket

# Settings used only when the service starts (listening sockets, the state
# directory, the GOCDB and FCR fetchers): a reload keeps the running values.
RESTART_ONLY = ("port", "bind_address", "ipv6", "http_port", "http_bind_address", "var_dir", "pid_file", "user",
                "workers")
RESTART_ONLY_PREFIXES = ("gocdb_", "fcr_")


def endpoint_string(config: Config, port: int | None = None, address: str | None = None) -> str:
    """The listening endpoint as a Twisted endpoint description (LDAP by default)."""
    addr = config.bind_address if address is None else address
    if config.ipv6 and addr in ("0.0.0.0", ""):
        addr = "::"  # dual-stack on Linux: IPv4 clients are accepted too
    kind = "tcp6" if ":" in addr else "tcp"
    port = config.port if port is None else port
    return f"{kind}:port={port}:interface={addr.replace(':', chr(92) + ':')}:backlog=1024"


def http_endpoint_string(config: Config) -> str | None:
    """Where the HTTP view listens (`BDII_HTTP_BIND_ADDRESS`, else the LDAP address); None: off."""
    if config.http_port is None:
        return None
    return endpoint_string(config, config.http_port, config.http_bind_address)


def worker_count(config: Config) -> int:
    """BDII_WORKERS, or one serving process per CPU."""
    return config.workers if config.workers is not None else (os.cpu_count() or 1)


class BdiiService(MultiService):
    """The refresh loop, the LDAP listener (in this process, or in forked
    workers: see bdii.service.workers) and optionally HTTP.

    @ivar pool: the serving processes, or None when this process answers.
    """

    def __init__(self, config: Config, reactor: Any, keep_fds: Callable[[], set[int]] = set) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.holder = SnapshotHolder()
        self.metrics = Metrics()
        self.updater = Updater(config, reactor, self.holder, StateStore(config.var_dir))
        self.updater.setServiceParent(self)
        self.keep_fds = keep_fds
        self.pool: WorkerPool | None = None
        self.listener: StreamServerEndpointService | None = None
        if worker_count(config) == 0:
            self.factory = LDAPServerFactory(self.holder, reactor, self.metrics)
            self.listener = StreamServerEndpointService(serverFromString(reactor, endpoint_string(config)),
                                                        self.factory)
            self.listener._raiseSynchronously = True
            self.listener.setServiceParent(self)
        self.http: StreamServerEndpointService | None = None
        http_ep = http_endpoint_string(config)
        if http_ep is not None:
            self.site = make_site(self.holder, self.updater, self.metrics)
            self.http = StreamServerEndpointService(serverFromString(reactor, http_ep), self.site)
            self.http._raiseSynchronously = True
            self.http.setServiceParent(self)

    def startService(self) -> None:
        if self.listener is None and self.pool is None:
            # Opened before anything else starts, so a taken port stops the start.
            sock = listening_socket(self.config.bind_address, self.config.port, self.config.ipv6)
            self.pool = WorkerPool(self.reactor, sock, worker_count(self.config), self.metrics, self.keep_fds)
            self.updater.run = in_background_thread(self.reactor)
            self.holder.listeners.append(self.pool.publish)
            self.pool.publish(self.holder.current)
        super().startService()

    def stopService(self) -> Any:
        if self.pool is not None:
            self.pool.stop()
        return super().stopService()

    def reconfigure(self, new: Config) -> list[str]:
        """Use `new` from the next cycle on; returns a note per setting that
        only a restart changes (the running value is kept)."""
        notes = []
        keep = {}
        key_of = {attr: key for key, (attr, _kind) in _KEYS.items()}
        for f in fields(Config):
            if f.name in RESTART_ONLY or f.name.startswith(RESTART_ONLY_PREFIXES):
                old, value = getattr(self.config, f.name), getattr(new, f.name)
                keep[f.name] = old
                if value != old:
                    notes.append(f"{key_of.get(f.name, f.name)} changed from {old} to {value}: "
                                 "takes effect when the service is restarted")
        self.config = replace(new, **keep)
        self.updater.config = self.config
        return notes

    def refresh_now(self) -> None:
        """Start a refresh cycle now, and the refresh timer anew with the
        current BDII_BREATHE_TIME. Cycles never overlap: if one is running,
        this waits for it (checking every half second) and then starts."""
        if not self.running:
            return
        loop = self.updater._loop  # the Updater's LoopingCall (private: no public hook)
        if loop is not None and loop.running and loop.call is None:
            self.reactor.callLater(0.5, self.refresh_now)
            return
        self.updater.stopService()
        self.updater.startService()
