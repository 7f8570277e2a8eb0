"""``.img.xz`` images, as Raspberry Pi OS is downloaded: decompressed next to the
file, with a progress bar, under a temporary name renamed only when complete."""

from __future__ import annotations

import lzma
from pathlib import Path

from hardware.errors import FlashError
from hardware.progress import Progress

CHUNK = 4 << 20


def decompressed_name(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".xz"))


def decompress(path: Path) -> Path:
    """``IMAGE.img.xz`` → ``IMAGE.img`` beside it; refuses to overwrite an existing one."""
    target = decompressed_name(path)
    if target.exists():
        raise FlashError(
            f"{target} already exists: flash it directly (legato-flash {target} …) "
            "or delete it to decompress again"
        )
    partial = target.with_name(f".{target.name}.partial")
    progress = Progress(f"decompressing {path.name}", path.stat().st_size)
    try:
        with path.open("rb") as raw, lzma.open(raw) as src, partial.open("wb") as dst:
            last = 0
            while chunk := src.read(CHUNK):
                dst.write(chunk)
                progress.update(raw.tell() - last)
                last = raw.tell()
    except (lzma.LZMAError, EOFError) as exc:
        partial.unlink(missing_ok=True)
        raise FlashError(f"{path} is not a complete .xz file ({exc}): download it again") from exc
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise FlashError(f"cannot decompress {path}: {exc.strerror or exc}") from exc
    except BaseException:  # Ctrl-C: no half image left behind
        partial.unlink(missing_ok=True)
        raise
    progress.close()
    partial.rename(target)
    return target
