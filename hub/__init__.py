"""The Legato hub: the Web API, the broker and relay to the speakers, the catalog,
accounts, offline licences and the web apps, in one process.

Parts, each importing only those below it (``tests/test_architecture.py``; the map
with one line per module is docs/ARCHITECTURE.md):

- programs: ``cli/`` (``legato-hub``), ``server`` (a running hub);
- faces: ``http/`` (app factory, routers, Spotify shapes, validation), ``web/`` (pages);
- composition root: ``context`` (the services, wired);
- domains: ``accounts/``, ``catalog/``, ``media/``, ``ingest/``, ``demo_music/``,
  ``fleet/`` (the speakers), ``offline/`` (downloads and licences);
- foundation: ``db``, ``schema``, ``errors``, ``clock``, ``files``, ``fields``.
"""
