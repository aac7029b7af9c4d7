"""Demo information provider: a small WLCG site in GLUE 1.3 and GLUE 2.0.

This is the provider that ``bdii serve`` runs on its embedded default
configuration, so that a newcomer gets realistic data to query::

    python -m bdii.providers.demo [--config FILE] [--now 2024-05-01T12:00:00Z]

It prints resource-level LDIF on stdout, as any BDII provider does: GLUE 1.3
entries under ``mds-vo-name=resource,o=grid`` and GLUE 2.0 entries under
``GLUE2GroupID=resource,o=glue`` (those two parents, and ``o=grid`` and
``o=glue``, come from the static default LDIF, not from here).

The site (``demo.conf``, package data, or ``--config``) has a site BDII, an
HTCondor-CE in front of a Slurm cluster with one GlueCE / GLUE2 share set per
queue, and an SRM-less storage element (dCache with WebDAV/https and xroot
doors), serving the VOs atlas, cms, lhcb, ops and dteam.

Creation times are the current UTC time. Job counts and free space change
every minute but are a pure function of the clock minute, so two runs in the
same minute print the same numbers and the next cycle shows modifications.
Exit status: 0 on success, 1 with one line on stderr for a bad configuration.
"""

from __future__ import annotations

import argparse
import configparser
import importlib.resources
import sys
import zlib
from datetime import datetime, timezone
from typing import Any

from bdii.providers.rendering import join_records, render

PROG = "python -m bdii.providers.demo"
TEMPLATES = ("demo-glue13.ldif.j2", "demo-glue20.ldif.j2")
SUFFIX13 = "mds-vo-name=resource,o=grid"
SUFFIX20 = "GLUE2GroupID=resource,o=glue"


class ConfigError(Exception):
    """A problem in the demo site configuration (names the file and key)."""


# --------------------------------------------------------------------------
# configuration


def load_config(path: str | None = None) -> tuple[configparser.ConfigParser, str]:
    """Read the site configuration: ``path``, or the packaged demo.conf."""
    cfg = configparser.ConfigParser(interpolation=None)
    if path is None:
        name = "demo.conf"
        text = importlib.resources.files("bdii.providers").joinpath(name).read_text("utf-8")
        where = f"bdii.providers/{name}"
    else:
        where = path
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read: {e}") from None
    try:
        cfg.read_string(text, source=where)
    except configparser.Error as e:
        raise ConfigError(f"{where}: {' '.join(str(e).split())}") from None
    return cfg, where


class _Section:
    """Typed access to one config section, errors naming file and key."""

    def __init__(self, cfg: configparser.ConfigParser, where: str, name: str):
        if not cfg.has_section(name):
            raise ConfigError(f"{where}: missing section [{name}]")
        self.sec, self.where, self.name = cfg[name], where, name

    def str(self, key: str) -> str:
        value = self.sec.get(key, "").strip()
        if not value:
            raise ConfigError(f"{self.where}: [{self.name}] {key}: missing or empty")
        return value

    def list(self, key: str) -> list[str]:
        return self.str(key).replace(",", " ").split()

    def int(self, key: str, minimum: int = 0) -> int:
        text = self.str(key)
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{self.where}: [{self.name}] {key}: "
                              f"not an integer: {text!r}") from None
        if value < minimum:
            raise ConfigError(f"{self.where}: [{self.name}] {key}: "
                              f"must be at least {minimum}: {value}")
        return value

    def float(self, key: str) -> float:
        text = self.str(key)
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{self.where}: [{self.name}] {key}: "
                              f"not a number: {text!r}") from None


# --------------------------------------------------------------------------
# the model the templates render


def vary(now: datetime, key: str, low: int, high: int) -> int:
    """A number in [low, high] that depends only on ``key`` and the clock
    minute: stable within a minute, different from one minute to the next."""
    if high <= low:
        return low
    return low + zlib.crc32(f"{key}@{now:%Y-%m-%dT%H:%M}".encode()) % (high - low + 1)


def glue_time(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_model(cfg: configparser.ConfigParser, where: str, now: datetime) -> dict[str, Any]:
    """Everything the two templates need: IDs, static and dynamic values."""
    s = _Section(cfg, where, "site")
    h = _Section(cfg, where, "hosts")
    c = _Section(cfg, where, "cluster")
    st = _Section(cfg, where, "storage")
    vos = _Section(cfg, where, "vos").list("names")
    for vo in vos:
        if not all(ch.isalnum() or ch in ".-_" for ch in vo):
            raise ConfigError(f"{where}: [vos] names: not a VO name: {vo!r}")

    site = {
        "name": s.str("name"),
        "description": s.str("description"),
        "location": s.str("location"),
        "country": s.str("country"),
        "latitude": f"{s.float('latitude'):.4f}",
        "longitude": f"{s.float('longitude'):.4f}",
        "web": s.str("web"),
        "email": s.str("email"),
        "security_email": s.str("security_email"),
        "user_support_email": s.str("user_support_email"),
        "other_info": [f"GRID={g}" for g in s.list("grids")] + [f"TIER={s.str('tier')}"],
    }
    bdii_host, ce_host, se_host = h.str("site_bdii"), h.str("ce"), h.str("se")
    created = glue_time(now)

    # -- site BDII --------------------------------------------------------
    bdii_id = f"{bdii_host}_bdii_site"
    bdii = {
        "host": bdii_host,
        "id": bdii_id,
        "endpoint13": f"ldap://{bdii_host}:2170/mds-vo-name={site['name']},o=grid",
        "url20": f"ldap://{bdii_host}:2170/GLUE2DomainID={site['name']},o=glue",
        "endpoint_id": f"{bdii_id}_endpoint",
        "policy_id": f"{bdii_id}_endpoint_policy",
        "version": "6.0.3",
        "start_time": glue_time(now.replace(hour=0, minute=0, second=0)),
        # GlueServiceData key/value pairs; the last key holds a comma, so its
        # DN needs RFC 4514 escaping
        "data": [
            ("glite-info-service_version", "1.0"),
            ("glite-info-service_hostname", bdii_host),
            ("bdii_config,BDII_BREATHE_TIME", "120"),
        ],
    }

    # -- compute: HTCondor-CE over Slurm -----------------------------------
    lrms = c.str("lrms")
    nodes, cores = c.int("worker_nodes", 1), c.int("cores_per_node", 1)
    total_cpus = nodes * cores
    hs06_core = c.float("hepspec06_per_core")
    queue_names = [sec.split(":", 1)[1].strip() for sec in cfg.sections()
                   if sec.startswith("queue:")]
    if not queue_names:
        raise ConfigError(f"{where}: no [queue:NAME] section")
    ce_service_id = f"{ce_host}_ComputingElement"
    ce_endpoint_id = f"{ce_host}_HTCondorCE"
    resource_id = f"{ce_host}_{c.str('platform')}_{c.str('os_name')}" \
                  f"{c.str('os_release').split('.')[0]}"
    queues = []
    for qname in queue_names:
        q = _Section(cfg, where, f"queue:{qname}")
        slots = q.int("slots", 1)
        per_vo = max(1, slots // len(vos))
        shares = []
        for vo in vos:
            running = vary(now, f"{qname}/{vo}/running", 0, per_vo)
            waiting = vary(now, f"{qname}/{vo}/waiting", 0, 50)
            shares.append({
                "vo": vo,
                "id": f"{ce_host}_{qname}_{vo}_share",
                "policy_id": f"{ce_host}_{qname}_{vo}_policy",
                "running": running,
                "waiting": waiting,
                "total": running + waiting,
                "free_slots": per_vo - running,
                "ert": waiting * 60,
                "wrt": waiting * 600,
                "app_dir": f"/cvmfs/{vo}.cern.ch" if vo in ("atlas", "cms", "lhcb")
                           else "/cvmfs/grid.cern.ch",
            })
        running = sum(x["running"] for x in shares)
        waiting = sum(x["waiting"] for x in shares)
        queues.append({
            "name": qname,
            "ce_id": f"{ce_host}:9619/{ce_host}-{lrms}-{qname}",
            "slots": slots,
            "max_wall": q.int("max_wall_minutes", 1),
            "max_cpu": q.int("max_cpu_minutes", 1),
            "max_running": q.int("max_running_jobs", 1),
            "max_total": q.int("max_total_jobs", 1),
            "running": running,
            "waiting": waiting,
            "total": running + waiting,
            "free_slots": max(0, slots - running),
            "ert": max(x["ert"] for x in shares),
            "wrt": max(x["wrt"] for x in shares),
            "shares": shares,
        })
    running_all = sum(q["running"] for q in queues)
    waiting_all = sum(q["waiting"] for q in queues)
    compute = {
        "host": ce_host,
        "lrms": lrms,
        "lrms_version": c.str("lrms_version"),
        "ce_version": c.str("ce_version"),
        "service_id": ce_service_id,
        "endpoint_id": ce_endpoint_id,
        "endpoint_url": f"condor://{ce_host}:9619",
        "policy_id": f"{ce_endpoint_id}_policy",
        "manager_id": f"{ce_service_id}_Manager",
        "resource_id": resource_id,
        "benchmark_id": f"{resource_id}_hep-spec06",
        "start_time": glue_time(now.replace(hour=0, minute=0, second=0)),
        "nodes": nodes,
        "sockets_per_node": 2,
        "cores_per_node": cores,
        "total_cpus": total_cpus,
        "memory_mb": c.int("memory_per_node_mb", 1),
        "memory_per_core_mb": c.int("memory_per_node_mb", 1) // cores,
        "os_family": c.str("os_family"),
        "os_name": c.str("os_name"),
        "os_release": c.str("os_release"),
        "os_codename": c.str("os_codename"),
        "platform": c.str("platform"),
        "cpu_vendor": c.str("cpu_vendor"),
        "cpu_model": c.str("cpu_model"),
        "cpu_clock": c.int("cpu_clock_mhz", 1),
        "hs06_per_core": f"{hs06_core:g}",
        # GLUE 1.3 publishes SpecInt2000 units: 1 HEP-SPEC06 = 250 SI00
        "si00": round(hs06_core * 250),
        "sf00": round(hs06_core * 250),
        "used_instances": min(nodes, vary(now, "ee/used", nodes // 2, nodes)),
        "running": running_all,
        "waiting": waiting_all,
        "total": running_all + waiting_all,
        "queues": queues,
    }

    # -- storage: dCache, WebDAV (https) and xroot, no SRM -----------------
    sizes: dict[str, int] = {}
    default_gb = st.int("default_share_gb", 1)
    for item in st.list("share_gb"):
        vo, sep, size = item.partition(":")
        if not sep or not size.isdigit() or int(size) < 1:
            raise ConfigError(f"{where}: [storage] share_gb: expected VO:GB, got {item!r}")
        sizes[vo] = int(size)
    se_service_id = f"{se_host}_StorageService"
    protocols = [
        {"name": "https", "interface": "https", "version": "1.1", "port": 443,
         "url": f"https://{se_host}:443/", "security": ["X509", "OIDC"],
         "capability": ["data.access.flatfiles", "data.transfer"]},
        {"name": "xroot", "interface": "xroot", "version": "5.0", "port": 1094,
         "url": f"root://{se_host}:1094/", "security": ["X509", "OIDC"],
         "capability": ["data.access.flatfiles", "data.transfer"]},
    ]
    for p in protocols:
        p["endpoint_id"] = f"{se_service_id}_{p['name']}"
        p["policy_id"] = f"{se_service_id}_{p['name']}_policy"
        p["protocol_id"] = f"{p['name']}-{p['version']}"
    sshares = []
    for vo in vos:
        total = sizes.get(vo, default_gb)
        used = total * vary(now, f"se/{vo}/used", 30, 90) // 100
        sshares.append({
            "vo": vo,
            "sa_id": f"{vo}:default",
            "voinfo_id": f"{vo}:/data/{vo}",
            "path": f"/data/{vo}",
            "id": f"{se_host}:{vo}",
            "capacity_id": f"{se_host}:{vo}_online",
            "policy_id": f"{se_host}:{vo}_policy",
            "total": total,
            "used": used,
            "free": total - used,
        })
    se_total = sum(x["total"] for x in sshares)
    se_used = sum(x["used"] for x in sshares)
    storage = {
        "host": se_host,
        "implementation": st.str("implementation"),
        "version": st.str("implementation_version"),
        "service_id": se_service_id,
        "capacity_id": f"{se_service_id}_online",
        "protocols": protocols,
        "shares": sshares,
        "total": se_total,
        "used": se_used,
        "free": se_total - se_used,
        "io_load": vary(now, "se/ioload", 0, 100),
    }
    return {
        "created": created,
        "suffix13": SUFFIX13,
        "suffix20": SUFFIX20,
        "site": site,
        "vos": vos,
        "vo_rules": [f"VO:{vo}" for vo in vos],
        "bdii": bdii,
        "compute": compute,
        "storage": storage,
    }


def generate(config: str | None = None, now: datetime | None = None) -> str:
    """The provider's whole LDIF output as text."""
    cfg, where = load_config(config)
    if now is None:
        now = datetime.now(timezone.utc)
    model = build_model(cfg, where, now.replace(microsecond=0))
    return join_records(render(name, **model) for name in TEMPLATES)


# --------------------------------------------------------------------------
# command line


def _parse_now(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time (e.g. 2024-05-01T12:00:00Z): {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Print GLUE 1.3 and GLUE 2.0 LDIF for a demo site "
                    "(resource level).")
    parser.add_argument("-c", "--config", metavar="FILE",
                        help="site configuration (default: the packaged demo.conf)")
    parser.add_argument("--now", metavar="TIME", type=_parse_now,
                        help="pretend the current UTC time is TIME "
                             "(reproducible output)")
    args = parser.parse_args(argv)
    try:
        text = generate(args.config, args.now)
    except ConfigError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
