"""etc/: the systemd unit verifies, the logrotate snippet relies on SIGHUP, the env file is plain."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from support import ROOT

ETC = ROOT / "etc"


def _unit_settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts bdii.service (ExecStart pointed at this installation's bdii)."""
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze not found: install Debian's systemd (apt-get install systemd)"
    bdii = Path(sys.executable).parent / "bdii"
    assert bdii.exists()
    unit = tmp_path / "bdii.service"
    unit.write_text((ETC / "bdii.service").read_text().replace("/usr/bin/bdii", str(bdii)))
    proc = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr


def test_systemd_unit_runs_unprivileged_in_the_foreground_with_legacy_env_files() -> None:
    settings = _unit_settings((ETC / "bdii.service").read_text())
    assert settings["Type"] == ["simple"]
    assert settings["User"] == ["ldap"]
    assert settings["EnvironmentFile"] == ["-/etc/default/bdii", "-/etc/sysconfig/bdii"]
    assert settings["ExecStart"] == ["/usr/bin/bdii serve -c ${BDII_CONF}"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_logrotate_signals_instead_of_copytruncate() -> None:
    text = (ETC / "logrotate.conf").read_text()
    body = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert "copytruncate" not in body and "nocreate" in body
    assert "systemctl reload bdii.service >/dev/null 2>&1 || true" in body


def test_environment_file_example_is_plain_key_value() -> None:
    """systemd's EnvironmentFile takes KEY=VALUE lines, no shell; BDII_CONF names the default file."""
    lines = [ln for ln in (ETC / "default-bdii").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines == ["BDII_CONF=/etc/bdii/bdii.conf"]


def test_readme_level_examples_are_valid_configurations() -> None:
    """The three complete configurations in the README read without errors or unknown keys."""
    import re

    from bdii.core.config import Config

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The three levels: example configurations", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    modes = []
    for text in blocks:
        cfg = Config.from_legacy_text(text, "README.md")
        assert not [n for n in cfg.notices if "unknown key" in n], text
        modes.append(cfg.mode)
    assert modes == ["resource", "site", "top"]
