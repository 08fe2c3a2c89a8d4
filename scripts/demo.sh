#!/usr/bin/env bash
# The demo: a checkpoint (tiny random one, or MODEL=<hub id|folder>), its bundle, and a translation of a
# spoken sample. Everything lands in DEMO_DIR (default demo/).
set -euo pipefail

DEMO_DIR=${1:-demo}
VENV=${VENV:-.venv}
PRESET=${PRESET:-tiny}
PRECISION=${PRECISION:-fp32}
MODEL=${MODEL:-}
TGT_LANG=${TGT_LANG:-}
SAMPLE_TEXT="Good morning. The meeting starts in ten minutes, in the blue room."

cd "$(dirname "$0")/.."
mkdir -p "$DEMO_DIR"
BIN="$VENV/bin"

if [ -z "$MODEL" ]; then
    MODEL="$DEMO_DIR/checkpoint-$PRESET"
    if [ ! -f "$MODEL/config.json" ]; then
        echo "demo: building a random-weight '$PRESET' checkpoint in $MODEL"
        "$BIN/seamless-export" random-checkpoint "$MODEL" --preset "$PRESET"
    fi
fi

BUNDLE="$DEMO_DIR/bundle-$PRECISION"
echo "demo: exporting $MODEL to $BUNDLE ($PRECISION)"
rm -rf "$BUNDLE"
"$BIN/seamless-export" export "$MODEL" -o "$BUNDLE" --precision "$PRECISION"

SAMPLE="$DEMO_DIR/sample.wav"
if [ ! -f "$SAMPLE" ]; then
    if command -v espeak-ng >/dev/null; then
        espeak-ng -v en -s 150 -w "$SAMPLE" "$SAMPLE_TEXT"
    else
        "$BIN/python" scripts/make_tone.py "$SAMPLE"
    fi
fi

if [ -z "$TGT_LANG" ]; then
    TGT_LANG=$("$BIN/python" -c 'import json,sys; m=json.load(open(sys.argv[1]));
langs=sorted(set(m["languages"]["text"])&set(m["languages"]["t2u"])&set(m["languages"]["vocoder"]));
print("fra" if "fra" in langs else langs[0])' "$BUNDLE/manifest.json")
fi

echo "demo: translating $SAMPLE into $TGT_LANG"
"$BIN/seamless-daemon" translate "$SAMPLE" -o "$DEMO_DIR/translated.wav" --bundle "$BUNDLE" \
    --tgt-lang "$TGT_LANG" --json | tee "$DEMO_DIR/translated.json"
echo "demo: wrote $DEMO_DIR/translated.wav"
