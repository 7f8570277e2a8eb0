"""The one-way package graph of the architecture, enforced on every import, and the
size limits that keep modules small.

device -> connect_protocol, offline_cache, hardware
hub    -> connect_protocol, offline_cache
offline_cache, hardware -> connect_protocol (hardware), nothing of ours (offline_cache)
connect_protocol -> nothing of ours
Nothing imports device or hub, nor the front-panel firmware (hardware/mcu, MicroPython).
Inside the hub the parts are layered too (see ``HUB_ALLOWED`` and docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("connect_protocol", "device", "hub", "offline_cache", "hardware", "releases")
ALLOWED: dict[str, set[str]] = {
    "connect_protocol": set(),
    "offline_cache": set(),
    "releases": set(),
    "hardware": {"connect_protocol", "releases"},
    "device": {"connect_protocol", "offline_cache", "hardware", "releases"},
    "hub": {"connect_protocol", "offline_cache", "releases"},
}
# The speaker's install has no FastAPI: these must never be imported by its side.
HUB_ONLY_LIBRARIES = {"fastapi", "uvicorn", "starlette", "amqtt", "argon2"}
# What the protocol package may import besides the standard library (docs/ARCHITECTURE.md):
# MQTT, mDNS (zeroconf, or avahi-daemon over D-Bus), WebSocket.
PROTOCOL_LIBRARIES = {"paho", "zeroconf", "dbus_fast", "websockets"}


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


@pytest.mark.parametrize(
    "package", ["connect_protocol", "device", "offline_cache", "hardware", "releases"]
)
def test_speaker_side_never_needs_hub_libraries(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(imports_of(path) & HUB_ONLY_LIBRARIES)}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if imports_of(path) & HUB_ONLY_LIBRARIES
    ]
    assert offenders == []


def test_the_protocol_package_needs_only_its_few_libraries() -> None:
    offenders = []
    for path in sorted((ROOT / "connect_protocol").rglob("*.py")):
        outside = imports_of(path) - set(sys.stdlib_module_names) - {"connect_protocol"}
        if outside - PROTOCOL_LIBRARIES:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(outside)}")
    assert offenders == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom hub.relay import Relay\nimport device.cli\n")
    assert imports_of(sample) & set(PACKAGES) == {"hub", "device"}


# --- inside the hub: arrows only downward ---------------------------------------------

#: The hub's parts (a top-level module or sub-package of ``hub``) and those each may
#: import: the foundation, then the domains, then the composition root (``context``),
#: then the faces (``web``, ``http``), then the programs (``server``, ``cli``).
HUB_FOUNDATION = {"errors", "clock", "files", "fields", "schema", "db"}
HUB_DOMAINS = {
    "accounts",
    "catalog",
    "media",
    "ingest",
    "demo_music",
    "fleet",
    "offline",
    "listening",
    "recommend",
    "releases",
    "groups",
}
HUB_ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "clock": set(),
    "files": set(),
    "fields": set(),
    "schema": set(),
    "db": {"errors", "schema"},
    "accounts": HUB_FOUNDATION,
    "catalog": HUB_FOUNDATION,
    "media": HUB_FOUNDATION,
    "fleet": HUB_FOUNDATION | {"catalog", "groups"},
    "groups": HUB_FOUNDATION,
    "ingest": HUB_FOUNDATION | {"catalog", "media", "listening"},
    "listening": HUB_FOUNDATION | {"catalog"},
    "recommend": HUB_FOUNDATION | {"catalog", "listening"},
    "demo_music": HUB_FOUNDATION | {"catalog"},
    "offline": HUB_FOUNDATION | {"accounts", "catalog", "fleet"},
    "releases": HUB_FOUNDATION | {"fleet"},
    "context": HUB_FOUNDATION | HUB_DOMAINS,
    "web": HUB_FOUNDATION | HUB_DOMAINS | {"context"},
    "http": HUB_FOUNDATION | HUB_DOMAINS | {"context", "web"},
    "server": HUB_FOUNDATION | HUB_DOMAINS | {"context", "http"},
    "cli": HUB_FOUNDATION | HUB_DOMAINS | {"context", "http", "server"},
    "__main__": {"cli"},
}
#: Modules that must not import each other although their parts may.
HUB_APART = [("hub.offline", "hub.fleet.player")]


def hub_modules_imported_by(path: Path) -> set[str]:
    """Dotted ``hub.…`` names a file imports (``from hub import x`` counts as ``hub.x``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("hub."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "hub":
                names.update(f"hub.{a.name}" for a in node.names)
            elif node.module.startswith("hub."):
                names.add(node.module)
    return names


def hub_part(dotted: str) -> str:
    return dotted.split(".")[1]


def test_every_hub_part_is_in_the_layering() -> None:
    tops = {p.stem for p in (ROOT / "hub").glob("*.py")} - {"__init__"}
    packages = {p.parent.name for p in (ROOT / "hub").glob("*/__init__.py")}
    assert tops | packages == set(HUB_ALLOWED)


def test_hub_parts_import_only_downward() -> None:
    offenders = []
    for path in sorted((ROOT / "hub").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        if rel.parts == ("hub", "__init__"):
            continue
        part = rel.parts[1]
        for imported in hub_modules_imported_by(path):
            other = hub_part(imported)
            if other != part and other not in HUB_ALLOWED[part]:
                offenders.append(f"{path.relative_to(ROOT)} ({part}) imports {imported}")
    assert offenders == []


@pytest.mark.parametrize(("importer", "imported"), HUB_APART)
def test_player_and_offline_services_do_not_import_each_other(importer: str, imported: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted(ROOT.joinpath(*importer.split(".")).rglob("*.py"))
        for name in hub_modules_imported_by(path)
        if name == imported or name.startswith(imported + ".")
    ]
    assert offenders == []


def test_the_hub_checker_sees_an_upward_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("from hub import context\nfrom hub.http.objects import tracks\n")
    assert hub_modules_imported_by(sample) == {"hub.context", "hub.http.objects"}


# --- sizes: small modules, short functions ----------------------------------------------

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
MAX_HUB_TOP_MODULES = 12


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_and_functions_stay_small(package: str) -> None:
    too_big = []
    for path in sorted((ROOT / package).rglob("*.py")):
        text = path.read_text()
        where = path.relative_to(ROOT)
        if text.count("\n") > MAX_MODULE_LINES:
            too_big.append(f"{where}: {text.count(chr(10))} lines")
        for fn in _functions(ast.parse(text)):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if length > MAX_FUNCTION_LINES:
                too_big.append(f"{where}:{fn.lineno} {fn.name}() {length} lines")
    assert too_big == []


def test_the_hub_top_level_holds_only_its_core() -> None:
    modules = sorted(p.name for p in (ROOT / "hub").glob("*.py"))
    assert len(modules) <= MAX_HUB_TOP_MODULES, modules


# --- the front-panel firmware: MicroPython on the panel's microcontroller, imported by nothing ---

FIRMWARE = ROOT / "hardware" / "mcu"
#: What the firmware may import: its own modules and what MicroPython on the RP2040 has.
#: (``typing`` and ``collections.abc`` only under ``if TYPE_CHECKING:``, never run there.)
FIRMWARE_LIBRARIES = {"machine", "micropython", "neopixel", "rp2", "select", "sys", "time", "gc"}
FIRMWARE_LIBRARIES |= {"typing", "collections"}


def firmware_modules() -> set[str]:
    return {path.stem for path in FIRMWARE.glob("*.py")}


def test_the_firmware_is_no_package() -> None:
    # Not a package, so neither the wheel nor any import of ``hardware`` takes it along.
    assert not (FIRMWARE / "__init__.py").exists()
    assert len(firmware_modules()) > 0


def test_nothing_imports_the_firmware() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if FIRMWARE in path.parents:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                offenders += [
                    f"{path.relative_to(ROOT)} imports {name}"
                    for name in names
                    if name == "hardware.mcu" or name.startswith("hardware.mcu.")
                ]
    assert offenders == []


def test_the_firmware_imports_only_itself_and_micropython_modules() -> None:
    allowed = firmware_modules() | FIRMWARE_LIBRARIES
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(imports_of(path) - allowed)}"
        for path in sorted(FIRMWARE.glob("*.py"))
        if imports_of(path) - allowed
    ]
    assert offenders == []


def test_the_guard_needs_only_the_standard_library() -> None:
    """It runs outside the slots, before anything of a release is imported."""
    path = ROOT / "releases" / "guard.py"
    assert imports_of(path) - set(sys.stdlib_module_names) - {"__future__"} == set()
