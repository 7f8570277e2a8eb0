"""Release versions, ordered as PEP 440 orders the forms Legato uses:
``1.2.3``, ``1.2.3rc1``, ``1.2.3.post1``, ``1.2.3.dev4``, ``1.2.3+local``.

Pure and standard library only: the speaker's guard compares versions before any
dependency can be imported.
"""

from __future__ import annotations

import re

_VERSION = re.compile(
    r"(?P<release>[0-9]+(?:\.[0-9]+){0,5})"
    r"(?:(?P<pre>a|b|rc)(?P<pre_n>[0-9]+))?"
    r"(?:\.post(?P<post>[0-9]+))?"
    r"(?:\.dev(?P<dev>[0-9]+))?"
    r"(?:\+(?P<local>[a-z0-9]+(?:\.[a-z0-9]+)*))?"
)
_PRE_ORDER = {"a": 0, "b": 1, "rc": 2}
MAX_LENGTH = 64

VersionKey = tuple[object, ...]


def is_version(text: str) -> bool:
    return len(text) <= MAX_LENGTH and _VERSION.fullmatch(text) is not None


def version_key(text: str) -> VersionKey:
    """A sort key: ``version_key(a) < version_key(b)`` when ``a`` is older.

    ``ValueError`` for anything that is not a version of the forms above (a slot's
    directory name is a version, so nothing else may become one)."""
    found = _VERSION.fullmatch(text) if len(text) <= MAX_LENGTH else None
    if found is None:
        raise ValueError(f"not a release version: {text[:MAX_LENGTH]!r}")
    release = [int(part) for part in found["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()  # 1.0 == 1.0.0
    dev = int(found["dev"]) if found["dev"] is not None else None
    if found["pre"] is not None:
        pre: tuple[int, int] = (_PRE_ORDER[found["pre"]], int(found["pre_n"]))
    elif dev is not None and found["post"] is None:
        pre = (-1, 0)  # 1.0.dev1 comes before 1.0a1
    else:
        pre = (3, 0)  # a final release comes after its pre-releases
    post = int(found["post"]) if found["post"] is not None else -1
    dev_key = dev if dev is not None else 1 << 62
    local = tuple(
        (1, int(part), "") if part.isdigit() else (0, 0, part)
        for part in (found["local"] or "").split(".")
        if part
    )
    return (tuple(release), pre, post, dev_key, local)


def newer(a: str, b: str) -> bool:
    """``a`` is a later release than ``b``."""
    return version_key(a) > version_key(b)
