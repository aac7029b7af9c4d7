"""Compute element information provider: queues, job counts and slots of a
Slurm or HTCondor batch system behind an HTCondor-CE or ARC-CE.

    bdii-provider-ce -c /etc/bdii/providers/ce-slurm.conf
    python -m bdii.providers.ce -c etc/providers/ce-htcondor.conf [--now TIME]

GLUE 1.3: ``GlueCluster``, ``GlueSubCluster``, one ``GlueCE`` per queue with
one ``GlueVOView`` per VO (and the ``GlueCESEBind`` entries when a default
SE is configured). GLUE 2.0: ``ComputingService``, ``ComputingEndpoint`` +
``AccessPolicy``, one ``ComputingShare`` + ``MappingPolicy`` per queue and
VO, ``ComputingManager``, ``ExecutionEnvironment`` (+ ``Benchmark``).

The static part comes from the configuration, the dynamic part from the
batch system, asked with fixed output formats so the parsing does not
depend on site defaults:

Slurm
    ``squeue --noheader --array --states=... --format=%P|%T|%a|%u|%C``
    (partition, state, account, user, CPUs; each array task is a job) and
    ``sinfo --noheader --format=%R|%C`` (partition, CPUs
    allocated/idle/other/total).
HTCondor
    ``condor_q -allusers -af JobStatus <vo attribute> RequestCpus [<queue attribute>]``
    and ``condor_status -af SlotType State Cpus`` (free = the CPUs of
    Unclaimed slots, partitionable slots included: their Cpus are what is
    left to carve).

Static (``system = static``)
    nothing is asked: each ``[queue:NAME]`` gives its ``running_jobs`` and
    ``waiting_jobs`` per VO (``atlas=120 cms=40``; total = running +
    waiting), ``slots`` and ``free_slots``, and ``[batch]`` the ``lrms``
    name and ``version`` to publish (a demo, or a site whose numbers come
    from elsewhere and are written into the file).

A job's VO: its Slurm account (or user, ``vo_from = user``) or its HTCondor
``AcctGroup`` (``vo_attribute``), looked up in ``vo_map``; otherwise
``group_`` and a ``.subgroup`` suffix are dropped (``group_atlas.prod`` ->
``atlas``) and so are trailing digits (pool accounts: ``cms042`` -> ``cms``).
Jobs of no configured VO count for the queue, not for any VO share.
A batch command that fails is an error (exit 1, one stderr line): a BDII
then keeps the last good output for BDII_CACHE_TTL rather than publishing zeros.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bdii.providers.common import (
    RESOURCE_SUFFIX13,
    RESOURCE_SUFFIX20,
    ConfigError,
    ConfigFile,
    ProviderError,
    Section,
    checked_output,
    glue_time,
    main_for,
    provider_version,
    render_all,
    vo_rules,
)
from bdii.providers.site import site_name

NAME = "ce"
TEMPLATES = ("ce.ldif.j2",)
SQUEUE = ["squeue", "--noheader", "--array",
          "--states=PENDING,RUNNING,SUSPENDED,CONFIGURING,COMPLETING",
          "--format=%P|%T|%a|%u|%C"]
SINFO = ["sinfo", "--noheader", "--format=%R|%C"]
CONDOR_STATUS = ["condor_status", "-af", "SlotType", "State", "Cpus"]
# HTCondor JobStatus codes (condor_q manual): 1 Idle, 2 Running, 5 Held, 7 Suspended.
CONDOR_WAITING, CONDOR_RUNNING = {"1", "5"}, {"2", "6", "7"}
SLURM_WAITING = {"PENDING"}
SLURM_RUNNING = {"RUNNING", "SUSPENDED", "CONFIGURING", "COMPLETING"}
IMPLEMENTATIONS = {
    # name: (GLUE2 service type/interface name, job description, default port, capabilities)
    "HTCondorCE": ("org.opensciencegrid.htcondorce", "condor:classad", 9619),
    "ARC-CE": ("org.nordugrid.arcrest", "emi:adl", 443),
}


@dataclass
class Counts:
    """Jobs of one queue: per VO (None: no configured VO) running and waiting."""

    running: Counter[str | None] = field(default_factory=Counter)
    waiting: Counter[str | None] = field(default_factory=Counter)


@dataclass(frozen=True)
class Slots:
    total: int
    free: int


# --------------------------------------------------------------------------
# parsing the batch system's output (pure functions)


def vo_of(value: str, vos: list[str], vo_map: dict[str, str]) -> str | None:
    """The VO of an account, user or accounting group (see the module doc)."""
    if value in vo_map:
        return vo_map[value]
    name = value.removeprefix("group_").split(".", 1)[0]
    for candidate in (name, name.rstrip("0123456789")):
        if candidate in vos:
            return candidate
    return None


def parse_squeue(text: str, vos: list[str], vo_map: dict[str, str],
                 vo_from: str = "account") -> dict[str, Counts]:
    """``squeue --format=%P|%T|%a|%u|%C`` lines -> counts per partition."""
    out: dict[str, Counts] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.strip().split("|")
        if len(fields) != 5:
            raise ProviderError(f"squeue output line {n}: expected 5 '|'-separated fields: {line!r}")
        partitions, state, account, user, _cpus = fields
        # a job pending in several partitions ("long,short") is counted once, in the first
        partition = partitions.split(",")[0]
        vo = vo_of(user if vo_from == "user" else account, vos, vo_map)
        counts = out.setdefault(partition, Counts())
        if state in SLURM_RUNNING:
            counts.running[vo] += 1
        elif state in SLURM_WAITING:
            counts.waiting[vo] += 1
    return out


def parse_sinfo(text: str) -> dict[str, Slots]:
    """``sinfo --format=%R|%C`` (CPUs A/I/O/T) -> slots per partition.

    Total excludes the CPUs of down/drained nodes (O, "other")."""
    out: dict[str, Slots] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = re.fullmatch(r"\s*([^|\s]+)\|(\d+)/(\d+)/(\d+)/(\d+)\s*", line)
        if not m:
            raise ProviderError(f"sinfo output line {n}: expected PARTITION|A/I/O/T: {line!r}")
        name, alloc, idle = m.group(1), int(m.group(2)), int(m.group(3))
        old = out.get(name, Slots(0, 0))
        out[name] = Slots(old.total + alloc + idle, old.free + idle)
    return out


def parse_condor_q(text: str, vos: list[str], vo_map: dict[str, str],
                   with_queue: bool) -> dict[str | None, Counts]:
    """``condor_q -af JobStatus VOATTR RequestCpus [QUEUEATTR]`` -> counts per queue value."""
    out: dict[str | None, Counts] = {}
    width = 4 if with_queue else 3
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != width:
            raise ProviderError(f"condor_q output line {n}: expected {width} fields: {line!r}")
        status, group = fields[0], fields[1]
        queue = fields[3] if with_queue and fields[3] != "undefined" else None
        vo = None if group == "undefined" else vo_of(group, vos, vo_map)
        counts = out.setdefault(queue, Counts())
        if status in CONDOR_RUNNING:
            counts.running[vo] += 1
        elif status in CONDOR_WAITING:
            counts.waiting[vo] += 1
        elif not status.isdigit():
            raise ProviderError(f"condor_q output line {n}: JobStatus not a number: {line!r}")
    return out


def parse_condor_status(text: str) -> Slots:
    """``condor_status -af SlotType State Cpus`` -> the pool's slots."""
    total = free = 0
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or not fields[2].isdigit():
            raise ProviderError(f"condor_status output line {n}: expected SlotType State Cpus: {line!r}")
        cpus = int(fields[2])
        total += cpus
        if fields[1] == "Unclaimed":
            free += cpus
    return Slots(total, free)


def _version_from(text: str, pattern: str) -> str:
    m = re.search(pattern, text)
    return m.group(1) if m else "unknown"


# --------------------------------------------------------------------------
# the model


def _queues(cfg: ConfigFile, vos: list[str]) -> list[dict[str, Any]]:
    queues = []
    for label, q in cfg.prefixed("queue"):
        qvos = q.vos("vos", default=vos)
        for vo in qvos:
            if vo not in vos:
                raise q.error("vos", f"{vo!r} is not among the CE's vos")
        max_wall = q.int("max_wall_minutes", minimum=1)
        queues.append({
            "name": label,
            # the Slurm partition, or the HTCondor queue_attribute value
            "batch_name": q.word("batch_queue", label),
            "vos": qvos,
            "max_wall": max_wall,
            "max_cpu": q.int("max_cpu_minutes", max_wall, minimum=1),
            "max_running": q.int("max_running_jobs", 10000, minimum=1),
            "max_total": q.int("max_total_jobs", 20000, minimum=1),
            "status": q.choice("status", ("Production", "Draining", "Closed", "Queueing"),
                               "Production"),
            "section": q,
        })
    if not queues:
        raise ConfigError(f"{cfg.path}: no [queue:NAME] section")
    return queues


def batch_state(b: Section, queues: list[dict[str, Any]], vos: list[str]
                ) -> tuple[str, str, dict[str, Counts], dict[str, Slots]]:
    """Ask the batch system: (lrms name, version, counts and slots per queue name)."""
    system = b.choice("system", ("slurm", "htcondor", "static"))
    if system == "static":
        return static_state(b, queues)
    vo_map = b.mapping("vo_map")
    timeout = b.int("timeout", 60, minimum=1)
    counts: dict[str, Counts] = {}
    slots: dict[str, Slots] = {}
    if system == "slurm":
        vo_from = b.choice("vo_from", ("account", "user"), "account")
        by_partition = parse_squeue(checked_output(SQUEUE, timeout), vos, vo_map, vo_from)
        parts = parse_sinfo(checked_output(SINFO, timeout))
        for q in queues:
            p = q["batch_name"]
            if p not in parts:
                raise ProviderError(f"sinfo lists no partition {p!r} (queue {q['name']})")
            counts[q["name"]] = by_partition.get(p, Counts())
            slots[q["name"]] = parts[p]
        version = b.optional("version") or _version_from(
            checked_output(["sinfo", "--version"], timeout), r"slurm\s+(\S+)")
        return "slurm", version, counts, slots
    vo_attr = b.word("vo_attribute", "AcctGroup")
    queue_attr = b.optional("queue_attribute")
    if queue_attr is None and len(queues) > 1:
        raise b.error("queue_attribute", "needed with more than one [queue:NAME]: "
                      "the job attribute naming a job's queue")
    argv = ["condor_q", "-allusers", "-af", "JobStatus", vo_attr, "RequestCpus"]
    if queue_attr:
        argv.append(queue_attr)
    jobs = parse_condor_q(checked_output(argv, timeout), vos, vo_map, queue_attr is not None)
    pool = parse_condor_status(checked_output(CONDOR_STATUS, timeout))
    for q in queues:
        # HTCondor has no queues: every queue sees the pool's slots
        counts[q["name"]] = jobs.get(q["batch_name"] if queue_attr else None, Counts())
        slots[q["name"]] = pool
    version = b.optional("version") or _version_from(
        checked_output(["condor_version"], timeout), r"\$CondorVersion:\s+(\S+)")
    return "condor", version, counts, slots


def _count(sec: Section, key: str, default: int = 0) -> int:
    return sec.int(key, default, minimum=0)


def static_state(b: Section, queues: list[dict[str, Any]]
                 ) -> tuple[str, str, dict[str, Counts], dict[str, Slots]]:
    """``system = static``: no batch system is asked; each ``[queue:NAME]``
    gives ``running_jobs`` / ``waiting_jobs`` (``VO=N`` pairs), ``slots`` and
    ``free_slots``; ``[batch]`` names the ``lrms`` and its ``version``."""
    lrms = b.word("lrms")
    version = b.word("version")
    counts: dict[str, Counts] = {}
    slots: dict[str, Slots] = {}
    for q in queues:
        sec = q["section"]
        jobs = Counts()
        for key, counter in (("running_jobs", jobs.running), ("waiting_jobs", jobs.waiting)):
            for vo, text in sec.mapping(key).items():
                if vo not in q["vos"]:
                    raise sec.error(key, f"{vo!r} is not among the queue's vos")
                if not text.isdigit():
                    raise sec.error(key, f"{vo}={text}: not a number of jobs")
                counter[vo] += int(text)
        total, free = _count(sec, "slots"), _count(sec, "free_slots")
        if free > total:
            raise sec.error("free_slots", f"more free slots ({free}) than slots ({total})")
        counts[q["name"]], slots[q["name"]] = jobs, Slots(total, free)
    return lrms, version, counts, slots


def build_model(cfg: ConfigFile, now: datetime) -> dict[str, Any]:
    c = cfg.section("ce")
    host = c.host("host")
    site = site_name(c, "site")
    impl = c.choice("implementation", tuple(IMPLEMENTATIONS))
    interface, job_description, default_port = IMPLEMENTATIONS[impl]
    port = c.int("port", default_port, minimum=1)
    vos = c.vos("vos")
    default_se = c.optional("default_se")
    endpoint_url = c.url("endpoint_url", f"condor://{host}:{port}" if impl == "HTCondorCE"
                         else f"https://{host}:{port}/arex")
    ce_version = c.word("implementation_version")
    validity = c.int("validity", 3600, minimum=60)
    k = cfg.section("cluster")
    nodes = k.int("worker_nodes", minimum=1)
    cores = k.int("cores_per_node", minimum=1)
    sockets = k.int("sockets_per_node", 2, minimum=1)
    memory = k.int("memory_per_node_mb", minimum=1)
    hs06 = k.optional("hepspec06_per_core")
    try:
        hs06_value = float(hs06) if hs06 is not None else None
    except ValueError:
        raise k.error("hepspec06_per_core", f"not a number: {hs06!r}") from None
    cluster = {
        "nodes": nodes, "cores_per_node": cores, "sockets_per_node": sockets,
        "total_cpus": nodes * cores, "memory_mb": memory,
        "memory_per_core_mb": max(1, memory // cores),
        "os_family": k.choice("os_family", ("linux", "macosx", "windows", "solaris"), "linux"),
        "os_name": k.str("os_name"), "os_release": k.word("os_release"),
        "os_codename": k.str("os_codename", k.str("os_release")),
        "platform": k.word("platform", "x86_64"),
        "cpu_vendor": k.str("cpu_vendor"), "cpu_model": k.str("cpu_model"),
        "cpu_clock": k.int("cpu_clock_mhz", minimum=1),
        "hs06_per_core": f"{hs06_value:g}" if hs06_value else None,
        # GLUE 1.3 publishes SpecInt2000 units: 1 HEP-SPEC06 = 250 SI00
        "si00": round(hs06_value * 250) if hs06_value else 0,
        "runtime_environments": k.list("runtime_environments", default=("LCG-2", "GLITE-3_2_0")),
        "tmp_dir": k.str("tmp_dir", "/tmp"), "app_dir": k.str("application_dir", "/cvmfs"),
    }
    queues = _queues(cfg, vos)
    lrms, lrms_version, counts, slots = batch_state(cfg.section("batch"), queues, vos)
    cfg.check_unused()

    service_id = f"{host}_ComputingElement"
    endpoint_id = f"{host}_{interface}"
    resource_id = f"{host}_{cluster['platform']}_{re.sub(r'[^A-Za-z0-9]', '', cluster['os_name'])}"
    all_running = all_waiting = 0
    for q in queues:
        jobs, s = counts[q["name"]], slots[q["name"]]
        q["running"] = sum(jobs.running.values())
        q["waiting"] = sum(jobs.waiting.values())
        q["total"] = q["running"] + q["waiting"]
        q["slots"], q["free_slots"] = s.total, s.free
        all_running += q["running"]
        all_waiting += q["waiting"]
        q["ce_id"] = f"{host}:{port}/{impl.lower()}-{lrms}-{q['name']}"
        q["ert"], q["wrt"] = _response_times(q["waiting"], s, q["max_wall"])
        q["rules"] = vo_rules(q["vos"])
        q["shares"] = []
        for vo in q["vos"]:
            running, waiting = jobs.running[vo], jobs.waiting[vo]
            ert, wrt = _response_times(waiting, s, q["max_wall"])
            q["shares"].append({
                "vo": vo, "id": f"{host}_{q['name']}_{vo}", "policy_id": f"{host}_{q['name']}_{vo}_policy",
                "running": running, "waiting": waiting, "total": running + waiting,
                "free_slots": min(s.free, max(0, q["max_running"] - q["running"])),
                "ert": ert, "wrt": wrt,
            })
    compute = {
        "host": host, "site": site, "implementation": impl, "version": ce_version,
        "interface": interface, "job_description": job_description, "port": port,
        "endpoint_url": endpoint_url, "service_id": service_id, "endpoint_id": endpoint_id,
        "policy_id": f"{endpoint_id}_policy", "manager_id": f"{service_id}_Manager",
        "resource_id": resource_id, "benchmark_id": f"{resource_id}_hep-spec06",
        "lrms": lrms, "lrms_version": lrms_version, "default_se": default_se,
        "running": all_running, "waiting": all_waiting, "total": all_running + all_waiting,
        "queues": queues,
        "other_info": [f"InfoProviderName=bdii-provider-{NAME}",
                       f"InfoProviderVersion={provider_version()}", f"InfoProviderHost={host}"],
    }
    return {"compute": compute, "cluster": cluster, "vos": vos, "vo_rules": vo_rules(vos),
            "created": glue_time(now), "validity": validity,
            "suffix13": RESOURCE_SUFFIX13, "suffix20": RESOURCE_SUFFIX20}


def _response_times(waiting: int, slots: Slots, max_wall_minutes: int) -> tuple[int, int]:
    """(estimated, worst) seconds before a new job starts: zero with a free
    slot and nobody waiting, else the waiting jobs' share of the slots times
    half (estimated) or all (worst) of the queue's wall time."""
    if slots.free > waiting:
        return 0, 0
    rounds = math.ceil((waiting + 1) / max(1, slots.total))
    return rounds * max_wall_minutes * 30, rounds * max_wall_minutes * 60


def generate(cfg: ConfigFile, now: datetime) -> str:
    return render_all(TEMPLATES, build_model(cfg, now))


def main(argv: list[str] | None = None) -> int:
    return main_for(NAME, "Print GLUE 1.3 and GLUE 2.0 LDIF for a compute element and its "
                    "batch system (Slurm, HTCondor, or static numbers).", generate, argv)


if __name__ == "__main__":
    sys.exit(main())
