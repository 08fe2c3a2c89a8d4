"""ONNX Runtime pipeline vs transformers eager generate(), side by side in one run.

    python bench/bench_pipeline.py --preset small --out bench/results [--repeats 5] [--threads 2]

Builds (or reuses) a random-weight checkpoint of the preset and its bundle, makes a speech sample, then runs
each engine in its own subprocess (so peak RSS is each engine's own) with the same thread count, the same input
and the same token limit: a warm-up, then ``--repeats`` timed runs. Reports medians, end to end and per stage
(features, encoder, decoder per token, decoder pass feeding t2u, t2u, vocoder), peak RSS, bundle size, and the
ORT/PyTorch speed-up. Both engines produce the same tokens (the parity tests prove it), so both run the same
number of decode steps; the table prints that number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent

SAMPLE_TEXT = "Good morning everyone. The meeting starts in ten minutes in the blue room on the second floor."
SAMPLE_RATE = 16000
MIB = 1024 * 1024
STAGES = ("features", "encoder", "decoder_per_token", "decoder_t2u_pass", "t2u", "vocoder", "total")


def _venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def ensure_bundle(out: Path, preset: str, precision: str, seed: int) -> tuple[Path, Path]:
    ckpt = out / f"checkpoint-{preset}-seed{seed}"
    bundle = out / f"bundle-{preset}-seed{seed}-{precision}"
    if not (ckpt / "config.json").is_file():
        subprocess.run([_venv_bin("seamless-export"), "random-checkpoint", str(ckpt), "--preset", preset,
                        "--seed", str(seed)], check=True)
    if not (bundle / "manifest.json").is_file():
        subprocess.run([_venv_bin("seamless-export"), "export", str(ckpt), "-o", str(bundle),
                        "--precision", precision], check=True)
    return ckpt, bundle


def make_sample(path: Path, seconds: float) -> None:
    import numpy as np
    import soundfile as sf

    if not path.is_file():
        raw = path.with_suffix(".raw.wav")
        try:
            subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(raw), SAMPLE_TEXT], check=True)
            audio, rate = sf.read(raw, dtype="float32")
        except (OSError, subprocess.CalledProcessError):
            rng = np.random.default_rng(0)
            audio, rate = (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 0.05).astype(np.float32), SAMPLE_RATE
        import soxr

        audio = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
        reps = int(np.ceil(seconds * SAMPLE_RATE / audio.size))
        sf.write(path, np.tile(audio, reps)[: int(seconds * SAMPLE_RATE)], SAMPLE_RATE, subtype="FLOAT")


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def _subprocess_engine(engine: str, args: argparse.Namespace, ckpt: Path, bundle: Path, wav: Path) -> dict:
    cmd = [sys.executable, str(BENCH_DIR / "engines.py"), engine, "--checkpoint", str(ckpt), "--bundle",
           str(bundle), "--wav", str(wav), "--threads", str(args.threads), "--repeats", str(args.repeats),
           "--max-new-tokens", str(args.max_new_tokens), "--tgt-lang", args.tgt_lang]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(report: dict[str, Any]) -> str:
    torch_r, ort_r = report["torch"], report["ort"]
    lines = ["| stage (median ms) | PyTorch eager | ONNX Runtime | speed-up |", "|---|---|---|---|"]
    for stage in STAGES:
        t, o = torch_r["median_ms"].get(stage), ort_r["median_ms"].get(stage)
        ratio = f"{t / o:.2f}x" if t and o else "-"
        lines.append(f"| {stage} | {t:.1f} | {o:.1f} | {ratio} |" if t is not None and o is not None
                     else f"| {stage} | {t} | {o} | - |")
    lines.append(f"| peak RSS (MiB) | {torch_r['peak_rss_mib']:.0f} | {ort_r['peak_rss_mib']:.0f} | |")
    lines.append(f"| decode steps | {torch_r['decode_steps']} | {ort_r['decode_steps']} | |")
    lines.append(f"| same text ids / unit ids | {report['same_text_ids']} / {report['same_unit_ids']} | | |")
    lines.append(f"bundle size: {report['bundle_mib']:.1f} MiB; audio {report['audio_s']:.2f} s; "
                 f"threads {report['threads']}; repeats {report['repeats']}; machine: {report['machine']['cpu']}, "
                 f"{report['machine']['cores']} cores")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--tgt-lang", default="fra")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt, bundle = ensure_bundle(args.out, args.preset, args.precision, args.seed)
    wav = args.out / f"sample-{args.seconds:g}s.wav"
    make_sample(wav, args.seconds)
    results = {engine: _subprocess_engine(engine, args, ckpt, bundle, wav) for engine in ("torch", "ort")}
    report = {
        "preset": args.preset, "precision": args.precision, "threads": args.threads, "repeats": args.repeats,
        "audio_s": args.seconds, "max_new_tokens": args.max_new_tokens, "machine": _machine(),
        "bundle_mib": _dir_size(bundle) / MIB, **results,
        "same_text_ids": results["torch"]["text_ids"] == results["ort"]["text_ids"],
        "same_unit_ids": results["torch"]["unit_ids"] == results["ort"]["unit_ids"],
        "speedup_total": results["torch"]["median_ms"]["total"] / results["ort"]["median_ms"]["total"],
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = args.out / f"bench-{args.preset}-{args.precision}-{stamp}.json"
    path.write_text(json.dumps(report, indent=1))
    print(_table(report))
    print(f"end-to-end speed-up ORT/PyTorch: {report['speedup_total']:.2f}x  ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
