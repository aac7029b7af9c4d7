"""The LDAP schema the server knows: attribute types and object classes (RFC 4512 §4.1).

Built once from the JSON renderings in ``glue/`` (see ``glue/render.py``) and
never changed afterwards, so every lookup is a dict access and the values can
be shared freely. Attribute types carry their *effective* syntax and matching
rules, with SUP inheritance already resolved, because that is what filter
matching and DN normalisation need.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import BdiiError

__all__ = ["DEFAULT_FILES", "AttributeType", "ObjectClass", "Schema", "SchemaError"]

# Package data of bdii.glue that Schema.default() loads, in this order.
DEFAULT_FILES = ("glue13.json", "glue20.json", "bdii.json", "core.json")


class SchemaError(BdiiError, ValueError):
    """Schema data that is inconsistent or malformed; `problems` lists every one found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class AttributeType:
    """An attribute type (RFC 4512 §4.1.2) with inherited rules filled in.

    `syntax`, `equality`, `ordering` and `substr` are the effective values: a
    subtype that leaves one out takes its supertype's (RFC 4512 §2.5.1), so
    ``o`` (SUP name) has ``caseIgnoreMatch``. `operational` is true unless
    USAGE is userApplications (RFC 4512 §3.4).
    """

    oid: str
    names: tuple[str, ...]
    desc: str | None
    sup: str | None
    syntax: str | None
    equality: str | None
    ordering: str | None
    substr: str | None
    single_value: bool
    operational: bool
    usage: str = "userApplications"

    @property
    def name(self) -> str:
        """The primary (first) name, which slapd also uses when it returns the attribute."""
        return self.names[0] if self.names else self.oid

    @property
    def key(self) -> str:
        """The lower-cased primary name: attribute names compare case-insensitively."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class ObjectClass:
    """An object class (RFC 4512 §4.1.1); names in `sup`, `must`, `may` are as in the file."""

    oid: str
    names: tuple[str, ...]
    desc: str | None
    sup: tuple[str, ...]
    kind: str
    must: tuple[str, ...]
    may: tuple[str, ...]

    @property
    def name(self) -> str:
        """The primary (first) name."""
        return self.names[0] if self.names else self.oid

    @property
    def key(self) -> str:
        """The lower-cased primary name."""
        return self.name.lower()


def _index(items: Iterable[AttributeType | ObjectClass], what: str,
           problems: list[str]) -> dict[str, Any]:
    """Map every lower-cased name and OID to its definition; report clashes."""
    index: dict[str, Any] = {}
    for item in items:
        for key in (item.oid, *(n.lower() for n in item.names)):
            if key in index and index[key] is not item:
                problems.append(f"{what} {key!r} is defined twice "
                                f"({index[key].oid} and {item.oid})")
            index[key] = item
    return index


class Schema:
    """Attribute types and object classes, looked up by any name (any case) or OID.

    Build with `from_json_texts` or `default`; a built schema never changes.
    """

    __slots__ = ("_at_index", "_attributes", "_object_classes", "_oc_index")

    def __init__(self, attributes: Iterable[AttributeType],
                 object_classes: Iterable[ObjectClass]) -> None:
        self._attributes = tuple(attributes)
        self._object_classes = tuple(object_classes)
        problems: list[str] = []
        self._at_index: dict[str, AttributeType] = _index(
            self._attributes, "attribute type", problems)
        self._oc_index: dict[str, ObjectClass] = _index(
            self._object_classes, "object class", problems)
        if problems:
            raise SchemaError(problems)

    @classmethod
    def from_json_texts(cls, texts: Iterable[str]) -> Schema:
        """Build a schema from JSON renderings; every reference must resolve across them."""
        problems: list[str] = []
        raw_ats: list[dict[str, Any]] = []
        raw_ocs: list[dict[str, Any]] = []
        for number, text in enumerate(texts, 1):
            try:
                doc = json.loads(text)
                where = ", ".join(doc.get("source") or []) or f"schema text #{number}"
                ats = [dict(d, where=where) for d in doc["attributes"]]
                ocs = [dict(d, where=where) for d in doc["objectclasses"]]
                problems += [f"{where}: a definition without an OID" for d in ats + ocs
                             if not isinstance(d.get("oid"), str)]
                raw_ats += ats
                raw_ocs += ocs
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                problems.append(f"schema text #{number}: not a schema rendering ({e!r})")
        if problems:
            raise SchemaError(problems)
        attributes = _resolve_attributes(raw_ats, problems)
        object_classes = [_object_class(d, problems) for d in raw_ocs]
        if problems:
            raise SchemaError(problems)
        schema = cls(attributes, object_classes)
        schema._check_object_classes()
        return schema

    @classmethod
    def default(cls) -> Schema:
        """The schema every BDII serves: GLUE 1.3, GLUE 2.0, the BDII's own and LDAP core."""
        return _default()

    @property
    def attributes(self) -> tuple[AttributeType, ...]:
        """Every attribute type, in load order."""
        return self._attributes

    @property
    def object_classes(self) -> tuple[ObjectClass, ...]:
        """Every object class, in load order."""
        return self._object_classes

    def attribute(self, name_or_oid: str) -> AttributeType | None:
        """The attribute type with this name (any case, any alias) or OID, if known."""
        return self._at_index.get(name_or_oid.lower())

    def object_class(self, name_or_oid: str) -> ObjectClass | None:
        """The object class with this name (any case, any alias) or OID, if known."""
        return self._oc_index.get(name_or_oid.lower())

    def canonical_name(self, name: str) -> str:
        """The schema's spelling of an attribute name ('glue2serviceid' -> 'GLUE2ServiceID').

        Aliases become the primary name ('commonName' -> 'cn') as slapd returns
        them; options after ';' are kept (RFC 4512 §2.5); unknown names are
        returned unchanged.
        """
        base, semicolon, options = name.partition(";")
        at = self.attribute(base)
        return at.name + semicolon + options if at is not None else name

    def all_must(self, oc_name: str) -> tuple[str, ...]:
        """MUST attributes of a class and all its superclasses; KeyError if unknown."""
        return self._collect(oc_name, "must")

    def all_may(self, oc_name: str) -> tuple[str, ...]:
        """MAY attributes of a class and all its superclasses; KeyError if unknown."""
        return self._collect(oc_name, "may")

    def _superclasses(self, oc_name: str) -> Iterator[ObjectClass]:
        """The class itself, then its superclasses breadth-first, each once."""
        first = self.object_class(oc_name)
        if first is None:
            raise KeyError(oc_name)
        queue, seen = [first], {first.oid}
        while queue:
            oc = queue.pop(0)
            yield oc
            for sup in oc.sup:
                parent = self.object_class(sup)
                if parent is not None and parent.oid not in seen:
                    seen.add(parent.oid)
                    queue.append(parent)

    def _collect(self, oc_name: str, field: str) -> tuple[str, ...]:
        names: dict[str, str] = {}
        for oc in self._superclasses(oc_name):
            for n in getattr(oc, field):
                names.setdefault(n.lower(), n)
        return tuple(names.values())

    def _check_object_classes(self) -> None:
        # slapd refuses a class naming an unknown superclass or attribute; so do we.
        problems = []
        for oc in self._object_classes:
            problems += [f"object class {oc.name}: unknown superclass {s!r}"
                         for s in oc.sup if self.object_class(s) is None]
            problems += [f"object class {oc.name}: unknown attribute type {a!r}"
                         for a in (*oc.must, *oc.may) if self.attribute(a) is None]
        if problems:
            raise SchemaError(problems)


def _resolve_attributes(raw: list[dict[str, Any]], problems: list[str]) -> list[AttributeType]:
    """AttributeTypes with SUP inheritance applied, in input order (RFC 4512 §2.5.1, §4.1.2)."""
    by_key = {k: d for d in raw for k in (d.get("oid"), *(n.lower() for n in d.get("names", [])))}
    done: dict[int, AttributeType] = {}

    def resolve(d: dict[str, Any], chain: frozenset[int]) -> AttributeType | None:
        if id(d) in done:
            return done[id(d)]
        parent: AttributeType | None = None
        if d.get("sup"):
            sup = by_key.get(d["sup"].lower())
            if sup is None:
                problems.append(f"{d['where']}: attribute {d['oid']}: unknown SUP {d['sup']!r}")
                return None
            if id(sup) in chain or sup is d:
                problems.append(f"{d['where']}: attribute {d['oid']}: SUP loop via {d['sup']!r}")
                return None
            parent = resolve(sup, chain | {id(d)})
            if parent is None:
                return None

        def inherit(field: str) -> str | None:
            value = d.get(field)
            return value if value is not None or parent is None else getattr(parent, field)

        usage = d.get("usage") or "userApplications"
        at = AttributeType(
            oid=d["oid"], names=tuple(d.get("names", [])), desc=d.get("desc"),
            sup=d.get("sup"), syntax=inherit("syntax"), equality=inherit("equality"),
            ordering=inherit("ordering"), substr=inherit("substr"),
            single_value=bool(d.get("single_value")),
            operational=usage != "userApplications", usage=usage)
        if at.syntax is None:
            problems.append(f"{d['where']}: attribute {at.name}: no SYNTAX and no SUP")
        done[id(d)] = at
        return at

    result = [resolve(d, frozenset()) for d in raw]
    return [at for at in result if at is not None]


def _object_class(d: dict[str, Any], problems: list[str]) -> ObjectClass:
    kind = d.get("kind") or "STRUCTURAL"  # RFC 4512 §4.1.1 default
    if kind not in ("ABSTRACT", "STRUCTURAL", "AUXILIARY"):
        problems.append(f"{d['where']}: object class {d['oid']}: unknown kind {kind!r}")
    return ObjectClass(oid=d["oid"], names=tuple(d.get("names", [])), desc=d.get("desc"),
                       sup=tuple(d.get("sup", [])), kind=kind, must=tuple(d.get("must", [])),
                       may=tuple(d.get("may", [])))


@functools.cache
def _default() -> Schema:
    try:
        package = importlib.resources.files("bdii.glue")
    except ModuleNotFoundError as e:
        raise SchemaError([f"cannot find the package data bdii.glue ({e}): "
                           "install the project, e.g. pip install -e ."]) from e
    return Schema.from_json_texts(
        package.joinpath(name).read_text(encoding="utf-8") for name in DEFAULT_FILES)
