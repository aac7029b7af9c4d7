"""Tests for tests/slapd_harness.py: a private slapd configured like the legacy BDII.

These tests do not skip: CI installs slapd, ldap-utils and glue-schema.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import ldap3
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slapd_harness  # noqa: E402
from slapd_harness import Slapd, SlapdError, available, slapd_server  # noqa: E402

SMALL_LDIF = """\
dn: o=grid
objectClass: organization
o: grid

dn: mds-vo-name=resource,o=grid
objectClass: MDS
mds-vo-name: resource

# a GLUE 1.3 service, with a folded dn line
dn: GlueServiceUniqueID=svc1.example.org_webdav,mds-vo-name=resource,o=gr
 id
objectClass: GlueTop
objectClass: GlueService
objectClass: GlueKey
objectClass: GlueSchemaVersion
GlueServiceUniqueID: svc1.example.org_webdav
GlueServiceName: svc1 webdav
GlueServiceType: webdav
GlueServiceVersion: 1.0
GlueServiceEndpoint: https://svc1.example.org:443/
GlueServiceStatus: OK
GlueForeignKey: GlueSiteUniqueID=EXAMPLE
GlueSchemaVersionMajor: 1
GlueSchemaVersionMinor: 3

dn: o=glue
objectClass: organization
o: glue

dn: GLUE2GroupID=resource,o=glue
objectClass: GLUE2Group
GLUE2GroupID: resource

dn:: {b64}
objectClass: GLUE2Entity
objectClass: GLUE2Service
GLUE2ServiceID: svc1.example.org_webdav
GLUE2ServiceType: webdav
GLUE2ServiceQualityLevel: production
GLUE2ServiceCapability: data.access.flatfiles
GLUE2ServiceAdminDomainForeignKey: EXAMPLE
""".format(b64=base64.b64encode(
    b"GLUE2ServiceID=svc1.example.org_webdav,GLUE2GroupID=resource,o=glue").decode())

GRID_DNS = {
    "o=grid",
    "mds-vo-name=resource,o=grid",
    "glueserviceuniqueid=svc1.example.org_webdav,mds-vo-name=resource,o=grid",
}
GLUE_SERVICE_DN = "glue2serviceid=svc1.example.org_webdav,glue2groupid=resource,o=glue"
GLUE_DNS = {"o=glue", "glue2groupid=resource,o=glue", GLUE_SERVICE_DN}


def _norm(dn: str) -> str:
    # slapd pretty-prints attribute type names from the schema
    # (mds-vo-name -> Mds-Vo-name); compare case-insensitively
    return dn.lower()


def _connect(server: Slapd, user=None, password=None) -> ldap3.Connection:
    # get_info=NONE: no client-side schema, so filters go to slapd untouched
    srv = ldap3.Server("127.0.0.1", port=server.port, get_info=ldap3.NONE)
    return ldap3.Connection(srv, user=user, password=password, auto_bind=True)


def test_available():
    assert available() is None, available()


@pytest.fixture(scope="module")
def small():
    assert available() is None, available()
    with slapd_server(SMALL_LDIF) as server:
        yield server


def test_start_metadata(small):
    assert small.url == f"ldap://127.0.0.1:{small.port}"
    assert small.entry_counts == {"o=grid": 3, "o=glue": 3, "o=infosys": 0}
    assert small.start_seconds is not None and small.start_seconds < 30
    print(f"slapd start() took {small.start_seconds:.3f}s")
    conf = small.conf_path.read_text()
    assert "sizelimit unlimited" in conf
    assert "index GlueServiceEndpoint eq,sub" in conf
    assert "index GLUE2EndpointInterfaceName eq" in conf
    for suffix in ("o=grid", "o=glue", "o=infosys"):
        assert f'suffix "{suffix}"' in conf
        assert f'rootdn "{suffix}"' in conf


def test_ldap3_search(small):
    conn = _connect(small)
    try:
        assert conn.search("o=grid", "(objectClass=*)", attributes=["*"])
        assert {_norm(e["dn"]) for e in conn.response} == GRID_DNS
        assert conn.search("o=glue", "(objectClass=GLUE2Service)",
                           attributes=["GLUE2ServiceType"])
        (entry,) = conn.response
        assert _norm(entry["dn"]) == GLUE_SERVICE_DN
        assert entry["attributes"]["GLUE2ServiceType"] == ["webdav"]
        # the legacy index lines are in effect: an indexed eq,sub attribute
        assert conn.search("o=grid", "(GlueServiceEndpoint=https://svc1*)")
        assert len(conn.response) == 1
    finally:
        conn.unbind()


def _ldif_dns(text: str) -> set[str]:
    unfolded = text.replace("\n ", "")
    return {_norm(line[4:]) for line in unfolded.splitlines()
            if line.startswith("dn: ")}


def test_ldapsearch_cli(small):
    ldapsearch = shutil.which("ldapsearch")
    assert ldapsearch, "ldapsearch not found (apt-get install ldap-utils)"
    for base, expected in (("o=grid", GRID_DNS), ("o=glue", GLUE_DNS)):
        res = subprocess.run([ldapsearch, "-x", "-LLL", "-H", small.url, "-b", base],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        assert _ldif_dns(res.stdout) == expected
    res = subprocess.run([ldapsearch, "-x", "-LLL", "-H", small.url, "-b", "o=grid",
                          "(GlueServiceType=webdav)", "GlueServiceEndpoint"],
                         capture_output=True, text=True, timeout=30)
    assert "GlueServiceEndpoint: https://svc1.example.org:443/" in res.stdout


def test_anonymous_write_refused_rootdn_write_allowed(small):
    conn = _connect(small)
    try:
        assert not conn.add("mds-vo-name=anon,o=grid", ["MDS"], {"mds-vo-name": "anon"})
        assert conn.result["result"] == 8  # strongerAuthRequired
    finally:
        conn.unbind()
    root = _connect(small, "o=infosys", slapd_harness.ROOTPW)
    try:
        assert root.add("o=infosys", ["organization"], {"o": "infosys"}), root.result
        assert root.delete("o=infosys"), root.result
    finally:
        root.unbind()


def test_schema_invalid_entry_raises_naming_entry(tmp_path):
    bad = SMALL_LDIF + """
dn: GLUE2ServiceID=broken,GLUE2GroupID=resource,o=glue
objectClass: GLUE2Service
GLUE2ServiceID: broken
"""
    server = Slapd(bad, workdir=tmp_path)
    with pytest.raises(SlapdError) as info:
        server.start()
    msg = str(info.value)
    assert "GLUE2ServiceID=broken,GLUE2GroupID=resource,o=glue" in msg
    assert "GLUE2ServiceType" in msg  # slapadd's reason: the missing MUST
    assert server.proc is None and server.dir is None
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone


def test_undefined_attribute_raises_naming_entry(tmp_path):
    bad = SMALL_LDIF + """
dn: mds-vo-name=odd,o=grid
objectClass: MDS
mds-vo-name: odd
NoSuchAttribute: x
"""
    with pytest.raises(SlapdError) as info:
        Slapd(bad, workdir=tmp_path).start()
    assert "mds-vo-name=odd,o=grid" in str(info.value)
    assert "NoSuchAttribute" in str(info.value)


def test_entry_outside_suffixes_raises():
    with pytest.raises(SlapdError, match="o=elsewhere"):
        Slapd("dn: o=elsewhere\nobjectClass: organization\no: elsewhere\n").start()


def test_split_by_last_rdn():
    text = (
        "version: 1\n\n"
        "# comment\n#  folded comment\n  continued\n"
        "dn: GlueSiteUniqueID=X,Mds-Vo-Name=local,O=Gr\n id\nobjectClass: x\n\n"
        "dn:: " + base64.b64encode("cn=ü,o=glue".encode()).decode() + "\no: y\n\n"
        "dn: cn=a\\,o=grid,o=\"infosys\"\nobjectClass: z\n"
    )
    groups = slapd_harness.split_ldif_by_suffix(text)
    assert [r.dn for r in groups["o=grid"]] == ["GlueSiteUniqueID=X,Mds-Vo-Name=local,O=Grid"]
    assert [r.dn for r in groups["o=glue"]] == ["cn=ü,o=glue"]
    assert [r.dn for r in groups["o=infosys"]] == ['cn=a\\,o=grid,o="infosys"']
    assert slapd_harness.last_rdn("x=1, organizationName = Gl\\75e ") == "o=glue"


def test_stop_removes_everything(tmp_path):
    ldif = tmp_path / "data.ldif"
    ldif.write_text(SMALL_LDIF)
    parent = tmp_path / "work"
    server = Slapd(ldif, workdir=parent).start()
    proc, directory = server.proc, server.dir
    assert directory.is_dir() and proc.poll() is None
    server.stop()
    assert proc.poll() is not None
    assert not directory.exists()
    server.stop()  # idempotent


def test_cli(tmp_path):
    ldif = tmp_path / "data.ldif"
    ldif.write_text(SMALL_LDIF)
    harness = Path(slapd_harness.__file__)
    proc = subprocess.Popen([sys.executable, str(harness), "--ldif", str(ldif)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("ldap://127.0.0.1:"), proc.stderr.read()
        port = int(url.rsplit(":", 1)[1])
        conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=port, get_info=ldap3.NONE),
                                auto_bind=True)
        try:
            assert conn.search("o=glue", "(GLUE2GroupID=resource)")
            assert len(conn.response) == 1
        finally:
            conn.unbind()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
