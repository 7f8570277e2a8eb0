"""The speaker daemon (``legato-speaker``): commands in, state and events out, audio played.

``service`` wires the parts: the ``controller`` (pure reducer, effects carried out
on an engine), an engine built by ``engine_factory`` behind the ``engine_api``
protocol (``clock_engine``, or the native and mpv engines under ``audio``), the
offline ``downloads``, the ``local_api`` and the ``config``.  ``errors`` roots
the package's exceptions.  It imports ``connect_protocol``, ``offline_cache``
and ``hardware``; nothing imports it.
"""
