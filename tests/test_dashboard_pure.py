"""The dashboard's pure parts: SVG charts, stats aggregation, the event recorder."""

from __future__ import annotations

import math
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connect_protocol.messages import Event, EventKind
from hub.context import hub_database
from hub.fleet import events as device_events
from hub.fleet import stats
from hub.fleet.events import EventRecorder
from hub.web import charts, formatting
from hub.web.charts import Bar, Series

SVG = "{http://www.w3.org/2000/svg}"
counts = st.lists(st.integers(min_value=0, max_value=10**6), max_size=60)
labels = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label")
    return root


def bars(root: ET.Element) -> list[ET.Element]:
    return [
        r
        for r in root.iter(f"{SVG}rect")
        if "bar" in (r.get("class") or "").split() and r.get("data-value") is not None
    ]


@given(counts, labels)
def test_column_chart_is_valid_svg_with_proportional_bars(values: list[int], label: str) -> None:
    svg = charts.column_chart(
        [Bar(str(i), v, f"{label} {v}") for i, v in enumerate(values)], label=label
    )
    root = parse(svg)
    drawn = bars(root)
    if not any(values):
        assert drawn == []
        assert "No plays yet" in svg
        return
    assert len(drawn) == len(values)
    top = charts.axis_top(values)
    assert top >= max(values)
    full = charts.COLUMN_HEIGHT - charts.TOP - charts.BOTTOM
    for rect, value in zip(drawn, values, strict=True):
        assert math.isclose(float(rect.get("height", "0")), full * value / top, abs_tol=0.01)
        assert rect.find(f"{SVG}title") is not None  # the hover text


@given(st.lists(st.tuples(labels, st.integers(0, 10**5), st.integers(0, 10**5)), max_size=15))
def test_hbar_chart_widths_follow_the_values(rows: list[tuple[str, int, int]]) -> None:
    svg = charts.hbar_chart(
        [r[0] for r in rows],
        [Series("a", [r[1] for r in rows]), Series("b", [r[2] for r in rows])],
        label="trouble",
        empty="No trouble",
    )
    root = parse(svg)
    values = [v for r in rows for v in (r[1], r[2])]
    if not any(values):
        assert "No trouble" in svg
        return
    drawn = bars(root)
    assert len(drawn) == len(values)
    widths = {
        float(r.get("width", "0")) for r, v in zip(drawn, values, strict=True) if v == max(values)
    }
    assert len(widths) == 1  # the longest bars are equally long
    for rect in drawn:
        value = float(rect.get("data-value", "0"))
        assert math.isclose(
            float(rect.get("width", "0")), max(widths) * value / max(values), abs_tol=0.02
        )


def test_empty_chart_says_so() -> None:
    svg = charts.column_chart([], label="Plays per hour")
    assert "No plays yet" in svg
    assert parse(svg).get("aria-label") == "Plays per hour: No plays yet"


def test_labels_are_escaped() -> None:
    svg = charts.hbar_chart(['<b>"&'], [Series("plays", [3])], label="x<y")
    assert "<b>" not in svg
    parse(svg)


@given(st.floats(min_value=1e-6, max_value=1e12))
def test_nice_max_is_a_round_number_at_or_above(value: float) -> None:
    top = charts.nice_max(value)
    assert top >= value
    mantissa = top / 10 ** math.floor(math.log10(top))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 4, 6, 8, 10))


@given(
    st.integers(min_value=10**12, max_value=2 * 10**12),
    st.lists(st.integers(min_value=-2 * stats.DAY_MS, max_value=2 * stats.DAY_MS), max_size=200),
)
def test_histogram_counts_every_timestamp_inside_the_window(now: int, offsets: list[int]) -> None:
    window = stats.hours_window(now)
    assert window.start_ms <= now < window.end_ms
    stamps = [now + o for o in offsets]
    counts = stats.histogram(stamps, window)
    assert len(counts) == 24
    assert sum(counts) == sum(1 for t in stamps if window.start_ms <= t < window.end_ms)


@given(st.integers(min_value=10**12, max_value=2 * 10**12), st.integers(-12 * 60, 14 * 60))
def test_days_window_ends_today_at_local_midnight(now: int, offset_min: int) -> None:
    offset = offset_min * 60_000
    window = stats.days_window(now, 30, utc_offset_ms=offset)
    assert window.count == 30
    assert window.start_ms <= now < window.end_ms
    assert (window.start_ms + offset) % stats.DAY_MS == 0


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_skip_rate(skipped: int, finished: int) -> None:
    rate = stats.skip_rate(skipped, finished)
    if skipped + finished == 0:
        assert rate is None
    else:
        assert rate is not None
        assert 0 <= rate <= 1
        assert math.isclose(rate * (skipped + finished), skipped)


@given(
    st.lists(
        st.tuples(
            st.sampled_from("abc"),
            st.sampled_from(["underrun", "error", "skipped", "started"]),
            st.integers(0, 50),
        )
    )
)
def test_trouble_by_speaker_sums_each_kind(rows: list[tuple[str, str, int]]) -> None:
    out = stats.trouble_by_speaker(rows, {"a": "Kitchen"})
    by_id = {t.device_id: t for t in out}
    for device in "abc":
        got = by_id.get(device)
        want = {
            k: sum(n for d, kk, n in rows if d == device and kk == k)
            for k in ("underrun", "error", "skipped")
        }
        if got is None:
            assert not any(d == device and k in want for d, k, _ in rows)
            continue
        assert (got.underruns, got.errors, got.skips) == (
            want["underrun"],
            want["error"],
            want["skipped"],
        )
    assert [t.name for t in out if t.device_id == "a"] in ([], ["Kitchen"])


def test_sql_buckets_match_the_pure_histogram() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = hub_database(Path(tmp) / "hub.db")
        db.migrate()
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO users (id, name, password_hash, created_ms) VALUES (1, 'u', 'x', 0)"
            )
            conn.execute(
                "INSERT INTO tracks (id, name, artist, album, album_id, track_number,"
                " duration_ms) VALUES ('t1', 'T', 'A', 'B', 'al', 1, 1000)"
            )

        @settings(max_examples=40, deadline=None)
        @given(st.lists(st.integers(-40 * stats.DAY_MS, 2 * stats.HOUR_MS), max_size=80))
        def check(offsets: list[int]) -> None:
            now = 1_700_000_000_000
            stamps = [now + o for o in offsets]
            with db.transaction() as conn:
                conn.execute("DELETE FROM plays")
                conn.executemany(
                    "INSERT INTO plays (user_id, track_id, played_ms) VALUES (1, 't1', ?)",
                    [(t,) for t in stamps],
                )
            for window in (
                stats.hours_window(now),
                stats.days_window(now, 30, utc_offset_ms=3_600_000),
            ):
                with db.reading() as conn:
                    assert stats.plays_per_bucket(conn, window) == stats.histogram(stamps, window)

        check()


def test_recorder_writes_each_event_and_prunes_old_ones(tmp_path: Path) -> None:
    db = hub_database(tmp_path / "hub.db")
    db.migrate()
    conn = db.connect()
    clock = iter(range(10**12, 10**12 + 10_000))

    def write(sql: str, params: tuple[object, ...]) -> None:
        conn.execute(sql, params)

    recorder = EventRecorder(write, clock=lambda: next(clock))
    conn.execute(device_events.INSERT, ("old", "error", "", "ancient", 0, 5))
    recorder("kitchen", Event(kind=EventKind.STARTED, timestamp_ms=1, track_uri="legato:track:abc"))
    recorder("kitchen", Event(kind=EventKind.UNDERRUN, timestamp_ms=2, message="dry"))
    recorder("lounge", Event(kind=EventKind.ERROR, timestamp_ms=3, message="x" * 2000))
    assert (
        conn.execute("SELECT COUNT(*) FROM device_events WHERE device_id = 'old'").fetchone()[0]
        == 0
    )
    recent = device_events.recent(conn, "kitchen")
    assert [e.kind for e in recent] == ["underrun", "started"]
    assert recent[1].track_id == "abc"
    assert (
        len(device_events.latest_by_kind(conn, "error")["lounge"].message)
        == device_events.MAX_MESSAGE
    )
    assert sorted(device_events.event_counts(conn, 0)) == [
        ("kitchen", "started", 1),
        ("kitchen", "underrun", 1),
        ("lounge", "error", 1),
    ]
    conn.close()


def test_formatting() -> None:
    assert formatting.size(1536) == "1.5 KiB"
    assert formatting.size(0) == "0 B"
    assert formatting.ago(0, 10) == "never"
    assert formatting.ago(1000, 1000 + 3 * 3600 * 1000) == "3 h ago"
    assert formatting.percent(0.25) == "25%"
    assert formatting.when(None) == "—"
