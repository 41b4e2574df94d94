"""``python -m culturesim.simulator.cli``: the ``culturesim`` command without the console script."""

from __future__ import annotations

import sys

from culturesim.simulator.cli import main

sys.exit(main())
