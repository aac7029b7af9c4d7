"""The validation rules: entries (and `now`) in, findings out. No I/O.

Rules come in groups, and a profile is a set of groups:

* ``schema`` — what slapd would refuse, from the schema in ``glue/``
  (RFC 4512): object classes known, one structural chain, attributes allowed
  by the classes, MUST present, SINGLE-VALUE respected, values of the right
  syntax and not empty, the RDN's value present in the entry; plus the GLUE
  2.0 value types the LDAP schema leaves as plain strings (DateTime_t, URL,
  URI; GFD.147 Appendix B).
* ``glue2`` — the GLUE 2.0 model (GFD.147): enumerations, foreign keys that
  must resolve in the same input, unique IDs, CreationTime not in the
  future, Validity positive, services published under the domain they name.
* ``glue13`` — GLUE 1.3: placeholder values (444444, 999999) reported as
  info, GlueForeignKey / GlueChunkKey targets present, unique UniqueIDs,
  site IDs matching the site's DN.
* ``egi`` — what EGI asks of a production site: AdminDomains with contacts
  and a location, coordinates in range, endpoints with capabilities, VO policy
  rules of the form ``VO:<name>`` / ``VOMS:/<fqan>``, data not expired.

Speed: a top-level tree has 100k+ entries but a few hundred layouts
(attribute sets x object classes). Everything that depends only on the
layout (allowed attributes, MUST, the checks for each attribute) is worked
out once per layout and reused; per entry only values are looked at.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import chain
from typing import Protocol

from ..dn import DN
from ..entry import Entry
from ..matching import ava_key, boolean, generalized_time, integer, matcher
from ..schema import Schema
from .model import DOMAIN, GLUE2_FOREIGN_KEYS, GLUE2_IDS, GLUE13_IDS, Enumeration, glue20_facts
from .report import ERROR, INFO, WARNING, Finding, Report

__all__ = ["PROFILES", "Elsewhere", "Layouts", "Profile", "validate_entries"]

SCHEMA, GLUE2, GLUE13, EGI = "schema", "glue2", "glue13", "egi"


@dataclass(frozen=True, slots=True)
class Profile:
    """A named set of rule groups."""

    name: str
    groups: frozenset[str]
    description: str


PROFILES: dict[str, Profile] = {
    "glue": Profile("glue", frozenset({SCHEMA, GLUE2, GLUE13}),
                    "LDAP schema, GLUE 2.0 model and GLUE 1.3 rules"),
    "egi": Profile("egi", frozenset({SCHEMA, GLUE2, GLUE13, EGI}),
                   "glue, plus what EGI requires of production sites"),
}

# LDAP syntaxes (RFC 4517 section 3.3) the GLUE schemas use.
INTEGER_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.27"
BOOLEAN_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.7"
IA5_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.26"
GENERALIZED_TIME_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.24"

# GFD.147 B.12 DateTime_t as the XML realization fixes it: UTC, no fraction.
_DATETIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z\Z")
# RFC 3986 section 3: scheme ":" hier-part; a URL has an authority ("//host").
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]+[^\s]*\Z")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+\Z")
# VO names are DNS-like (EGI VO ID card); FQANs per the VOMS specification
# (GFD.182): /vo[/group...][/Role=r][/Capability=c].
_VO_RULE = re.compile(r"ALL\Z|(DENY:)?(VO:[a-z0-9][a-z0-9._-]*"
                      r"|VOMS:/[a-z0-9][a-z0-9._-]*(/[A-Za-z0-9._-]+)*(/Role=[A-Za-z0-9._-]+)?"
                      r"(/Capability=[A-Za-z0-9._-]+)?)\Z")
_POLICY_RULE_ATTRS = frozenset({
    "glue2policyrule", "glueceaccesscontrolbaserule", "gluesaaccesscontrolbaserule",
    "glueserviceaccesscontrolbaserule", "gluevoinfoaccesscontrolbaserule"})
GLUE13_PLACEHOLDERS = frozenset({"444444", "999999"})
# GlueForeignKey / GlueChunkKey targets at the site level: a resource BDII
# publishes keys to its site without the site entry.
_GLUE13_SITE_KEY = "gluesiteuniqueid"
_RESOURCE_GROUPS = frozenset({"resource", "local"})

class Elsewhere(Protocol):
    """Entries beyond the input that references may point to (at ingest: the
    other sources of the refresh cycle). Asked only about references the
    input does not resolve itself."""

    def has_value(self, key: str, value: str) -> bool:
        """Whether some entry has `value` (exactly) in attribute `key` (lower-cased)."""

    def has_rdn(self, ava: tuple[str, object]) -> bool:
        """Whether some entry is named by the normalised RDN component `ava` (see `ava_key`)."""


Check = Callable[[str], "tuple[str, str, str] | None"]  # value -> (severity, rule, message)
Raw = tuple[str, "str | None", str, str]  # (severity, attribute, rule, message): a finding sans DN


# ---------------------------------------------------------------- value checks


def _check_integer(value: str) -> tuple[str, str, str] | None:
    if integer(value) is None:
        return ERROR, "schema.syntax", f"{value!r} is not an INTEGER (RFC 4517 3.3.16)"
    return None


def _check_boolean(value: str) -> tuple[str, str, str] | None:
    if boolean(value) is None:
        return ERROR, "schema.syntax", f"{value!r} is not a Boolean: TRUE or FALSE (RFC 4517 3.3.3)"
    return None


def _check_ia5(value: str) -> tuple[str, str, str] | None:
    if not value.isascii():
        return ERROR, "schema.syntax", f"{value!r} is not an IA5 String: ASCII only (RFC 4517 3.3.15)"
    return None


def _check_generalized_time(value: str) -> tuple[str, str, str] | None:
    if generalized_time(value) is None:
        return ERROR, "schema.syntax", f"{value!r} is not a Generalized Time (RFC 4517 3.3.13)"
    return None


def parse_datetime(value: str) -> datetime | None:
    """A GLUE 2.0 DateTime_t (``YYYY-MM-DDThh:mm:ssZ``) as an aware UTC datetime, else None."""
    m = _DATETIME.match(value)
    if m is None:
        return None
    try:
        return datetime(*map(int, m.groups()), tzinfo=timezone.utc)  # type: ignore[misc]
    except ValueError:
        return None


def _check_datetime(value: str) -> tuple[str, str, str] | None:
    if parse_datetime(value) is None:
        return ERROR, "schema.datetime", f"{value!r} is not a DateTime_t: YYYY-MM-DDThh:mm:ssZ (GFD.147 B.12)"
    return None


def _check_url(value: str) -> tuple[str, str, str] | None:
    if _URL.match(value) is None:
        return ERROR, "schema.url", f"{value!r} is not a URL: scheme://host... (RFC 3986)"
    return None


def _check_uri(value: str) -> tuple[str, str, str] | None:
    if _URI.match(value) is None:
        return ERROR, "schema.uri", f"{value!r} is not a URI: scheme:... (RFC 3986)"
    return None


_UNSIGNED = re.compile(r"[0-9]+\Z")
_REAL = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\Z")


def _check_unsigned(value: str) -> tuple[str, str, str] | None:
    if _UNSIGNED.match(value) is None:
        return ERROR, "glue2.type", f"{value!r} is not an unsigned integer (UInt64, GFD.147)"
    return None


def _check_real(value: str) -> tuple[str, str, str] | None:
    if _REAL.match(value) is None:
        return ERROR, "glue2.type", f"{value!r} is not a real number (Real32, GFD.147)"
    return None


def _check_placeholder(value: str) -> tuple[str, str, str] | None:
    if value in GLUE13_PLACEHOLDERS:
        return INFO, "glue13.placeholder", f"{value} is the GLUE 1.3 placeholder for an unknown value"
    return None


def _enum_check(enum: Enumeration) -> Check:
    severity = ERROR if enum.closed else WARNING
    kind = "closed" if enum.closed else "open"
    listing = enum.describe()

    def check(value: str) -> tuple[str, str, str] | None:
        if value in enum:
            return None
        return severity, "glue2.enum", f"{value!r} is not among the {enum.name} values ({kind} enumeration: {listing})"
    return check


def _check_policy_rule(value: str) -> tuple[str, str, str] | None:
    if _VO_RULE.match(value):
        return None
    return (ERROR, "egi.policy-rule",
            f"{value!r} is not a VO rule: VO:<vo>, VOMS:/<vo>[/group][/Role=r] (optionally DENY:), or ALL")


@dataclass(frozen=True, slots=True)
class _Check:
    """A value rule: `fast(values)` is true when every value passes (one C-level
    call for most rules); only then-failing attributes go through `slow`, one
    value at a time, to say which value is wrong and why."""

    fast: Callable[[tuple[str, ...]], object] | None  # None: always look at each value
    slow: Check


def _all(pred: Callable[[str], object]) -> Callable[[tuple[str, ...]], bool]:
    return lambda values: all(map(pred, values))


_INTEGER_FAST = re.compile(r"-?(?:0|[1-9][0-9]*)").fullmatch
_DATETIME_FAST = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\dZ").fullmatch
_SYNTAX_CHECKS: dict[str, _Check] = {
    INTEGER_SYNTAX: _Check(_all(_INTEGER_FAST), _check_integer),
    BOOLEAN_SYNTAX: _Check(frozenset({"TRUE", "FALSE"}).issuperset, _check_boolean),
    IA5_SYNTAX: _Check(_all(str.isascii), _check_ia5),
    GENERALIZED_TIME_SYNTAX: _Check(None, _check_generalized_time),
}
# Days 29-31 fail the fast pattern and are parsed, so that Feb 30 is caught.
_DATETIME_CHECK = _Check(_all(_DATETIME_FAST), _check_datetime)
_URL_CHECK = _Check(_all(_URL.match), _check_url)
_URI_CHECK = _Check(_all(_URI.match), _check_uri)
_UNSIGNED_CHECK = _Check(_all(_UNSIGNED.match), _check_unsigned)
_REAL_CHECK = _Check(_all(_REAL.match), _check_real)
_PLACEHOLDER_CHECK = _Check(GLUE13_PLACEHOLDERS.isdisjoint, _check_placeholder)
_POLICY_CHECK = _Check(_all(_VO_RULE.match), _check_policy_rule)


def _enum(enum: Enumeration) -> _Check:
    fast = (_all(enum.__contains__) if enum.case_insensitive else enum.values.issuperset)
    return _Check(fast, _enum_check(enum))


# ---------------------------------------------------------------- layouts


@dataclass(slots=True)
class _Plan:
    """What to check on every entry with one layout (attribute keys x object classes)."""

    raw: list[Raw] = field(default_factory=list)  # layout-level findings
    # (index into entry.vals, attribute name, single-valued, value checks)
    values: list[tuple[int, str, bool, tuple[_Check, ...]]] = field(default_factory=list)
    classes: frozenset[str] = frozenset()  # lower-cased names, superclasses included
    checked: list[tuple[int, str, bool, tuple[_Check, ...]]] = field(default_factory=list)  # with checks
    singles: Callable[[tuple[tuple[str, ...], ...]], tuple[tuple[str, ...], ...]] | None = None
    ids: list[tuple[int, str]] = field(default_factory=list)  # (index, ID attribute key) to index
    fks: list[tuple[int, str, str, str]] = field(default_factory=list)  # (index, name, target key, scope)
    keys13: list[tuple[int, str]] = field(default_factory=list)  # GlueForeignKey / GlueChunkKey
    glue2: bool = False


class Layouts:
    """The per-layout plans of one schema and profile: what runs validating
    many inputs one after the other (the sources of a refresh cycle) share,
    so that each layout is worked out once. Plans depend on no input, no time."""

    __slots__ = ("attr_checks", "plans", "profile", "schema")

    def __init__(self, schema: Schema, profile: Profile) -> None:
        self.schema = schema
        self.profile = profile
        self.plans: dict[tuple[object, tuple[str, ...]], _Plan] = {}
        self.attr_checks: dict[str, tuple[_Check, ...]] = {}


class _Validator:
    """One run: builds layout plans lazily, then resolves cross-entry rules at the end."""

    def __init__(self, schema: Schema, profile: Profile, now: datetime, skew: timedelta,
                 elsewhere: Elsewhere | None = None, layouts: Layouts | None = None) -> None:
        self.schema = schema
        self.elsewhere = elsewhere
        self.groups = profile.groups
        self.now = now
        self.skew = skew
        self.facts = glue20_facts()
        if layouts is None or layouts.schema is not schema or layouts.profile != profile:
            layouts = Layouts(schema, profile)
        self.plans = layouts.plans
        self.attr_checks = layouts.attr_checks
        self.out: list[Finding] = []
        self.seen_dns: set[DN] = set()
        # cross-entry state
        self.ids: dict[str, dict[str, DN]] = {}  # ID key -> value -> first DN
        self.id_dups: list[tuple[DN, str, str, DN]] = []
        self.fks: list[tuple[DN, str, str, str, str]] = []  # dn, name, value, target key, scope
        self.rdns: set[tuple[str, object]] = set()  # every RDN component, normalised
        self.keys13: list[tuple[DN, str, str]] = []  # dn, attribute name, value
        self.domains: list[tuple[DN, str]] = []  # AdminDomains
        self.has_domain = False
        self.domain_links: dict[str, set[str]] = {"contact": set(), "location": set()}
        self.has_site13 = False

    # -- per attribute -------------------------------------------------------

    def _checks_for(self, key: str) -> tuple[_Check, ...]:
        cached = self.attr_checks.get(key)
        if cached is not None:
            return cached
        checks: list[_Check] = []
        at = self.schema.attribute(key)
        if at is not None and SCHEMA in self.groups:
            syntax = _SYNTAX_CHECKS.get(at.syntax or "")
            if syntax is not None:
                checks.append(syntax)
            if key in self.facts.datetime:
                checks.append(_DATETIME_CHECK)
            elif key in self.facts.url:
                checks.append(_URL_CHECK)
            elif key in self.facts.uri:
                checks.append(_URI_CHECK)
        if at is not None and GLUE2 in self.groups:
            if key in self.facts.unsigned:
                checks.append(_UNSIGNED_CHECK)
            elif key in self.facts.real:
                checks.append(_REAL_CHECK)
        if at is not None and GLUE2 in self.groups and key in self.facts.enums:
            checks.append(_enum(self.facts.enums[key]))
        if (at is not None and GLUE13 in self.groups and at.syntax == INTEGER_SYNTAX
                and key.startswith("glue") and not key.startswith("glue2")):
            checks.append(_PLACEHOLDER_CHECK)
        if EGI in self.groups and key in _POLICY_RULE_ATTRS:
            checks.append(_POLICY_CHECK)
        result = self.attr_checks[key] = tuple(checks)
        return result

    # -- per layout ----------------------------------------------------------

    def _classes(self, names: Iterable[str], raw: list[Raw]) -> tuple[frozenset[str], list[str]]:
        """All class names (lower-cased, superclasses too) and the structural ones given."""
        classes: set[str] = set()
        structural: list[str] = []
        for name in names:
            oc = self.schema.object_class(name)
            if oc is None:
                raw.append((ERROR, "objectClass", "schema.objectclass", f"unknown object class {name!r}"))
                continue
            if oc.kind == "STRUCTURAL":
                structural.append(oc.name)
            stack = [oc]
            while stack:
                c = stack.pop()
                if c.key in classes:
                    continue
                classes.add(c.key)
                stack += [p for p in (self.schema.object_class(s) for s in c.sup) if p is not None]
        return frozenset(classes), structural

    def _structural_chain(self, structural: list[str], raw: list[Raw]) -> None:
        # RFC 4512 section 2.4.2: exactly one structural class, together with its
        # superclasses; two unrelated structural classes make no chain.
        if not structural:
            raw.append((ERROR, "objectClass", "schema.structural", "no structural object class"))
            return
        chains = {s: {c.lower() for c in self._superchain(s)} for s in structural}
        leaves = [s for s in structural if not any(s.lower() in chains[o] and o != s for o in structural)]
        if len(set(leaves)) > 1:
            raw.append((ERROR, "objectClass", "schema.structural",
                        f"structural classes {', '.join(sorted(set(leaves)))} are not one chain"))

    def _superchain(self, name: str) -> list[str]:
        out, todo = [], [name]
        while todo:
            oc = self.schema.object_class(todo.pop())
            if oc is not None and oc.name not in out:
                out.append(oc.name)
                todo += list(oc.sup)
        return out

    def _plan(self, entry: Entry, ocs: tuple[str, ...]) -> _Plan:
        plan = _Plan()
        raw = plan.raw
        groups = self.groups
        classes, structural = self._classes(ocs, raw)
        plan.classes = classes
        keys = entry.shape.keys
        names = entry.shape.names
        if SCHEMA in groups:
            if not ocs:
                raw.append((ERROR, "objectClass", "schema.objectclass", "no objectClass"))
            else:
                self._structural_chain(structural, raw)
            allowed: set[str] = {"objectclass"}
            must: dict[str, str] = {}
            for c in classes:
                allowed.update(a.lower() for a in self.schema.all_may(c))
                for a in self.schema.all_must(c):
                    must.setdefault(a.lower(), a)
            allowed.update(must)
            anything = "extensibleobject" in classes
            for key, name in zip(keys, names):
                at = self.schema.attribute(key)
                if at is None:
                    raw.append((ERROR, name, "schema.attribute", f"unknown attribute type {name!r}"))
                elif not anything and at.key not in allowed and not any(
                        n.lower() in allowed for n in at.names):
                    raw.append((ERROR, name, "schema.allowed",
                                "not allowed by the object classes " + ", ".join(ocs)))
            present = set(keys)
            for key, name in must.items():
                at = self.schema.attribute(key)
                if (at.key if at else key) not in present:
                    raw.append((ERROR, name, "schema.must", "required by the object classes but missing"))
        for i, key in enumerate(keys):
            at = self.schema.attribute(key)
            single = at is not None and at.single_value and SCHEMA in groups
            checks = self._checks_for(key)
            plan.values.append((i, names[i], single, checks))
            if checks:
                plan.checked.append((i, names[i], single, checks))
        singles = [i for i, _, single, _ in plan.values if single]
        if len(singles) == 1:
            only = singles[0]
            plan.singles = lambda vals: (vals[only],)
        elif singles:
            plan.singles = operator.itemgetter(*singles)
        plan.glue2 = any(c.startswith("glue2") for c in classes)
        if plan.glue2 and GLUE2 in groups:
            must_keys = {a.lower() for c in classes for a in self.schema.all_must(c)}
            id_keys = {i.lower() for i in GLUE2_IDS}
            plan.ids = [(i, k) for i, k in enumerate(keys) if k in id_keys and k in must_keys]
            fk_table = {k.lower(): (k, t.lower(), scope) for k, (t, scope) in GLUE2_FOREIGN_KEYS.items()}
            plan.fks = [(i, fk_table[k][0], fk_table[k][1], fk_table[k][2])
                        for i, k in enumerate(keys) if k in fk_table]
        if GLUE13 in groups and not plan.glue2:
            id_keys = {i.lower() for i in GLUE13_IDS}
            must_keys = {a.lower() for c in classes for a in self.schema.all_must(c)}
            plan.ids = [(i, k) for i, k in enumerate(keys) if k in id_keys and k in must_keys]
            plan.keys13 = [(i, names[i]) for i, k in enumerate(keys) if k in ("glueforeignkey", "gluechunkkey")]
        if EGI in groups and "glue2endpoint" in classes and "glue2endpointcapability" not in keys:
            raw.append((ERROR, "GLUE2EndpointCapability", "egi.endpoint-capability",
                        "an endpoint must publish its capabilities"))
        return plan

    # -- per entry -----------------------------------------------------------

    def entry(self, entry: Entry) -> None:
        dn = entry.dn
        out = self.out
        if dn in self.seen_dns:
            out.append(Finding(ERROR, str(dn), None, "schema.duplicate-dn", "the same DN appears twice"))
            return
        self.seen_dns.add(dn)
        ocs = entry.values_of("objectclass") or ()
        plan_key = (entry.shape, ocs)
        plan = self.plans.get(plan_key)
        if plan is None:
            plan = self.plans[plan_key] = self._plan(entry, ocs)
        dn_text: str | None = None
        if plan.raw:
            dn_text = str(dn)
            out.extend(Finding(s, dn_text, a, r, m) for s, a, r, m in plan.raw)
        vals = entry.vals
        # Fast paths, each one C-level call for the whole entry or attribute;
        # the careful per-value pass runs only where one of them fails.
        if (plan.singles is not None and max(map(len, plan.singles(vals))) > 1) or "" in _flat(vals):
            self._values_slowly(entry, plan, plan.values)
        else:
            for item in plan.checked:
                values = vals[item[0]]
                for c in item[3]:
                    if c.fast is None or not c.fast(values):
                        self._values_slowly(entry, plan, (item,))
                        break
        if SCHEMA in self.groups and dn.rdns:
            self._rdn_present(entry)
        if dn.key:
            self.rdns.update(dn.key[0])
        for i, key in plan.ids:
            index = self.ids.setdefault(key, {})
            for v in vals[i]:
                norm = v if plan.glue2 else v.lower()
                first = index.setdefault(norm, dn)
                if first is not dn:
                    self.id_dups.append((dn, entry.shape.names[i], v, first))
        if plan.glue2 and GLUE2 in self.groups:
            self._glue2(entry, plan)
        elif plan.keys13:
            for i, name in plan.keys13:
                self.keys13.extend((dn, name, v) for v in vals[i])
        if "gluesite" in plan.classes:
            self.has_site13 = True
            if GLUE13 in self.groups:
                self._site_id(entry)

    def _values_slowly(self, entry: Entry, plan: _Plan,
                       items: Iterable[tuple[int, str, bool, tuple[_Check, ...]]]) -> None:
        """Every value of `items` through every check, saying what is wrong."""
        out, vals = self.out, entry.vals
        for i, name, single, checks in items:
            values = vals[i]
            if single and len(values) > 1:
                out.append(Finding(ERROR, str(entry.dn), name, "schema.single-value",
                                   f"single-valued but has {len(values)} values"))
            for v in values:
                if not v:
                    out.append(Finding(ERROR, str(entry.dn), name, "schema.empty", "empty value"))
                    continue
                for check in checks:
                    r = check.slow(v)
                    if r is not None:
                        out.append(Finding(r[0], str(entry.dn), name, r[1], r[2]))

    def _rdn_present(self, entry: Entry) -> None:
        # RFC 4512 section 2.3.1 / slapd "naming attribute not present".
        for attr, value in entry.dn.rdn_values:
            m = matcher(attr)
            values = entry.values_of(m.key) or ()
            if value in values:
                continue
            eq = m.equality
            want = eq(value) if eq else value
            if not any((eq(v) if eq else v) == want for v in values):
                self.out.append(Finding(ERROR, str(entry.dn), m.name, "schema.rdn",
                                        f"the RDN value {value!r} is not among the entry's values"))

    def _glue2(self, entry: Entry, plan: _Plan) -> None:
        dn, vals, groups = entry.dn, entry.vals, self.groups
        for i, name, target, scope in plan.fks:
            self.fks.extend((dn, name, v, target, scope) for v in vals[i])
        classes = plan.classes
        if "glue2domain" in classes:
            self.has_domain = True
            if "glue2admindomain" in classes:
                self.domains.extend((dn, v) for v in entry.get("GLUE2DomainID"))
        if EGI in groups:
            if "glue2contact" in classes:
                self.domain_links["contact"].update(entry.get("GLUE2ContactDomainForeignKey"))
            if "glue2location" in classes:
                self.domain_links["location"].update(entry.get("GLUE2LocationDomainForeignKey"))
                self._coordinates(entry)
        created = entry.get("GLUE2EntityCreationTime")
        validity = entry.get("GLUE2EntityValidity")
        when = parse_datetime(created[0]) if created else None
        if when is not None and when > self.now + self.skew:
            self.out.append(Finding(ERROR, str(dn), "GLUE2EntityCreationTime", "glue2.creation-time",
                                    f"{created[0]} is in the future (now {_fmt(self.now)})"))
        seconds = integer(validity[0]) if validity else None
        if validity and seconds is not None and seconds <= 0:
            self.out.append(Finding(ERROR, str(dn), "GLUE2EntityValidity", "glue2.validity",
                                    f"{validity[0]} is not a positive number of seconds"))
        elif (EGI in groups and when is not None and seconds is not None
              and when + timedelta(seconds=seconds) + self.skew < self.now):
            self.out.append(Finding(WARNING, str(dn), "GLUE2EntityValidity", "egi.expired",
                                    f"created {created[0]}, valid {seconds} s: expired at "
                                    f"{_fmt(when + timedelta(seconds=seconds))}"))
        if "glue2service" in classes:
            # A service published under GLUE2DomainID=D belongs to domain D.
            domain = next((v for rdn in dn.rdns[1:] for a, v in rdn if a.lower() == "glue2domainid"), None)
            keys = entry.get("GLUE2ServiceAdminDomainForeignKey")
            if domain is not None and keys and domain not in keys:
                self.out.append(Finding(WARNING, str(dn), "GLUE2ServiceAdminDomainForeignKey",
                                        "glue2.domain", f"{keys[0]!r} is not the domain {domain!r} "
                                        "the service is published under"))

    def _coordinates(self, entry: Entry) -> None:
        for attr, bound in (("GLUE2LocationLatitude", 90.0), ("GLUE2LocationLongitude", 180.0)):
            for v in entry.get(attr):
                try:
                    ok = -bound <= float(v) <= bound
                except ValueError:
                    ok = False
                if not ok:
                    self.out.append(Finding(ERROR, str(entry.dn), attr, "egi.location",
                                            f"{v!r} is not a number between {-bound:g} and {bound:g}"))

    def _site_id(self, entry: Entry) -> None:
        # In a site or top-level tree the site lives at mds-vo-name=SITE: its
        # GlueSiteUniqueID must be that name, or clients find it under the wrong site.
        site = next((v for rdn in entry.dn.rdns[1:] for a, v in rdn
                     if a.lower() == "mds-vo-name" and v.lower() not in _RESOURCE_GROUPS), None)
        ids = entry.get("GlueSiteUniqueID")
        if site is not None and ids and site.lower() not in {i.lower() for i in ids}:
            self.out.append(Finding(WARNING, str(entry.dn), "GlueSiteUniqueID", "glue13.site-id",
                                    f"{ids[0]!r} differs from the site name {site!r} of the DN"))

    # -- cross-entry rules, once every entry is in ----------------------------

    def finish(self) -> None:
        out = self.out
        for dn, name, value, first in self.id_dups:
            rule = "glue2.id-unique" if name.lower().startswith("glue2") else "glue13.id-unique"
            out.append(Finding(ERROR, str(dn), name, rule, f"{value!r} is also the ID of {first}"))
        for dn, name, value, target, scope in self.fks:
            if scope == DOMAIN and not self.has_domain:
                continue
            if value not in self.ids.get(target, ()) and not (
                    self.elsewhere is not None and self.elsewhere.has_value(target, value)):
                target_name = self.schema.canonical_name(target)
                out.append(Finding(ERROR, str(dn), name, "glue2.foreign-key",
                                   f"no entry with {target_name} {value!r} in the input"))
        if GLUE13 in self.groups:
            self._glue13_keys()
        if EGI in self.groups:
            for dn, domain in self.domains:
                for kind, attr in (("contact", "GLUE2ContactDomainForeignKey"),
                                   ("location", "GLUE2LocationDomainForeignKey")):
                    if domain not in self.domain_links[kind] and not (
                            self.elsewhere is not None and self.elsewhere.has_value(attr.lower(), domain)):
                        out.append(Finding(ERROR, str(dn), None, f"egi.domain-{kind}",
                                           f"no GLUE2{kind.capitalize()} with {attr} {domain!r}"))

    def _glue13_keys(self) -> None:
        for dn, name, value in self.keys13:
            attr, eq, target = value.partition("=")
            if not eq or not attr.strip() or not target:
                self.out.append(Finding(ERROR, str(dn), name, "glue13.key",
                                        f"{value!r} is not of the form <attribute>=<value>"))
                continue
            key = ava_key(attr.strip(), target.strip())
            if key[0] == _GLUE13_SITE_KEY and not self.has_site13:
                continue
            if key not in self.rdns and not (self.elsewhere is not None and self.elsewhere.has_rdn(key)):
                self.out.append(Finding(ERROR, str(dn), name, "glue13.key",
                                        f"no entry named {value!r} in the input"))
            elif name.lower() == "gluechunkkey" and not any(key in k for k in dn.key[1:]):
                self.out.append(Finding(WARNING, str(dn), name, "glue13.key",
                                        f"{value!r} is not a parent of the entry"))


def _flat(vals: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    return tuple(chain.from_iterable(vals))


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_entries(entries: Iterable[Entry], now: datetime, profile: Profile | str = "glue", *,
                     schema: Schema | None = None, skew: timedelta = timedelta(minutes=5),
                     findings: Iterable[Finding] = (),
                     elsewhere: Elsewhere | None = None, layouts: Layouts | None = None) -> Report:
    """Check every entry against `profile`; `now` (aware UTC) dates the time rules.

    `findings` are problems found before (unreadable records): they lead the
    report. `skew` is the clock difference tolerated between the publisher and us.
    `elsewhere`: where foreign keys, GLUE 1.3 keys and the EGI contact/location
    links may also resolve (None: in the input only). `layouts`: plans kept
    from earlier runs with the same schema and profile (see `Layouts`).
    """
    if isinstance(profile, str):
        profile = PROFILES[profile]
    v = _Validator(schema or Schema.default(), profile, now, skew, elsewhere, layouts)
    v.out.extend(findings)
    count = 0
    for entry in entries:
        v.entry(entry)
        count += 1
    v.finish()
    return Report.build(v.out, count, profile.name)
