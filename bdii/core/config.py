"""`bdii.conf`: the legacy KEY=VALUE format, read into one frozen Config.

Every legacy key keeps its meaning. Problems are collected, not raised one
by one: `Config.from_legacy_text` raises a single ConfigError listing every
bad value with its file and line; unknown keys and keys the legacy BDII
used for slapd are reported as notices (they never stop the service).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import ConfigError

MODES = ("resource", "site", "top")
# BDII_VALIDATE: validate each source at ingest; `strict` also drops the
# entries with errors. The profiles are those of bdii.core.validation.
VALIDATE_MODES = ("off", "warn", "strict")
VALIDATE_PROFILES = ("glue", "egi")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL")

# Keys the legacy BDII read for slapd or its init script: accepted, reported
# at INFO, no effect here (this process is the LDAP server).
IGNORED_KEYS = frozenset({
    "SLAPD_CONF", "SLAPD", "SLAPD_DB_DIR", "SLAPD_PID_FILE", "BDII_BIND", "BDII_RUN_DIR",
    "BDII_PASSWD", "BDII_PASSWD_FILE", "BDII_DAEMON", "DB_CONFIG", "SLAPD_LOG_LEVEL",
    "BDII_RAM_DISK", "BDII_SLAPD_CONF", "SLAPD_DB_DIR_TOP", "BDII_QUERY_TIMEOUT",
})


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the service needs, with the legacy defaults."""

    ldif_dir: Path = Path("/var/lib/bdii/gip/ldif")
    provider_dir: Path = Path("/var/lib/bdii/gip/provider")
    plugin_dir: Path = Path("/var/lib/bdii/gip/plugin")
    var_dir: Path = Path("/var/lib/bdii")
    port: int = 2170
    bind_address: str = "0.0.0.0"
    ipv6: bool = False
    breathe_time: float = 120.0
    read_timeout: float = 300.0
    delete_delay: float = 0.0
    archive_size: int = 0
    log_file: Path | None = None
    log_level: str = "ERROR"
    hostname: str = "localhost"
    user: str | None = None
    pid_file: Path | None = None
    mode: str = "resource"
    site_name: str | None = None
    urls_file: Path | None = None
    source_timeout: float = 30.0
    cache_ttl: float = 3600.0
    source_max_mb: float = 100.0
    fcr_file: Path | None = None
    fcr_url: str | None = None
    fcr_interval: float = 600.0
    # A blacklist hiding more than this share of one VO's resources is refused.
    fcr_max_share: float = 0.5
    gocdb_url: str | None = None
    gocdb_file: Path | None = None
    manual_urls_file: Path | None = None
    gocdb_certification: tuple[str, ...] = ("Certified",)
    gocdb_production: tuple[str, ...] = ("Production",)
    gocdb_interval: float = 3600.0
    # The read-only HTTP/JSON view (status page, /search, /status, /metrics):
    # off unless a port is given; None address: that of the LDAP listener.
    http_port: int | None = None
    http_bind_address: str | None = None
    # Processes answering LDAP queries (BDII_WORKERS), forked after every
    # refresh so that all cores serve; 0: the main process answers itself;
    # None: one per CPU.
    workers: int | None = None
    # At site and top level, run bdii.providers.bdii for this BDII's own
    # bdii_site / bdii_top service entries (BDII_SELF_PROVIDER).
    self_provider: bool = True
    # Object classes left out of fetched trees; None: the level's default
    # (at top level GLUE2ApplicationEnvironment and GLUE2Activity, as the
    # legacy top level did).
    exclude_classes: tuple[str, ...] | None = None
    validate: str = "off"  # off | warn | strict
    validate_profile: str = "glue"
    source_file: str = "<defaults>"
    notices: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_legacy_text(cls, text: str, source: str, base: Path | None = None,
                         overrides: Mapping[str, str] | None = None,
                         defaults: Mapping[str, str] | None = None) -> Config:
        """Parse `KEY=VALUE` lines (`#` comments, optional quotes, `export`).

        Relative paths are taken relative to `base` (the file's directory).
        """
        problems: list[str] = []
        notices: list[str] = []
        values: dict[str, tuple[str, int]] = {k: (v, 0) for k, v in (defaults or {}).items()}
        for no, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[7:].strip()
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or not key.replace("_", "").isalnum():
                problems.append(f"{source}:{no}: not a KEY=VALUE line: {raw.strip()!r}")
                continue
            try:
                parts = shlex.split(value, comments=True)
            except ValueError as exc:
                problems.append(f"{source}:{no}: {key}: {exc}")
                continue
            values[key] = (" ".join(parts), no)
        for key, value in (overrides or {}).items():
            values[key] = (value, 0)
        kwargs: dict[str, object] = {"source_file": source}

        def where(key: str) -> str:
            no = values[key][1]
            return f"{source}:{no}" if no else f"{source} (default or override)"

        for key, (value, _no) in values.items():
            spec = _KEYS.get(key)
            if spec is None:
                if key in IGNORED_KEYS:
                    notices.append(f"{where(key)}: {key} is not used by this BDII (it serves LDAP itself); ignored")
                else:
                    notices.append(f"{where(key)}: unknown key {key}; ignored")
                continue
            attr, kind = spec
            try:
                kwargs[attr] = _convert(kind, value, base)
            except ValueError as exc:
                problems.append(f"{where(key)}: {key}={value!r}: {exc}")
        # Range checks run on every value that converted (the others keep
        # their valid defaults), so that one error lists all the problems.
        cfg = replace(cls(), **kwargs)  # type: ignore[arg-type]
        problems.extend(cfg._check(where_of={k: where(k) for k in values}))
        if problems:
            raise ConfigError(problems)
        return replace(cfg, notices=tuple(notices))

    def _check(self, where_of: Mapping[str, str]) -> list[str]:
        out = []
        loc = lambda key: where_of.get(key, self.source_file)  # noqa: E731
        if self.mode not in MODES:
            out.append(f"{loc('BDII_MODE')}: BDII_MODE must be one of {', '.join(MODES)}, not {self.mode!r}")
        elif self.mode == "site" and not self.site_name:
            out.append(f"{loc('BDII_MODE')}: BDII_MODE=site needs BDII_SITE_NAME")
        lists = (self.urls_file, self.gocdb_url, self.gocdb_file, self.manual_urls_file)
        if self.mode in ("site", "top") and all(x is None for x in lists):
            out.append(f"{loc('BDII_MODE')}: BDII_MODE={self.mode} needs sources: BDII_URLS_FILE"
                       " (or, at top level, BDII_GOCDB_URL / BDII_GOCDB_FILE / BDII_MANUAL_URLS_FILE)")
        if self.validate not in VALIDATE_MODES:
            out.append(f"{loc('BDII_VALIDATE')}: BDII_VALIDATE must be one of {', '.join(VALIDATE_MODES)},"
                       f" not {self.validate!r}")
        if self.validate_profile not in VALIDATE_PROFILES:
            out.append(f"{loc('BDII_VALIDATE_PROFILE')}: BDII_VALIDATE_PROFILE must be one of "
                       f"{', '.join(VALIDATE_PROFILES)}, not {self.validate_profile!r}")
        if self.log_level.upper() not in LOG_LEVELS:
            out.append(f"{loc('BDII_LOG_LEVEL')}: BDII_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        if not 0 < self.port < 65536:
            out.append(f"{loc('BDII_PORT')}: BDII_PORT must be between 1 and 65535")
        if self.http_port is not None and not 0 < self.http_port < 65536:
            out.append(f"{loc('BDII_HTTP_PORT')}: BDII_HTTP_PORT must be between 1 and 65535")
        elif self.http_port == self.port:
            out.append(f"{loc('BDII_HTTP_PORT')}: BDII_HTTP_PORT must differ from BDII_PORT")
        if self.workers is not None and not 0 <= self.workers <= 256:
            out.append(f"{loc('BDII_WORKERS')}: BDII_WORKERS must be between 0 and 256")
        if self.breathe_time <= 0:
            out.append(f"{loc('BDII_BREATHE_TIME')}: BDII_BREATHE_TIME must be positive")
        if self.read_timeout <= 0:
            out.append(f"{loc('BDII_READ_TIMEOUT')}: BDII_READ_TIMEOUT must be positive")
        return out

    @property
    def exclude_objectclasses(self) -> tuple[str, ...]:
        if self.exclude_classes is not None:
            return self.exclude_classes
        return ("GLUE2ApplicationEnvironment", "GLUE2Activity") if self.mode == "top" else ()

    @property
    def python_log_level(self) -> str:
        level = self.log_level.upper()
        return "WARNING" if level == "WARN" else level

    def describe(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if f.name != "notices"}


def _convert(kind: str, value: str, base: Path | None) -> object:
    if kind == "str":
        if not value:
            raise ValueError("must not be empty")
        return value
    if kind == "optstr":
        return value or None
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            raise ValueError("not an integer") from None
    if kind == "optint":
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            raise ValueError("not an integer") from None
    if kind == "seconds":
        try:
            v = float(value)
        except ValueError:
            raise ValueError("not a number of seconds") from None
        if v < 0:
            raise ValueError("must not be negative")
        return v
    if kind == "share":
        try:
            v = float(value)
        except ValueError:
            raise ValueError("not a number") from None
        if not 0 <= v <= 1:
            raise ValueError("must be between 0 and 1")
        return v
    if kind == "bool":
        low = value.lower()
        if low in ("yes", "true", "1", "on"):
            return True
        if low in ("no", "false", "0", "off", ""):
            return False
        raise ValueError("must be yes or no")
    if kind in ("path", "optpath"):
        if not value:
            if kind == "optpath":
                return None
            raise ValueError("must not be empty")
        p = Path(value).expanduser()
        if not p.is_absolute() and base is not None:
            p = base / p
        return p
    if kind == "mode":
        return value.lower()
    if kind == "words":
        return tuple(value.replace(",", " ").split())
    raise AssertionError(kind)


_KEYS: dict[str, tuple[str, str]] = {
    "BDII_LDIF_DIR": ("ldif_dir", "path"),
    "BDII_PROVIDER_DIR": ("provider_dir", "path"),
    "BDII_PLUGIN_DIR": ("plugin_dir", "path"),
    "BDII_VAR_DIR": ("var_dir", "path"),
    "BDII_PORT": ("port", "int"),
    "BDII_BIND_ADDRESS": ("bind_address", "str"),
    "BDII_IPV6_SUPPORT": ("ipv6", "bool"),
    "BDII_BREATHE_TIME": ("breathe_time", "seconds"),
    "BDII_READ_TIMEOUT": ("read_timeout", "seconds"),
    "BDII_DELETE_DELAY": ("delete_delay", "seconds"),
    "BDII_ARCHIVE_SIZE": ("archive_size", "int"),
    "BDII_LOG_FILE": ("log_file", "optpath"),
    "BDII_LOG_LEVEL": ("log_level", "str"),
    "BDII_HOSTNAME": ("hostname", "str"),
    "BDII_USER": ("user", "optstr"),
    "BDII_PID_FILE": ("pid_file", "optpath"),
    "BDII_MODE": ("mode", "mode"),
    "BDII_SITE_NAME": ("site_name", "optstr"),
    "BDII_URLS_FILE": ("urls_file", "optpath"),
    "BDII_SOURCE_TIMEOUT": ("source_timeout", "seconds"),
    "BDII_CACHE_TTL": ("cache_ttl", "seconds"),
    "BDII_SOURCE_MAX_MB": ("source_max_mb", "seconds"),
    "BDII_FCR_FILE": ("fcr_file", "optpath"),
    "BDII_FCR_URL": ("fcr_url", "optstr"),
    "BDII_FCR_INTERVAL": ("fcr_interval", "seconds"),
    "BDII_FCR_MAX_SHARE": ("fcr_max_share", "share"),
    "BDII_GOCDB_URL": ("gocdb_url", "optstr"),
    "BDII_GOCDB_FILE": ("gocdb_file", "optpath"),
    "BDII_MANUAL_URLS_FILE": ("manual_urls_file", "optpath"),
    "BDII_EXCLUDE_OBJECTCLASSES": ("exclude_classes", "words"),
    "BDII_SELF_PROVIDER": ("self_provider", "bool"),
    "BDII_GOCDB_CERTIFICATION_STATUS": ("gocdb_certification", "words"),
    "BDII_GOCDB_PRODUCTION_STATUS": ("gocdb_production", "words"),
    "BDII_GOCDB_INTERVAL": ("gocdb_interval", "seconds"),
    "BDII_HTTP_PORT": ("http_port", "optint"),
    "BDII_HTTP_BIND_ADDRESS": ("http_bind_address", "optstr"),
    "BDII_WORKERS": ("workers", "optint"),
    "BDII_VALIDATE": ("validate", "mode"),
    "BDII_VALIDATE_PROFILE": ("validate_profile", "mode"),
}
