"""``legato-flash``: maker provisioning (SD card images, first-boot config).

Provisioning lands with its own issue; until then the command says so plainly
instead of pretending to work.
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
