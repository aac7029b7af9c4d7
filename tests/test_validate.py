"""`bdii validate`: GLUE 1.3 / GLUE 2.0 rules, profiles, the command and its inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import pytest_twisted
from support import SKELETON, in_thread, snapshot_from_ldif

from bdii.core.validation import ERROR, INFO, WARNING, entries_from_ldif, validate_entries
from bdii.core.validation.model import glue20_facts

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
NOW_TEXT = "2024-05-01T12:00:00Z"
S = "GLUE2ServiceID=svc1,GLUE2GroupID=resource,o=glue"
E = f"GLUE2EndpointID=ep1,{S}"

SERVICE = f"""\
dn: {S}
objectClass: GLUE2Entity
objectClass: GLUE2Service
GLUE2ServiceID: svc1
GLUE2ServiceType: org.glite.FileTransfer
GLUE2ServiceQualityLevel: production
GLUE2ServiceAdminDomainForeignKey: SITE-A
GLUE2EntityCreationTime: 2024-05-01T11:59:00Z
GLUE2EntityValidity: 3600
"""

ENDPOINT = f"""\
dn: {E}
objectClass: GLUE2Entity
objectClass: GLUE2Endpoint
GLUE2EndpointID: ep1
GLUE2EndpointURL: https://fts.example.org:8446
GLUE2EndpointCapability: data.transfer
GLUE2EndpointInterfaceName: org.glite.FileTransfer
GLUE2EndpointQualityLevel: production
GLUE2EndpointHealthState: ok
GLUE2EndpointServingState: production
GLUE2EndpointServiceForeignKey: svc1
"""

POLICY = f"""\
dn: GLUE2PolicyID=pol1,{E}
objectClass: GLUE2Entity
objectClass: GLUE2Policy
objectClass: GLUE2AccessPolicy
GLUE2PolicyID: pol1
GLUE2PolicyScheme: org.glite.standard
GLUE2PolicyRule: VO:atlas
GLUE2PolicyRule: VOMS:/cms/Role=pilot
GLUE2AccessPolicyEndpointForeignKey: ep1
"""

G13 = "mds-vo-name=resource,o=grid"
GLUE13 = f"""\
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

dn: GlueVOViewLocalID=atlas,GlueCEUniqueID=ce.example.org:9619/long,{G13}
objectClass: GlueCETop
objectClass: GlueVOView
objectClass: GlueCEState
objectClass: GlueCEAccessControlBase
objectClass: GlueKey
GlueVOViewLocalID: atlas
GlueCEAccessControlBaseRule: VO:atlas
GlueChunkKey: GlueCEUniqueID=ce.example.org:9619/long
"""

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

dn: GLUE2ContactID=SITE-A-contact,GLUE2DomainID=SITE-A,o=glue
objectClass: GLUE2Entity
objectClass: GLUE2Contact
GLUE2ContactID: SITE-A-contact
GLUE2ContactDetail: mailto:grid-admin@site-a.example.org
GLUE2ContactType: sysadmin
GLUE2ContactDomainForeignKey: SITE-A
"""

VALID = f"{SERVICE}\n{ENDPOINT}\n{POLICY}\n{GLUE13}"


def run(ldif: str, profile: str = "glue", now: datetime = NOW):  # type: ignore[no-untyped-def]
    data = entries_from_ldif(ldif, "test.ldif")
    return validate_entries(data.entries, now, profile, findings=data.findings)


def rules(ldif: str, profile: str = "glue", now: datetime = NOW) -> set[tuple[str, str, str | None]]:
    """(severity, rule, attribute) of every finding."""
    return {(f.severity, f.rule, f.attribute) for f in run(ldif, profile, now).findings}


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# ------------------------------------------------------------------ baseline


def test_valid_example_has_no_findings_under_either_profile() -> None:
    """The hand-written GLUE 2.0 + GLUE 1.3 example is clean under glue and egi."""
    assert rules(VALID) == set()
    assert rules(VALID + "\n" + DOMAIN, "egi") == set()


def test_enumeration_file_names_only_schema_attributes() -> None:
    """Every attribute of glue/glue20-enums.json exists in the GLUE 2.0 schema."""
    from bdii.core.schema import Schema

    facts = glue20_facts()
    schema = Schema.default()
    for key in [*facts.enums, *facts.datetime, *facts.url, *facts.uri, *facts.unsigned, *facts.real]:
        assert schema.attribute(key) is not None, key
    assert facts.enums["glue2endpointhealthstate"].closed
    assert not facts.enums["glue2endpointcapability"].closed


# ------------------------------------------------------------------ schema rules


@pytest.mark.parametrize(("old", "new", "rule", "attribute"), [
    ("objectClass: GLUE2Service\n", "objectClass: GLUE2Service\nobjectClass: GLUE2Servise\n",
     "schema.objectclass", "objectClass"),
    ("objectClass: GLUE2Service\n", "", "schema.structural", "objectClass"),
    ("objectClass: GLUE2Service\n", "objectClass: GLUE2Service\nobjectClass: GLUE2Location\n",
     "schema.structural", "objectClass"),
    ("GLUE2ServiceID: svc1\n", "GLUE2ServiceID: svc1\nGLUE2ServiceColour: blue\n", "schema.attribute",
     "GLUE2ServiceColour"),
    ("GLUE2ServiceID: svc1\n", "GLUE2ServiceID: svc1\nGLUE2EndpointURL: https://x.org\n", "schema.allowed",
     "GLUE2EndpointURL"),
    ("GLUE2ServiceType: org.glite.FileTransfer\n", "", "schema.must", "GLUE2ServiceType"),
    ("GLUE2ServiceType: org.glite.FileTransfer\n", "GLUE2ServiceType: a\nGLUE2ServiceType: b\n",
     "schema.single-value", "GLUE2ServiceType"),
    ("GLUE2EntityValidity: 3600\n", "GLUE2EntityValidity: 1h\n", "glue2.type", "GLUE2EntityValidity"),
    ("GlueCEStateRunningJobs: 5\n", "GlueCEStateRunningJobs: five\n", "schema.syntax", "GlueCEStateRunningJobs"),
    ("GlueCEStateRunningJobs: 5\n", "GlueCEStateRunningJobs: 05\n", "schema.syntax", "GlueCEStateRunningJobs"),
    ("GLUE2ServiceType: org.glite.FileTransfer\n", "GLUE2ServiceType:\n", "schema.empty", "GLUE2ServiceType"),
    ("GLUE2EntityCreationTime: 2024-05-01T11:59:00Z\n", "GLUE2EntityCreationTime: 2024-05-01 11:59\n",
     "schema.datetime", "GLUE2EntityCreationTime"),
    ("GLUE2EntityCreationTime: 2024-05-01T11:59:00Z\n", "GLUE2EntityCreationTime: 2024-02-30T11:59:00Z\n",
     "schema.datetime", "GLUE2EntityCreationTime"),
    ("GLUE2ServiceID: svc1\n", "GLUE2ServiceID: svc2\n", "schema.rdn", "GLUE2ServiceID"),
])
def test_schema_rule_reports_an_error(old: str, new: str, rule: str, attribute: str) -> None:
    """Each schema rule turns one edit of the valid service into an error naming the rule and attribute."""
    found = rules(edit(VALID, old, new))
    assert (ERROR, rule, attribute) in found, found


def test_endpoint_url_and_contact_uri_syntax() -> None:
    """GLUE2EndpointURL must be scheme://host..., GLUE2ContactDetail scheme:...; well-formed ones pass."""
    bad_url = edit(VALID, "GLUE2EndpointURL: https://fts.example.org:8446", "GLUE2EndpointURL: fts.example.org:8446")
    assert (ERROR, "schema.url", "GLUE2EndpointURL") in rules(bad_url)
    bad_uri = edit(DOMAIN, "mailto:grid-admin@site-a.example.org", "grid-admin at site-a")
    assert (ERROR, "schema.uri", "GLUE2ContactDetail") in rules(VALID + "\n" + bad_uri)
    assert rules(VALID + "\n" + DOMAIN) == set()


def test_glue13_syntaxes_boolean_and_ia5() -> None:
    """GLUE 1.3 Booleans are TRUE/FALSE and IA5 strings ASCII only."""
    ok = edit(GLUE13, "GlueSiteName: SITE-A\n", "GlueSiteName: SITE-A\nGlueSiteLocation: Zurich\n")
    assert rules(ok) == set()
    non_ascii = edit(GLUE13, "GlueSiteName: SITE-A\n", "GlueSiteName: SITE-A\nGlueSiteLocation: Zürich\n")
    assert (ERROR, "schema.syntax", "GlueSiteLocation") in rules(non_ascii)
    boolean = edit(GLUE13, "GlueClusterUniqueID: ce.example.org\n",
                   "GlueClusterUniqueID: ce.example.org\nobjectClass: GlueHostNetworkAdapter\n"
                   "GlueHostNetworkAdapterInboundIP: yes\n")
    assert (ERROR, "schema.syntax", "GlueHostNetworkAdapterInboundIP") in rules(boolean)
    assert rules(boolean.replace(": yes", ": TRUE")) == set()


def test_duplicate_dn_is_an_error() -> None:
    """The same DN twice in one input is reported once, on the second copy."""
    report = run(VALID + "\n" + SERVICE)
    assert [f.rule for f in report.findings] == ["schema.duplicate-dn"]


def test_unreadable_records_and_change_records_are_findings() -> None:
    """A record the LDIF reader skips, or a change record, becomes an error naming the line."""
    report = run(VALID + "\ndn: GLUE2ServiceID=x,o=glue\nchangetype: delete\n\nno dn here\n")
    assert {f.rule for f in report.findings} == {"ldif.change-record", "ldif.syntax"}
    assert not entries_from_ldif(b"\x00\x01binary", "b").readable


# ------------------------------------------------------------------ GLUE 2.0 model


def test_closed_enumeration_is_an_error_and_open_one_a_warning() -> None:
    """HealthState (closed) outside its values is an error; Capability (open) a warning."""
    closed = edit(VALID, "GLUE2EndpointHealthState: ok", "GLUE2EndpointHealthState: fine")
    assert (ERROR, "glue2.enum", "GLUE2EndpointHealthState") in rules(closed)
    open_ = edit(VALID, "GLUE2EndpointCapability: data.transfer", "GLUE2EndpointCapability: data.teleport")
    assert rules(open_) == {(WARNING, "glue2.enum", "GLUE2EndpointCapability")}
    quality = edit(VALID, "GLUE2ServiceQualityLevel: production", "GLUE2ServiceQualityLevel: Production")
    assert (ERROR, "glue2.enum", "GLUE2ServiceQualityLevel") in rules(quality)


def test_extended_boolean_accepts_either_case() -> None:
    """ExtendedBoolean_t takes true/false/undefined in any case (providers publish both), nothing else."""
    share = """
dn: GLUE2ShareID=sh1,{S}
objectClass: GLUE2Entity
objectClass: GLUE2Share
objectClass: GLUE2ComputingShare
GLUE2ShareID: sh1
GLUE2ShareServiceForeignKey: svc1
GLUE2ComputingShareServingState: production
GLUE2ComputingSharePreemption: {value}
"""
    assert rules(VALID + share.format(S=S, value="FALSE")) == set()
    assert rules(VALID + share.format(S=S, value="false")) == set()
    assert (ERROR, "glue2.enum", "GLUE2ComputingSharePreemption") in rules(VALID + share.format(S=S, value="no"))


def test_foreign_key_must_name_an_entry_of_the_input() -> None:
    """Endpoint -> Service and AccessPolicy -> Endpoint keys resolve; a dangling one is an error."""
    bad = edit(VALID, "GLUE2EndpointServiceForeignKey: svc1", "GLUE2EndpointServiceForeignKey: svc9")
    report = run(bad)
    assert [(f.rule, f.attribute) for f in report.findings] == [("glue2.foreign-key", "GLUE2EndpointServiceForeignKey")]
    assert "svc9" in report.findings[0].message
    bad = edit(VALID, "GLUE2AccessPolicyEndpointForeignKey: ep1", "GLUE2AccessPolicyEndpointForeignKey: EP1")
    assert (ERROR, "glue2.foreign-key", "GLUE2AccessPolicyEndpointForeignKey") in rules(bad)


def test_admin_domain_key_is_checked_only_when_domains_are_present() -> None:
    """A resource BDII's output names a domain it does not hold; with domains in the input the key must resolve."""
    other = edit(VALID, "GLUE2ServiceAdminDomainForeignKey: SITE-A", "GLUE2ServiceAdminDomainForeignKey: SITE-B")
    assert rules(other) == set()
    assert (ERROR, "glue2.foreign-key", "GLUE2ServiceAdminDomainForeignKey") in rules(other + "\n" + DOMAIN)


def test_ids_are_unique() -> None:
    """Two services with one GLUE2ServiceID (under different parents) are an error."""
    twin = SERVICE.replace("GLUE2GroupID=resource,o=glue", "GLUE2GroupID=other,GLUE2GroupID=resource,o=glue")
    group = "\ndn: GLUE2GroupID=other,GLUE2GroupID=resource,o=glue\nobjectClass: GLUE2Group\nGLUE2GroupID: other\n"
    found = rules(VALID + group + "\n" + twin)
    assert found == {(ERROR, "glue2.id-unique", "GLUE2ServiceID")}


def test_creation_time_in_the_future_is_an_error() -> None:
    """CreationTime past now plus five minutes of clock skew is an error; within the skew it is fine."""
    future = edit(VALID, "2024-05-01T11:59:00Z", "2024-05-01T12:30:00Z")
    assert (ERROR, "glue2.creation-time", "GLUE2EntityCreationTime") in rules(future)
    assert rules(edit(VALID, "2024-05-01T11:59:00Z", "2024-05-01T12:04:00Z")) == set()


def test_validity_must_be_positive() -> None:
    """GLUE2EntityValidity 0 or negative is an error."""
    for value in ("0", "-60"):
        found = rules(edit(VALID, "GLUE2EntityValidity: 3600", f"GLUE2EntityValidity: {value}"))
        assert (ERROR, "glue2.validity", "GLUE2EntityValidity") in found


def test_service_names_the_domain_it_is_published_under() -> None:
    """A service under GLUE2DomainID=SITE-A naming domain SITE-B gets a warning."""
    site = VALID.replace("GLUE2GroupID=resource,o=glue", "GLUE2GroupID=resource,GLUE2DomainID=SITE-A,o=glue")
    parents = ("\ndn: GLUE2GroupID=resource,GLUE2DomainID=SITE-A,o=glue\nobjectClass: GLUE2Group\n"
               "GLUE2GroupID: resource\n")
    assert rules(site + parents + "\n" + DOMAIN) == set()
    wrong = edit(site, "GLUE2ServiceAdminDomainForeignKey: SITE-A", "GLUE2ServiceAdminDomainForeignKey: SITE-B")
    found = rules(wrong + parents)
    assert found == {(WARNING, "glue2.domain", "GLUE2ServiceAdminDomainForeignKey")}


# ------------------------------------------------------------------ GLUE 1.3


def test_placeholders_are_info() -> None:
    """444444 and 999999 in a GLUE 1.3 integer are reported as info, not as errors."""
    report = run(edit(VALID, "GlueCEStateRunningJobs: 5", "GlueCEStateRunningJobs: 444444"))
    assert {(f.severity, f.rule) for f in report.findings} == {(INFO, "glue13.placeholder")}
    assert report.ok


def test_foreign_and_chunk_keys_name_entries_of_the_input() -> None:
    """A GlueForeignKey or GlueChunkKey naming no entry is an error."""
    bad = edit(VALID, "GlueForeignKey: GlueClusterUniqueID=ce.example.org",
               "GlueForeignKey: GlueClusterUniqueID=other.example.org")
    assert (ERROR, "glue13.key", "GlueForeignKey") in rules(bad)
    bad = edit(VALID, "GlueChunkKey: GlueCEUniqueID=ce.example.org:9619/long",
               "GlueChunkKey: GlueCEUniqueID=ce.example.org:9619/short")
    assert (ERROR, "glue13.key", "GlueChunkKey") in rules(bad)
    assert (ERROR, "glue13.key", "GlueForeignKey") in rules(edit(VALID, "GlueForeignKey: GlueSiteUniqueID=SITE-A",
                                                                 "GlueForeignKey: SITE-A"))


def test_chunk_key_names_a_parent() -> None:
    """A GlueChunkKey naming an existing entry that is not a parent gets a warning."""
    bad = edit(VALID, "GlueChunkKey: GlueCEUniqueID=ce.example.org:9619/long",
               "GlueChunkKey: GlueClusterUniqueID=ce.example.org")
    assert rules(bad) == {(WARNING, "glue13.key", "GlueChunkKey")}


def test_site_key_is_skipped_without_a_site() -> None:
    """Resource-level output points at its site without holding it: no finding until a GlueSite is present."""
    site_entry = GLUE13.split("\n\n")[0] + "\n"
    without = VALID.replace(site_entry, "")
    assert rules(without) == set()
    other = edit(VALID, "GlueForeignKey: GlueSiteUniqueID=SITE-A", "GlueForeignKey: GlueSiteUniqueID=SITE-B")
    assert (ERROR, "glue13.key", "GlueForeignKey") in rules(other)


def test_glue13_unique_ids_are_case_insensitive() -> None:
    """Two GlueClusters whose UniqueIDs differ only in case are one ID used twice."""
    twin = ("\ndn: GlueClusterUniqueID=CE.example.org,mds-vo-name=local,o=grid\nobjectClass: GlueClusterTop\n"
            "objectClass: GlueCluster\nGlueClusterUniqueID: CE.example.org\n"
            "\ndn: mds-vo-name=local,o=grid\nobjectClass: MDS\nmds-vo-name: local\n")
    assert (ERROR, "glue13.id-unique", "GlueClusterUniqueID") in rules(VALID + twin)


def test_site_id_matches_the_site_name_of_the_dn() -> None:
    """At site level GlueSiteUniqueID=X sits under mds-vo-name=X; another name gets a warning."""
    good = VALID.replace("mds-vo-name=resource,o=grid", "mds-vo-name=SITE-A,o=grid")
    assert rules(good) == set()
    bad = VALID.replace("mds-vo-name=resource,o=grid", "mds-vo-name=SITE-B,o=grid")
    assert (WARNING, "glue13.site-id", "GlueSiteUniqueID") in rules(bad)


# ------------------------------------------------------------------ EGI profile


def test_egi_admin_domain_needs_contact_and_location() -> None:
    """Under egi an AdminDomain without a Contact and a Location pointing at it is an error; glue does not care."""
    domain_only = VALID + "\n" + DOMAIN.split("\n\n")[0] + "\n"
    found = rules(domain_only, "egi")
    assert {(s, r) for s, r, _ in found} == {(ERROR, "egi.domain-contact"), (ERROR, "egi.domain-location")}
    assert rules(domain_only) == set()


def test_egi_location_coordinates_in_range() -> None:
    """Latitude beyond 90 is an error under egi; a latitude that is no number is one under glue already."""
    bad = edit(DOMAIN, "GLUE2LocationLatitude: 47.37", "GLUE2LocationLatitude: 147.37")
    assert (ERROR, "egi.location", "GLUE2LocationLatitude") in rules(VALID + "\n" + bad, "egi")
    text = edit(DOMAIN, "GLUE2LocationLatitude: 47.37", "GLUE2LocationLatitude: 47N")
    assert (ERROR, "glue2.type", "GLUE2LocationLatitude") in rules(VALID + "\n" + text)


def test_egi_endpoint_capabilities_required() -> None:
    """Under egi an endpoint without GLUE2EndpointCapability is an error; glue allows it."""
    bad = edit(VALID, "GLUE2EndpointCapability: data.transfer\n", "")
    assert rules(bad, "egi") == {(ERROR, "egi.endpoint-capability", "GLUE2EndpointCapability")}
    assert rules(bad) == set()


@pytest.mark.parametrize("rule", ["vo:atlas", "VO:*", "atlas", "VOMS:atlas/Role=pilot", "VO:"])
def test_egi_policy_rules_well_formed(rule: str) -> None:
    """Under egi a policy rule must be VO:<vo>, VOMS:/<fqan> or ALL; others are errors (glue ignores them)."""
    bad = edit(VALID, "GLUE2PolicyRule: VO:atlas", f"GLUE2PolicyRule: {rule}")
    assert rules(bad, "egi") == {(ERROR, "egi.policy-rule", "GLUE2PolicyRule")}
    assert rules(bad) == set()
    bad13 = edit(VALID, "GlueCEAccessControlBaseRule: VO:atlas", f"GlueCEAccessControlBaseRule: {rule}")
    assert (ERROR, "egi.policy-rule", "GlueCEAccessControlBaseRule") in rules(bad13, "egi")


def test_egi_expired_data_is_a_warning() -> None:
    """Under egi data past CreationTime + Validity is a warning."""
    later = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone.utc)
    assert rules(VALID, "egi", later) == {(WARNING, "egi.expired", "GLUE2EntityValidity")}
    assert rules(VALID, "glue", later) == set()


# ------------------------------------------------------------------ realistic input


def test_demo_site_has_no_errors_under_egi(tmp_path: Path) -> None:
    """The demo site of `bdii serve` (its providers' LDIF, with the default skeleton)
    validates with no errors under the egi profile."""
    from bdii.cli import prepare_default_state

    prepare_default_state(tmp_path)
    out = b"".join(subprocess.run([str(p)], capture_output=True, check=True).stdout + b"\n"
                   for p in sorted((tmp_path / "provider").iterdir()))
    skeleton = (ROOT / "bdii" / "default" / "ldif" / "default.ldif").read_bytes()
    report = run((skeleton + b"\n" + out).decode(), "egi", datetime.now(timezone.utc))
    assert report.entries > 100
    assert [f for f in report.findings if f.severity == ERROR] == []


def test_gridgen_top_level_data_has_no_errors_under_glue() -> None:
    """Three sites of bench/gridgen.py (top-level DN forms) validate with no errors under the glue profile."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gridgen
    finally:
        sys.path.remove(str(ROOT / "bench"))
    text = "".join(gridgen.to_ldif(gridgen.generate_records(3, 1)))
    report = run(text, "glue", datetime.now(timezone.utc))
    assert report.entries > 1000
    assert [f for f in report.findings if f.severity == ERROR] == []


# ------------------------------------------------------------------ the command


def bdii(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bdii.cli", "validate", *args], check=False, input=stdin,
                          capture_output=True, timeout=120)


def test_command_on_a_file_prints_one_line_per_problem_and_a_summary(tmp_path: Path) -> None:
    """A file with one error: one tab-separated line (severity, DN, attribute, rule, reason), a summary, exit 1."""
    path = tmp_path / "bad.ldif"
    path.write_text(edit(VALID, "GLUE2EndpointHealthState: ok", "GLUE2EndpointHealthState: fine"))
    p = bdii(str(path), "--now", NOW_TEXT)
    assert p.returncode == 1, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0].split("\t")[:4] == ["error", E, "GLUE2EndpointHealthState", "glue2.enum"]
    assert lines[-1] == "7 entries checked (profile glue): 1 errors, 0 warnings, 0 infos"


def test_command_on_stdin_exits_zero_without_errors() -> None:
    """Valid LDIF on stdin: only the summary, exit 0."""
    p = bdii("-", "--profile", "egi", "--now", NOW_TEXT, stdin=VALID.encode())
    assert p.returncode == 0, p.stdout
    assert p.stdout.decode().splitlines() == ["7 entries checked (profile egi): 0 errors, 0 warnings, 0 infos"]


def test_command_json_report() -> None:
    """--json prints one document with counts and findings."""
    p = bdii("-", "--json", "--now", NOW_TEXT, stdin=edit(VALID, "VO:atlas", "vo:atlas").encode())
    doc = json.loads(p.stdout)
    assert p.returncode == 0
    assert doc["counts"] == {"error": 0, "warning": 0, "info": 0} and doc["entries"] == 7 and doc["ok"]
    p = bdii("-", "--json", "--profile", "egi", "--now", NOW_TEXT, stdin=edit(VALID, "VO:atlas", "vo:atlas").encode())
    doc = json.loads(p.stdout)
    assert p.returncode == 1
    assert doc["findings"][0]["rule"] == "egi.policy-rule" and doc["findings"][0]["attribute"] == "GLUE2PolicyRule"


def test_command_unreadable_input_exits_two(tmp_path: Path) -> None:
    """A missing file, binary data or a failing provider: one line on stderr, exit 2."""
    p = bdii(str(tmp_path / "missing.ldif"))
    assert p.returncode == 2 and b"cannot read" in p.stderr and b"Traceback" not in p.stderr
    p = bdii("-", stdin=b"\x00\x01\x02")
    assert p.returncode == 2 and b"binary" in p.stderr
    p = bdii("--provider", f"{sys.executable} -c 'raise SystemExit(3)'")
    assert p.returncode == 2 and b"status 3" in p.stderr
    p = bdii("--provider", "/nonexistent/provider")
    assert p.returncode == 2 and b"cannot run" in p.stderr


def test_command_runs_a_provider() -> None:
    """--provider runs the command and validates what it prints."""
    p = bdii("--provider", f"{sys.executable} -m bdii.providers.ce -c {ROOT}/etc/providers/ce-static.conf",
             "--profile", "egi")
    assert p.returncode == 0, p.stdout
    assert b" 0 errors" in p.stdout.splitlines()[-1]


def test_command_provider_timeout_exits_two() -> None:
    """A provider that outlives --timeout is killed and the input counts as unreadable."""
    # The provider blocks forever (select on nothing) until it is killed.
    p = bdii("--provider", f"{sys.executable} -c 'import select; select.select([], [], [])'", "--timeout", "0.5")
    assert p.returncode == 2 and b"killed" in p.stderr


@pytest_twisted.inlineCallbacks
def test_command_against_a_running_server(serve):  # type: ignore[no-untyped-def]
    """An ldap:// URL: the served tree is read with ldap3 and validated; errors are found and named."""
    bad = edit(VALID, "GLUE2EndpointHealthState: ok", "GLUE2EndpointHealthState: fine")
    server = serve(snapshot_from_ldif(SKELETON + "\n" + bad))
    p = yield in_thread(bdii, f"{server.url}/o=glue", "--now", NOW_TEXT)
    assert p.returncode == 1, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0].split("\t")[1:4] == [E, "GLUE2EndpointHealthState", "glue2.enum"]
    assert lines[-1].startswith("5 entries checked")
    p = yield in_thread(bdii, server.url, "--now", NOW_TEXT)  # no base: every naming context
    assert "glue2.enum" in p.stdout.decode()
