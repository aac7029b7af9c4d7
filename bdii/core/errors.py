"""One error taxonomy for the sans-I/O core.

Every problem the core finds in its input is either raised as one of these
exceptions (when nothing sensible can be returned) or collected as a
`Problem` value (when the rest of the input is still good). The shell
translates both once: to a log event, an LDAP result code or an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass


class BdiiError(Exception):
    """Base class of every error the project raises on purpose."""


class DNError(BdiiError, ValueError):
    """A distinguished name that does not follow RFC 4514."""


class LdifError(BdiiError, ValueError):
    """LDIF that cannot be read at all (e.g. a binary file)."""


class FilterError(BdiiError, ValueError):
    """An LDAP filter that cannot be compiled."""


class ConfigError(BdiiError):
    """A configuration with one or more problems; `problems` lists them all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong in one source that was skipped; the rest was kept.

    `where` names the source (a file, provider, plugin or URL) and `line`
    the 1-based line number in its output when known.
    """

    where: str
    message: str
    line: int | None = None
    dn: str | None = None

    def __str__(self) -> str:
        loc = self.where if self.line is None else f"{self.where}:{self.line}"
        if self.dn:
            return f"{loc}: {self.message} (dn: {self.dn})"
        return f"{loc}: {self.message}"
