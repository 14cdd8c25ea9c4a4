#!/usr/bin/env bash
# The main job: sample media processed by the reference host, stats recorded, summary printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
.venv/bin/vpo-stats demo "$@"
echo
echo "(vpo-stats lives in $(pwd)/.venv/bin: run '. .venv/bin/activate' to use the commands above)"
