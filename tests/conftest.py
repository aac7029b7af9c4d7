"""Shared fixtures."""

from __future__ import annotations

import pytest
import pytest_twisted

from support import Server
from bdii.core.snapshot import Snapshot


@pytest.fixture
def serve():  # type: ignore[no-untyped-def]
    """`serve(snapshot)` starts a server; all are stopped after the test."""
    started: list[Server] = []

    def start(snapshot: Snapshot) -> Server:
        s = Server(snapshot)
        started.append(s)
        return s

    yield start
    for s in started:
        pytest_twisted.blockon(s.stop())


