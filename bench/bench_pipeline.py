"""ONNX Runtime pipeline (one column per bundle precision) vs transformers eager generate(), side by side in one run.

    python bench/bench_pipeline.py --preset small --out bench/results [--precisions fp32,int8] [--repeats 5]
    python bench/bench_pipeline.py --preset large --checkpoint CKPT --out DIR --precisions fp32,int8 --repeats 3

Builds (or reuses) a random-weight checkpoint of the preset and one bundle per precision, makes a speech sample,
measures the machine's memory read bandwidth, then runs each engine in its own subprocess (so peak RSS is each
engine's own) with the same thread count, the same input and the same token limit: a warm-up, then ``--repeats``
timed runs. Reports medians, end to end and per stage (features, encoder, decoder per token, decoder pass feeding
t2u, t2u, vocoder), real-time factor, load time, resident memory after loading, peak RSS, bundle size, the
speed-up against PyTorch, and the decoder step against its bound: the bytes of decoder weights read per token
divided by the measured bandwidth. fp32 produces the same tokens as PyTorch (the parity tests prove it), so both
run the same number of decode steps; the table prints them for every engine.
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

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent

SAMPLE_TEXT = "Good morning everyone. The meeting starts in ten minutes in the blue room on the second floor."
SAMPLE_RATE = 16000
MIB = 1024 * 1024
FLOAT32_BYTES = 4
STAGES = ("features", "encoder", "decoder_per_token", "decoder_t2u_pass", "t2u", "vocoder", "total")


def _venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def ensure_checkpoint(out: Path, preset: str, seed: int, given: Path | None) -> Path:
    if given is not None:
        return given
    ckpt = out / f"checkpoint-{preset}-seed{seed}"
    if not (ckpt / "config.json").is_file():
        subprocess.run([_venv_bin("seamless-export"), "random-checkpoint", str(ckpt), "--preset", preset,
                        "--seed", str(seed)], check=True)
    return ckpt


def ensure_bundle(out: Path, ckpt: Path, precision: str) -> Path:
    bundle = out / f"bundle-{ckpt.name}-{precision}"
    if not (bundle / "manifest.json").is_file():
        subprocess.run([_venv_bin("seamless-export"), "export", str(ckpt), "-o", str(bundle),
                        "--precision", precision], check=True)
    return bundle


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


def _thread_env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}


def _subprocess_engine(engine: str, args: argparse.Namespace, ckpt: Path, bundle: Path | None, wav: Path) -> dict:
    cmd = [sys.executable, str(BENCH_DIR / "engines.py"), engine, "--checkpoint", str(ckpt), "--bundle",
           str(bundle or ckpt), "--wav", str(wav), "--threads", str(args.threads), "--repeats", str(args.repeats),
           "--max-new-tokens", str(args.max_new_tokens), "--tgt-lang", args.tgt_lang]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=_thread_env(args.threads))
    return json.loads(done.stdout.strip().splitlines()[-1])


def _bandwidth(threads: int) -> float:
    done = subprocess.run([sys.executable, str(BENCH_DIR / "bandwidth.py"), "--threads", str(threads)], check=True,
                          capture_output=True, text=True, env=_thread_env(threads))
    return json.loads(done.stdout.strip().splitlines()[-1])["gb_per_s"]


def _decoder_bytes(bundle: Path) -> int:
    """Bytes of the text decoder graph's weights that a step reads whole: every initializer but those only a
    Gather reads (the lookup reads one row of its table; in fp32 the table is also the projection's weight)."""
    import onnx
    from onnx import helper

    manifest = json.loads((bundle / "manifest.json").read_text())
    graph = onnx.load(str(bundle / manifest["graphs"]["text_decoder"]["path"]), load_external_data=False).graph
    readers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.op_type)
    total = 0
    for init in graph.initializer:
        if readers.get(init.name, set()) - {"Gather"}:
            itemsize = helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
            total += itemsize * int(np.prod(init.dims, dtype=np.int64))
    return total


def _torch_decoder_bytes(ckpt: Path) -> int:
    """fp32 bytes of the text decoder and its tied vocabulary projection (read once per token)."""
    config = json.loads((ckpt / "config.json").read_text())
    hidden, ffn, layers = config["hidden_size"], config["decoder_ffn_dim"], config["decoder_layers"]
    # self-attention q, k, v, out; cross-attention q, out (its keys/values are cached once per utterance)
    attention = 6 * (hidden * hidden + hidden)
    per_layer = attention + 2 * hidden * ffn + ffn + hidden + 3 * 2 * hidden  # + ffn, three layer norms
    return FLOAT32_BYTES * (config["vocab_size"] * hidden + layers * per_layer)


ROWS = (("load time (s)", "load_s", "{:.1f}"), ("RSS after load (MiB)", "rss_after_load_mib", "{:.0f}"),
        ("peak RSS (MiB)", "peak_rss_mib", "{:.0f}"), ("decode steps", "decode_steps", "{}"))


def _table(report: dict[str, Any]) -> str:
    engines = report["engines"]
    names = list(engines)
    lines = ["| stage (median ms) | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    base = engines["pytorch"]["median_ms"]
    for stage in STAGES:
        cells = []
        for name in names:
            value = engines[name]["median_ms"].get(stage)
            ratio = f" ({base[stage] / value:.2f}x)" if name != "pytorch" and value and base.get(stage) else ""
            cells.append("-" if value is None else f"{value:.1f}{ratio}")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append("| real-time factor | " + " | ".join(
        f"{engines[n]['median_ms']['total'] / 1000 / report['audio_s']:.3f}" for n in names) + " |")
    for label, key, fmt in ROWS:
        lines.append(f"| {label} | " + " | ".join(fmt.format(engines[n].get(key, 0)) for n in names) + " |")
    bound = report["decoder_bound"]
    lines.append("| decoder bytes per token (MB) | " + " | ".join(f"{bound[n]['bytes'] / 1e6:.0f}" for n in names)
                 + " |")
    lines.append("| decoder step / bandwidth bound | " + " | ".join(f"{bound[n]['ratio']:.2f}x" for n in names)
                 + " |")
    lines.append("| same text ids / unit ids as PyTorch | " + " | ".join(
        f"{engines[n]['text_ids'] == engines['pytorch']['text_ids']} / "
        f"{engines[n]['unit_ids'] == engines['pytorch']['unit_ids']}" for n in names) + " |")
    sizes = ", ".join(f"{precision} {mib:.0f} MiB" for precision, mib in report["bundle_mib"].items())
    lines.append(f"bundles: {sizes}; audio {report['audio_s']:.2f} s; threads {report['threads']}; repeats "
                 f"{report['repeats']}; memory read bandwidth {report['bandwidth_gb_s']:.1f} GB/s; machine: "
                 f"{report['machine']['cpu']}, {report['machine']['cores']} cores")
    return "\n".join(lines)


def _decoder_bound(engines: dict[str, dict], bytes_per_token: dict[str, int], gb_s: float) -> dict[str, dict]:
    bound = {}
    for name, result in engines.items():
        seconds = bytes_per_token[name] / (gb_s * 1e9)
        bound[name] = {"bytes": bytes_per_token[name], "bound_ms": seconds * 1000,
                       "ratio": result["median_ms"]["decoder_per_token"] / (seconds * 1000)}
    return bound


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--checkpoint", type=Path, default=None, help="use this checkpoint instead of building one")
    parser.add_argument("--precisions", default="fp32,int8", help="comma-separated bundle precisions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--tgt-lang", default="fra")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    precisions = [p for p in args.precisions.split(",") if p]
    ckpt = ensure_checkpoint(args.out, args.preset, args.seed, args.checkpoint)
    bundles = {precision: ensure_bundle(args.out, ckpt, precision) for precision in precisions}
    wav = args.out / f"sample-{args.seconds:g}s.wav"
    make_sample(wav, args.seconds)
    gb_s = _bandwidth(args.threads)
    engines = {"pytorch": _subprocess_engine("torch", args, ckpt, None, wav)}
    bytes_per_token = {"pytorch": _torch_decoder_bytes(ckpt)}
    for precision, bundle in bundles.items():
        engines[f"ort-{precision}"] = _subprocess_engine("ort", args, ckpt, bundle, wav)
        bytes_per_token[f"ort-{precision}"] = _decoder_bytes(bundle)
    report = {
        "preset": args.preset, "checkpoint": str(ckpt), "threads": args.threads, "repeats": args.repeats,
        "audio_s": args.seconds, "max_new_tokens": args.max_new_tokens, "machine": _machine(),
        "bandwidth_gb_s": gb_s, "bundle_mib": {p: _dir_size(b) / MIB for p, b in bundles.items()},
        "engines": engines, "decoder_bound": _decoder_bound(engines, bytes_per_token, gb_s),
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = args.out / f"bench-{args.preset}-{stamp}.json"
    path.write_text(json.dumps(report, indent=1))
    print(_table(report))
    print(f"({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
