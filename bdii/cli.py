"""The command line: argv -> Config -> service. Only this module maps
errors to exit codes; nothing below it calls `sys.exit`."""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path

from bdii.core.config import Config
from bdii.core.errors import ConfigError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def state_dir() -> Path:
    """Where the embedded default configuration keeps its files."""
    if os.environ.get("BDII_STATE_DIR"):
        return Path(os.environ["BDII_STATE_DIR"]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bdii"


# The demo site's providers: (module of bdii.providers, its configuration in
# bdii/default/providers/), each installed as provider/bdii-provider-<conf stem>.
DEFAULT_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("site", "site.conf"), ("bdii", "bdii.conf"), ("ce", "ce.conf"), ("se", "se.conf"),
    ("service", "service-fts.conf"), ("service", "service-voms.conf"),
)
STATE_DIR_PLACEHOLDER = "@STATE_DIR@"


def prepare_default_state(directory: Path) -> Path:
    """Lay out the demo: skeleton LDIF, the demo site's provider configurations
    (provider-config/) and one wrapper per provider (provider/). Returns the conf path."""
    default = resources.files("bdii") / "default"
    for sub in ("ldif", "provider", "plugin", "var", "provider-config"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    for item in (default / "ldif").iterdir():
        if item.name.endswith(".ldif"):
            _write_if_changed(directory / "ldif" / item.name, item.read_text(encoding="utf-8"))
    absolute = directory.resolve()
    for module, name in DEFAULT_PROVIDERS:
        conf_text = (default / "providers" / name).read_text(encoding="utf-8")
        conf_path = absolute / "provider-config" / name
        # The storage element measures the state directory's file system.
        _write_if_changed(conf_path, conf_text.replace(STATE_DIR_PLACEHOLDER, str(absolute)))
        # The interpreter running bdii has jinja2; a bare "python3" on PATH may not.
        script = (f"#!{sys.executable}\nfrom bdii.providers.{module} import main\n"
                  f"raise SystemExit(main(['-c', {str(conf_path)!r}]))\n")
        _write_if_changed(directory / "provider" / f"bdii-provider-{name.removesuffix('.conf')}",
                          script, mode=0o755)
    # Left by versions that ran one demo provider instead.
    (directory / "provider" / "bdii-demo-provider").unlink(missing_ok=True)
    conf = directory / "bdii.conf"
    _write_if_changed(conf, (default / "bdii.conf").read_text(encoding="utf-8"))
    return conf


def _write_if_changed(path: Path, text: str, mode: int | None = None) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    if mode is not None:
        path.chmod(mode)


def load_config(path: str | None) -> Config:
    """Read `-c FILE`, or set up and read the embedded default."""
    if path is None:
        conf = prepare_default_state(state_dir())
    else:
        conf = Path(path)
    try:
        text = conf.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{conf}: cannot read configuration: {exc.strerror}"]) from None
    return Config.from_legacy_text(text, str(conf), base=conf.resolve().parent,
                                   defaults={"BDII_HOSTNAME": socket.getfqdn()})


# Further subcommands live in their own modules, each with
# `add_arguments(subparsers)` (registering its parser with
# `set_defaults(run=...)`, where run(args) -> exit status).
COMMAND_MODULES: tuple[str, ...] = ("bdii.check", "bdii.validate_cmd", "bdii.explain_cmd")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bdii", description="A grid information system (BDII) in one process.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_arguments(sub)
    serve = sub.add_parser("serve", help="run the BDII in the foreground: refresh loop + LDAP server")
    serve.add_argument("-c", "--config", help="bdii.conf (default: the embedded demo configuration)")
    serve.add_argument("--port", type=int, help="override BDII_PORT")
    serve.add_argument("--bind", help="override BDII_BIND_ADDRESS")
    update = sub.add_parser("update", help="run one refresh cycle and print the merged LDIF")
    update.add_argument("-c", "--config", help="bdii.conf (default: the embedded demo configuration)")
    update.add_argument("--with-status", action="store_true", help="also print the o=infosys status entries")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "run", None) is not None:
        return int(args.run(args))
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"bdii: {line}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "serve":
        if args.port:
            config = replace(config, port=args.port)
        if args.bind:
            config = replace(config, bind_address=args.bind)
        from bdii.service.main import serve

        return serve(config)
    from bdii.service.main import update

    return update(config, with_status=args.with_status)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
