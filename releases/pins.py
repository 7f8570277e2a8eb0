"""The dependency pins a release carries: ``name==version`` for everything
``legato[speaker]`` needs, as installed beside this Legato.

A constraint only limits what is installed anyway, so pinning the whole set is safe:
the speaker gets the versions this release was tested with.  Used by ``legato-flash``
(the card's ``constraints.txt``) and by the hub (each release bundle's).
"""

from __future__ import annotations

import importlib.metadata
import re

HEADER = "# Pinned: legato[speaker]'s dependencies as installed with it."


def _requirement_names(dist: str, extras: frozenset[str]) -> list[str]:
    """The distributions ``dist`` (with ``extras``) requires, markers other than
    extras ignored (a pin for something the Pi does not install is harmless)."""
    try:
        requires = importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    names = []
    for line in requires:
        requirement, _, marker = line.partition(";")
        wanted = re.findall(r"""extra\s*==\s*["']([^"']+)["']""", marker)
        if wanted and not extras.intersection(wanted):
            continue
        if found := re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement):
            names.append(found.group(1))
    return names


def constraints() -> str:
    """``name==version`` for what ``legato[speaker]`` needs, as installed beside this
    Legato: only the speaker's side, so no hub or developer pin can get in the Pi's way."""
    pins: dict[str, str] = {}
    todo = [("legato", frozenset({"speaker"}))]
    while todo:
        dist, extras = todo.pop()
        for name in _requirement_names(dist, extras):
            key = re.sub(r"[-_.]+", "-", name).lower()
            if key in pins:
                continue
            try:
                pins[key] = f"{name}=={importlib.metadata.version(name)}"
            except importlib.metadata.PackageNotFoundError:
                continue  # not installed here (another platform's dependency): no pin
            todo.append((name, frozenset()))
    return "\n".join([HEADER] + [pins[k] for k in sorted(pins)]) + "\n"
