#!/usr/bin/env bash
# Proves the edge install: `pip install .` without the export extra gives a working translator that has no
# torch. Uses a bundle exported with the development environment.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV_VENV=${VENV:-.venv}
EDGE_VENV=${EDGE_VENV:-.venv-edge}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ ! -x "$EDGE_VENV/bin/python" ]; then
    python3 -m venv "$EDGE_VENV"
fi
"$EDGE_VENV/bin/python" -m pip install -q --upgrade pip
"$EDGE_VENV/bin/python" -m pip install -q .

for forbidden in torch transformers; do
    if "$EDGE_VENV/bin/python" -c "import $forbidden" 2>/dev/null; then
        echo "edge install check: '$forbidden' is importable in the edge install" >&2
        exit 1
    fi
done
if "$EDGE_VENV/bin/seamless-export" --help >/dev/null 2>"$WORK/export.err" \
        || ! grep -q "needs the export extra" "$WORK/export.err"; then
    echo "edge install check: seamless-export without the export extra does not say what is missing" >&2
    exit 1
fi

"$DEV_VENV/bin/seamless-export" random-checkpoint "$WORK/ckpt" --preset tiny >/dev/null
"$DEV_VENV/bin/seamless-export" export "$WORK/ckpt" -o "$WORK/bundle" >/dev/null
"$DEV_VENV/bin/python" scripts/make_tone.py "$WORK/in.wav"
lang=$("$EDGE_VENV/bin/python" -c 'import json,sys; print(sorted(json.load(open(sys.argv[1]))["languages"]["vocoder"])[0])' "$WORK/bundle/manifest.json")
"$EDGE_VENV/bin/seamless-daemon" translate "$WORK/in.wav" -o "$WORK/out.wav" --bundle "$WORK/bundle" \
    --tgt-lang "$lang" --json >"$WORK/out.json"
"$EDGE_VENV/bin/python" - "$WORK/out.json" "$WORK/out.wav" <<'PY'
import json, sys
import soundfile as sf
result = json.load(open(sys.argv[1]))
info = sf.info(sys.argv[2])
if info.samplerate != 16000 or info.channels != 1 or info.frames == 0 or not result["unit_ids"]:
    sys.exit(f"edge install check: bad output {info} {result.get('text')!r}")
print(f"edge install check: ok ({info.frames / info.samplerate:.2f} s of audio, {len(result['text_ids'])} text ids, no torch)")
PY
