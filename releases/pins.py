"""The dependency pins a release carries: ``name==version`` for everything
``legato[speaker]`` needs, as installed beside this Legato (or, for a release being
added, as the release's own wheel asks).

A constraint only limits what is installed anyway, so pinning the whole set is safe:
the speaker gets the versions this release was tested with.  A requirement the hub
has no copy of (``lgpio``, which only a Pi installs) is listed by its bare name, so
the list still names everything the release needs: a speaker compares lists to know
whether its running slot's packages will do.  Used by ``legato-flash`` (the card's
``constraints.txt``) and by the hub (each release bundle's).
"""

from __future__ import annotations

import importlib.metadata

from releases import requirements
from releases.requirements import Environment

HEADER = "# Pinned: legato[speaker]'s dependencies as installed with it."
UNPINNED = "# Not installed beside the hub (taken from the package index at its newest):"


def platforms() -> list[Environment]:
    """Where a requirement counts: a Pi (linux, aarch64) and this machine."""
    return [requirements.environment("speaker", **requirements.PI), requirements.environment()]


def wanted(lines: list[str], extra: str = "speaker") -> list[requirements.Requirement]:
    """The requirements in ``lines`` (``Requires-Dist`` values) that hold, with
    ``extra``, on a Pi or on this machine; ``ValueError`` for one that cannot be read."""
    found = []
    for line in lines:
        requirement = requirements.parse(line)
        envs = [{**env, "extra": extra} for env in platforms()]
        if any(requirements.applies(requirement, env) for env in envs):
            found.append(requirement)
    return found


def _installed_requires(dist: str) -> list[str]:
    try:
        return importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return []


def constraints(requires: list[str] | None = None) -> str:
    """``name==version`` for what ``legato[speaker]`` needs, as installed here, and
    what those need in turn: only the speaker's side, so no hub or developer pin can
    get in the Pi's way.  ``requires``: the release's own ``Requires-Dist`` (default:
    the installed Legato's)."""
    pins: dict[str, str] = {}
    bare: dict[str, str] = {}
    todo = [(wanted(_installed_requires("legato") if requires is None else requires), "")]
    while todo:
        found, _ = todo.pop()
        for requirement in found:
            key = requirement.key
            if key in pins or key in bare:
                continue
            try:
                pins[key] = f"{requirement.name}=={importlib.metadata.version(requirement.name)}"
            except importlib.metadata.PackageNotFoundError:
                bare[key] = requirement.name  # not installed here: another platform's
                continue
            try:
                deeper = wanted(_installed_requires(requirement.name), extra="")
            except ValueError:
                deeper = []  # an installed package's odd metadata: its own pins only
            todo.append((deeper, key))
    lines = [HEADER] + [pins[k] for k in sorted(pins)]
    if bare:
        lines += [UNPINNED] + [bare[k] for k in sorted(bare)]
    return "\n".join(lines) + "\n"
