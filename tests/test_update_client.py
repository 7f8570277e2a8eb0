"""The speaker's updater against a real HTTP server on loopback serving a real signed
bundle of a wheel of this checkout: offers, resume, refusals, the install request."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.audio.source import HubMedia
from device.updates import offer as offer_mod
from device.updates.client import (
    INCOMING,
    INSTALLING_STALE_S,
    REQUEST_FILE,
    RESULT_FILE,
    Updater,
)
from device.updates.download import BundleDownload, DownloadError, part_path
from device.updates.reporting import ReportedFile
from device.updates.settings import UpdateSettings
from releases.signing import ReleaseKey
from tests.update_fixtures import HubStandIn, Release, Served, offer_for

pytestmark = pytest.mark.integration

NEW = "0.2.0"
RUNNING = "0.1.0"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    return Release.build(tmp_path_factory.mktemp("release"), NEW)


@dataclass
class Rig:
    served: Served
    hub: HubStandIn
    state: Path
    reports: list[tuple[str, str, str]] = field(default_factory=list)
    refused_here: tuple[str, ...] = ()

    def updater(
        self,
        key: bytes,
        running: str = RUNNING,
        interval_s: float = 600,
        in_slots: bool = True,
    ) -> Updater:
        settings = UpdateSettings(
            release_key=key,
            check_interval_s=interval_s,
            root=self.state.parent / "opt",
            state_dir=self.state,
        )
        return Updater(
            settings,
            running=running,
            device_id="den",
            hub=HubMedia(self.hub.url, "den", "s3cret"),
            report=lambda *r: self.reports.append(r),
            refused_here=lambda: self.refused_here,
            reported=ReportedFile(self.state),
            in_slots=in_slots,
        )

    def request(self) -> dict[str, str] | None:
        path = self.state / REQUEST_FILE
        return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def rig(tmp_path: Path, release: Release) -> Iterator[Rig]:
    served = Served("den", "s3cret", bundles={NEW: release.body})
    with HubStandIn(served) as hub:
        yield Rig(served, hub, tmp_path / "state")


def check(rig: Rig, key: bytes, **kw: object) -> str:
    updater = rig.updater(key, **kw)  # type: ignore[arg-type]
    try:
        return updater.check_once()
    finally:
        updater.hub.close()


def test_an_offered_release_is_fetched_verified_and_handed_to_the_installer(
    rig: Rig, release: Release
) -> None:
    rig.served.offer = offer_for(release.bundle, NEW)
    assert check(rig, release.key.public) == "requested"
    request = rig.request()
    assert request is not None
    assert request["version"] == NEW
    fetched = Path(request["bundle"])
    assert fetched == rig.state / INCOMING / f"legato-{NEW}.legato"
    assert fetched.read_bytes() == release.body
    assert rig.reports == [("downloading", NEW, ""), ("installing", NEW, "")]
    assert rig.served.ranges == [None]
    # asked again while the installer has not run: nothing is fetched twice
    assert check(rig, release.key.public) == "requested"
    assert rig.served.ranges == [None]


@pytest.mark.parametrize("where", ["first byte", "half way", "last byte"])
def test_a_transfer_cut_short_resumes_where_it_stopped_byte_exact(
    rig: Rig, release: Release, where: str
) -> None:
    size = len(release.body)
    half = {"first byte": 1, "half way": size // 2, "last byte": size - 1}[where]
    rig.served.offer = offer_for(release.bundle, NEW)
    rig.served.cut_after, rig.served.cuts_left = half, 1
    assert check(rig, release.key.public) == "requested"
    assert rig.served.ranges == [None, f"bytes={half}-"]
    assert rig.served.bytes_sent == len(release.body)  # nothing sent twice
    request = rig.request()
    assert request is not None
    assert hashlib.sha256(Path(request["bundle"]).read_bytes()).digest() == (
        hashlib.sha256(release.body).digest()
    )


def test_a_part_left_by_an_earlier_run_is_continued(rig: Rig, release: Release) -> None:
    offer = offer_for(release.bundle, NEW)
    rig.served.offer = offer
    parsed = offer_mod.parse_offer(json.dumps(offer).encode())
    part = part_path(rig.state / INCOMING, parsed)
    part.parent.mkdir(parents=True)
    held = len(release.body) // 3
    part.write_bytes(release.body[:held])
    (rig.state / INCOMING / "legato-0.1.5.legato").write_bytes(b"an older download")
    assert check(rig, release.key.public) == "requested"
    assert rig.served.ranges == [f"bytes={held}-"]
    assert sorted(p.name for p in (rig.state / INCOMING).iterdir()) == [f"legato-{NEW}.legato"]


def test_a_connection_that_keeps_dropping_gives_up_and_keeps_what_it_has(
    rig: Rig, release: Release
) -> None:
    rig.served.offer = offer_for(release.bundle, NEW)
    rig.served.cut_after, rig.served.cuts_left = 1000, 99
    offer = offer_mod.parse_offer(json.dumps(rig.served.offer).encode())
    hub = HubMedia(rig.hub.url, "den", "s3cret")
    waits: list[float] = []
    download = BundleDownload(hub, offer, rig.state / INCOMING, sleep=waits.append, attempts=3)
    try:
        with pytest.raises(DownloadError) as caught:
            download.run()
    finally:
        hub.close()
    assert not caught.value.final  # the next check goes on from here
    assert "3000 of" in str(caught.value)
    assert len(waits) == 2
    assert all(0 < w <= 30 for w in waits)
    assert rig.served.ranges == [None, "bytes=1000-", "bytes=2000-"]
    assert part_path(rig.state / INCOMING, offer).read_bytes() == release.body[:3000]


def tampered(body: bytes) -> bytes:
    """The bundle with one byte of the wheel inside it flipped."""
    with tarfile.open(fileobj=__import__("io").BytesIO(body)) as tar:
        wheel = next(m for m in tar.getmembers() if m.name.endswith(".whl"))
    at = wheel.offset_data + wheel.size // 2
    return body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]


def test_a_tampered_bundle_is_refused_reported_deleted_and_not_fetched_again(
    rig: Rig, release: Release
) -> None:
    bad = tampered(release.body)
    rig.served.bundles[NEW] = bad
    rig.served.offer = offer_for(release.bundle, NEW, bad)  # the hub vouches for it
    assert check(rig, release.key.public) == "refused"
    assert rig.request() is None
    assert list((rig.state / INCOMING).iterdir()) == []
    (downloading, failed) = rig.reports
    assert downloading == ("downloading", NEW, "")
    assert failed[:2] == ("failed", NEW)
    assert failed[2].startswith("refused (hash)")
    assert check(rig, release.key.public) == "skipped"  # held back for a while
    assert len(rig.served.ranges) == 1
    assert len(rig.reports) == 2


def test_a_bundle_signed_by_another_key_is_refused(rig: Rig, release: Release) -> None:
    rig.served.offer = offer_for(release.bundle, NEW)
    assert check(rig, ReleaseKey.generate().public) == "refused"
    assert rig.reports[-1][2].startswith("refused (signature)")
    assert rig.request() is None


def test_bytes_other_than_offered_are_refused_before_verification(
    rig: Rig, release: Release
) -> None:
    rig.served.offer = {**offer_for(release.bundle, NEW), "sha256": "0" * 64}
    assert check(rig, release.key.public) == "download-failed"
    assert rig.reports[-1][:2] == ("failed", NEW)
    assert "sha256" in rig.reports[-1][2]
    assert list((rig.state / INCOMING).iterdir()) == []


def test_a_release_rolled_back_here_is_reported_once_and_never_fetched(
    rig: Rig, release: Release
) -> None:
    rig.served.offer = offer_for(release.bundle, NEW)
    rig.refused_here = (NEW,)
    assert check(rig, release.key.public) == "skipped"
    assert check(rig, release.key.public) == "skipped"
    assert rig.reports == [("skipped", NEW, "rolled back here before")]
    assert rig.served.ranges == []


def test_no_pinned_key_fetches_nothing_and_says_why_once(rig: Rig, release: Release) -> None:
    rig.served.offer = offer_for(release.bundle, NEW)
    assert check(rig, b"") == "skipped"
    assert check(rig, b"") == "skipped"
    assert len(rig.reports) == 1
    assert rig.reports[0][:2] == ("skipped", NEW)  # not the release's fault
    assert "updates.release_key" in rig.reports[0][2]
    assert rig.served.ranges == []


def test_a_speaker_not_in_release_slots_says_once_it_skips_and_fetches_nothing(
    rig: Rig, release: Release
) -> None:
    rig.served.offer = offer_for(release.bundle, NEW)
    assert check(rig, release.key.public, in_slots=False) == "skipped"
    assert check(rig, release.key.public, in_slots=False) == "skipped"
    assert len(rig.reports) == 1
    assert rig.reports[0][:2] == ("skipped", NEW)
    assert "release slots" in rig.reports[0][2]
    assert rig.served.ranges == []


def test_a_full_disk_is_reported_skipped_not_failed(
    rig: Rig, release: Release, monkeypatch: pytest.MonkeyPatch
) -> None:
    import device.updates.download as download_mod

    rig.served.offer = offer_for(release.bundle, NEW)
    # the disk is real; only the spare room asked for is more than any disk has
    monkeypatch.setattr(download_mod, "SPARE_BYTES", 2**62)
    assert check(rig, release.key.public) == "download-failed"
    assert rig.reports[-1][:2] == ("skipped", NEW)
    assert "not enough disk space" in rig.reports[-1][2]
    assert rig.served.ranges == []


def installing(rig: Rig, version: str) -> Path:
    """What root's installer leaves while it works: the request gone, its marker there."""
    (rig.state / REQUEST_FILE).unlink(missing_ok=True)
    marker = rig.state / RESULT_FILE
    marker.write_text(json.dumps({"version": version, "state": "installing"}))
    return marker


def test_no_second_request_while_root_installs_and_its_bundle_is_left_alone(
    rig: Rig, release: Release
) -> None:
    rig.served.offer = offer_for(release.bundle, NEW)
    assert check(rig, release.key.public) == "requested"
    bundle = Path(rig.request()["bundle"])  # type: ignore[index]
    installing(rig, NEW)
    assert check(rig, release.key.public) == "requested"
    assert rig.request() is None  # not asked twice: the second run would say "installed"
    assert rig.served.ranges == [None]
    # the speaker restarts mid-install: the bundle root reads is kept
    updater = rig.updater(release.key.public, interval_s=0)
    updater.start()
    updater.stop()
    assert bundle.read_bytes() == release.body


def test_a_newer_offer_mid_install_waits_and_deletes_nothing(rig: Rig, release: Release) -> None:
    rig.served.offer = offer_for(release.bundle, NEW)
    assert check(rig, release.key.public) == "requested"
    bundle = Path(rig.request()["bundle"])  # type: ignore[index]
    installing(rig, NEW)
    rig.served.offer = offer_for(release.bundle, "0.3.0")
    assert check(rig, release.key.public) == "busy"
    assert bundle.read_bytes() == release.body
    assert rig.served.ranges == [None]
    assert rig.request() is None


def test_an_installing_marker_left_by_a_dead_installer_does_not_block_updates(
    rig: Rig, release: Release
) -> None:
    import os

    rig.state.mkdir(parents=True)
    marker = installing(rig, "0.1.5")
    old = time.time() - INSTALLING_STALE_S - 60
    os.utime(marker, (old, old))
    rig.served.offer = offer_for(release.bundle, NEW)
    assert check(rig, release.key.public) == "requested"
    assert rig.request() == {
        "bundle": str(rig.state / INCOMING / f"legato-{NEW}.legato"),
        "version": NEW,
    }


def test_an_offer_not_newer_than_the_running_release_is_left(rig: Rig, release: Release) -> None:
    rig.served.offer = offer_for(release.bundle, NEW)
    assert check(rig, release.key.public, running=NEW) == "skipped"
    assert check(rig, release.key.public, running="0.3.0") == "skipped"
    assert rig.reports == []
    assert rig.served.ranges == []


def test_nothing_offered_and_an_offer_elsewhere_are_not_acted_on(
    rig: Rig, release: Release
) -> None:
    assert check(rig, release.key.public) == "none"
    rig.served.offer = {**offer_for(release.bundle, NEW), "url": "http://evil.example/b"}
    assert check(rig, release.key.public) == "bad-offer"
    assert rig.served.ranges == []
    assert rig.reports == []


def test_an_oversized_answer_is_not_read_to_its_end(rig: Rig, release: Release) -> None:
    rig.served.offer = {**offer_for(release.bundle, NEW), "notes": "x" * 1_000_000}
    assert check(rig, release.key.public) == "bad-offer"
    assert rig.served.ranges == []


def test_the_thread_checks_soon_after_asked_and_stops_promptly(rig: Rig, release: Release) -> None:
    rig.served.offer = offer_for(release.bundle, NEW)
    updater = rig.updater(release.key.public, interval_s=3600)
    updater.start()
    try:
        updater.check_soon(0.1)
        deadline = time.monotonic() + 15
        while rig.request() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rig.request() is not None
        assert updater.diagnostics()["phase"] == "installing"
        assert rig.served.update_checks == 1
    finally:
        started = time.monotonic()
        updater.stop()
        assert time.monotonic() - started < 2


def test_the_wheel_carries_the_self_check_sample(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as wheel:
        assert "device/updates/self_check.ogg" in wheel.namelist()


# --- the pure offer rules ----------------------------------------------------------------


@given(
    st.binary(max_size=600)
    | st.dictionaries(st.text(max_size=8), st.integers()).map(lambda d: json.dumps(d).encode())
)
def test_any_answer_is_an_offer_or_a_bad_offer(body: bytes) -> None:
    with contextlib.suppress(offer_mod.BadOfferError):
        offer_mod.parse_offer(body)


def test_an_offer_is_read_strictly() -> None:
    good = {"version": "1.2.0", "size": 10, "sha256": "a" * 64, "url": "/v1/releases/1.2.0/bundle"}
    assert offer_mod.parse_offer(json.dumps(good).encode()).version == "1.2.0"
    for bad in (
        {**good, "size": offer_mod.MAX_BUNDLE_BYTES + 1},
        {**good, "size": True},
        {**good, "version": "latest"},
        {**good, "sha256": "A" * 64},
        {**good, "url": "//other/v1/releases/1.2.0/bundle"},
        {**good, "url": "/v1/releases/../../etc/bundle"},
    ):
        with pytest.raises(offer_mod.BadOfferError):
            offer_mod.parse_offer(json.dumps(bad).encode())


versions = st.from_regex(r"[0-9]\.[0-9]{1,2}\.[0-9]", fullmatch=True)


@given(versions, versions, st.floats(0, 1e6), st.booleans(), st.booleans())
def test_the_plan_fetches_only_newer_unrefused_releases_with_a_key(
    offered: str, running: str, since_failed_s: float, refused: bool, key: bool
) -> None:
    from releases.versions import newer

    offer = offer_mod.Offer(offered, 1, "a" * 64, f"/v1/releases/{offered}/bundle")
    failed = {offered: 1e6 - since_failed_s} if since_failed_s < 5e5 else {}
    decision = offer_mod.plan(
        offer,
        running=running,
        refused_here=(offered,) if refused else (),
        failed_at_s=failed,
        pinned_key=key,
        now_s=1e6,
    )
    fetch = (
        newer(offered, running)
        and not refused
        and key
        and (not failed or since_failed_s >= offer_mod.REFUSED_HOLD_S)
    )
    assert isinstance(decision, offer_mod.Fetch) == fetch
    if isinstance(decision, offer_mod.Skip) and decision.report is not None:
        assert not failed  # a failure is reported once


@given(st.floats(1, 1e6), st.floats(0, 1, exclude_max=True))
def test_checks_are_spread_by_ten_percent(interval: float, uniform: float) -> None:
    assert 0.9 * interval <= offer_mod.next_check_s(interval, uniform) <= 1.1 * interval
