"""``legato-hub history import FILE... --user NAME [--json]`` and ``history clear``:
a listener's history from Spotify or ListenBrainz exports, and "clear my history".

A progress bar on stderr when it is a terminal; a summary per file (or, with
``--json``, one JSON object per file on stdout)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.accounts import users
from hub.clock import now_ms
from hub.db import Database
from hub.errors import CliError
from hub.listening import imports, retention
from hub.listening.imports import FileReport, Progress
from hub.server import open_database


def _user_id(db: Database, name: str) -> int:
    with db.reading() as conn:
        user_id = users.user_id_of(conn, name)
    if user_id is None:
        raise CliError(f"no such user: {name!r} (see `legato-hub user add`)")
    return user_id


@contextmanager
def _progress_bar(show: bool) -> Iterator[Progress | None]:
    """A rich bar on stderr counting rows, or nothing when stderr is not a terminal."""
    if not show:
        yield None
        return
    from rich.console import Console  # imported here: only an interactive import needs it
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def describe(report: FileReport) -> str:
    """A file's report for a person to read."""
    lines = [
        f"{report.file}: {report.rows} rows, {report.music_rows} of music"
        f" ({report.matched} matched to the catalog, {report.unmatched} not yet),"
        f" {report.duplicates} already imported, {report.not_music} podcasts or empty"
    ]
    if report.top_unmatched_artists:
        named = ", ".join(
            f"{a['artist']} ({a['plays']})" for a in report.top_unmatched_artists[:10]
        )
        lines.append(f"  most played artists not in the catalog: {named}")
    return "\n".join(lines)


def cmd_history(args: argparse.Namespace, data: Path) -> int:
    db = open_database(data)
    user_id = _user_id(db, args.user)
    if args.history_command == "clear":
        n = retention.clear(db, user_id, now_ms())
        print(f"deleted {n} plays of {args.user}")
        return 0
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        raise CliError(f"no such file: {', '.join(missing)}")
    show_bar = not args.json and sys.stderr.isatty()
    with _progress_bar(show_bar) as progress:
        reports = imports.import_files(db, user_id, args.files, on_progress=progress)
    for report in reports:
        if args.json:
            print(json.dumps(report.to_json(), ensure_ascii=False), flush=True)
        else:
            print(describe(report))
    return 0
