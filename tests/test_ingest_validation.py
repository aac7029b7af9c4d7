"""BDII_VALIDATE: each source validated at ingest — off, warn (log and count), strict (drop entries with errors)."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest
import pytest_twisted
from support import SKELETON, in_thread, ldapsearch, parse_ldapsearch
from twisted.internet import reactor

from bdii.core.ber import search_result_entry
from bdii.core.config import Config
from bdii.core.dn import DN
from bdii.core.errors import ConfigError
from bdii.core.ldif import parse_ldif
from bdii.core.pipeline import BuildResult, SourceResult, State, build
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.updater import Updater

NOW = 1_714_564_800  # 2024-05-01T12:00:00Z
CONFIG = dataclasses.replace(Config(), hostname="bdii.example.org")
HOST = "Hostname=bdii.example.org,o=infosys"
G = "GLUE2GroupID=resource,o=glue"
S = f"GLUE2ServiceID=svc1,{G}"
E = f"GLUE2EndpointID=ep1,{S}"
G13 = "mds-vo-name=resource,o=grid"

DOMAIN = """\
dn: GLUE2DomainID=SITE-A,o=glue
objectClass: GLUE2Entity
objectClass: GLUE2Domain
objectClass: GLUE2AdminDomain
GLUE2DomainID: SITE-A

dn: GLUE2LocationID=SITE-A-loc,GLUE2DomainID=SITE-A,o=glue
objectClass: GLUE2Entity
objectClass: GLUE2Location
GLUE2LocationID: SITE-A-loc
GLUE2LocationLatitude: 47.37
GLUE2LocationLongitude: 8.54
GLUE2LocationDomainForeignKey: SITE-A
"""

CONTACT = """\
dn: GLUE2ContactID=SITE-A-contact,GLUE2DomainID=SITE-A,o=glue
objectClass: GLUE2Entity
objectClass: GLUE2Contact
GLUE2ContactID: SITE-A-contact
GLUE2ContactDetail: mailto:grid-admin@site-a.example.org
GLUE2ContactType: sysadmin
GLUE2ContactDomainForeignKey: SITE-A
"""


def service(sid: str = "svc1", quality: str = "production") -> str:
    return f"""\
dn: GLUE2ServiceID={sid},{G}
objectClass: GLUE2Entity
objectClass: GLUE2Service
GLUE2ServiceID: {sid}
GLUE2ServiceType: org.glite.FileTransfer
GLUE2ServiceQualityLevel: {quality}
GLUE2ServiceAdminDomainForeignKey: SITE-A
GLUE2EntityCreationTime: 2024-05-01T11:59:00Z
GLUE2EntityValidity: 3600
"""


def endpoint(eid: str = "ep1", sid: str = "svc1", capability: str = "data.transfer") -> str:
    return f"""\
dn: GLUE2EndpointID={eid},GLUE2ServiceID=svc1,{G}
objectClass: GLUE2Entity
objectClass: GLUE2Endpoint
GLUE2EndpointID: {eid}
GLUE2EndpointURL: https://fts.example.org:8446
GLUE2EndpointCapability: {capability}
GLUE2EndpointInterfaceName: org.glite.FileTransfer
GLUE2EndpointQualityLevel: production
GLUE2EndpointHealthState: ok
GLUE2EndpointServingState: production
GLUE2EndpointServiceForeignKey: {sid}
"""


POLICY = f"""\
dn: GLUE2PolicyID=pol1,{E}
objectClass: GLUE2Entity
objectClass: GLUE2Policy
objectClass: GLUE2AccessPolicy
GLUE2PolicyID: pol1
GLUE2PolicyScheme: org.glite.standard
GLUE2PolicyRule: VO:atlas
GLUE2AccessPolicyEndpointForeignKey: ep1
"""

SITE13 = f"""\
dn: GlueSiteUniqueID=SITE-A,{G13}
objectClass: GlueTop
objectClass: GlueSite
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueSiteUniqueID: SITE-A
GlueSiteName: SITE-A
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: GlueClusterUniqueID=ce.example.org,{G13}
objectClass: GlueClusterTop
objectClass: GlueCluster
objectClass: GlueInformationService
objectClass: GlueKey
GlueClusterUniqueID: ce.example.org
GlueForeignKey: GlueSiteUniqueID=SITE-A
"""

CE13 = f"""\
dn: GlueCEUniqueID=ce.example.org:9619/long,{G13}
objectClass: GlueCETop
objectClass: GlueCE
objectClass: GlueCEState
objectClass: GlueCEAccessControlBase
objectClass: GlueKey
GlueCEUniqueID: ce.example.org:9619/long
GlueCEStateRunningJobs: 5
GlueCEAccessControlBaseRule: VO:atlas
GlueForeignKey: GlueClusterUniqueID=ce.example.org
"""


def provider(name: str, *texts: str) -> SourceResult:
    return SourceResult(name, "provider", "\n".join(texts).encode(), NOW, 0.25)


def remote(name: str, *texts: str) -> SourceResult:
    """An LDAP source: its entries as the fetch stores them (SearchResultEntry protocolOps)."""
    ops = b""
    for rec in parse_ldif("\n".join(texts), name).records:
        attrs: dict[str, list[bytes]] = {}
        for a, v in rec.attrs:
            attrs.setdefault(a, []).append(v.encode())
        ops += search_result_entry(rec.dn.encode(), [(a.encode(), vs) for a, vs in attrs.items()])
    return SourceResult(name, "ldap", ops, NOW, 0.25, url=f"ldap://{name}:2170/o=glue")


def skeleton() -> SourceResult:
    return SourceResult("ldif/default.ldif", "ldif", SKELETON.encode(), NOW, 0.0)


def run(mode: str, *sources: SourceResult, profile: str = "glue", config: Config = CONFIG) -> BuildResult:
    cfg = dataclasses.replace(config, validate=mode, validate_profile=profile)
    return build([skeleton(), *sources], State(), cfg, NOW)


def attrs(result: BuildResult, dn: str) -> dict[str, tuple[str, ...]] | None:
    snap = result.snapshot
    i = snap.find(DN.parse(dn))
    return None if i is None else {k: v for k, v in snap.entries[i].attrs.values()}


def counts(result: BuildResult, dn: str) -> tuple[str, ...]:
    a = attrs(result, dn)
    assert a is not None, dn
    return tuple(a.get(k, ("-",))[0] for k in ("bdiiValidationErrors", "bdiiValidationWarnings",
                                               "bdiiValidationDropped"))


def source_dn(name: str) -> str:
    return f"bdiiSourceName={name},{HOST}"


def served(result: BuildResult) -> set[DN]:
    return {e.dn for e in result.snapshot.entries if not e.dn.is_within(DN.parse("o=infosys"))}


def dns(*texts: str) -> set[DN]:
    return {DN.parse(t) for t in texts}


def validation_problems(result: BuildResult) -> list[str]:
    return [str(p) for p in result.problems if p.message.startswith("validation")]


BAD = [provider("provider/good", service(), endpoint(), POLICY),
       provider("provider/bad", service("svc2", quality="excellent"))]


# ------------------------------------------------------------------ configuration


def test_the_keys_default_to_off_and_glue_and_bad_values_are_errors() -> None:
    """BDII_VALIDATE is off unless set; unknown modes and profiles are configuration errors with their line."""
    assert (Config().validate, Config().validate_profile) == ("off", "glue")
    cfg = Config.from_legacy_text("BDII_VALIDATE=Strict\nBDII_VALIDATE_PROFILE=egi\n", "bdii.conf")
    assert (cfg.validate, cfg.validate_profile) == ("strict", "egi")
    with pytest.raises(ConfigError) as exc:
        Config.from_legacy_text("BDII_VALIDATE=yes\nBDII_VALIDATE_PROFILE=wlcg\n", "bdii.conf")
    assert exc.value.problems == [
        "bdii.conf:1: BDII_VALIDATE must be one of off, warn, strict, not 'yes'",
        "bdii.conf:2: BDII_VALIDATE_PROFILE must be one of glue, egi, not 'wlcg'"]


# ------------------------------------------------------------------ off / warn / strict


def test_off_serves_invalid_entries_without_findings_or_counts() -> None:
    """With validation off nothing is checked: the invalid service is served, o=infosys has no counts."""
    r = run("off", *BAD)
    assert dns(f"GLUE2ServiceID=svc2,{G}") <= served(r)
    assert validation_problems(r) == []
    assert counts(r, source_dn("provider/bad")) == ("-", "-", "-")
    assert "bdiiValidationStats" not in attrs(r, HOST)["objectClass"]


def test_warn_logs_each_finding_with_source_dn_attribute_and_rule_and_keeps_the_entry() -> None:
    """warn: the error is logged and counted for its source; the entry is still served."""
    r = run("warn", *BAD)
    assert dns(f"GLUE2ServiceID=svc2,{G}") <= served(r)
    [finding, summary] = [p for p in r.problems if p.message.startswith("validation")]
    assert (finding.where, finding.dn) == ("provider/bad", f"GLUE2ServiceID=svc2,{G}")
    assert finding.message.startswith("validation error: GLUE2ServiceQualityLevel: glue2.enum: 'excellent'")
    assert summary.message == "validation (profile glue): 1 errors, 0 warnings, 0 entries dropped"
    assert counts(r, source_dn("provider/bad")) == ("1", "0", "0")
    assert counts(r, source_dn("provider/good")) == ("0", "0", "0")
    assert counts(r, source_dn("ldif/default.ldif")) == ("0", "0", "0")
    assert counts(r, HOST) == ("1", "0", "0")
    assert attrs(r, HOST)["objectClass"] == ("UpdateStats", "bdiiValidationStats")
    assert (r.stats.validation_errors, r.stats.validation_dropped) == (1, 0)


def test_strict_drops_the_entries_with_errors_and_counts_them() -> None:
    """strict: the entry with an error goes (logged, counted); its children go with it as orphans (FailedAdds)."""
    child = endpoint("ep2", sid="svc2").replace("GLUE2ServiceID=svc1", "GLUE2ServiceID=svc2")
    r = run("strict", BAD[0], provider("provider/bad", service("svc2", quality="excellent"), child))
    assert not dns(f"GLUE2ServiceID=svc2,{G}", f"GLUE2EndpointID=ep2,GLUE2ServiceID=svc2,{G}") & served(r)
    assert dns(E, S, f"GLUE2PolicyID=pol1,{E}") <= served(r)
    assert counts(r, source_dn("provider/bad")) == ("1", "0", "1")
    assert counts(r, HOST) == ("1", "0", "1")
    assert attrs(r, HOST)["FailedAdds"] == ("1",)
    assert any(p.endswith("(entry dropped) (dn: GLUE2ServiceID=svc2,GLUE2GroupID=resource,o=glue)")
               for p in validation_problems(r))


def test_warnings_never_drop_an_entry() -> None:
    """An open-enumeration value is a warning: counted and logged, and the entry is served even in strict mode."""
    r = run("strict", provider("provider/svc", service(), endpoint(capability="my.own.capability")))
    assert dns(E) <= served(r)
    assert counts(r, source_dn("provider/svc")) == ("0", "1", "0")
    assert any("validation warning: GLUE2EndpointCapability: glue2.enum" in p for p in validation_problems(r))


def test_a_dangling_foreign_key_is_an_error_when_no_source_resolves_it() -> None:
    """A key to an ID that no source of the cycle publishes is an error: strict drops the entry."""
    r = run("strict", provider("provider/svc", service(), endpoint(), endpoint("ep9", sid="nosuch")))
    assert not dns(f"GLUE2EndpointID=ep9,{S}") & served(r)
    assert dns(E) <= served(r)
    assert counts(r, source_dn("provider/svc")) == ("1", "0", "1")
    assert any("GLUE2EndpointServiceForeignKey: glue2.foreign-key" in p for p in validation_problems(r))


def test_a_valid_tree_split_over_sources_is_unaffected_in_strict_mode() -> None:
    """Keys that point into another source (domain, service, endpoint, GLUE 1.3 cluster) are no errors:
    strict serves exactly what off serves, with zero counts everywhere."""
    sources = [provider("provider/site", DOMAIN, SITE13), provider("provider/contact", CONTACT),
               provider("provider/service", service(), endpoint()),
               provider("provider/policy", POLICY), provider("provider/ce", CE13)]
    off, strict = run("off", *sources, profile="egi"), run("strict", *sources, profile="egi")
    assert served(strict) == served(off)
    assert dns(f"GLUE2PolicyID=pol1,{E}", f"GlueCEUniqueID=ce.example.org:9619/long,{G13}",
               "GLUE2ContactID=SITE-A-contact,GLUE2DomainID=SITE-A,o=glue") <= served(strict)
    assert validation_problems(strict) == []
    for s in sources:
        assert counts(strict, source_dn(s.name)) == ("0", "0", "0")
    assert counts(strict, HOST) == ("0", "0", "0")


def test_a_piece_of_an_entry_completed_by_another_source_is_a_warning_not_a_drop() -> None:
    """A provider adding an attribute to an entry another source publishes fails MUST on its own: warnings only."""
    piece = f"dn: {E}\nobjectClass: GLUE2Endpoint\nGLUE2EndpointHealthStateInfo: all fine\n"
    r = run("strict", provider("provider/a-service", service(), endpoint()), provider("provider/b-health", piece))
    assert attrs(r, E)["GLUE2EndpointHealthStateInfo"] == ("all fine",)
    errors, warnings, dropped = counts(r, source_dn("provider/b-health"))
    assert (errors, dropped) == ("0", "0") and int(warnings) > 0
    assert all("(on one piece of an entry published more than once)" in p
               for p in validation_problems(r) if "validation warning" in p)


def test_remote_sources_are_validated_as_rewritten_for_our_level() -> None:
    """A site BDII validates what it serves from each resource BDII: an error there drops that entry only."""
    cfg = dataclasses.replace(CONFIG, mode="site", site_name="SITE-A", urls_file=Path("/dev/null"))
    group = f"dn: {G}\nobjectClass: GLUE2Group\nGLUE2GroupID: resource\n"
    r = run("strict", remote("fts", group, service(), endpoint()),
            remote("se", group, service("svc2", quality="excellent")), config=cfg)
    site = "GLUE2GroupID=resource,GLUE2DomainID=SITE-A,o=glue"
    assert dns(f"GLUE2EndpointID=ep1,GLUE2ServiceID=svc1,{site}") <= served(r)
    assert dns(f"GLUE2ServiceID=svc2,{site}") & served(r) == set()
    assert counts(r, source_dn("se")) == ("1", "0", "1")
    assert counts(r, source_dn("fts")) == ("0", "0", "0")


def test_a_failed_source_served_from_its_cache_is_validated_too() -> None:
    """The last good output standing in for a failed provider goes through validation like fresh output."""
    cfg = dataclasses.replace(CONFIG, validate="warn")
    first = build([skeleton(), BAD[1]], State(), cfg, NOW)
    failed = SourceResult("provider/bad", "provider", None, NOW + 60, 0.1, "exited with status 1")
    second = build([skeleton(), failed], first.state, cfg, NOW + 60)
    assert attrs(second, source_dn("provider/bad"))["bdiiSourceStatus"] == ("stale",)
    assert counts(second, source_dn("provider/bad")) == ("1", "0", "0")


def test_plugins_are_not_validated() -> None:
    """Plugins change the merged tree after validation and have no counts of their own."""
    plugin = SourceResult("plugin/p", "plugin", f"dn: {S}\nchangetype: modify\nreplace: GLUE2ServiceQualityLevel\n"
                          "GLUE2ServiceQualityLevel: excellent\n-\n".encode(), NOW, 0.1)
    r = run("strict", provider("provider/svc", service()), plugin)
    assert attrs(r, S)["GLUE2ServiceQualityLevel"] == ("excellent",)
    assert counts(r, source_dn("plugin/p")) == ("-", "-", "-")


# ------------------------------------------------------------------ end to end


def _exe(path: Path, body: str) -> None:
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest_twisted.inlineCallbacks
def test_strict_refresh_serves_the_counts_in_o_infosys(tmp_path, serve):  # type: ignore[no-untyped-def]
    """A real refresh with BDII_VALIDATE=strict: the bad entry is not served, and ldapsearch reads the counts."""
    for d in ("ldif", "provider", "plugin", "var"):
        (tmp_path / d).mkdir()
    (tmp_path / "ldif" / "default.ldif").write_text(SKELETON)
    _exe(tmp_path / "provider" / "fts", "#!/bin/sh\ncat <<'X'\n" + service() + "\n" + endpoint() + "\n"
         + service("svc2", quality="excellent") + "\n" + endpoint("ep3", capability="my.own.capability") + "X\n")
    cfg = Config.from_legacy_text("BDII_VALIDATE=strict\nBDII_HOSTNAME=bdii.example.org\n"
                                  "BDII_LDIF_DIR=ldif\nBDII_PROVIDER_DIR=provider\nBDII_PLUGIN_DIR=plugin\n"
                                  "BDII_VAR_DIR=var\n", "bdii.conf", base=tmp_path)
    holder = SnapshotHolder()
    yield Updater(cfg, reactor, holder, wall=lambda: float(NOW)).cycle()
    srv = serve(holder.current)
    out = yield in_thread(ldapsearch, srv.url, "-b", "o=infosys", "(|(objectClass=bdiiSource)(objectClass=UpdateStats))",
                          "bdiiSourceName", "bdiiValidationErrors", "bdiiValidationWarnings", "bdiiValidationDropped")
    assert out.returncode == 0, out.stderr
    found = parse_ldapsearch(out.stdout)
    assert found[source_dn("provider/fts")] == {
        "bdiiSourceName": ["provider/fts"], "bdiiValidationErrors": ["1"],
        "bdiiValidationWarnings": ["1"], "bdiiValidationDropped": ["1"]}
    assert found[HOST] == {"bdiiValidationErrors": ["1"], "bdiiValidationWarnings": ["1"],
                           "bdiiValidationDropped": ["1"]}
    glue = yield in_thread(ldapsearch, srv.url, "-b", "o=glue", "(objectClass=GLUE2Service)", "GLUE2ServiceID")
    assert parse_ldapsearch(glue.stdout) == {S: {"GLUE2ServiceID": ["svc1"]}}
