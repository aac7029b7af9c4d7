"""FCR per-VO blacklists: the pure core with integers, then a running top-level BDII queried as brokers do."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import pytest_twisted
from support import in_thread, ldap3_search, ldapsearch, parse_ldapsearch, snapshot_from_ldif
from twisted.internet import reactor

from bdii.core.config import Config
from bdii.core.dn import DN
from bdii.core.entry import Entry
from bdii.core.errors import ConfigError
from bdii.core.ldif import parse_ldif
from bdii.core.pipeline import SourceResult, State, build
from bdii.core.policy import (
    FcrInput,
    apply_sources,
    explain,
    parse_blacklist,
    resources,
)
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.store import StateStore
from bdii.service.updater import Updater

VOS = ("atlas", "cms", "lhcb")
# (site, host, queue, VOs) and (site, host, VOs): a small multi-site, multi-VO grid.
CES = [("SITE-A", "ce1.a.org", "long", ("atlas", "cms")), ("SITE-A", "ce2.a.org", "short", ("atlas", "lhcb")),
       ("SITE-B", "ce.b.org", "q", ("atlas", "cms", "lhcb")), ("SITE-C", "ce.c.org", "q", ("atlas", "cms"))]
SES = [("SITE-A", "se.a.org", ("atlas", "cms")), ("SITE-B", "se.b.org", ("atlas", "lhcb")),
       ("SITE-C", "se.c.org", ("atlas", "cms"))]
SITES = ("SITE-A", "SITE-B", "SITE-C")


def ce_id(host: str, queue: str) -> str:
    return f"{host}:8443/condor-{queue}"


def _entry(dn: str, *pairs: tuple[str, str]) -> str:
    return f"dn: {dn}\n" + "".join(f"{a}: {v}\n" for a, v in pairs) + "\n"


def site_ldif(site: str) -> str:
    """What SITE's site BDII serves (GLUE 1.3 and 2.0, the site-level DN forms)."""
    g1 = f"mds-vo-name={site},o=grid"
    g2 = f"GLUE2GroupID=resource,GLUE2DomainID={site},o=glue"
    out = [_entry("o=grid", ("objectClass", "organization"), ("o", "grid")),
           _entry(g1, ("objectClass", "MDS"), ("mds-vo-name", site)),
           _entry(f"GlueSiteUniqueID={site},{g1}", ("objectClass", "GlueSite"), ("GlueSiteUniqueID", site)),
           _entry("o=glue", ("objectClass", "organization"), ("o", "glue")),
           _entry(f"GLUE2DomainID={site},o=glue", ("objectClass", "GLUE2Domain"),
                  ("objectClass", "GLUE2AdminDomain"), ("GLUE2DomainID", site)),
           _entry(g2, ("objectClass", "GLUE2Group"), ("GLUE2GroupID", "resource"))]
    for s, host, queue, vos in CES:
        if s != site:
            continue
        cid = ce_id(host, queue)
        ce = f"GlueCEUniqueID={cid},{g1}"
        out.append(_entry(ce, ("objectClass", "GlueCE"), ("GlueCEUniqueID", cid), ("GlueCEInfoHostName", host),
                          ("GlueCEStateStatus", "Production"),
                          *(("GlueCEAccessControlBaseRule", f"VO:{v}") for v in vos)))
        for v in vos:
            out.append(_entry(f"GlueVOViewLocalID={v},{ce}", ("objectClass", "GlueVOView"),
                              ("GlueVOViewLocalID", v), ("GlueCEAccessControlBaseRule", f"VO:{v}"),
                              ("GlueChunkKey", f"GlueCEUniqueID={cid}")))
        svc = f"GLUE2ServiceID={host}_ComputingElement,{g2}"
        out.append(_entry(svc, ("objectClass", "GLUE2Service"), ("objectClass", "GLUE2ComputingService"),
                          ("GLUE2ServiceID", f"{host}_ComputingElement")))
        ep = f"GLUE2EndpointID={host}_ep,{svc}"
        out.append(_entry(ep, ("objectClass", "GLUE2Endpoint"), ("objectClass", "GLUE2ComputingEndpoint"),
                          ("GLUE2EndpointID", f"{host}_ep"), ("GLUE2EndpointURL", f"https://{host}:9619")))
        out.append(_entry(f"GLUE2PolicyID={host}_ep_policy,{ep}", ("objectClass", "GLUE2AccessPolicy"),
                          ("GLUE2PolicyID", f"{host}_ep_policy"),
                          *(("GLUE2PolicyRule", f"VO:{v}") for v in vos),
                          ("GLUE2AccessPolicyEndpointForeignKey", f"{host}_ep")))
        for v in vos:
            share = f"GLUE2ShareID={host}_{queue}_{v},{svc}"
            out.append(_entry(share, ("objectClass", "GLUE2Share"), ("objectClass", "GLUE2ComputingShare"),
                              ("GLUE2ShareID", f"{host}_{queue}_{v}"),
                              ("GLUE2ComputingShareMappingQueue", queue)))
            out.append(_entry(f"GLUE2PolicyID={host}_{queue}_{v}_policy,{share}",
                              ("objectClass", "GLUE2MappingPolicy"), ("GLUE2PolicyID", f"{host}_{queue}_{v}_policy"),
                              ("GLUE2PolicyRule", f"VO:{v}"), ("GLUE2PolicyUserDomainForeignKey", v),
                              ("GLUE2MappingPolicyShareForeignKey", f"{host}_{queue}_{v}")))
    for s, host, vos in SES:
        if s != site:
            continue
        se = f"GlueSEUniqueID={host},{g1}"
        out.append(_entry(se, ("objectClass", "GlueSE"), ("GlueSEUniqueID", host)))
        for v in vos:
            sa = f"GlueSALocalID={v},{se}"
            out.append(_entry(sa, ("objectClass", "GlueSA"), ("GlueSALocalID", v),
                              ("GlueSAAccessControlBaseRule", f"VO:{v}"), ("GlueChunkKey", f"GlueSEUniqueID={host}")))
            out.append(_entry(f"GlueVOInfoLocalID={v}-disk,{sa}", ("objectClass", "GlueVOInfo"),
                              ("GlueVOInfoLocalID", f"{v}-disk"), ("GlueVOInfoAccessControlBaseRule", f"VO:{v}"),
                              ("GlueChunkKey", f"GlueSEUniqueID={host}")))
        out.append(_entry(f"GlueServiceUniqueID={host}_srm,{g1}", ("objectClass", "GlueService"),
                          ("GlueServiceUniqueID", f"{host}_srm"), ("GlueServiceType", "SRM"),
                          ("GlueServiceEndpoint", f"httpg://{host}:8446/srm/managerv2"),
                          *(("GlueServiceAccessControlBaseRule", f"VO:{v}") for v in vos),
                          *(("GlueServiceAccessControlRule", v) for v in vos)))
        svc = f"GLUE2ServiceID={host}_Storage,{g2}"
        out.append(_entry(svc, ("objectClass", "GLUE2Service"), ("objectClass", "GLUE2StorageService"),
                          ("GLUE2ServiceID", f"{host}_Storage")))
        ep = f"GLUE2EndpointID={host}_webdav,{svc}"
        out.append(_entry(ep, ("objectClass", "GLUE2Endpoint"), ("objectClass", "GLUE2StorageEndpoint"),
                          ("GLUE2EndpointID", f"{host}_webdav"), ("GLUE2EndpointURL", f"davs://{host}:443/")))
        out.append(_entry(f"GLUE2PolicyID={host}_webdav_policy,{ep}", ("objectClass", "GLUE2AccessPolicy"),
                          ("GLUE2PolicyID", f"{host}_webdav_policy"),
                          *(("GLUE2PolicyRule", f"VO:{v}") for v in vos),
                          ("GLUE2AccessPolicyEndpointForeignKey", f"{host}_webdav")))
        for v in vos:
            share = f"GLUE2ShareID={host}_{v},{svc}"
            out.append(_entry(share, ("objectClass", "GLUE2Share"), ("objectClass", "GLUE2StorageShare"),
                              ("GLUE2ShareID", f"{host}_{v}")))
            out.append(_entry(f"GLUE2PolicyID={host}_{v}_policy,{share}", ("objectClass", "GLUE2MappingPolicy"),
                              ("GLUE2PolicyID", f"{host}_{v}_policy"), ("GLUE2PolicyRule", f"VO:{v}"),
                              ("GLUE2MappingPolicyShareForeignKey", f"{host}_{v}")))
    return "".join(out)


def expected_view(vo: str, hidden: set[tuple[str, str]]) -> dict[str, set[str]]:
    """What a broker of `vo` finds when the resources in `hidden` are blacklisted for it."""
    ces = [(h, q) for _s, h, q, vos in CES if vo in vos]
    ses = [h for _s, h, vos in SES if vo in vos]
    ce13 = {ce_id(h, q) for h, q in ces if ("ce13", h) not in hidden}
    shares = {f"{h}_{q}_{vo}" for h, q in ces if ("share", h) not in hidden}
    return {
        "ce": ce13,
        "voview": ce13,
        "mapping": shares | {f"{h}_{vo}" for h in ses if ("sshare", h) not in hidden},
        "dirac-shares": shares,
        "access": {f"{h}_ep" for h, _q in ces if ("ep", h) not in hidden}
                  | {f"{h}_webdav" for h in ses if ("sep", h) not in hidden},
        "sa": {h for h in ses if ("sa", h) not in hidden},
        "voinfo": {h for h in ses if ("sa", h) not in hidden},
        "service": {f"{h}_srm" for h in ses if ("srv", h) not in hidden},
    }


def all_of_ce(host: str) -> set[tuple[str, str]]:
    return {("ce13", host), ("share", host), ("ep", host)}


def all_of_se(host: str) -> set[tuple[str, str]]:
    return {("sa", host), ("sshare", host), ("sep", host), ("srv", host)}


def _first(values: list[str] | tuple[str, ...]) -> str:
    return values[0]


# query name -> (base, filter, attribute, value -> ID)
QUERIES = {
    "ce": ("o=grid", "(&(objectClass=GlueCE)(GlueCEAccessControlBaseRule=VO:{vo}))", "GlueCEUniqueID", None),
    "voview": ("o=grid", "(&(objectClass=GlueVOView)(GlueCEAccessControlBaseRule=VO:{vo}))", "GlueChunkKey",
               "GlueCEUniqueID="),
    "mapping": ("o=glue", "(&(objectClass=GLUE2MappingPolicy)(GLUE2PolicyRule=VO:{vo}))",
                "GLUE2MappingPolicyShareForeignKey", None),
    "access": ("o=glue", "(&(objectClass=GLUE2AccessPolicy)(GLUE2PolicyRule=VO:{vo}))",
               "GLUE2AccessPolicyEndpointForeignKey", None),
    "sa": ("o=grid", "(&(objectClass=GlueSA)(GlueSAAccessControlBaseRule=VO:{vo}))", "GlueChunkKey",
           "GlueSEUniqueID="),
    "voinfo": ("o=grid", "(&(objectClass=GlueVOInfo)(GlueVOInfoAccessControlBaseRule=VO:{vo}))", "GlueChunkKey",
               "GlueSEUniqueID="),
    "service": ("o=grid", "(&(objectClass=GlueService)(GlueServiceAccessControlBaseRule=VO:{vo}))",
                "GlueServiceUniqueID", None),
}


def _ids(rows: list[dict[str, list[str]]], attr: str, prefix: str | None) -> set[str]:
    out = set()
    for attrs in rows:
        for v in attrs.get(attr, []):
            if prefix is None:
                out.add(v)
            elif v.startswith(prefix):
                out.add(v[len(prefix):])
    return out


def _ldap3_rows(url: str, base: str, flt: str, attr: str) -> list[dict[str, list[str]]]:
    result, entries = ldap3_search(url, base, flt, attributes=[attr])
    assert result["result"] == 0, result
    return [{k: [v.decode() for v in vals] for k, vals in raw.items()} for _dn, raw in entries]


def _ldapsearch_rows(url: str, base: str, flt: str, attr: str) -> list[dict[str, list[str]]]:
    done = ldapsearch(url, "-b", base, flt, attr)
    assert done.returncode == 0, done.stderr
    return list(parse_ldapsearch(done.stdout).values())


def broker_view(url: str, vo: str) -> dict[str, set[str]]:
    """Each broker query for `vo`, through ldap3 and ldapsearch (which must agree)."""
    view: dict[str, set[str]] = {}
    for name, (base, flt, attr, prefix) in QUERIES.items():
        flt = flt.format(vo=vo)
        a = _ids(_ldap3_rows(url, base, flt, attr), attr, prefix)
        b = _ids(_ldapsearch_rows(url, base, flt, attr), attr, prefix)
        assert a == b, (name, a, b)
        view[name] = a
    # DIRAC: the VO's mapping policies name its shares; then the computing shares themselves.
    fks = view["mapping"]
    flt = "(&(objectClass=GLUE2ComputingShare)(|" + "".join(f"(GLUE2ShareID={k})" for k in sorted(fks)) + "))"
    view["dirac-shares"] = _ids(_ldap3_rows(url, "o=glue", flt, "GLUE2ShareID"), "GLUE2ShareID", None) \
        if fks else set()
    if fks:
        assert view["dirac-shares"] == _ids(_ldapsearch_rows(url, "o=glue", flt, "GLUE2ShareID"),
                                            "GLUE2ShareID", None)
    return view


# ------------------------------------------------------------ core, integers

NOW = 1_800_000_000


def _top_entries() -> dict[DN, Entry]:
    """The three sites merged as the top level has them (pipeline run on site-level data)."""
    from bdii.core.rewrite import Rewriter

    rw = Rewriter("top")
    out: dict[DN, Entry] = {}
    for site in SITES:
        for rec in parse_ldif(site_ldif(site), site).records:
            dn = DN.parse(rec.dn)
            if len(dn) == 1:
                continue
            e = rw.entry(Entry.from_pairs(dn, rec.attrs))  # type: ignore[union-attr]
            out.setdefault(e.dn, e)
    return out


def _apply(text: str, previous=None, max_share: float = 0.5):  # type: ignore[no-untyped-def]
    entries = _top_entries()
    inputs = [FcrInput("file", "fcr.conf", text.encode(), NOW - 60)]
    in_force, statuses, problems = apply_sources(entries, inputs, previous or {}, max_share)
    return entries, in_force, statuses, problems


def _rules_of(entries: dict[DN, Entry], vo: str) -> set[str]:
    return {str(dn) for dn, e in entries.items()
            if any(v == f"VO:{vo}" for a in ("GlueCEAccessControlBaseRule", "GLUE2PolicyRule",
                                             "GlueSAAccessControlBaseRule", "GlueVOInfoAccessControlBaseRule",
                                             "GlueServiceAccessControlBaseRule") for v in e.get(a))}


def test_declarative_file_bad_lines_are_reported_with_file_and_line() -> None:
    """Comments and blank lines are skipped, good rules kept, bad lines reported with file and line."""
    bl, problems = parse_blacklist("# atlas test results\natlas ce ce1.a.org  # failing\n\nnonsense\n"
                                   "cms disk se.a.org\nlhcb site SITE-*\n", "/etc/bdii/fcr.conf", NOW)
    assert [(r.vo, r.kind, r.pattern, r.line) for r in bl.rules] == [
        ("atlas", "ce", "ce1.a.org", 2), ("lhcb", "site", "SITE-*", 6)]
    assert [(p.where, p.line) for p in problems] == [("/etc/bdii/fcr.conf", 4), ("/etc/bdii/fcr.conf", 5)]


def test_legacy_ldif_records_become_one_rule_per_vo_and_dn() -> None:
    """A legacy modify record deleting VO values gives one DN rule per VO; other changes are refused."""
    text = ("dn: GlueCEUniqueID=ce2.a.org:8443/condor-short,mds-vo-name=SITE-A,o=grid\nchangetype: modify\n"
            "delete: GlueCEAccessControlBaseRule\nGlueCEAccessControlBaseRule: VO:atlas\n"
            "GlueCEAccessControlBaseRule: VOMS:/atlas/Role=pilot\n-\n\n"
            "dn: GlueCEUniqueID=x,mds-vo-name=SITE-A,o=grid\nchangetype: modify\nreplace: GlueCEStateStatus\n"
            "GlueCEStateStatus: Closed\n-\n")
    bl, problems = parse_blacklist(text, "fcr.ldif", NOW)
    assert [(r.vo, r.kind, r.line) for r in bl.rules] == [("atlas", "dn", 1)]
    assert len(problems) == 1 and problems[0].line == 8


def test_a_ce_rule_hides_the_ce_for_its_vo_only_in_both_schemas() -> None:
    """`atlas ce ce1.a.org` takes atlas out of ce1's rules, VOView, share and endpoint policies; cms keeps all."""
    before = _top_entries()
    entries, in_force, (status,), problems = _apply("atlas ce ce1.a.org\n")
    assert not problems and status.state == "ok" and in_force["file"] is status.in_force
    gone = _rules_of(before, "atlas") - _rules_of(entries, "atlas")
    assert all("ce1.a.org" in dn for dn in gone) and len(gone) == 4  # CE, VOView, mapping and access policy
    assert _rules_of(entries, "cms") == _rules_of(before, "cms")
    assert not any("GlueVOViewLocalID=atlas,GlueCEUniqueID=ce1" in str(dn) for dn in entries)
    assert not any("ce1.a.org_long_atlas_policy" in str(dn) for dn in entries)  # left without rules: removed
    assert status.reports[0].changed == 4 and status.reports[0].matched == 4  # with the cms share


def test_a_rule_matching_nothing_is_reported() -> None:
    """A typo in a rule is reported with its line, and its report says it matched nothing."""
    _e, _f, (status,), problems = _apply("atlas ce ce1.a.org\natlas ce ce1.typo.org\n")
    assert [(p.line, p.message) for p in problems] == [(2, "rule matches no resource: atlas ce ce1.typo.org")]
    assert [(r.matched, r.changed) for r in status.reports] == [(4, 4), (0, 0)]


def test_a_blacklist_hiding_more_than_the_share_is_refused_and_the_previous_kept() -> None:
    """A blacklist that would hide more than half of atlas's resources is refused; the previous one stays in force."""
    _e, first, _s, _p = _apply("atlas ce ce1.a.org\n")
    _e, in_force, (status,), problems = _apply("atlas site SITE-*\n", previous=first)
    assert status.state == "refused" and in_force == first
    assert "hide 24 of the 24 resources of VO atlas" in status.refusal
    assert status.reports[0].rule.pattern == "ce1.a.org"  # the previous blacklist is applied
    assert any("refused" in p.message for p in problems)
    # The share is configurable: with 1.0 the same blacklist applies.
    _e, in_force, (status,), _p = _apply("atlas site SITE-*\n", previous=first, max_share=1.0)
    assert status.state == "ok" and in_force["file"].rules[0].kind == "site"


def test_a_failed_source_without_a_copy_keeps_the_blacklist_in_force() -> None:
    """When the source gives nothing this cycle, the blacklist in force stays applied and the failure is shown."""
    _e, first, _s, _p = _apply("atlas ce ce1.a.org\n")
    entries = _top_entries()
    in_force, (status,), problems = apply_sources(
        entries, [FcrInput("url", "http://x/fcr", None, None, "HTTP 503")], {"url": first["file"]}, 0.5)
    assert status.state == "failed" and in_force["url"] is first["file"] and status.reports[0].changed == 4
    assert problems[0].message.startswith("blacklist source failed: HTTP 503")


def test_explain_names_the_rule_or_the_missing_access_rule() -> None:
    """`explain` names the hiding rule, says a visible resource is visible, and a VO without access has no rule."""
    entries, _f, statuses, _p = _apply("atlas ce ce1.a.org\n")
    hidden = explain(entries, statuses, "atlas", ce_id("ce1.a.org", "long"))
    assert hidden == [f"GlueCEUniqueID={ce_id('ce1.a.org', 'long')},Mds-Vo-name=SITE-A,Mds-Vo-name=local,o=grid: "
                      "hidden from VO atlas by the file blacklist, fcr.conf:1: atlas ce ce1.a.org"]
    assert explain(entries, statuses, "cms", ce_id("ce1.a.org", "long"))[0].endswith("visible to VO cms (not blacklisted)")
    assert "publishes no access rule for VO lhcb" in explain(entries, statuses, "lhcb", ce_id("ce1.a.org", "long"))[0]
    assert explain(entries, statuses, "atlas", "nowhere.org") == [
        "nowhere.org: no resource with that ID, host name or DN is published"]


def test_every_resource_kind_is_found() -> None:
    """The tree's CEs, SAs, services, shares and endpoints are the blacklistable resources, with their site."""
    units = resources(_top_entries())
    kinds = sorted((u.kind, u.site) for u in units if u.site == "SITE-C")
    assert kinds == sorted([("ce", "SITE-C")] * 4 + [("se", "SITE-C")] * 6)


def test_build_applies_the_blacklist_and_shows_it_in_infosys() -> None:
    """`build` applies the blacklist after plugins and publishes a bdiiBlacklist status entry."""
    results = [SourceResult(f"ldif/{s}.ldif", "ldif", site_ldif(s).encode(), NOW, 0.0) for s in SITES]
    cfg = replace(Config(), hostname="top.example.org")
    fcr = [FcrInput("file", "/etc/bdii/fcr.conf", b"atlas se se.b.org\natlas ce nothing\n", NOW - 30)]
    result = build(results, State(), cfg, NOW, fcr=fcr)
    status = {n: v for e in result.snapshot.entries if e.has_object_class("bdiiBlacklist") for n, v in e.items()}
    assert status["bdiiBlacklistStatus"] == ("ok",) and status["bdiiBlacklistAge"] == ("30",)
    assert set(status["bdiiBlacklistRule"]) == {
        "/etc/bdii/fcr.conf:1: atlas se se.b.org -> 5 entries changed",
        "/etc/bdii/fcr.conf:2: atlas ce nothing -> 0 entries changed (matches no resource)"}
    assert result.state.fcr["file"].rules[0].pattern == "se.b.org"
    # The next cycle without any blacklist configured brings every atlas value back.
    again = build(results, result.state, cfg, NOW + 60)
    assert not again.fcr and not again.state.fcr


def test_fcr_config_keys() -> None:
    """BDII_FCR_INTERVAL and BDII_FCR_MAX_SHARE are read; a share outside 0..1 is reported with its line."""
    cfg = Config.from_legacy_text("BDII_FCR_INTERVAL=900\nBDII_FCR_MAX_SHARE=0.25\n", "bdii.conf")
    assert (cfg.fcr_interval, cfg.fcr_max_share) == (900.0, 0.25)
    with pytest.raises(ConfigError) as err:
        Config.from_legacy_text("BDII_FCR_MAX_SHARE=1.5\n", "bdii.conf")
    assert err.value.problems == ["bdii.conf:1: BDII_FCR_MAX_SHARE='1.5': must be between 0 and 1"]


# --------------------------------------------------- a running top-level BDII

LEGACY = ("dn: GlueCEUniqueID=ce2.a.org:8443/condor-short,mds-vo-name=SITE-A,o=grid\nchangetype: modify\n"
          "delete: GlueCEAccessControlBaseRule\nGlueCEAccessControlBaseRule: VO:atlas\n-\n\n"
          "dn: GLUE2PolicyID=ce2.a.org_short_atlas_policy,GLUE2ShareID=ce2.a.org_short_atlas,"
          "GLUE2ServiceID=ce2.a.org_ComputingElement,GLUE2GroupID=resource,GLUE2DomainID=SITE-A,o=glue\n"
          "changetype: modify\ndelete: GLUE2PolicyRule\nGLUE2PolicyRule: VO:atlas\n-\n")
CASES = {
    "ce": ("atlas ce ce1.a.org\n", all_of_ce("ce1.a.org")),
    "se": ("atlas se se.b.org\n", all_of_se("se.b.org")),
    "service": ("atlas service se.c.org_srm\natlas service ce.c.org_ComputingElement\n",
                {("srv", "se.c.org"), ("share", "ce.c.org"), ("ep", "ce.c.org")}),
    "site": ("# atlas jobs fail at SITE-B\natlas site SITE-B\n", all_of_ce("ce.b.org") | all_of_se("se.b.org")),
    "legacy-ldif": (LEGACY, {("ce13", "ce2.a.org"), ("share", "ce2.a.org")}),
}


def _top(tmp: Path, site_urls: str, **kw: object) -> tuple[Updater, SnapshotHolder, Config]:
    base = tmp / "top"
    for d in ("ldif", "provider", "plugin", "var"):
        (base / d).mkdir(parents=True, exist_ok=True)
    (base / "urls").write_text(site_urls)
    cfg = replace(Config(), ldif_dir=base / "ldif", provider_dir=base / "provider", plugin_dir=base / "plugin",
                  var_dir=base / "var", hostname="top.example.org", mode="top", urls_file=base / "urls",
                  source_timeout=10, **kw)
    holder = SnapshotHolder()
    return Updater(cfg, reactor, holder, StateStore(cfg.var_dir)), holder, cfg


def _sites(serve) -> str:  # type: ignore[no-untyped-def]
    return "".join(f"{s} {serve(snapshot_from_ldif(site_ldif(s))).url}/mds-vo-name={s},o=grid\n" for s in SITES)


def _blacklist_status(holder: SnapshotHolder, name: str) -> dict[str, tuple[str, ...]]:
    for e in holder.current.entries:
        if e.get("bdiiBlacklistName") == (name,):
            return dict(e.items())
    raise AssertionError(f"no bdiiBlacklist entry for {name}")


@pytest_twisted.inlineCallbacks
@pytest.mark.parametrize("case", sorted(CASES))
def test_broker_queries_at_a_running_top_level(tmp_path, serve, case):  # type: ignore[no-untyped-def]
    """For each rule type, atlas's broker queries lose exactly the blacklisted resources, other VOs see no change, and a changed blacklist takes effect."""
    fcr = tmp_path / "fcr-blacklist.conf"
    fcr.write_text("# nothing blacklisted yet\n")
    top, holder, _cfg = _top(tmp_path, _sites(serve), fcr_file=fcr)
    yield top.cycle()
    srv = serve(holder.current)
    for vo in VOS:
        view = yield in_thread(broker_view, srv.url, vo)
        assert view == expected_view(vo, set())

    text, hidden = CASES[case]
    fcr.write_text(text)
    yield top.cycle()
    srv.holder.swap(holder.current)
    view = yield in_thread(broker_view, srv.url, "atlas")
    assert view == expected_view("atlas", hidden)
    for vo in ("cms", "lhcb"):
        view = yield in_thread(broker_view, srv.url, vo)
        assert view == expected_view(vo, set())
    status = _blacklist_status(holder, "file")
    assert status["bdiiBlacklistStatus"] == ("ok",) and int(status["bdiiBlacklistEntriesChanged"][0]) > 0

    # The VO's manager changes the blacklist: the old resources come back, the new one goes.
    fcr.write_text("atlas ce ce.c.org\n")
    yield top.cycle()
    srv.holder.swap(holder.current)
    view = yield in_thread(broker_view, srv.url, "atlas")
    assert view == expected_view("atlas", all_of_ce("ce.c.org"))
    view = yield in_thread(broker_view, srv.url, "cms")
    assert view == expected_view("cms", set())


@pytest_twisted.inlineCallbacks
def test_blacklist_from_a_url_is_kept_when_the_url_goes_down(tmp_path, serve):  # type: ignore[no-untyped-def]
    """The FCR URL (a local HTTP server) is fetched on its interval; when it fails, and after a restart, its last good copy stays applied and the failure is shown."""
    from twisted.web import resource, server

    class Feed(resource.Resource):
        isLeaf = True
        up = True
        body = b"atlas site SITE-B\n"

        def render_GET(self, request):  # type: ignore[no-untyped-def]
            if not self.up:
                request.setResponseCode(503)
                return b"down"
            return self.body

    feed = Feed()
    web = reactor.listenTCP(0, server.Site(feed), interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{web.getHost().port}/fcr/atlas"
        now = [1_800_000_000.0]
        sites = _sites(serve)
        top, holder, _cfg = _top(tmp_path, sites, fcr_url=url, fcr_interval=3600)
        top.wall = top.fcr.wall = lambda: now[0]
        yield top.cycle()
        srv = serve(holder.current)
        site_b = all_of_ce("ce.b.org") | all_of_se("se.b.org")
        view = yield in_thread(broker_view, srv.url, "atlas")
        assert view == expected_view("atlas", site_b)

        # Within the interval the URL is not asked again, even if the feed changed.
        feed.body = b"atlas ce ce1.a.org\n"
        now[0] += 60
        yield top.cycle()
        assert _blacklist_status(holder, "url")["bdiiBlacklistRule"] == (
            f"{url}:1: atlas site SITE-B -> 9 entries changed",)

        feed.up = False
        now[0] += 3600
        yield top.cycle()
        srv.holder.swap(holder.current)
        status = _blacklist_status(holder, "url")
        assert status["bdiiBlacklistStatus"] == ("stale",)
        assert status["bdiiBlacklistLastError"] == (f"HTTP 503 from {url}",)
        assert status["bdiiBlacklistAge"] == ("3660",)
        for vo, hidden in (("atlas", site_b), ("cms", set()), ("lhcb", set())):
            view = yield in_thread(broker_view, srv.url, vo)
            assert view == expected_view(vo, hidden)

        # A restart while the feed is down: the copy kept in BDII_VAR_DIR stands in.
        restarted, holder2, _cfg = _top(tmp_path, sites, fcr_url=url, fcr_interval=3600)
        yield restarted.cycle()
        srv.holder.swap(holder2.current)
        view = yield in_thread(broker_view, srv.url, "atlas")
        assert view == expected_view("atlas", site_b)

        # Back up with a new blacklist: it replaces the old one at the next interval.
        feed.up = True
        now[0] += 3600
        yield top.cycle()
        srv.holder.swap(holder.current)
        view = yield in_thread(broker_view, srv.url, "atlas")
        assert view == expected_view("atlas", all_of_ce("ce1.a.org"))
    finally:
        yield web.stopListening()


@pytest_twisted.inlineCallbacks
def test_a_running_top_level_refuses_a_blacklist_hiding_most_of_a_vo(tmp_path, serve):  # type: ignore[no-untyped-def]
    """A broken feed blacklisting all of atlas is refused: brokers still see the previous state and o=infosys says why."""
    fcr = tmp_path / "fcr-blacklist.conf"
    fcr.write_text("atlas ce ce1.a.org\n")
    top, holder, _cfg = _top(tmp_path, _sites(serve), fcr_file=fcr)
    yield top.cycle()
    fcr.write_text("atlas site SITE-*\natlas ce ce1.typo.org\n")
    yield top.cycle()
    srv = serve(holder.current)
    view = yield in_thread(broker_view, srv.url, "atlas")
    assert view == expected_view("atlas", all_of_ce("ce1.a.org"))
    done = yield in_thread(ldapsearch, srv.url, "-b", "o=infosys", "(objectClass=bdiiBlacklist)",
                           "bdiiBlacklistStatus", "bdiiBlacklistRefusal", "bdiiBlacklistRule")
    (status,) = parse_ldapsearch(done.stdout).values()
    assert status["bdiiBlacklistStatus"] == ["refused"]
    assert status["bdiiBlacklistRefusal"] == [
        "blacklist refused: it would hide 24 of the 24 resources of VO atlas (100% > BDII_FCR_MAX_SHARE 0.5); "
        "keeping the previous one (1 rules)"]
    assert status["bdiiBlacklistRule"] == [f"{fcr}:1: atlas ce ce1.a.org -> 4 entries changed"]


@pytest.mark.parametrize("name", ["fcr-blacklist.conf", "fcr-blacklist.ldif"])
def test_example_blacklists_parse(name: str) -> None:
    """Both example blacklists in etc/ read without problems."""
    from support import ROOT

    bl, problems = parse_blacklist((ROOT / "etc" / name).read_bytes(), name, NOW)
    assert bl.rules and not problems


def test_explain_command_names_the_rule(tmp_path: Path) -> None:
    """`bdii explain -c FILE VO ID` runs one cycle and names the blacklist rule that hides the resource."""
    import subprocess
    import sys

    from support import ROOT

    for d in ("ldif", "provider", "plugin", "var"):
        (tmp_path / d).mkdir()
    (tmp_path / "ldif" / "site.ldif").write_text(site_ldif("SITE-A"))
    (tmp_path / "fcr.conf").write_text("atlas ce ce1.a.org\n")
    conf = tmp_path / "bdii.conf"
    conf.write_text("BDII_LDIF_DIR=ldif\nBDII_PROVIDER_DIR=provider\nBDII_PLUGIN_DIR=plugin\nBDII_VAR_DIR=var\n"
                    "BDII_FCR_FILE=fcr.conf\nBDII_HOSTNAME=test.example.org\n")
    done = subprocess.run([sys.executable, "-m", "bdii.cli", "explain", "-c", str(conf), "atlas",
                           "ce1.a.org:8443/*"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"GlueCEUniqueID={ce_id('ce1.a.org', 'long')},Mds-Vo-name=SITE-A,o=grid: hidden from VO atlas "
        f"by the file blacklist, {tmp_path / 'fcr.conf'}:1: atlas ce ce1.a.org"]
    done = subprocess.run([sys.executable, "-m", "bdii.cli", "explain", "-c", str(conf), "lhcb",
                           ce_id("ce1.a.org", "long")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "not blacklisted; it publishes no access rule for VO lhcb" in done.stdout
