"""Signed releases of Legato: the bundle a hub makes and a speaker verifies, and the
A/B slots a speaker installs them into.

``guard`` is the standard-library-only part a speaker runs before the application
(it is copied out of the slots, so a broken release cannot break its own rollback);
``bundle``, ``manifest``, ``signing`` and ``versions`` are shared by the hub (which
makes bundles) and the speaker (which verifies them); ``install`` puts a verified
bundle into a new slot (built by ``slot``, its C library by ``native``, the pinned key
read by ``settings``); ``supervisor`` does what the systemd units do, where there is
no systemd.
"""
