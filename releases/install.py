"""Install a verified release bundle into a new slot and start its trial.

The order is what makes a power cut harmless: verify (nothing written); unpack,
re-verifying, into ``releases/.new-<version>-<pid>``; build the environment there;
sync; write the slot's ``.legato-complete``; rename it to ``releases/<version>``;
only then :func:`releases.guard.begin_trial` switches ``current``.  A cut anywhere
leaves the running release current and at most a staging directory, which the
guard deletes at the next start.  Any failure removes the staging directory and
raises; the running release is never touched.

``python -m releases.install`` is what ``legato-update.service`` runs (as root) when
the speaker has put ``<state>/install-request.json``, and what the supervisor runs
on machines without systemd.  Exit status: 0 installed (or would install, with
``--check``), 2 bad input, 3 bundle refused, 4 install failed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from releases import bundle as bundle_mod
from releases import guard, incoming, native, requirements, settings, slot
from releases.bundle import Compatibility
from releases.errors import BundleRefusedError, InstallError, ReleaseError
from releases.manifest import CONSTRAINTS, Manifest

REQUEST = "install-request.json"
RESULT = "install-result.json"
INCOMING = incoming.INCOMING
#: one install at a time (the guard's own locks keep it off the staging directory)
LOCK = ".install.lock"
#: a wheelhouse an operator may put beside the slots (offline installs)
WHEELHOUSE = "wheels"
#: pip's cache: root's, beside the slots, never in the state directory the
#: unprivileged speaker can write (a poisoned cache would be installed as root)
PIP_CACHE = "cache/pip"
MAX_REQUEST_BYTES = 64 * 1024
EXIT_OK, EXIT_USAGE, EXIT_REFUSED, EXIT_FAILED = 0, 2, 3, 4


@contextlib.contextmanager
def install_lock(layout: guard.Layout) -> Iterator[None]:
    """One install at a time: two would race for the same slot name."""
    try:
        layout.releases.mkdir(parents=True, exist_ok=True)
        fd = os.open(layout.root / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)  # the speaker's user must not hold it (a lock needs only read)
    except OSError as exc:
        raise InstallError(f"cannot write {layout.root}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise InstallError("another install is running; try again when it is done") from exc
        yield
    finally:
        os.close(fd)


def check(bundle: Path, public_key: bytes, layout: guard.Layout, allow_downgrade: bool) -> Manifest:
    """What :func:`install` would install, or ``BundleRefusedError``.  Writes nothing."""
    compat = Compatibility(installed=layout.current(), allow_downgrade=allow_downgrade)
    manifest = bundle_mod.verify(bundle, public_key, compat)
    slots = layout.load()
    if manifest.version in slots.refused and not allow_downgrade:
        why = ""
        if slots.last is not None and slots.last.version == manifest.version:
            why = f" ({slots.last.reason})"
        raise BundleRefusedError(
            "incompatible",
            f"release {manifest.version} was rolled back on this speaker{why}; "
            "install it again only if asked (--allow-downgrade)",
        )
    return manifest


def install(
    bundle: Path,
    public_key: bytes,
    layout: guard.Layout,
    *,
    allow_downgrade: bool = False,
    progress: slot.Progress | None = None,
) -> Manifest:
    """Install ``bundle`` into a new slot and switch to it in trial; its manifest.
    ``BundleRefusedError`` or ``InstallError`` otherwise, with nothing changed."""
    tell = progress or slot.quiet
    tell("verifying", 0.0)
    check(bundle, public_key, layout, allow_downgrade)  # refused: nothing made, not even a lock
    with install_lock(layout):
        manifest = check(bundle, public_key, layout, allow_downgrade)  # again, under the lock
        compat = Compatibility(installed=layout.current(), allow_downgrade=True)
        try:
            with layout.staging(manifest.version) as staging:  # removed however this ends
                _build(layout, bundle, public_key, manifest, compat, staging, tell)
                tell("switching", 0.97)
                with layout.locked():  # not while the guard settles a start
                    slot.finish(layout, staging, manifest.version)
                    # TODO(F1 merge): pass limit_s=trial_deadline_s + 2 * grace_s + 30 here
                    guard.begin_trial(layout, manifest.version)
        except ReleaseError:
            raise
        except OSError as exc:
            raise InstallError(f"installing {manifest.version} failed: {exc}") from exc
    tell("installed", 1.0)
    return manifest


def _build(
    layout: guard.Layout,
    bundle: Path,
    public_key: bytes,
    manifest: Manifest,
    compat: Compatibility,
    staging: Path,
    tell: slot.Progress,
) -> None:
    files = staging / "bundle"
    files.mkdir()
    tell("unpacking", 0.05)
    if bundle_mod.extract(bundle, public_key, compat, files) != manifest:
        raise BundleRefusedError("format", f"{bundle} was replaced while it was installed")
    final = layout.slot(manifest.version)
    wheel, pins = files / manifest.wheel.name, files / CONSTRAINTS
    tell("making the environment", 0.15)
    slot.make_venv(staging, manifest.version)
    site = slot.site_packages(staging)
    running = _running_slot(layout)
    if running is not None and _same_pins(running, pins) and _links_suffice(running, wheel, tell):
        tell("linking the dependencies", 0.25)
        old_site = slot.site_packages(running)
        slot.link_tree(old_site, site, slot.legato_owned(old_site))
        tell("installing Legato", 0.45)
        slot.install_wheel(staging, wheel)
        fresh = [site / name for name in sorted(slot.legato_owned(site).top)]
    else:
        tell("installing the dependencies (from the package index)", 0.25)
        cache = layout.root / PIP_CACHE
        cache.mkdir(parents=True, exist_ok=True)
        slot.install_from_index(staging, wheel, pins, cache, layout.root / WHEELHOUSE)
        fresh = [site]
    shutil.copyfile(pins, staging / slot.CONSTRAINTS_COPY)
    shutil.rmtree(files)
    tell("building the engine's C library", 0.75)
    why_not = native.build(staging)
    if why_not:
        print(f"legato install: {why_not}", file=sys.stderr, flush=True)
    tell("compiling", 0.85)
    slot.compile_tree(staging, final, fresh)
    slot.rewrite_paths(staging, final)


def _running_slot(layout: guard.Layout) -> Path | None:
    current = layout.current()
    return layout.slot(current) if current in layout.complete() else None


def _links_suffice(running: Path, wheel: Path, tell: slot.Progress) -> bool:
    """The running slot's packages (what the new slot would link) meet every
    requirement the new wheel states for this machine; else it goes to the index (a
    release that needs a package its pins do not name would not even import)."""
    unmet = requirements.unmet(wheel, slot.site_packages(running))
    if unmet:
        say = f"the running release lacks {', '.join(unmet[:5])}: installing from the index"
        print(f"legato install: {say}", file=sys.stderr, flush=True)
        tell("the running release's packages do not do", 0.2)
    return not unmet


def _same_pins(running: Path, pins: Path) -> bool:
    try:
        return (running / slot.CONSTRAINTS_COPY).read_bytes() == pins.read_bytes()
    except OSError:
        return False


# --- the request the speaker leaves, and the answer it reads -------------------------


def read_request(layout: guard.Layout) -> tuple[str, str]:
    """The bundle's name in ``<state>/incoming`` and the version the speaker asked for
    (the request itself is left for :func:`serve_request` to delete); ``ValueError``
    for a bad one.  Read without following links or blocking on a FIFO: the
    speaker's user owns the state directory."""
    try:
        with incoming.open_dir(layout.state) as state_fd:
            data = incoming.read_small(REQUEST, state_fd, MAX_REQUEST_BYTES)
    except OSError as exc:
        raise ValueError(f"no readable install request at {layout.state / REQUEST}") from exc
    try:
        doc = json.loads(data) if len(data) <= MAX_REQUEST_BYTES else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), str) for k in ("bundle", "version")
    ):
        raise ValueError('the install request must be {"bundle": PATH, "version": V}')
    where = layout.state / INCOMING
    bundle = Path(doc["bundle"])
    if bundle.parent != where or not incoming.PLAIN_NAME.fullmatch(bundle.name):
        raise ValueError(f"the install request's bundle must be a file named in {where}")
    return bundle.name, doc["version"]


def delete_request(layout: guard.Layout) -> None:
    """So systemd's path unit does not start this again (a name in a directory the
    speaker owns: unlinked through the directory opened without following links)."""
    with contextlib.suppress(OSError), incoming.open_dir(layout.state) as state_fd:
        os.unlink(REQUEST, dir_fd=state_fd)


def write_result(layout: guard.Layout, doc: dict[str, object]) -> None:
    """``<state>/install-result.json``, atomically, safe in a directory the speaker's
    user owns: the directory opened without following a link, a fresh name created
    exclusively in it, permissions set on the open file, then renamed in place."""
    text = json.dumps(doc, sort_keys=True) + "\n"
    with incoming.open_dir(layout.state) as state_fd:
        name = f".{RESULT}.{os.getpid()}.{time.monotonic_ns()}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(name, flags, 0o644, dir_fd=state_fd)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, RESULT, src_dir_fd=state_fd, dst_dir_fd=state_fd)
        os.fsync(state_fd)


def serve_request(
    layout: guard.Layout,
    public_key: bytes | None,
    key_error: str,
    progress: slot.Progress | None = None,
) -> int:
    """What ``legato-update.service`` does: the request in, the result out.  The speaker
    sees "installing" from before the request is deleted until the final answer."""
    version = ""
    result: dict[str, object]
    copy: Path | None = None
    try:
        name, version = read_request(layout)
        write_result(layout, {"version": version, "state": "installing"})
        delete_request(layout)
        copy = incoming.take(layout.state, name, layout.root / INCOMING)
        if public_key is None:
            raise BundleRefusedError("key", key_error)
        manifest = install(copy, public_key, layout, progress=progress)
        if manifest.version != version:
            guard.say(f"asked for {version}, the bundle held {manifest.version}")
        result = {"version": manifest.version, "ok": True, "reason": "", "code": ""}
        status = EXIT_OK
    except ValueError as exc:
        delete_request(layout)
        result, status = {"ok": False, "reason": str(exc), "code": "format"}, EXIT_USAGE
    except BundleRefusedError as exc:
        result = {"ok": False, "reason": str(exc), "code": exc.reason}
        status = EXIT_REFUSED
    except InstallError as exc:
        result, status = {"ok": False, "reason": str(exc), "code": "install"}, EXIT_FAILED
    finally:
        if copy is not None:
            copy.unlink(missing_ok=True)
    result.setdefault("version", version)
    result["state"] = "done"
    try:
        layout.state.mkdir(parents=True, exist_ok=True)
        write_result(layout, result)
    except OSError as exc:  # a state directory made a link, say: the journal has it
        guard.say(f"cannot write {layout.state / RESULT}: {exc.strerror or exc}")
    if not result["ok"]:
        guard.say(f"install of {version or 'a release'} failed: {result['reason']}")
    return status


def refuse_request(layout: guard.Layout, reason: str) -> None:
    """The request answered without reading it (the config cannot be trusted): the
    speaker hears why, and systemd's path unit does not start this again and again."""
    with contextlib.suppress(OSError):
        delete_request(layout)
        write_result(
            layout, {"version": "", "ok": False, "reason": reason, "code": "key", "state": "done"}
        )


# --- the command line ----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m releases.install",
        description="Install a signed Legato release bundle into a new slot, in trial.",
    )
    p.add_argument("--root", type=Path, help="the release slots (default: the config's)")
    p.add_argument("--state", type=Path, help="the update state directory")
    p.add_argument("--config", type=Path, help="the speaker's config: its [updates] release_key")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--request", action="store_true", help=f"install what <state>/{REQUEST} asks")
    what.add_argument("--bundle", type=Path, help="install this bundle file")
    p.add_argument("--check", action="store_true", help="verify only; install nothing")
    p.add_argument(
        "--allow-downgrade", action="store_true", help="an older release, or a refused one"
    )
    return p


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the staging directory is removed


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o022)  # the slots are read by the speaker's own user
    signal.signal(signal.SIGTERM, _stop)
    try:
        conf = settings.read(args.config, args.root, args.state)
    except ValueError as exc:
        print(f"legato install: {exc}", file=sys.stderr)
        if args.request and args.root and args.state:  # as the unit runs it: answer
            refuse_request(guard.Layout(args.root.absolute(), args.state.absolute()), str(exc))
        return EXIT_USAGE
    layout = conf.layout
    public: bytes | None = None
    key_error = ""
    try:
        public = conf.public_key()
    except BundleRefusedError as exc:
        key_error = str(exc)
    if args.request:
        return serve_request(layout, public, key_error)
    return run_bundle(args.bundle, public, key_error, layout, args.check, args.allow_downgrade)


def run_bundle(
    bundle: Path,
    public: bytes | None,
    key_error: str,
    layout: guard.Layout,
    check_only: bool,
    allow_downgrade: bool,
) -> int:
    if not bundle.is_file():
        print(f"legato install: {bundle} is not a file", file=sys.stderr)
        return EXIT_USAGE
    try:
        if public is None:
            raise BundleRefusedError("key", key_error)
        if check_only:
            manifest = check(bundle, public, layout, allow_downgrade)
            print(f"would install Legato {manifest.version} over {layout.current() or 'nothing'}")
        else:
            manifest = install(bundle, public, layout, allow_downgrade=allow_downgrade)
            print(f"installed Legato {manifest.version}; it starts in trial")
    except BundleRefusedError as exc:
        print(f"legato install: refused ({exc.reason}): {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except InstallError as exc:
        print(f"legato install: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
