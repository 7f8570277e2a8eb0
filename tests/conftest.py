"""Hygiene for every test: a clean environment, mDNS on loopback, no leaked threads."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# session fixtures of real releases (wheels, seeded slot layouts): tests/release_fixtures.py
pytest_plugins = ["tests.release_fixtures"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("LEGATO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LEGATO_MDNS_INTERFACES", "127.0.0.1")
    # Nothing a test runs may write into the real home directory.
    monkeypatch.setenv("LEGATO_SPEAKER_STATE", str(tmp_path / "speaker-state"))
    monkeypatch.setenv("LEGATO_DATA", str(tmp_path / "hub-data-default"))


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"
