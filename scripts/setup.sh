#!/usr/bin/env bash
# Installs what the demo and the tests need: ffmpeg and chromium (Debian packages, when
# missing) and a virtual environment in .venv with this package. Sourced by demo.sh and test.sh.
# For the tests (VPO_STATS_EXTRAS=test) also prometheus and PostgreSQL's programs: the suite
# runs its own throwaway servers with them and needs none running.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
if [ "${VPO_STATS_NEED_BROWSER:-0}" = 1 ] && [ ! -x /usr/bin/chromium ]; then need_apt+=(chromium); fi
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
# the tests run their own prometheus (tests/test_metrics_prometheus.py) and PostgreSQL cluster
# (tests/pgserver.py) with these programs
no_recommends=()
if [[ ",${VPO_STATS_EXTRAS:-}," == *,test,* ]]; then
  [ -x /usr/bin/prometheus ] || no_recommends+=(prometheus)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || no_recommends+=(postgresql)
fi
if [ $((${#need_apt[@]} + ${#no_recommends[@]})) -gt 0 ]; then
  echo "==> installing ${need_apt[*]} ${no_recommends[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # no service started by the packages: nothing left listening on :9090 or :5432 (a policy-rc.d
  # refusing every start, unless the machine has one already, as containers do)
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  status=0
  if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get install -y -qq "${need_apt[@]}" >/dev/null || status=$?
  fi
  if [ "$status" = 0 ] && [ ${#no_recommends[@]} -gt 0 ]; then
    # nor the node exporter prometheus recommends
    apt-get install -y -qq --no-install-recommends "${no_recommends[@]}" >/dev/null || status=$?
  fi
  if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  if [ "$status" != 0 ]; then exit "$status"; fi
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
