"""Multiroom: a group of speakers heard as one, in sync to a fraction of a millisecond.

How the members agree (see ``docs`` and issue 19's note):

- **One clock, a member's.**  The group's clock is its leader's monotonic clock
  (the leader is a member speaker, not the hub), so a group keeps time with the
  hub stopped.  Followers estimate it with NTP-style exchanges over UDP
  (``clock``: minimum-delay filtering and a fitted rate), authenticated with
  the group's key (``wire``), which only the hub hands out, over MQTT.
- **One timeline.**  An ``Anchor`` says "frame F of track U is heard at group
  time T"; every member, the leader included, plays to it.  The leader makes a
  new anchor on each load, seek, pause or resume, and every member moves it on
  by itself at a gapless track join (``Anchor.rebased``), so the timeline
  continues without a message.
- **Each member aligns its own output** (``aligner``): it knows when the next
  frame it writes will be heard (the clock plus the sink's delay), compares it
  with the anchor, and corrects: at a start or a rejoin at once (silence, or
  skipping audio), then continuously by inserting or removing single frames
  spread out, at most 0.5 % of the rate, so a DAC crystal fast or slow by
  hundreds of ppm never drifts audibly.

Pure: ``anchor``, ``aligner``, ``clock``, ``wire``.  I/O: ``peer`` (the UDP
socket), ``engine`` (the ``Engine`` a grouped speaker plays through),
``membership`` (the group this speaker is in, kept across restarts).
"""
