"""`bdii.conf` in the legacy KEY=VALUE format, read into one frozen Config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bdii.core.config import Config
from bdii.core.errors import ConfigError

# /etc/bdii/bdii.conf as the legacy bdii package installs it (Debian/Ubuntu).
LEGACY_CONF = """\
BDII_LOG_FILE=/var/log/bdii/bdii-update.log
BDII_PID_FILE=/run/bdii/bdii-update.pid
BDII_LOG_LEVEL=ERROR
BDII_LDIF_DIR=/var/lib/bdii/gip/ldif
BDII_PROVIDER_DIR=/var/lib/bdii/gip/provider
BDII_PLUGIN_DIR=/var/lib/bdii/gip/plugin
BDII_PORT=2170
BDII_BREATHE_TIME=120
BDII_READ_TIMEOUT=300
BDII_ARCHIVE_SIZE=0
BDII_DELETE_DELAY=0
BDII_USER=openldap
BDII_VAR_DIR=/var/lib/bdii
"""
# The EL (RPM) flavour adds keys for slapd and the RAM disk.
LEGACY_RPM_EXTRA = """\
BDII_RAM_DISK=no
SLAPD_CONF=/etc/bdii/bdii-slapd.conf
"""

INSTALLED = Path("/etc/bdii/bdii.conf")
LEGACY_TEXTS = [LEGACY_CONF, LEGACY_CONF + LEGACY_RPM_EXTRA]
if INSTALLED.is_file():
    LEGACY_TEXTS.append(INSTALLED.read_text())


def parse(text: str, **kwargs) -> Config:
    return Config.from_legacy_text(text, "bdii.conf", **kwargs)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


@pytest.mark.parametrize("text", LEGACY_TEXTS)
def test_legacy_bdii_conf_parses(text: str) -> None:
    """The legacy bdii.conf (embedded copies and the one installed here) reads without error."""
    cfg = parse(text)
    assert cfg.port == 2170
    assert cfg.breathe_time == 120
    assert cfg.read_timeout == 300
    assert cfg.delete_delay == 0
    assert cfg.ldif_dir == Path("/var/lib/bdii/gip/ldif")
    assert cfg.provider_dir == Path("/var/lib/bdii/gip/provider")
    assert cfg.plugin_dir == Path("/var/lib/bdii/gip/plugin")
    assert cfg.var_dir == Path("/var/lib/bdii")
    assert cfg.log_file == Path("/var/log/bdii/bdii-update.log")
    assert cfg.log_level == "ERROR"
    assert cfg.user is not None


@pytest.mark.parametrize("text", LEGACY_TEXTS)
def test_legacy_values_are_our_defaults(text: str) -> None:
    """Apart from the log file, pid file and user, the legacy bdii.conf states exactly our defaults."""
    cfg = dataclasses.replace(parse(text), log_file=None, pid_file=None, user=None)
    assert cfg == dataclasses.replace(Config(), source_file="bdii.conf")


def test_slapd_keys_and_unknown_keys_are_notices_not_errors() -> None:
    """SLAPD_CONF and other slapd-era keys, and unknown keys, give notices with file:line."""
    cfg = parse(LEGACY_CONF + LEGACY_RPM_EXTRA + "BDII_FROBNICATE=yes\n")
    assert len(cfg.notices) == 3
    slapd = [n for n in cfg.notices if "SLAPD_CONF" in n]
    assert slapd and slapd[0].startswith("bdii.conf:15:")
    assert any(n.startswith("bdii.conf:16:") and "BDII_FROBNICATE" in n for n in cfg.notices)
    assert any("BDII_RAM_DISK" in n for n in cfg.notices)


def test_quotes_export_and_comments() -> None:
    """Values may be quoted, lines may start with `export`, `#` starts a comment outside quotes."""
    cfg = parse(
        "# a comment line\n"
        "\n"
        'BDII_HOSTNAME="bdii.example.org"\n'
        "export BDII_PORT=2171\n"
        "BDII_SITE_NAME='My Site # not a comment'\n"
        "BDII_BREATHE_TIME=60 # seconds\n"
        "   # indented comment\n"
        "BDII_IPV6_SUPPORT=yes\n"
    )
    assert cfg.hostname == "bdii.example.org"
    assert cfg.port == 2171
    assert cfg.site_name == "My Site # not a comment"
    assert cfg.breathe_time == 60
    assert cfg.ipv6 is True
    assert cfg.notices == ()


def test_empty_file_gives_the_legacy_defaults() -> None:
    """Keys left out keep the legacy defaults."""
    assert parse("") == dataclasses.replace(Config(), source_file="bdii.conf")
    assert Config().port == 2170 and Config().breathe_time == 120


def test_relative_paths_are_taken_from_the_file_directory() -> None:
    """A relative directory is relative to the config file's directory."""
    cfg = parse("BDII_LDIF_DIR=ldif\nBDII_VAR_DIR=/abs\n", base=Path("/etc/bdii"))
    assert cfg.ldif_dir == Path("/etc/bdii/ldif")
    assert cfg.var_dir == Path("/abs")


def test_overrides_win_over_the_file() -> None:
    """Overrides (e.g. from the command line) replace values from the file."""
    assert parse("BDII_PORT=2170\n", overrides={"BDII_PORT": "3000"}).port == 3000


def test_several_bad_values_give_one_error_listing_all() -> None:
    """Every bad value is reported in one ConfigError, each with file:line and the key."""
    problems = problems_of(
        "BDII_LOG_LEVEL=ERROR\n"
        "BDII_PORT=abc\n"
        "BDII_HOSTNAME=bdii.example.org\n"
        "BDII_BREATHE_TIME=-5\n"
        "BDII_IPV6_SUPPORT=maybe\n"
        "this is not a setting\n"
        "BDII_READ_TIMEOUT=soon\n"
    )
    assert len(problems) == 5
    for line, key in [(2, "BDII_PORT"), (4, "BDII_BREATHE_TIME"), (5, "BDII_IPV6_SUPPORT"),
                      (6, "not a KEY=VALUE"), (7, "BDII_READ_TIMEOUT")]:
        assert any(p.startswith(f"bdii.conf:{line}:") and key in p for p in problems), (line, problems)


def test_range_problems_are_listed_with_conversion_problems() -> None:
    """An out-of-range value is reported even when another value could not be read at all."""
    problems = problems_of("BDII_PORT=70000\nBDII_BREATHE_TIME=abc\nBDII_MODE=bogus\n")
    assert len(problems) == 3
    assert any(p.startswith("bdii.conf:1:") and "BDII_PORT" in p for p in problems)
    assert any(p.startswith("bdii.conf:2:") and "BDII_BREATHE_TIME" in p for p in problems)
    assert any(p.startswith("bdii.conf:3:") and "BDII_MODE" in p for p in problems)


def test_unbalanced_quote_is_a_problem_with_its_line() -> None:
    """An unterminated quote is reported at its line, not raised as a shell-lexer error."""
    [problem] = problems_of('BDII_PORT=2170\nBDII_HOSTNAME="oops\n')
    assert problem.startswith("bdii.conf:2:") and "BDII_HOSTNAME" in problem


def test_config_is_frozen() -> None:
    """A Config cannot be changed in place; `dataclasses.replace` makes a new one."""
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.port = 1  # type: ignore[misc]
    assert dataclasses.replace(cfg, port=1).port == 1
