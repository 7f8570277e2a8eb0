"""The firmware's shared cases under real MicroPython (its WebAssembly port, run by node).

``make install`` installs node (scripts/install-system-deps.sh) and the pinned npm package
into build/micropython-wasm; without them this test fails, it never skips.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.test_mcu_cases import CASES

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "mcu" / "run_micropython.mjs"
SUMMARY = re.compile(r"^micropython: (\d+) passed, (\d+) failed$", re.MULTILINE)


def test_the_shared_cases_pass_under_micropython() -> None:
    node = shutil.which("node")
    assert node is not None, (
        "node is missing: `make install` installs it (scripts/install-system-deps.sh, "
        "Debian's nodejs and npm) and MicroPython's WebAssembly port"
    )
    result = subprocess.run(
        [node, str(RUNNER)], capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    summary = SUMMARY.search(result.stdout)
    assert summary is not None, f"no summary from MicroPython (exit {result.returncode}):\n{output}"
    passed, failed = int(summary[1]), int(summary[2])
    assert failed == 0, output
    assert result.returncode == 0, output
    assert passed > 0
    ran = set(re.findall(r"^PASS (\S+)$", result.stdout, re.MULTILINE))
    assert ran == {name for name, _ in CASES}
    assert passed == len(CASES)
