"""Plugin semantics: LDIF change records applied to the merged entries.

Plugins run after providers, in name order, and their output modifies what
providers published. Two forms are accepted, as the legacy BDII did:
`changetype: modify` records (add / replace / delete per RFC 2849) and the
"plain" form, a DN followed by attributes, which replaces those attributes.
`changetype: add` adds a new entry and `changetype: delete` removes one.
"""

from __future__ import annotations

from .dn import DN
from .entry import Entry
from .errors import DNError, Problem
from .ldif import ChangeRecord, EntryRecord, Record
from .matching import matcher


def _values_without(existing: tuple[str, ...], remove: tuple[str, ...], attr: str) -> tuple[str, ...]:
    norm = matcher(attr).equality or (lambda v: v)
    gone = {norm(v) for v in remove}
    return tuple(v for v in existing if norm(v) not in gone)


def _union(existing: tuple[str, ...], add: tuple[str, ...], attr: str) -> tuple[str, ...]:
    norm = matcher(attr).equality or (lambda v: v)
    seen = {norm(v) for v in existing}
    out = list(existing)
    for v in add:
        k = norm(v)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return tuple(out)


def apply_record(entries: dict[DN, Entry], record: Record, source: str) -> Problem | None:
    """Apply one plugin record to `entries` in place; return a problem or None."""
    try:
        dn = DN.parse(record.dn)
    except DNError as exc:
        return Problem(source, f"record skipped: {exc}", record.line)
    if isinstance(record, EntryRecord):
        entry = entries.get(dn)
        if entry is None:
            return Problem(source, "no such entry to modify (plain plugin form)", record.line, record.dn)
        grouped: dict[str, list[str]] = {}
        for attr, value in record.attrs:
            grouped.setdefault(attr, []).append(value)
        entries[dn] = entry.replace({a: tuple(v) for a, v in grouped.items()})
        return None
    assert isinstance(record, ChangeRecord)
    if record.changetype == "add":
        if dn in entries:
            return Problem(source, "changetype: add of an entry that exists", record.line, record.dn)
        entries[dn] = Entry.from_pairs(dn, record.attrs)
        return None
    if record.changetype == "delete":
        if entries.pop(dn, None) is None:
            return Problem(source, "changetype: delete of an entry that does not exist", record.line, record.dn)
        return None
    entry = entries.get(dn)
    if entry is None:
        return Problem(source, "no such entry to modify", record.line, record.dn)
    for mod in record.mods:
        current = entry.get(mod.attr)
        if mod.op == "replace":
            new = _union((), mod.values, mod.attr)
        elif mod.op == "add":
            new = _union(current, mod.values, mod.attr)
        elif mod.values:
            new = _values_without(current, mod.values, mod.attr)
        else:
            new = ()
        entry = entry.replace({mod.attr: new})
    entries[dn] = entry
    return None
