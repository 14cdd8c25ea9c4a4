"""`python -m vpo_stats_plugin.cli`: the standalone `vpo-stats` command."""

import sys

from . import main

sys.exit(main())
