"""The speaker's exception tree: one root, so a caller can catch everything ``device`` raises.

    DeviceError                    anything the speaker's own code raises on purpose
    ├── ConfigError                the configuration is unusable (``device.config``)
    ├── SourceError                a manifest or segment fetch failed; ``retryable`` says
    │   │                          whether trying again may help (``device.audio.source``)
    │   └── TooSlowError           a fetch abandoned: it would not finish before the
    │                              buffer runs dry
    ├── SinkError                  an audio output cannot play; the message is for the
    │                              person setting the speaker up (``device.audio.sinks``)
    ├── DecodeFailedError          a segment is not what its manifest promised
    │                              (``device.audio.decoder``)
    ├── VorbisError                bytes that do not decode as Ogg Vorbis, or no
    │                              libvorbisfile (``device.audio.vorbis``)
    └── HubRefusedError            the hub answered a download request, and said no
                                   (``device.downloads``)

Each is defined beside the code that raises it and keeps its name there; this
module holds only the root, so importing it costs nothing.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Root of the speaker's exceptions (see the tree above)."""
