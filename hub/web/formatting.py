"""How the dashboard writes times, sizes and durations for a person (Jinja filters)."""

from __future__ import annotations

from datetime import datetime


def when(ms: int | None) -> str:
    """Epoch milliseconds in the hub's local time, to the minute; '—' for never."""
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def when_s(ms: int | None) -> str:
    """``when`` to the second (events come seconds apart)."""
    return "—" if not ms else datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: int | None) -> str:
    """Milliseconds as m:ss."""
    minutes, seconds = divmod(round((ms or 0) / 1000), 60)
    return f"{minutes}:{seconds:02d}"


def ago(ms: int | None, now_ms: int) -> str:
    """How long before ``now_ms``: "just now", "5 min ago", "3 h ago", "2 days ago"."""
    if not ms:
        return "never"
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return f"{days} day{'s' if days != 1 else ''} ago"


def size(n: int | None) -> str:
    """Bytes in binary units with one decimal: "1.5 MiB"."""
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # unreachable; mypy wants a return


def percent(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.0f}%"
