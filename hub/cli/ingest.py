"""``legato-hub ingest PATH...``: add audio files to the catalog, with a progress bar
(or one JSON object per file)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hub.errors import CliError
from hub.listening.imports import rematch
from hub.server import open_database


def cmd_ingest(args: argparse.Namespace, data: Path) -> int:
    # Imported here: numpy, PyAV and scipy are heavy and only ingest needs them.
    from hub.ingest import IngestError, IngestLimits, ingest_paths
    from hub.ingest.progress import Reporter, summary

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or directory: {', '.join(missing)}")
    db = open_database(data)
    reporter = Reporter(
        stdout=sys.stdout, stderr=sys.stderr, json_lines=args.json, interactive=sys.stderr.isatty()
    )
    try:
        with reporter:
            results = ingest_paths(
                db,
                data,
                args.paths,
                jobs=args.jobs,
                on_progress=reporter.progress,
                on_result=reporter.result,
                limits=IngestLimits(
                    max_duration_s=args.max_duration, worker_memory_bytes=args.worker_memory
                ),
            )
    except IngestError as exc:
        raise CliError(str(exc)) from exc
    except KeyboardInterrupt:
        print("interrupted: the tracks reported as added are in the catalog", file=sys.stderr)
        return 130
    if not results:
        found = " ".join(map(str, args.paths))
        raise CliError(f"no .flac, .wav, .mp3 or .ogg files found in {found}")
    print(summary(results), file=sys.stderr)
    if any(r.status == "added" for r in results):
        matched = rematch(db)  # imported plays waiting for these tracks
        if matched:
            print(f"{matched} imported plays now matched to the catalog", file=sys.stderr)
    return 1 if any(r.status == "failed" for r in results) else 0
