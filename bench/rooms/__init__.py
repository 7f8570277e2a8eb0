"""The parts of ``bench/multiroom.py`` (named ``rooms``: a package named like the script
would be a duplicate module to mypy), one job per module.

``common`` (options, targets, the bench's clock), ``material`` (the noise album, ingested
once by the hub's pipeline and cached, and its reference PCM), ``relay`` (the UDP relay
that delays and jitters the members' sync datagrams), ``rig`` (the DACs, the hub, the
speakers and the relays, started and stopped together), ``phases`` (baseline, group,
late joiner), ``report``.

Imported as the top-level package ``rooms``: ``python bench/multiroom.py`` puts
``bench/`` first on ``sys.path``.  The test harness it reuses (``tests.system``,
``tests.virtual_dac``) is not installed with the project, so the repository's root is
put on ``sys.path`` here.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))
