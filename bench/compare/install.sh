#!/usr/bin/env bash
# Installs the Debian packages bench/compare/run.ts drives, if missing (idempotent; needs root or
# sudo). nats-server and redis-server are required; rabbitmq-server is optional: when it cannot be
# installed the comparison reports its row as "not available" instead of failing.
set -euo pipefail

required=(nats-server redis-server)
optional=(rabbitmq-server)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing() {
  local out=()
  for pkg in "$@"; do installed "$pkg" || out+=("$pkg"); done
  echo "${out[@]:-}"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "bench/compare/install.sh: need root to run: $*" >&2; return 1; fi
}

apt_install() {
  # Wait for another apt/dpkg run to release its lock rather than fail; no recommends, no prompts.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
    --no-install-recommends "$@"
}

need=$(missing "${required[@]}")
want=$(missing "${optional[@]}")
if [ -z "$need" ] && [ -z "$want" ]; then
  echo "bench/compare/install.sh: packages present" >&2
  exit 0
fi

# A stale package index makes installs fail on fresh machines; refresh it once.
as_root apt-get -o DPkg::Lock::Timeout=600 update -qq || true

if [ -n "$need" ]; then
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  apt_install $need
fi
if [ -n "$want" ]; then
  # shellcheck disable=SC2086
  apt_install $want || echo "bench/compare/install.sh: could not install $want; its row will say not available" >&2
fi
