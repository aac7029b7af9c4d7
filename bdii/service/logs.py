"""Logging set-up: one text observer, to `BDII_LOG_FILE` or stderr."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

LEVELS = {
    "DEBUG": LogLevel.debug,
    "INFO": LogLevel.info,
    "WARNING": LogLevel.warn,
    "ERROR": LogLevel.error,
    "CRITICAL": LogLevel.critical,
}


def start_logging(level: str, log_file: Path | None = None) -> IO[str]:
    """Send every event at `level` or above to the file (or stderr)."""
    stream: IO[str]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the process
    else:
        stream = sys.stderr
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS.get(level.upper(), LogLevel.info))
    observer = FilteringLogObserver(textFileLogObserver(stream, timeFormat="%Y-%m-%dT%H:%M:%S%z"), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    return stream
