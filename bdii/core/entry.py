"""Directory entries: a DN and attribute values, immutable once built."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from sys import intern

from .dn import DN
from .ldif import format_record
from .matching import matcher

Values = tuple[str, ...]


class Shape:
    """The attribute layout shared by every entry with the same attributes.

    A top-level tree has 100k+ entries but a few hundred distinct layouts;
    keeping the keys, names and key->position table once per layout instead
    of a dict per entry saves about a kilobyte per entry.
    """

    __slots__ = ("keys", "names", "index")

    def __init__(self, keys: tuple[str, ...], names: tuple[str, ...]) -> None:
        self.keys = keys
        self.names = names
        self.index = {k: i for i, k in enumerate(keys)}


_SHAPES: dict[tuple[tuple[str, ...], tuple[str, ...]], Shape] = {}


def _shape(keys: tuple[str, ...], names: tuple[str, ...]) -> Shape:
    shape = _SHAPES.get((keys, names))
    if shape is None:
        if len(_SHAPES) > 100_000:  # a pathological source: do not grow forever
            _SHAPES.clear()
        shape = _SHAPES[(keys, names)] = Shape(keys, names)
    return shape


# Attribute name as a source writes it -> (key, name clients see): the
# matcher's two fields, one dict lookup per `attr: value` line of a load.
_NAMES: dict[str, tuple[str, str]] = {}


def _names(attr: str) -> tuple[str, str]:
    m = matcher(attr)
    if len(_NAMES) < 100_000:
        _NAMES[attr] = (m.key, m.name)
    return m.key, m.name


class Entry:
    """One entry: a DN and, per attribute, the name clients see and the values.

    Attribute names are stored in schema case (`GLUE2ServiceID`) whatever
    case the source used, because clients look results up by exact name.
    Immutable: every change makes a new entry.
    """

    __slots__ = ("dn", "shape", "vals")

    def __init__(self, dn: DN, attrs: Mapping[str, tuple[str, Values]]) -> None:
        """`attrs` maps the lower-cased canonical name to (name, values)."""
        keys = tuple(attrs)
        setter = object.__setattr__  # past the immutability guard, once
        setter(self, "dn", dn)
        setter(self, "shape", _shape(keys, tuple(attrs[k][0] for k in keys)))
        setter(self, "vals", tuple(attrs[k][1] for k in keys))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Entry is immutable")

    def __repr__(self) -> str:
        return f"Entry(dn={self.dn!r}, attrs={self.attrs!r})"

    @classmethod
    def from_pairs(cls, dn: DN, pairs: Iterable[tuple[str, str]]) -> Entry:
        """Group `attr: value` lines; exact duplicate values are dropped."""
        attrs: dict[str, tuple[str, list[str]]] = {}
        names = _NAMES
        for attr, value in pairs:
            if len(value) < 40:
                # Short values repeat across a tree (object classes, VO
                # rules, states, small numbers): keep one copy of each.
                value = intern(value)
            kn = names.get(attr) or _names(attr)
            slot = attrs.get(kn[0])
            if slot is None:
                attrs[kn[0]] = (kn[1], [value])
            elif value not in slot[1]:
                slot[1].append(value)
        # As __init__, without building the intermediate mapping.
        entry = object.__new__(cls)
        setter = object.__setattr__
        keys = tuple(attrs)
        slots = attrs.values()
        setter(entry, "dn", dn)
        setter(entry, "shape", _shape(keys, tuple([n for n, _v in slots])))
        setter(entry, "vals", tuple([tuple(v) for _n, v in slots]))
        return entry

    @property
    def attrs(self) -> dict[str, tuple[str, Values]]:
        """A new dict {key: (name, values)}; for building, not for hot paths."""
        s = self.shape
        return {k: (n, v) for k, n, v in zip(s.keys, s.names, self.vals)}

    def values_of(self, key: str) -> Values | None:
        """Values by lower-cased canonical name (what filters use)."""
        i = self.shape.index.get(key)
        return None if i is None else self.vals[i]

    def keyed_values(self) -> Iterator[tuple[str, Values]]:
        return zip(self.shape.keys, self.vals)

    def get(self, attr: str) -> Values:
        return self.values_of(matcher(attr).key) or ()

    def has_object_class(self, name: str) -> bool:
        want = name.lower()
        return any(v.lower() == want for v in self.get("objectClass"))

    def replace(self, updates: Mapping[str, Values]) -> Entry:
        """A new entry with attributes replaced (empty values delete)."""
        attrs = self.attrs
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
        return self.shape is other.shape and self.vals == other.vals and self.dn.rdns == other.dn.rdns

    def items(self) -> Iterator[tuple[str, Values]]:
        """(name, values) in a stable order: objectClass first, as slapd shows."""
        s = self.shape
        first = s.index.get("objectclass")
        if first is not None:
            yield s.names[first], self.vals[first]
        for i, (name, values) in enumerate(zip(s.names, self.vals)):
            if i != first:
                yield name, values

    def to_ldif(self, width: int = 76) -> str:
        return format_record(str(self.dn), self.items(), width)

    def to_json(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self.items()}
