"""The BDII's own provider: the running BDII as a GLUE service.

    bdii-provider-bdii -c /etc/bdii/providers/bdii-site.conf
    python -m bdii.providers.bdii -c etc/providers/bdii-site.conf [--now TIME]

GLUE 1.3: a ``GlueService`` of type ``bdii_site`` or ``bdii_top`` whose
endpoint is the LDAP URL of the BDII's GLUE 1.3 tree
(``ldap://HOST:PORT/mds-vo-name=SITE,o=grid``, or ``mds-vo-name=local,o=grid``
at the top level). GLUE 2.0: the ``Service`` and its ``Endpoint`` with the
LDAP URL of the GLUE 2.0 tree (``GLUE2DomainID=SITE,o=glue`` or
``GLUE2GroupID=grid,o=glue``) and an ``ALL`` access policy. The health state
is ok: the provider runs inside the BDII it describes (a dead BDII publishes
nothing, and its site then marks it Unknown after BDII_DELETE_DELAY).

Where the entries go (``level``): ``resource`` (the default: under
``mds-vo-name=resource,o=grid`` / ``GLUE2GroupID=resource,o=glue``, for a
resource BDII whose site BDII fetches and moves them, as any provider's);
``site`` (directly in the site BDII's own trees, ``mds-vo-name=SITE,o=grid``
and ``GLUE2DomainID=SITE,o=glue``); ``top`` (in the top BDII's trees,
``mds-vo-name=local,o=grid`` and ``GLUE2GroupID=grid,o=glue``). The BDII
runs this provider itself at the site and top levels with the matching
level (``BDII_SELF_PROVIDER``), so its local entries need no rewriting.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from bdii.providers.common import (
    RESOURCE_SUFFIX13,
    RESOURCE_SUFFIX20,
    ConfigFile,
    glue_time,
    main_for,
    provider_version,
    render_all,
)
from bdii.providers.site import site_name

NAME = "bdii"
TEMPLATES = ("service.ldif.j2",)
CAPABILITIES = ["information.discovery", "information.model", "information.monitoring"]
# level -> (GLUE 1.3 suffix, GLUE 2.0 suffix) of the published entries, given the site name
LEVELS = {
    "resource": lambda site: (RESOURCE_SUFFIX13, RESOURCE_SUFFIX20),
    "site": lambda site: (f"mds-vo-name={site},o=grid", f"GLUE2DomainID={site},o=glue"),
    "top": lambda site: ("mds-vo-name=local,o=grid", "GLUE2GroupID=grid,o=glue"),
}


def build_model(cfg: ConfigFile, now: datetime) -> dict[str, Any]:
    b = cfg.section("bdii")
    kind = b.choice("type", ("bdii_site", "bdii_top"))
    host = b.host("host")
    port = b.int("port", 2170, minimum=1)
    if port > 65535:
        raise b.error("port", f"not a TCP port: {port}")
    site = site_name(b, "site")
    base13, base20 = (("mds-vo-name=local,o=grid", "GLUE2GroupID=grid,o=glue") if kind == "bdii_top"
                      else (f"mds-vo-name={site},o=grid", f"GLUE2DomainID={site},o=glue"))
    level = b.choice("level", tuple(LEVELS), "resource")
    suffix13, suffix20 = LEVELS[level](site)
    version = b.word("version", provider_version())
    service_id = b.word("id", f"{host}_{kind}")
    service = {
        "host": host, "type": kind, "id": service_id, "site": site,
        "name": f"{site} {'top-level' if kind == 'bdii_top' else 'site'} BDII",
        "vos": [], "rules": ["ALL"], "quality_level": "production",
        "serving_state": "production", "capabilities": CAPABILITIES,
        "implementation": "bdii", "implementor": None, "version": version,
        "other_info": [f"InfoProviderName=bdii-provider-{NAME}",
                       f"InfoProviderVersion={provider_version()}",
                       f"InfoProviderHost={host}"],
    }
    # GLUE 1.3 clients read the o=grid URL in GlueServiceEndpoint, GLUE 2.0
    # clients the o=glue URL in GLUE2EndpointURL (as the legacy
    # glite-info-provider-service-bdii published them).
    endpoints = [{
        "name": f"{kind} LDAP endpoint", "id": f"{service_id}_ldap",
        "policy_id": f"{service_id}_ldap_policy",
        "url": f"ldap://{host}:{port}/{base20}",
        "url13": f"ldap://{host}:{port}/{base13}",
        "interface_name": kind, "interface_version": "1.0.0", "technology": None,
        "capabilities": CAPABILITIES,
        "semantics": "https://gridinfo-documentation.readthedocs.io/",
        "glue13_type": kind,
        "data": [("glite-info-service_version", "1.0"), ("glite-info-service_hostname", host)],
    }]
    validity = b.int("validity", 3600, minimum=60)
    cfg.check_unused()
    return {"service": service, "endpoints": endpoints,
            "health": {"state": "ok", "status13": "OK", "info": "BDII Running"},
            "created": glue_time(now), "validity": validity,
            "suffix13": suffix13, "suffix20": suffix20}


def generate(cfg: ConfigFile, now: datetime) -> str:
    return render_all(TEMPLATES, build_model(cfg, now))


def main(argv: list[str] | None = None) -> int:
    return main_for(NAME, "Print this BDII's own GLUE 1.3 and GLUE 2.0 service entries "
                    "(bdii_site or bdii_top) with its LDAP URLs.", generate, argv)


if __name__ == "__main__":
    sys.exit(main())
