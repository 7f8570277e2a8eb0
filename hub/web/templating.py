"""The Jinja2 environment and the static files' cache-busting version."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")


@cache
def static_version() -> str:
    """A digest of every static file: a new release never runs with old cached scripts."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def static_url(name: str) -> str:
    return f"/static/{name}?v={static_version()}"


templates.env.globals["static"] = static_url
