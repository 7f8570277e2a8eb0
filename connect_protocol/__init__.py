"""The language every Legato part speaks.

Sans-I/O core: ``messages`` (types), ``codec`` (JSON, validation),
``reducer`` (the player-state machine), ``topics`` (MQTT layout), ``uris``
(catalog URIs), ``media`` (manifests and renditions), ``ogg`` (Ogg pages, segment
checks), ``errors`` (wire error codes, the exception tree), ``backoff`` and
``dedupe`` (pure policies).  Thin adapters: ``mqtt`` (paho-mqtt) and the ``mdns``
package (avahi-daemon over D-Bus or python-zeroconf, over its pure
``mdns.records``); ``logs`` sets up logging for the command-line programs.
"""
