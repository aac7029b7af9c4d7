"""Site information provider: who and where the site is.

    bdii-provider-site -c /etc/bdii/providers/site.conf
    python -m bdii.providers.site -c etc/providers/site.conf [--now TIME]

GLUE 1.3: one ``GlueSite`` under ``mds-vo-name=resource,o=grid``. GLUE 2.0:
the ``AdminDomain`` (``GLUE2DomainID=SITE,GLUE2GroupID=resource,o=glue``)
with its ``Location`` and one ``Contact`` per kind (sysadmin, security, user
support) below it (what glite-info-site published). Everything comes from
the configuration; the output changes only with it and the clock.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from typing import Any

from bdii.providers.common import (
    RESOURCE_SUFFIX13,
    RESOURCE_SUFFIX20,
    ConfigFile,
    Section,
    glue_time,
    main_for,
    render_all,
)

NAME = "site"
TEMPLATES = ("site.ldif.j2",)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def _email(sec: Section, key: str, default: str | None = None) -> str:
    value = sec.str(key, default)
    value = value.removeprefix("mailto:")
    if not _EMAIL.match(value):
        raise sec.error(key, f"not an e-mail address: {value!r}")
    return value


def site_name(sec: Section, key: str = "site") -> str:
    """A GOCDB site name (it becomes mds-vo-name and GLUE2DomainID)."""
    value = sec.str(key)
    if not _SITE_NAME.match(value):
        raise sec.error(key, f"not a site name (letters, digits, . _ -): {value!r}")
    return value


def build_model(cfg: ConfigFile, now: datetime) -> dict[str, Any]:
    s = cfg.section("site")
    name = site_name(s, "name")
    email = _email(s, "email")
    contacts = [
        {"type": "sysadmin", "email": _email(s, "sysadmin_email", email)},
        {"type": "security", "email": _email(s, "security_email")},
        {"type": "usersupport", "email": _email(s, "user_support_email")},
    ]
    for c in contacts:
        c["id"] = f"{name}_{c['type']}"
    other = s.lines("other_info")
    other += [f"GRID={g}" for g in s.list("grids", default=())]
    if s.has("tier"):
        other.append(f"TIER={s.int('tier')}")
    for item in other:
        if "=" not in item:
            raise s.error("other_info", f"expected KEY=VALUE lines, got {item!r}")
    site = {
        "name": name,
        "description": s.str("description"),
        "email": email,
        "sysadmin_email": contacts[0]["email"],
        "security_email": contacts[1]["email"],
        "user_support_email": contacts[2]["email"],
        "location": s.str("location"),
        "location_id": f"{name}_location",
        "country": s.str("country"),
        "latitude": f"{s.float('latitude', -90, 90):.4f}",
        "longitude": f"{s.float('longitude', -180, 180):.4f}",
        "web": s.url("web"),
        "other_info": other,
        "contacts": contacts,
    }
    validity = s.int("validity", 3600, minimum=60)
    cfg.check_unused()
    return {"site": site, "created": glue_time(now), "validity": validity,
            "suffix13": RESOURCE_SUFFIX13, "suffix20": RESOURCE_SUFFIX20}


def generate(cfg: ConfigFile, now: datetime) -> str:
    return render_all(TEMPLATES, build_model(cfg, now))


def main(argv: list[str] | None = None) -> int:
    return main_for(NAME, "Print the site's GLUE 1.3 GlueSite and GLUE 2.0 AdminDomain, "
                    "Location and Contacts (resource level).", generate, argv)


if __name__ == "__main__":
    sys.exit(main())
