#!/usr/bin/env bash
# The demo, everything in DEMO_DIR (default demo/):
#  1. a checkpoint: a tiny random-weight one, or MODEL=<hub id|folder>; its bundle; a spoken sample translated
#     with `seamless-daemon translate`;
#  2. the daemon's main job: seamless-daemon runs on sound devices (virtual ones from scripts/virtual-audio.sh
#     unless DEMO_AUDIO=real), and a push-to-talk round trip goes through seamlessctl: record start, speech
#     into the microphone, record stop, the translation plays on the speaker.
# Without MODEL the daemon part uses the small trained checkpoint shipped in tests/data/toy-s2tt (English number
# and colour words into French), so the demo shows real text; random weights translate nothing readable.
set -euo pipefail

DEMO_DIR=${1:-demo}
VENV=${VENV:-.venv}
PRESET=${PRESET:-tiny}
PRECISION=${PRECISION:-fp32}
MODEL=${MODEL:-}
TGT_LANG=${TGT_LANG:-}
DEMO_AUDIO=${DEMO_AUDIO:-virtual}
SAMPLE_TEXT="one two three. red blue green."
READY_TIMEOUT_S=120
PLAYBACK_TIMEOUT_S=60

cd "$(dirname "$0")/.."
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
BIN="$VENV/bin"

pick_language() {  # the requested language, else fra when the bundle speaks it, else its first one
    if [ -n "$TGT_LANG" ]; then echo "$TGT_LANG"; return; fi
    "$BIN/python" -c 'import json,sys; m=json.load(open(sys.argv[1]));
langs=sorted(set(m["languages"]["text"])&set(m["languages"]["t2u"])&set(m["languages"]["vocoder"]));
print("fra" if "fra" in langs else langs[0])' "$1/manifest.json"
}

export_bundle() {  # MODEL_DIR BUNDLE
    echo "demo: exporting $1 to $2 ($PRECISION)"
    rm -rf "$2"
    "$BIN/seamless-export" export "$1" -o "$2" --precision "$PRECISION"
}

# --- 1. checkpoint, bundle, file translation -------------------------------------------------------------
if [ -z "$MODEL" ]; then
    MODEL="$DEMO_DIR/checkpoint-$PRESET"
    if [ ! -f "$MODEL/config.json" ]; then
        echo "demo: building a random-weight '$PRESET' checkpoint in $MODEL"
        "$BIN/seamless-export" random-checkpoint "$MODEL" --preset "$PRESET"
    fi
    DAEMON_MODEL=tests/data/toy-s2tt
else
    DAEMON_MODEL=$MODEL
fi
BUNDLE="$DEMO_DIR/bundle-$PRECISION"
export_bundle "$MODEL" "$BUNDLE"

SAMPLE="$DEMO_DIR/sample.wav"
if command -v espeak-ng >/dev/null; then
    espeak-ng -v en -s 130 -w "$SAMPLE" "$SAMPLE_TEXT"
else
    "$BIN/python" scripts/make_tone.py "$SAMPLE"
fi
LANG_FILE=$(pick_language "$BUNDLE")
echo "demo: translating $SAMPLE into $LANG_FILE with seamless-daemon translate"
"$BIN/seamless-daemon" translate "$SAMPLE" -o "$DEMO_DIR/translated.wav" --bundle "$BUNDLE" \
    --tgt-lang "$LANG_FILE" --json | tee "$DEMO_DIR/translated.json"

# --- 2. the daemon: push-to-talk over the control socket -------------------------------------------------
if [ "$DAEMON_MODEL" = "$MODEL" ]; then
    DAEMON_BUNDLE=$BUNDLE
else
    DAEMON_BUNDLE="$DEMO_DIR/bundle-toy-$PRECISION"
    export_bundle "$DAEMON_MODEL" "$DAEMON_BUNDLE"
fi
if [ "$DEMO_AUDIO" = virtual ]; then
    if ! scripts/virtual-audio.sh start >"$DEMO_DIR/virtual-audio.log" 2>&1; then
        echo "demo: no virtual sound devices (scripts/virtual-audio.sh needs root the first time); skipping the daemon run"
        exit 0
    fi
    INPUT=virt_mic; OUTPUT=virt_speaker; FEED=virt_mic_feed
else
    INPUT=default; OUTPUT=default; FEED=""
fi
LANG_DAEMON=$(pick_language "$DAEMON_BUNDLE")
SOCKET="$DEMO_DIR/control.sock"
cat >"$DEMO_DIR/config.yaml" <<EOF
bundle: $DAEMON_BUNDLE
translation: {target_lang: $LANG_DAEMON}
audio: {input_device: $INPUT, output_device: $OUTPUT}
recording: {save_dir: $DEMO_DIR/recordings}
control: {socket: $SOCKET}
EOF
CTL=("$BIN/seamlessctl" --socket "$SOCKET")
echo "demo: starting seamless-daemon --config $DEMO_DIR/config.yaml"
"$BIN/seamless-daemon" --config "$DEMO_DIR/config.yaml" 2>"$DEMO_DIR/daemon.log" &
DAEMON_PID=$!
trap 'kill "$DAEMON_PID" 2>/dev/null || true; kill "${EVENTS_PID:-}" 2>/dev/null || true' EXIT
for _ in $(seq "$READY_TIMEOUT_S"); do
    "${CTL[@]}" ping >/dev/null 2>&1 && break
    kill -0 "$DAEMON_PID" 2>/dev/null || { echo "demo: the daemon exited:"; cat "$DEMO_DIR/daemon.log"; exit 1; }
    sleep 1
done
"${CTL[@]}" --json subscribe >"$DEMO_DIR/events.jsonl" &
EVENTS_PID=$!
"${CTL[@]}" record start
if [ -n "$FEED" ]; then
    echo "demo: speaking the sample into the microphone"
    "$BIN/python" scripts/play_wav.py "$SAMPLE" "$FEED"
else
    echo "demo: speak now (5 s)"; sleep 5
fi
"${CTL[@]}" record stop
for _ in $(seq "$PLAYBACK_TIMEOUT_S"); do
    grep -q '"playback_end"' "$DEMO_DIR/events.jsonl" 2>/dev/null && break
    sleep 1
done
echo "demo: what the daemon heard and said:"
"$BIN/python" scripts/show_events.py "$DEMO_DIR/events.jsonl"
"${CTL[@]}" status | grep -E '^(state|provider|audio\.(input|output)\.(device|rate)|latency)'
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
echo "demo: done; files in $DEMO_DIR (recordings/ holds what the microphone heard)"
