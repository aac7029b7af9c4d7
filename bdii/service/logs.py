"""Logging set-up: one text observer, to `BDII_LOG_FILE` or stderr.

The file is reopened on SIGHUP (`LogOutput.reopen`), so logrotate can move
it away and signal the daemon instead of copying and truncating it (which
loses the lines written in between). The level and the file can change on
a configuration reload.
"""

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


class LogOutput:
    """The stream the log observer writes to: a file that can be reopened, or stderr.

    @ivar path: the log file, or None for stderr.
    @ivar stream: where lines go now.
    @ivar predicate: the level filter (its default level changes on reload).
    """

    def __init__(self, path: Path | None, predicate: LogLevelFilterPredicate) -> None:
        self.path = path
        self.predicate = predicate
        self.stream: IO[str] = self._open(path)

    @staticmethod
    def _open(path: Path | None) -> IO[str]:
        if path is None:
            return sys.stderr
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a", encoding="utf-8", buffering=1)  # closed when reopened

    # The file-like interface textFileLogObserver uses.
    def write(self, text: str) -> None:
        self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def reopen(self) -> None:
        """Open the log file again, by name (logrotate has moved it away).

        OSError (the directory is gone, permissions...) leaves the old
        stream in use, for the caller to log.
        """
        if self.path is not None:
            self._switch(self.path)

    def configure(self, path: Path | None, level: str) -> None:
        """A reloaded configuration: the new level, and the new file if it changed."""
        self.predicate.setLogLevelForNamespace("", LEVELS.get(level.upper(), LogLevel.info))
        if path != self.path:
            self._switch(path)

    def _switch(self, path: Path | None) -> None:
        new = self._open(path)
        old, self.stream, self.path = self.stream, new, path
        if old is not sys.stderr:
            old.close()


def start_logging(level: str, log_file: Path | None = None) -> LogOutput:
    """Send every event at `level` or above to the file (or stderr)."""
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS.get(level.upper(), LogLevel.info))
    output = LogOutput(log_file, predicate)
    observer = FilteringLogObserver(textFileLogObserver(output, timeFormat="%Y-%m-%dT%H:%M:%S%z"), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    return output
