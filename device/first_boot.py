"""``python -m device.first_boot --config FILE``: tell the hub a flashed speaker's
first boot is done, so its dashboard stops saying "waiting for first boot".

Run by the first-boot script once the speaker's own environment is installed; it
finds the hub as the speaker does (its URL, or mDNS with the pinned CA) and speaks
with the speaker's login over the verified HTTPS.  Bounded retries: the network may
still be coming up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from urllib.error import URLError

from device import config as config_mod
from device import hub_link
from device.audio.source import HubMedia, SourceError
from device.config import ConfigError, SpeakerConfig

logger = logging.getLogger("legato.first_boot")


class Refused(ConfigError):  # noqa: N818 - what the hub said
    """The hub answered and said no (HTTP 4xx): trying again will not help."""


def report_once(cfg: SpeakerConfig, timeout_s: float = 10.0) -> None:
    """One attempt; raises Refused, ConfigError (no hub found) or OSError (network)."""
    hub_url = cfg.hub_url
    if not hub_url:  # only the hub's address is needed here, not its broker
        hub_url = asyncio.run(hub_link.find_pinned_hub(cfg, timeout_s)).hub_url
    hub = HubMedia(hub_url, cfg.username, cfg.password, ca_pem=cfg.hub_ca, timeout_s=timeout_s)
    try:
        answer = hub.call("POST", f"/v1/devices/{cfg.id}/first-boot")
    except SourceError as exc:
        raise OSError(str(exc)) from exc
    finally:
        hub.close()
    if 400 <= answer.status < 500:
        raise Refused(f"the hub refused the first-boot report: HTTP {answer.status}")
    if answer.status >= 300:
        raise OSError(f"the hub failed: HTTP {answer.status}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m device.first_boot", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", type=Path, required=True, help="the speaker's config")
    parser.add_argument("--attempts", type=int, default=6, help="tries before giving up")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds between tries")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        cfg = config_mod.load(args.config)
    except ConfigError as exc:
        print(f"first boot report: {exc}", file=sys.stderr)
        return 2
    for attempt in range(1, max(1, args.attempts) + 1):
        try:
            report_once(cfg)
        except Refused as exc:
            print(f"first boot report: {exc}", file=sys.stderr)
            return 1
        except ConfigError as exc:  # no hub found yet: it may still be starting
            print(f"first boot report: {exc}", file=sys.stderr)
        except (URLError, OSError) as exc:
            print(f"first boot report: hub not reachable yet ({exc})", file=sys.stderr)
        else:
            print(f"first boot done: reported to the hub as {cfg.id}")
            return 0
        if attempt < args.attempts:
            time.sleep(args.wait)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
