#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Debian-like machine:
# system packages (when run as root) and a virtual environment with the daemon, the export stage and the
# development tools. Idempotent: a second run only checks.
#
#   scripts/setup-env.sh [VENV]      (default .venv)
set -euo pipefail

VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
APT_PACKAGES=(libportaudio2 libsndfile1 libsystemd-dev pkg-config espeak-ng sox systemd)
STAMP="$VENV/.setup-complete"

cd "$(dirname "$0")/.."

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ]; then
    exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup: installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    echo "setup: not root: assuming system packages are present (${APT_PACKAGES[*]})"
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
extras="export,dev"
if pkg-config --exists libsystemd 2>/dev/null; then
    extras="$extras,systemd"
fi
"$VENV/bin/python" -m pip install -q -e ".[$extras]"
touch "$STAMP"
echo "setup: $VENV ready (extras: $extras)"
