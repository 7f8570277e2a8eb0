"""The encrypted store, its licences and its keys, on real files and real cryptography.

A hub is played by a test signing key issuing licences with ``offline_cache.licence.issue``
(the hub's own routes are tested in test_hub_offline.py); time is an injected clock.
"""

from __future__ import annotations

import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_cache import licence as lic
from offline_cache import sealing
from offline_cache.device_keys import DeviceKeys
from offline_cache.store import OfflineStore, StoreError

DAY = lic.DAY_MS
T0 = 1_790_000_000_000  # 2026-09-21
TRACK, OTHER = "t" * 22, "u" * 22


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now


@dataclass
class Hub:
    """What the hub does for licences: a signing key, a KEK per account, issue."""

    signer: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    keks: dict[str, bytes] = field(default_factory=dict)
    issued: int = 0

    @property
    def key_b64(self) -> str:
        return lic.b64(lic.raw_public(self.signer.public_key()))

    def licence(
        self, device_id: str, keys: DeviceKeys, account: str, at_ms: int, **kw: int
    ) -> lic.SignedLicence:
        self.issued += 1
        return lic.issue(
            signer=self.signer,
            licence_id=f"L{self.issued}",
            device_id=device_id,
            account=account,
            device_x25519=keys.x25519_public,
            kek=self.keks.setdefault(account, sealing.new_key()),
            issued_ms=at_ms,
            **kw,
        )


def open_store(root: Path, device_id: str, keys_dir: Path, clock: Clock) -> OfflineStore:
    return OfflineStore(
        root, device_id=device_id, keys=DeviceKeys.load_or_create(keys_dir), now_ms=clock
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub() -> Hub:
    return Hub()


@pytest.fixture
def store(tmp_path: Path, clock: Clock, hub: Hub) -> OfflineStore:
    s = open_store(tmp_path / "cache", "den", tmp_path / "keys", clock)
    s.pin_hub_key(hub.key_b64)
    return s


def download(
    store: OfflineStore, hub: Hub, clock: Clock, track: str = TRACK, account: str = "1"
) -> list[bytes]:
    """A licence and three segments of ``track`` held offline for ``account``."""
    keys = DeviceKeys.load_or_create(store.root.parent / "keys")
    store.accept_licence(hub.licence(store.device_id, keys, account, clock.now))
    segments = [f"{track} segment {n} ".encode() * 100 for n in range(3)]
    store.pin(
        track,
        account=account,
        manifest_json="{}",
        track_json="{}",
        quality="high",
        segments_total=3,
        bytes_total=sum(map(len, segments)),
        explicit_ms=clock.now,
        playlist_position=None,
        item_uri=None,
    )
    for n, data in enumerate(segments):
        store.put_segment(track, "high", n, data)
    return segments


def blob(store: OfflineStore, track: str, n: int) -> Path:
    return store.root / "blobs" / track / "high" / f"{n}.seg"


def test_a_download_reads_back_and_is_not_plain_on_disk(
    store: OfflineStore, hub: Hub, clock: Clock
) -> None:
    segments = download(store, hub, clock)
    assert [store.get_segment(TRACK, "high", n) for n in range(3)] == segments
    record = store.track(TRACK)
    assert record is not None
    assert record.complete
    for n, data in enumerate(segments):
        on_disk = blob(store, TRACK, n).read_bytes()
        assert data[:16] not in on_disk
        assert len(on_disk) == len(data) + sealing.OVERHEAD
    assert store.get_segment(TRACK, "high", 9) is None


def test_keys_and_blobs_are_private(store: OfflineStore, hub: Hub, clock: Clock) -> None:
    download(store, hub, clock)
    keys = store.root.parent / "keys"
    for path in [*keys.iterdir(), store.root / "cache.key", blob(store, TRACK, 0)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_a_damaged_blob_is_refused_dropped_and_never_returned(
    store: OfflineStore, hub: Hub, clock: Clock, damage: str
) -> None:
    download(store, hub, clock)
    path = blob(store, TRACK, 1)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        del data[-5:]
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(sealing.TamperedError, match="segment 1"):
        store.get_segment(TRACK, "high", 1)
    assert not path.exists()
    assert store.get_segment(TRACK, "high", 1) is None  # a miss now: fetched again
    assert store.held(TRACK, "high") == {0, 2}


def test_blobs_swapped_between_tracks_or_positions_fail_their_tags(
    store: OfflineStore, hub: Hub, clock: Clock
) -> None:
    download(store, hub, clock, TRACK)
    download(store, hub, clock, OTHER)
    a, b = blob(store, TRACK, 0), blob(store, OTHER, 0)
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    a.write_bytes(b_bytes)
    b.write_bytes(a_bytes)
    with pytest.raises(sealing.TamperedError):
        store.get_segment(TRACK, "high", 0)
    with pytest.raises(sealing.TamperedError):
        store.get_segment(OTHER, "high", 0)
    shutil.copy(blob(store, TRACK, 2), blob(store, TRACK, 1))  # another position
    with pytest.raises(sealing.TamperedError):
        store.get_segment(TRACK, "high", 1)


def test_a_forged_licence_is_refused(store: OfflineStore, hub: Hub, clock: Clock) -> None:
    keys = DeviceKeys.load_or_create(store.root.parent / "keys")
    forger = Hub()
    with pytest.raises(lic.ForgedLicenceError, match="not signed by this hub"):
        store.accept_licence(forger.licence("den", keys, "1", clock.now))
    # a genuine licence with its body altered (a later expiry) no longer verifies
    genuine = hub.licence("den", keys, "1", clock.now)
    body = lic.unb64(genuine.body).replace(b'"max_tracks":10000', b'"max_tracks":99999')
    with pytest.raises(lic.ForgedLicenceError):
        store.accept_licence(lic.SignedLicence(lic.b64(body), genuine.signature))
    with pytest.raises(lic.ForgedLicenceError):
        lic.SignedLicence.from_json({"body": 1})


def test_a_licence_for_another_device_is_refused(
    tmp_path: Path, store: OfflineStore, hub: Hub, clock: Clock
) -> None:
    other = DeviceKeys.load_or_create(tmp_path / "other-keys")
    with pytest.raises(lic.WrongDeviceError, match="'kitchen', not this one"):
        store.accept_licence(hub.licence("kitchen", other, "1", clock.now))
    # addressed to this id but sealed to another key: refused too
    with pytest.raises(lic.WrongDeviceError):
        store.accept_licence(hub.licence("den", other, "1", clock.now))


def test_day_29_plays_day_31_refuses_with_the_date_and_renewal_restores(
    store: OfflineStore, hub: Hub, clock: Clock
) -> None:
    segments = download(store, hub, clock)
    clock.now = T0 + 29 * DAY
    assert store.get_segment(TRACK, "high", 0) == segments[0]
    clock.now = T0 + 31 * DAY
    with pytest.raises(lic.ExpiredLicenceError) as refused:
        store.get_segment(TRACK, "high", 0)
    assert lic.day(T0 + 30 * DAY) in str(refused.value)
    assert "renew" in str(refused.value)
    assert store.held(TRACK, "high") == {0, 1, 2}  # nothing deleted for expiry alone
    keys = DeviceKeys.load_or_create(store.root.parent / "keys")
    store.accept_licence(hub.licence("den", keys, "1", clock.now))  # same KEK, new dates
    assert store.get_segment(TRACK, "high", 0) == segments[0]


def test_a_clock_set_back_is_refused(store: OfflineStore, hub: Hub, clock: Clock) -> None:
    download(store, hub, clock)
    clock.now = T0 + 20 * DAY
    store.get_segment(TRACK, "high", 0)  # the speaker has seen day 20
    clock.now = T0 + 2 * DAY  # set back, still inside the licence
    with pytest.raises(lic.ClockSetBackError, match="behind a time it has already seen"):
        store.get_segment(TRACK, "high", 0)


def test_the_latest_time_seen_survives_a_restart(
    tmp_path: Path, store: OfflineStore, hub: Hub, clock: Clock
) -> None:
    download(store, hub, clock)
    clock.now = T0 + 20 * DAY
    store.get_segment(TRACK, "high", 0)
    store.close()
    clock.now = T0 + DAY
    again = open_store(store.root, "den", tmp_path / "keys", clock)
    with pytest.raises(lic.ClockSetBackError):
        again.get_segment(TRACK, "high", 0)
    again.close()


def test_a_cache_copied_to_another_speaker_does_not_decrypt(
    tmp_path: Path, store: OfflineStore, hub: Hub, clock: Clock
) -> None:
    download(store, hub, clock)
    store.close()
    shutil.copytree(store.root, tmp_path / "copy")
    # the same id, even: its own keys do not open the licence
    thief = open_store(tmp_path / "copy", "den", tmp_path / "thief-keys", clock)
    with pytest.raises(lic.WrongDeviceError):
        thief.get_segment(TRACK, "high", 0)
    thief.close()
    renamed = open_store(tmp_path / "copy", "kitchen", tmp_path / "thief-keys", clock)
    with pytest.raises(lic.WrongDeviceError, match="another speaker"):
        renamed.get_segment(TRACK, "high", 0)
    renamed.close()


def test_keys_copied_to_another_account_do_not_decrypt(
    store: OfflineStore, hub: Hub, clock: Clock
) -> None:
    download(store, hub, clock, TRACK, account="1")
    download(store, hub, clock, OTHER, account="2")
    db = store._db  # the index itself, as someone editing the file would
    wrapped = db.execute("SELECT wrapped_key FROM tracks WHERE track_id = ?", (TRACK,)).fetchone()
    db.execute(
        "UPDATE tracks SET wrapped_key = ?, account = '2' WHERE track_id = ?", (wrapped[0], OTHER)
    )
    store._content_keys.clear()
    with pytest.raises(sealing.TamperedError, match="does not open with this account"):
        store.get_segment(OTHER, "high", 0)
    db.execute("UPDATE tracks SET account = '2' WHERE track_id = ?", (TRACK,))
    store._content_keys.clear()
    with pytest.raises(sealing.TamperedError):
        store.get_segment(TRACK, "high", 0)


def test_revocation_shreds_keys_and_blobs(store: OfflineStore, hub: Hub, clock: Clock) -> None:
    download(store, hub, clock, TRACK, account="1")
    download(store, hub, clock, OTHER, account="2")
    assert store.shred("1") == 1
    assert store.track(TRACK) is None
    assert store.licence("1") is None
    assert not (store.root / "blobs" / TRACK).exists()
    assert store.get_segment(TRACK, "high", 0) is None
    assert store.get_segment(OTHER, "high", 0) is not None  # the other account keeps its own


def test_a_new_hub_key_shreds_what_the_old_one_licensed(
    store: OfflineStore, hub: Hub, clock: Clock
) -> None:
    download(store, hub, clock)
    assert store.pin_hub_key(hub.key_b64) == 0
    assert store.pin_hub_key(Hub().key_b64) == 1
    assert store.tracks() == []


def test_the_streaming_tier_needs_no_licence_and_keeps_under_its_cap(
    store: OfflineStore, hub: Hub, clock: Clock
) -> None:
    download(store, hub, clock, TRACK)  # pinned: never evicted
    for i in range(5):
        track = f"s{i}".ljust(22, "x")
        store.keep_stream(track, "{}")
        clock.now += 1000
        store.put_segment(track, "normal", 0, bytes(1000))
        store.touch(track)
    assert store.get_segment("s0".ljust(22, "x"), "normal", 0) == bytes(1000)
    gone = store.evict_streamed(cap_bytes=3000 + 2 * 1000)
    assert set(gone) <= {f"s{i}".ljust(22, "x") for i in range(5)}
    assert len(gone) >= 1
    assert store.track(TRACK) is not None
    assert store.stream_bytes() <= 2000 + 1000  # (the download counts too: 3 small segments)


def test_a_streamed_track_becomes_a_download_without_refetching(
    store: OfflineStore, hub: Hub, clock: Clock
) -> None:
    store.keep_stream(TRACK, "{}")
    store.put_segment(TRACK, "high", 0, b"streamed first")
    download(store, hub, clock)  # pins (re-wraps the key) and writes the rest
    assert store.get_segment(TRACK, "high", 0) is not None
    assert store.track(TRACK).tier == "offline"  # type: ignore[union-attr]


def test_bad_addresses_are_refused(store: OfflineStore) -> None:
    with pytest.raises(StoreError):
        store.keep_stream("../../etc", "{}")
    store.keep_stream(TRACK, "{}")
    with pytest.raises(StoreError):
        store.put_segment(TRACK, "../x", 0, b"")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=4096),
    n=st.integers(0, 500),
    flip=st.integers(0, 10_000),
)
def test_seal_and_open_round_trip_and_any_flip_is_caught(data: bytes, n: int, flip: int) -> None:
    key = sealing.new_key()
    sealed = sealing.seal_segment(key, TRACK, "high", n, data)
    assert sealing.open_segment(key, TRACK, "high", n, sealed) == data
    damaged = bytearray(sealed)
    damaged[flip % len(damaged)] ^= 1 << (flip % 8)
    with pytest.raises(sealing.TamperedError):
        sealing.open_segment(key, TRACK, "high", n, bytes(damaged))
    with pytest.raises(sealing.TamperedError):
        sealing.open_segment(key, TRACK, "high", n + 1, sealed)


def test_a_cache_from_a_newer_release_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """Release slots share the cache: after a rollback the older release must not
    damage what a newer one migrated."""
    import sqlite3

    from offline_cache.store import StoreError
    from offline_cache.store.index import SCHEMA_VERSION, connect

    path = tmp_path / "index.db"
    connect(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer Legato"):
        connect(path)
    assert path.read_bytes() == before
