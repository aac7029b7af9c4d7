"""The comparison the project is judged on: OpenLDAP slapd and our server,
loaded with the SAME LDIF, answer a table of queries the same way.

Data: a realistic 3-site grid from ``bench/gridgen.py`` (GLUE 1.3 under
``mds-vo-name=local,o=grid`` and GLUE 2.0 under ``GLUE2GroupID=grid,o=glue``)
plus the resource-level skeleton and hand-written edge cases (escaped DN
characters, a space in a DN value, a DN over 250 characters, non-ASCII
values and DNs, integers 9/10/100/-5, GLUE 2.0 values differing only in case,
multi-valued attributes). slapd (``tests/slapd_harness.py``, configured like
the legacy BDII) is started once for the module; our server serves the
snapshot the real refresh pipeline builds from the same text.

Every query runs through OpenLDAP's own ``ldapsearch`` and through ldap3
(the three whole-tree dumps through ldapsearch only, for speed), against
both servers. slapd is given the generator's entries with each attribute's
values on consecutive lines (see SLAPD_DATA). Compared: the result code, the matched DN, the DNs
(exact strings: both render attribute types in schema spelling) and, per
entry, the attribute names (exactly) and values (as multisets).

Differences that are legitimate are stated where they are handled:
- the order of entries is not compared (slapd returns mdb id order, we
  return DN order; LDAP defines no order);
- operational attributes: with ``+`` slapd also returns structuralObjectClass,
  entryUUID, entryCSN, creatorsName, modifiersName and subschemaSubentry;
  only the names we both provide are compared (createTimestamp,
  modifyTimestamp, entryDN, hasSubordinates), and the values of entryDN and
  hasSubordinates (the timestamps are load times and differ);
- the root DSE: slapd lists its relay suffixes as naming contexts and many
  supported* values; only o=grid and o=glue are compared;
- a size-limited search returns *some* N entries: only the count and the
  code are compared;
- a filter on an attribute type the schema does not know: slapd makes the
  filter item Undefined, we compare it as a case-insensitive string (see
  bdii/core/matching.py), which only shows under NOT.
Q17 (``o=infosys``, the BDII's own status entries) is not in the table: the
status tree is made by our refresh cycle and slapd holds no such entries.
"""

from __future__ import annotations

import base64
import importlib.util
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ldap3
import pytest
import pytest_twisted
from twisted.internet import defer

from slapd_harness import Slapd
from support import in_thread, ldapsearch, snapshot_from_ldif

from bdii.core.packed import Packed
from bdii.core.snapshot import Snapshot

ROOT = Path(__file__).resolve().parent.parent


def _load_gridgen():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gridgen", ROOT / "bench" / "gridgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gridgen = _load_gridgen()
SITES = 3
RECORDS = list(gridgen.generate_records(SITES, 1))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --------------------------------------------------------------------------
# edge cases, at the resource level (the skeleton's other two entries)

EDGE_SE = "edge-se.example.org"
EDGE_CE = "edge-ce.example.org:8443/cream-pbs-"
ESCAPED_KEY = 'a,b +c=d "q" <x>;y'  # every RFC 4514 special character
ESCAPED_RDN = r'GlueServiceDataKey=a\,b \+c\=d \"q\" \<x\>\;y'
LONG_SA = "atlas:" + "ATLASLOCALGROUPDISK-" * 5 + "x"
LONG_VOI = "atlas:" + "production-role-" * 5 + "y"
LONG_SHARE = "edge-long-share-" + "q" * 90
LONG_DN = (f"GlueVOInfoLocalID={LONG_VOI},GlueSALocalID={LONG_SA},GlueSEUniqueID={EDGE_SE},"
           "mds-vo-name=resource,o=grid")
assert len(LONG_DN) > 250
EDGE_STORAGE = f"GLUE2ServiceID={EDGE_SE}/storage,GLUE2GroupID=resource,o=glue"

EDGE = f"""\
dn: mds-vo-name=resource,o=grid
objectClass: MDS
mds-vo-name: resource

dn: GLUE2GroupID=resource,o=glue
objectClass: GLUE2Group
GLUE2GroupID: resource

dn: GlueSiteUniqueID=EDGE-SITE,mds-vo-name=resource,o=grid
objectClass: GlueTop
objectClass: GlueSite
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueSiteUniqueID: EDGE-SITE
GlueSiteName: EDGE-SITE
GlueSiteLocation:: {_b64("Genève, Suisse")}
GlueSiteDescription:: {_b64("Site d'essai – Zürich/Genève")}
GlueSiteOtherInfo: GRID=EGI
GlueSiteOtherInfo: GRID=WLCG
GlueSiteOtherInfo: TIER=2
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: GlueClusterUniqueID=edge cluster.example.org,mds-vo-name=resource,o=grid
objectClass: GlueClusterTop
objectClass: GlueCluster
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueClusterUniqueID: edge cluster.example.org
GlueClusterName: edge cluster
GlueForeignKey: GlueSiteUniqueID=EDGE-SITE
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3
"""

for _name, _running, _rules in (
        ("q9", "9", ["VO:atlas", "VOMS:/atlas/Role=production", "VO:cms"]),
        ("q10", "10", ["VO:ATLAS", "VO:ops"]),
        ("q100", "100", ["VO:cms", "VOMS:/cms/Role=pilot"]),
        ("qneg", "-5", ["VO:ops", "VO:dteam", "VO:atlas"])):
    _ce = EDGE_CE + _name
    EDGE += f"""
dn: GlueCEUniqueID={_ce},mds-vo-name=resource,o=grid
objectClass: GlueCETop
objectClass: GlueCE
objectClass: GlueCEAccessControlBase
objectClass: GlueCEInfo
objectClass: GlueCEState
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueCEUniqueID: {_ce}
GlueCEName: {_name}
GlueCEHostingCluster: edge cluster.example.org
GlueCEInfoHostName: edge-ce.example.org
GlueCEInfoTotalCPUs: {abs(int(_running)) * 3}
GlueCEStateRunningJobs: {_running}
GlueCEStateWaitingJobs: 0
GlueCEStateStatus: {"production" if _name == "q100" else "Production"}
""" + "".join(f"GlueCEAccessControlBaseRule: {r}\n" for r in _rules) + """\
GlueForeignKey: GlueClusterUniqueID=edge cluster.example.org
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3
"""
    if _name == "q9":
        for _vo, _rj in (("atlas", "100"), ("cms", "10")):
            EDGE += f"""
dn: GlueVOViewLocalID={_vo},GlueCEUniqueID={_ce},mds-vo-name=resource,o=grid
objectClass: GlueCETop
objectClass: GlueVOView
objectClass: GlueCEState
objectClass: GlueCEAccessControlBase
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueVOViewLocalID: {_vo}
GlueCEStateRunningJobs: {_rj}
GlueCEAccessControlBaseRule: VO:{_vo}
GlueChunkKey: GlueCEUniqueID={_ce}
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3
"""

EDGE += f"""
dn: GlueSEUniqueID={EDGE_SE},mds-vo-name=resource,o=grid
objectClass: GlueSETop
objectClass: GlueSE
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueSEUniqueID: {EDGE_SE}
GlueSEName: EDGE-SITE:dcache
GlueSEImplementationName: dCache
GlueSESizeTotal: 100
GlueSESizeFree: 10
GlueForeignKey: GlueSiteUniqueID=EDGE-SITE
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: GlueSALocalID=ops\\+dteam,GlueSEUniqueID={EDGE_SE},mds-vo-name=resource,o=grid
objectClass: GlueSATop
objectClass: GlueSA
objectClass: GlueSAAccessControlBase
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueSALocalID: ops+dteam
GlueSAPath: /data/ops
GlueSATotalOnlineSize: 10
GlueSAFreeOnlineSize: 9
GlueSAAccessControlBaseRule: VO:ops
GlueSAAccessControlBaseRule: dteam
GlueChunkKey: GlueSEUniqueID={EDGE_SE}
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: GlueSALocalID={LONG_SA},GlueSEUniqueID={EDGE_SE},mds-vo-name=resource,o=grid
objectClass: GlueSATop
objectClass: GlueSA
objectClass: GlueSAAccessControlBase
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueSALocalID: {LONG_SA}
GlueSAPath: /data/atlas/localgroupdisk
GlueSATotalOnlineSize: 100
GlueSAFreeOnlineSize: -1
GlueSAAccessControlBaseRule: VO:atlas
GlueSAAccessControlBaseRule: VOMS:/atlas/Role=production
GlueChunkKey: GlueSEUniqueID={EDGE_SE}
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: {LONG_DN}
objectClass: GlueSATop
objectClass: GlueVOInfo
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueVOInfoLocalID: {LONG_VOI}
GlueVOInfoPath: /data/atlas/localgroupdisk/prod
GlueVOInfoTag: ATLASLOCALGROUPDISK
GlueVOInfoAccessControlBaseRule: VO:atlas
GlueChunkKey: GlueSALocalID={LONG_SA}
GlueChunkKey: GlueSEUniqueID={EDGE_SE}
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: GlueSEAccessProtocolLocalID=xroot,GlueSEUniqueID={EDGE_SE},mds-vo-name=resource,o=grid
objectClass: GlueSETop
objectClass: GlueSEAccessProtocol
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueSEAccessProtocolLocalID: xroot
GlueSEAccessProtocolType: xroot
GlueSEAccessProtocolEndpoint: root://{EDGE_SE}:1094
GlueChunkKey: GlueSEUniqueID={EDGE_SE}
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: GlueSEControlProtocolLocalID=srm_v2,GlueSEUniqueID={EDGE_SE},mds-vo-name=resource,o=grid
objectClass: GlueSETop
objectClass: GlueSEControlProtocol
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueSEControlProtocolLocalID: srm_v2
GlueSEControlProtocolType: SRM
GlueSEControlProtocolVersion: 2.2.0
GlueSEControlProtocolEndpoint: httpg://{EDGE_SE}:8446/srm/managerv2
GlueChunkKey: GlueSEUniqueID={EDGE_SE}
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: GlueServiceUniqueID=httpg://{EDGE_SE}:8446/srm/managerv2,mds-vo-name=resource,o=grid
objectClass: GlueTop
objectClass: GlueService
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueServiceUniqueID: httpg://{EDGE_SE}:8446/srm/managerv2
GlueServiceName: EDGE-SITE-srm
GlueServiceType: SRM
GlueServiceVersion: 2.2.0
GlueServiceEndpoint: httpg://{EDGE_SE}:8446/srm/managerv2
GlueServiceAccessControlBaseRule: VO:ops
GlueServiceAccessControlBaseRule: VO:atlas
GlueForeignKey: GlueSiteUniqueID=EDGE-SITE
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: GlueServiceUniqueID=edge-bdii.example.org_bdii_top,mds-vo-name=resource,o=grid
objectClass: GlueTop
objectClass: GlueService
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueServiceUniqueID: edge-bdii.example.org_bdii_top
GlueServiceType: bdii_top
GlueServiceVersion: 6.0.0
GlueServiceEndpoint: ldap://edge-bdii.example.org:2170/mds-vo-name=local,o=grid
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: {ESCAPED_RDN},GlueServiceUniqueID=edge-bdii.example.org_bdii_top,mds-vo-name=resource,o=grid
objectClass: GlueTop
objectClass: GlueServiceData
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueServiceDataKey: {ESCAPED_KEY}
GlueServiceDataValue: special characters
GlueChunkKey: GlueServiceUniqueID=edge-bdii.example.org_bdii_top
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: GLUE2ServiceID=edge-fts.example.org_FTS,GLUE2GroupID=resource,o=glue
objectClass: GLUE2Entity
objectClass: GLUE2Service
GLUE2ServiceID: edge-fts.example.org_FTS
GLUE2EntityName:: {_b64("Service de transfert à Zürich")}
GLUE2ServiceType: org.glite.FileTransfer
GLUE2ServiceQualityLevel: production
GLUE2ServiceCapability: data.transfer
GLUE2ServiceCapability: data.management.transfer
GLUE2ServiceAdminDomainForeignKey: EDGE-SITE

dn: GLUE2EndpointID=edge-fts.example.org_FTS_endpoint,GLUE2ServiceID=edge-fts.example.org_FTS,GLUE2GroupID=resource,o=glue
objectClass: GLUE2Entity
objectClass: GLUE2Endpoint
GLUE2EndpointID: edge-fts.example.org_FTS_endpoint
GLUE2EndpointURL: https://edge-fts.example.org:8446
GLUE2EndpointInterfaceName: org.glite.FileTransfer
GLUE2EndpointInterfaceVersion: 3.12.0
GLUE2EndpointQualityLevel: production
GLUE2EndpointHealthState: ok
GLUE2EndpointServingState: production
GLUE2EndpointServiceForeignKey: edge-fts.example.org_FTS

dn: {EDGE_STORAGE}
objectClass: GLUE2Entity
objectClass: GLUE2Service
objectClass: GLUE2StorageService
GLUE2ServiceID: {EDGE_SE}/storage
GLUE2EntityName:: {_b64("Stockage à Genève – dCache")}
GLUE2ServiceType: dcache
GLUE2ServiceQualityLevel: production
GLUE2ServiceAdminDomainForeignKey: EDGE-SITE
"""

# Two endpoints whose interface names differ only in case (GLUE 2.0 is case-exact).
for _epid, _iface, _url in (("webdav", "webdav", f"https://{EDGE_SE}:443/dav"),
                            ("WebDAV", "WebDAV", f"davs://{EDGE_SE}:443/DAV"),
                            ("srm", "SRM", f"httpg://{EDGE_SE}:8446/srm/managerv2"),
                            ("xroot", "xroot", f"root://{EDGE_SE}:1094")):
    EDGE += f"""
dn: GLUE2EndpointID={EDGE_SE}/{_epid},{EDGE_STORAGE}
objectClass: GLUE2Entity
objectClass: GLUE2Endpoint
objectClass: GLUE2StorageEndpoint
GLUE2EndpointID: {EDGE_SE}/{_epid}
GLUE2EndpointURL: {_url}
GLUE2EndpointInterfaceName: {_iface}
GLUE2EndpointCapability: data.access.flatfiles
GLUE2EndpointCapability: data.management.transfer
GLUE2EndpointQualityLevel: production
GLUE2EndpointHealthState: ok
GLUE2EndpointServingState: production
GLUE2EndpointServiceForeignKey: {EDGE_SE}/storage
"""

# Sibling shares whose IDs differ only in case: two distinct entries.
for _sid in ("edge-share-A", "edge-share-a", LONG_SHARE):
    EDGE += f"""
dn: GLUE2ShareID={_sid},{EDGE_STORAGE}
objectClass: GLUE2Entity
objectClass: GLUE2Share
objectClass: GLUE2StorageShare
GLUE2ShareID: {_sid}
GLUE2ShareServiceForeignKey: {EDGE_SE}/storage
GLUE2StorageShareServingState: production
GLUE2StorageShareSharingID: {_sid.lower()[:40]}
GLUE2StorageShareAccessLatency: online
"""

for _pid, _rules in (("1", ["VO:atlas", "VO:ops"]), ("2", ["vo:atlas"]),
                     ("3", ["VO:ATLAS", "VOMS:/atlas/Role=production"])):
    EDGE += f"""
dn: GLUE2PolicyID=edge-policy-{_pid},GLUE2ShareID=edge-share-A,{EDGE_STORAGE}
objectClass: GLUE2Entity
objectClass: GLUE2Policy
objectClass: GLUE2MappingPolicy
GLUE2PolicyID: edge-policy-{_pid}
GLUE2PolicyScheme: org.glite.standard
""" + "".join(f"GLUE2PolicyRule: {r}\n" for r in _rules) + """\
GLUE2MappingPolicyShareForeignKey: edge-share-A
"""

NON_ASCII_DN = "GLUE2LocationID=Zürich-1,GLUE2GroupID=resource,o=glue"
EDGE += f"""
dn:: {_b64(NON_ASCII_DN)}
objectClass: GLUE2Entity
objectClass: GLUE2Location
GLUE2LocationID:: {_b64("Zürich-1")}
GLUE2LocationPlace:: {_b64("Zürich")}
GLUE2LocationCountry: Switzerland
GLUE2LocationLatitude: 47.3769
GLUE2LocationLongitude: -8.5417
"""



def _grouped(records: list) -> list:
    """The same entries with each attribute's values on consecutive lines."""
    out = []
    for dn, attrs in records:
        by_name: dict[str, list[tuple[str, str]]] = {}
        for a, v in attrs:
            by_name.setdefault(a.lower(), []).append((a, v))
        out.append((dn, [pair for pairs in by_name.values() for pair in pairs]))
    return out


# Our server reads the generator's LDIF as it is, where some attributes are
# interleaved (GlueForeignKey, GlueClusterService, GlueForeignKey, ...), as
# real providers write them. slapd gets the same entries with each
# attribute's lines together: the harness loads with `slapadd -q`, which
# does not merge an attribute split over several runs, and slapd would then
# send one attribute type several times in an entry (ldap3 keeps the last
# run only). An LDAP add (what the legacy BDII does) merges them.
DATA = "".join(gridgen.to_ldif(RECORDS)) + "\n" + EDGE
SLAPD_DATA = "".join(gridgen.to_ldif(_grouped(RECORDS))) + "\n" + EDGE


# --------------------------------------------------------------------------
# query parameters, taken from the generated data


def _values(attr: str, objectclass: str) -> list[str]:
    out = []
    for _dn, attrs in RECORDS:
        if any(k.lower() == "objectclass" and v == objectclass for k, v in attrs):
            out += [v for k, v in attrs if k == attr]
    return out


def _first_dn(objectclass: str, pred: Callable[[str, list], bool] = lambda dn, a: True) -> str:
    for dn, attrs in RECORDS:
        if any(k.lower() == "objectclass" and v == objectclass for k, v in attrs) and pred(dn, attrs):
            return dn
    raise AssertionError(f"gridgen made no {objectclass}")


VO = "atlas"
SITE = gridgen.site_names(SITES, 1)[0]
# a CE with an atlas VOView, as DIRAC asks for it
CE_DN = _first_dn("GlueVOView", lambda dn, a: ("GlueCEAccessControlBaseRule", f"VO:{VO}") in a).split(",", 1)[1]
# a storage host with an SRM service and an atlas SA (gfal2, DIRAC, the SRM probe)
_SRM_ENDPOINTS = [v for v in _values("GlueServiceEndpoint", "GlueService") if v.startswith("httpg://")]
SE_HOST = next(h for h in _values("GlueSEUniqueID", "GlueSE") if any(h in e for e in _SRM_ENDPOINTS))
G2_HOST = _values("GLUE2ServiceID", "GLUE2StorageService")[0].split("/")[0]
SHARE_IDS = _values("GLUE2ShareID", "GLUE2Share")
RESOURCE_IDS = _values("GLUE2ResourceID", "GLUE2ExecutionEnvironment")
assert len(SHARE_IDS) >= 300 and RESOURCE_IDS

# DIRAC: hundreds of share IDs, some that do not exist, and one real ID in
# the wrong case (GLUE2ShareID is case-exact: it must not match).
Q8_IDS = SHARE_IDS[:300] + [f"no-such-share-{i}" for i in range(20)] + [SHARE_IDS[-1].upper(), "edge-share-a"]
# DIRAC step 3 sends chunks of 1000 IDs.
Q9_IDS = (RESOURCE_IDS + [f"{EDGE_SE}/missing/{i}" for i in range(1000)])[:1000]

VOMS_OR = (f"(|(GlueCEAccessControlBaseRule=VOMS:/{VO}/*)(GlueCEAccessControlBaseRule=VOMS:/{VO})"
           f"(GlueCEAccessControlBaseRule=VO:{VO}))")
SITE13 = f"mds-vo-name={SITE},mds-vo-name=local,o=grid"
SITE20 = f"GLUE2DomainID={SITE},GLUE2GroupID=grid,o=glue"
RES13 = "mds-vo-name=resource,o=grid"
RES20 = "GLUE2GroupID=resource,o=glue"


def q16(h: str) -> str:
    return (f"(|(&(GlueChunkKey=GlueSEUniqueID={h})(|(GlueSAAccessControlBaseRule=ops)"
            f"(GlueSAAccessControlBaseRule=VO:ops)))(&(GlueChunkKey=GlueSEUniqueID={h})"
            f"(|(GlueVOInfoAccessControlBaseRule=ops)(GlueVOInfoAccessControlBaseRule=VO:ops)))"
            f"(&(GlueServiceUniqueID=*://{h}*)(GlueServiceVersion=2.*)(GlueServiceType=srm*)))")


# --------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class Q:
    id: str
    base: str
    filter: str = "(objectClass=*)"
    attrs: tuple[str, ...] = ()
    scope: str = "sub"  # base | one | sub
    size: int = 0
    types_only: bool = False
    # how to compare: "same" (everything), "count" (code and number of
    # entries), "oper" (operational attributes we both provide), "rootdse"
    check: str = "same"
    # slapd must return at least this many entries, so that no comparison
    # is vacuous (0 where nothing is the point)
    min: int = 1
    # a legitimate difference: our server answers like slapd answers this
    # filter instead (the reason is in the table's comment)
    ours_like: str | None = None
    # ldap3 decodes BER in pure Python: the three ~1000-entry dumps go
    # through ldapsearch only, to keep this file fast (Q21-Q23, a few
    # hundred entries each, run through both clients)
    ldap3: bool = True

    def __str__(self) -> str:
        return self.id


TABLE = [
    # --- what real clients send (QUERIES.md) --------------------------------
    Q("Q1", "o=grid", f"(&(ObjectClass=GlueCE)(GlueCEAccessControlBaseRule=VO*:{VO}))"),
    Q("Q2", "o=grid", f"(&(ObjectClass=GlueSA)(|(GlueSAAccessControlBaseRule=VO*:{VO})"
                      f"(GlueSAAccessControlBaseRule={VO})))"),
    Q("Q3", "o=grid", "(|(&(ObjectClass=GlueSEAccessProtocol)(|(GlueSEAccessProtocolType=gsiftp)"
                      "(GlueSEAccessProtocolType=xroot*)))(&(ObjectClass=GlueSEControlProtocol)"
                      "(|(GlueSEControlProtocolType=SRM*)(GlueSEControlProtocolType=xroot*))))",
      ("GlueChunkKey", "GlueSEAccessProtocolType", "GlueSEControlProtocolType")),
    Q("Q4", "o=grid", "objectClass=GlueSite"),
    Q("Q5", "mds-vo-name=local,o=grid", "(&(objectclass=GlueService)(GlueServiceType=bdii_top))"),
    Q("Q6", "o=glue", "(&(objectClass=GLUE2Endpoint)(GLUE2EndpointInterfaceName=org.glite.FileTransfer))"),
    Q("Q7", "o=glue", f"(&(objectClass=GLUE2Policy)(|(GLUE2PolicyRule=VO:{VO})(GLUE2PolicyRule=vo:{VO})))"),
    Q("Q8-or-322-share-ids", "o=glue",
      "(&(objectClass=GLUE2Share)(|" + "".join(f"(GLUE2ShareID={i})" for i in Q8_IDS) + "))", min=301),
    Q("Q9-or-1000-resource-ids", "o=glue",
      "(&(objectClass=GLUE2ExecutionEnvironment)(|" + "".join(f"(GLUE2ResourceID={i})" for i in Q9_IDS) + "))"),
    Q("Q10", "Mds-Vo-name=local,o=grid", f"(&(GlueCEUniqueID=*){VOMS_OR})"),
    Q("Q11", CE_DN, f"(&(objectClass=GlueVOView){VOMS_OR})"),
    Q("Q11-edge-ce", f"GlueCEUniqueID={EDGE_CE}q9,{RES13}", f"(&(objectClass=GlueVOView){VOMS_OR})"),
    Q("Q12", "Mds-Vo-name=local,o=grid",
      f"(&(GlueSAAccessControlBaseRule=VO:{VO})(GlueChunkKey=GlueSEUniqueID={SE_HOST}))",
      ("GlueSATotalOnlineSize", "GlueSAFreeOnlineSize")),
    Q("Q13", "o=grid",
      f"(|(GlueSEUniqueID=*{SE_HOST}*)(&(GlueServiceType=srm*)(GlueServiceEndpoint=*://{SE_HOST}*)))",
      ("GlueServiceVersion", "GlueServiceEndpoint", "GlueServiceType"), min=2),
    Q("Q14", "o=glue", "(&(objectClass=GLUE2Endpoint)(GLUE2EndpointURL=*)(|(GLUE2EndpointInterfaceName=SRM)"
                       "(GLUE2EndpointInterfaceName=xroot)(GLUE2EndpointInterfaceName=webdav)"
                       "(GLUE2EndpointInterfaceName=gsiftp)(GLUE2EndpointInterfaceName=http)"
                       "(GLUE2EndpointInterfaceName=https)))",
      ("GLUE2EndpointURL", "GLUE2EndpointServiceForeignKey"), min=10),
    Q("Q15", "o=glue", f"(&(objectClass=GLUE2Service)(GLUE2ServiceID=*{G2_HOST}*))",
      ("GLUE2ServiceAdminDomainForeignKey",)),
    Q("Q16", "o=grid", q16(SE_HOST), ("GlueServiceEndpoint", "GlueSAPath", "GlueVOInfoPath")),
    Q("Q16-edge-se", "o=grid", q16(EDGE_SE), ("GlueServiceEndpoint", "GlueSAPath", "GlueVOInfoPath"), min=2),
    # Q17 is not compared: o=infosys holds our refresh cycle's status entries,
    # which slapd does not have (tested in test_refresh.py / test_ldap_server.py).
    Q("Q18-mixed-case-base", "Mds-Vo-Name=local,O=grid", f"(GlueServiceEndpoint=*{SE_HOST}*)", ("1.1",)),
    Q("Q19", SITE20, f"(&(objectClass=GLUE2Domain)(GLUE2DomainID={SITE}))"),
    Q("Q20-dn-attributes", "o=glue", "(GLUE2GroupID:dn:=resource)", min=1000, ldap3=False),
    Q("Q21", SITE13, "(|(objectClass=GlueTop)(objectClass=MDS)(objectClass=GlueClusterTop)(objectClass=GlueCETop)"
                     "(objectClass=GlueGeneralTop)(objectClass=GlueSETop)(objectClass=GlueSATop))", min=100),
    Q("Q22", SITE20, "(!(|(objectClass=GLUE2ApplicationEnvironment)(objectClass=GLUE2Activity)))", min=100),
    Q("Q23", "o=grid", "(|(objectClass=gluevoview)(|(objectClass=gluecesebind)(|(objectClass=gluece)"
                       "(|(objectClass=gluecluster)(objectClass=gluesubcluster)))))", min=100),
    Q("Q24-root-dse", "", scope="base"),
    # --- whole trees: the data itself -------------------------------------
    Q("dump-o=grid", "o=grid", min=900, ldap3=False),
    Q("dump-o=glue", "o=glue", min=1100, ldap3=False),
    # --- scopes -------------------------------------------------------------
    Q("scope-base", SITE13, scope="base"),
    Q("scope-one", SITE13, scope="one", min=10),
    Q("scope-sub", SITE13, attrs=("1.1",), min=100),
    Q("scope-one-suffix", "o=grid", scope="one", min=2),
    Q("scope-base-filter-false", SITE13, "(objectClass=GlueCE)", scope="base", min=0),
    # --- presence and substrings -------------------------------------------
    Q("present", "o=grid", "(GlueSEAccessProtocolType=*)", ("GlueSEAccessProtocolType",)),
    Q("present-glue2-non-ascii", "o=glue", "(GLUE2LocationPlace=*)"),
    Q("substr-initial", "o=grid", "(GlueServiceEndpoint=httpg://*)", ("GlueServiceEndpoint",)),
    Q("substr-final", "o=grid", "(GlueServiceEndpoint=*:8446/srm/managerv2)", ("GlueServiceEndpoint",)),
    Q("substr-any", "o=grid", "(GlueServiceEndpoint=*edge*)", ("GlueServiceEndpoint",)),
    Q("substr-any-any", "o=grid", "(GlueCEUniqueID=*ce*8443*pbs*)", ("1.1",)),
    Q("substr-initial-final", "o=glue", "(GLUE2EndpointURL=https://*:443/dav)", ("GLUE2EndpointURL",)),
    Q("substr-initial-any-final", "o=grid", "(GlueServiceEndpoint=httpg://*se*8446*managerv2)",
      ("GlueServiceEndpoint",)),
    Q("substr-initial-final-overlap", RES13, "(GlueCEName=q1*10)", ("GlueCEName",), min=0),
    Q("substr-glue13-case-insensitive", "o=grid", "(GlueCEUniqueID=EDGE-CE*PBS-Q1*)", ("GlueCEUniqueID",)),
    Q("substr-glue2-case-exact", "o=glue", "(GLUE2EndpointURL=*DAV)", ("GLUE2EndpointURL",)),
    Q("substr-non-ascii", "o=glue", "(GLUE2LocationPlace=Z*rich)", ("GLUE2LocationPlace",)),
    Q("substr-space-in-value", "o=grid", "(GlueClusterUniqueID=edge cl*)", ("GlueClusterUniqueID",)),
    # --- ordering: integers compare as integers ------------------------------
    Q("int-ge-10", RES13, "(GlueCEStateRunningJobs>=10)", ("GlueCEStateRunningJobs",), min=4),
    Q("int-le-9", RES13, "(GlueCEStateRunningJobs<=9)", ("GlueCEStateRunningJobs",), min=2),
    Q("int-le-negative", "o=grid", "(GlueCEStateRunningJobs<=-1)", ("GlueCEStateRunningJobs",)),
    Q("int-range", "o=grid", "(&(GlueCEStateRunningJobs>=10)(GlueCEStateRunningJobs<=100))", ("1.1",), min=10),
    # RFC 4517 INTEGER has no leading zeros: for slapd "010" is invalid (Undefined)
    Q("int-eq-leading-zero", RES13, "(GlueCEStateRunningJobs=010)", ("1.1",), min=0),
    Q("int-ge-grid", "o=grid", "(GlueCEStateRunningJobs>=1000)", ("GlueCEStateRunningJobs",)),
    Q("int-sa-free-le-0", "o=grid", "(GlueSAFreeOnlineSize<=0)", ("GlueSAFreeOnlineSize",)),
    # --- case: GLUE 1.3 insensitive, GLUE 2.0 exact, names insensitive --------
    Q("glue13-value-case", "o=grid",
      f"(&(objectClass=GlueCE)(GlueCEAccessControlBaseRule=vo:{VO.upper()}))", ("1.1",)),
    Q("glue13-status-case", RES13, "(GlueCEStateStatus=PRODUCTION)", ("GlueCEStateStatus",), min=4),
    Q("glue13-name-and-value-case", "o=grid", f"(GLUECEUNIQUEID={(EDGE_CE + 'q9').upper()})", ("glueceuniqueid",)),
    Q("glue2-value-case-WebDAV", "o=glue", "(GLUE2EndpointInterfaceName=WebDAV)", ("GLUE2EndpointInterfaceName",)),
    Q("glue2-value-case-webdav", "o=glue", "(GLUE2EndpointInterfaceName=webdav)",
      ("GLUE2EndpointInterfaceName",), min=2),
    Q("glue2-value-case-none", "o=glue", "(GLUE2EndpointInterfaceName=WEBDAV)", min=0),
    Q("glue2-id-case", "o=glue", "(GLUE2ShareID=edge-share-a)", ("GLUE2ShareID",)),
    Q("glue2-policy-case", "o=glue", "(GLUE2PolicyRule=VO:ATLAS)", ("GLUE2PolicyRule",)),
    Q("glue2-attr-name-case", "o=glue", "(glue2endpointinterfacename=WebDAV)", ("glue2endpointurl",)),
    Q("objectclass-odd-case", "o=grid", "(OBJECTCLASS=gLuEcE)", ("1.1",)),
    Q("objectclass-glue2-lower", "o=glue", "(objectclass=glue2endpoint)", ("1.1",), min=10),
    # --- boolean nesting and Undefined ------------------------------------
    Q("not", RES13, f"(&(objectClass=GlueCE)(!(GlueCEAccessControlBaseRule=VO:{VO})))", ("1.1",)),
    Q("not-and-or-nested", "o=grid",
      f"(|(&(objectClass=GlueCE)(!(|(GlueCEStateRunningJobs>=100)(GlueCEAccessControlBaseRule=VO:{VO}))))"
      "(&(objectClass=GlueSE)(!(GlueSEImplementationName=dCache))))", ("1.1",)),
    Q("not-glue2", "o=glue", "(!(objectClass=GLUE2Entity))", ("1.1",), min=3),
    Q("not-missing-attribute", RES13, "(&(objectClass=GlueTop)(!(GlueServiceType=*)))", ("1.1",)),
    Q("approx-glue13", "o=grid", "(GlueSiteName~=edge-site)", ("GlueSiteName",)),
    Q("approx-glue2", "o=glue", "(GLUE2EndpointInterfaceName~=webdav)", ("GLUE2EndpointInterfaceName",), min=2),
    Q("extensible-dn-glue13", "o=grid", f"(GlueSEUniqueID:dn:={EDGE_SE.upper()})", ("1.1",), min=5),
    Q("extensible-dn-site", "o=glue", f"(GLUE2DomainID:dn:={SITE})", ("1.1",), min=100),
    Q("extensible-caseIgnoreMatch", "o=glue", "(GLUE2EndpointInterfaceName:caseIgnoreMatch:=WEBDAV)",
      ("GLUE2EndpointInterfaceName",), min=2),
    Q("extensible-dn-caseIgnoreMatch", "o=glue", "(GLUE2ShareID:dn:caseIgnoreMatch:=EDGE-SHARE-A)", ("1.1",), min=5),
    Q("invalid-integer-assertion", "o=grid", "(GlueCEStateRunningJobs>=abc)", min=0),
    Q("not-invalid-integer-assertion", RES13, "(!(GlueCEStateRunningJobs>=abc))", ("1.1",), min=0),
    Q("no-ordering-rule", "o=glue", "(GLUE2EndpointURL>=a)", min=0),
    Q("not-no-ordering-rule", "o=glue", "(!(GLUE2EndpointURL>=a))", ("1.1",), min=0),
    Q("no-substr-rule", "o=grid", "(GlueCEStateRunningJobs=1*)", min=0),
    Q("unknown-attribute", "o=grid", "(fooBarUnknown=x)", min=0),
    Q("unknown-attribute-present", "o=grid", "(fooBarUnknown=*)", min=0),
    # slapd: an unknown attribute type makes the item Undefined, and NOT of
    # Undefined is Undefined: nothing. We compare unknown attributes as
    # case-insensitive strings (bdii/core/matching.py): the item is False for
    # every entry (none has the attribute), so NOT is True for all of them.
    Q("not-unknown-attribute", RES13, "(!(fooBarUnknown=x))", ("1.1",), min=0, ours_like="(objectClass=*)"),
    # --- attribute selection ------------------------------------------------
    Q("attrs-1.1", RES13, attrs=("1.1",), min=10),
    Q("attrs-star", RES20, attrs=("*",), min=10),
    Q("attrs-odd-case", "o=grid", "(objectClass=GlueCE)",
      ("glueceuniqueid", "GLUECESTATERUNNINGJOBS", "OBJECTCLASS")),
    Q("attrs-glue2-odd-case-and-alias", "o=glue", "(objectClass=GLUE2Group)", ("glue2groupname", "OBJECTCLASS")),
    Q("attrs-unknown-name", RES13, "(objectClass=GlueCE)", ("fooBarUnknown", "GlueCEName")),
    Q("attrs-types-only", RES20, "(objectClass=GLUE2Endpoint)", types_only=True),
    Q("attrs-plus", RES13, attrs=("+",), check="oper", min=10),
    Q("attrs-star-plus", RES20, "(objectClass=GLUE2Share)", ("*", "+"), check="oper"),
    Q("attrs-named-operational", RES13, attrs=("entryDN", "hasSubordinates", "modifyTimestamp"), check="oper"),
    # --- DNs: escapes, spaces, length, non-ASCII, case ---------------------
    Q("dn-escaped-base", f"{ESCAPED_RDN},GlueServiceUniqueID=edge-bdii.example.org_bdii_top,{RES13}", scope="base"),
    Q("dn-escaped-filter", "o=grid", f"(GlueServiceDataKey={ESCAPED_KEY})", ("GlueServiceDataKey",)),
    Q("dn-escaped-plus", "o=grid", "(GlueSALocalID=ops+dteam)"),
    Q("dn-space-base", f"GlueClusterUniqueID=edge cluster.example.org,{RES13}", scope="base"),
    Q("dn-long-base", LONG_DN, scope="base"),
    Q("dn-long-subtree", f"GlueSALocalID={LONG_SA},GlueSEUniqueID={EDGE_SE},{RES13}"),
    Q("dn-non-ascii-base", NON_ASCII_DN, scope="base"),
    Q("dn-glue2-case-base", f"GLUE2ShareID=edge-share-a,{EDGE_STORAGE}", scope="base"),
    # --- limits and errors ------------------------------------------------
    Q("size-limit-3", "o=grid", attrs=("1.1",), size=3, check="count", min=3),
    Q("missing-base", f"GlueSEUniqueID=nowhere.example.org,{SITE13}", min=0),
    Q("missing-base-glue2-case", f"GLUE2ShareID=EDGE-SHARE-A,{EDGE_STORAGE}", min=0),
    Q("missing-base-no-suffix", "o=nowhere", min=0),
    Q("root-dse-plus", "", attrs=("+",), scope="base", check="rootdse"),
]
assert len({q.id for q in TABLE}) == len(TABLE)


# --------------------------------------------------------------------------
# running and normalising answers


@dataclass
class Answer:
    code: int
    matched: str
    entries: list[tuple[str, dict[str, list[str]]]]

    def by_dn(self) -> dict[str, dict[str, list[str]]]:
        return {dn: {a: sorted(v) for a, v in attrs.items()} for dn, attrs in self.entries}


def _ldif_value(rest: str) -> str:
    if rest.startswith(":"):
        return base64.b64decode(rest[1:].strip()).decode("utf-8", "surrogateescape")
    return rest[1:] if rest.startswith(" ") else rest


def run_ldapsearch(url: str, q: Q, flt: str) -> Answer:
    args = ["-b", q.base, "-s", q.scope]
    if q.size:
        args += ["-z", str(q.size)]
    if q.types_only:
        args.append("-A")
    proc = ldapsearch(url, *args, flt, *q.attrs)
    entries = []
    for block in proc.stdout.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith("#")]
        if not lines:
            continue
        name, _, rest = lines[0].partition(":")
        assert name == "dn", lines
        attrs: dict[str, list[str]] = {}
        for ln in lines[1:]:
            a, sep, rest2 = ln.partition(":")
            # ldapsearch -A prints a bare attribute name
            attrs.setdefault(a, []).extend([_ldif_value(rest2)] if sep else [])
        entries.append((_ldif_value(rest), attrs))
    m = re.search(r"^Matched DN: (.*)$", proc.stderr, re.M)
    return Answer(proc.returncode, m.group(1) if m else "", entries)


SCOPES = {"base": ldap3.BASE, "one": ldap3.LEVEL, "sub": ldap3.SUBTREE}


def run_ldap3(url: str, q: Q, flt: str) -> Answer:
    conn = ldap3.Connection(ldap3.Server(url, get_info=ldap3.NONE), auto_bind=True,
                            raise_exceptions=False, read_only=True)
    try:
        conn.search(q.base, flt if flt.startswith("(") else f"({flt})", search_scope=SCOPES[q.scope],
                    attributes=list(q.attrs) or ldap3.ALL_ATTRIBUTES, size_limit=q.size,
                    types_only=q.types_only)
        # ldap3 lists every requested attribute, present or not: drop the
        # empty ones (with typesOnly every value list is empty)
        entries = [(r["dn"], {a: [v.decode("utf-8", "surrogateescape") for v in vs or ()]
                              for a, vs in r["raw_attributes"].items() if vs or q.types_only})
                   for r in conn.response or [] if r["type"] == "searchResEntry"]
        return Answer(conn.result["result"], conn.result["dn"], entries)
    finally:
        conn.unbind()


CLIENTS = {"ldapsearch": run_ldapsearch, "ldap3": run_ldap3}

# Operational attributes slapd keeps for itself (we have no UUIDs, CSNs or
# modifiers; we publish no subschema).
SLAPD_ONLY = {"structuralObjectClass", "entryUUID", "entryCSN", "creatorsName", "modifiersName",
              "subschemaSubentry"}
TIMESTAMPS = {"createTimestamp", "modifyTimestamp"}
GTIME = re.compile(r"\d{14}Z\Z")


def _mask_operational(answer: Answer, server: str) -> Answer:
    """Keep the operational attributes both servers have; hide load times."""
    entries = []
    for dn, attrs in answer.entries:
        kept = {}
        for name, values in attrs.items():
            if name in SLAPD_ONLY:
                continue
            if name in TIMESTAMPS:
                assert all(GTIME.match(v) for v in values), (server, dn, name, values)
                values = ["<load time>"] * len(values)
            kept[name] = values
        entries.append((dn, kept))
    return Answer(answer.code, answer.matched, entries)


def _diff(slapd: Answer, ours: Answer) -> str:
    a, b = slapd.by_dn(), ours.by_dn()
    lines = [f"code {slapd.code} / {ours.code}, matched {slapd.matched!r} / {ours.matched!r}, "
             f"{len(slapd.entries)} / {len(ours.entries)} entries"]
    lines += [f"  only slapd: {dn}" for dn in sorted(set(a) - set(b))[:5]]
    lines += [f"  only ours:  {dn}" for dn in sorted(set(b) - set(a))[:5]]
    for dn in sorted(set(a) & set(b)):
        if a[dn] != b[dn]:
            names = sorted(set(a[dn]) | set(b[dn]))
            lines.append(f"  {dn}:")
            lines += [f"    {n}: slapd {a[dn].get(n)} / ours {b[dn].get(n)}"
                      for n in names if a[dn].get(n) != b[dn].get(n)][:8]
            break
    return "\n".join(lines)


def compare(q: Q, client: str, slapd: Answer, ours: Answer) -> None:
    where = f"{q.id} via {client}"
    assert len(slapd.entries) >= q.min, f"{where}: slapd returned {len(slapd.entries)} entries, the table expects " \
                                        f">= {q.min}: the data no longer exercises this query"
    if q.check == "count":
        assert (ours.code, len(ours.entries)) == (slapd.code, len(slapd.entries)), f"{where}: {_diff(slapd, ours)}"
        return
    if q.check == "rootdse":
        [(_dn, s_attrs)] = slapd.entries
        [(_dn, o_attrs)] = ours.entries
        s_ctx, o_ctx = set(s_attrs["namingContexts"]), set(o_attrs["namingContexts"])
        # slapd also lists its relay suffixes (GLUE2GroupID=services,...) and
        # o=infosys; we list o=infosys (our status tree) and nothing slapd does not.
        assert {"o=grid", "o=glue"} <= s_ctx & o_ctx, where
        assert o_ctx <= s_ctx, where
        assert ours.code == slapd.code == 0, where
        return
    if q.check == "oper":
        slapd, ours = _mask_operational(slapd, "slapd"), _mask_operational(ours, "ours")
    assert len(ours.entries) == len(ours.by_dn()), f"{where}: duplicate DNs in our answer"
    # compared outside the assert: pytest's own diff of two big dicts is slow and unreadable
    same = (ours.code, ours.matched, ours.by_dn()) == (slapd.code, slapd.matched, slapd.by_dn())
    assert same, f"{where}: {_diff(slapd, ours)}"


# --------------------------------------------------------------------------
# fixtures and the test


@pytest.fixture(scope="module")
def loaded():  # type: ignore[no-untyped-def]
    """One slapd for the whole table, and our snapshot, built while slapadd runs."""
    server = Slapd(SLAPD_DATA)
    with ThreadPoolExecutor(1) as pool:
        started = pool.submit(server.start)
        try:
            snap = snapshot_from_ldif(DATA)
        finally:
            started.result()
    try:
        yield server, snap
    finally:
        server.stop()


@pytest.fixture(scope="module")
def slapd(loaded):  # type: ignore[no-untyped-def]
    return loaded[0]


@pytest.fixture(scope="module")
def snapshot(loaded):  # type: ignore[no-untyped-def]
    return loaded[1]


@pytest.fixture(scope="module")
def packed_snapshot(snapshot):  # type: ignore[no-untyped-def]
    """The same entries as the serving processes read them: packed
    (bdii.core.packed), values decoded from the wire form on demand."""
    copy = Snapshot.build({e.dn: e for e in snapshot.entries}, {}, now=0)
    copy.packed = Packed.build(copy.entries)[0]
    return copy


@pytest.fixture(params=["objects", "packed"])
def ours(request, serve, snapshot, packed_snapshot):  # type: ignore[no-untyped-def]
    return serve(packed_snapshot if request.param == "packed" else snapshot)


def test_same_entries_loaded(slapd, snapshot):  # type: ignore[no-untyped-def]
    """Every entry loaded into slapd (none rejected) is in our snapshot, and vice versa."""
    counts = slapd.entry_counts
    ours = {s: sum(1 for e in snapshot.entries if str(e.dn).lower().endswith(s)) for s in ("o=grid", "o=glue")}
    assert ours == {"o=grid": counts["o=grid"], "o=glue": counts["o=glue"]}


@pytest.mark.parametrize("q", TABLE, ids=str)
@pytest_twisted.inlineCallbacks
def test_same_answer(q, slapd, ours):  # type: ignore[no-untyped-def]
    """One row of the table, through ldapsearch and ldap3, against both servers."""
    clients = [c for c in sorted(CLIENTS) if c == "ldapsearch" or q.ldap3]
    calls = [in_thread(CLIENTS[c], url, q, q.filter) for c in clients for url in (slapd.url, ours.url)]
    answers = yield defer.gatherResults(calls, consumeErrors=True)
    for n, client in enumerate(clients):
        slapd_answer, our_answer = answers[2 * n], answers[2 * n + 1]
        if q.ours_like is not None:
            # A documented difference (see the table): slapd's own answer is
            # empty (Undefined), ours equals slapd's answer to `ours_like`.
            assert slapd_answer.code == 0 and slapd_answer.entries == [], q.id
            slapd_answer = yield in_thread(CLIENTS[client], slapd.url, q, q.ours_like)
            assert slapd_answer.entries, q.id
        compare(q, client, slapd_answer, our_answer)
