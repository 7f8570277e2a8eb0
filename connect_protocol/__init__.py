"""The language every Legato part speaks.

Sans-I/O core: ``messages`` (types), ``codec`` (JSON, validation),
``reducer`` (the player-state machine), ``topics`` (MQTT layout), ``uris``
(catalog URIs), ``backoff`` and ``dedupe`` (pure policies).  Thin adapters: ``mqtt`` (paho-mqtt) and
``mdns`` (zeroconf).
"""
