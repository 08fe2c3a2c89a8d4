"""``seamless-daemon translate``: translate one WAV file offline through a bundle.

    seamless-daemon translate IN.wav -o OUT.wav --bundle BUNDLE --tgt-lang LANG [--speaker N]
        [--max-new-tokens N] [--threads N] [--providers P ...] [--config FILE] [--require-provider]
        [--output-format PCM_16|FLOAT] [--json]

The input may have any sample rate, any channel count and 16-bit, 24-bit or float samples; it is mixed to mono
and resampled to the bundle's input rate. The output is a mono WAV at the bundle's output rate (16 kHz).
With ``--json`` one JSON object is printed on stdout: text, text_ids, unit_ids, sample_rate, duration_s,
timings_ms (and the provider used). ``--config`` takes the runtime settings (providers with their CUDA and
TensorRT options, ``require_provider``, threads) of a daemon config file; ``--providers`` and ``--threads``
override it. Every error is one line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from seamless_daemon.audio.resample import resample
from seamless_daemon.audio.wavfile import DEFAULT_SUBTYPE, OUTPUT_SUBTYPES, WavError, read_wav, write_wav
from seamless_daemon.bundle import BundleError
from seamless_daemon.config import ConfigError, RuntimeConfig, load_config
from seamless_daemon.config_checks import Invalid
from seamless_daemon.provider_spec import provider_name
from seamless_daemon.runtime.pipeline import TranslationError, TranslationResult, Translator
from seamless_daemon.runtime.providers import ProviderError
from seamless_daemon.runtime.sessions import RuntimeOptions

logger = logging.getLogger(__name__)

PROG = "seamless-daemon translate"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DURATION_DECIMALS = 3


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as a single line, like every other error of this command."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _provider(text: str) -> str:
    """An argparse type: ONNX Runtime's name of a provider (``cuda`` → ``CUDAExecutionProvider``)."""
    try:
        return provider_name(text, "--providers")
    except Invalid as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog=PROG, description="Translate one WAV file into speech in another language.")
    parser.add_argument("input", type=Path, help="input WAV file (any rate, mono or stereo)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output WAV file (mono)")
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    parser.add_argument("--tgt-lang", required=True, help="target language code, e.g. fra")
    parser.add_argument("--speaker", type=_non_negative_int, default=0, help="vocoder speaker id (default 0)")
    parser.add_argument("--max-new-tokens", type=_positive_int, default=None,
                        help="text token limit (default: the bundle's own limit)")
    parser.add_argument("--threads", type=_non_negative_int, default=None,
                        help="ONNX Runtime intra-op threads (default 0: ONNX Runtime's default)")
    parser.add_argument("--providers", nargs="+", type=_provider, default=None,
                        help="execution providers in order of preference (cpu, cuda, tensorrt or ONNX Runtime's "
                             "names; default cpu); CPU is always the last fallback")
    parser.add_argument("--config", type=Path, default=None,
                        help="take the runtime settings (providers and their options, require_provider, threads) "
                             "from this daemon config file")
    parser.add_argument("--require-provider", action="store_true",
                        help="fail unless every graph runs on the first provider")
    parser.add_argument("--output-format", choices=OUTPUT_SUBTYPES, default=DEFAULT_SUBTYPE,
                        help="sample format of the output WAV")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress on stderr")
    return parser


def result_json(result: TranslationResult, translator: Translator, output: Path) -> dict[str, object]:
    return {
        "text": result.text,
        "text_ids": list(result.text_ids),
        "unit_ids": list(result.unit_ids),
        "sample_rate": result.sample_rate,
        "duration_s": round(result.duration_s, DURATION_DECIMALS),
        "ended_on_eos": result.ended_on_eos,
        "timings_ms": result.timings_ms,
        "provider": translator.provider,
        "output": str(output),
    }


def runtime_options(args: argparse.Namespace) -> RuntimeOptions:
    """The config file's runtime settings (or the defaults), with the command line's flags on top."""
    runtime = load_config(args.config).runtime if args.config is not None else RuntimeConfig()
    return RuntimeOptions(
        providers=tuple(args.providers) if args.providers is not None else runtime.providers,
        require_provider=args.require_provider or runtime.require_provider,
        intra_op_threads=args.threads if args.threads is not None else runtime.intra_op_threads,
        inter_op_threads=runtime.inter_op_threads,
    )


def _run(args: argparse.Namespace) -> int:
    options = runtime_options(args)
    translator = Translator.open(args.bundle, options)
    translator.check_request(args.tgt_lang, args.speaker, args.max_new_tokens)
    audio = read_wav(args.input)
    samples = resample(audio.samples, audio.sample_rate, translator.input_sample_rate)
    result = translator.translate(samples, args.tgt_lang, args.speaker, args.max_new_tokens)
    write_wav(args.output, result.waveform, result.sample_rate, args.output_format)
    if args.json:
        print(json.dumps(result_json(result, translator, args.output), ensure_ascii=False))
    else:
        print(f"{args.output}: {result.duration_s:.2f} s, {result.text!r}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return _run(args)
    except (BundleError, TranslationError, WavError, ConfigError, ProviderError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
