"""What played last survives a restart, so the play button works after a power cut."""

from __future__ import annotations

import asyncio
from pathlib import Path

from connect_protocol.messages import TrackRef
from device.last_played import LastPlayedKeeper, load_last, save_last
from hardware.controls.commands import LastContext

LAST = LastContext(
    context_uri="legato:album:a1",
    tracks=tuple(
        TrackRef(uri=f"legato:track:t{i}", duration_ms=1000 + i, name=f"Song {i}", album="A")
        for i in range(3)
    ),
    offset=2,
    position_ms=500,
)


def test_saved_context_reads_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "state" / "last-played.json"
    assert load_last(path) is None  # a new speaker: nothing yet
    save_last(path, LAST)
    assert load_last(path) == LAST
    assert not path.with_name(path.name + ".tmp").exists()


def test_a_damaged_file_is_ignored_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "last-played.json"
    for junk in (b"", b"{", b'{"type": "pause", "id": "x"}', b"\xff" * 100):
        path.write_bytes(junk)
        assert load_last(path) is None
    save_last(path, LAST)  # and a good save replaces it
    assert load_last(path) == LAST


def test_the_keeper_writes_once_things_settle_and_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "last-played.json"

    async def scenario() -> None:
        keeper = LastPlayedKeeper(path, delay_s=0.05)
        for position in range(0, 5000, 1000):  # a burst of changes
            keeper.remember(LastContext(LAST.context_uri, LAST.tracks, 1, position))
        assert not path.exists()
        for _ in range(100):
            if path.exists():
                break
            await asyncio.sleep(0.01)
        assert load_last(path) == LastContext(LAST.context_uri, LAST.tracks, 1, 4000)
        keeper.remember(LAST)
        await keeper.flush()  # stop: pending work is written now
        assert load_last(path) == LAST

    asyncio.run(scenario())
