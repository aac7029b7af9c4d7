"""Directory entries: a DN and attribute values, immutable once built."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from .dn import DN
from .ldif import format_record
from .matching import matcher

Values = tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    """One entry; `attrs` maps the lower-cased canonical attribute name to
    (name as clients see it, values). Treat `attrs` as read-only.

    Attribute names are stored in schema case (`GLUE2ServiceID`) whatever
    case the source used, because clients look results up by exact name.
    """

    dn: DN
    attrs: Mapping[str, tuple[str, Values]]

    @classmethod
    def from_pairs(cls, dn: DN, pairs: Iterable[tuple[str, str]]) -> Entry:
        """Group `attr: value` lines; exact duplicate values are dropped."""
        attrs: dict[str, tuple[str, list[str]]] = {}
        for attr, value in pairs:
            m = matcher(attr)
            slot = attrs.get(m.key)
            if slot is None:
                attrs[m.key] = (m.name, [value])
            elif value not in slot[1]:
                slot[1].append(value)
        return cls(dn, {k: (n, tuple(v)) for k, (n, v) in attrs.items()})

    def get(self, attr: str) -> Values:
        slot = self.attrs.get(matcher(attr).key)
        return slot[1] if slot else ()

    def has_object_class(self, name: str) -> bool:
        want = name.lower()
        return any(v.lower() == want for v in self.get("objectClass"))

    def replace(self, updates: Mapping[str, Values]) -> Entry:
        """A new entry with attributes replaced (empty values delete)."""
        attrs = dict(self.attrs)
        for attr, values in updates.items():
            m = matcher(attr)
            if values:
                attrs[m.key] = (attrs.get(m.key, (m.name,))[0], tuple(values))
            else:
                attrs.pop(m.key, None)
        return Entry(self.dn, attrs)

    def same_content(self, other: Entry) -> bool:
        # The DN as written counts too: a DN that changes only in case
        # (GLUE 1.3) is republished under its new spelling.
        return self.attrs == other.attrs and self.dn.rdns == other.dn.rdns

    def items(self) -> Iterator[tuple[str, Values]]:
        """(name, values) in a stable order: objectClass first, as slapd shows."""
        oc = self.attrs.get("objectclass")
        if oc is not None:
            yield oc
        for key, slot in self.attrs.items():
            if key != "objectclass":
                yield slot

    def to_ldif(self, width: int = 76) -> str:
        return format_record(str(self.dn), self.items(), width)

    def to_json(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self.items()}
