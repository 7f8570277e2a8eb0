"""``legato-flash``: the console script for provisioning a speaker's SD card image.

Writing an image (Wi-Fi, hub, first-boot config) is not implemented in this
release.  The command keeps its name and ``--help`` so the entry point exists,
and otherwise says plainly on stderr that it is not available, exiting with
status 2 instead of pretending to work; speakers run from a Python install
(``legato-speaker``).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="legato-flash",
        description="Provision a Legato speaker (write an image, set Wi-Fi and hub). "
        "Not available yet: this release only runs speakers from a Python install "
        "(`legato-speaker`).",
    )
    parser.parse_args(argv)
    print("legato-flash: not available yet in this release.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
