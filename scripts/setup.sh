#!/usr/bin/env bash
# Installs what the demo and the tests need: ffmpeg and chromium (Debian packages, when
# missing) and a virtual environment in .venv with this package. Sourced by demo.sh and test.sh.
# For the tests (VPO_STATS_EXTRAS=test) also PostgreSQL's programs: the suite runs its own
# throwaway server with them (tests/pgserver.py) and needs no running cluster.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
if [ "${VPO_STATS_NEED_BROWSER:-0}" = 1 ] && [ ! -x /usr/bin/chromium ]; then need_apt+=(chromium); fi
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
case ",${VPO_STATS_EXTRAS:-}," in
  *,test,*) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql) ;;
esac
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
extra="${VPO_STATS_EXTRAS:-}"
stamp=".venv/.installed${extra:+-$extra}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing vpo-stats-plugin${extra:+[$extra]} into .venv"
  # (some machines' pip config names local mirrors that may be absent: not worth a warning each)
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra:+[$extra]}" \
    2> >(grep -v "^WARNING: Location .* is ignored" >&2)
  touch "$stamp"
fi
