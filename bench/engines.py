"""One engine of the benchmark, run in its own process: ``engines.py torch|ort --checkpoint ... --bundle ...``.

Prints one JSON line: per-stage medians over the repeats, decode steps, peak RSS, and the ids it produced.
PyTorch stages are timed with forward hooks inside the real ``generate()``; ORT stages come from the
pipeline's own timings (its decoder states feed t2u directly, so it has no second decoder pass). Load time and the
resident set right after loading are reported too.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

MS = 1000.0
KIB_PER_MIB = 1024
PROMPT_TOKENS = 2  # decoder start + language token


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB


def _rss_mib() -> float:
    """Resident set now (file-backed pages of memory-mapped weights included)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / KIB_PER_MIB
    return 0.0


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = set().union(*runs)
    return {key: statistics.median(run.get(key, 0.0) for run in runs) for key in sorted(keys)}


class _HookTimer:
    """Accumulates wall time of module calls during one generate()."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._started: dict[str, float] = {}
        self.in_step = False

    def attach(self, module: Any, name: str, when: Callable[[], bool] = lambda: True) -> None:
        def pre(*_: Any) -> None:
            if when():
                self._started[name] = time.perf_counter()

        def post(*_: Any) -> None:
            if name in self._started:
                self.totals[name] += (time.perf_counter() - self._started.pop(name)) * MS
                self.calls[name] += 1

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)


def run_torch(args: argparse.Namespace, audio: np.ndarray) -> dict[str, Any]:
    import torch
    from transformers import SeamlessM4TFeatureExtractor, SeamlessM4Tv2ForSpeechToSpeech

    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    model = SeamlessM4Tv2ForSpeechToSpeech.from_pretrained(args.checkpoint).eval()
    extractor = SeamlessM4TFeatureExtractor.from_pretrained(args.checkpoint)
    load_s = time.perf_counter() - began
    rss_after_load = _rss_mib()
    timer = _HookTimer()

    def step_flag(value: bool) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            timer.in_step = value
        return hook

    model.register_forward_pre_hook(step_flag(True))
    model.register_forward_hook(step_flag(False))
    timer.attach(model, "decoder_steps")
    timer.attach(model.text_decoder, "decoder_t2u_pass", when=lambda: not timer.in_step)
    timer.attach(model.speech_encoder, "encoder")
    timer.attach(model.t2u_model, "t2u")
    timer.attach(model.vocoder, "vocoder")

    def once() -> tuple[dict[str, float], Any]:
        timer.totals.clear()
        timer.calls.clear()
        began = time.perf_counter()
        feats = extractor(audio, sampling_rate=16000, return_tensors="pt")
        features_ms = (time.perf_counter() - began) * MS
        with torch.inference_mode():
            out = model.generate(input_features=feats["input_features"], attention_mask=feats["attention_mask"],
                                 tgt_lang=args.tgt_lang, speaker_id=0, num_beams=1, do_sample=False,
                                 max_new_tokens=args.max_new_tokens, return_intermediate_token_ids=True)
        total = (time.perf_counter() - began) * MS
        steps = max(1, timer.calls["decoder_steps"])
        stages = {"features": features_ms, "encoder": timer.totals["encoder"],
                  "decoder_per_token": timer.totals["decoder_steps"] / steps,
                  "decoder_t2u_pass": timer.totals["decoder_t2u_pass"], "t2u": timer.totals["t2u"],
                  "vocoder": timer.totals["vocoder"], "total": total}
        return stages, out

    once()
    runs, out = [], None
    for _ in range(args.repeats):
        stages, out = once()
        runs.append(stages)
    text_ids = out.sequences[0].tolist()
    return {"median_ms": _medians(runs), "decode_steps": len(text_ids) - PROMPT_TOKENS,
            "text_ids": text_ids, "unit_ids": out.unit_sequences[0].tolist(), "peak_rss_mib": _peak_rss_mib(),
            "load_s": load_s, "rss_after_load_mib": rss_after_load, "encoder_calls_per_run": timer.calls["encoder"]}


def run_ort(args: argparse.Namespace, audio: np.ndarray) -> dict[str, Any]:
    from seamless_daemon.runtime.pipeline import Translator
    from seamless_daemon.runtime.sessions import RuntimeOptions

    began = time.perf_counter()
    translator = Translator.open(args.bundle, RuntimeOptions(intra_op_threads=args.threads))
    load_s = time.perf_counter() - began
    rss_after_load = _rss_mib()
    translator.translate(audio, args.tgt_lang, 0, args.max_new_tokens)
    runs, result = [], None
    for _ in range(args.repeats):
        result = translator.translate(audio, args.tgt_lang, 0, args.max_new_tokens)
        t = result.timings_ms
        steps = max(1, len(result.text_ids) - PROMPT_TOKENS)
        runs.append({"features": t["features"], "encoder": t["encoder"],
                     "decoder_per_token": t["decoder"] / steps, "decoder_t2u_pass": 0.0,
                     "t2u": t["t2u"], "vocoder": t["vocoder"], "total": t["total"]})
    return {"median_ms": _medians(runs), "decode_steps": len(result.text_ids) - PROMPT_TOKENS,
            "text_ids": result.text_ids, "unit_ids": result.unit_ids, "peak_rss_mib": _peak_rss_mib(),
            "load_s": load_s, "rss_after_load_mib": rss_after_load, "rss_after_runs_mib": _rss_mib(),
            "provider": translator.provider, "precision": translator.bundle.manifest.precision}


def run_engine(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=("torch", "ort"))
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--wav", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--tgt-lang", default="fra")
    args = parser.parse_args(argv)
    audio, _ = sf.read(args.wav, dtype="float32")
    return run_torch(args, audio) if args.engine == "torch" else run_ort(args, audio)


if __name__ == "__main__":
    print(json.dumps(run_engine(sys.argv[1:])))
