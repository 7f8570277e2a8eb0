"""Another host's Legato process, for tests/avahi_netns.py: ``python -m tests.mdns_peer``.

``publish RECORD_JSON`` advertises a record; ``watch KIND [RECORD_JSON]`` prints
every change it browses (``added|updated|removed RECORD_JSON``), advertising the
record too if given: one zeroconf instance, as a host must have one responder (a
second one would take some of the unicast answers meant for the first).  The
environment picks the backend (the namespace harness sets zeroconf); the process
runs until stdin closes, so the test decides when it says goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from connect_protocol import mdns


def say(line: str) -> None:
    print(line, flush=True)


def record_of(text: str) -> mdns.ServiceRecord:
    record = mdns.record_from_json(text)
    if record is None:
        raise SystemExit(f"not a record: {text}")
    return record


async def until_stdin_closes() -> None:
    await asyncio.to_thread(sys.stdin.buffer.read)


async def publish(text: str) -> None:
    async with mdns.Advertiser(record_of(text)) as advertiser:
        say(f"published {advertiser.service_name}")
        await until_stdin_closes()
    say("closed")


async def watch(kind: mdns.Kind, text: str | None) -> None:
    def on_change(change: mdns.Change, record: mdns.ServiceRecord) -> None:
        say(f"{change} {mdns.record_to_json(record)}")

    zc = mdns.make_zeroconf()
    try:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(mdns.Browser(kind, on_change, zc=zc))
            if text is not None:
                await stack.enter_async_context(mdns.Advertiser(record_of(text), zc=zc))
            say("watching")
            await until_stdin_closes()
    finally:
        await zc.async_close()


def main(argv: list[str]) -> None:
    match argv:
        case ["publish", text]:
            asyncio.run(publish(text))
        case ["watch", ("speaker" | "hub") as kind, *rest] if len(rest) <= 1:
            asyncio.run(watch("hub" if kind == "hub" else "speaker", rest[0] if rest else None))
        case _:
            raise SystemExit(
                "usage: python -m tests.mdns_peer publish RECORD_JSON | watch KIND [RECORD_JSON]"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
