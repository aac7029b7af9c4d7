"""DN rewriting for the site and top levels, on RDN lists (never on text).

The exact forms the legacy levels produce (DESIGN.md, Directory tree):

- site (name S): `X,mds-vo-name=resource,o=grid` and `X,mds-vo-name=local,o=grid`
  become `X,mds-vo-name=S,o=grid`; the `o=glue` suffix of every GLUE 2.0 DN
  becomes `GLUE2DomainID=S,o=glue`.
- top: `X,mds-vo-name=SITE,o=grid` becomes `X,mds-vo-name=SITE,mds-vo-name=local,o=grid`;
  the `o=glue` suffix becomes `GLUE2GroupID=grid,o=glue`.

A fetched entry that already sits where the rewrite would put it (our own
site name at site level, `mds-vo-name=local` / `GLUE2GroupID=grid` at top
level) came back from ourselves or from a loop between BDIIs: it is
dropped (`Recursive`), never rewritten twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dn import DN
from .entry import Entry
from .matching import attr_key

GRID = DN.parse("o=grid")
GLUE = DN.parse("o=glue")
LOCAL = DN.parse("mds-vo-name=local,o=grid")
RESOURCE = DN.parse("mds-vo-name=resource,o=grid")
GRID_GROUP = DN.parse("GLUE2GroupID=grid,o=glue")
MDS_KEY = attr_key("mds-vo-name")


class Recursive(Exception):
    """The entry is already in our own tree: drop it."""


@dataclass(frozen=True, slots=True)
class Rewriter:
    """Where fetched GLUE 1.3 and 2.0 DNs go at one level."""

    mode: str  # "site" | "top"
    site: str | None = None

    def __post_init__(self) -> None:
        if self.mode == "site" and not self.site:
            raise ValueError("a site-level rewrite needs the site name")

    @property
    def own_grid(self) -> DN:
        """Our GLUE 1.3 tree: fetched DNs already there are recursive."""
        if self.mode == "site":
            return GRID.child((("Mds-Vo-name", self.site or ""),))
        return LOCAL

    @property
    def own_glue(self) -> DN:
        if self.mode == "site":
            return GLUE.child((("GLUE2DomainID", self.site or ""),))
        return GRID_GROUP

    def dn(self, dn: DN) -> DN:
        """The rewritten DN; raises Recursive for our own entries."""
        if dn.is_within(GLUE):
            if dn.is_within(self.own_glue):
                raise Recursive(str(dn))
            return dn.replace_suffix(GLUE, self.own_glue)
        if dn.is_within(GRID):
            if dn.is_within(self.own_grid):
                raise Recursive(str(dn))
            if self.mode == "site":
                for old in (RESOURCE, LOCAL):
                    if dn.is_within(old):
                        return dn.replace_suffix(old, self.own_grid)
                return dn  # another site's or an odd tree: kept as published
            return dn.replace_suffix(GRID, LOCAL)
        return dn

    def entry(self, entry: Entry) -> Entry:
        """The entry under its rewritten DN; `mds-vo-name` values follow the DN."""
        new_dn = self.dn(entry.dn)
        if new_dn is entry.dn:
            return entry
        attrs = entry.attrs
        leaf = new_dn.rdns[0]
        if len(leaf) == 1 and attr_key(leaf[0][0]) == MDS_KEY and MDS_KEY in attrs:
            attrs[MDS_KEY] = (attrs[MDS_KEY][0], (leaf[0][1],))
        return Entry(new_dn, attrs)
