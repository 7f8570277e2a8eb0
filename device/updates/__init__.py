"""The speaker's side of signed releases: its ``[updates]`` settings, the trial a new
release must pass (self-check, the hub reached, a grace period without errors), what
it reports to the hub, and the updater that fetches an offered release and asks root's
installer for it.  ``agent.UpdateAgent`` is what the service wires in.

Module map: ``settings`` (config), ``trial`` (the pure verdict rules), ``self_check``,
``reporting`` (what was told, kept in ``reported.json``), ``offer`` (the pure offer
rules), ``download`` (resume), ``client`` (the updater thread), ``agent``.
"""
