#!/usr/bin/env bash
# The main job: sample media processed by the reference host, stats recorded, summary printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
exec .venv/bin/vpo-stats demo "$@"
