"""Validation results: findings and their summary, as plain immutable values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ERROR", "INFO", "SEVERITIES", "WARNING", "Finding", "Report"]

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)  # most severe first


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: how bad, which entry and attribute, which rule, and why.

    `dn` is the DN as the input wrote it ("" for a problem of the input as a
    whole), `attribute` is None when the problem is the entry's (a missing
    structural class, a duplicate DN), `rule` a stable dotted name
    (`schema.must`, `glue2.enum`, `egi.policy-rule`) that scripts can filter on.
    """

    severity: str
    dn: str
    attribute: str | None
    rule: str
    message: str

    def to_line(self) -> str:
        """One tab-separated line: severity, DN, attribute ('-' if none), rule, reason."""
        return "\t".join((self.severity, self.dn or "-", self.attribute or "-", self.rule, self.message))

    def to_json(self) -> dict[str, str | None]:
        return {"severity": self.severity, "dn": self.dn, "attribute": self.attribute,
                "rule": self.rule, "message": self.message}


@dataclass(frozen=True, slots=True)
class Report:
    """Every finding of one validation run, in input order, and what was checked."""

    findings: tuple[Finding, ...]
    entries: int
    profile: str

    @classmethod
    def build(cls, findings: Iterable[Finding], entries: int, profile: str) -> Report:
        return cls(tuple(findings), entries, profile)

    @property
    def counts(self) -> dict[str, int]:
        """Findings per severity, every severity present (0 when none)."""
        counts = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            counts[f.severity] += 1
        return counts

    @property
    def ok(self) -> bool:
        """True when nothing is an error (warnings and infos do not fail a run)."""
        return not any(f.severity == ERROR for f in self.findings)

    def summary_line(self) -> str:
        c = self.counts
        return (f"{self.entries} entries checked (profile {self.profile}): "
                f"{c[ERROR]} errors, {c[WARNING]} warnings, {c[INFO]} infos")

    def to_json(self) -> dict[str, object]:
        return {"profile": self.profile, "entries": self.entries, "counts": self.counts,
                "ok": self.ok, "findings": [f.to_json() for f in self.findings]}
