"""Wiring: the LDAP listener and the refresh loop in one MultiService."""

from __future__ import annotations

from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString

from bdii.core.config import Config
from bdii.service.ldapserver import LDAPServerFactory, SnapshotHolder
from bdii.service.store import StateStore
from bdii.service.updater import Updater


def endpoint_string(config: Config) -> str:
    """The listening endpoint as a Twisted endpoint description."""
    addr = config.bind_address
    if config.ipv6 and addr in ("0.0.0.0", ""):
        addr = "::"  # dual-stack on Linux: IPv4 clients are accepted too
    kind = "tcp6" if ":" in addr else "tcp"
    return f"{kind}:port={config.port}:interface={addr.replace(':', chr(92) + ':')}:backlog=1024"


class BdiiService(MultiService):
    def __init__(self, config: Config, reactor: Any) -> None:
        super().__init__()
        self.config = config
        self.holder = SnapshotHolder()
        self.updater = Updater(config, reactor, self.holder, StateStore(config.var_dir))
        self.updater.setServiceParent(self)
        self.factory = LDAPServerFactory(self.holder, reactor)
        self.listener = StreamServerEndpointService(serverFromString(reactor, endpoint_string(config)), self.factory)
        self.listener._raiseSynchronously = True
        self.listener.setServiceParent(self)
