"""Choose and build the playback engine a speaker's config names.

``clock`` advances position over silence (no hub media needed); ``native``
is the libvorbisfile/ALSA engine; ``mpv`` drives libmpv.  Heavy imports happen only
for the engine chosen, so a clock speaker starts light.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from connect_protocol.messages import EventKind
from device.clock_engine import ClockEngine
from device.config import ConfigError, SpeakerConfig
from device.engine_api import Engine, EventCallback, ReportCallback

if TYPE_CHECKING:
    from device.audio.sinks import Sink
    from offline_cache.store import OfflineStore

logger = logging.getLogger(__name__)


def plays_through_sink(config: SpeakerConfig) -> bool:
    """Whether the engine ``build_engine`` makes for ``config`` plays to ``config.sink``
    (the clock engine, and any engine of an unpaired speaker, keep time over silence)."""
    return config.engine != "clock" and bool(config.hub_url) and bool(config.password)


def configured_sink(config: SpeakerConfig, *, fast: bool = False, open_now: bool = True) -> Sink:
    """The sink ``config`` names, as the native engine plays to it (``SinkError`` when it
    cannot be opened); the mpv engine opens the same device spec through mpv."""
    from device.audio.sinks import open_sink

    return open_sink(
        config.sink,
        rate=config.sample_rate,
        fast=fast,
        mixer=config.mixer or None,
        open_now=open_now,
    )


def build_engine(
    config: SpeakerConfig,
    *,
    on_track_ended: Callable[[str], None],
    on_event: EventCallback,
    on_report: ReportCallback,
    loop: asyncio.AbstractEventLoop,
    fast: bool = False,
    store: OfflineStore | None = None,
) -> Engine:
    if config.engine == "clock":
        return ClockEngine(on_track_ended, loop=loop)
    if not plays_through_sink(config):
        # an unpaired speaker has no credentials to fetch audio with: it still
        # answers local control, keeping time over silence
        logger.warning(
            "speaker %s is not paired with a hub: the %s engine needs one to fetch audio; "
            "keeping time over silence",
            config.id,
            config.engine,
        )
        return ClockEngine(on_track_ended, loop=loop)
    from device.audio.source import HubMedia, SegmentSource

    source: SegmentSource = HubMedia(
        config.hub_url, config.id, config.password, ca_pem=config.hub_ca
    )
    if store is not None:
        from device.audio.cached_source import CachedMedia

        source = CachedMedia(
            HubMedia(config.hub_url, config.id, config.password, ca_pem=config.hub_ca),
            store,
            stream_cap_bytes=config.stream_cache_mb * 1024 * 1024,
            on_problem=lambda uri, message: on_event(EventKind.ERROR, uri, message),
        )
    if config.engine == "native":
        from device.audio.native import EngineOptions, NativeEngine
        from device.audio.sinks import SinkError

        try:
            # a missing or busy device is retried by the engine, not fatal
            sink = configured_sink(config, fast=fast, open_now=False)
        except SinkError as exc:
            raise ConfigError(str(exc)) from exc
        options = EngineOptions(
            quality=config.quality,
            normalisation=config.normalisation,
            target_lufs=config.target_lufs,
            crossfade_s=config.crossfade_s,
        )
        return NativeEngine(
            on_track_ended,
            source=source,
            sink=sink,
            options=options,
            on_event=on_event,
            on_report=on_report,
            loop=loop,
        )
    from device.audio.mpv_engine import MpvEngine

    return MpvEngine(
        on_track_ended,
        source=source,
        config=config,
        on_event=on_event,
        on_report=on_report,
        loop=loop,
        fast=fast,
    )
