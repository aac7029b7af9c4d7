"""The demo information provider (`python -m bdii.providers.demo`).

The provider runs as a real subprocess, exactly as the BDII runs any
provider; its LDIF is parsed with the project's reader, checked against the
GLUE schema renderings in glue/*.json, and loaded into a private OpenLDAP
slapd (tests/slapd_harness.py) both with slapadd and with ldapadd, which
checks value syntaxes as the legacy bdii-update did.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bdii.core.ldif import EntryRecord, parse_ldif  # noqa: E402
from slapd_harness import ROOTPW, slapd_server  # noqa: E402

SUFFIX13 = "mds-vo-name=resource,o=grid"
SUFFIX20 = "GLUE2GroupID=resource,o=glue"
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
DESCRIPTION = "Démo site, Zürich"
ESCAPED_KEY = "bdii_config,BDII_BREATHE_TIME"
NOW = "2024-05-01T12:34:56Z"
INTEGER_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.27"
BOOLEAN_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.7"
IA5_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.26"
# setuptools' package-dir of pyproject.toml: import name -> directory
PACKAGE_DIRS = {"bdii.glue": "glue", "bdii.providers": "providers"}


# --------------------------------------------------------------------------
# running the provider


def _demo_origin(pythonpath: Path) -> str | None:
    code = ("import importlib.util as u; s = u.find_spec('bdii.providers.demo'); "
            "print(s.origin if s else '')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(pythonpath)}, timeout=60)
    return res.stdout.strip() or None


@pytest.fixture(scope="module")
def import_root(tmp_path_factory) -> Path:
    """A PYTHONPATH entry that imports `bdii.providers` from this working tree.

    The source tree keeps providers/ and glue/ at the top (pyproject maps them
    to bdii.providers and bdii.glue); unless the tree is installed in editable
    mode, build a directory of symlinks that mirrors that mapping.
    """
    want = (REPO / "providers" / "demo.py").resolve()
    origin = _demo_origin(REPO)
    if origin and Path(origin).resolve() == want:
        return REPO
    root = tmp_path_factory.mktemp("import-root")
    pkg = root / "bdii"
    pkg.mkdir()
    for child in (REPO / "bdii").iterdir():
        if child.name != "__pycache__":
            (pkg / child.name).symlink_to(child)
    for name, directory in PACKAGE_DIRS.items():
        link = pkg / name.split(".", 1)[1]
        if not link.exists():
            link.symlink_to(REPO / directory)
    origin = _demo_origin(root)
    assert origin and Path(origin).resolve() == want, origin
    return root


def run_demo(import_root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bdii.providers.demo", *args],
        capture_output=True, cwd=import_root,
        env={**os.environ, "PYTHONPATH": str(import_root)}, timeout=120)


@pytest.fixture(scope="module")
def output(import_root) -> bytes:
    res = run_demo(import_root)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert res.stderr == b""
    return res.stdout


@pytest.fixture(scope="module")
def records(output) -> list[EntryRecord]:
    result = parse_ldif(output, "demo")
    assert not result.problems, [str(p) for p in result.problems]
    assert all(isinstance(r, EntryRecord) for r in result.records)
    return list(result.records)


def values(record: EntryRecord, attr: str) -> list[str]:
    return [v for a, v in record.attrs if a.lower() == attr.lower()]


def classes(record: EntryRecord) -> set[str]:
    return {v.lower() for v in values(record, "objectClass")}


def of_class(records, name: str) -> list[EntryRecord]:
    return [r for r in records if name.lower() in classes(r)]


# --------------------------------------------------------------------------
# the LDIF itself


def test_provider_exits_zero_and_prints_valid_ldif(output, records):
    """The provider exits 0 and prints LDIF that parses without problems, folded at 76."""
    text = output.decode("ascii")  # anything else must have gone base64
    assert all(len(line) <= 76 for line in text.split("\n"))
    assert len(records) == 88
    dns = [r.dn.lower() for r in records]
    assert len(set(dns)) == len(dns), "duplicate DNs"


def test_entries_sit_below_the_resource_suffixes(records):
    """Every DN is strictly below mds-vo-name=resource,o=grid or GLUE2GroupID=resource,o=glue."""
    n13 = n20 = 0
    for r in records:
        if r.dn.endswith("," + SUFFIX13):
            n13 += 1
        elif r.dn.endswith("," + SUFFIX20):
            n20 += 1
        else:
            pytest.fail(f"entry outside the resource suffixes: {r.dn}")
    assert (n13, n20) == (36, 52)


def test_demo_site_content(records):
    """The demo site has the expected GLUE 1.3 and GLUE 2.0 objects for 2 queues and 5 VOs."""
    counts = Counter(c for r in records for c in classes(r))
    expected = {
        "gluesite": 1, "glueservice": 1, "glueservicedata": 3, "gluecluster": 1,
        "gluesubcluster": 1, "gluece": 2, "gluevoview": 10, "gluecesebindgroup": 2,
        "gluecesebind": 2, "gluese": 1, "glueseaccessprotocol": 2, "gluesa": 5,
        "gluevoinfo": 5, "glue2service": 3, "glue2computingservice": 1,
        "glue2storageservice": 1, "glue2endpoint": 4, "glue2computingendpoint": 1,
        "glue2storageendpoint": 2, "glue2accesspolicy": 4, "glue2computingshare": 10,
        "glue2mappingpolicy": 15, "glue2computingmanager": 1,
        "glue2executionenvironment": 1, "glue2benchmark": 1, "glue2storageshare": 5,
        "glue2storagesharecapacity": 5, "glue2storageservicecapacity": 1,
        "glue2storageaccessprotocol": 2,
    }
    assert {k: counts[k] for k in expected} == expected
    vos = ["atlas", "cms", "lhcb", "ops", "dteam"]
    for ce in of_class(records, "GlueCE"):
        assert values(ce, "GlueCEAccessControlBaseRule") == [f"VO:{v}" for v in vos]
    views = Counter(v for r in of_class(records, "GlueVOView")
                    for v in values(r, "GlueCEAccessControlBaseRule"))
    assert views == {f"VO:{v}": 2 for v in vos}
    sas = sorted(v for r in of_class(records, "GlueSA")
                 for v in values(r, "GlueSAAccessControlBaseRule"))
    assert sas == sorted(f"VO:{v}" for v in vos)
    (service,) = of_class(records, "GlueService")
    assert values(service, "GlueServiceType") == ["bdii_site"]
    for share in of_class(records, "GLUE2ComputingShare"):
        (policy,) = [r for r in of_class(records, "GLUE2MappingPolicy")
                     if r.dn.endswith("," + share.dn)]
        assert values(policy, "GLUE2MappingPolicyShareForeignKey") == values(share, "GLUE2ShareID")
        assert values(policy, "GLUE2PolicyRule")[0].startswith("VO:")
    # the production DN nesting
    for r in of_class(records, "GLUE2Policy"):
        assert re.match(r"GLUE2PolicyID=[^,]+,(GLUE2EndpointID|GLUE2ShareID)=[^,]+,"
                        r"GLUE2ServiceID=[^,]+," + re.escape(SUFFIX20) + r"\Z", r.dn), r.dn
    for r in of_class(records, "GLUE2Endpoint"):
        assert re.match(r"GLUE2EndpointID=[^,]+,GLUE2ServiceID=[^,]+,"
                        + re.escape(SUFFIX20) + r"\Z", r.dn), r.dn


def _load_schema() -> tuple[dict, dict]:
    attrs, ocs = {}, {}
    for name in ("core.json", "glue13.json", "glue20.json"):
        data = json.loads((REPO / "glue" / name).read_text(encoding="utf-8"))
        for a in data["attributes"]:
            for n in a.get("names") or []:
                attrs[n.lower()] = a
        for oc in data["objectclasses"]:
            for n in oc.get("names") or []:
                ocs[n.lower()] = oc
    for a in list(attrs.values()):  # syntax inherited from the SUP attribute
        sup = a.get("sup")
        while not a.get("syntax") and sup and sup.lower() in attrs:
            a = {**a, "syntax": attrs[sup.lower()].get("syntax"),
                 "sup": attrs[sup.lower()].get("sup")}
            sup = a["sup"]
        for n in a.get("names") or []:
            attrs[n.lower()] = a
    return attrs, ocs


def test_entries_follow_the_glue_schema(records):
    """Each entry has its MUST attributes, only allowed attributes and valid syntaxes."""
    attrs, ocs = _load_schema()
    problems = []
    for r in records:
        must, may, todo = set(), set(), list(classes(r))
        seen = set()
        while todo:
            name = todo.pop()
            if name in seen or name == "top":
                continue
            seen.add(name)
            oc = ocs.get(name)
            if oc is None:
                problems.append(f"{r.dn}: unknown object class {name}")
                continue
            must |= {m.lower() for m in oc.get("must") or []}
            may |= {m.lower() for m in oc.get("may") or []}
            todo += [s.lower() for s in oc.get("sup") or []]
        present = Counter(a.lower() for a, _ in r.attrs)
        for m in sorted(must - set(present)):
            problems.append(f"{r.dn}: MUST attribute {m} missing")
        for a, n in present.items():
            if a == "objectclass":
                continue
            if a not in must | may:
                problems.append(f"{r.dn}: attribute {a} not allowed")
            at = attrs.get(a)
            if at is None:
                problems.append(f"{r.dn}: unknown attribute {a}")
                continue
            if at.get("single_value") and n > 1:
                problems.append(f"{r.dn}: single-valued {a} has {n} values")
            for v in values(r, a):
                syntax = at.get("syntax") or ""
                if syntax.startswith(INTEGER_SYNTAX) and not re.fullmatch(r"-?(0|[1-9][0-9]*)", v):
                    problems.append(f"{r.dn}: {a}: not an integer: {v!r}")
                if syntax.startswith(BOOLEAN_SYNTAX) and v not in ("TRUE", "FALSE"):
                    problems.append(f"{r.dn}: {a}: not a boolean: {v!r}")
                if syntax.startswith(IA5_SYNTAX) and not v.isascii():
                    problems.append(f"{r.dn}: {a}: not IA5 (ASCII): {v!r}")
        # the naming attribute's value is in the entry, as LDAP requires
        rdn_attr, _, rdn_value = r.dn.split(",", 1)[0].partition("=")
        if "\\" not in rdn_value and rdn_value not in values(r, rdn_attr):
            problems.append(f"{r.dn}: RDN value not among the {rdn_attr} values")
    assert not problems, "\n".join(problems)


def test_times_and_dynamic_numbers_follow_the_clock(import_root):
    """Creation times are the given UTC time, and job/space numbers change with the minute only."""
    first = run_demo(import_root, "--now", NOW)
    again = run_demo(import_root, "--now", "2024-05-01T12:34:01Z")
    later = run_demo(import_root, "--now", "2024-05-01T12:35:56Z")
    for res in (first, again, later):
        assert res.returncode == 0, res.stderr
    recs = parse_ldif(first.stdout, "first").records
    times = {v for r in recs for v in values(r, "GLUE2EntityCreationTime")}
    assert times == {NOW}
    strip = re.compile(rb"^GLUE2EntityCreationTime: .*\n", re.M)
    assert strip.sub(b"", first.stdout) == strip.sub(b"", again.stdout)
    later_recs = parse_ldif(later.stdout, "later").records
    assert [r.dn for r in recs] == [r.dn for r in later_recs]
    changed = {a for r1, r2 in zip(recs, later_recs)
               for (a, v1), (_, v2) in zip(r1.attrs, r2.attrs) if v1 != v2}
    assert {"GlueCEStateRunningJobs", "GLUE2ComputingShareRunningJobs",
            "GLUE2StorageShareCapacityFreeSize"} <= changed


def test_default_time_is_now_in_utc(output, records):
    """Without --now, GLUE2EntityCreationTime is the current UTC time."""
    (stamp,) = {v for r in records for v in values(r, "GLUE2EntityCreationTime")}
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - when) < timedelta(minutes=5)


def test_bad_config_is_one_line_naming_file_and_key(import_root, tmp_path):
    """A bad configuration value gives exit 1 and one stderr line naming the file and key."""
    conf = (REPO / "providers" / "demo.conf").read_text(encoding="utf-8")
    bad = tmp_path / "bad.conf"
    bad.write_text(conf.replace("slots = 960", "slots = many"), encoding="utf-8")
    res = run_demo(import_root, "--config", str(bad))
    assert res.returncode == 1
    assert res.stdout == b""
    lines = res.stderr.decode().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "slots" in lines[0], lines


# --------------------------------------------------------------------------
# the LDIF in OpenLDAP


def ldapsearch(url: str, base: str, filt: str, *attrs: str, scope: str = "sub") -> bytes:
    res = subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, "-s", scope,
         "-b", base, filt, *attrs], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    return res.stdout


def dn_values(dn: str) -> list[tuple[str, str]]:
    """(type, value) of each RDN, values unescaped (RFC 4514), lower-cased."""
    out, cur, i = [], bytearray(), 0
    raw = dn.encode("utf-8")
    while i < len(raw):
        c = raw[i:i + 1]
        if c == b"\\":
            pair = raw[i + 1:i + 3]
            if re.fullmatch(rb"[0-9A-Fa-f]{2}", pair):
                cur.append(int(pair, 16))
                i += 3
                continue
            cur += raw[i + 1:i + 2]
            i += 2
            continue
        if c == b",":
            out.append(bytes(cur))
            cur = bytearray()
        else:
            cur += c
        i += 1
    out.append(bytes(cur))
    pairs = []
    for rdn in out:
        attr, _, value = rdn.decode("utf-8").partition("=")
        pairs.append((attr.strip().lower(), value.strip().lower()))
    return pairs


@pytest.fixture(scope="module")
def server(output):
    with slapd_server([SKELETON, output]) as s:
        yield s


def test_slapd_loads_every_entry(server, records):
    """slapadd accepts the skeleton plus the provider output without a rejected entry."""
    assert server.entry_counts["o=grid"] == 2 + 36
    assert server.entry_counts["o=glue"] == 2 + 52
    found = parse_ldif(ldapsearch(server.url, "o=grid", "(objectClass=*)", "1.1")
                       + ldapsearch(server.url, "o=glue", "(objectClass=*)", "1.1"),
                       "ldapsearch").records
    assert len(found) == 4 + len(records)


def test_endpoints_are_searchable(server, records):
    """ldapsearch for GLUE2Endpoint returns the four endpoint URLs the provider published."""
    out = ldapsearch(server.url, "o=glue", "(objectClass=GLUE2Endpoint)", "GLUE2EndpointURL")
    got = sorted(v for r in parse_ldif(out, "ldapsearch").records
                 for v in values(r, "GLUE2EndpointURL"))
    want = sorted(v for r in of_class(records, "GLUE2Endpoint")
                  for v in values(r, "GLUE2EndpointURL"))
    assert got == want and len(got) == 4
    assert any(u.startswith("condor://") for u in got)
    assert any(u.startswith("https://") for u in got)
    assert any(u.startswith("root://") for u in got)
    assert any(u.startswith("ldap://") for u in got)


def test_ldapadd_accepts_every_entry(output):
    """ldapadd, which checks value syntaxes as the legacy bdii-update did, adds every entry."""
    blocks = [b for b in output.decode("ascii").split("\n\n") if b.strip()]
    by_suffix: dict[str, list[str]] = {"o=grid": [], "o=glue": []}
    for block in blocks:
        dn_line = re.match(r"dn: (.*(?:\n .*)*)", block).group(1).replace("\n ", "")
        by_suffix[dn_line.rsplit(",", 1)[1]].append(block)
    with slapd_server(SKELETON) as s:
        for suffix, entries in by_suffix.items():
            res = subprocess.run(
                ["ldapadd", "-x", "-H", s.url, "-D", suffix, "-w", ROOTPW],
                input="\n\n".join(entries) + "\n", capture_output=True, text=True,
                timeout=120)
            assert res.returncode == 0, res.stderr
            assert res.stderr == ""
        total = sum(len(parse_ldif(ldapsearch(s.url, b, "(objectClass=*)", "1.1"), b).records)
                    for b in ("o=grid", "o=glue"))
        assert total == 4 + len(blocks)


def test_base64_value_round_trips_through_slapd(output, server):
    """The non-ASCII site description is base64 in the LDIF and comes back intact from slapd."""
    value = f"SiteDescription={DESCRIPTION}"
    encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
    assert f"GLUE2EntityOtherInfo:: {encoded}".encode() in output
    filt = f"(GLUE2EntityOtherInfo={value})"
    out = ldapsearch(server.url, "o=glue", filt, "GLUE2EntityOtherInfo", "GLUE2ServiceType")
    (rec,) = parse_ldif(out, "ldapsearch").records
    assert value in values(rec, "GLUE2EntityOtherInfo")
    assert values(rec, "GLUE2ServiceType") == ["bdii_site"]
    # GLUE 1.3 strings are IA5String: the same description is transliterated
    out = ldapsearch(server.url, "o=grid", "(objectClass=GlueSite)", "GlueSiteDescription")
    (site,) = parse_ldif(out, "ldapsearch").records
    assert values(site, "GlueSiteDescription") == ["Demo site, Zurich"]


def test_escaped_dn_round_trips_through_slapd(records, server):
    """The GlueServiceDataKey with a comma is escaped in its DN and slapd finds it both ways."""
    (rec,) = [r for r in records if values(r, "GlueServiceDataKey") == [ESCAPED_KEY]]
    # Escaped as slapd writes it, so our DNs and slapd's are the same text.
    assert rec.dn.startswith("GlueServiceDataKey=bdii_config\\2CBDII_BREATHE_TIME,")
    out = ldapsearch(server.url, "o=grid", f"(GlueServiceDataKey={ESCAPED_KEY})",
                     "GlueServiceDataKey")
    (found,) = parse_ldif(out, "ldapsearch").records
    assert values(found, "GlueServiceDataKey") == [ESCAPED_KEY]
    # slapd writes the escape the same way (attribute types in schema case).
    assert found.dn.split(",")[0] == rec.dn.split(",")[0]
    assert dn_values(found.dn) == dn_values(rec.dn)
    assert dn_values(rec.dn)[0] == ("glueservicedatakey", ESCAPED_KEY.lower())
    out = ldapsearch(server.url, rec.dn, "(objectClass=*)", "GlueServiceDataValue", scope="base")
    (same,) = parse_ldif(out, "ldapsearch").records
    assert values(same, "GlueServiceDataValue") == ["120"]
