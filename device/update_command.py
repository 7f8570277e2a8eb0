"""``legato-speaker update --bundle FILE [--check] [--allow-downgrade]``: a release
from a file (a USB stick, no hub in reach), verified against the pinned release key
and installed into a new slot in trial, exactly as an update from the hub is.

Exit status: 0 installed (with ``--check``: it would be), 2 bad input, 3 the bundle
is refused (the reason is printed), 4 the install failed.  The running speaker
notices the switch and restarts into the new release; if that release does not
prove itself, the speaker goes back by itself.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from device.updates.settings import UpdateSettings, default_state_dir, from_table
from releases import install, settings
from releases.errors import BundleRefusedError, InstallError

DEFAULT_CONFIG = Path("/etc/legato/speaker.toml")
BAR = 30


class StepBar:
    """The install's steps on stderr: a redrawn bar on a terminal, a line per step
    otherwise (a log keeps every line)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.step = ""

    def __call__(self, step: str, share: float) -> None:
        if self.tty:
            filled = "#" * int(min(1.0, share) * BAR)
            line = f"\rinstalling [{filled:<{BAR}}] {share:4.0%} {step:<48.48}"
            print(line, end="", file=self.stream, flush=True)
        elif step != self.step:
            print(f"installing: {share:4.0%} {step}", file=self.stream, flush=True)
        self.step = step

    def close(self, done: bool) -> None:
        """The bar's last line: "done" only when the install was (a refusal or a
        failure says why on its own line)."""
        if self.tty:
            print(file=self.stream, flush=True)
        if done:
            elapsed = time.monotonic() - self.started
            print(f"installing: done in {elapsed:.1f} s", file=self.stream, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="legato-speaker update",
        description="Install a signed Legato release bundle from a file, in trial: the "
        "speaker goes back to the release it runs now unless the new one proves itself.",
    )
    p.add_argument("--bundle", type=Path, required=True, help="a legato-VERSION.legato file")
    p.add_argument("--check", action="store_true", help="verify it only; install nothing")
    p.add_argument(
        "--allow-downgrade", action="store_true", help="an older release, or one rolled back here"
    )
    p.add_argument("--config", type=Path, help=f"the speaker's config (default {DEFAULT_CONFIG})")
    p.add_argument("--root", type=Path, help="the release slots (default: the config's)")
    p.add_argument("--state", type=Path, help="the update state (default: the config's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if config is None:
        return _fail(f"no config at {DEFAULT_CONFIG}: pass --config (it pins the release key)")
    if not args.bundle.is_file():
        return _fail(f"{args.bundle} is not a file")
    try:
        conf = read_settings(config, args.root, args.state)
    except ValueError as exc:
        return _fail(str(exc))
    layout = conf.layout
    running = layout.current()
    try:
        key = conf.release_key
        if not key:
            raise BundleRefusedError(
                "key", f"{config} pins no release key ([updates] release_key): it refuses all"
            )
        if args.check:
            manifest = install.check(args.bundle, key, layout, args.allow_downgrade)
            print(
                f"{args.bundle.name}: Legato {manifest.version}, signed by the pinned key, "
                f"every file intact; it would be installed over {running or 'nothing'}"
            )
            return install.EXIT_OK
        bar = StepBar(sys.stderr)
        done = False
        try:
            manifest = install.install(
                args.bundle, key, layout, allow_downgrade=args.allow_downgrade, progress=bar
            )
            done = True
        finally:
            bar.close(done)
    except BundleRefusedError as exc:
        print(f"legato-speaker update: refused ({exc.reason}): {exc}", file=sys.stderr)
        return install.EXIT_REFUSED
    except InstallError as exc:
        print(f"legato-speaker update: {exc}", file=sys.stderr)
        return install.EXIT_FAILED
    print(f"Legato {manifest.version} is installed. {_after(running)}")
    return install.EXIT_OK


def _after(running: str | None) -> str:
    """What happens next, in words: where a failing trial goes back to, if anywhere."""
    if running is None:
        return (
            "The speaker starts it in trial; there is no earlier release here to go "
            "back to, so it stays even if it fails its trial."
        )
    return (
        "The running speaker restarts into it in trial; unless it reaches the hub and "
        f"can play, it goes back to {running} by itself."
    )


def read_settings(config: Path, root: Path | None, state: Path | None) -> UpdateSettings:
    """The config's ``[updates]`` (parsed as the speaker parses it), with ``--root`` and
    ``--state`` on top; ``ValueError`` naming the problem."""
    try:
        doc = tomllib.loads(settings.read_config(config))  # as root: root's file alone
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{config} is not valid TOML: {exc}") from exc
    table = doc.get("updates", {})
    if not isinstance(table, dict):
        raise ValueError(f"{config}: [updates] must be a table")
    found = from_table(table)
    if root is not None:
        found = replace(found, root=root.absolute())
        if not table.get("state_dir"):
            found = replace(found, state_dir=default_state_dir(found.root))
    if state is not None:
        found = replace(found, state_dir=state.absolute())
    return found


def _fail(message: str) -> int:
    print(f"legato-speaker update: {message}", file=sys.stderr)
    return install.EXIT_USAGE
