"""FCR-style per-VO blacklists ("Freedom of Choice for Resources"), pure.

A VO's manager hides, for that VO only, the resources that fail the VO's
tests: the VO's values are taken out of the access rules of those
resources, so that brokers and clients of the VO stop finding them while
every other VO still does. Two input formats:

- legacy: LDIF modify records that `delete` VO values from
  `GlueCEAccessControlBaseRule`, `GlueSAAccessControlBaseRule`,
  `GlueServiceAccessControlBaseRule`/`GlueServiceAccessControlRule`,
  `GlueVOInfoAccessControlBaseRule` or `GLUE2PolicyRule` of one DN
  (what the legacy FCR plugin produced);
- declarative: one rule per line, `VO TYPE ID-or-glob`, TYPE one of
  `ce`, `se`, `service`, `site`, `#` comments.

Either way a rule blacklists one VO on a set of *resources* (`Unit`): a
GLUE 1.3 CE (its rules, and the VO's GlueVOView entries under it are
removed), a GLUE 1.3 SA (its rules, and the VO's GlueVOInfo entries), a
GLUE 1.3 service (both rule attributes), a GLUE 2.0 share or endpoint (the
VO's `GLUE2PolicyRule` values of its mapping/access policies — the
policies under it in the tree or naming it by foreign key — and a policy
left with no rule is removed). Other VOs' values are never touched.

Safety: a blacklist that would hide more than `max_share` of one VO's
resources is refused as a whole; the caller keeps the previous one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from urllib.parse import urlsplit

from .dn import DN
from .entry import Entry
from .errors import DNError, Problem
from .ldif import ChangeRecord, parse_ldif
from .matching import attr_key

TYPES = ("ce", "se", "service", "site")
LEGACY = "dn"  # the kind of a rule read from the legacy LDIF form

CE_RULE = "GlueCEAccessControlBaseRule"
SA_RULE = "GlueSAAccessControlBaseRule"
VOINFO_RULE = "GlueVOInfoAccessControlBaseRule"
SERVICE_RULES = ("GlueServiceAccessControlBaseRule", "GlueServiceAccessControlRule")
POLICY_RULE = "GLUE2PolicyRule"
POLICY_DOMAIN = "GLUE2PolicyUserDomainForeignKey"
RULE_ATTRS = frozenset(attr_key(a) for a in (CE_RULE, SA_RULE, VOINFO_RULE, *SERVICE_RULES, POLICY_RULE))

GRID = DN.parse("o=grid")
GLUE = DN.parse("o=glue")
LOCAL = DN.parse("mds-vo-name=local,o=grid")
GRID_GROUP = DN.parse("GLUE2GroupID=grid,o=glue")


@dataclass(frozen=True, slots=True)
class Rule:
    """One blacklist rule: VO `vo` loses the resources `pattern` names."""

    vo: str
    kind: str  # ce | se | service | site | dn (legacy)
    pattern: str  # an ID or glob; for "dn", the DN text
    source: str
    line: int

    @property
    def text(self) -> str:
        return f"{self.vo} {self.kind} {self.pattern}"

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True, slots=True)
class Blacklist:
    """The rules of one source, as read at `fetched`."""

    source: str
    rules: tuple[Rule, ...]
    fetched: float


@dataclass(frozen=True, slots=True)
class FcrInput:
    """One configured blacklist source as the shell got it this cycle.

    `data` is the copy to use (the last good one when the source failed,
    then `error` says why); None when there is no copy at all.
    """

    name: str  # "file" | "url"
    location: str
    data: bytes | None
    fetched: float | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RuleReport:
    """What one rule did: resources matched, of them hidden, entries changed."""

    rule: Rule
    matched: int
    changed: int
    hidden: tuple[DN, ...] = ()


@dataclass(frozen=True, slots=True)
class FcrStatus:
    """One blacklist source after this cycle (for o=infosys and `bdii explain`)."""

    name: str
    location: str
    state: str  # ok | stale | refused | failed
    in_force: Blacklist | None
    reports: tuple[RuleReport, ...] = ()
    error: str | None = None
    refusal: str | None = None
    problems: tuple[Problem, ...] = ()


# ------------------------------------------------------------------ parsing

_LINE = re.compile(r"\s*(\S+)\s+(\S+)\s+(\S+)\s*\Z")


def vo_of(value: str) -> str | None:
    """The VO an access rule value names: `VO:x`, `VOMS:/x/...`, or a bare `x`."""
    v = value.strip()
    low = v.lower()
    if low.startswith("vo:"):
        return v[3:].strip() or None
    if low.startswith("voms:/"):
        return v[6:].split("/", 1)[0] or None
    if not v or ":" in v or "/" in v or low == "all":
        return None
    return v


def is_vo_value(value: str, vo: str) -> bool:
    """True if an access rule value grants `vo` (VO names compare case-insensitively)."""
    named = vo_of(value)
    return named is not None and named.lower() == vo.lower()


def parse_blacklist(data: bytes | str, source: str, fetched: float) -> tuple[Blacklist, list[Problem]]:
    """Read either format: LDIF when a record starts with `dn:`, else the rule lines."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if re.search(r"(?im)^dn:", text):
        return parse_legacy(text, source, fetched)
    return parse_rules(text, source, fetched)


def parse_rules(text: str, source: str, fetched: float) -> tuple[Blacklist, list[Problem]]:
    """The declarative form: `VO TYPE ID-or-glob` per line, `#` comments."""
    rules: list[Rule] = []
    problems: list[Problem] = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0]
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            problems.append(Problem(source, f"not a 'VO TYPE ID' line: {raw.strip()!r}", no))
            continue
        vo, kind, pattern = m.groups()
        if kind.lower() not in TYPES:
            problems.append(Problem(source, f"unknown TYPE {kind!r} (one of {', '.join(TYPES)})", no))
            continue
        rules.append(Rule(vo, kind.lower(), pattern, source, no))
    return Blacklist(source, tuple(rules), fetched), problems


def parse_legacy(text: str, source: str, fetched: float) -> tuple[Blacklist, list[Problem]]:
    """The legacy form: modify records deleting VO values from access rules of one DN."""
    parsed = parse_ldif(text, source)
    problems = list(parsed.problems)
    rules: list[Rule] = []
    for record in parsed.records:
        if not isinstance(record, ChangeRecord) or record.changetype != "modify":
            problems.append(Problem(source, "not a 'changetype: modify' record; skipped", record.line, record.dn))
            continue
        try:
            DN.parse(record.dn)
        except DNError as exc:
            problems.append(Problem(source, f"record skipped: {exc}", record.line))
            continue
        vos: list[str] = []
        for mod in record.mods:
            if mod.op != "delete" or attr_key(mod.attr) not in RULE_ATTRS:
                problems.append(Problem(source, f"only 'delete' of access rule attributes is a blacklist; "
                                                f"'{mod.op}: {mod.attr}' skipped", record.line, record.dn))
                continue
            if not mod.values:
                problems.append(Problem(source, f"'delete: {mod.attr}' without values would remove every VO; "
                                                "skipped", record.line, record.dn))
                continue
            for value in mod.values:
                vo = vo_of(value)
                if vo is None:
                    problems.append(Problem(source, f"{mod.attr}: {value!r} names no VO; skipped",
                                            record.line, record.dn))
                elif vo.lower() not in (v.lower() for v in vos):
                    vos.append(vo)
        rules.extend(Rule(vo, LEGACY, record.dn, source, record.line) for vo in vos)
    return Blacklist(source, tuple(rules), fetched), problems


# ---------------------------------------------------------------- resources

@dataclass(slots=True)
class Unit:
    """One blacklistable resource and the entries that carry its access rules.

    `edits` lists (dn, rule attributes, remove the entry when no rule is left).
    """

    kind: str  # ce | se | service
    anchor: DN
    site: str | None
    ids: set[str] = field(default_factory=set)  # lower-cased IDs and host names
    edits: list[tuple[DN, tuple[str, ...], bool]] = field(default_factory=list)

    def dns(self) -> set[DN]:
        return {self.anchor, *(dn for dn, _a, _d in self.edits)}


def _leaf(dn: DN) -> tuple[str, str]:
    attr, value = dn.rdn_values[0]
    return attr_key(attr), value


def site_of(dn: DN) -> str | None:
    """The site a DN belongs to: its `mds-vo-name` (other than local/resource) or `GLUE2DomainID`."""
    for attr, value in (rdn[0] for rdn in reversed(dn.rdns) if len(rdn) == 1):
        key = attr_key(attr)
        if key == "mds-vo-name" and value.lower() not in ("local", "resource"):
            return value
        if key == "glue2domainid":
            return value
    return None


def _host(url: str) -> str | None:
    try:
        host = urlsplit(url if "://" in url else f"//{url}").hostname
    except ValueError:
        return None
    return host or None


def _ancestor(dn: DN, key: str) -> DN | None:
    for a in dn.ancestors():
        if a.rdn_values and len(a.rdn_values) == 1 and _leaf(a)[0] == key:
            return a
    return None


# GLUE 1.3 service types that are a storage or compute element's front door,
# so that `se`/`ce` rules hide them along with the SE or CE.
SE_SERVICE_TYPES = ("srm", "webdav", "xroot", "gsiftp", "gridftp", "storage", "dcache", "eos")
CE_SERVICE_TYPES = ("htcondorce", "cream", "arc-ce", "org.nordugrid.arex", "gram", "computingelement")


def _service_kind(e: Entry) -> str:
    t = " ".join(e.get("GlueServiceType")).lower()
    if any(k in t for k in SE_SERVICE_TYPES):
        return "se"
    if any(k in t for k in CE_SERVICE_TYPES):
        return "ce"
    return "service"


def resources(entries: Mapping[DN, Entry]) -> list[Unit]:
    """Every blacklistable resource of the tree, with the entries it owns."""
    units: dict[DN, Unit] = {}
    children: dict[DN, list[Entry]] = {}
    policies: list[Entry] = []
    service_hosts: dict[DN, set[str]] = {}
    by_id: dict[str, list[Unit]] = {}
    for dn, e in entries.items():
        classes = {c.lower() for c in e.get("objectClass")}
        if "gluevoview" in classes or "gluevoinfo" in classes:
            parent = dn.parent()
            if parent is not None:
                children.setdefault(parent, []).append(e)
        elif "gluece" in classes:
            ce_id = (e.get("GlueCEUniqueID") or ("",))[0]
            u = units[dn] = Unit("ce", dn, site_of(dn), {ce_id.lower()})
            for h in (*e.get("GlueCEInfoHostName"), ce_id.split(":", 1)[0]):
                if h:
                    u.ids.add(h.lower())
            u.edits.append((dn, (CE_RULE,), False))
        elif "gluesa" in classes:
            u = units[dn] = Unit("se", dn, site_of(dn), {v.lower() for v in e.get("GlueSALocalID")})
            se = _ancestor(dn, "glueseuniqueid")
            if se is not None:
                u.ids.add(_leaf(se)[1].lower())
            u.edits.append((dn, (SA_RULE,), False))
        elif "glueservice" in classes:
            u = units[dn] = Unit(_service_kind(e), dn, site_of(dn), {v.lower() for v in e.get("GlueServiceUniqueID")})
            for url in (*e.get("GlueServiceEndpoint"), *e.get("GlueServiceAccessPointURL")):
                if (h := _host(url)) is not None:
                    u.ids.add(h.lower())
            u.edits.append((dn, SERVICE_RULES, False))
        elif "glue2share" in classes or "glue2endpoint" in classes:
            share = "glue2share" in classes
            own = (e.get("GLUE2ShareID") if share else e.get("GLUE2EndpointID")) or ("",)
            kind = ("ce" if {"glue2computingshare", "glue2computingendpoint"} & classes else
                    "se" if {"glue2storageshare", "glue2storageendpoint"} & classes else "service")
            u = units[dn] = Unit(kind, dn, site_of(dn), {own[0].lower()})
            by_id.setdefault(own[0].lower(), []).append(u)
            svc = _ancestor(dn, "glue2serviceid")
            if svc is not None:
                u.ids.add(_leaf(svc)[1].lower())
                if not share:
                    for url in e.get("GLUE2EndpointURL"):
                        if (h := _host(url)) is not None:
                            service_hosts.setdefault(svc, set()).add(h.lower())
        elif "glue2mappingpolicy" in classes or "glue2accesspolicy" in classes:
            policies.append(e)
    for u in units.values():
        for child in children.get(u.anchor, ()):
            attr = CE_RULE if u.kind == "ce" else VOINFO_RULE
            u.edits.append((child.dn, (attr,), True))
        svc = _ancestor(u.anchor, "glue2serviceid") if u.anchor.is_within(GLUE) else None
        if svc is not None:
            u.ids |= service_hosts.get(svc, set())
    for p in policies:
        owners = []
        parent = p.dn.parent()
        if parent is not None and parent in units:
            owners.append(units[parent])
        else:
            for fk in (*p.get("GLUE2MappingPolicyShareForeignKey"), *p.get("GLUE2AccessPolicyEndpointForeignKey")):
                owners.extend(by_id.get(fk.lower(), ()))
        for u in owners:
            u.edits.append((p.dn, (POLICY_RULE,), True))
    return list(units.values())


def grants(entries: Mapping[DN, Entry], unit: Unit, vo: str) -> bool:
    """True if the resource publishes an access rule for `vo`."""
    for dn, attrs, _delete in unit.edits:
        e = entries.get(dn)
        if e is not None and any(is_vo_value(v, vo) for a in attrs for v in e.get(a)):
            return True
    return False


@lru_cache(maxsize=4096)
def _legacy_dn(text: str) -> frozenset[DN]:
    """The rule's DN, and where the top level puts a site-level DN."""
    dn = DN.parse(text)
    out = {dn}
    if dn.is_within(GRID) and not dn.is_within(LOCAL):
        out.add(dn.replace_suffix(GRID, LOCAL))
    elif dn.is_within(GLUE) and not dn.is_within(GRID_GROUP):
        out.add(dn.replace_suffix(GLUE, GRID_GROUP))
    return frozenset(out)


def matches(rule: Rule, unit: Unit) -> bool:
    """True if `rule` names `unit` (IDs, host names and site names match case-insensitively)."""
    if rule.kind == LEGACY:
        return not _legacy_dn(rule.pattern).isdisjoint(unit.dns())
    pattern = rule.pattern.lower()
    if rule.kind == "site":
        return unit.site is not None and fnmatchcase(unit.site.lower(), pattern)
    if rule.kind != "service" and rule.kind != unit.kind:
        return False
    return any(fnmatchcase(i, pattern) for i in unit.ids if i)


_GLOB = re.compile(r"[*?\[]")


def index_units(units: Sequence[Unit]) -> dict[str, list[Unit]]:
    """Units by each of their IDs, so that a plain ID rule is a lookup, not a scan."""
    index: dict[str, list[Unit]] = {}
    for u in units:
        for i in u.ids:
            index.setdefault(i, []).append(u)
    return index


def matching(rule: Rule, units: Sequence[Unit], index: Mapping[str, list[Unit]] | None = None) -> list[Unit]:
    """The units `rule` names, in tree order."""
    if index is not None and rule.kind in ("ce", "se", "service") and not _GLOB.search(rule.pattern):
        hit = {id(u): u for u in index.get(rule.pattern.lower(), ()) if matches(rule, u)}
        return [u for u in units if id(u) in hit] if len(hit) > 1 else list(hit.values())
    return [u for u in units if matches(rule, u)]


def _hide(entries: dict[DN, Entry], unit: Unit, vo: str) -> int:
    """Take `vo` out of one resource's rules; the number of entries changed."""
    changed = 0
    for dn, attrs, delete_if_empty in unit.edits:
        e = entries.get(dn)
        if e is None:
            continue
        updates: dict[str, tuple[str, ...]] = {}
        for a in attrs:
            values = e.get(a)
            kept = tuple(v for v in values if not is_vo_value(v, vo))
            if len(kept) != len(values):
                updates[a] = kept
        if not updates:
            continue
        changed += 1
        if delete_if_empty and not any(updates.get(a, e.get(a)) for a in attrs):
            del entries[dn]
            continue
        if attrs == (POLICY_RULE,):
            domains = e.get(POLICY_DOMAIN)
            updates[POLICY_DOMAIN] = tuple(d for d in domains if d.lower() != vo.lower())
        entries[dn] = e.replace(updates)
    return changed


def check_share(entries: Mapping[DN, Entry], units: Sequence[Unit], blacklist: Blacklist,
                max_share: float, index: Mapping[str, list[Unit]] | None = None) -> str | None:
    """Why the blacklist must be refused (it hides too much of a VO), or None."""
    by_vo: dict[str, list[Rule]] = {}
    for r in blacklist.rules:
        by_vo.setdefault(r.vo.lower(), []).append(r)
    for vo, rules in sorted(by_vo.items()):
        mine = [u for u in units if grants(entries, u, vo)]
        if not mine:
            continue
        named = {id(u) for r in rules for u in matching(r, units, index)}
        hidden = sum(1 for u in mine if id(u) in named)
        if hidden > max_share * len(mine):
            return (f"it would hide {hidden} of the {len(mine)} resources of VO {rules[0].vo} "
                    f"({hidden / len(mine):.0%} > BDII_FCR_MAX_SHARE {max_share:g})")
    return None


def apply_blacklist(entries: dict[DN, Entry], blacklist: Blacklist,
                    units: Sequence[Unit] | None = None,
                    index: Mapping[str, list[Unit]] | None = None) -> tuple[RuleReport, ...]:
    """Apply every rule in order to `entries` (in place); one report per rule."""
    units = resources(entries) if units is None else units
    index = index_units(units) if index is None else index
    reports = []
    for rule in blacklist.rules:
        hit = matching(rule, units, index)
        changed = 0
        hidden = []
        for u in hit:
            n = _hide(entries, u, rule.vo)
            if n:
                changed += n
                hidden.append(u.anchor)
        reports.append(RuleReport(rule, len(hit), changed, tuple(hidden)))
    return tuple(reports)


def apply_sources(entries: dict[DN, Entry], inputs: Iterable[FcrInput],
                  previous: Mapping[str, Blacklist], max_share: float,
                  ) -> tuple[dict[str, Blacklist], tuple[FcrStatus, ...], list[Problem]]:
    """Read each source, refuse what hides too much, apply the rest to `entries` in place.

    Returns the blacklists in force per source name (for the next cycle),
    one status per source and the problems to log. A source without a
    usable copy, or a refused one, keeps its previous blacklist in force.
    """
    in_force: dict[str, Blacklist] = {}
    statuses: list[FcrStatus] = []
    problems: list[Problem] = []
    units = resources(entries)
    index = index_units(units)
    for src in inputs:
        old = previous.get(src.name)
        parse_problems: list[Problem] = []
        refusal = None
        chosen = old
        if src.data is not None:
            new, parse_problems = parse_blacklist(src.data, src.location, src.fetched or 0.0)
            refusal = check_share(entries, units, new, max_share, index)
            if refusal is None:
                chosen = new
            else:
                kept = f"keeping the previous one ({len(old.rules)} rules)" if old else "no blacklist in force"
                refusal = f"blacklist refused: {refusal}; {kept}"
                problems.append(Problem(src.location, refusal))
        problems.extend(parse_problems)
        if src.error:
            what = "using its last good copy" if src.data is not None else (
                "keeping the blacklist in force" if old else "no blacklist in force")
            problems.append(Problem(src.location, f"blacklist source failed: {src.error}; {what}"))
        reports: tuple[RuleReport, ...] = ()
        if chosen is not None:
            in_force[src.name] = chosen
            reports = apply_blacklist(entries, chosen, units, index)
            for r in reports:
                if r.matched == 0:
                    problems.append(Problem(r.rule.source, f"rule matches no resource: {r.rule.text}",
                                            r.rule.line))
        state = "refused" if refusal else ("failed" if src.data is None else "stale" if src.error else "ok")
        statuses.append(FcrStatus(src.name, src.location, state, chosen, reports, src.error, refusal,
                                  tuple(parse_problems)))
    return in_force, tuple(statuses), problems


# ----------------------------------------------------------------- explain

def explain(entries: Mapping[DN, Entry], statuses: Sequence[FcrStatus], vo: str, ident: str) -> list[str]:
    """Why VO `vo` does (not) see the resources `ident` (an ID, host, glob or DN) names."""
    units = resources(entries)
    try:
        as_dn = DN.parse(ident) if "=" in ident else None
    except DNError:
        as_dn = None
    probe = Rule(vo, LEGACY, ident, "", 0) if as_dn is not None else Rule(vo, "service", ident, "", 0)
    found = [u for u in units if matches(probe, u)]
    lines: list[str] = []
    for s in statuses:
        if s.refusal:
            lines.append(f"note: {s.name} blacklist {s.location}: {s.refusal}")
        elif s.error:
            lines.append(f"note: {s.name} blacklist {s.location}: {s.error}")
    if not found:
        lines.append(f"{ident}: no resource with that ID, host name or DN is published")
        return lines
    for u in sorted(found, key=lambda u: u.anchor):
        rules = [(s, r) for s in statuses for r in s.reports
                 if r.rule.vo.lower() == vo.lower() and u.anchor in r.hidden]
        if rules:
            for s, r in rules:
                lines.append(f"{u.anchor}: hidden from VO {vo} by the {s.name} blacklist, "
                             f"{r.rule.where}: {r.rule.text}")
        elif grants(entries, u, vo):
            lines.append(f"{u.anchor}: visible to VO {vo} (not blacklisted)")
        else:
            lines.append(f"{u.anchor}: not blacklisted; it publishes no access rule for VO {vo} "
                         f"(ask the site to enable the VO)")
    return lines
