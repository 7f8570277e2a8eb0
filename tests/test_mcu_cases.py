"""The front-panel firmware's shared cases (tests/mcu/cases_*.py) under CPython.

The same functions run under MicroPython in test_mcu_under_micropython.py; both runs must see
the same cases.  pytest's ``pythonpath`` (pyproject.toml) puts hardware/mcu and tests/mcu on the
path, as the firmware's modules import each other by their bare names, as on the Pico.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest

CASES_DIR = Path(__file__).resolve().parent / "mcu"


def case_modules() -> list[str]:
    return sorted(path.stem for path in CASES_DIR.glob("cases_*.py"))


def shared_cases() -> list[tuple[str, Callable[[], None]]]:
    """``(module.function, function)`` for every shared case, in the runner's order."""
    found = []
    for module_name in case_modules():
        module = importlib.import_module(module_name)
        for name in sorted(dir(module)):
            if name.startswith("test_"):
                found.append((f"{module_name}.{name}", getattr(module, name)))
    return found


CASES = shared_cases()


def test_there_are_shared_cases() -> None:
    assert len(CASES) > 0


@pytest.mark.parametrize("case", [case for _, case in CASES], ids=[name for name, _ in CASES])
def test_shared_case(case: Callable[[], None]) -> None:
    case()
