"""Storage element information provider for a POSIX storage (the StoRM
model): a file system (GPFS, Lustre, any mount) exported through WebDAV,
xroot and optionally SRM, one storage area per VO.

    bdii-provider-se -c /etc/bdii/providers/se-posix.conf
    python -m bdii.providers.se -c etc/providers/se-posix.conf [--now TIME]

GLUE 1.3: ``GlueSE``, ``GlueSEAccessProtocol`` per data protocol,
``GlueSEControlProtocol`` for SRM, ``GlueSA`` + ``GlueVOInfo`` per area and
VO. GLUE 2.0: ``StorageService``, ``StorageServiceCapacity``,
``StorageAccessProtocol`` and ``StorageEndpoint`` + ``AccessPolicy`` per
protocol, ``StorageShare`` + ``StorageShareCapacity`` + ``MappingPolicy``
per area.

Capacities: ``os.statvfs`` of each area's path (total = blocks, free =
blocks available to users, used = total - free), or the area's
``quota_command``, whose first output line is ``TOTAL_BYTES USED_BYTES``.
The service totals add up the areas, counting each file system once.
Units: GLUE 2.0 sizes and GLUE 1.3 ``*OnlineSize`` / ``GlueSESize*`` in GB
(10^9 bytes), ``GlueSAState*Space`` in kB (10^3 bytes), rounded down.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Any

from bdii.providers.common import (
    RESOURCE_SUFFIX13,
    RESOURCE_SUFFIX20,
    ConfigError,
    ConfigFile,
    ProviderError,
    glue_time,
    main_for,
    provider_version,
    render_all,
    run_command,
    vo_rules,
)
from bdii.providers.site import site_name

NAME = "se"
TEMPLATES = ("se.ldif.j2",)
GB, KB = 10**9, 10**3
# protocol type -> (GLUE 2.0 interface name, capabilities)
PROTOCOLS = {
    "https": ("https", ["data.access.flatfiles", "data.transfer"]),
    "webdav": ("webdav", ["data.access.flatfiles", "data.transfer"]),
    "xroot": ("xroot", ["data.access.flatfiles", "data.transfer"]),
    "gsiftp": ("gsiftp", ["data.transfer"]),
    "srm": ("SRM", ["data.management.storage", "data.management.transfer"]),
}


def measure(path: str) -> tuple[int, int, tuple[int, int]]:
    """(total, used) bytes of the file system holding `path`, and its identity."""
    try:
        st = os.statvfs(path)
        dev = os.stat(path).st_dev
    except OSError as e:
        raise ProviderError(f"cannot measure {path}: {e.strerror or e}") from None
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    return total, total - free, (dev, 0)


def quota(command: str, timeout: float) -> tuple[int, int]:
    res = run_command(command, timeout)
    if res.status != 0:
        raise ProviderError(f"quota command {command!r}: "
                            f"{res.error or f'exited with status {res.status}'}")
    fields = res.first_line.split()
    if len(fields) < 2 or not all(f.isdigit() for f in fields[:2]):
        raise ProviderError(f"quota command {command!r}: expected 'TOTAL_BYTES USED_BYTES', "
                            f"got {res.first_line!r}")
    return int(fields[0]), int(fields[1])


def build_model(cfg: ConfigFile, now: datetime) -> dict[str, Any]:
    s = cfg.section("se")
    host = s.host("host")
    site = site_name(s, "site")
    validity = s.int("validity", 3600, minimum=60)
    service_id = f"{host}_StorageService"
    protocols, control = [], []
    for label, p in cfg.prefixed("protocol"):
        ptype = p.choice("type", tuple(PROTOCOLS), label if label in PROTOCOLS else None)
        interface, caps = PROTOCOLS[ptype]
        url = p.url("url")
        port = url.split("://", 1)[1].split("/", 1)[0].rpartition(":")[2]
        item = {
            "name": label, "type": ptype, "interface": interface, "url": url,
            "port": int(port) if port.isdigit() else 0,
            "version": p.word("version", "2.2" if ptype == "srm" else "1.0"),
            "capabilities": caps, "endpoint_id": f"{service_id}_{label}",
            "policy_id": f"{service_id}_{label}_policy",
            "security": p.list("security", default=("X509",)),
        }
        item["protocol_id"] = f"{service_id}_{label}_{item['version']}"
        (control if ptype == "srm" else protocols).append(item)
    if not protocols:
        raise ConfigError(f"{cfg.path}: no [protocol:NAME] section for data access")
    timeout = s.int("quota_timeout", 30, minimum=1)
    areas, seen_fs = [], set()
    total = used = 0
    for label, a in cfg.prefixed("area"):
        path = a.str("path")
        if not path.startswith("/"):
            raise a.error("path", f"not an absolute path: {path!r}")
        vos = a.vos("vos", default=[label])
        command = a.optional("quota_command")
        if command:
            atotal, aused = quota(command, timeout)
            fs = ("quota", label)
        else:
            atotal, aused, fs = measure(path)
        aused = min(aused, atotal)
        if fs not in seen_fs:
            seen_fs.add(fs)
            total, used = total + atotal, used + aused
        free = atotal - aused
        areas.append({
            "name": label, "path": path, "vos": vos, "rules": vo_rules(vos),
            "id": f"{host}_{label}", "capacity_id": f"{host}_{label}_capacity",
            "policy_id": f"{host}_{label}_policy",
            "total_gb": atotal // GB, "used_gb": aused // GB, "free_gb": free // GB,
            "used_kb": aused // KB, "free_kb": free // KB,
            "voinfo": [{"vo": vo, "id": f"{label}:{vo}"} for vo in vos],
        })
    if not areas:
        raise ConfigError(f"{cfg.path}: no [area:NAME] section")
    all_vos = sorted({vo for a in areas for vo in a["vos"]})
    storage = {
        "host": host, "site": site, "service_id": service_id,
        "capacity_id": f"{service_id}_capacity",
        "implementation": s.word("implementation"),
        "version": s.word("implementation_version"),
        "status": s.choice("status", ("Production", "Draining", "Queuing", "Closed"), "Production"),
        "protocols": protocols, "control": control, "areas": areas,
        "total_gb": total // GB, "used_gb": used // GB, "free_gb": (total - used) // GB,
        "other_info": [f"InfoProviderName=bdii-provider-{NAME}",
                       f"InfoProviderVersion={provider_version()}", f"InfoProviderHost={host}"],
    }
    cfg.check_unused()
    return {"storage": storage, "vo_rules": vo_rules(all_vos), "created": glue_time(now),
            "validity": validity, "suffix13": RESOURCE_SUFFIX13, "suffix20": RESOURCE_SUFFIX20}


def generate(cfg: ConfigFile, now: datetime) -> str:
    return render_all(TEMPLATES, build_model(cfg, now))


def main(argv: list[str] | None = None) -> int:
    return main_for(NAME, "Print GLUE 1.3 and GLUE 2.0 LDIF for a POSIX storage element "
                    "with one storage area per VO.", generate, argv)


if __name__ == "__main__":
    sys.exit(main())
