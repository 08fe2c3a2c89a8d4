#!/usr/bin/env bash
# System install of the daemon on a Debian-like box (Jetson included), as root:
#   scripts/install-system.sh PREFIX CONFIG_DIR UNIT_DIR BIN_DIR USER
#   scripts/install-system.sh --uninstall PREFIX CONFIG_DIR UNIT_DIR BIN_DIR USER
# Installs the daemon (no torch) into PREFIX/venv, links seamless-daemon and seamlessctl into BIN_DIR, installs
# the config (never overwriting an existing one), the systemd units, and a system user in the audio group.
# EXTRAS=gpu installs onnxruntime-gpu instead of onnxruntime.
set -euo pipefail

uninstall=0
if [ "${1:-}" = "--uninstall" ]; then uninstall=1; shift; fi
PREFIX=${1:?PREFIX}; CONFIG_DIR=${2:?CONFIG_DIR}; UNIT_DIR=${3:?UNIT_DIR}; BIN_DIR=${4:?BIN_DIR}; USER_NAME=${5:?USER}
STATE_DIR=/var/lib/seamless-daemon
SRC=$(cd "$(dirname "$0")/.." && pwd)
APT_PACKAGES=(python3-venv python3-dev gcc pkg-config libsystemd-dev libportaudio2 libsndfile1)

if [ "$(id -u)" != 0 ]; then
    echo "install: run as root (sudo make install)" >&2
    exit 1
fi

have_systemd() { [ -d /run/systemd/system ]; }

if [ $uninstall = 1 ]; then
    have_systemd && systemctl disable --now seamless-daemon.socket seamless-daemon.service 2>/dev/null || true
    rm -f "$UNIT_DIR/seamless-daemon.service" "$UNIT_DIR/seamless-daemon.socket"
    rm -f "$BIN_DIR/seamless-daemon" "$BIN_DIR/seamlessctl"
    rm -rf "$PREFIX"
    have_systemd && systemctl daemon-reload || true
    echo "install: removed the daemon; kept $CONFIG_DIR, $STATE_DIR and the user $USER_NAME"
    exit 0
fi

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null

if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
        --groups audio "$USER_NAME"
fi
install -d -o "$USER_NAME" -g "$USER_NAME" -m 0750 "$STATE_DIR"

python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/python" -m pip install -q --upgrade pip
extras="systemd${EXTRAS:+,$EXTRAS}"
"$PREFIX/venv/bin/python" -m pip install -q "$SRC[$extras]"
if [[ ",${EXTRAS:-}," == *",gpu,"* ]]; then
    # Both wheels install the same 'onnxruntime' package folder: drop the CPU one, then restore the GPU files.
    "$PREFIX/venv/bin/python" -m pip uninstall -q -y onnxruntime || true
    "$PREFIX/venv/bin/python" -m pip install -q --force-reinstall --no-deps onnxruntime-gpu
fi
ln -sf "$PREFIX/venv/bin/seamless-daemon" "$BIN_DIR/seamless-daemon"
ln -sf "$PREFIX/venv/bin/seamlessctl" "$BIN_DIR/seamlessctl"

install -d -m 0755 "$CONFIG_DIR"
if [ ! -f "$CONFIG_DIR/config.yaml" ]; then
    install -m 0644 "$SRC/config/seamless-daemon.yaml" "$CONFIG_DIR/config.yaml"
    echo "install: wrote $CONFIG_DIR/config.yaml (set 'bundle' and the audio devices)"
else
    echo "install: kept the existing $CONFIG_DIR/config.yaml"
fi
install -m 0644 "$SRC/systemd/seamless-daemon.service" "$SRC/systemd/seamless-daemon.socket" "$UNIT_DIR/"
if have_systemd; then
    systemctl daemon-reload
fi
echo "install: done. Put a bundle in $STATE_DIR/bundle (or set 'bundle'), then: systemctl start seamless-daemon"
