"""The parts of ``bench/control_latency.py``, one job per module.

``common`` (options, errors, small helpers), ``stats`` (percentiles, CPU and RSS),
``states`` (what a client knows of the speakers' states, and who waits for which),
``pump`` (paho clients on an asyncio loop, no network thread), ``speakers`` (the worker
processes and their virtual speakers), ``listener`` (the Connect WebSocket client and the
HTTP poller), ``probe`` (the raw-MQTT baseline), ``system`` (provisioning, Mosquitto,
the hub, plain or over TLS), ``rig`` (one transport's system as the phases see it),
``phases`` (onboarding, idle, the checks, a restart), ``commands`` (the timed command
phases, the transports taking turns), ``run`` (the whole run) and ``report``.

Imported as the top-level package ``latency``: ``python bench/control_latency.py`` puts
``bench/`` first on ``sys.path``, and spawned workers inherit that path.
"""
