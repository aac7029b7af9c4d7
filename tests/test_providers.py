"""The resource-level information providers (site, service, ce, se, bdii).

Each provider runs as a real subprocess on each example configuration in
etc/providers/, with fake batch-system commands on PATH that print output
captured in the real formats; its LDIF must pass `bdii validate --profile
egi` without errors and load into slapd without a rejected entry. The
end-to-end test runs them in a resource BDII's provider/ directory, has a
site BDII aggregate it, and asks what brokers ask.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from bdii.core.config import Config
from bdii.core.validation import ERROR, entries_from_ldif, validate_entries
from bdii.providers import ce
from bdii.providers.common import ConfigFile, ProviderError
from bdii.service.ldapserver import SnapshotHolder
from bdii.service.store import StateStore
from bdii.service.updater import Updater
from slapd_harness import slapd_server
from support import ROOT, SKELETON, in_thread, ldap3_search

ETC = ROOT / "etc" / "providers"
NOW = "2024-05-01T12:34:56Z"
NOW_DT = datetime(2024, 5, 1, 12, 34, 56, tzinfo=timezone.utc)

# Captured in the real formats of the commands ce.py runs.
SQUEUE_OUT = """\
long|RUNNING|atlas|atlas001|8
long|RUNNING|atlasprd|pilatl01|8
long|RUNNING|cms|cms042|1
long|PENDING|atlas|atlas001|8
long,short|PENDING|cms|cmsprd|1
long|COMPLETING|lhcb|lhcb003|1
short|RUNNING|ops|ops001|1
short|PENDING|dteam|dteam007|1
long|RUNNING|physics|alice|4
"""
SINFO_OUT = "long|1180/76/24/1280\nshort|30/34/0/64\n"
CONDOR_Q_OUT = """\
2 group_atlas.prod.pilot 8 mcore
2 group_atlas.prod.pilot 8 mcore
1 group_atlas.analysis 1 grid
2 group_cms.production 1 grid
1 group_cms.production 1 grid
5 group_cms.production 1 grid
2 group_ops 1 grid
2 undefined 1 undefined
4 group_ops 1 grid
"""
CONDOR_STATUS_OUT = """\
Partitionable Unclaimed 40
Dynamic Claimed 8
Dynamic Claimed 8
Dynamic Claimed 1
Dynamic Claimed 1
Static Owner 8
Static Unclaimed 1
"""
CONDOR_VERSION_OUT = ("$CondorVersion: 23.0.6 2024-03-13 BuildID: 718327 PackageID: 23.0.6-1 $\n"
                      "$CondorPlatform: x86_64_AlmaLinux9 $\n")


def _exe(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _printer(path: Path, text: str, version: str | None = None) -> None:
    """A fake command printing `text` (and `version` for --version); it logs its argv."""
    head = f'#!/bin/sh\necho "$0 $*" >> "{path.parent}/calls.log"\n'
    if version is not None:
        head += f'if [ "$1" = "--version" ]; then echo "{version}"; exit 0; fi\n'
    _exe(path, head + f"cat <<'EOF'\n{text}EOF\n")


@pytest.fixture(scope="module")
def fakebin(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fakebin")
    _printer(d / "squeue", SQUEUE_OUT)
    _printer(d / "sinfo", SINFO_OUT, version="slurm 23.11.10")
    _printer(d / "condor_q", CONDOR_Q_OUT)
    _printer(d / "condor_status", CONDOR_STATUS_OUT)
    _printer(d / "condor_version", CONDOR_VERSION_OUT)
    return d


def run(module: str, config: Path | str, fakebin: Path | None = None, *extra: str,
        path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    elif fakebin is not None:
        env["PATH"] = f"{fakebin}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([sys.executable, "-m", f"bdii.providers.{module}", "-c", str(config),
                           "--now", NOW, *extra], capture_output=True, env=env, timeout=60)


def errors_of(ldif: bytes) -> list[str]:
    data = entries_from_ldif(ldif, "provider")
    report = validate_entries(data.entries, NOW_DT, "egi", findings=data.findings)
    return [f.to_line() for f in report.findings if f.severity == ERROR]


def records(ldif: bytes) -> dict[str, dict[str, list[str]]]:
    """{dn: {attr: [values]}} via the project's LDIF reader."""
    from bdii.core.ldif import parse_ldif

    out: dict[str, dict[str, list[str]]] = {}
    for r in parse_ldif(ldif, "t").records:
        attrs: dict[str, list[str]] = {}
        for a, v in r.attrs:
            attrs.setdefault(a, []).append(v)
        out[r.dn] = attrs
    return out


def of_class(recs, name: str):  # type: ignore[no-untyped-def]
    return {dn: a for dn, a in recs.items() if name.lower() in {c.lower() for c in a["objectClass"]}}


EXAMPLES = [("site", "site.conf"), ("bdii", "bdii-site.conf"), ("bdii", "bdii-top.conf"),
            ("ce", "ce-slurm.conf"), ("ce", "ce-htcondor.conf"), ("ce", "ce-static.conf"),
            ("se", "se-posix.conf")] + [
    ("service", p.name) for p in sorted(ETC.glob("service-*.conf"))]


def test_every_example_config_is_covered() -> None:
    """Each etc/providers/*.conf is one of the configurations tested below."""
    assert {c for _, c in EXAMPLES} == {p.name for p in ETC.glob("*.conf")}
    assert {"service-bdii-site.conf", "service-bdii-top.conf", "service-webdav.conf",
            "service-xroot.conf", "service-htcondor-ce.conf", "service-arc-ce.conf",
            "service-voms.conf", "service-fts.conf"} <= {c for _, c in EXAMPLES}


@pytest.mark.parametrize(("module", "conf"), EXAMPLES)
def test_example_output_validates_and_loads_into_slapd(module: str, conf: str, fakebin: Path) -> None:
    """On each example config the provider exits 0, passes `bdii validate --profile egi`
    without errors, repeats itself exactly, and slapd accepts every entry."""
    res = run(module, ETC / conf, fakebin)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stderr == b""
    assert errors_of(res.stdout) == []
    recs = records(res.stdout)
    assert recs and all(dn.endswith((",mds-vo-name=resource,o=grid", ",GLUE2GroupID=resource,o=glue"))
                        for dn in recs)
    times = {v for a in recs.values() for v in a.get("GLUE2EntityCreationTime", [])}
    assert times == {NOW}
    assert all(a.get("GLUE2EntityValidity") for dn, a in recs.items() if "o=glue" in dn)
    if module != "se":  # free space may move between two runs
        assert run(module, ETC / conf, fakebin).stdout == res.stdout
    with slapd_server([SKELETON + "\n", res.stdout]) as s:
        n13 = sum(1 for dn in recs if dn.endswith("o=grid"))
        assert s.entry_counts["o=grid"] == 2 + n13
        assert s.entry_counts["o=glue"] == 2 + len(recs) - n13


def test_site_provider_publishes_domain_location_and_contacts(fakebin: Path) -> None:
    """GlueSite and the AdminDomain with its Location and three Contacts come from site.conf."""
    recs = records(run("site", ETC / "site.conf").stdout)
    (site,) = of_class(recs, "GlueSite").values()
    assert site["GlueSiteName"] == ["EXAMPLE-SITE"]
    assert site["GlueSiteLatitude"] == ["47.3769"]
    assert "TIER=2" in site["GlueSiteOtherInfo"]
    (domain_dn,) = of_class(recs, "GLUE2AdminDomain")
    assert domain_dn == "GLUE2DomainID=EXAMPLE-SITE,GLUE2GroupID=resource,o=glue"
    types = sorted(a["GLUE2ContactType"][0] for a in of_class(recs, "GLUE2Contact").values())
    assert types == ["security", "sysadmin", "usersupport"]
    (loc,) = of_class(recs, "GLUE2Location").values()
    assert loc["GLUE2LocationPlace"] == ["Zürich, Switzerland"]


# --------------------------------------------------------------------------
# generic service: health and version


@pytest.mark.parametrize(("code", "state", "status13"), [
    (0, "ok", "OK"), (1, "warning", "Warning"), (2, "critical", "Critical"), (3, "unknown", "Unknown"),
    (7, "unknown", "Unknown")])
def test_status_command_sets_health(tmp_path: Path, code: int, state: str, status13: str) -> None:
    """The status command's exit code (Nagios convention) gives the health state, its
    first output line the health info; the version command's first word the version."""
    check = _exe(tmp_path / "check", f"#!/bin/sh\n\necho 'xrootd: {code} ready'\necho second\nexit {code}\n")
    version = _exe(tmp_path / "ver", "#!/bin/sh\necho '5.6.9 (built today)'\n")
    conf = tmp_path / "x.conf"
    text = (ETC / "service-xroot.conf").read_text()
    text = text.replace("/usr/bin/systemctl is-active xrootd@clustered", str(check))
    text = text.replace("rpm -q --queryformat %{VERSION} xrootd-server", str(version))
    conf.write_text(text)
    res = run("service", conf)
    assert res.returncode == 0, res.stderr
    recs = records(res.stdout)
    (ep,) = of_class(recs, "GLUE2Endpoint").values()
    assert ep["GLUE2EndpointHealthState"] == [state]
    assert ep["GLUE2EndpointHealthStateInfo"] == [f"xrootd: {code} ready"]
    assert ep["GLUE2EndpointImplementationVersion"] == ["5.6.9"]
    (svc,) = of_class(recs, "GlueService").values()
    assert svc["GlueServiceStatus"] == [status13]
    (policy,) = of_class(recs, "GLUE2AccessPolicy").values()
    assert policy["GLUE2PolicyRule"] == ["VO:atlas", "VO:cms"]


def test_missing_status_command_is_unknown_not_a_failure(tmp_path: Path) -> None:
    """A status command that cannot be run publishes health 'unknown' with the reason."""
    conf = tmp_path / "x.conf"
    conf.write_text((ETC / "service-fts.conf").read_text().replace(
        "/usr/bin/systemctl is-active fts-server", str(tmp_path / "nowhere")))
    res = run("service", conf)
    assert res.returncode == 0
    (ep,) = of_class(records(res.stdout), "GLUE2Endpoint").values()
    assert ep["GLUE2EndpointHealthState"] == ["unknown"]
    assert "cannot run" in ep["GLUE2EndpointHealthStateInfo"][0]


def test_bdii_provider_publishes_its_ldap_urls() -> None:
    """The BDII's own entries carry the LDAP URLs of its GLUE 1.3 and GLUE 2.0 trees."""
    recs = records(run("bdii", ETC / "bdii-site.conf").stdout)
    (svc,) = of_class(recs, "GlueService").values()
    assert svc["GlueServiceType"] == ["bdii_site"]
    assert svc["GlueServiceEndpoint"] == ["ldap://bdii.example.org:2170/mds-vo-name=EXAMPLE-SITE,o=grid"]
    (ep,) = of_class(recs, "GLUE2Endpoint").values()
    assert ep["GLUE2EndpointURL"] == ["ldap://bdii.example.org:2170/GLUE2DomainID=EXAMPLE-SITE,o=glue"]
    assert ep["GLUE2EndpointInterfaceName"] == ["bdii_site"]
    top = records(run("bdii", ETC / "bdii-top.conf").stdout)
    (ep,) = of_class(top, "GLUE2Endpoint").values()
    assert ep["GLUE2EndpointURL"] == ["ldap://topbdii.example.org:2170/GLUE2GroupID=grid,o=glue"]


@pytest.mark.parametrize(("level", "suffix13", "suffix20"), [
    ("site", "mds-vo-name=EXAMPLE-SITE,o=grid", "GLUE2DomainID=EXAMPLE-SITE,o=glue"),
    ("top", "mds-vo-name=local,o=grid", "GLUE2GroupID=grid,o=glue")])
def test_bdii_provider_levels(tmp_path: Path, level: str, suffix13: str, suffix20: str) -> None:
    """`level = site|top` prints the entries in that level's own trees (as the BDII runs it
    for itself), still without errors under the egi profile."""
    conf = tmp_path / "bdii.conf"
    conf.write_text((ETC / f"bdii-{level}.conf").read_text() + f"level = {level}\n")
    res = run("bdii", conf)
    assert res.returncode == 0, res.stderr
    recs = records(res.stdout)
    assert len(recs) == 6
    assert all(dn.endswith(("," + suffix13, "," + suffix20)) for dn in recs)
    assert errors_of(res.stdout) == []


# --------------------------------------------------------------------------
# compute element: the batch systems' output


def test_squeue_and_sinfo_parsing() -> None:
    """Jobs count per partition and VO (accounts mapped, pool accounts stripped); sinfo gives
    total = allocated + idle CPUs and free = idle CPUs."""
    vos = ["atlas", "cms", "lhcb", "ops", "dteam"]
    counts = ce.parse_squeue(SQUEUE_OUT, vos, {"atlasprd": "atlas"})
    assert dict(counts["long"].running) == {"atlas": 2, "cms": 1, "lhcb": 1, None: 1}
    assert dict(counts["long"].waiting) == {"atlas": 1, "cms": 1}
    assert dict(counts["short"].running) == {"ops": 1}
    assert dict(counts["short"].waiting) == {"dteam": 1}
    by_user = ce.parse_squeue(SQUEUE_OUT, vos, {}, vo_from="user")
    assert by_user["long"].running["cms"] == 1 and by_user["long"].running["atlas"] == 1
    assert ce.parse_sinfo(SINFO_OUT) == {"long": ce.Slots(1256, 76), "short": ce.Slots(64, 34)}


def test_condor_parsing() -> None:
    """condor_q: 2 running, 1 idle and 5 held (waiting); condor_status: Unclaimed CPUs are free."""
    jobs = ce.parse_condor_q(CONDOR_Q_OUT, ["atlas", "cms", "ops"], {}, with_queue=True)
    assert dict(jobs["grid"].running) == {"cms": 1, "ops": 1}
    assert dict(jobs["grid"].waiting) == {"atlas": 1, "cms": 2}
    assert dict(jobs["mcore"].running) == {"atlas": 2}
    assert dict(jobs[None].running) == {None: 1}
    assert ce.parse_condor_status(CONDOR_STATUS_OUT) == ce.Slots(67, 41)


@pytest.mark.parametrize("bad", ["long|RUNNING|atlas\n", "garbage\n"])
def test_unexpected_batch_output_is_an_error(bad: str) -> None:
    """Output not in the fixed format is a ProviderError naming the command and line."""
    with pytest.raises(ProviderError, match="line 1"):
        ce.parse_squeue(bad, ["atlas"], {})
    with pytest.raises(ProviderError, match="line 1"):
        ce.parse_sinfo(bad)


def test_ce_numbers_match_the_batch_system(fakebin: Path) -> None:
    """GlueCE, VOView and ComputingShare numbers are the fake Slurm's, asked with fixed formats."""
    (fakebin / "calls.log").unlink(missing_ok=True)
    recs = records(run("ce", ETC / "ce-slurm.conf", fakebin).stdout)
    calls = (fakebin / "calls.log").read_text()
    assert "squeue --noheader --array" in calls and "--format=%P|%T|%a|%u|%C" in calls
    assert "sinfo --noheader --format=%R|%C" in calls
    ces = {a["GlueCEName"][0]: a for a in of_class(recs, "GlueCE").values()}
    assert ces["long"]["GlueCEStateRunningJobs"] == ["5"]
    assert ces["long"]["GlueCEStateWaitingJobs"] == ["2"]
    assert ces["long"]["GlueCEStateFreeJobSlots"] == ["76"]
    assert ces["long"]["GlueCEInfoTotalCPUs"] == ["1256"]
    assert ces["long"]["GlueCEInfoLRMSVersion"] == ["23.11.10"]
    assert ces["short"]["GlueCEAccessControlBaseRule"] == ["VO:ops", "VO:dteam", "VO:cms"]
    shares = {a["GLUE2ShareID"][0]: a for a in of_class(recs, "GLUE2ComputingShare").values()}
    atlas = shares["ce01.example.org_long_atlas"]
    assert (atlas["GLUE2ComputingShareRunningJobs"], atlas["GLUE2ComputingShareWaitingJobs"]) == (["2"], ["1"])
    assert atlas["GLUE2ComputingShareMappingQueue"] == ["long"]
    assert len(of_class(recs, "GlueVOView")) == 5 + 3


def test_failing_batch_system_is_one_stderr_line(tmp_path: Path, fakebin: Path) -> None:
    """When squeue fails the provider prints nothing and exits 1 with one line."""
    bad = tmp_path / "bin"
    bad.mkdir()
    _exe(bad / "squeue", "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller' >&2\nexit 1\n")
    res = run("ce", ETC / "ce-slurm.conf", path=f"{bad}{os.pathsep}{fakebin}{os.pathsep}/usr/bin:/bin")
    assert res.returncode == 1 and res.stdout == b""
    lines = res.stderr.decode().splitlines()
    assert len(lines) == 1 and "squeue" in lines[0] and "status 1" in lines[0]


def test_static_batch_numbers_come_from_the_config(tmp_path: Path) -> None:
    """system = static asks no batch system (empty PATH): the queue's VO=N job counts, slots
    and free slots are published as written; a VO not of the queue is an error naming the key."""
    res = run("ce", ETC / "ce-static.conf", path=str(tmp_path))
    assert res.returncode == 0, res.stderr
    recs = records(res.stdout)
    (queue,) = of_class(recs, "GlueCE").values()
    assert (queue["GlueCEStateRunningJobs"], queue["GlueCEStateWaitingJobs"], queue["GlueCEStateTotalJobs"],
            queue["GlueCEStateFreeJobSlots"], queue["GlueCEInfoTotalCPUs"]) == (["121"], ["30"], ["151"],
                                                                                ["39"], ["160"])
    assert queue["GlueCEInfoLRMSType"] == ["pbs"] and queue["GlueCEInfoLRMSVersion"] == ["7.0.0"]
    shares = {a["GLUE2ShareID"][0]: a for a in of_class(recs, "GLUE2ComputingShare").values()}
    atlas = shares["ce02.example.org_batch_atlas"]
    assert (atlas["GLUE2ComputingShareRunningJobs"], atlas["GLUE2ComputingShareWaitingJobs"],
            atlas["GLUE2ComputingShareTotalJobs"]) == (["100"], ["30"], ["130"])
    bad = tmp_path / "bad.conf"
    bad.write_text((ETC / "ce-static.conf").read_text().replace("waiting_jobs = atlas=30",
                                                                "waiting_jobs = lhcb=30"))
    res = run("ce", bad, path=str(tmp_path))
    assert res.returncode == 1 and res.stdout == b""
    assert b"[queue:batch] waiting_jobs: 'lhcb' is not among the queue's vos" in res.stderr


# --------------------------------------------------------------------------
# storage element: the real file system


def test_se_capacities_are_the_file_systems(tmp_path: Path) -> None:
    """Area sizes are statvfs of the configured path (GB; kB for GlueSAState*), or the quota command's."""
    (tmp_path / "cms").mkdir()
    quota = _exe(tmp_path / "quota", "#!/bin/sh\necho '5000000000000 1250000000000'\n")
    conf = tmp_path / "se.conf"
    conf.write_text((ETC / "se-posix.conf").read_text()
                    .replace("[area:cms]\npath = /tmp", f"[area:cms]\npath = {tmp_path}/cms")
                    .replace("[area:atlas]\npath = /tmp", f"[area:atlas]\npath = /tmp\nquota_command = {quota}"))
    res = run("se", conf)
    assert res.returncode == 0, res.stderr
    st = os.statvfs(tmp_path / "cms")
    free_gb = st.f_bavail * st.f_frsize // 10**9
    total_gb = st.f_blocks * st.f_frsize // 10**9
    recs = records(res.stdout)
    sas = {a["GlueSALocalID"][0]: a for a in of_class(recs, "GlueSA").values()}
    assert sas["atlas"]["GlueSATotalOnlineSize"] == ["5000"]
    assert sas["atlas"]["GlueSAUsedOnlineSize"] == ["1250"]
    assert sas["atlas"]["GlueSAStateAvailableSpace"] == [str(3750 * 10**6)]
    assert sas["cms"]["GlueSATotalOnlineSize"] == [str(total_gb)]
    assert abs(int(sas["cms"]["GlueSAFreeOnlineSize"][0]) - free_gb) <= 1
    caps = {a["GLUE2StorageShareCapacityID"][0]: a for a in of_class(recs, "GLUE2StorageShareCapacity").values()}
    assert caps["se01.example.org_atlas_capacity"]["GLUE2StorageShareCapacityFreeSize"] == ["3750"]
    assert abs(int(caps["se01.example.org_cms_capacity"]["GLUE2StorageShareCapacityFreeSize"][0]) - free_gb) <= 1
    assert len(of_class(recs, "GlueSEControlProtocol")) == 1
    assert len(of_class(recs, "GlueSEAccessProtocol")) == 2
    assert errors_of(res.stdout) == []


# --------------------------------------------------------------------------
# configuration errors


@pytest.mark.parametrize(("module", "conf", "old", "new", "needle"), [
    ("site", "site.conf", "latitude = 47.3769", "latitude = 147", ":16: [site] latitude: must be between -90 and 90"),
    ("site", "site.conf", "tier = 2", "tier = two", "[site] tier: not an integer"),
    ("site", "site.conf", "sysadmin_email = ", "sysadmn_email = ", "[site] sysadmn_email: unknown key"),
    ("service", "service-voms.conf", "vos = dteam", "vos = DTeam", "[service] vos: not a VO name"),
    ("service", "service-voms.conf", "url = voms://", "url = voms:", "[endpoint:dteam] url"),
    ("ce", "ce-slurm.conf", "system = slurm", "system = pbs", "[batch] system"),
    ("ce", "ce-htcondor.conf", "queue_attribute = ArcQueue", "", "[batch] queue_attribute"),
    ("ce", "ce-static.conf", "free_slots = 39", "free_slots = 161", "[queue:batch] free_slots: more free"),
    ("ce", "ce-slurm.conf", "max_total_jobs = 4000", "max_total_jobs = 4000\nslots = 9",
     "[queue:long] slots: unknown key"),
    ("se", "se-posix.conf", "path = /tmp\nvos = atlas", "path = tmp\nvos = atlas", "[area:atlas] path"),
    ("bdii", "bdii-site.conf", "type = bdii_site", "type = bdii", "[bdii] type"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path: Path, fakebin: Path, module: str,
                                                    conf: str, old: str, new: str, needle: str) -> None:
    """A bad value gives exit 1, nothing on stdout and one stderr line naming file, line and key."""
    text = (ETC / conf).read_text()
    assert old in text
    bad = tmp_path / conf
    bad.write_text(text.replace(old, new))
    res = run(module, bad, fakebin)
    assert res.returncode == 1 and res.stdout == b""
    lines = res.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"bdii-provider-{module}: {bad}:") and needle in lines[0], lines


def test_config_reader_reports_lines() -> None:
    """Duplicate keys and sections, and text outside a section, are errors with the line."""
    from bdii.providers.common import ConfigError

    for text, want in [("[a]\nx = 1\nx = 2\n", "f:3: [a] x: given twice (first at line 2)"),
                       ("[a]\n[a]\n", "f:2: section [a] appears twice"),
                       ("x = 1\n", "f:1: x: outside any [section]"),
                       ("[a]\njust text\n", "f:2: expected 'key = value'")]:
        with pytest.raises(ConfigError) as e:
            ConfigFile.from_text(text, "f")
        assert str(e.value).startswith(want)


# --------------------------------------------------------------------------
# end to end: resource BDII -> site BDII -> broker queries


def _wrapper(provider_dir: Path, module: str, conf: Path, path: str) -> None:
    _exe(provider_dir / f"bdii-provider-{module}",
         f"#!{sys.executable}\nimport os, sys\nos.environ['PATH'] = {path!r}\n"
         f"sys.argv[1:] = ['-c', {str(conf)!r}]\n"
         f"from bdii.providers.{module} import main\nraise SystemExit(main())\n")


@pytest_twisted.inlineCallbacks
def test_resource_to_site_end_to_end(tmp_path, serve, fakebin):  # type: ignore[no-untyped-def]
    """Providers in a resource BDII's provider/ reach a site BDII, where brokers find the
    endpoints, the cms storage area and its free space, and the fake Slurm's job counts."""
    res_dir = tmp_path / "resource"
    for d in ("ldif", "provider", "plugin", "var"):
        (res_dir / d).mkdir(parents=True)
    (res_dir / "ldif" / "skeleton.ldif").write_text(SKELETON)
    area = tmp_path / "cms-area"
    area.mkdir()
    se_conf = tmp_path / "se.conf"
    se_conf.write_text((ETC / "se-posix.conf").read_text().replace(
        "[area:cms]\npath = /tmp", f"[area:cms]\npath = {area}"))
    path = f"{fakebin}{os.pathsep}{os.environ.get('PATH', '')}"
    for module, conf in [("site", ETC / "site.conf"), ("ce", ETC / "ce-slurm.conf"), ("se", se_conf),
                         ("service", ETC / "service-webdav.conf")]:
        _wrapper(res_dir / "provider", module, conf, path)
    cfg = replace(Config(), ldif_dir=res_dir / "ldif", provider_dir=res_dir / "provider",
                  plugin_dir=res_dir / "plugin", var_dir=res_dir / "var", hostname="res.example.org",
                  read_timeout=60)
    holder = SnapshotHolder()
    yield Updater(cfg, reactor, holder, StateStore(cfg.var_dir)).cycle()
    resource = serve(holder.current)

    site_dir = tmp_path / "site"
    for d in ("ldif", "provider", "plugin", "var"):
        (site_dir / d).mkdir(parents=True)
    (site_dir / "urls").write_text(f"resource {resource.url}/mds-vo-name=resource,o=grid\n")
    site_cfg = replace(Config(), ldif_dir=site_dir / "ldif", provider_dir=site_dir / "provider",
                       plugin_dir=site_dir / "plugin", var_dir=site_dir / "var",
                       hostname="site.example.org", mode="site", urls_file=site_dir / "urls",
                       source_timeout=10, site_name="EXAMPLE-SITE")
    site_holder = SnapshotHolder()
    yield Updater(site_cfg, reactor, site_holder, StateStore(site_cfg.var_dir)).cycle()
    site = serve(site_holder.current)

    _r, eps = yield in_thread(ldap3_search, site.url, "o=glue",
                              "(&(objectClass=GLUE2Endpoint)(GLUE2EndpointInterfaceName=https))",
                              attributes=["GLUE2EndpointURL"])
    urls = sorted(a["GLUE2EndpointURL"][0].decode() for _, a in eps)
    assert urls == ["https://se01.example.org:8443/", "https://webdav.example.org:8443/"]
    assert all(dn.endswith(",GLUE2GroupID=resource,GLUE2DomainID=EXAMPLE-SITE,o=glue") for dn, _ in eps)
    _r, ces = yield in_thread(ldap3_search, site.url, "o=glue",
                              "(&(objectClass=GLUE2Endpoint)"
                              "(GLUE2EndpointInterfaceName=org.opensciencegrid.htcondorce))",
                              attributes=["GLUE2EndpointURL"])
    assert [a["GLUE2EndpointURL"][0] for _, a in ces] == [b"condor://ce01.example.org:9619"]

    _r, sas = yield in_thread(ldap3_search, site.url, "o=grid",
                              "(&(objectClass=GlueSA)(GlueSAAccessControlBaseRule=VO:cms))",
                              attributes=["GlueSALocalID", "GlueSAFreeOnlineSize", "GlueSAPath"])
    ((sa_dn, sa),) = sas
    assert sa_dn.endswith(",Mds-Vo-name=EXAMPLE-SITE,o=grid")
    assert sa["GlueSAPath"] == [str(area).encode()]
    st = os.statvfs(area)
    assert abs(int(sa["GlueSAFreeOnlineSize"][0]) - st.f_bavail * st.f_frsize // 10**9) <= 1
    _r, caps = yield in_thread(ldap3_search, site.url, "o=glue",
                               "(&(objectClass=GLUE2StorageShareCapacity)"
                               "(GLUE2StorageShareCapacityStorageShareForeignKey=se01.example.org_cms))",
                               attributes=["GLUE2StorageShareCapacityFreeSize"])
    ((_, cap),) = caps
    assert abs(int(cap["GLUE2StorageShareCapacityFreeSize"][0]) - st.f_bavail * st.f_frsize // 10**9) <= 1

    _r, views = yield in_thread(ldap3_search, site.url, "o=grid",
                                "(&(objectClass=GlueVOView)(GlueCEAccessControlBaseRule=VO:atlas))",
                                attributes=["GlueCEStateRunningJobs", "GlueCEStateWaitingJobs"])
    ((_, view),) = views
    assert (view["GlueCEStateRunningJobs"], view["GlueCEStateWaitingJobs"]) == ([b"2"], [b"1"])
    _r, sites = yield in_thread(ldap3_search, site.url, "o=grid", "(objectClass=GlueSite)",
                                attributes=["GlueSiteName"])
    assert [a["GlueSiteName"] for _, a in sites] == [[b"EXAMPLE-SITE"]]


# --------------------------------------------------------------------------
# the demo site of `bdii serve` without -c: these providers on packaged configs


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, bytes]:
    """The default state laid out, and what its provider wrappers print, run as the BDII runs them."""
    from bdii.cli import prepare_default_state

    state = tmp_path_factory.mktemp("state")
    prepare_default_state(state)
    out = b""
    for wrapper in sorted((state / "provider").iterdir()):
        res = subprocess.run([str(wrapper)], capture_output=True, timeout=60, check=False,
                             env={"PATH": "/usr/bin:/bin"})
        assert res.returncode == 0 and res.stderr == b"", (wrapper, res.stderr)
        out += res.stdout + b"\n"
    return state, out


def test_demo_site_is_the_providers_on_packaged_configs(demo) -> None:  # type: ignore[no-untyped-def]
    """Site, BDII, CE (static batch numbers, no batch system asked), SE (measuring the state
    directory) and two services: valid under egi, resource-level DNs, no duplicates."""
    state, out = demo
    recs = records(out)
    assert len(recs) == out.count(b"\ndn: ") + out.startswith(b"dn: ") > 100
    assert all(dn.endswith((",mds-vo-name=resource,o=grid", ",GLUE2GroupID=resource,o=glue")) for dn in recs)
    data = entries_from_ldif(out, "demo")
    report = validate_entries(data.entries, datetime.now(timezone.utc), "egi", findings=data.findings)
    assert [f.to_line() for f in report.findings if f.severity == ERROR] == []
    (site,) = of_class(recs, "GlueSite").values()
    assert site["GlueSiteUniqueID"] == ["BDII-DEMO"]
    types = sorted(a["GlueServiceType"][0] for a in of_class(recs, "GlueService").values())
    assert types == ["bdii_site", "org.glite.FileTransfer", "org.glite.voms"]
    ces = {a["GlueCEName"][0]: a for a in of_class(recs, "GlueCE").values()}
    assert ces["long"]["GlueCEStateRunningJobs"] == ["880"] and ces["long"]["GlueCEStateFreeJobSlots"] == ["80"]
    st = os.statvfs(state)
    sas = {a["GlueSALocalID"][0]: a for a in of_class(recs, "GlueSA").values()}
    assert sas["atlas"]["GlueSAPath"] == [str(state.resolve())]
    assert abs(int(sas["atlas"]["GlueSATotalOnlineSize"][0]) - st.f_blocks * st.f_frsize // 10**9) <= 1
    health = {a["GLUE2EndpointHealthState"][0] for a in of_class(recs, "GLUE2Endpoint").values()}
    assert health == {"ok"}


def test_demo_site_loads_into_slapd_and_answers_searches(demo) -> None:  # type: ignore[no-untyped-def]
    """slapd accepts every demo entry; the endpoints are found by their URLs, and the UTF-8 site
    description comes back intact in GLUE 2.0 (base64 in the LDIF) and transliterated in GLUE 1.3."""
    _state, out = demo
    recs = records(out)
    encoded = base64.b64encode("Démo site, Zürich".encode()).decode()
    assert f"GLUE2DomainDescription:: {encoded}".encode() in out
    with slapd_server([SKELETON + "\n", out]) as s:
        n13 = sum(1 for dn in recs if dn.endswith("o=grid"))
        assert (s.entry_counts["o=grid"], s.entry_counts["o=glue"]) == (2 + n13, 2 + len(recs) - n13)
        _r, eps = ldap3_search(s.url, "o=glue", "(objectClass=GLUE2Endpoint)", attributes=["GLUE2EndpointURL"])
        schemes = sorted({a["GLUE2EndpointURL"][0].decode().split(":")[0] for _, a in eps})
        assert schemes == ["condor", "https", "ldap", "root", "voms"]
        _r, domains = ldap3_search(s.url, "o=glue", "(GLUE2DomainDescription=Démo site, Zürich)",
                                   attributes=["GLUE2DomainDescription"])
        assert [a["GLUE2DomainDescription"] for _, a in domains] == [["Démo site, Zürich".encode()]]
        _r, sites = ldap3_search(s.url, "o=grid", "(objectClass=GlueSite)", attributes=["GlueSiteDescription"])
        assert [a["GlueSiteDescription"] for _, a in sites] == [[b"Demo site, Zurich"]]


def test_dn_special_characters_are_escaped_and_round_trip_through_slapd(tmp_path: Path) -> None:
    """An ID with DN special characters (, + =) is escaped in the DNs as slapd writes them, and
    slapd finds the entry by value and by DN."""
    conf = tmp_path / "svc.conf"
    conf.write_text((ETC / "service-voms.conf").read_text().replace(
        "site = EXAMPLE-SITE", "site = EXAMPLE-SITE\nid = voms,dteam+1=x"))
    res = run("service", conf, path=str(tmp_path))
    assert res.returncode == 0, res.stderr
    (svc_dn,) = of_class(records(res.stdout), "GLUE2Service")
    assert svc_dn.startswith("GLUE2ServiceID=voms\\2Cdteam\\2B1\\3Dx,")
    with slapd_server([SKELETON + "\n", res.stdout]) as s:
        _r, found = ldap3_search(s.url, "o=glue", "(GLUE2ServiceID=voms,dteam+1=x)", attributes=["1.1"])
        assert [dn.lower() for dn, _ in found] == [svc_dn.lower()]
        _r, same = ldap3_search(s.url, svc_dn, scope="BASE", attributes=["GLUE2ServiceID"])
        assert [a["GLUE2ServiceID"] for _, a in same] == [[b"voms,dteam+1=x"]]
