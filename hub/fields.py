"""Field types for the hub's request models, with the Web API's own wording.

Clients send the same value as JSON (``12``, ``12.0``) or in a query string
(``"12"``); these types accept exactly what Spotify documents and refuse the rest
with a ``legato_*`` error whose message completes the field's name ("must be an
integer"), which :func:`hub.http.validation.message_of` turns into
"volume_percent must be an integer".  Pydantic's own coercions are looser (``True``
as 1, ``"yes"`` as true, 25-digit integers), so every type here validates first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

#: The largest integer every JSON reader keeps exact (and SQLite stores).
MAX_SAFE_INTEGER = 2**53


def refuse(message: str) -> PydanticCustomError:
    """An error whose message follows the field's name: ``refuse("must be a string")``."""
    return PydanticCustomError("legato_value", message)


def as_int(raw: Any) -> int | None:
    """An integer from JSON or a query string; ``None`` for anything else (1e999, "12a",
    true, a 20-digit string)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if math.isfinite(raw) and raw == int(raw) else None
    if isinstance(raw, str):
        text = raw.strip()
        digits = text[1:] if text.startswith("-") else text
        return int(text) if digits.isascii() and digits.isdigit() and len(text) < 20 else None
    return None


def _integer(low: int, high: int | None) -> Callable[[Any], int]:
    def check(raw: Any) -> int:
        value = as_int(raw)
        if value is None:
            raise refuse("must be an integer")
        if value < low or (high is not None and value > high) or value > MAX_SAFE_INTEGER:
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise refuse(f"must be {bound}")
        return value

    return check


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise refuse("must be true or false")


def _strict_boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    raise refuse("must be true or false")


def _string(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    raise refuse("must be a string")


def string_list(message: str, *, exactly: int | None = None) -> Callable[[Any], list[str]]:
    """A non-empty JSON list of strings (of ``exactly`` items when given)."""

    def check(raw: Any) -> list[str]:
        fine = isinstance(raw, list) and raw and all(isinstance(u, str) for u in raw)
        if not fine or (exactly is not None and len(raw) != exactly):
            raise refuse(message)
        return list(raw)

    return check


NonNegative = Annotated[int, BeforeValidator(_integer(0, None)), Field(ge=0)]
Percent = Annotated[int, BeforeValidator(_integer(0, 100)), Field(ge=0, le=100)]
#: ``true``/``false``, as JSON or as a query string.
Boolean = Annotated[bool, BeforeValidator(_boolean)]
#: ``true``/``false`` as JSON only.
StrictBoolean = Annotated[bool, BeforeValidator(_strict_boolean)]
Text = Annotated[str, BeforeValidator(_string)]


#: Any integer a JSON reader keeps exact (callers check the range that matters).
Whole = Annotated[int, BeforeValidator(_integer(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER))]
