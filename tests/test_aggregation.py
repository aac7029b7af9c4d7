"""Site and top levels: resource BDIIs feeding a site BDII feeding a top BDII, on loopback."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest_twisted
from twisted.internet import protocol, reactor, task

from bdii.core.config import Config
from bdii.core.urls import parse_urls
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.remote import fetch
from bdii.service.store import StateStore
from bdii.service.updater import Updater
from support import SKELETON, in_thread, ldap3_search, ldapsearch, parse_ldapsearch, snapshot_from_ldif

RESOURCE_CE = SKELETON + """
dn: GlueSiteUniqueID=SITE-A,mds-vo-name=resource,o=grid
objectClass: GlueTop
objectClass: GlueSite
GlueSiteUniqueID: SITE-A
GlueSiteName: SITE-A

dn: GlueCEUniqueID=ce.a.org:8443/condor-q,mds-vo-name=resource,o=grid
objectClass: GlueCETop
objectClass: GlueCE
GlueCEUniqueID: ce.a.org:8443/condor-q
GlueCEStateStatus: Production
GlueCEAccessControlBaseRule: VO:atlas

dn: GLUE2ServiceID=ce.a.org_ComputingElement,GLUE2GroupID=resource,o=glue
objectClass: GLUE2Service
objectClass: GLUE2ComputingService
GLUE2ServiceID: ce.a.org_ComputingElement
GLUE2ServiceType: org.opensciencegrid.htcondorce

dn: GLUE2EndpointID=ce.a.org_ep,GLUE2ServiceID=ce.a.org_ComputingElement,GLUE2GroupID=resource,o=glue
objectClass: GLUE2Endpoint
GLUE2EndpointID: ce.a.org_ep
GLUE2EndpointURL: https://ce.a.org:9619
GLUE2EndpointHealthState: ok
GLUE2EndpointServiceForeignKey: ce.a.org_ComputingElement

dn: GLUE2ApplicationEnvironmentID=sw1,GLUE2ServiceID=ce.a.org_ComputingElement,GLUE2GroupID=resource,o=glue
objectClass: GLUE2ApplicationEnvironment
GLUE2ApplicationEnvironmentID: sw1
GLUE2ApplicationEnvironmentAppName: athena
"""

RESOURCE_SE = SKELETON + """
dn: GlueSEUniqueID=se.a.org,mds-vo-name=resource,o=grid
objectClass: GlueSETop
objectClass: GlueSE
GlueSEUniqueID: se.a.org
GlueSEStatus: Production

dn: GLUE2ServiceID=se.a.org_Storage,GLUE2GroupID=resource,o=glue
objectClass: GLUE2Service
objectClass: GLUE2StorageService
GLUE2ServiceID: se.a.org_Storage
GLUE2ServiceType: webdav
"""


def _dirs(tmp: Path, name: str) -> Path:
    base = tmp / name
    for d in ("ldif", "provider", "plugin", "var"):
        (base / d).mkdir(parents=True, exist_ok=True)
    return base


def level(tmp: Path, name: str, mode: str, urls: str, **kw: object) -> tuple[Updater, SnapshotHolder]:
    """A site or top BDII's refresh loop (not started: tests run cycles by hand)."""
    base = _dirs(tmp, name)
    (base / "urls").write_text(urls)
    cfg = replace(Config(), ldif_dir=base / "ldif", provider_dir=base / "provider", plugin_dir=base / "plugin",
                  var_dir=base / "var", hostname=f"{name}.example.org", mode=mode, urls_file=base / "urls",
                  source_timeout=10, **kw)
    holder = SnapshotHolder()
    return Updater(cfg, reactor, holder, StateStore(cfg.var_dir)), holder


def _dns(holder: SnapshotHolder) -> set[str]:
    return {str(e.dn) for e in holder.current.entries}


def _status(holder: SnapshotHolder, source: str) -> dict[str, tuple[str, ...]]:
    for e in holder.current.entries:
        if e.get("bdiiSourceName") == (source,):
            return {name: values for name, values in e.items()}
    raise AssertionError(f"no status entry for {source}")


@pytest_twisted.inlineCallbacks
def test_resource_site_top_chain(tmp_path, serve):  # type: ignore[no-untyped-def]
    """Resource trees reach the top in the exact legacy DN forms, found by the queries brokers and probes run."""
    ce, se = serve(snapshot_from_ldif(RESOURCE_CE)), serve(snapshot_from_ldif(RESOURCE_SE))
    site, site_holder = level(tmp_path, "site", "site", f"ce {ce.url}/mds-vo-name=resource,o=grid\n"
                              f"se {se.url}/mds-vo-name=resource,o=grid\n", site_name="SITE-A")
    yield site.cycle()
    site_srv = serve(site_holder.current)
    top, top_holder = level(tmp_path, "top", "top", f"SITE-A {site_srv.url}/mds-vo-name=SITE-A,o=grid\n")
    yield top.cycle()
    top_srv = serve(top_holder.current)

    assert {"GlueCEUniqueID=ce.a.org:8443/condor-q,Mds-Vo-name=SITE-A,o=grid",
            "GLUE2EndpointID=ce.a.org_ep,GLUE2ServiceID=ce.a.org_ComputingElement,GLUE2GroupID=resource,"
            "GLUE2DomainID=SITE-A,o=glue"} <= _dns(site_holder)
    assert "GLUE2ApplicationEnvironmentID=sw1,GLUE2ServiceID=ce.a.org_ComputingElement,GLUE2GroupID=resource," \
           "GLUE2DomainID=SITE-A,o=glue" in _dns(site_holder)
    top_dns = _dns(top_holder)
    assert {"GlueCEUniqueID=ce.a.org:8443/condor-q,Mds-Vo-name=SITE-A,Mds-Vo-name=local,o=grid",
            "GlueSEUniqueID=se.a.org,Mds-Vo-name=SITE-A,Mds-Vo-name=local,o=grid",
            "GLUE2EndpointID=ce.a.org_ep,GLUE2ServiceID=ce.a.org_ComputingElement,GLUE2GroupID=resource,"
            "GLUE2DomainID=SITE-A,GLUE2GroupID=grid,o=glue"} <= top_dns
    # The legacy top level leaves application environments and activities out.
    assert not any("GLUE2ApplicationEnvironmentID" in dn for dn in top_dns)

    # ARGO's GLUE 2.0 check (Q19) and an aggregator pulling one site (Q21), via ldapsearch.
    q19 = yield in_thread(ldapsearch, top_srv.url, "-b", "GLUE2DomainID=SITE-A,GLUE2GroupID=grid,o=glue",
                          "(&(objectClass=GLUE2Domain)(GLUE2DomainID=SITE-A))", "GLUE2DomainID")
    assert parse_ldapsearch(q19.stdout) == {"GLUE2DomainID=SITE-A,GLUE2GroupID=grid,o=glue": {
        "GLUE2DomainID": ["SITE-A"]}}
    q21 = yield in_thread(ldapsearch, top_srv.url, "-b", "mds-vo-name=SITE-A,mds-vo-name=local,o=grid",
                          "(objectClass=MDS)", "Mds-Vo-name")
    assert parse_ldapsearch(q21.stdout) == {"Mds-Vo-name=SITE-A,Mds-Vo-name=local,o=grid": {
        "Mds-Vo-name": ["SITE-A"]}}
    # A broker's VO query through ldap3 finds the CE at the top.
    _r, ces = yield in_thread(ldap3_search, top_srv.url, "o=grid",
                              "(&(objectClass=GlueCE)(GlueCEAccessControlBaseRule=VO:atlas))", attributes=["1.1"])
    assert [dn for dn, _ in ces] == ["GlueCEUniqueID=ce.a.org:8443/condor-q,Mds-Vo-name=SITE-A,Mds-Vo-name=local,o=grid"]
    status = _status(top_holder, "ldap/SITE-A")
    assert status["bdiiSourceStatus"] == ("ok",) and int(status["bdiiSourceBytes"][0]) > 0


class Silent(protocol.Protocol):
    """Accepts and never answers."""


class Junk(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(b"\x30\x03\x02\x01")  # an LDAPMessage cut short...
        self.transport.write(b"\xff" * 64)  # ...then noise


def _listen(proto: type[protocol.Protocol]):  # type: ignore[no-untyped-def]
    f = protocol.Factory.forProtocol(proto)
    return reactor.listenTCP(0, f, interface="127.0.0.1")


class ClockedReactor:
    """Real connections, fake time for the fetch deadline."""

    def __init__(self) -> None:
        self.clock = task.Clock()

    def connectTCP(self, *a, **kw):  # type: ignore[no-untyped-def]  # noqa: N802
        return reactor.connectTCP(*a, **kw)

    def callLater(self, *a, **kw):  # type: ignore[no-untyped-def]  # noqa: N802
        return self.clock.callLater(*a, **kw)


@pytest_twisted.inlineCallbacks
def test_a_hanging_source_times_out(tmp_path):  # type: ignore[no-untyped-def]
    """A server that accepts and never answers is given up at BDII_SOURCE_TIMEOUT (fake clock)."""
    port = _listen(Silent)
    try:
        (src,), _ = parse_urls(f"hang ldap://127.0.0.1:{port.getHost().port}/mds-vo-name=resource,o=grid", "t")
        fake = ClockedReactor()
        d = fetch(fake, src, timeout=30, max_bytes=10**6)
        for _ in range(2000):  # let the connection be made on the real reactor (10 s at most)
            if fake.clock.getDelayedCalls():
                break
            yield task.deferLater(reactor, 0.005, lambda: None)
        fake.clock.advance(30)
        result = yield d
    finally:
        yield port.stopListening()
    assert (result.data, result.state, result.error) == (None, "failed", "search did not finish within 30s")


@pytest_twisted.inlineCallbacks
def test_refused_junk_and_too_large_sources_are_reported_and_the_rest_kept(tmp_path, serve):  # type: ignore[no-untyped-def]
    """Refused, junk and oversized sources each get a clear status; the good source is served."""
    good = serve(snapshot_from_ldif(RESOURCE_CE))
    big = serve(snapshot_from_ldif(RESOURCE_CE + "".join(
        f"\ndn: GLUE2ServiceID=s{i},GLUE2GroupID=resource,o=glue\nobjectClass: GLUE2Service\n"
        f"GLUE2ServiceID: s{i}\nGLUE2ServiceDescription: {'x' * 900}\n" for i in range(300))))
    junk = _listen(Junk)
    closed = _listen(Silent)
    closed_port = closed.getHost().port
    yield closed.stopListening()
    try:
        site, holder = level(tmp_path, "site", "site", "\n".join([
            f"good {good.url}/mds-vo-name=resource,o=grid",
            f"refused ldap://127.0.0.1:{closed_port}/mds-vo-name=resource,o=grid",
            f"junk ldap://127.0.0.1:{junk.getHost().port}/mds-vo-name=resource,o=grid",
            f"big {big.url}/mds-vo-name=resource,o=grid"]) + "\n", site_name="SITE-A", source_max_mb=0.1)
        result = yield site.cycle()
    finally:
        yield junk.stopListening()
    states = {n: _status(holder, f"ldap/{n}")["bdiiSourceStatus"][0] for n in ("good", "refused", "junk", "big")}
    assert states == {"good": "ok", "refused": "failed", "junk": "failed", "big": "too-large"}
    assert _status(holder, "ldap/refused")["bdiiSourceLastError"] == ("connection refused",)
    assert _status(holder, "ldap/junk")["bdiiSourceLastError"][0].startswith("malformed LDAP response")
    assert "GlueCEUniqueID=ce.a.org:8443/condor-q,Mds-Vo-name=SITE-A,o=grid" in _dns(holder)
    assert result.stats.failed_sources == 3


@pytest_twisted.inlineCallbacks
def test_a_source_returning_our_own_tree_is_dropped(tmp_path, serve):  # type: ignore[no-untyped-def]
    """A top BDII listed as its own source (a loop) adds nothing and is reported as recursive."""
    ce = serve(snapshot_from_ldif(RESOURCE_CE))
    site, site_holder = level(tmp_path, "site", "site", f"ce {ce.url}/mds-vo-name=resource,o=grid\n",
                              site_name="SITE-A")
    yield site.cycle()
    site_srv = serve(site_holder.current)
    top, top_holder = level(tmp_path, "top", "top", f"SITE-A {site_srv.url}/mds-vo-name=SITE-A,o=grid\n")
    yield top.cycle()
    top_srv = serve(top_holder.current)
    # Now the top also lists itself, as a site called "loop" under mds-vo-name=local.
    (tmp_path / "top" / "urls").write_text(f"SITE-A {site_srv.url}/mds-vo-name=SITE-A,o=grid\n"
                                           f"loop {top_srv.url}/mds-vo-name=local,o=grid\n")
    before = _dns(top_holder)
    yield top.cycle()
    status = _status(top_holder, "ldap/loop")
    assert status["bdiiSourceStatus"] == ("recursive",)
    # local, SITE-A, its GlueSite and GlueCE, and the site BDII's own bdii_site
    # GlueService with its two GlueServiceData
    assert status["bdiiSourceRecursiveEntries"] == ("7",)
    assert {dn for dn in _dns(top_holder) if "infosys" not in dn} == {dn for dn in before if "infosys" not in dn}


@pytest_twisted.inlineCallbacks
def test_a_failed_source_is_served_from_cache_as_unknown_then_comes_back(tmp_path, serve):  # type: ignore[no-untyped-def]
    """When a source fails its cached entries stay (state Unknown at site level), also after a restart; when it is back they are fresh."""
    ce = serve(snapshot_from_ldif(RESOURCE_CE))
    url = ce.url
    site, holder = level(tmp_path, "site", "site", f"ce {url}/mds-vo-name=resource,o=grid\n", site_name="SITE-A")
    yield site.cycle()
    ce_dn = "GlueCEUniqueID=ce.a.org:8443/condor-q,Mds-Vo-name=SITE-A,o=grid"
    yield ce.stop()

    yield site.cycle()
    entry = holder.current.entries[holder.current.find(_parse(ce_dn))]
    assert entry.get("GlueCEStateStatus") == ("Unknown",)
    assert _status(holder, "ldap/ce")["bdiiSourceStatus"] == ("stale",)

    # A restart with the source still down: the on-disk cache stands in.
    restarted, holder2 = level(tmp_path, "site", "site", f"ce {url}/mds-vo-name=resource,o=grid\n",
                               site_name="SITE-A")
    yield restarted.cycle()
    assert ce_dn in _dns(holder2)
    assert _status(holder2, "ldap/ce")["bdiiSourceStatus"] == ("stale",)

    # The source comes back (same data, new port): fresh again.
    back = serve(snapshot_from_ldif(RESOURCE_CE))
    (tmp_path / "site" / "urls").write_text(f"ce {back.url}/mds-vo-name=resource,o=grid\n")
    yield restarted.cycle()
    entry = holder2.current.entries[holder2.current.find(_parse(ce_dn))]
    assert entry.get("GlueCEStateStatus") == ("Production",)
    assert _status(holder2, "ldap/ce")["bdiiSourceStatus"] == ("ok",)


def _parse(dn: str):  # type: ignore[no-untyped-def]
    from bdii.core.dn import DN

    return DN.parse(dn)


def test_urls_file_bad_lines_are_reported_with_file_and_line() -> None:
    """Bad lines of a legacy urls file are reported with their line; the good ones are kept, with their GLUE 2.0 base."""
    text = ("# top-level sources\nSITE-A ldap://bdii.a.org:2170/mds-vo-name=SITE-A,o=grid\n"
            "broken\nSITE-B http://bdii.b.org/mds-vo-name=SITE-B,o=grid\n"
            "RES ldap://r.org:2170/mds-vo-name=resource,o=grid\nG2 ldap://g.org:2170/GLUE2DomainID=X,o=glue\n")
    sources, problems = parse_urls(text, "/etc/bdii/urls")
    assert [(s.name, s.bases) for s in sources] == [
        ("SITE-A", ("Mds-Vo-name=SITE-A,o=grid", "GLUE2DomainID=SITE-A,o=glue")),
        ("RES", ("Mds-Vo-name=resource,o=grid", "GLUE2GroupID=resource,o=glue")),
        ("G2", ("GLUE2DomainID=X,o=glue",))]
    assert [(p.where, p.line) for p in problems] == [("/etc/bdii/urls", 3), ("/etc/bdii/urls", 4)]


GOCDB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<results>
  <SITE ID="1" NAME="SITE-A" ROC="NGI_XX" GIIS_URL="{url}/mds-vo-name=SITE-A,o=grid"/>
  <SITE ID="2" NAME="SITE-T" ROC="NGI_XX" GIIS_URL="{url}/mds-vo-name=SITE-T,o=grid" PRODUCTION_INFRASTRUCTURE="Test"/>
  <SITE ID="3" NAME="SITE-NOBDII" ROC="NGI_XX" GIIS_URL=""/>
</results>
"""


@pytest_twisted.inlineCallbacks
def test_top_level_takes_its_sites_from_gocdb_and_keeps_them_when_gocdb_is_down(tmp_path, serve):  # type: ignore[no-untyped-def]
    """The top level asks GOCDB (a local HTTP server) for its sites; when GOCDB fails, and after a restart, the last good list is used."""
    from twisted.web import resource, server

    ce = serve(snapshot_from_ldif(RESOURCE_CE))
    site, site_holder = level(tmp_path, "site", "site", f"ce {ce.url}/mds-vo-name=resource,o=grid\n",
                              site_name="SITE-A")
    yield site.cycle()
    site_srv = serve(site_holder.current)
    asked: list[dict] = []

    class Gocdb(resource.Resource):
        isLeaf = True
        up = True

        def render_GET(self, request):  # type: ignore[no-untyped-def]  # noqa: N802
            asked.append({k.decode(): v[0].decode() for k, v in request.args.items()})
            if not self.up:
                request.setResponseCode(503)
                return b"down for maintenance"
            return GOCDB_XML.format(url=site_srv.url).encode()

    gocdb = Gocdb()
    web = reactor.listenTCP(0, server.Site(gocdb), interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{web.getHost().port}/gocdbpi/public/"
        now = [1_800_000_000.0]
        base = _dirs(tmp_path, "top")
        cfg = replace(Config(), ldif_dir=base / "ldif", provider_dir=base / "provider",
                      plugin_dir=base / "plugin", var_dir=base / "var", hostname="top.example.org",
                      mode="top", gocdb_url=url, gocdb_interval=3600, source_timeout=10)
        holder = SnapshotHolder()
        top = Updater(cfg, reactor, holder, StateStore(cfg.var_dir), wall=lambda: now[0])
        yield top.cycle()
        assert top.site_list.last_error is None
        ce_at_top = "GlueCEUniqueID=ce.a.org:8443/condor-q,Mds-Vo-name=SITE-A,Mds-Vo-name=local,o=grid"
        assert ce_at_top in _dns(holder)
        assert asked[0] == {"method": "get_site_list", "certification_status": "Certified",
                            "production_status": "Production"}
        assert [s.name for s in top.site_list.sites] == ["SITE-A"]  # the Test site is filtered out

        gocdb.up = False
        now[0] += 3600
        yield top.cycle()
        assert len(asked) == 2 and top.site_list.last_error.startswith(f"HTTP 503 from {url}?method=get_site_list")
        assert ce_at_top in _dns(holder)

        # A restart while GOCDB is down: the answer kept in BDII_VAR_DIR stands in.
        holder2 = SnapshotHolder()
        restarted = Updater(cfg, reactor, holder2, StateStore(cfg.var_dir), wall=lambda: now[0])
        yield restarted.cycle()
        assert ce_at_top in _dns(holder2)
    finally:
        yield web.stopListening()


Q5_BASE, Q5_FILTER = "mds-vo-name=local,o=grid", "(&(objectclass=GlueService)(GlueServiceType=bdii_top))"


@pytest_twisted.inlineCallbacks
def test_site_and_top_bdii_publish_themselves(tmp_path, serve):  # type: ignore[no-untyped-def]
    """With no provider installed, a site BDII serves its own bdii_site service in its site trees
    and a top BDII its bdii_top service where Q5 looks; the site's reaches the top like any entry."""
    ce = serve(snapshot_from_ldif(RESOURCE_CE))
    site, site_holder = level(tmp_path, "site", "site", f"ce {ce.url}/mds-vo-name=resource,o=grid\n",
                              site_name="SITE-A", port=2171)
    yield site.cycle()
    site_srv = serve(site_holder.current)
    assert _status(site_holder, "provider/bdii-self")["bdiiSourceStatus"] == ("ok",)

    _r, found = yield in_thread(ldap3_search, site_srv.url, "mds-vo-name=SITE-A,o=grid",
                                "(&(objectClass=GlueService)(GlueServiceType=bdii_site))",
                                attributes=["GlueServiceEndpoint", "GlueForeignKey"])
    assert found == [("GlueServiceUniqueID=site.example.org_bdii_site_ldap,Mds-Vo-name=SITE-A,o=grid", {
        "GlueServiceEndpoint": [b"ldap://site.example.org:2171/mds-vo-name=SITE-A,o=grid"],
        "GlueForeignKey": [b"GlueSiteUniqueID=SITE-A"]})]
    _r, eps = yield in_thread(ldap3_search, site_srv.url, "GLUE2DomainID=SITE-A,o=glue",
                              "(&(objectClass=GLUE2Endpoint)(GLUE2EndpointInterfaceName=bdii_site))",
                              attributes=["GLUE2EndpointURL"])
    assert eps == [(("GLUE2EndpointID=site.example.org_bdii_site_ldap,GLUE2ServiceID=site.example.org_bdii_site,"
                     "GLUE2DomainID=SITE-A,o=glue"),
                    {"GLUE2EndpointURL": [b"ldap://site.example.org:2171/GLUE2DomainID=SITE-A,o=glue"]})]

    top, top_holder = level(tmp_path, "top", "top", f"SITE-A {site_srv.url}/mds-vo-name=SITE-A,o=grid\n",
                            site_name="SITE-A")
    yield top.cycle()
    top_srv = serve(top_holder.current)
    q5 = yield in_thread(ldapsearch, top_srv.url, "-b", Q5_BASE, Q5_FILTER, "GlueServiceEndpoint")
    assert parse_ldapsearch(q5.stdout) == {
        "GlueServiceUniqueID=top.example.org_bdii_top_ldap,Mds-Vo-name=local,o=grid": {
            "GlueServiceEndpoint": ["ldap://top.example.org:2170/mds-vo-name=local,o=grid"]}}
    _r, top_eps = yield in_thread(ldap3_search, top_srv.url, "o=glue",
                                  "(&(objectClass=GLUE2Endpoint)(|(GLUE2EndpointInterfaceName=bdii_top)"
                                  "(GLUE2EndpointInterfaceName=bdii_site)))", attributes=["GLUE2EndpointURL"])
    assert sorted(top_eps) == [
        (("GLUE2EndpointID=site.example.org_bdii_site_ldap,GLUE2ServiceID=site.example.org_bdii_site,"
          "GLUE2DomainID=SITE-A,GLUE2GroupID=grid,o=glue"),
         {"GLUE2EndpointURL": [b"ldap://site.example.org:2171/GLUE2DomainID=SITE-A,o=glue"]}),
        (("GLUE2EndpointID=top.example.org_bdii_top_ldap,GLUE2ServiceID=top.example.org_bdii_top,"
          "GLUE2GroupID=grid,o=glue"),
         {"GLUE2EndpointURL": [b"ldap://top.example.org:2170/GLUE2GroupID=grid,o=glue"]})]
    # The site BDII's own service, fetched from it, in the legacy top-level DN form.
    q_site = yield in_thread(ldapsearch, top_srv.url, "-b", Q5_BASE,
                             "(&(objectclass=GlueService)(GlueServiceType=bdii_site))", "1.1")
    assert list(parse_ldapsearch(q_site.stdout)) == [
        "GlueServiceUniqueID=site.example.org_bdii_site_ldap,Mds-Vo-name=SITE-A,Mds-Vo-name=local,o=grid"]


@pytest_twisted.inlineCallbacks
def test_self_provider_off_or_without_a_site_name_publishes_nothing(tmp_path, serve):  # type: ignore[no-untyped-def]
    """BDII_SELF_PROVIDER=no turns it off; a top BDII without BDII_SITE_NAME (the AdminDomain
    GLUE 2.0 requires) publishes nothing of itself; a resource BDII never runs it."""
    from bdii.service.selfprovider import self_provider_config

    assert Config.from_legacy_text("BDII_SELF_PROVIDER=no\n", "c").self_provider is False
    assert Config().self_provider is True
    assert self_provider_config(Config(site_name="S")) is None
    ce = serve(snapshot_from_ldif(RESOURCE_CE))
    site, holder = level(tmp_path, "site", "site", f"ce {ce.url}/mds-vo-name=resource,o=grid\n",
                         site_name="SITE-A", self_provider=False)
    top, top_holder = level(tmp_path, "top", "top", f"ce {ce.url}/mds-vo-name=resource,o=grid\n")
    yield site.cycle()
    yield top.cycle()
    for h in (holder, top_holder):
        assert not [dn for dn in _dns(h) if "bdii_" in dn]
        assert not [e for e in h.current.entries if e.get("bdiiSourceName") == ("provider/bdii-self",)]
