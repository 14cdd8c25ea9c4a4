#!/usr/bin/env bash
# Installs what the demo and the tests need: ffmpeg, chromium and (for the tests) prometheus
# (Debian packages, when missing) and a virtual environment in .venv with this package. Sourced
# by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
if [ "${VPO_STATS_NEED_BROWSER:-0}" = 1 ] && [ ! -x /usr/bin/chromium ]; then need_apt+=(chromium); fi
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
# the tests run /usr/bin/prometheus themselves (tests/test_metrics_prometheus.py)
need_prometheus=0
if [[ ",${VPO_STATS_EXTRAS:-}," == *,test,* ]] && [ ! -x /usr/bin/prometheus ]; then need_prometheus=1; fi
if [ ${#need_apt[@]} -gt 0 ] || [ "$need_prometheus" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]} (apt-get)"
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ "$need_prometheus" = 1 ]; then
  echo "==> installing prometheus (apt-get)"
  # without its service: nothing left listening on :9090 (a policy-rc.d refusing every start,
  # unless the machine has one already, as containers do), nor the node exporter it recommends
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  status=0
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null || status=$?
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
