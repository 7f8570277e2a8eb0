"""Tools that face the speaker's hardware, kept apart from the speaker daemon.

``flash`` is the ``legato-flash`` console script a maker runs on a laptop to
provision a speaker's SD card image; being outside ``device`` it needs neither
the daemon nor its audio libraries, and it may import only ``connect_protocol``.
"""
