"""Files in a FAT volume image, through mtools: no root, no mount, no loop device.

A :class:`FatVolume` is a file that holds exactly one FAT file system (the boot
partition copied out of a disk image).  Paths are POSIX-style from the volume's
root (``legato/speaker.toml``).  mtools' own checks that trip on valid images cut
by other tools are off (``MTOOLS_SKIP_CHECK``), and no user's ``.mtoolsrc`` is read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hardware.errors import FlashError

_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLSRC": os.devnull, "LC_ALL": "C"}


def require_mtools() -> None:
    missing = [tool for tool in ("mcopy", "mdir", "mmd", "mdel") if shutil.which(tool) is None]
    if missing:
        raise FlashError(
            f"mtools is not installed ({', '.join(missing)} missing): "
            "apt install mtools (scripts/install-system-deps.sh does it)"
        )


class FatVolume:
    """Read and write files in the FAT file system held by ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _run(self, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*args],
            input=data,
            capture_output=True,
            env={**os.environ, **_ENV},
            timeout=60,
            check=False,
        )

    def _target(self, name: str) -> str:
        return f"::/{name.strip('/')}"

    def read(self, name: str) -> bytes | None:
        """A file's bytes, or None when it is not there."""
        done = self._run("mcopy", "-n", "-i", str(self.path), self._target(name), "-")
        if done.returncode != 0:
            if b"not found" in done.stderr:
                return None
            raise FlashError(f"cannot read {name} from the boot partition: {_why(done)}")
        return done.stdout

    def exists(self, name: str) -> bool:
        done = self._run("mdir", "-b", "-i", str(self.path), self._target(name))
        return done.returncode == 0

    def names(self, folder: str = "") -> list[str]:
        """Every file under ``folder`` (recursively), as volume paths."""
        done = self._run("mdir", "-/", "-b", "-i", str(self.path), self._target(folder))
        if done.returncode != 0:
            return []
        found = []
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            if line.startswith("::/") and not line.endswith("/"):
                found.append(line[3:])
        return found

    def mkdir(self, folder: str) -> None:
        if self.exists(folder):
            return
        done = self._run("mmd", "-i", str(self.path), self._target(folder))
        if done.returncode != 0:
            raise FlashError(f"cannot make {folder}/ on the boot partition: {_why(done)}")

    def write(self, name: str, data: bytes) -> None:
        """Create or replace ``name`` (its folder must exist), checked by reading it back.

        From a file, not stdin: mcopy reports a full disk with status 0 when it reads
        from a pipe."""
        with tempfile.NamedTemporaryFile(prefix="legato-flash-") as staged:
            staged.write(data)
            staged.flush()
            done = self._run("mcopy", "-o", "-i", str(self.path), staged.name, self._target(name))
        if done.returncode != 0 or self.read(name) != data:
            self.delete(name)  # a short file must not look like a good one
            if b"full" in done.stderr.lower() or b"free cluster" in done.stderr.lower():
                raise FlashError(
                    f"the boot partition is too full for {name} ({len(data):,} bytes): "
                    "free some space on it or use a fresh image"
                )
            raise FlashError(f"cannot write {name} to the boot partition: {_why(done)}")

    def delete(self, name: str) -> None:
        if self.exists(name):
            done = self._run("mdel", "-i", str(self.path), self._target(name))
            if done.returncode != 0:
                raise FlashError(f"cannot delete {name} from the boot partition: {_why(done)}")


def _why(done: subprocess.CompletedProcess[bytes]) -> str:
    text = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
    return text.splitlines()[-1]
