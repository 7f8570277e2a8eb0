"""Deterministic demo music: the albums `legato-hub up` puts in a fresh catalog.

`render_demo_library(out_dir)` writes tagged FLAC files with cover art; the music is
synthesised (chords, bass, drums and a tune in a handful of styles), not recorded.
"""

from hub.demo_music.library import DEMO_LIBRARY, DemoAlbum, DemoTrack, render_demo_library

__all__ = ["DEMO_LIBRARY", "DemoAlbum", "DemoTrack", "render_demo_library"]
