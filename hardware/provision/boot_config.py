"""``config.txt`` and ``cmdline.txt``: Legato's lines added, every other line kept.

Both edits are idempotent: a second run replaces Legato's own block or arguments
instead of adding them again.
"""

from __future__ import annotations

from collections.abc import Sequence

BEGIN = "# --- legato-flash: board {board} ---"
END = "# --- end legato-flash ---"
#: The arguments the firstrun hook adds to cmdline.txt, and removes once it ran.
FIRSTRUN_ARGS = ("systemd.run=", "systemd.run_success_action=", "systemd.unit=")


def with_board_lines(config_txt: str, board: str, lines: Sequence[str]) -> str:
    """``config_txt`` with the board's lines in one marked block at the end.

    The block starts with ``[all]`` so that a conditional section earlier in the file
    (``[cm4]``, ``[pi5]``) cannot swallow it; later settings win in config.txt, so a
    ``dtparam=audio=off`` here overrides the stock ``dtparam=audio=on``."""
    kept: list[str] = []
    inside = False
    for line in config_txt.splitlines():
        if line.startswith("# --- legato-flash: board "):
            inside = True
            continue
        if inside:
            inside = line != END
            continue
        kept.append(line)
    if not lines and len(kept) == len(config_txt.splitlines()):
        return config_txt  # no board, and no block of ours to take out
    while kept and not kept[-1].strip():
        kept.pop()
    block = [BEGIN.format(board=board), "[all]", *lines, END] if lines else []
    text = "\n".join(kept + ([""] if kept and block else []) + block)
    return text + "\n" if text else ""


def with_firstrun(cmdline: str, script: str) -> str:
    """``cmdline.txt`` (one line) with the hook that runs ``script`` once at boot,
    its other arguments unchanged and in order."""
    args = [a for a in cmdline.split() if not a.startswith(FIRSTRUN_ARGS)]
    args += [
        f"systemd.run={script}",
        "systemd.run_success_action=reboot",
        "systemd.unit=kernel-command-line.target",
    ]
    return " ".join(args) + "\n"


def without_firstrun(cmdline: str) -> str:
    """What the hook leaves once it ran (the shell script does the same with sed)."""
    return " ".join(a for a in cmdline.split() if not a.startswith(FIRSTRUN_ARGS)) + "\n"
