"""A wheel's ``Requires-Dist`` lines, read without ``packaging`` (the installer runs
before any dependency may be imported): the name, the version specifiers, and the
environment marker evaluated for a given machine.

Only what Legato's own metadata uses needs to be exact: ``extra == "speaker"``,
``platform_machine == 'aarch64'``, ``python_version < "3.12"``, ``and``/``or`` and
parentheses.  Anything this cannot read counts as "not satisfied", which only ever
sends an install the long, safe way (the package index under the signed pins).
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import sys
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from releases.versions import version_key

NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*")
SPECIFIER = re.compile(r"\s*(~=|===|==|!=|<=|>=|<|>)\s*([A-Za-z0-9.*+!_-]+)\s*")
TOKEN = re.compile(
    r"""\s*(?:(?P<str>'[^']*'|"[^"]*")|(?P<op>===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b)"""
    r"""|(?P<word>and\b|or\b)|(?P<paren>[()])|(?P<var>[A-Za-z_][A-Za-z0-9_.]*))"""
)
VERSION_VARS = frozenset({"python_version", "python_full_version", "implementation_version"})
#: a Raspberry Pi running 64-bit Raspberry Pi OS: what every speaker is
PI = {"platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux"}

Environment = dict[str, str]


@dataclass(frozen=True, slots=True)
class Requirement:
    name: str  # as written
    specifiers: tuple[tuple[str, str], ...]  # ((">=", "2"), ("<", "3"))
    marker: str

    @property
    def key(self) -> str:
        """The name as pip compares names (PEP 503)."""
        return normalise(self.name)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(line: str) -> Requirement:
    """One ``Requires-Dist`` value; ``ValueError`` for one this cannot read."""
    body, _, marker = line.partition(";")
    found = NAME.match(body)
    if found is None:
        raise ValueError(f"not a requirement: {line[:80]!r}")
    rest = body[found.end() :].strip().strip("()")
    specifiers = []
    for part in filter(None, (p.strip() for p in rest.split(","))):
        spec = SPECIFIER.fullmatch(part)
        if spec is None:
            raise ValueError(f"{found.group(1)}: cannot read the version {part[:40]!r}")
        specifiers.append((spec.group(1), spec.group(2)))
    return Requirement(found.group(1), tuple(specifiers), marker.strip())


def environment(extra: str = "", **overrides: str) -> Environment:
    """The marker variables of this machine (``overrides`` win: another platform's)."""
    env = {
        "python_version": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "python_full_version": platform.python_version(),
        "implementation_name": sys.implementation.name,
        "implementation_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_machine": platform.machine(),
        "platform_system": platform.system(),
        "platform_release": platform.release(),
        "sys_platform": sys.platform,
        "os_name": "posix" if sys.platform != "win32" else "nt",
        "extra": extra,
    }
    return {**env, **overrides}


def applies(requirement: Requirement, env: Environment) -> bool:
    """The requirement's marker holds in ``env``; ``ValueError`` for one this cannot read."""
    if not requirement.marker:
        return True
    tokens = [(m.lastgroup or "", m.group(m.lastgroup or 0)) for m in _tokens(requirement.marker)]
    value, at = _or(tokens, 0, env)
    if at != len(tokens):
        raise ValueError(f"cannot read the marker {requirement.marker[:80]!r}")
    return value


def _tokens(marker: str) -> list[re.Match[str]]:
    found, at = [], 0
    while at < len(marker.rstrip()):
        match = TOKEN.match(marker, at)
        if match is None or match.end() == at:
            raise ValueError(f"cannot read the marker {marker[:80]!r}")
        found.append(match)
        at = match.end()
    return found


def _or(tokens: list[tuple[str, str]], at: int, env: Environment) -> tuple[bool, int]:
    value, at = _and(tokens, at, env)
    while at < len(tokens) and tokens[at] == ("word", "or"):
        right, at = _and(tokens, at + 1, env)
        value = value or right
    return value, at


def _and(tokens: list[tuple[str, str]], at: int, env: Environment) -> tuple[bool, int]:
    value, at = _atom(tokens, at, env)
    while at < len(tokens) and tokens[at] == ("word", "and"):
        right, at = _atom(tokens, at + 1, env)
        value = value and right
    return value, at


def _atom(tokens: list[tuple[str, str]], at: int, env: Environment) -> tuple[bool, int]:
    if at < len(tokens) and tokens[at] == ("paren", "("):
        value, at = _or(tokens, at + 1, env)
        if at >= len(tokens) or tokens[at] != ("paren", ")"):
            raise ValueError("unbalanced parentheses in a marker")
        return value, at + 1
    if at + 3 > len(tokens) or tokens[at + 1][0] != "op":
        raise ValueError("a marker compares two values")
    left, op, right = tokens[at], tokens[at + 1][1], tokens[at + 2]
    var = left[1] if left[0] == "var" else right[1] if right[0] == "var" else ""
    return _compare(_value(left, env), " ".join(op.split()), _value(right, env), var), at + 3


def _value(token: tuple[str, str], env: Environment) -> str:
    kind, text = token
    if kind == "str":
        return text[1:-1]
    if kind == "var" and text in env:
        return env[text]
    raise ValueError(f"unknown marker value {text!r}")


def _compare(left: str, op: str, right: str, var: str) -> bool:
    if op == "in":
        return left in right
    if op == "not in":
        return left not in right
    if var == "extra":
        left, right = normalise(left), normalise(right)
    if var in VERSION_VARS:
        return version_matches(left, op, right)
    if op in ("==", "==="):
        return left == right
    if op == "!=":
        return left != right
    return version_matches(left, op, right)


def version_matches(version: str, op: str, wanted: str) -> bool:
    """``version`` ``op`` ``wanted`` (a PEP 440 specifier); ``ValueError`` when either
    is a version this cannot order."""
    if op == "===":
        return version == wanted
    if wanted.endswith(".*") and op in ("==", "!="):
        prefix = [int(p) for p in wanted[:-2].split(".")]
        version_key(version)  # a version this can read, or ValueError
        release = re.match(r"[0-9]+(?:\.[0-9]+)*", version)
        have = [int(p) for p in release.group(0).split(".")] if release else []
        have += [0] * (len(prefix) - len(have))
        return (have[: len(prefix)] == prefix) == (op == "==")
    mine, theirs = version_key(version), version_key(wanted)
    if op == "~=":
        parts = wanted.split("+")[0].split(".")
        if len(parts) < 2:
            raise ValueError(f"~={wanted} needs two parts")
        upper = ".".join(parts[:-1]) + ".*"
        return bool(mine >= theirs) and version_matches(version, "==", upper)
    return bool(
        {
            "==": mine == theirs,
            "!=": mine != theirs,
            "<=": mine <= theirs,
            ">=": mine >= theirs,
            "<": mine < theirs,
            ">": mine > theirs,
        }[op]
    )


def satisfied_by(requirement: Requirement, version: str) -> bool:
    """``version`` of the distribution meets every specifier (unreadable: it does not)."""
    try:
        return all(version_matches(version, op, want) for op, want in requirement.specifiers)
    except (ValueError, KeyError, IndexError):
        return False


def wheel_requires(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of a Legato wheel's own METADATA."""
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(f"legato-{version}.dist-info/METADATA")
    meta = HeaderParser().parsestr(raw.decode("utf-8", "replace"))
    return [str(line) for line in meta.get_all("Requires-Dist") or []]


def unmet(wheel: Path, site: Path, extra: str = "speaker") -> list[str]:
    """What ``wheel`` (with ``extra``) requires on this machine that the distributions
    in ``site`` do not provide (missing, or at a version it does not accept); a
    requirement this cannot read counts as unmet, and so does an unreadable wheel."""
    try:
        lines = wheel_requires(wheel)
    except (OSError, KeyError, IndexError, zipfile.BadZipFile):
        return [wheel.name]
    have: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=[str(site)]):
        name = dist.metadata["Name"]
        if name and normalise(name) != "legato":
            have.setdefault(normalise(name), dist.version)
    env = environment(extra)
    missing = []
    for line in lines:
        try:
            requirement = parse(line)
            if not applies(requirement, env):
                continue
        except ValueError:
            missing.append(line.split(";")[0].strip()[:40])
            continue
        version = have.get(requirement.key)
        if version is None or not satisfied_by(requirement, version):
            missing.append(requirement.name)
    return missing
