"""The engine's small C library (``device/audio/pcm_native.c``) built for this CPU in a
slot's environment.  Without it the speaker uses numpy (slower, same sound), so a
failure is reported, never fatal.

Standard library only, and runnable as ``<slot>/bin/python -m releases.native SLOT``:
the first-boot script (which imports nothing of Legato) builds its first slot with
the same code the installer uses for every later one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = "device/audio/pcm_native.c"
LIBRARY = "libpcm_native.so"
FLAGS = ("-O3", "-fno-trapping-math", "-shared", "-fPIC")


def build(slot: Path, timeout_s: float = 300.0) -> str:
    """Build the library into ``slot``'s site-packages; "" when done, else why not."""
    sources = sorted(slot.glob(f"lib/python3*/site-packages/{SOURCE}"))
    compiler = shutil.which("cc")
    if not sources or compiler is None:
        return "no C compiler or no source: the speaker uses its numpy path for PCM"
    source = sources[0]
    try:
        built = subprocess.run(
            [compiler, *FLAGS, "-o", str(source.with_name(LIBRARY)), str(source), "-lm"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"building the engine's C library failed ({exc}): the speaker uses numpy"
    if built.returncode != 0:
        tail = built.stderr.strip()[-300:]
        return f"building the engine's C library failed ({tail}): the speaker uses numpy"
    return ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m releases.native SLOT", file=sys.stderr)
        return 2
    why_not = build(Path(args[0]))
    if why_not:
        print(f"legato: {why_not}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
