"""The list of sites a top-level BDII aggregates, from GOCDB's `get_site_list`.

The XML is the public GOCDB programmatic interface's answer: one `<SITE>`
element per site with `NAME` and `GIIS_URL` (the site BDII's LDAP URL).
Sites without a GIIS_URL are left out quietly; a GIIS_URL that is not a
usable LDAP URL is reported with the site's name. When the elements carry
`CERTIFICATION_STATUS` / `PRODUCTION_INFRASTRUCTURE` (older GOCDB answers,
local files), those are filtered here too; otherwise the filters go into
the query string (see `site_list_url`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import Problem
from .urls import RemoteSource, glue2_base, parse_url


def site_list_url(url: str, certification: Sequence[str], production: Sequence[str]) -> str:
    """Add `method=get_site_list` and the status filters unless the URL has them."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("method", "get_site_list")
    if certification and "certification_status" not in query:
        query["certification_status"] = ",".join(certification)
    if production and "production_status" not in query:
        query["production_status"] = ",".join(production)
    return urlunsplit(parts._replace(query=urlencode(query)))


def parse_site_list(data: bytes, source: str, certification: Sequence[str] = ("Certified",),
                    production: Sequence[str] = ("Production",)) -> tuple[list[RemoteSource], list[Problem]]:
    """Sites of a get_site_list answer as remote sources; raises ValueError if it is not one."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"{source}: not XML: {exc}") from None
    if root.tag != "results":
        raise ValueError(f"{source}: not a GOCDB answer (root element <{root.tag}>)")
    cert = {c.lower() for c in certification}
    prod = {p.lower() for p in production}
    sources: list[RemoteSource] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for site in root.iter("SITE"):
        name = (site.get("NAME") or "").strip()
        url = (site.get("GIIS_URL") or "").strip()
        if not name or not url:
            continue
        status = site.get("CERTIFICATION_STATUS")
        if status is not None and cert and status.lower() not in cert:
            continue
        infra = site.get("PRODUCTION_INFRASTRUCTURE")
        if infra is not None and prod and infra.lower() not in prod:
            continue
        if name in seen:
            problems.append(Problem(source, f"site {name} listed twice; later entry skipped"))
            continue
        try:
            host, port, base = parse_url(url)
        except ValueError as exc:
            problems.append(Problem(source, f"site {name}: {exc}"))
            continue
        if port == 0:
            problems.append(Problem(source, f"site {name}: port 0 in GIIS_URL {url!r}"))
            continue
        seen.add(name)
        extra = glue2_base(base)
        bases = (str(base),) if extra is None else (str(base), str(extra))
        sources.append(RemoteSource(name, url, host, port, bases))
    return sources, problems
