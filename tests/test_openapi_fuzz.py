"""schemathesis against the hub's own ``/openapi.json``: nothing a client sends gives a 5xx,
every response matches the schema it is described by, and the catalog survives.

A real hub process on loopback (embedded broker, one speaker, the fixture catalog);
schemathesis's CLI generates requests from the description, with a listener's token.
Bounded: a few examples per operation and a wall-clock limit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.demo_music.seed import seed_demo
from tests.catalog_fixtures import populate
from tests.system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(600)]

CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sysm = System(tmp_path_factory.mktemp("fuzz"), embedded=True)
    seed_demo(sysm.db)
    populate(sysm.db)
    with sysm.running("kitchen"):
        yield sysm


def _counts(system: System) -> dict[str, int]:
    with system.db.reading() as conn:
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("tracks", "albums", "artists", "track_artists", "users")
        }


def test_no_request_breaks_the_hub_or_its_schema(system: System, tmp_path: Path) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe, "schemathesis is installed with the dev extra"
    before = _counts(system)
    report = tmp_path / "schemathesis.txt"
    run = subprocess.run(
        [
            exe,
            "run",
            f"{system.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {system.token()}",
            "--checks",
            CHECKS,
            "--max-examples",
            "12",
            "--seed",
            "4",
            "--request-timeout",
            "15",
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--exclude-path-regex",
            "^/api/token",  # Argon2 per request; tests/test_auth_api.py covers it
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # its example database stays out of the repository
        timeout=540,
        check=False,
    )
    report.write_text(run.stdout + run.stderr)
    tail = (run.stdout + run.stderr)[-6000:]
    assert run.returncode == 0, f"schemathesis found problems (full output: {report}):\n{tail}"
    assert _counts(system) == before, "fuzzing changed the catalog or the accounts"
