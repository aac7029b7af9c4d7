"""Delayed delete: an entry that vanishes is kept for `delay` seconds.

Pure bookkeeping with `now` passed in, so it is tested with integers. The
legacy rule is kept: an entry first missed at `since` is still served while
`now <= since + delay` and dropped after that; an entry that comes back is
forgotten from the pending list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from .dn import DN
from .entry import Entry

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class PendingDeletes:
    """DNs that vanished, when they were first missed, and their last content."""

    since: Mapping[DN, float] = field(default_factory=dict)
    entries: Mapping[DN, Entry] = field(default_factory=dict)

    def to_json(self) -> str:
        items = [
            {"dn": str(dn), "since": self.since[dn], "attributes": self.entries[dn].to_json()}
            for dn in sorted(self.since)
        ]
        return json.dumps({"version": STATE_VERSION, "pending": items}, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> PendingDeletes:
        """Read the state file; raises ValueError on a file we cannot trust."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported delayed-delete state version {data.get('version')!r}")
        since: dict[DN, float] = {}
        entries: dict[DN, Entry] = {}
        for item in data["pending"]:
            dn = DN.parse(item["dn"])
            since[dn] = float(item["since"])
            pairs = [(a, v) for a, vs in item["attributes"].items() for v in vs]
            entries[dn] = Entry.from_pairs(dn, pairs)
        return cls(since, entries)


@dataclass(frozen=True, slots=True)
class DelayStep:
    kept: dict[DN, Entry]  # vanished entries still served
    deleted: list[DN]  # entries whose delay ran out in this step
    pending: PendingDeletes


def step(
    pending: PendingDeletes,
    previous: Mapping[DN, Entry],
    current: Mapping[DN, Entry],
    now: float,
    delay: float,
) -> DelayStep:
    """One cycle of delayed delete.

    `previous` is what was served last cycle, `current` what the sources
    give now. With `delay <= 0` vanished entries go at once.
    """
    since: dict[DN, float] = {}
    last: dict[DN, Entry] = {}
    kept: dict[DN, Entry] = {}
    deleted: list[DN] = []
    candidates: dict[DN, Entry] = {dn: e for dn, e in pending.entries.items() if dn not in current}
    for dn, e in previous.items():
        if dn not in current:
            candidates[dn] = e
    for dn, e in candidates.items():
        first = pending.since.get(dn, now)
        if delay > 0 and now <= first + delay:
            since[dn] = first
            last[dn] = e
            kept[dn] = e
        else:
            deleted.append(dn)
    return DelayStep(kept, deleted, PendingDeletes(since, last))
