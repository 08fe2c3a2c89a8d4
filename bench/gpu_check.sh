#!/usr/bin/env bash
# GPU check: ONNX Runtime's CUDA and TensorRT providers against the fp32 CPU reference, on an NVIDIA GPU.
#
#   bench/gpu_check.sh [--budget S] [--step-timeout S] [--work DIR] [--venv DIR] [--checkpoint DIR]
#                      [--fp32-bundle DIR] [--fp16-bundle DIR] [--wheels DIR] [--repeats N] [--no-install]
#
# 1. checks the GPU and that the venv's ONNX Runtime offers CUDA (else installs onnxruntime-gpu into it:
#    from --wheels DIR when given, offline; from the package index otherwise; --no-install forbids both);
# 2. builds a random `small` checkpoint (or takes --checkpoint) and exports its fp32 and fp16 bundles (or takes
#    --fp32-bundle / --fp16-bundle);
# 3. translates a few inputs with `seamless-daemon translate --json` on CPU fp32 (the reference), then on
#    cuda-fp32, cuda-fp16, tensorrt-fp16, tensorrt-fp32 (each with require_provider: a silent CPU fallback
#    fails), and compares with the reference: text ids equal, unit agreement, waveform length ratio;
# 4. prints per-stage medians (warm, --repeats runs of the longest input), load and warm-up seconds per setup.
#
# Every step has a timeout and the whole run keeps to --budget seconds (steps that no longer fit are skipped
# and say so). Exit status: 0 all ran and every fp32 GPU setup matches the reference (fp16 differences are
# reported, not failures: docs/export.md); 1 a mismatch or a failed setup; 2 no usable GPU runtime or bad
# arguments; 3 the budget ran out first. Logs of every step are kept in WORK/logs.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUDGET_S=540
STEP_TIMEOUT_S=300
MIN_STEP_S=20          # a step is not started with less time than this left
KILL_AFTER_S=10        # grace between timeout's TERM and KILL
WORK=""
VENV="$REPO/.venv"
CHECKPOINT=""
FP32_BUNDLE=""
FP16_BUNDLE=""
WHEELS=""
INSTALL=1
REPEATS=3
PRESET=small
SETUPS=(cuda-fp32 cuda-fp16 tensorrt-fp16 tensorrt-fp32)
# Parity thresholds for fp32 on the GPU (fp16 is reported only).
MIN_UNIT_AGREEMENT=0.95
MAX_LENGTH_DEVIATION=0.05

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --budget) BUDGET_S=$2; shift 2 ;;
        --step-timeout) STEP_TIMEOUT_S=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --venv) VENV=$2; shift 2 ;;
        --checkpoint) CHECKPOINT=$2; shift 2 ;;
        --fp32-bundle) FP32_BUNDLE=$2; shift 2 ;;
        --fp16-bundle) FP16_BUNDLE=$2; shift 2 ;;
        --wheels) WHEELS=$2; shift 2 ;;
        --repeats) REPEATS=$2; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "gpu_check: unknown argument $1" >&2; usage 2 ;;
    esac
done

START=$SECONDS
WORK=${WORK:-$(mktemp -d /tmp/gpu-check.XXXXXX)}
LOGS="$WORK/logs"
mkdir -p "$LOGS" "$WORK/inputs" "$WORK/results"
PY="$VENV/bin/python"
FAILURES=0
BUDGET_HIT=0

say() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*"; }
die() { say "ERROR: $*"; exit 2; }
remaining() { echo $((BUDGET_S - (SECONDS - START))); }

# step NAME LIMIT COMMAND...: run with a timeout (the smaller of LIMIT and the budget left), output in LOGS/NAME.
step() {
    local name=$1 limit=$2 left rc=0 began=$SECONDS
    shift 2
    left=$(remaining)
    if [ "$left" -lt "$MIN_STEP_S" ]; then
        say "SKIP  $name: ${left}s of the ${BUDGET_S}s budget left"
        BUDGET_HIT=1
        return 124
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    timeout --kill-after="$KILL_AFTER_S" "$limit" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || rc=$?
    if [ "$rc" -eq 0 ]; then
        say "ok    $name ($((SECONDS - began))s)"
    else
        if [ "$rc" -eq 124 ]; then
            say "TIMEOUT $name after ${limit}s"
        else
            say "FAIL  $name (exit $rc, $((SECONDS - began))s)"
        fi
        tail -n 5 "$LOGS/$name.err" | sed 's/^/        /'
    fi
    return "$rc"
}

# --- 1. GPU and ONNX Runtime -----------------------------------------------------------------------------
[ -x "$PY" ] || die "no Python at $PY (--venv DIR: a venv with this project installed, e.g. after make setup)"
if command -v nvidia-smi >/dev/null 2>&1; then
    say "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)"
elif [ -e /dev/nvgpu/igpu0/ctrl ] || [ -e /dev/nvhost-ctrl-gpu ]; then
    say "GPU: Jetson ($(tr -d '\0' </proc/device-tree/model 2>/dev/null || echo unknown model))"
else
    die "no NVIDIA GPU found (no nvidia-smi, no Jetson GPU node)"
fi
# CUDA, cuDNN and TensorRT libraries from pip packages (nvidia-*-cu12, tensorrt) are found through this.
for lib in "$VENV"/lib/python3*/site-packages/nvidia/*/lib "$VENV"/lib/python3*/site-packages/tensorrt_libs; do
    [ -d "$lib" ] && LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"

providers() { "$PY" -c 'import onnxruntime as o; print(o.__version__, " ".join(o.get_available_providers()))'; }
offered=$(providers) || die "the venv's onnxruntime does not import"
if [[ " $offered " != *" CUDAExecutionProvider "* ]]; then
    [ "$INSTALL" -eq 1 ] || die "onnxruntime $offered offers no CUDA provider and --no-install was given"
    say "onnxruntime $offered: no CUDA provider; installing onnxruntime-gpu"
    source_args=()
    [ -n "$WHEELS" ] && source_args=(--no-index --find-links "$WHEELS")
    # Both wheels own the same 'onnxruntime' package folder: remove the CPU one first.
    step pip-uninstall 120 "$PY" -m pip uninstall -y onnxruntime || true
    step pip-install "$STEP_TIMEOUT_S" "$PY" -m pip install "${source_args[@]}" "onnxruntime-gpu>=1.20,<2" \
        || die "installing onnxruntime-gpu failed (offline? give --wheels DIR holding its wheel)"
    offered=$(providers) || die "onnxruntime-gpu does not import"
fi
say "onnxruntime $offered"
[[ " $offered " == *" CUDAExecutionProvider "* ]] || die "this onnxruntime offers no CUDAExecutionProvider"
HAVE_TRT=0
[[ " $offered " == *" TensorrtExecutionProvider "* ]] && HAVE_TRT=1

# --- 2. bundles ----------------------------------------------------------------------------------------------
EXPORT_CLI=("$PY" -c 'import sys; from seamless_export.cli import main; sys.exit(main(sys.argv[1:]))')
if [ -z "$FP32_BUNDLE" ] || [ -z "$FP16_BUNDLE" ]; then
    if [ -z "$CHECKPOINT" ]; then
        CHECKPOINT="$WORK/checkpoint-$PRESET"
        step checkpoint "$STEP_TIMEOUT_S" "${EXPORT_CLI[@]}" random-checkpoint "$CHECKPOINT" --preset "$PRESET" \
            || die "could not build the $PRESET checkpoint (is the export extra installed in $VENV?)"
    fi
    if [ -z "$FP32_BUNDLE" ]; then
        FP32_BUNDLE="$WORK/bundle-fp32"
        step export-fp32 "$STEP_TIMEOUT_S" "${EXPORT_CLI[@]}" export "$CHECKPOINT" -o "$FP32_BUNDLE" --precision fp32 \
            || die "fp32 export failed"
    fi
    if [ -z "$FP16_BUNDLE" ]; then
        FP16_BUNDLE="$WORK/bundle-fp16"
        step export-fp16 "$STEP_TIMEOUT_S" "${EXPORT_CLI[@]}" export "$CHECKPOINT" -o "$FP16_BUNDLE" --precision fp16 \
            || die "fp16 export failed"
    fi
fi
LANG_CODE=$("$PY" - "$FP32_BUNDLE" <<'PY'
import json, sys
from pathlib import Path
langs = json.loads((Path(sys.argv[1]) / "manifest.json").read_text())["languages"]
targets = sorted(set(langs["text"]) & set(langs["t2u"]) & set(langs["vocoder"]))
print("fra" if "fra" in targets else targets[0])
PY
)
say "bundles: fp32 $FP32_BUNDLE, fp16 $FP16_BUNDLE; target language $LANG_CODE"

# --- 3. inputs -------------------------------------------------------------------------------------------------
INPUTS=()
for sentences in 1 2 3; do
    wav="$WORK/inputs/speech-$sentences.wav"
    if command -v espeak-ng >/dev/null 2>&1 \
        && step "speech-$sentences" 60 "$PY" "$REPO/bench/make_speech.py" "$wav" --sentences "$sentences"; then
        INPUTS+=("$wav")
    fi
done
if [ "${#INPUTS[@]}" -eq 0 ]; then
    say "no espeak-ng: synthetic speech-like inputs instead"
    "$PY" - "$WORK/inputs" <<'PY'
import sys
import numpy as np
import soundfile as sf
rate = 16000
for seconds in (1.5, 3.0, 6.0):
    t = np.arange(int(seconds * rate)) / rate
    noise = 0.05 * np.random.default_rng(int(seconds * 10)).standard_normal(t.size)
    voice = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    sf.write(f"{sys.argv[1]}/synthetic-{seconds:g}s.wav", (voice + noise).astype(np.float32), rate)
PY
    INPUTS=("$WORK"/inputs/synthetic-*.wav)
fi
LONGEST=${INPUTS[-1]}

# --- 4. setups: a daemon config each (runtime section), used through `translate --config` ---------------------
write_config() {  # write_config NAME BUNDLE PROVIDERS_YAML
    cat >"$WORK/$1.yaml" <<YAML
bundle: $2
service: {state_dir: $WORK/state}
runtime:
  require_provider: true
  providers: $3
YAML
}
write_config cpu-fp32 "$FP32_BUNDLE" "[cpu]"
write_config cuda-fp32 "$FP32_BUNDLE" "[{name: cuda, device_id: 0}, cpu]"
write_config cuda-fp16 "$FP16_BUNDLE" "[{name: cuda, device_id: 0}, cpu]"
write_config tensorrt-fp16 "$FP16_BUNDLE" "[{name: tensorrt, device_id: 0, fp16: true}, cuda, cpu]"
write_config tensorrt-fp32 "$FP32_BUNDLE" "[{name: tensorrt, device_id: 0}, cuda, cpu]"
bundle_of() { sed -n 's/^bundle: //p' "$WORK/$1.yaml"; }

translate_all() {  # translate_all SETUP: one JSON result per input in results/SETUP/
    local setup=$1 wav name
    mkdir -p "$WORK/results/$setup"
    for wav in "${INPUTS[@]}"; do
        name=$(basename "$wav" .wav)
        step "translate-$setup-$name" "$STEP_TIMEOUT_S" "$PY" -m seamless_daemon translate "$wav" \
            -o "$WORK/results/$setup/$name.wav" --bundle "$(bundle_of "$setup")" --tgt-lang "$LANG_CODE" \
            --config "$WORK/$setup.yaml" --json || return 1
        tail -n 1 "$LOGS/translate-$setup-$name.out" >"$WORK/results/$setup/$name.json"
    done
}

# Python helpers, written once: the comparison, the warm timings and the report.
cat >"$WORK/compare.py" <<'PY'
"""compare.py RESULTS SETUP STRICT MIN_UNITS MAX_DEVIATION: each input's result against the CPU fp32 one."""
import json, sys
from pathlib import Path
results, setup, strict = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
min_units, max_dev = float(sys.argv[4]), float(sys.argv[5])
failed = False
for got_file in sorted((results / setup).glob("*.json")):
    ref = json.loads((results / "cpu-fp32" / got_file.name).read_text())
    got = json.loads(got_file.read_text())
    same_text = ref["text_ids"] == got["text_ids"]
    a, b = ref["unit_ids"], got["unit_ids"]
    units = 1.0 if not a and not b else sum(x == y for x, y in zip(a, b)) / max(len(a), len(b))
    ratio = 1.0 if ref["duration_s"] == got["duration_s"] else got["duration_s"] / max(ref["duration_s"], 1e-9)
    ok = same_text and units >= min_units and abs(ratio - 1) <= max_dev
    verdict = "PASS" if ok else ("FAIL" if strict else "differs")
    failed |= strict and not ok
    print(f"  {setup:14s} {got_file.stem:16s} text_ids {'equal' if same_text else 'DIFFER'}  "
          f"units {units:6.1%}  length ratio {ratio:5.3f}  {verdict}")
sys.exit(1 if failed else 0)
PY
cat >"$WORK/timings.py" <<'PY'
"""timings.py CONFIG BUNDLE LANG REPEATS WAV: load, warm-up and warm per-stage medians, as one JSON line."""
import json, statistics, sys, time
import soundfile as sf
from seamless_daemon.config import load_config
from seamless_daemon.runtime.pipeline import Translator
from seamless_daemon.runtime.sessions import RuntimeOptions
config, bundle, lang, repeats, wav = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
began = time.monotonic()
translator = Translator.open(bundle, RuntimeOptions.from_config(load_config(config).runtime))
loaded = time.monotonic()
translator.warmup()
warm = time.monotonic()
audio, _ = sf.read(wav, dtype="float32")
runs = [translator.translate(audio, lang).timings_ms for _ in range(repeats)]
print(json.dumps({"load_s": loaded - began, "warmup_s": warm - loaded,
                  "providers": sorted({s.provider for s in translator.sessions.values()}),
                  "median_ms": {stage: statistics.median(run[stage] for run in runs) for stage in runs[0]}}))
PY
cat >"$WORK/report.py" <<'PY'
"""report.py RESULTS: one row per setup: load and warm-up seconds, per-stage medians in ms."""
import json, sys
from pathlib import Path
rows = {f.name[: -len("-timings.json")]: json.loads(f.read_text())
        for f in sorted(Path(sys.argv[1]).glob("*-timings.json")) if f.stat().st_size}
stages = sorted({stage for row in rows.values() for stage in row["median_ms"]}, key=lambda s: (s == "total", s))
print("  " + f"{'setup':14s} {'load_s':>7s} {'warmup_s':>8s} " + " ".join(f"{s[:12]:>12s}" for s in stages))
for setup, row in rows.items():
    cells = " ".join(f"{row['median_ms'].get(s, float('nan')):12.1f}" for s in stages)
    print(f"  {setup:14s} {row['load_s']:7.2f} {row['warmup_s']:8.2f} {cells}  ({', '.join(row['providers'])})")
PY

run_setup() {  # run_setup SETUP STRICT
    local setup=$1 strict=$2
    if ! translate_all "$setup"; then
        [ "$BUDGET_HIT" -eq 1 ] || FAILURES=$((FAILURES + 1))
        return 0
    fi
    if [ "$setup" != cpu-fp32 ]; then
        "$PY" "$WORK/compare.py" "$WORK/results" "$setup" "$strict" "$MIN_UNIT_AGREEMENT" "$MAX_LENGTH_DEVIATION" \
            || FAILURES=$((FAILURES + 1))
    fi
    if step "timings-$setup" "$STEP_TIMEOUT_S" "$PY" "$WORK/timings.py" "$WORK/$setup.yaml" "$(bundle_of "$setup")" \
        "$LANG_CODE" "$REPEATS" "$LONGEST"; then
        tail -n 1 "$LOGS/timings-$setup.out" >"$WORK/results/$setup-timings.json"
    elif [ "$BUDGET_HIT" -eq 0 ]; then
        FAILURES=$((FAILURES + 1))
    fi
}

say "inputs: ${INPUTS[*]}"
run_setup cpu-fp32 1
[ -s "$WORK/results/cpu-fp32/$(basename "$LONGEST" .wav).json" ] || die "the CPU reference failed (see $LOGS)"
for setup in "${SETUPS[@]}"; do
    if [[ "$setup" == tensorrt-* ]] && [ "$HAVE_TRT" -eq 0 ]; then
        say "SKIP  $setup: this onnxruntime offers no TensorrtExecutionProvider"
        continue
    fi
    strict=0
    [[ "$setup" == *-fp32 ]] && strict=1
    run_setup "$setup" "$strict"
done

# --- 5. report -------------------------------------------------------------------------------------------------
say "per-stage medians over $REPEATS warm runs of $(basename "$LONGEST") (ms); load and warm-up in s"
"$PY" "$WORK/report.py" "$WORK/results"
say "work folder: $WORK"
if [ "$FAILURES" -gt 0 ]; then
    say "RESULT: $FAILURES failure(s)"
    exit 1
fi
if [ "$BUDGET_HIT" -eq 1 ]; then
    say "RESULT: budget of ${BUDGET_S}s spent before every step ran"
    exit 3
fi
say "RESULT: all setups ran; fp32 on the GPU matches the CPU reference"
