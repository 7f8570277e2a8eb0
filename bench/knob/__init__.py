"""The parts of ``bench/controls.py`` (named ``knob``: a package
named like the script would be a duplicate module to mypy), one job per module.

``common`` (options, the bench's clock, small helpers), ``tone`` (the constant-level test
tone, ingested once by the hub's pipeline and cached), ``levels`` (pure: the tone's level
per period and where it leaves the old one), ``sink`` (the FIFO the speaker plays into,
read and timestamped by a process of its own), ``panel`` (the front panel's wire format and a
pseudo-terminal standing in for the panel), ``busy`` (the process that keeps a core
busy), ``speaker`` (the hub, the speaker process and the listeners around it),
``detents`` (knob detent -> sink and -> hub, against a local command), ``spin`` (20
detents a second through the panel, and the judging of a spin), ``gpio_spin`` (the same
through GPIO, in this process), ``run`` (the
whole run, in order) and ``report``.

Imported as the top-level package ``knob``: ``python bench/controls.py`` puts
``bench/`` first on ``sys.path``.  The test harness it reuses (``tests.system``) is not
installed with the project, so the repository's root is put on ``sys.path`` here.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))
