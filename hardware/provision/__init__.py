"""What ``legato-flash`` writes onto a boot partition, as pure functions over text.

``boot_config`` edits ``config.txt`` and ``cmdline.txt``, ``wifi`` derives the WPA
key, ``cloud_init`` and ``firstrun`` make the two kinds of first-boot hook, ``unit``
the speaker's systemd unit; ``firstboot.py`` is the script the Pi runs at first
boot (standard library only: it runs before Legato is installed).
"""
