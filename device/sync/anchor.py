"""``Anchor``: the group's timeline, "frame F of track U is heard at group time T".

Every member plays to the same anchor; the frame a member should be heard
playing at any instant follows from it alone.  Pure values, no clocks inside.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

NS = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Anchor:
    """Track ``uri``'s frame ``frame`` (at ``rate``) is heard at group-clock ``at_ns``.

    While ``playing`` the track advances at ``rate`` frames per second of the
    group clock; when not, it holds at ``frame`` from ``at_ns`` on (a pause
    takes effect at ``at_ns``, so every member stops on the same frame).
    """

    uri: str
    frame: int
    at_ns: int
    rate: int
    playing: bool = True

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.frame < 0:
            raise ValueError("frame must not be negative")

    def frame_at(self, t_ns: int) -> float:
        """The track frame that should be heard at group time ``t_ns`` (may be negative:
        the anchor's frame 0 is still ahead; or past the track's end)."""
        if not self.playing:
            return float(self.frame)
        return self.frame + (t_ns - self.at_ns) * self.rate / NS

    def time_of(self, frame: float) -> int:
        """The group time at which track frame ``frame`` should be heard (while playing)."""
        return self.at_ns + round((frame - self.frame) * NS / self.rate)

    def rebased(self, uri: str, track_frames: int) -> Anchor:
        """The same timeline, anchored on the next track: its frame 0 is heard right after
        this track's last frame (``track_frames`` long), a gapless join."""
        return dataclasses.replace(self, uri=uri, frame=0, at_ns=self.time_of(track_frames))

    def moved(self, t_ns: int, *, playing: bool) -> Anchor:
        """The same track from group time ``t_ns`` on, playing or held there (pause, resume)."""
        frame = max(0, round(self.frame_at(t_ns)))
        return dataclasses.replace(self, frame=frame, at_ns=t_ns, playing=playing)

    def to_obj(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_obj(cls, obj: object) -> Anchor:
        """From untrusted JSON; raises ``ValueError`` on anything malformed."""
        if not isinstance(obj, dict):
            raise ValueError("anchor must be an object")
        try:
            uri, frame, at_ns = obj["uri"], obj["frame"], obj["at_ns"]
            rate, playing = obj["rate"], obj.get("playing", True)
        except KeyError as exc:
            raise ValueError(f"anchor lacks {exc.args[0]}") from None
        if not isinstance(uri, str) or not isinstance(playing, bool):
            raise ValueError("anchor uri must be a string and playing a boolean")
        for name, value in (("frame", frame), ("at_ns", at_ns), ("rate", rate)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"anchor {name} must be an integer")
        if not 8000 <= rate <= 384000 or len(uri) > 256:
            raise ValueError("anchor rate or uri out of range")
        return cls(uri=uri, frame=frame, at_ns=at_ns, rate=rate, playing=playing)
