"""Generic service information provider (what glite-info-service and
glite-info-glue2-simple did).

    bdii-provider-service -c /etc/bdii/providers/webdav.conf
    python -m bdii.providers.service -c etc/providers/webdav.conf [--now TIME]

One service with one or more endpoints (``[endpoint:NAME]`` sections). GLUE
1.3: one ``GlueService`` per endpoint with its ``GlueServiceData``; GLUE 2.0:
the ``Service``, each ``Endpoint`` and its ``AccessPolicy`` (``VO:<vo>``
rules, or ``ALL`` when no VO is configured).

Health: ``status_command`` is run (no shell) with the Nagios plugin
convention: exit 0 ok, 1 warning, 2 critical, anything else (or no answer
within ``status_timeout`` seconds, or not runnable) unknown; the first line
of its output is the health state info. Version: ``version``, or the first
line of ``version_command``'s output (``unknown`` when it fails).

Example configurations for common services are in ``etc/providers/``.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from bdii.providers.common import (
    RESOURCE_SUFFIX13,
    RESOURCE_SUFFIX20,
    ConfigError,
    ConfigFile,
    Section,
    glue_time,
    main_for,
    provider_version,
    render_all,
    run_command,
    vo_rules,
)
from bdii.providers.site import site_name

NAME = "service"
TEMPLATES = ("service.ldif.j2",)
QUALITY_LEVELS = ("production", "pre-production", "testing", "development")
SERVING_STATES = ("production", "draining", "queueing", "closed")
# Nagios plugin exit codes -> (GLUE 2.0 EndpointHealthState, GLUE 1.3 GlueServiceStatus)
HEALTH = {0: ("ok", "OK"), 1: ("warning", "Warning"), 2: ("critical", "Critical")}
UNKNOWN = ("unknown", "Unknown")


def health_from_command(command: str, timeout: float) -> dict[str, str]:
    """Run the status command: exit code -> health state, first line -> info."""
    res = run_command(command, timeout)
    if res.status is None:
        state, status13 = UNKNOWN
        info = res.error or "status command failed"
    else:
        state, status13 = HEALTH.get(res.status, UNKNOWN)
        info = res.first_line or f"status command exited with status {res.status}"
    return {"state": state, "status13": status13, "info": info[:250]}


def version_of(sec: Section) -> str:
    fixed = sec.optional("version")
    command = sec.optional("version_command")
    if fixed and command:
        raise sec.error("version_command", "give version or version_command, not both")
    if fixed:
        return fixed
    if not command:
        raise sec.error("version", "missing: give version or version_command")
    res = run_command(command, sec.int("status_timeout", 30, minimum=1))
    line = res.first_line if res.status == 0 else ""
    return line.split()[0] if line else "unknown"


def endpoints_of(cfg: ConfigFile, service: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for label, e in cfg.prefixed("endpoint"):
        interface = e.word("interface_name")
        out.append({
            "name": label,
            "id": f"{service['id']}_{label}",
            "policy_id": f"{service['id']}_{label}_policy",
            "url": (url := e.url("url")),
            "url13": url,
            "interface_name": interface,
            "interface_version": e.word("interface_version", service["version"]),
            "technology": e.optional("technology"),
            "capabilities": e.list("capabilities", default=tuple(service["capabilities"])),
            "semantics": e.url("semantics", "https://gridinfo-documentation.readthedocs.io/"),
            "glue13_type": e.word("glue13_type", interface),
            "data": [("glite-info-service_version", "1.0"),
                     ("glite-info-service_hostname", service["host"])],
        })
    if not out:
        raise ConfigError(f"{cfg.path}: no [endpoint:NAME] section")
    return out


def service_model(cfg: ConfigFile, now: datetime, s: Section) -> dict[str, Any]:
    """The keys of [service] every service-like provider shares."""
    host = s.host("host")
    stype = s.word("type")
    vos = s.vos("vos", default=[])
    version = version_of(s)
    return {
        "host": host,
        "type": stype,
        "id": s.word("id", f"{host}_{stype}"),
        "name": s.str("name", f"{stype} on {host}"),
        "site": site_name(s, "site"),
        "vos": vos,
        "rules": vo_rules(vos) or ["ALL"],
        "quality_level": s.choice("quality_level", QUALITY_LEVELS, "production"),
        "serving_state": s.choice("serving_state", SERVING_STATES, "production"),
        "capabilities": s.list("capabilities"),
        "implementation": s.word("implementation", stype),
        "implementor": s.optional("implementor"),
        "version": version,
        "other_info": [f"InfoProviderName=bdii-provider-{NAME}",
                       f"InfoProviderVersion={provider_version()}",
                       f"InfoProviderHost={host}"],
    }


def build_model(cfg: ConfigFile, now: datetime) -> dict[str, Any]:
    s = cfg.section("service")
    service = service_model(cfg, now, s)
    health = health_from_command(s.str("status_command"), s.int("status_timeout", 30, minimum=1))
    endpoints = endpoints_of(cfg, service)
    validity = s.int("validity", 3600, minimum=60)
    cfg.check_unused()
    return {"service": service, "endpoints": endpoints, "health": health,
            "created": glue_time(now), "validity": validity,
            "suffix13": RESOURCE_SUFFIX13, "suffix20": RESOURCE_SUFFIX20}


def generate(cfg: ConfigFile, now: datetime) -> str:
    return render_all(TEMPLATES, build_model(cfg, now))


def main(argv: list[str] | None = None) -> int:
    return main_for(NAME, "Print GLUE 1.3 and GLUE 2.0 LDIF for one service and its "
                    "endpoints (resource level).", generate, argv)


if __name__ == "__main__":
    sys.exit(main())
