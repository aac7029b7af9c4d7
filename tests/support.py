"""Test support: a real BDII LDAP server on 127.0.0.1 and real clients."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import ldap3
from twisted.internet import threads

from bdii.core.config import Config
from bdii.core.pipeline import SourceResult, State, build
from bdii.core.snapshot import Snapshot
from bdii.service.ldapserver import LDAPServerFactory, SnapshotHolder

ROOT = Path(__file__).resolve().parent.parent

SKELETON = """\
dn: o=grid
objectClass: organization
o: grid

dn: mds-vo-name=resource,o=grid
objectClass: MDS
mds-vo-name: resource

dn: o=glue
objectClass: organization
o: glue

dn: GLUE2GroupID=resource,o=glue
objectClass: GLUE2Group
GLUE2GroupID: resource
"""


def snapshot_from_ldif(*texts: str, now: float = 1_800_000_000, config: Config | None = None) -> Snapshot:
    """Run the real pipeline on LDIF texts (as static files) and return the snapshot."""
    results = [SourceResult(f"ldif/{i:02d}.ldif", "ldif", t.encode(), now, 0.0) for i, t in enumerate(texts)]
    return build(results, State(), config or replace(Config(), hostname="test.example.org"), now).snapshot


class Server:
    """Our LDAP server on an ephemeral port, serving a swappable snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        from twisted.internet import reactor

        self.holder = SnapshotHolder(snapshot)
        self.factory = LDAPServerFactory(self.holder, reactor)
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.url = f"ldap://127.0.0.1:{self.port.getHost().port}"

    def stop(self):  # type: ignore[no-untyped-def]
        """Stop listening (again is fine: the fixture stops every server at the end)."""
        from twisted.internet import defer

        return defer.maybeDeferred(self.port.stopListening)


def ldap3_search(url: str, base: str, flt: str = "(objectClass=*)", scope: str = "SUBTREE",
                 attributes: Iterable[str] | str = ldap3.ALL_ATTRIBUTES, **kw: object) -> tuple[dict, list]:
    """A blocking ldap3 search: returns (result dict, entries as (dn, attrs) list)."""
    server = ldap3.Server(url, get_info=ldap3.NONE)
    conn = ldap3.Connection(server, auto_bind=True, raise_exceptions=False, read_only=True)
    try:
        conn.search(base, flt, search_scope=getattr(ldap3, scope), attributes=attributes, **kw)
        entries = [(r["dn"], dict(r["raw_attributes"])) for r in conn.response or [] if r["type"] == "searchResEntry"]
        return conn.result, entries
    finally:
        conn.unbind()


def in_thread(fn, *args, **kw):  # type: ignore[no-untyped-def]
    """Blocking clients run off the reactor thread (the server lives on it)."""
    return threads.deferToThread(fn, *args, **kw)


def ldapsearch(url: str, *args: str) -> subprocess.CompletedProcess:
    """OpenLDAP's own client, as a subprocess (Debian's ldap-utils)."""
    exe = shutil.which("ldapsearch")
    assert exe, "ldapsearch not found: install Debian's ldap-utils (apt-get install ldap-utils)"
    return subprocess.run([exe, "-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, *args],
                          capture_output=True, text=True, timeout=30)


def parse_ldapsearch(out: str) -> dict[str, dict[str, list[str]]]:
    """ldapsearch -LLL output (unwrapped) as {dn: {attr: [values]}}."""
    import base64

    result: dict[str, dict[str, list[str]]] = {}
    for block in out.strip().split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith("#")]
        if not lines:
            continue
        attrs: dict[str, list[str]] = {}
        dn = None
        for ln in lines:
            name, _, rest = ln.partition(":")
            if rest.startswith(":"):
                value = base64.b64decode(rest[1:].strip()).decode()
            else:
                value = rest[1:] if rest.startswith(" ") else rest
            if dn is None and name == "dn":
                dn = value
            else:
                attrs.setdefault(name, []).append(value)
        assert dn is not None
        result[dn] = attrs
    return result
