"""The legacy list of remote sources (`BDII_URLS_FILE`, GIP format).

One source per line, `NAME ldap://host:port/base`, `#` comments. A bad line
is reported with file and line and skipped; the others are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .dn import DN
from .errors import DNError, Problem

GRID = DN.parse("o=grid")
GLUE = DN.parse("o=glue")


@dataclass(frozen=True, slots=True)
class RemoteSource:
    """One remote LDAP server and the trees to fetch from it."""

    name: str
    url: str
    host: str
    port: int
    bases: tuple[str, ...]  # GLUE 1.3 base first, then the GLUE 2.0 one


def glue2_base(base: DN) -> DN | None:
    """The GLUE 2.0 tree that goes with a GLUE 1.3 `mds-vo-name=X,o=grid`
    base, as glite-info-provider-ldap fetched it."""
    if len(base) != 2 or base.parent() != GRID or base.rdns[0][0][0].lower() != "mds-vo-name":
        return None
    x = base.rdns[0][0][1]
    if x.lower() == "resource":
        return DN.parse("GLUE2GroupID=resource,o=glue")
    return GLUE.child((("GLUE2DomainID", x),))


def parse_url(url: str) -> tuple[str, int, DN]:
    """`ldap://host:port/base` -> (host, port, base); ValueError with the reason."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "ldap":
        raise ValueError(f"not an ldap:// URL: {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    try:
        port = parts.port or 389
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    base_text = unquote(parts.path[1:].split("?", 1)[0]) if parts.path else ""
    try:
        base = DN.parse(base_text)
    except DNError as exc:
        raise ValueError(f"bad base DN in {url!r}: {exc}") from None
    if not base:
        raise ValueError(f"no base DN in {url!r}")
    return parts.hostname, port, base


def parse_urls(text: str, source: str) -> tuple[list[RemoteSource], list[Problem]]:
    sources: list[RemoteSource] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            problems.append(Problem(source, f"expected 'NAME ldap://host:port/base', got {raw.strip()!r}", no))
            continue
        name, url = fields
        try:
            host, port, base = parse_url(url)
        except ValueError as exc:
            problems.append(Problem(source, str(exc), no))
            continue
        if not (base.is_within(GRID) or base.is_within(GLUE)):
            problems.append(Problem(source, f"base {base} is not under o=grid or o=glue", no))
            continue
        if name in seen:
            problems.append(Problem(source, f"source name {name!r} used twice; later line skipped", no))
            continue
        seen.add(name)
        bases = [str(base)]
        extra = glue2_base(base)
        if extra is not None:
            bases.append(str(extra))
        sources.append(RemoteSource(name, url, host, port, tuple(bases)))
    return sources, problems
