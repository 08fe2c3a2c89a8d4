"""``seamless-export``: random checkpoints and bundle export.

    seamless-export random-checkpoint DIR --preset tiny|small|large [--seed N] [--layout full|speech-to-speech]
                                          [--layers N]
    seamless-export export MODEL -o BUNDLE [--precision fp32|fp16|int8] [--opset N] [--revision R]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from seamless_daemon.bundle import PRECISIONS

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXPORT_DEPENDENCIES = ("torch", "transformers", "onnx", "sentencepiece", "safetensors")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from seamless_export.checkpoint import LAYOUTS
    from seamless_export.exporter import DEFAULT_OPSET
    from seamless_export.presets import PRESETS

    parser = argparse.ArgumentParser(prog="seamless-export", description="Export SeamlessM4T v2 to a model bundle.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    commands = parser.add_subparsers(dest="command", required=True)

    ckpt = commands.add_parser("random-checkpoint", help="write a seeded random-weight checkpoint")
    ckpt.add_argument("directory", type=Path)
    ckpt.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ckpt.add_argument("--seed", type=int, default=0)
    ckpt.add_argument("--layout", choices=LAYOUTS, default="full", help="weights of SeamlessM4Tv2Model or of S2ST")
    ckpt.add_argument("--layers", type=_positive_int, default=None, metavar="N",
                      help="N layers in every stack; every width and table keeps the preset's size")

    export = commands.add_parser("export", help="export a checkpoint (folder or hub id) to a bundle")
    export.add_argument("model")
    export.add_argument("-o", "--output", type=Path, required=True)
    export.add_argument("--precision", choices=PRECISIONS, default="fp32")
    export.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    export.add_argument("--revision", default=None)
    return parser


def _random_checkpoint(args: argparse.Namespace) -> None:
    from seamless_export.checkpoint import write_random_checkpoint
    from seamless_export.presets import get_preset

    info = write_random_checkpoint(
        args.directory, get_preset(args.preset), seed=args.seed, layout=args.layout, layers=args.layers
    )
    layers = "" if info.layers is None else f", {info.layers} layers per stack"
    print(f"{info.path}: {info.preset} checkpoint{layers}, {info.num_parameters} parameters, seed {info.seed}")


def _export(args: argparse.Namespace) -> None:
    from seamless_export.exporter import ExportOptions, export_bundle

    options = ExportOptions(precision=args.precision, opset=args.opset, revision=args.revision)
    export_bundle(args.model, args.output, options, progress=lambda line: print(line, flush=True))


def _quiet_libraries() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def _missing_export_extra() -> str | None:
    """The first export dependency that is not installed, if any."""
    import importlib.util

    for module in EXPORT_DEPENDENCIES:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def main(argv: Sequence[str] | None = None) -> int:
    missing = _missing_export_extra()
    if missing is not None:
        print(f"seamless-export: error: {missing} is not installed; the export stage needs the export extra: "
              "pip install 'seamless-daemon[export]'", file=sys.stderr)
        return EXIT_FAILURE
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    _quiet_libraries()
    from seamless_export.exporter import ExportError
    from seamless_export.manifest import ManifestError
    from seamless_export.verify import ParityError

    handlers = {"random-checkpoint": _random_checkpoint, "export": _export}
    try:
        handlers[args.command](args)
    except (ExportError, ManifestError, ParityError, ValueError, OSError) as err:
        message = " ".join(str(err).split())
        print(f"seamless-export: error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
