"""GLUE 1.3 / GLUE 2.0 validation (what `bdii validate` runs), sans I/O.

    result = entries_from_ldif(data, "site.ldif")
    report = validate_entries(result.entries, now, "egi", findings=result.findings)
    for finding in report.findings: print(finding.to_line())

Rules and profiles: see `rules`. Findings and the summary: see `report`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..dn import DN
from ..entry import Entry
from ..errors import DNError
from ..ldif import ChangeRecord, parse_ldif
from .report import ERROR, INFO, SEVERITIES, WARNING, Finding, Report
from .rules import PROFILES, Elsewhere, Layouts, Profile, validate_entries

__all__ = ["ERROR", "INFO", "PROFILES", "SEVERITIES", "WARNING", "Elsewhere", "Finding", "Layouts", "LdifInput", "Profile",
           "Report", "entries_from_ldif", "entries_from_pairs", "validate_entries"]


@dataclass(frozen=True, slots=True)
class LdifInput:
    """Entries read from LDIF, the findings about records that could not be
    read, and whether anything at all was readable (`readable` False: binary
    data, or nothing but broken records)."""

    entries: tuple[Entry, ...]
    findings: tuple[Finding, ...]
    readable: bool


def entries_from_pairs(records: Iterable[tuple[str, Iterable[tuple[str, str]]]],
                       source: str) -> LdifInput:
    """Entries from (dn, [(attribute, value), ...]); a bad DN becomes a finding."""
    entries: list[Entry] = []
    findings: list[Finding] = []
    for dn, pairs in records:
        try:
            entries.append(Entry.from_pairs(DN.parse(dn), pairs))
        except DNError as e:
            findings.append(Finding(ERROR, dn, None, "ldif.dn", f"{source}: not a DN: {e}"))
    return LdifInput(tuple(entries), tuple(findings), True)


def entries_from_ldif(data: bytes | str, source: str) -> LdifInput:
    """Parse LDIF (RFC 2849); unreadable records and change records become findings."""
    parsed = parse_ldif(data, source)
    findings = [Finding(ERROR, p.dn or "", None, "ldif.syntax",
                        f"{p.where}{f' line {p.line}' if p.line else ''}: {p.message}")
                for p in parsed.problems]
    pairs = []
    for rec in parsed.records:
        if isinstance(rec, ChangeRecord):
            findings.append(Finding(ERROR, rec.dn, None, "ldif.change-record",
                                    f"{source} line {rec.line}: a change record "
                                    f"(changetype: {rec.changetype}), not an entry"))
        else:
            pairs.append((rec.dn, rec.attrs))
    result = entries_from_pairs(pairs, source)
    readable = bool(parsed.records) or not parsed.problems
    return LdifInput(result.entries, tuple(findings) + result.findings, readable)
