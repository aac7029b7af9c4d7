"""What every information provider shares: its small INI configuration,
VO names and policy rules, GLUE 2.0 times, running site commands, and the
command line (``-c CONFIG [--now TIME]``, one stderr line and exit 1 on a
bad configuration).

Configuration files are human-edited INI::

    # comment
    [section]
    key = value
    other_info = first line
        continued lines are more values

Every error names the file, the line when there is one, the section and the
key. A key that no provider reads is an error too: a typo must not silently
publish the default.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bdii.providers.rendering import join_records, render

__all__ = [
    "ConfigError", "ConfigFile", "ProviderError", "Section", "CommandResult",
    "glue_time", "run_command", "main_for", "render_all", "RESOURCE_SUFFIX13",
    "RESOURCE_SUFFIX20", "vo_rules",
]

RESOURCE_SUFFIX13 = "mds-vo-name=resource,o=grid"
RESOURCE_SUFFIX20 = "GLUE2GroupID=resource,o=glue"
# VO names are DNS-like (EGI VO ID card): what `bdii validate --profile egi` accepts.
_VO_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\Z")
_KEY = re.compile(r"[A-Za-z0-9_.-]+\Z")


class ConfigError(Exception):
    """A problem in a provider's configuration; the message names file, line and key."""


class ProviderError(Exception):
    """The provider cannot produce its data (e.g. the batch system cannot be asked)."""


# --------------------------------------------------------------------------
# configuration


@dataclass
class _Value:
    text: str
    line: int


@dataclass
class Section:
    """One ``[name]`` section; typed getters whose errors name file, line and key.

    Every key read is remembered, so :meth:`ConfigFile.check_unused` can
    report the keys nobody read (typos).
    """

    path: str
    name: str
    line: int
    values: dict[str, _Value] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def _where(self, key: str) -> str:
        v = self.values.get(key)
        line = v.line if v is not None else self.line
        return f"{self.path}:{line}: [{self.name}] {key}"

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self._where(key)}: {message}")

    def has(self, key: str) -> bool:
        self.used.add(key)
        return key in self.values

    def str(self, key: str, default: str | None = None) -> str:
        self.used.add(key)
        v = self.values.get(key)
        if v is None or not v.text.strip():
            if default is not None:
                return default
            raise self.error(key, "missing or empty" if v is None else "empty value")
        return " ".join(v.text.split()) if "\n" not in v.text else v.text.strip()

    def optional(self, key: str) -> str | None:
        self.used.add(key)
        v = self.values.get(key)
        return v.text.strip() if v is not None and v.text.strip() else None

    def lines(self, key: str, default: tuple[str, ...] = ()) -> list[str]:
        """One value per line (continuation lines); for free text with spaces."""
        text = self.optional(key)
        if text is None:
            return list(default)
        return [ln.strip() for ln in text.splitlines() if ln.strip()]

    def list(self, key: str, default: tuple[str, ...] | None = None) -> list[str]:
        """Values separated by spaces, commas or new lines."""
        text = self.optional(key)
        if text is None:
            if default is not None:
                return list(default)
            raise self.error(key, "missing or empty")
        return text.replace(",", " ").split()

    def int(self, key: str, default: int | None = None, minimum: int = 0) -> int:
        text = self.optional(key)
        if text is None:
            if default is not None:
                return default
            raise self.error(key, "missing or empty")
        try:
            value = int(text)
        except ValueError:
            raise self.error(key, f"not an integer: {text!r}") from None
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}: {value}")
        return value

    def float(self, key: str, low: float, high: float) -> float:
        text = self.str(key)
        try:
            value = float(text)
        except ValueError:
            raise self.error(key, f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise self.error(key, f"must be between {low:g} and {high:g}: {text}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.str(key, default)
        if value not in choices:
            raise self.error(key, f"{value!r} is not one of: {', '.join(choices)}")
        return value

    def host(self, key: str) -> str:
        value = self.str(key)
        if not _HOST.match(value):
            raise self.error(key, f"not a host name: {value!r}")
        return value

    def url(self, key: str, default: str | None = None) -> str:
        value = self.str(key, default)
        if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]+\S*\Z", value):
            raise self.error(key, f"not a URL (scheme://host...): {value!r}")
        return value

    def word(self, key: str, default: str | None = None) -> str:
        """A value without spaces (IDs, types, names)."""
        value = self.str(key, default)
        if not value or any(ch.isspace() for ch in value):
            raise self.error(key, f"must be one word without spaces: {value!r}")
        return value

    def vos(self, key: str = "vos", default: list[str] | None = None) -> list[str]:
        """VO names (sorted as written, duplicates dropped)."""
        if default is not None and self.optional(key) is None:
            return list(default)
        out: list[str] = []
        for vo in self.list(key):
            if not _VO_NAME.match(vo):
                raise self.error(key, f"not a VO name (lower case, digits, . _ -): {vo!r}")
            if vo not in out:
                out.append(vo)
        return out

    def mapping(self, key: str) -> dict[str, str]:
        """``a=b c=d`` pairs."""
        out: dict[str, str] = {}
        for item in self.list(key, default=()):
            left, sep, right = item.partition("=")
            if not sep or not left or not right:
                raise self.error(key, f"expected NAME=VALUE, got {item!r}")
            out[left] = right
        return out


class ConfigFile:
    """A parsed provider configuration: sections in file order."""

    def __init__(self, path: str, sections: dict[str, Section]):
        self.path, self.sections = path, sections
        self.used_sections: set[str] = set()

    @classmethod
    def read(cls, path: str) -> ConfigFile:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ConfigError(f"{path}: cannot read: {reason}") from None
        return cls.from_text(text, path)

    @classmethod
    def from_text(cls, text: str, path: str) -> ConfigFile:
        sections: dict[str, Section] = {}
        current: Section | None = None
        last: _Value | None = None
        for n, raw in enumerate(text.splitlines(), 1):
            stripped = raw.strip()
            if not stripped or stripped[0] in "#;":
                continue
            if raw[0] in " \t" and last is not None:
                last.text += "\n" + stripped  # continuation line
                continue
            last = None
            if stripped.startswith("["):
                if not stripped.endswith("]") or len(stripped) < 3:
                    raise ConfigError(f"{path}:{n}: bad section header: {stripped!r}")
                name = stripped[1:-1].strip()
                if name in sections:
                    raise ConfigError(f"{path}:{n}: section [{name}] appears twice "
                                      f"(first at line {sections[name].line})")
                current = sections[name] = Section(path, name, n)
                continue
            key, sep, value = stripped.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ConfigError(f"{path}:{n}: expected 'key = value', got {stripped!r}")
            if current is None:
                raise ConfigError(f"{path}:{n}: {key}: outside any [section]")
            if not _KEY.match(key):
                raise ConfigError(f"{path}:{n}: [{current.name}] bad key name {key!r}")
            if key in current.values:
                raise ConfigError(f"{path}:{n}: [{current.name}] {key}: given twice "
                                  f"(first at line {current.values[key].line})")
            last = current.values[key] = _Value(value.strip(), n)
        return cls(path, sections)

    def section(self, name: str) -> Section:
        self.used_sections.add(name)
        sec = self.sections.get(name)
        if sec is None:
            raise ConfigError(f"{self.path}: missing section [{name}]")
        return sec

    def optional_section(self, name: str) -> Section | None:
        self.used_sections.add(name)
        return self.sections.get(name)

    def prefixed(self, prefix: str) -> Iterator[tuple[str, Section]]:
        """``[prefix:NAME]`` sections in file order, as (NAME, section)."""
        for name, sec in self.sections.items():
            kind, sep, rest = name.partition(":")
            if sep and kind.strip() == prefix:
                self.used_sections.add(name)
                label = rest.strip()
                if not label or any(ch.isspace() or ch in ",=+\"\\<>;#" for ch in label):
                    raise ConfigError(f"{self.path}:{sec.line}: [{name}]: bad name {label!r}")
                yield label, sec

    def check_unused(self) -> None:
        """Report sections and keys no provider read: they are typos."""
        for name, sec in self.sections.items():
            if name not in self.used_sections:
                raise ConfigError(f"{self.path}:{sec.line}: unknown section [{name}]")
            for key, v in sec.values.items():
                if key not in sec.used:
                    raise ConfigError(f"{self.path}:{v.line}: [{name}] {key}: unknown key")


def vo_rules(vos: list[str]) -> list[str]:
    """GLUE policy rules for VOs: ``VO:<name>``."""
    return [f"VO:{vo}" for vo in vos]


def glue_time(t: datetime) -> str:
    """GFD.147 DateTime_t: UTC, seconds, ``Z``."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------
# site commands


@dataclass(frozen=True)
class CommandResult:
    status: int | None  # None: could not run or timed out
    stdout: str
    error: str | None = None  # why it could not run
    stderr: str = ""

    @property
    def first_line(self) -> str:
        """The first non-blank line of stdout, else of stderr."""
        for line in self.stdout.splitlines() + self.stderr.splitlines():
            if line.strip():
                return line.strip()
        return ""


def run_command(command: str | list[str], timeout: float = 30.0) -> CommandResult:
    """Run a configured command (a shell-like word list, no shell)."""
    argv = shlex.split(command) if isinstance(command, str) else command
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return CommandResult(None, "", f"{argv[0]}: no answer within {timeout:g}s")
    except OSError as e:
        return CommandResult(None, "", f"cannot run {argv[0]}: {e.strerror or e}")
    return CommandResult(res.returncode, res.stdout.decode("utf-8", "replace"),
                         stderr=res.stderr.decode("utf-8", "replace"))


def checked_output(command: list[str], timeout: float = 60.0) -> str:
    """stdout of a command that must succeed (the batch system's); else ProviderError."""
    res = run_command(command, timeout)
    if res.status is None:
        raise ProviderError(res.error or f"cannot run {command[0]}")
    if res.status != 0:
        raise ProviderError(f"{' '.join(command)}: exited with status {res.status}")
    return res.stdout


# --------------------------------------------------------------------------
# rendering and the command line


def render_all(templates: tuple[str, ...], model: dict[str, Any]) -> str:
    """All templates rendered in memory: the output is printed whole or not at all."""
    return join_records(render(name, **model) for name in templates)


def _parse_now(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time (e.g. 2024-05-01T12:00:00Z): {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


Generate = Callable[[ConfigFile, datetime], str]


def main_for(name: str, description: str, generate: Generate,
             argv: list[str] | None = None) -> int:
    """The command line every provider shares.

    Exit status 0 with the LDIF on stdout; 1 with one line on stderr (and
    nothing on stdout) for a bad configuration or an unusable batch system.
    """
    prog = f"bdii-provider-{name}"
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-c", "--config", metavar="FILE", required=True,
                        help="the provider's configuration (see etc/providers/)")
    parser.add_argument("--now", metavar="TIME", type=_parse_now,
                        help="pretend the current UTC time is TIME (reproducible output)")
    args = parser.parse_args(argv)
    now = (args.now or datetime.now(timezone.utc)).replace(microsecond=0)
    try:
        cfg = ConfigFile.read(args.config)
        text = generate(cfg, now)
    except (ConfigError, ProviderError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


def provider_version() -> str:
    """The installed bdii version (published as InfoProviderVersion)."""
    try:
        from importlib.metadata import version

        return version("bdii")
    except Exception:  # noqa: BLE001 - not installed: running from a source tree
        return "0"
