"""``legato-hub``: run and administer a hub.

Subcommands: ``up`` (everything on one machine, for a first try), ``serve``,
``user add``, ``device add``, ``broker-config``, ``ingest``, ``history import|clear``,
``keys rotate``, ``licences list|revoke``, ``recommend train|evaluate`` and
``release add|list|rollout|halt|status``.  Every one
takes ``--data DIR`` (default ``$LEGATO_DATA``, else the per-user data directory).
Failures are one line on stderr, exit status 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from connect_protocol import logs
from hub.cli.admin import (
    cmd_broker_config,
    cmd_device_add,
    cmd_device_enrol,
    cmd_keys_rotate,
    cmd_licences,
    cmd_user_add,
)
from hub.cli.history import cmd_history
from hub.cli.ingest import cmd_ingest
from hub.cli.options import default_data_dir
from hub.cli.parser import build_parser
from hub.cli.recommend import cmd_recommend
from hub.cli.release import cmd_release
from hub.cli.run import serve
from hub.errors import (
    AccountError,
    BrokerError,
    CliError,
    DatabaseError,
    HistoryFileError,
    ProvisioningError,
    ReleaseRefused,
)

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    data: Path = (args.data or default_data_dir()).expanduser()
    try:
        match args.command:
            case "up" | "serve":
                with contextlib.suppress(KeyboardInterrupt):
                    return asyncio.run(serve(args, data, up=args.command == "up"))
                return 0
            case "user":
                return cmd_user_add(args, data)
            case "device" if args.device_command == "enrol":
                return cmd_device_enrol(args, data)
            case "device":
                return cmd_device_add(args, data)
            case "broker-config":
                return cmd_broker_config(args, data)
            case "ingest":
                return cmd_ingest(args, data)
            case "history":
                return cmd_history(args, data)
            case "keys":
                return cmd_keys_rotate(args, data)
            case "licences":
                return cmd_licences(args, data)
            case "recommend":
                return cmd_recommend(args, data)
            case "release":
                return cmd_release(args, data)
    except (  # what a command refuses: one line, exit 2
        CliError,
        AccountError,
        ProvisioningError,
        BrokerError,
        DatabaseError,
        HistoryFileError,
        ReleaseRefused,
        ValueError,
    ) as exc:
        print(f"legato-hub: {exc}", file=sys.stderr)
        return 2
    return 2
