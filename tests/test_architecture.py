"""The one-way package graph of the architecture, enforced on every import.

device -> connect_protocol, offline_cache, hardware
hub    -> connect_protocol, offline_cache
offline_cache, hardware -> connect_protocol (hardware), nothing of ours (offline_cache)
connect_protocol -> nothing of ours
Nothing imports device or hub.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("connect_protocol", "device", "hub", "offline_cache", "hardware")
ALLOWED: dict[str, set[str]] = {
    "connect_protocol": set(),
    "offline_cache": set(),
    "hardware": {"connect_protocol"},
    "device": {"connect_protocol", "offline_cache", "hardware"},
    "hub": {"connect_protocol", "offline_cache"},
}
# The speaker's install has no FastAPI: these must never be imported by its side.
HUB_ONLY_LIBRARIES = {"fastapi", "uvicorn", "starlette", "amqtt", "argon2"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_the_architecture_allows(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        ours = imports_of(path) & set(PACKAGES) - {package}
        bad = ours - ALLOWED[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


@pytest.mark.parametrize("package", ["connect_protocol", "device", "offline_cache", "hardware"])
def test_speaker_side_never_needs_hub_libraries(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(imports_of(path) & HUB_ONLY_LIBRARIES)}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if imports_of(path) & HUB_ONLY_LIBRARIES
    ]
    assert offenders == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom hub.relay import Relay\nimport device.cli\n")
    assert imports_of(sample) & set(PACKAGES) == {"hub", "device"}
