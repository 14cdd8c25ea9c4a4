#!/usr/bin/env bash
# The whole test suite (browser tests included), then the linters.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VPO_STATS_NEED_BROWSER=1 VPO_STATS_EXTRAS=test source scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# pytest exits 5 when it ran no test: that is a failure here like any other non-zero code.
exec .venv/bin/python -m pytest -n 2 --dist loadfile -p no:cacheprovider "$@"
